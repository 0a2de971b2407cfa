//! A compromised host and its controller: a long session of small messages to an unusual
//! port (a C2 session), or connections to one Internet service at a regular interval (a
//! beacon).

use weir_wire::Class;

use super::facts::{public, unicast, Facts};
use super::state::{forget, Map, Svc, Times};
use super::{
    finding, Detector, DetectorId, Finding, BEACON_CONNECTIONS, BEACON_MAX_CV, BEACON_MIN_GAP_NS,
    C2_MAX_MEAN_BYTES, C2_MIN_MESSAGES, C2_MIN_NS, C2_ORDINARY_PORTS,
};
use crate::FlowRecord;

/// C2 session: at least [`C2_MIN_NS`] long, [`C2_MIN_MESSAGES`] client messages and as many
/// answers, of at most [`C2_MAX_MEAN_BYTES`] on average, to a port that is not an ordinary
/// long-lived service's; keeps no state.
pub(crate) struct C2Session;

impl Detector for C2Session {
    fn observe(&mut self, f: &FlowRecord, x: &Facts) -> Option<Finding> {
        let session = f.proto == 6
            && f.last_ts_ns - f.first_ts_ns >= C2_MIN_NS
            && x.fwd_data >= C2_MIN_MESSAGES
            && x.bwd_packets >= C2_MIN_MESSAGES
            && x.fwd_bytes / x.fwd_data.max(1.0) <= C2_MAX_MEAN_BYTES
            && f.dst_port >= 1024
            && f.src_port > f.dst_port
            && !C2_ORDINARY_PORTS.contains(&f.dst_port)
            && &x.head != b"SSH-"
            && unicast(f.dst_ip);
        if !session {
            return None;
        }
        finding(
            Class::Backdoor,
            DetectorId::C2Session,
            format!(
                "{} held a {:.0} s session of {} small messages with {}:{}",
                f.src_ip,
                x.duration_ns / 1e9,
                x.fwd_data,
                f.dst_ip,
                f.dst_port
            ),
        )
    }
}

/// Gaps between sorted start times: (mean, coefficient of variation).
fn regularity(mut s: Vec<i64>) -> (f64, f64) {
    s.sort_unstable();
    let gaps: Vec<f64> = s.windows(2).map(|w| (w[1] - w[0]) as f64).collect();
    if gaps.is_empty() {
        return (0.0, f64::INFINITY);
    }
    let mean = gaps.iter().sum::<f64>() / gaps.len() as f64;
    let var = gaps.iter().map(|g| (g - mean).powi(2)).sum::<f64>() / gaps.len() as f64;
    (
        mean,
        if mean > 0.0 {
            var.sqrt() / mean
        } else {
            f64::INFINITY
        },
    )
}

/// Beacon: [`BEACON_CONNECTIONS`] connections with payload to one service on the Internet,
/// at most [`BEACON_MAX_CV`] variation in their gaps, at least [`BEACON_MIN_GAP_NS`] apart
/// (inside a network, regular connections are health checks and scrapes).
#[derive(Default)]
pub(crate) struct Beacon {
    starts: Map<Svc, Times>,
}

impl Detector for Beacon {
    fn observe(&mut self, f: &FlowRecord, x: &Facts) -> Option<Finding> {
        let tcp_udp = f.proto == 6 || f.proto == 17;
        if !(tcp_udp && x.fwd_bytes > 0.0 && public(f.dst_ip) && f.dst_port != 53) {
            return None;
        }
        let s = self
            .starts
            .entry((f.src_ip, f.dst_ip, f.proto, f.dst_port))
            .or_default();
        let n = s.add(f.first_ts_ns, 0);
        if n < BEACON_CONNECTIONS && !s.fired {
            return None;
        }
        let recent: Vec<i64> = s.starts.iter().rev().take(64).map(|s| s.0).collect();
        let (gap, cv) = regularity(recent);
        if !(s.fired || (cv <= BEACON_MAX_CV && gap >= BEACON_MIN_GAP_NS)) {
            return None;
        }
        s.fired = true;
        finding(
            Class::Bot,
            DetectorId::Beacon,
            format!(
                "{n} connections from {} to {}:{} every {:.1} s (variation {:.0}%)",
                f.src_ip,
                f.dst_ip,
                f.dst_port,
                gap / 1e9,
                cv * 100.0
            ),
        )
    }

    fn expire(&mut self, before: i64) {
        forget(&mut self.starts, before);
    }
}
