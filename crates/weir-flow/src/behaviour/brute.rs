//! Password guessing: many short sessions that both sides talked in, from one source to one
//! authentication service.

use weir_wire::Class;

use super::facts::Facts;
use super::state::{forget, Map, Svc, Times};
use super::{finding, Detector, DetectorId, Finding, BRUTE_MAX_FWD_BYTES, BRUTE_SESSIONS};
use crate::FlowRecord;

/// The authentication service a session talks to, from its first client bytes, else its port.
fn auth_service(head: &[u8; 4], port: u16) -> Option<Class> {
    match head {
        b"SSH-" => Some(Class::SshPatator),
        b"USER" | b"user" => Some(Class::FtpPatator),
        // Not POST: API clients post small requests all day.
        _ => match port {
            22 => Some(Class::SshPatator),
            21 => Some(Class::FtpPatator),
            _ => None,
        },
    }
}

/// Brute force: [`BRUTE_SESSIONS`] sessions under [`BRUTE_MAX_FWD_BYTES`] client bytes, with
/// an answer, from one source to one SSH or FTP service.
#[derive(Default)]
pub(crate) struct BruteForce {
    sessions: Map<Svc, Times>,
}

impl Detector for BruteForce {
    fn observe(&mut self, f: &FlowRecord, x: &Facts) -> Option<Finding> {
        if !(f.proto == 6
            && x.fwd_bytes > 0.0
            && x.bwd_bytes > 0.0
            && x.fwd_bytes < BRUTE_MAX_FWD_BYTES)
        {
            return None;
        }
        let class = auth_service(&x.head, f.dst_port)?;
        let s = self
            .sessions
            .entry((f.src_ip, f.dst_ip, f.proto, f.dst_port))
            .or_default();
        let n = s.add(f.first_ts_ns, 0);
        if n < BRUTE_SESSIONS && !s.fired {
            return None;
        }
        s.fired = true;
        finding(
            class,
            DetectorId::BruteForce,
            format!(
                "{n} short login sessions from {} to {}:{}",
                f.src_ip, f.dst_ip, f.dst_port
            ),
        )
    }

    fn expire(&mut self, before: i64) {
        forget(&mut self.sessions, before);
    }
}
