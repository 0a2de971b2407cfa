//! HTTP denial of service: a burst of requests the server no longer keeps up with (an HTTP
//! flood), or requests sent, never answered and held open (slow DoS).

use std::net::IpAddr;

use weir_wire::Class;

use super::facts::Facts;
use super::state::{forget, Map, Seen, Svc, Times};
use super::{
    finding, Detector, DetectorId, Finding, DDOS_SOURCES, HTTP_FLOOD_NS, HTTP_FLOOD_SESSIONS,
    SLOW_MIN_NS, SLOW_SESSIONS,
};
use crate::FlowRecord;

/// A TCP flow whose client sent an HTTP request line.
fn http_request(f: &FlowRecord, x: &Facts) -> bool {
    f.proto == 6 && x.fwd_bytes > 0.0 && x.http_request()
}

/// HTTP flood: [`HTTP_FLOOD_SESSIONS`] sessions from one source to one server within 60 s, a
/// quarter of them unanswered.
#[derive(Default)]
pub(crate) struct HttpFlood {
    sessions: Map<Svc, Times>,
}

impl Detector for HttpFlood {
    fn observe(&mut self, f: &FlowRecord, x: &Facts) -> Option<Finding> {
        if !http_request(f, x) {
            return None;
        }
        let s = self
            .sessions
            .entry((f.src_ip, f.dst_ip, f.proto, f.dst_port))
            .or_default();
        let n = s.add_flagged(f.first_ts_ns, HTTP_FLOOD_NS, x.bwd_bytes == 0.0);
        let unanswered = s.flagged;
        if !((n >= HTTP_FLOOD_SESSIONS && unanswered * 4 >= n) || s.fired) {
            return None;
        }
        s.fired = true;
        finding(
            Class::DoSHulk,
            DetectorId::HttpFlood,
            format!(
                "{n} HTTP sessions from {} to {}:{} within 60 s, {unanswered} unanswered",
                f.src_ip, f.dst_ip, f.dst_port
            ),
        )
    }

    fn expire(&mut self, before: i64) {
        forget(&mut self.sessions, before);
    }
}

/// Slow DoS: [`SLOW_SESSIONS`] unanswered HTTP requests held open at least [`SLOW_MIN_NS`] from
/// one source to one server, or from more than [`DDOS_SOURCES`] sources at one server (DDoS).
#[derive(Default)]
pub(crate) struct SlowDos {
    sessions: Map<Svc, Times>,
    sources: Map<(IpAddr, u16), Seen<IpAddr>>,
}

impl Detector for SlowDos {
    fn observe(&mut self, f: &FlowRecord, x: &Facts) -> Option<Finding> {
        let t = f.first_ts_ns;
        if !(http_request(f, x) && x.bwd_bytes == 0.0 && f.last_ts_ns - t >= SLOW_MIN_NS) {
            return None;
        }
        let s = self
            .sessions
            .entry((f.src_ip, f.dst_ip, f.proto, f.dst_port))
            .or_default();
        let n = s.add(t, 0);
        let d = self.sources.entry((f.dst_ip, f.dst_port)).or_default();
        let m = d.add(t, f.src_ip);
        let per_dst = d.fired || m > DDOS_SOURCES;
        if !(n >= SLOW_SESSIONS || s.fired || per_dst) {
            return None;
        }
        s.fired = true;
        let class = if m > DDOS_SOURCES {
            Class::DDoS
        } else {
            Class::DoSSlowloris
        };
        d.fired |= m > DDOS_SOURCES;
        finding(
            class,
            DetectorId::SlowDos,
            format!(
                "{n} HTTP requests from {} to {}:{} held open unanswered ({m} sources at that server)",
                f.src_ip, f.dst_ip, f.dst_port
            ),
        )
    }

    fn expire(&mut self, before: i64) {
        forget(&mut self.sessions, before);
        forget(&mut self.sources, before);
    }
}
