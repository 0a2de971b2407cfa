//! # weir-flow
//!
//! Owns: flows, the feature spec, payload signals and the behaviour detectors. Must not depend
//! on: polars, the store, a runtime; no I/O beyond the reader given.
//!
//! The second and third stages of weir's data path: packets → bidirectional flows → feature
//! vectors.
//!
//! ```text
//! CaptureReader ─▶ decode ─▶ FlowTable::push ─▶ FlowRecord { tuple, counts, offsets, features }
//! ```
//!
//! [`extract`] runs the whole stage over any [`std::io::Read`] and hands flows out in batches
//! as they end, so memory is bounded by the number of open flows, never by the file size.
//! Like `weir-capture`, this crate does no I/O beyond the reader it is given, no async, no AWS.
#![warn(missing_docs)]

pub mod behaviour;
pub mod community_id;
pub mod context;
mod extract;
pub mod features;
mod table;

pub use behaviour::{model_may_alert, BehaviourTracker, DetectorId, Finding, MODEL_MIN_PACKETS};
pub use context::{ContextTracker, FlowStart};
pub use extract::{extract, ExtractOptions, Summary};
pub use features::{
    column_name, feature_columns, ix, CONTEXT_FIRST, FEATURES, FEATURE_VERSION, N_FEATURES,
};
pub use table::{EndReason, FlowConfig, FlowCounters, FlowRecord, FlowTable, PacketInfo};
pub use weir_capture::{
    CaptureError, SkipReason, FLAG_ACK, FLAG_CWR, FLAG_ECE, FLAG_FIN, FLAG_PSH, FLAG_RST, FLAG_SYN,
    FLAG_URG,
};

/// Direction of a packet relative to the flow's initiator.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Direction {
    /// From the initiator (the sender of the flow's first packet).
    Forward,
    /// From the responder.
    Backward,
}

/// The name of an IP protocol number (`TCP`, `UDP`, `ICMP`, ...; the number for others).
pub fn proto_name(p: u8) -> String {
    match p {
        1 => "ICMP".into(),
        2 => "IGMP".into(),
        6 => "TCP".into(),
        17 => "UDP".into(),
        41 => "IPv6-in-IP".into(),
        47 => "GRE".into(),
        50 => "ESP".into(),
        51 => "AH".into(),
        58 => "ICMPv6".into(),
        89 => "OSPF".into(),
        103 => "PIM".into(),
        112 => "VRRP".into(),
        132 => "SCTP".into(),
        n => format!("proto-{n}"),
    }
}
