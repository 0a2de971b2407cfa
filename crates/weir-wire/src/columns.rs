//! The column names of weir's flow tables (results, shards, the search layout; docs/FEATURES.md
//! describes each, from `weir_records::column_doc`). Feature columns are named by
//! `weir_flow::column_name`, class probabilities by `weir_records::probability_column`.

/// Community ID (v1, seed 0) of the flow's 5-tuple.
pub const COMMUNITY_ID: &str = "community_id";
/// IP protocol number.
pub const PROTO: &str = "proto";
/// Address of the initiator.
pub const SRC_IP: &str = "src_ip";
/// Initiator's port (ICMP: type).
pub const SRC_PORT: &str = "src_port";
/// Address of the responder.
pub const DST_IP: &str = "dst_ip";
/// Responder's port (ICMP: code).
pub const DST_PORT: &str = "dst_port";
/// Outermost VLAN id.
pub const VLAN: &str = "vlan";
/// Encapsulation the flow was found in.
pub const TUNNEL: &str = "tunnel";
/// Time of the first packet (timestamp ns UTC).
pub const FIRST_TS: &str = "first_ts";
/// Time of the last packet.
pub const LAST_TS: &str = "last_ts";
/// Packets from the initiator.
pub const PACKETS_FWD: &str = "packets_fwd";
/// Packets from the responder.
pub const PACKETS_BWD: &str = "packets_bwd";
/// Bytes from the initiator.
pub const BYTES_FWD: &str = "bytes_fwd";
/// Bytes from the responder.
pub const BYTES_BWD: &str = "bytes_bwd";
/// Byte offset of the first packet record in the capture.
pub const FIRST_OFFSET: &str = "first_offset";
/// Byte offset of the last packet record.
pub const LAST_OFFSET: &str = "last_offset";
/// Why the flow ended.
pub const END_REASON: &str = "end_reason";
/// Version of the feature vector.
pub const FEATURE_VERSION: &str = "feature_version";
/// The behaviour detector that fired.
pub const BEHAVIOUR: &str = "behaviour";
/// The class that detector stands for.
pub const BEHAVIOUR_CLASS: &str = "behaviour_class";
/// What the detector saw.
pub const EVIDENCE: &str = "evidence";
/// The verdict's class.
pub const CLASS: &str = "class";
/// The model's probability of the predicted class.
pub const CLASS_PROBABILITY: &str = "class_probability";
/// Whether the flow alerts.
pub const ALERT: &str = "alert";
/// Raw energy anomaly score.
pub const ANOMALY: &str = "anomaly";
/// The anomaly score as a percentile of benign training flows.
pub const ANOMALY_PERCENTILE: &str = "anomaly_percentile";
/// Version of the model that classified the flow.
pub const MODEL_VERSION: &str = "model_version";
/// The shard whose result file holds the flow's full row (search layout).
pub const SHARD: &str = "shard";
/// The flow's row in that result file (search layout).
pub const ROW: &str = "row";
