//! L2–L4 decoding: link layer (Ethernet, VLAN/QinQ, MPLS, PPPoE, Linux SLL/SLL2, BSD
//! null/loopback, raw IP), IPv4 (options) and IPv6 (extension headers) through `etherparse`,
//! tunnels (IP-in-IP, 6in4, GRE, VXLAN, Geneve) decapsulated to the inner packet, and
//! TCP/UDP/ICMP/ICMPv6 headers.
//!
//! Decoding never panics and never allocates: every failure is a [`SkipReason`].

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use etherparse::{IpNumber, LaxIpSlice};

use crate::reader::linktype;

/// TCP FIN flag bit.
pub const FLAG_FIN: u8 = 0x01;
/// TCP SYN flag bit.
pub const FLAG_SYN: u8 = 0x02;
/// TCP RST flag bit.
pub const FLAG_RST: u8 = 0x04;
/// TCP PSH flag bit.
pub const FLAG_PSH: u8 = 0x08;
/// TCP ACK flag bit.
pub const FLAG_ACK: u8 = 0x10;
/// TCP URG flag bit.
pub const FLAG_URG: u8 = 0x20;
/// TCP ECE flag bit.
pub const FLAG_ECE: u8 = 0x40;
/// TCP CWR flag bit.
pub const FLAG_CWR: u8 = 0x80;

/// Why a packet did not become part of a flow. Every skipped packet is counted under one reason.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SkipReason {
    /// The interface's link type is not one weir decodes.
    UnsupportedLinkType,
    /// A link-layer frame that carries no IP (ARP, LLDP, STP, ...).
    NonIp,
    /// The packet was cut short (snap length or damage) before the headers weir needs.
    Truncated,
    /// A header field is impossible (bad IP version, header length, ...).
    Malformed,
    /// A non-first IP fragment (the flow layer may still attribute it).
    Fragment,
}

impl SkipReason {
    /// All reasons, in a stable order (for reports).
    pub const ALL: [SkipReason; 5] = [
        SkipReason::UnsupportedLinkType,
        SkipReason::NonIp,
        SkipReason::Truncated,
        SkipReason::Malformed,
        SkipReason::Fragment,
    ];

    /// A short snake_case name, used in summaries and JSON.
    pub fn name(self) -> &'static str {
        match self {
            SkipReason::UnsupportedLinkType => "unsupported_link_type",
            SkipReason::NonIp => "non_ip",
            SkipReason::Truncated => "truncated",
            SkipReason::Malformed => "malformed",
            SkipReason::Fragment => "fragment",
        }
    }
}

/// A tunnel the packet was decapsulated from (the outermost one).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Tunnel {
    /// IPv4 or IPv6 inside IPv4/IPv6 (protocols 4 and 41, incl. 6in4).
    IpInIp,
    /// GRE (protocol 47).
    Gre,
    /// VXLAN (UDP 4789).
    Vxlan,
    /// Geneve (UDP 6081).
    Geneve,
}

/// IP fragmentation state of a packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Fragment {
    /// Not fragmented.
    No,
    /// First fragment (offset 0, more fragments follow): carries the transport header.
    First {
        /// IP identification.
        id: u32,
    },
    /// A later fragment: no transport header; `sport`/`dport` are 0.
    Later {
        /// IP identification.
        id: u32,
        /// More fragments follow.
        more: bool,
    },
}

/// The headers of one decoded packet.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Decoded<'a> {
    /// Outermost 802.1Q VLAN id, 0 when untagged.
    pub vlan: u16,
    /// Source address (innermost IP header).
    pub src: IpAddr,
    /// Destination address.
    pub dst: IpAddr,
    /// IP protocol number of the transport (after IPv6 extension headers).
    pub proto: u8,
    /// Source port; ICMP type for ICMP/ICMPv6; 0 for other protocols.
    pub sport: u16,
    /// Destination port; ICMP code for ICMP/ICMPv6; 0 for other protocols.
    pub dport: u16,
    /// IP TTL / hop limit.
    pub ttl: u8,
    /// Length of the transport header (TCP incl. options, UDP 8, ICMP 8 or 4); 0 when none.
    pub l4_header_len: u16,
    /// Transport payload length as stated by the IP header (wire size, not captured size).
    pub payload_len: u32,
    /// The captured part of the transport payload.
    pub payload: &'a [u8],
    /// TCP flags (FLAG_*), 0 for other protocols.
    pub tcp_flags: u8,
    /// TCP window (unscaled).
    pub tcp_window: u16,
    /// IP fragmentation.
    pub fragment: Fragment,
    /// Outermost tunnel this packet was decapsulated from.
    pub tunnel: Option<Tunnel>,
}

