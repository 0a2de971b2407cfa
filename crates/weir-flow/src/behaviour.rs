//! Host behaviour: what a host did across many flows, which no single flow shows.
//!
//! A port scan is ten thousand one-packet flows; a brute force is a hundred ordinary SSH
//! logins; a flood is thousands of datagrams that each look like any other. A per-flow model
//! sees none of that. [`BehaviourTracker`] watches the flow stream (the flow stage's output
//! order, so its verdicts depend only on the capture) and keeps, per host, service and pair,
//! what the detectors below need. A flow that completes a pattern, and every later flow of
//! the same pattern, gets a [`Finding`]: the class, the detector, and the evidence in words.
//!
//! The detectors are fixed rules from how these attacks work, not fitted to a capture; each
//! threshold is documented on its constant. They are judged with the model, source by source
//! (`weir eval` leaves one source out at a time, models/EVAL.md). They learn nothing from the
//! data, but they were written with those captures in view, so their figures there are
//! optimistic (models/MODEL_CARD.md).
//!
//! Layout: the [`Detector`] trait and the priority order here ([`detectors`]); one file per
//! family: `payload` (an attack in a request's bytes; a worm), `scan` (port scans, sweeps),
//! `flood` (floods, reflection), `http` (HTTP floods, slow DoS), `brute` (password guessing),
//! `tunnel` (DNS tunnels), `c2` (C2 sessions, beacons); `facts` is what they read of a flow,
//! `state` the bounded per-key state they keep. The payload signals themselves are the flow
//! engine's (`features::payload`), read from the bytes as packets pass.
//!
//! Memory: every key is forgotten after [`STATE_IDLE_NS`] without a flow, and no key keeps
//! more than a bounded set (distinct ports, hosts or start times are capped), so the state is
//! bounded by the number of hosts active in the last ten minutes.

#[cfg(test)]
use std::net::IpAddr;

use weir_wire::Class;

use crate::FlowRecord;

mod brute;
mod c2;
mod facts;
mod flood;
mod http;
mod payload;
mod scan;
mod state;
mod tunnel;

use facts::Facts;
#[cfg(test)]
use state::{Burst, Times};

/// The model alone raises no alert on a flow of fewer packets than this. One packet shows no
/// behaviour: scans and floods of single packets are the detectors' to judge, across flows,
/// and a lone packet's bytes are the payload signals' to judge. Lone odd or malformed packets
/// are what the model most often took for DoS (the robustness corpus, models/EVAL.md).
pub const MODEL_MIN_PACKETS: u64 = 2;

/// Whether the model's verdict on a flow of `packets` packets (both directions) may raise an
/// alert on its own ([`MODEL_MIN_PACKETS`]); a detector's finding alerts whatever its size.
pub fn model_may_alert(packets: u64) -> bool {
    packets >= MODEL_MIN_PACKETS
}

/// Which detector fired.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DetectorId {
    /// One source probing many ports of one host.
    PortScan,
    /// One source probing one service (or ICMP echo) on many hosts.
    Sweep,
    /// Many short authentication-sized sessions from one source to one service.
    BruteForce,
    /// A packet flood at one destination that it does not answer.
    Flood,
    /// Unsolicited answers of a reflection service (DNS, NTP, SSDP, ...) converging on one host.
    Reflection,
    /// Many HTTP requests started and never finished (Slowloris, slow headers/body).
    SlowDos,
    /// A burst of HTTP requests from one source to one server.
    HttpFlood,
    /// Connections at a regular interval to one service (C2 beaconing).
    Beacon,
    /// Queries for long encoded names to one DNS server: data tunnelled through DNS.
    DnsTunnel,
    /// A long-lived remote-control session: small messages both ways for minutes, to a
    /// service port that is not a well-known one.
    C2Session,
    /// An attack in a request's own bytes (injection, JNDI lookup, Shellshock, Heartbleed).
    Payload,
}

impl DetectorId {
    /// Its name in reports and the `behaviour` column.
    pub fn name(self) -> &'static str {
        match self {
            DetectorId::PortScan => "port_scan",
            DetectorId::Sweep => "sweep",
            DetectorId::BruteForce => "brute_force",
            DetectorId::Flood => "flood",
            DetectorId::Reflection => "reflection",
            DetectorId::SlowDos => "slow_dos",
            DetectorId::HttpFlood => "http_flood",
            DetectorId::Beacon => "beacon",
            DetectorId::Payload => "payload",
            DetectorId::DnsTunnel => "dns_tunnel",
            DetectorId::C2Session => "c2_session",
        }
    }
}

