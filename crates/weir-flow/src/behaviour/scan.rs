//! Probes: one source probing many ports of one host (a port scan), or one service (or ICMP
//! echo) on many hosts (a sweep).

use std::net::IpAddr;

use weir_wire::Class;

use super::facts::{answer_like, probe, unicast, Facts};
use super::state::{forget, Map, Pair, Seen};
use super::{finding, Detector, DetectorId, Finding, SCAN_PORTS, SWEEP_HOSTS, SWEEP_SERVICE_HOSTS};
use crate::FlowRecord;

/// A port scan: probes to [`SCAN_PORTS`] ports of one host.
#[derive(Default)]
pub(crate) struct PortScan {
    ports: Map<Pair, Seen<(u8, u16)>>,
}

impl Detector for PortScan {
    fn observe(&mut self, f: &FlowRecord, x: &Facts) -> Option<Finding> {
        let tcp_udp = f.proto == 6 || f.proto == 17;
        if !(probe(f, x) && unicast(f.dst_ip) && tcp_udp && !answer_like(f)) {
            return None;
        }
        let s = self.ports.entry((f.src_ip, f.dst_ip)).or_default();
        let n = s.add(f.first_ts_ns, (f.proto, f.dst_port));
        if n < SCAN_PORTS && !s.fired {
            return None;
        }
        s.fired = true;
        finding(
            Class::PortScan,
            DetectorId::PortScan,
            format!("{} probed {n} ports of {}", f.src_ip, f.dst_ip),
        )
    }

    fn expire(&mut self, before: i64) {
        forget(&mut self.ports, before);
    }
}

/// A sweep: probes of one service to [`SWEEP_SERVICE_HOSTS`] hosts, or ICMP echo to
/// [`SWEEP_HOSTS`].
#[derive(Default)]
pub(crate) struct Sweep {
    hosts: Map<(IpAddr, u8, u16), Seen<IpAddr>>,
}

impl Detector for Sweep {
    fn observe(&mut self, f: &FlowRecord, x: &Facts) -> Option<Finding> {
        let tcp_udp = f.proto == 6 || f.proto == 17;
        let icmp = f.proto == 1 || f.proto == 58;
        let echo = icmp && (f.src_port == 8 || f.src_port == 128);
        if !(probe(f, x) && unicast(f.dst_ip) && (tcp_udp || echo)) {
            return None;
        }
        let port = if echo { 0 } else { f.dst_port };
        let s = self.hosts.entry((f.src_ip, f.proto, port)).or_default();
        let n = s.add(f.first_ts_ns, f.dst_ip);
        let need = if echo {
            SWEEP_HOSTS
        } else {
            SWEEP_SERVICE_HOSTS
        };
        if n < need && !s.fired {
            return None;
        }
        s.fired = true;
        let what = if echo {
            "ICMP echo".to_string()
        } else {
            format!("{}/{}", crate::proto_name(f.proto), f.dst_port)
        };
        finding(
            Class::Reconnaissance,
            DetectorId::Sweep,
            format!("{} probed {what} on {n} hosts", f.src_ip),
        )
    }

    fn expire(&mut self, before: i64) {
        forget(&mut self.hosts, before);
    }
}