/// Result of decoding one frame.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decode<'a> {
    /// An IP packet.
    Packet(Decoded<'a>),
    /// Not usable for flows, with the reason.
    Skip(SkipReason),
}

const ETH_IPV4: u16 = 0x0800;
const ETH_IPV6: u16 = 0x86dd;
const ETH_VLAN: u16 = 0x8100;
const ETH_QINQ: u16 = 0x88a8;
const ETH_QINQ_OLD: u16 = 0x9100;
const ETH_MPLS_UC: u16 = 0x8847;
const ETH_MPLS_MC: u16 = 0x8848;
const ETH_PPPOE_SESS: u16 = 0x8864;
const ETH_TEB: u16 = 0x6558;

/// How deep tunnels and encapsulations may nest before a packet is called malformed.
const MAX_DEPTH: u8 = 6;

#[inline]
fn be16(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes([*b.get(at)?, *b.get(at + 1)?]))
}

/// Decode a captured frame of the given link type.
pub fn decode(linktype: u32, data: &[u8]) -> Decode<'_> {
    let mut vlan = 0u16;
    let r = match linktype {
        linktype::ETHERNET => ethernet(data, &mut vlan, 0),
        linktype::RAW | linktype::RAW_BSD | linktype::RAW_OPENBSD => ip_any(data, 0),
        linktype::IPV4 | linktype::IPV6 => ip_any(data, 0),
        linktype::LINUX_SLL => match be16(data, 14) {
            Some(proto) => ethertype(proto, data.get(16..).unwrap_or(&[]), &mut vlan, 0),
            None => Err(SkipReason::Truncated),
        },
        linktype::LINUX_SLL2 => match be16(data, 0) {
            Some(proto) if data.len() >= 20 => ethertype(proto, &data[20..], &mut vlan, 0),
            _ => Err(SkipReason::Truncated),
        },
        linktype::NULL | linktype::LOOP => {
            if data.len() < 4 {
                Err(SkipReason::Truncated)
            } else {
                let le = u32::from_le_bytes([data[0], data[1], data[2], data[3]]);
                let be = u32::from_be_bytes([data[0], data[1], data[2], data[3]]);
                // AF_INET is 2 everywhere; AF_INET6 is 24, 28 or 30 depending on the BSD.
                let family = if linktype == linktype::LOOP {
                    be
                } else if le < 256 {
                    le
                } else {
                    be
                };
                match family {
                    2 | 24 | 28 | 30 => ip_any(&data[4..], 0),
                    _ => Err(SkipReason::NonIp),
                }
            }
        }
        _ => Err(SkipReason::UnsupportedLinkType),
    };
    match r {
        Ok(mut d) => {
            d.vlan = vlan;
            Decode::Packet(d)
        }
        Err(e) => Decode::Skip(e),
    }
}

fn ethernet<'a>(data: &'a [u8], vlan: &mut u16, depth: u8) -> Result<Decoded<'a>, SkipReason> {
    let Some(et) = be16(data, 12) else {
        return Err(SkipReason::Truncated);
    };
    ethertype(et, &data[14..], vlan, depth)
}

fn ethertype<'a>(
    mut et: u16,
    mut rest: &'a [u8],
    vlan: &mut u16,
    depth: u8,
) -> Result<Decoded<'a>, SkipReason> {
    if depth > MAX_DEPTH {
        return Err(SkipReason::Malformed);
    }
    loop {
        match et {
            ETH_VLAN | ETH_QINQ | ETH_QINQ_OLD => {
                let (Some(tci), Some(next)) = (be16(rest, 0), be16(rest, 2)) else {
                    return Err(SkipReason::Truncated);
                };
                if *vlan == 0 {
                    *vlan = tci & 0x0fff;
                }
                et = next;
                rest = &rest[4..];
            }
            ETH_IPV4 | ETH_IPV6 => return ip_any(rest, depth),
            ETH_MPLS_UC | ETH_MPLS_MC => return mpls(rest, vlan, depth),
            ETH_PPPOE_SESS => {
                // PPPoE header (6 bytes) then the 2-byte PPP protocol.
                let Some(ppp) = be16(rest, 6) else {
                    return Err(SkipReason::Truncated);
                };
                return match ppp {
                    0x0021 | 0x0057 => ip_any(&rest[8..], depth),
                    _ => Err(SkipReason::NonIp),
                };
            }
            _ => return Err(SkipReason::NonIp),
        }
    }
}

