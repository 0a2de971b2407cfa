//! A capture's summary (`captures/ID/summary.json`): what the aggregator writes, the API serves
//! and the dashboard shows.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Flows, packets, bytes and alerts of one key (an address, a time bucket).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Tally {
    /// The key: an address, or a timeline bucket's start (RFC 3339, UTC).
    pub key: String,
    /// Flows.
    pub flows: u64,
    /// Packets, both directions.
    #[serde(default)]
    pub packets: u64,
    /// Bytes on the wire, both directions.
    pub bytes: u64,
    /// Flows that raised an alert.
    pub alerts: u64,
}

impl Tally {
    /// Add another key's counts.
    pub fn add(&mut self, o: &Tally) {
        self.flows += o.flows;
        self.packets += o.packets;
        self.bytes += o.bytes;
        self.alerts += o.alerts;
    }
}

/// A service (protocol and port, or ICMP type and code) and the flows that used it in either
/// direction: to it (the responder's port: a server) and from it (the initiator's port: what a
/// reflector answering from udp/53 or udp/123 shows).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Service {
    /// `tcp/22`, `udp/53`, `icmp type 8 code 0`, `gre`.
    pub service: String,
    /// The protocol alone: `tcp`, `udp`, `icmp`, `gre`.
    #[serde(default)]
    pub proto: String,
    /// The port, for protocols with ports.
    #[serde(default)]
    pub port: Option<u16>,
    /// Flows whose responder used it.
    pub flows_to: u64,
    /// Flows whose initiator used it.
    pub flows_from: u64,
    /// Packets of those flows.
    pub packets: u64,
    /// Bytes of those flows.
    pub bytes: u64,
    /// Those flows that raised an alert.
    pub alerts: u64,
}

/// Alerts of one class grouped the way an analyst reads them: one attacker and its victims
/// (a scan, a brute force), or one victim and its attackers (a DDoS, a reflection flood).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct AlertGroup {
    /// The class the model gave these flows.
    pub class: String,
    /// Sources (initiators), the most active first, at most the aggregator's `GROUP_NAMES` (5).
    pub attackers: Vec<String>,
    /// How many distinct sources.
    pub attacker_count: u64,
    /// Destinations (responders), the most hit first, at most the aggregator's `GROUP_NAMES` (5).
    pub victims: Vec<String>,
    /// How many distinct destinations.
    pub victim_count: u64,
    /// What was attacked: `tcp/22`, `from udp/53` (answers from that port: reflection), or
    /// `9,998 tcp ports` when no one service dominates.
    pub service: String,
    /// Distinct destination services.
    pub services: u64,
    /// Flows.
    pub flows: u64,
    /// Packets.
    pub packets: u64,
    /// Bytes.
    pub bytes: u64,
    /// First packet of the first flow (RFC 3339, UTC).
    pub first: String,
    /// Last packet of the last flow (RFC 3339, UTC).
    pub last: String,
    /// Highest class probability among the flows.
    pub max_probability: f64,
    /// The strongest evidence of a host-behaviour detector for this group (the latest, so
    /// the largest counts), empty when only the model flagged it.
    #[serde(default)]
    pub evidence: String,
    /// The group in one line: `Port Scan: 192.168.1.7 -> 192.168.1.1 on 10,000 tcp ports, ...`.
    pub line: String,
}

/// A capture's summary, stored at `captures/ID/summary.json`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct CaptureSummary {
    /// Capture id.
    pub capture: String,
    /// Flows.
    pub flows: u64,
    /// Flows that raised an alert (class not Normal, at or above the alert threshold).
    pub alerts: u64,
    /// The incidents: alerts grouped by class and attacker or victim, with the behaviour
    /// detectors' evidence, the most flows first, at most the aggregator's `TOP` (10).
    #[serde(default)]
    pub alert_groups: Vec<AlertGroup>,
    /// First packet of the capture's flows (RFC 3339, UTC; empty without flows).
    #[serde(default)]
    pub first: String,
    /// Last packet (RFC 3339, UTC).
    #[serde(default)]
    pub last: String,
    /// Flows per predicted class.
    pub classes: BTreeMap<String, u64>,
    /// Sources (initiators) with the most flows.
    #[serde(default)]
    pub top_sources: Vec<Tally>,
    /// Destinations (responders) with the most flows.
    #[serde(default)]
    pub top_destinations: Vec<Tally>,
    /// Services with the most flows, either direction.
    #[serde(default)]
    pub top_services: Vec<Service>,
    /// Flows per time bucket of first packet (key: the bucket's start, RFC 3339), at most
    /// the aggregator's `TIMELINE_BUCKETS` (1,440) buckets: minutes, or hours or days for longer captures.
    pub timeline: Vec<Tally>,
    /// Width of a timeline bucket in seconds (60, 3600 or 86400).
    #[serde(default)]
    pub timeline_bucket_s: u64,
    /// Mean anomaly score (energy; see the model card).
    pub anomaly_mean: f64,
    /// Flows whose anomaly score is above the aggregator's `UNUSUAL_PERCENTILE` (99) of benign training flows.
    #[serde(default)]
    pub unusual_flows: u64,
    /// Highest anomaly score.
    pub anomaly_max: f64,
    /// The most confident alerts (highest class probability, then anomaly), at most the aggregator's `TOP` (10).
    #[serde(default)]
    pub top_alerts: Vec<Alert>,
}

/// One alert of a capture's summary.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Alert {
    /// Predicted class.
    pub class: String,
    /// Its probability.
    pub probability: f64,
    /// Anomaly score (energy).
    pub anomaly: f64,
    /// The anomaly score as a percentile of benign training flows (0-100; none for a model
    /// without a benign reference).
    #[serde(default)]
    pub anomaly_percentile: Option<f64>,
    /// `TCP SRC:PORT -> DST:PORT`, or `ICMP SRC -> DST type T code C`.
    pub flow: String,
    /// Packets, both directions.
    pub packets: u64,
    /// Community ID of the flow.
    pub community_id: String,
    /// First packet (RFC 3339, UTC).
    pub first: String,
}