/// A behaviour detection attached to a flow.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Finding {
    /// The class it stands for.
    pub class: Class,
    /// The detector.
    pub detector: DetectorId,
    /// The evidence in words (counts and the service).
    pub evidence: String,
}

/// Forget a key after this long without a flow (10 min).
pub const STATE_IDLE_NS: i64 = 600 * 1_000_000_000;
/// Distinct ports of one host probed by one source that make a port scan. nmap's default
/// scan probes 1,000; no client opens probes (no payload either way) to 25 ports of one host.
pub const SCAN_PORTS: usize = 25;
/// Distinct hosts probed with ICMP echo by one source that make a sweep.
pub const SWEEP_HOSTS: usize = 16;
/// Distinct hosts probed on one TCP or UDP service by one source that make a sweep (more
/// than for ICMP: browsers and happy-eyeballs clients leave a trail of failed connections).
pub const SWEEP_SERVICE_HOSTS: usize = 32;
/// Short sessions with small payloads both ways from one source to one service that make a
/// brute force (hydra, medusa, ncrack, patator open one per few attempts).
pub const BRUTE_SESSIONS: usize = 12;
/// A session counts for a brute force only below this many forward payload bytes.
pub const BRUTE_MAX_FWD_BYTES: f64 = 16_384.0;
/// Unanswered packets at one destination within [`BURST_NS`] that make a flood.
pub const FLOOD_PACKETS: u64 = 2_000;
/// Unsolicited reflection-service answers at one destination within [`BURST_NS`].
pub const REFLECTION_FLOWS: u64 = 100;
/// Window of the flood and reflection counts (10 s).
pub const BURST_NS: i64 = 10 * 1_000_000_000;
/// Sources at one destination above which a flood is distributed (DDoS).
pub const DDOS_SOURCES: usize = 20;
/// HTTP requests sent and never answered, kept open at least [`SLOW_MIN_NS`], from one
/// source to one server (or from more than [`DDOS_SOURCES`] sources at one server).
pub const SLOW_SESSIONS: usize = 5;
/// How long an unanswered HTTP request must stay open to count as slow (5 s).
pub const SLOW_MIN_NS: i64 = 5 * 1_000_000_000;
/// HTTP sessions from one source to one server within [`HTTP_FLOOD_NS`] that make a flood,
/// when at least a quarter of that pair's requests went unanswered (the server gave way; a
/// busy API client gets its answers).
pub const HTTP_FLOOD_SESSIONS: usize = 80;
/// Window of the HTTP flood count (60 s).
pub const HTTP_FLOOD_NS: i64 = 60 * 1_000_000_000;
/// Connections to one service at a regular interval that make a beacon.
pub const BEACON_CONNECTIONS: usize = 8;
/// Largest coefficient of variation of the gaps between them (0.2: software timers, jitter
/// included; people and pages are irregular).
pub const BEACON_MAX_CV: f64 = 0.2;
/// Smallest mean gap of a beacon (2 s: faster is a client retrying, not a timer).
pub const BEACON_MIN_GAP_NS: f64 = 2e9;

/// Queries for long names (see `features::signal::DNS_LONG_NAME`) from one client to one DNS
/// server that make a tunnel; one lookup of an odd name is not.
pub const TUNNEL_QUERIES: u64 = 50;
/// A C2 session lasts at least this long (60 s) ...
pub const C2_MIN_NS: i64 = 60 * 1_000_000_000;
/// ... with at least this many client messages ...
pub const C2_MIN_MESSAGES: f64 = 10.0;
/// ... of at most this mean size (commands and heartbeats, not transfers).
pub const C2_MAX_MEAN_BYTES: f64 = 400.0;
/// Ports of well-known long-lived services that a C2 session is not (databases, chat,
/// push, remote desktops, proxies, IRC, SIP, VPNs).
pub const C2_ORDINARY_PORTS: [u16; 24] = [
    1080, 1194, 1433, 1521, 1723, 1883, 3128, 3306, 3389, 5060, 5061, 5222, 5223, 5228, 5432, 5900,
    5938, 6379, 6667, 6697, 8080, 8443, 8883, 27017,
];