fn mpls<'a>(mut rest: &'a [u8], vlan: &mut u16, depth: u8) -> Result<Decoded<'a>, SkipReason> {
    for _ in 0..16 {
        if rest.len() < 4 {
            return Err(SkipReason::Truncated);
        }
        let bottom = rest[2] & 0x01 != 0;
        rest = &rest[4..];
        if bottom {
            let Some(&first) = rest.first() else {
                return Err(SkipReason::Truncated);
            };
            return match first >> 4 {
                4 | 6 => ip_any(rest, depth + 1),
                // Pseudowire control word, then an Ethernet frame.
                0 if rest.len() >= 4 => ethernet(&rest[4..], vlan, depth + 1),
                _ => Err(SkipReason::NonIp),
            };
        }
    }
    Err(SkipReason::Malformed)
}

fn ip_any(data: &[u8], depth: u8) -> Result<Decoded<'_>, SkipReason> {
    if depth > MAX_DEPTH {
        return Err(SkipReason::Malformed);
    }
    let ip = match LaxIpSlice::from_slice(data) {
        Ok((ip, _ext_err)) => ip,
        Err(etherparse::err::ip::LaxHeaderSliceError::Len(_)) => return Err(SkipReason::Truncated),
        Err(etherparse::err::ip::LaxHeaderSliceError::Content(_)) => {
            return Err(SkipReason::Malformed)
        }
    };
    let (src, dst, ttl, fragment) = match &ip {
        LaxIpSlice::Ipv4(v4) => {
            let h = v4.header();
            let off = h.fragments_offset().value();
            let more = h.more_fragments();
            let id = u32::from(h.identification());
            let frag = if off != 0 {
                Fragment::Later { id, more }
            } else if more {
                Fragment::First { id }
            } else {
                Fragment::No
            };
            (
                IpAddr::V4(Ipv4Addr::from(h.source())),
                IpAddr::V4(Ipv4Addr::from(h.destination())),
                h.ttl(),
                frag,
            )
        }
        LaxIpSlice::Ipv6(v6) => {
            let h = v6.header();
            // Walk the extension headers ourselves: etherparse 0.21's extension iterator reads
            // out of bounds on some malformed chains (found by the corpus test on
            // tcpdump/ipv6_missing_jumbo_payload_option.pcap).
            let exts = v6.extensions();
            let frag = ipv6_fragment(exts.first_header().map(|n| n.0), exts.slice());
            (
                IpAddr::V6(Ipv6Addr::from(h.source())),
                IpAddr::V6(Ipv6Addr::from(h.destination())),
                h.hop_limit(),
                frag,
            )
        }
    };
    let pl = ip.payload();
    let proto = pl.ip_number;
    let payload = pl.payload;
    // The payload length the IP header states (LaxIpSlice falls back to the captured length
    // when the header's length is inconsistent; we prefer the header's value when it is larger,
    // i.e. when the capture was cut by a snap length).
    let stated = match &ip {
        LaxIpSlice::Ipv4(v4) => {
            let h = v4.header();
            u32::from(h.total_len()).saturating_sub(u32::from(h.ihl()) * 4)
        }
        LaxIpSlice::Ipv6(v6) => {
            let ext_len = v6.extensions().slice().len() as u32;
            u32::from(v6.header().payload_length()).saturating_sub(ext_len)
        }
    };
    let ip_payload_len = if stated as usize >= payload.len() {
        stated
    } else {
        payload.len() as u32
    };

    let mut d = Decoded {
        vlan: 0,
        src,
        dst,
        proto: proto.0,
        sport: 0,
        dport: 0,
        ttl,
        l4_header_len: 0,
        payload_len: ip_payload_len,
        payload,
        tcp_flags: 0,
        tcp_window: 0,
        fragment,
        tunnel: None,
    };
    if matches!(fragment, Fragment::Later { .. }) {
        return Ok(d);
    }
    match proto {
        IpNumber::TCP => {
            if payload.len() < 20 {
                return Err(SkipReason::Truncated);
            }
            let hl = usize::from(payload[12] >> 4) * 4;
            if hl < 20 {
                return Err(SkipReason::Malformed);
            }
            d.sport = u16::from_be_bytes([payload[0], payload[1]]);
            d.dport = u16::from_be_bytes([payload[2], payload[3]]);
            d.tcp_flags = payload[13];
            d.tcp_window = u16::from_be_bytes([payload[14], payload[15]]);
            d.l4_header_len = hl as u16;
            d.payload_len = ip_payload_len.saturating_sub(hl as u32);
            d.payload = payload.get(hl..).unwrap_or(&[]);
        }
        IpNumber::UDP => {
            if payload.len() < 8 {
                return Err(SkipReason::Truncated);
            }
            d.sport = u16::from_be_bytes([payload[0], payload[1]]);
            d.dport = u16::from_be_bytes([payload[2], payload[3]]);
            d.l4_header_len = 8;
            d.payload_len = ip_payload_len.saturating_sub(8);
            d.payload = &payload[8..];
            if matches!(fragment, Fragment::No) {
                if let Some(inner) = udp_tunnel(d.dport, d.payload, depth) {
                    return Ok(inner);
                }
            }
        }
        IpNumber::ICMP | IpNumber::IPV6_ICMP => {
            if payload.len() < 4 {
                return Err(SkipReason::Truncated);
            }
            d.sport = u16::from(payload[0]);
            d.dport = u16::from(payload[1]);
            let hl = payload.len().min(8);
            d.l4_header_len = hl as u16;
            d.payload_len = ip_payload_len.saturating_sub(hl as u32);
            d.payload = &payload[hl..];
        }
        IpNumber::IPV4 | IpNumber::IPV6 if matches!(fragment, Fragment::No) => {
            if let Ok(mut inner) = ip_any(payload, depth + 1) {
                inner.tunnel.get_or_insert(Tunnel::IpInIp);
                return Ok(inner);
            }
        }
        IpNumber::GRE if matches!(fragment, Fragment::No) => {
            if let Some(inner) = gre(payload, depth) {
                return Ok(inner);
            }
        }
        _ => {}
    }
    Ok(d)
}

