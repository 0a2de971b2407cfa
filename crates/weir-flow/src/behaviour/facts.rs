//! What the detectors read of one flow, and the address and flow shapes they share.

use std::net::IpAddr;

use crate::features::ix;
use crate::FlowRecord;

/// What the detectors read of one flow, read once for all of them.
pub(crate) struct Facts {
    pub fwd_bytes: f64,
    pub bwd_bytes: f64,
    /// The client's first four payload bytes.
    pub head: [u8; 4],
    pub duration_ns: f64,
    pub fwd_data: f64,
    pub bwd_packets: f64,
}

impl Facts {
    pub fn of(f: &FlowRecord) -> Self {
        let mut head = [0u8; 4];
        for (i, h) in head.iter_mut().enumerate() {
            let v = f.features[ix::FWD_PAYLOAD_BYTE_0 + i];
            *h = if (0.0..=255.0).contains(&v) {
                v as u8
            } else {
                0
            };
        }
        Facts {
            fwd_bytes: f.features[ix::TOTAL_LENGTH_OF_FWD_PACKET].max(0.0),
            bwd_bytes: f.features[ix::TOTAL_LENGTH_OF_BWD_PACKET].max(0.0),
            head,
            duration_ns: f.features[ix::FLOW_DURATION].max(0.0) * 1e3,
            fwd_data: f.features[ix::FWD_ACT_DATA_PKTS].max(0.0),
            bwd_packets: f.features[ix::TOTAL_BWD_PACKETS].max(0.0),
        }
    }

    /// The client's first bytes are an HTTP request line.
    pub fn http_request(&self) -> bool {
        matches!(&self.head, b"GET " | b"POST" | b"HEAD" | b"PUT " | b"OPTI")
    }
}

/// Not a multicast or broadcast address.
pub(crate) fn unicast(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(a) => !(a.is_multicast() || a.is_broadcast() || a.octets()[3] == 255),
        IpAddr::V6(a) => !a.is_multicast(),
    }
}

/// A routable Internet address (not private, loopback, link-local, CGNAT, reserved or
/// multicast).
pub(crate) fn public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(a) => {
            let o = a.octets();
            !(a.is_private()
                || a.is_loopback()
                || a.is_link_local()
                || a.is_multicast()
                || a.is_broadcast()
                || a.is_unspecified()
                || (o[0] == 100 && o[1] & 0xc0 == 64)
                || o[0] >= 240)
        }
        IpAddr::V6(a) => {
            let s = a.segments()[0];
            !(a.is_loopback()
                || a.is_multicast()
                || a.is_unspecified()
                || s & 0xfe00 == 0xfc00
                || s & 0xffc0 == 0xfe80)
        }
    }
}

/// A probe: a flow that carried no payload either way and at most three packets out (a SYN
/// and its retries, an empty datagram, an echo request).
pub(crate) fn probe(f: &FlowRecord, x: &Facts) -> bool {
    x.fwd_bytes == 0.0 && x.bwd_bytes == 0.0 && f.packets_fwd <= 3
}

/// A flow from a well-known service port to an ephemeral one: a server's answer whose start
/// the flow table did not see (a SYN-ACK or RST after the client's odd packet), not a probe of
/// the ephemeral port. Scanners send from ephemeral ports.
pub(crate) fn answer_like(f: &FlowRecord) -> bool {
    (1..1024).contains(&f.src_port) && f.dst_port >= 1024
}
