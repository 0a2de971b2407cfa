//! Data through DNS: many queries for long encoded names from one client to one server.

use weir_wire::Class;

use super::facts::Facts;
use super::state::{forget, Burst, Map, Svc};
use super::{finding, Detector, DetectorId, Finding, TUNNEL_QUERIES};
use crate::features::signal;
use crate::FlowRecord;

/// DNS tunnel: [`TUNNEL_QUERIES`] queries for long names (`signal::DNS_LONG_NAME`) from one
/// client to one DNS server.
#[derive(Default)]
pub(crate) struct DnsTunnel {
    queries: Map<Svc, Burst>,
}

impl Detector for DnsTunnel {
    fn observe(&mut self, f: &FlowRecord, _: &Facts) -> Option<Finding> {
        if !(f.dst_port == 53 && f.signals & signal::DNS_LONG_NAME != 0) {
            return None;
        }
        // Counted over the key's life (forgotten after 10 minutes idle), not a burst.
        let b = self
            .queries
            .entry((f.src_ip, f.dst_ip, f.proto, f.dst_port))
            .or_default();
        b.last = b.last.max(f.first_ts_ns);
        b.packets += f.packets_fwd;
        let n = b.packets;
        if n < TUNNEL_QUERIES && !b.fired {
            return None;
        }
        b.fired = true;
        finding(
            Class::Infiltration,
            DetectorId::DnsTunnel,
            format!(
                "{n} queries for long encoded names from {} to DNS server {}",
                f.src_ip, f.dst_ip
            ),
        )
    }

    fn expire(&mut self, before: i64) {
        forget(&mut self.queries, before);
    }
}