/// Find the fragment header in a chain of IPv6 extension headers (bounds-checked).
fn ipv6_fragment(first: Option<u8>, mut b: &[u8]) -> Fragment {
    let Some(mut next) = first else {
        return Fragment::No;
    };
    for _ in 0..16 {
        let len = match next {
            0 | 43 | 60 | 135 | 139 | 140 => match b.get(1) {
                Some(&l) => (usize::from(l) + 1) * 8,
                None => return Fragment::No,
            },
            44 => {
                if b.len() < 8 {
                    return Fragment::No;
                }
                let off = u16::from_be_bytes([b[2], b[3]]) >> 3;
                let more = b[3] & 1 != 0;
                let id = u32::from_be_bytes([b[4], b[5], b[6], b[7]]);
                return if off != 0 {
                    Fragment::Later { id, more }
                } else if more {
                    Fragment::First { id }
                } else {
                    Fragment::No
                };
            }
            51 => match b.get(1) {
                Some(&l) => (usize::from(l) + 2) * 4,
                None => return Fragment::No,
            },
            _ => return Fragment::No,
        };
        if b.len() < len {
            return Fragment::No;
        }
        next = b[0];
        b = &b[len..];
    }
    Fragment::No
}

fn gre(p: &[u8], depth: u8) -> Option<Decoded<'_>> {
    let flags = be16(p, 0)?;
    let proto = be16(p, 2)?;
    if flags & 0x0007 != 0 {
        return None; // only GRE version 0
    }
    let mut off = 4;
    if flags & 0x8000 != 0 || flags & 0x4000 != 0 {
        off += 4; // checksum (+ reserved) present
    }
    if flags & 0x2000 != 0 {
        off += 4; // key
    }
    if flags & 0x1000 != 0 {
        off += 4; // sequence number
    }
    let inner = p.get(off..)?;
    let mut vlan = 0;
    let r = match proto {
        ETH_IPV4 | ETH_IPV6 => ip_any(inner, depth + 1),
        ETH_TEB => ethernet(inner, &mut vlan, depth + 1),
        _ => return None,
    };
    r.ok().map(|mut d| {
        d.tunnel.get_or_insert(Tunnel::Gre);
        d
    })
}

