//! What a flow's own sampled request bytes show ([`crate::features::signal`]): an attack in
//! one request (injection, JNDI lookup, Shellshock, Heartbleed, EternalBlue, DoublePulsar), and
//! the same SMB exploit from one host against several (a worm).

use std::net::IpAddr;

use weir_wire::Class;

use super::facts::Facts;
use super::state::{forget, Map, Seen};
use super::{finding, Detector, DetectorId, Finding, WORM_VICTIMS};
use crate::features::signal as sig;
use crate::FlowRecord;

/// A worm: the same SMB exploit from one host against several.
#[derive(Default)]
pub(crate) struct Worm {
    victims: Map<IpAddr, Seen<IpAddr>>,
}

impl Detector for Worm {
    fn observe(&mut self, f: &FlowRecord, _: &Facts) -> Option<Finding> {
        if f.signals & (sig::SMB_NT_TRANS_LARGE | sig::SMB_DOUBLEPULSAR) == 0 {
            return None;
        }
        let s = self.victims.entry(f.src_ip).or_default();
        let n = s.add(f.first_ts_ns, f.dst_ip);
        if n < WORM_VICTIMS && !s.fired {
            return None;
        }
        s.fired = true;
        finding(
            Class::Worms,
            DetectorId::Payload,
            format!(
                "{} sent SMB exploit requests (EternalBlue / DoublePulsar) to {n} hosts",
                f.src_ip
            ),
        )
    }

    fn expire(&mut self, before: i64) {
        forget(&mut self.victims, before);
    }
}

/// An attack in one flow's own request bytes; keeps no state.
pub(crate) struct Payload;

impl Detector for Payload {
    fn observe(&mut self, f: &FlowRecord, x: &Facts) -> Option<Finding> {
        let s = f.signals;
        // An encrypted heartbeat cannot be read, but a leak answers a small request with far
        // more than it sent.
        let leak =
            s & sig::HEARTBEAT != 0 && x.bwd_bytes >= 16_384.0 && x.bwd_bytes > 4.0 * x.fwd_bytes;
        let (class, what) = if s & sig::HEARTBEAT_OVERREAD != 0 || leak {
            (
                Class::Heartbleed,
                "TLS heartbeat requests answered with far more than they carried",
            )
        } else if s & sig::SMB_NT_TRANS_LARGE != 0 {
            (
                Class::Exploits,
                "an SMB1 NT Trans request announcing 64 KiB or more (EternalBlue)",
            )
        } else if s & sig::SMB_DOUBLEPULSAR != 0 {
            (
                Class::Backdoor,
                "an SMB1 Trans2 SESSION_SETUP request (DoublePulsar)",
            )
        } else if s & sig::JNDI != 0 {
            (
                Class::Exploits,
                "a JNDI lookup string in the request (Log4Shell)",
            )
        } else if s & sig::SHELLSHOCK != 0 && x.http_request() {
            (
                Class::Exploits,
                "a bash function definition in an HTTP request (Shellshock)",
            )
        } else if !x.http_request() {
            return None;
        } else if s & sig::SQLI != 0 {
            (Class::WebSqlInjection, "SQL injection in an HTTP request")
        } else if s & sig::XSS != 0 {
            (Class::WebXss, "script injection in an HTTP request")
        } else if s & (sig::TRAVERSAL | sig::SHELL) != 0 {
            (
                Class::Exploits,
                "path traversal or a shell path in an HTTP request",
            )
        } else {
            return None;
        };
        finding(
            class,
            DetectorId::Payload,
            format!(
                "{what}: {}:{} -> {}:{}",
                f.src_ip, f.src_port, f.dst_ip, f.dst_port
            ),
        )
    }
}
