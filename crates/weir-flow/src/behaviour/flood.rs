//! Volume at a victim: packets it does not answer (a flood), or answers of an amplifying
//! service nobody there asked for (reflection).

use std::net::IpAddr;

use weir_wire::Class;

use super::facts::{unicast, Facts};
use super::state::{forget, Burst, Map};
use super::{
    finding, Detector, DetectorId, Finding, DDOS_SOURCES, FLOOD_PACKETS, REFLECTION_FLOWS,
};
use crate::FlowRecord;

/// UDP source ports of services that answer a small request with a large one (DNS, NTP,
/// chargen, SNMP, CLDAP, SSDP, memcached).
const REFLECTORS: [u16; 7] = [53, 123, 19, 161, 389, 1900, 11211];

/// Reflection: [`REFLECTION_FLOWS`] unsolicited answers at one host within 10 s from more
/// than [`DDOS_SOURCES`] reflectors.
#[derive(Default)]
pub(crate) struct Reflection {
    victims: Map<IpAddr, Burst>,
}

impl Detector for Reflection {
    fn observe(&mut self, f: &FlowRecord, _: &Facts) -> Option<Finding> {
        if !(f.proto == 17 && REFLECTORS.contains(&f.src_port)) {
            return None;
        }
        let b = self.victims.entry(f.dst_ip).or_default();
        let (n, srcs) = b.add(f.first_ts_ns, 1, f.src_ip);
        if !((n >= REFLECTION_FLOWS && srcs > DDOS_SOURCES) || b.fired) {
            return None;
        }
        b.fired = true;
        finding(
            Class::DDoS,
            DetectorId::Reflection,
            format!(
                "{n} unsolicited answers from port {} at {} within 10 s, more than {DDOS_SOURCES} reflectors",
                f.src_port, f.dst_ip
            ),
        )
    }

    fn expire(&mut self, before: i64) {
        forget(&mut self.victims, before);
    }
}

/// Flood: [`FLOOD_PACKETS`] packets at one destination within 10 s that it does not answer
/// (DDoS from more than [`DDOS_SOURCES`] sources, else DoS).
#[derive(Default)]
pub(crate) struct Flood {
    victims: Map<IpAddr, Burst>,
}

impl Detector for Flood {
    fn observe(&mut self, f: &FlowRecord, _: &Facts) -> Option<Finding> {
        if !(unicast(f.dst_ip) && f.packets_bwd * 20 <= f.packets_fwd) {
            return None;
        }
        let b = self.victims.entry(f.dst_ip).or_default();
        let (packets, srcs) = b.add(f.first_ts_ns, f.packets_fwd, f.src_ip);
        if packets < FLOOD_PACKETS && !b.fired {
            return None;
        }
        b.fired = true;
        let (class, who) = if srcs > DDOS_SOURCES {
            (Class::DDoS, format!("more than {DDOS_SOURCES} sources"))
        } else {
            (Class::DoS, format!("{srcs} source(s)"))
        };
        finding(
            class,
            DetectorId::Flood,
            format!(
                "{packets} unanswered packets at {} within 10 s from {who}",
                f.dst_ip
            ),
        )
    }

    fn expire(&mut self, before: i64) {
        forget(&mut self.victims, before);
    }
}