/// Hosts one source sent SMB exploit requests to that make a worm.
pub const WORM_VICTIMS: usize = 3;

/// One detector: its own state over the flow stream and the rule that turns it into findings.
/// Every detector sees every flow, in stream order, whatever the detectors before it found
/// (each keeps its own counts); their order in [`detectors`] says whose finding a flow gets.
pub(crate) trait Detector: Send {
    /// Take in the next flow; a finding when it completes this detector's pattern, or
    /// belongs to one that already fired.
    fn observe(&mut self, f: &FlowRecord, x: &Facts) -> Option<Finding>;

    /// Forget the keys idle since `before` (ns); stateless detectors have none.
    fn expire(&mut self, _before: i64) {}
}

/// The detectors, in priority order: where several find something in the same flow, the
/// first one's finding is the flow's. From the most specific evidence to the least:
///
/// 1. worm: an exploit request seen against several hosts is more than the one exploit;
/// 2. payload: an attack in the flow's own bytes (it names the attack, not a pattern);
/// 3. port scan, 4. sweep: probes (what the flow is, not only what it is part of);
/// 5. reflection, 6. flood: volume at a victim;
/// 7. HTTP flood, 8. slow DoS: HTTP sessions the server cannot serve;
/// 9. brute force: many ordinary-looking login sessions;
/// 10. DNS tunnel: many odd queries to one resolver;
/// 11. C2 session, 12. beacon: long-lived or periodic traffic, the weakest evidence (a
///     flood or a scan can be periodic too).
fn detectors() -> Vec<Box<dyn Detector>> {
    vec![
        Box::<payload::Worm>::default(),
        Box::new(payload::Payload),
        Box::<scan::PortScan>::default(),
        Box::<scan::Sweep>::default(),
        Box::<flood::Reflection>::default(),
        Box::<flood::Flood>::default(),
        Box::<http::HttpFlood>::default(),
        Box::<http::SlowDos>::default(),
        Box::<brute::BruteForce>::default(),
        Box::<tunnel::DnsTunnel>::default(),
        Box::new(c2::C2Session),
        Box::<c2::Beacon>::default(),
    ]
}

fn finding(class: Class, detector: DetectorId, evidence: String) -> Option<Finding> {
    Some(Finding {
        class,
        detector,
        evidence,
    })
}

/// The detectors' state over a flow stream; see the module documentation.
pub struct BehaviourTracker {
    detectors: Vec<Box<dyn Detector>>,
    now: i64,
    seen_flows: u64,
}

impl Default for BehaviourTracker {
    fn default() -> Self {
        Self::new()
    }
}

impl BehaviourTracker {
    /// An empty tracker.
    pub fn new() -> Self {
        BehaviourTracker {
            detectors: detectors(),
            now: 0,
            seen_flows: 0,
        }
    }

    /// Feed the next flows (in the flow stage's output order); one verdict per flow.
    pub fn observe(&mut self, flows: &[FlowRecord]) -> Vec<Option<Finding>> {
        let out = flows.iter().map(|f| self.one(f)).collect();
        self.seen_flows += flows.len() as u64;
        if self.seen_flows >= 65_536 {
            self.seen_flows = 0;
            self.expire();
        }
        out
    }

    /// [`Self::observe`], writing each finding into its flow's `behaviour`.
    pub fn mark(&mut self, flows: &mut [FlowRecord]) {
        let found = self.observe(flows);
        for (f, v) in flows.iter_mut().zip(found) {
            f.behaviour = v;
        }
    }

    /// Drop keys idle for [`STATE_IDLE_NS`].
    fn expire(&mut self) {
        let before = self.now - STATE_IDLE_NS;
        for d in &mut self.detectors {
            d.expire(before);
        }
    }

    fn one(&mut self, f: &FlowRecord) -> Option<Finding> {
        let x = Facts::of(f);
        self.now = self.now.max(f.last_ts_ns);
        let mut found = None;
        for d in &mut self.detectors {
            let c = d.observe(f, &x);
            if found.is_none() {
                found = c;
            }
        }
        found
    }
}

#[cfg(test)]
mod tests;
