//! Community ID v1 (<https://github.com/corelight/community-id-spec>): a hash of the flow
//! tuple that Zeek, Suricata and others compute the same way, so weir's flows can be joined
//! with their logs.

use std::net::IpAddr;

use base64::Engine;
use sha1::{Digest, Sha1};

const ICMP: u8 = 1;
const ICMP6: u8 = 58;

/// ICMP types whose reply type makes a flow two-way (type -> counterpart).
fn icmp4_counterpart(t: u8) -> Option<u8> {
    Some(match t {
        8 => 0,
        0 => 8,
        13 => 14,
        14 => 13,
        15 => 16,
        16 => 15,
        10 => 9,
        9 => 10,
        17 => 18,
        18 => 17,
        _ => return None,
    })
}

fn icmp6_counterpart(t: u8) -> Option<u8> {
    Some(match t {
        128 => 129,
        129 => 128,
        133 => 134,
        134 => 133,
        135 => 136,
        136 => 135,
        130 => 131,
        131 => 130,
        144 => 145,
        145 => 144,
        146 => 147,
        147 => 146,
        _ => return None,
    })
}

/// The port pair Community ID uses for an ICMP packet, and whether the tuple is one-way.
/// For ICMP `sport` is the type and `dport` the code.
pub fn icmp_ports(proto: u8, icmp_type: u8, code: u8) -> (u16, u16, bool) {
    let cp = if proto == ICMP {
        icmp4_counterpart(icmp_type)
    } else {
        icmp6_counterpart(icmp_type)
    };
    match cp {
        Some(c) => (u16::from(icmp_type), u16::from(c), false),
        None => (u16::from(icmp_type), u16::from(code), true),
    }
}

/// Community ID v1 of a flow, with seed 0: `1:` + base64(sha1(...)).
///
/// `sport`/`dport` are ports for TCP/UDP/SCTP, type/code for ICMP and ICMPv6, ignored otherwise.
pub fn community_id(src: IpAddr, dst: IpAddr, proto: u8, sport: u16, dport: u16) -> String {
    community_id_seeded(0, src, dst, proto, sport, dport)
}

/// Community ID v1 with an explicit seed.
pub fn community_id_seeded(
    seed: u16,
    src: IpAddr,
    dst: IpAddr,
    proto: u8,
    sport: u16,
    dport: u16,
) -> String {
    let has_ports = matches!(proto, 6 | 17 | 132 | ICMP | ICMP6);
    let (mut sp, mut dp, mut one_way) = (sport, dport, false);
    if proto == ICMP || proto == ICMP6 {
        let (a, b, ow) = icmp_ports(proto, sport as u8, dport as u8);
        sp = a;
        dp = b;
        one_way = ow;
    }
    let ordered = one_way || (src, sp) <= (dst, dp);
    let (a, b, pa, pb) = if ordered {
        (src, dst, sp, dp)
    } else {
        (dst, src, dp, sp)
    };
    let mut h = Sha1::new();
    h.update(seed.to_be_bytes());
    for ip in [a, b] {
        match ip {
            IpAddr::V4(v) => h.update(v.octets()),
            IpAddr::V6(v) => h.update(v.octets()),
        }
    }
    h.update([proto, 0]);
    if has_ports {
        h.update(pa.to_be_bytes());
        h.update(pb.to_be_bytes());
    }
    let digest = h.finalize();
    let mut s = String::with_capacity(30);
    s.push_str("1:");
    base64::engine::general_purpose::STANDARD.encode_string(digest, &mut s);
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    // Expected values computed independently with the reference Python implementation
    // (PyPI `communityid` 1.5, `CommunityID().calc(FlowTuple.make_*(...))`).
    #[test]
    fn spec_vectors() {
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        assert_eq!(
            community_id(ip("128.232.110.120"), ip("66.35.250.204"), 6, 34855, 80),
            "1:LQU9qZlK+B5F3KDmev6m5PMibrg="
        );
        // Same flow seen from the other side.
        assert_eq!(
            community_id(ip("66.35.250.204"), ip("128.232.110.120"), 6, 80, 34855),
            "1:LQU9qZlK+B5F3KDmev6m5PMibrg="
        );
        assert_eq!(
            community_id_seeded(1, ip("128.232.110.120"), ip("66.35.250.204"), 6, 34855, 80),
            "1:3V71V58M3Ksw/yuFALMcW0LAHvc="
        );
        assert_eq!(
            community_id(ip("192.168.1.52"), ip("8.8.8.8"), 17, 54585, 53),
            "1:d/FP5EW3wiY1vCndhwleRRKHowQ="
        );
        assert_eq!(
            community_id(ip("192.168.0.89"), ip("192.168.0.1"), 1, 8, 0),
            "1:X0snYXpgwiv9TZtqg64sgzUn6Dk="
        );
        assert_eq!(
            community_id(ip("192.168.0.1"), ip("192.168.0.89"), 1, 0, 0),
            "1:X0snYXpgwiv9TZtqg64sgzUn6Dk="
        );
        assert_eq!(
            community_id(
                ip("fe80::200:86ff:fe05:80da"),
                ip("fe80::260:97ff:fe07:69ea"),
                58,
                135,
                0
            ),
            "1:dGHyGvjMfljg6Bppwm3bg0LO8TY="
        );
        // Destination unreachable is one-way: the two directions hash differently.
        assert_eq!(
            community_id(ip("10.0.0.1"), ip("10.0.0.2"), 1, 3, 1),
            "1:gkoOC4ouXvyYq0Ek/WqwbLoqcxM="
        );
        assert_eq!(
            community_id(ip("10.0.0.2"), ip("10.0.0.1"), 1, 3, 1),
            "1:JHjlyD5IJJjl3wHWOMj46lLWZag="
        );
        // A protocol without ports (GRE).
        assert_eq!(
            community_id(ip("10.0.0.1"), ip("10.0.0.2"), 47, 0, 0),
            "1:+KlEHDT0vJgzs/eNmzHq0aSpRYw="
        );
    }
}