fn udp_tunnel(dport: u16, p: &[u8], depth: u8) -> Option<Decoded<'_>> {
    let mut vlan = 0;
    match dport {
        4789 => {
            // VXLAN: flags byte with the I bit set, 24 reserved bits, VNI, reserved.
            if p.len() < 8 + 14 || p[0] & 0x08 == 0 {
                return None;
            }
            let mut d = ethernet(&p[8..], &mut vlan, depth + 1).ok()?;
            d.tunnel.get_or_insert(Tunnel::Vxlan);
            Some(d)
        }
        6081 => {
            // Geneve: version 0, option length in 4-byte words, protocol type.
            let b0 = *p.first()?;
            if b0 >> 6 != 0 {
                return None;
            }
            let opt = usize::from(b0 & 0x3f) * 4;
            let proto = be16(p, 2)?;
            let inner = p.get(8 + opt..)?;
            let r = match proto {
                ETH_TEB => ethernet(inner, &mut vlan, depth + 1),
                ETH_IPV4 | ETH_IPV6 => ip_any(inner, depth + 1),
                _ => return None,
            };
            let mut d = r.ok()?;
            d.tunnel.get_or_insert(Tunnel::Geneve);
            Some(d)
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ipv4_tcp(flags: u8, payload: &[u8]) -> Vec<u8> {
        let total = 20 + 20 + payload.len();
        let mut v = vec![
            0x45,
            0,
            (total >> 8) as u8,
            total as u8,
            0,
            1,
            0,
            0,
            64,
            6,
            0,
            0,
            192,
            168,
            1,
            1,
            10,
            0,
            0,
            1,
        ];
        v.extend_from_slice(&[
            0x30, 0x39, 0, 80, 0, 0, 0, 1, 0, 0, 0, 0, 0x50, flags, 0x72, 0x10, 0, 0, 0, 0,
        ]);
        v.extend_from_slice(payload);
        v
    }

    fn eth(et: u16, inner: &[u8]) -> Vec<u8> {
        let mut v = vec![0u8; 12];
        v.extend_from_slice(&et.to_be_bytes());
        v.extend_from_slice(inner);
        v
    }

    fn unwrap(d: Decode<'_>) -> Decoded<'_> {
        match d {
            Decode::Packet(p) => p,
            Decode::Skip(r) => panic!("skipped: {r:?}"),
        }
    }

    #[test]
    fn ethernet_ipv4_tcp() {
        let f = eth(ETH_IPV4, &ipv4_tcp(FLAG_SYN | FLAG_ACK, b"hello"));
        let p = unwrap(decode(linktype::ETHERNET, &f));
        assert_eq!(p.src, "192.168.1.1".parse::<IpAddr>().unwrap());
        assert_eq!(
            (p.sport, p.dport, p.proto, p.tcp_flags, p.tcp_window),
            (12345, 80, 6, 0x12, 0x7210)
        );
        assert_eq!(
            (p.l4_header_len, p.payload_len, p.payload),
            (20, 5, &b"hello"[..])
        );
    }

    #[test]
    fn qinq_keeps_outer_vlan() {
        let mut inner = vec![0x00, 0x07, 0x81, 0x00, 0x00, 0x09, 0x08, 0x00];
        inner.extend_from_slice(&ipv4_tcp(FLAG_SYN, b""));
        let f = eth(ETH_QINQ, &inner);
        let p = unwrap(decode(linktype::ETHERNET, &f));
        assert_eq!(p.vlan, 7);
        assert_eq!(p.dport, 80);
    }

    #[test]
    fn mpls_stack_to_ipv4() {
        let mut inner = vec![0x00, 0x01, 0x00, 0x40, 0x00, 0x02, 0x01, 0x40];
        inner.extend_from_slice(&ipv4_tcp(FLAG_ACK, b"x"));
        let f = eth(ETH_MPLS_UC, &inner);
        let p = unwrap(decode(linktype::ETHERNET, &f));
        assert_eq!(p.payload, b"x");
    }

    #[test]
    fn sll_sll2_null_raw() {
        let ip = ipv4_tcp(FLAG_ACK, b"");
        let mut sll = vec![0u8; 14];
        sll.extend_from_slice(&ETH_IPV4.to_be_bytes());
        sll.extend_from_slice(&ip);
        assert_eq!(unwrap(decode(linktype::LINUX_SLL, &sll)).dport, 80);
        let mut sll2 = ETH_IPV4.to_be_bytes().to_vec();
        sll2.extend_from_slice(&[0u8; 18]);
        sll2.extend_from_slice(&ip);
        assert_eq!(unwrap(decode(linktype::LINUX_SLL2, &sll2)).dport, 80);
        let mut null = 2u32.to_le_bytes().to_vec();
        null.extend_from_slice(&ip);
        assert_eq!(unwrap(decode(linktype::NULL, &null)).dport, 80);
        let mut lo = 2u32.to_be_bytes().to_vec();
        lo.extend_from_slice(&ip);
        assert_eq!(unwrap(decode(linktype::LOOP, &lo)).dport, 80);
        assert_eq!(unwrap(decode(linktype::RAW, &ip)).dport, 80);
        assert_eq!(unwrap(decode(linktype::IPV4, &ip)).dport, 80);
    }

    #[test]
    fn skips_have_reasons() {
        assert_eq!(
            decode(147, &[1, 2, 3]),
            Decode::Skip(SkipReason::UnsupportedLinkType)
        );
        assert_eq!(
            decode(linktype::ETHERNET, &eth(0x0806, &[0; 28])),
            Decode::Skip(SkipReason::NonIp)
        );
        assert_eq!(
            decode(linktype::ETHERNET, &[0; 10]),
            Decode::Skip(SkipReason::Truncated)
        );
        let mut ip = ipv4_tcp(0, b"");
        ip.truncate(30);
        assert_eq!(
            decode(linktype::RAW, &ip),
            Decode::Skip(SkipReason::Truncated)
        );
        assert_eq!(
            decode(linktype::RAW, &[0x41, 0, 0, 0]),
            Decode::Skip(SkipReason::Malformed)
        );
    }

    #[test]
    fn ip_in_ip_is_decapsulated() {
        let inner = ipv4_tcp(FLAG_SYN, b"");
        let total = 20 + inner.len();
        let mut outer = vec![
            0x45,
            0,
            (total >> 8) as u8,
            total as u8,
            0,
            1,
            0,
            0,
            64,
            4,
            0,
            0,
            1,
            1,
            1,
            1,
            2,
            2,
            2,
            2,
        ];
        outer.extend_from_slice(&inner);
        let p = unwrap(decode(linktype::RAW, &outer));
        assert_eq!(p.tunnel, Some(Tunnel::IpInIp));
        assert_eq!(p.src, "192.168.1.1".parse::<IpAddr>().unwrap());
    }

    #[test]
    fn snaplen_cut_payload_keeps_wire_length() {
        let ip = ipv4_tcp(FLAG_ACK, &[7u8; 100]);
        let p = unwrap(decode(linktype::RAW, &ip[..60]));
        assert_eq!(p.payload_len, 100);
        assert_eq!(p.payload.len(), 20);
    }

    #[test]
    fn fragments() {
        let mut first = ipv4_tcp(FLAG_ACK, &[0u8; 8]);
        first[6] = 0x20; // MF
        let p = unwrap(decode(linktype::RAW, &first));
        assert_eq!(p.fragment, Fragment::First { id: 1 });
        assert_eq!(p.dport, 80);
        let mut later = ipv4_tcp(FLAG_ACK, &[0u8; 8]);
        later[7] = 0x05;
        let p = unwrap(decode(linktype::RAW, &later));
        assert_eq!(p.fragment, Fragment::Later { id: 1, more: false });
        assert_eq!((p.sport, p.dport), (0, 0));
    }
}
