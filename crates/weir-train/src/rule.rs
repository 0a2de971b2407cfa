//! Per-flow labelling rules: which flows of an attack capture carry the attack.
//!
//! A rule is `all`, `none`, or space-separated conditions that must all hold:
//! `host=IP` (either end), `pair=IP-IP` (the two ends, either way round), `net=CIDR` (either end
//! inside), `proto=N` (IP protocol number), `port=N` (either port). Flows that do not match are
//! the capture's background and are labelled Normal.

use std::net::IpAddr;
use std::str::FromStr;

use weir_flow::FlowRecord;

/// One condition of a rule.
#[derive(Clone, Debug, PartialEq)]
enum Cond {
    Host(IpAddr),
    Pair(IpAddr, IpAddr),
    Net(IpAddr, u8),
    Proto(u8),
    Port(u16),
}

/// A parsed rule.
#[derive(Clone, Debug, PartialEq)]
pub enum Rule {
    /// Every flow is the attack.
    All,
    /// No flow carries the attack (e.g. an ARP scan).
    None,
    /// Flows meeting every condition.
    Where(Vec<CondSet>),
}

/// Conditions that must all hold (kept opaque; build rules by parsing).
#[derive(Clone, Debug, PartialEq)]
pub struct CondSet(Cond);

fn in_net(ip: IpAddr, net: IpAddr, bits: u8) -> bool {
    match (ip, net) {
        (IpAddr::V4(a), IpAddr::V4(n)) => {
            let mask = u32::MAX
                .checked_shl(32 - u32::from(bits.min(32)))
                .unwrap_or(0);
            u32::from(a) & mask == u32::from(n) & mask
        }
        (IpAddr::V6(a), IpAddr::V6(n)) => {
            let mask = u128::MAX
                .checked_shl(128 - u32::from(bits.min(128)))
                .unwrap_or(0);
            u128::from(a) & mask == u128::from(n) & mask
        }
        _ => false,
    }
}

impl Rule {
    /// Does the flow carry the attack?
    pub fn matches(&self, f: &FlowRecord) -> bool {
        match self {
            Rule::All => true,
            Rule::None => false,
            Rule::Where(conds) => conds.iter().all(|CondSet(c)| match *c {
                Cond::Host(h) => f.src_ip == h || f.dst_ip == h,
                Cond::Pair(a, b) => {
                    (f.src_ip == a && f.dst_ip == b) || (f.src_ip == b && f.dst_ip == a)
                }
                Cond::Net(n, bits) => in_net(f.src_ip, n, bits) || in_net(f.dst_ip, n, bits),
                Cond::Proto(p) => f.proto == p,
                Cond::Port(p) => f.src_port == p || f.dst_port == p,
            }),
        }
    }
}

impl FromStr for Rule {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let s = s.trim();
        match s {
            "all" => return Ok(Rule::All),
            "none" => return Ok(Rule::None),
            "" => return Err("empty rule (use all or none)".into()),
            _ => {}
        }
        let ip = |v: &str| {
            v.parse::<IpAddr>()
                .map_err(|e| format!("{v:?} is not an IP address: {e}"))
        };
        let mut conds = Vec::new();
        for part in s.split_whitespace() {
            let (k, v) = part
                .split_once('=')
                .ok_or_else(|| format!("{part:?}: expected key=value"))?;
            let c = match k {
                "host" => Cond::Host(ip(v)?),
                "pair" => {
                    let (a, b) = v
                        .split_once('-')
                        .ok_or_else(|| format!("pair={v}: expected IP-IP"))?;
                    Cond::Pair(ip(a)?, ip(b)?)
                }
                "net" => {
                    let (a, bits) = v
                        .split_once('/')
                        .ok_or_else(|| format!("net={v}: expected address/bits"))?;
                    let bits: u8 = bits.parse().map_err(|e| format!("net={v}: {e}"))?;
                    Cond::Net(ip(a)?, bits)
                }
                "proto" => Cond::Proto(v.parse().map_err(|e| format!("proto={v}: {e}"))?),
                "port" => Cond::Port(v.parse().map_err(|e| format!("port={v}: {e}"))?),
                _ => {
                    return Err(format!(
                        "unknown condition {k:?} (host, pair, net, proto, port)"
                    ))
                }
            };
            conds.push(CondSet(c));
        }
        Ok(Rule::Where(conds))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use weir_flow::{EndReason, N_FEATURES};

    fn flow(src: &str, sp: u16, dst: &str, dp: u16, proto: u8) -> FlowRecord {
        FlowRecord {
            community_id: String::new(),
            proto,
            src_ip: src.parse().unwrap(),
            src_port: sp,
            dst_ip: dst.parse().unwrap(),
            dst_port: dp,
            vlan: 0,
            tunnel: None,
            first_ts_ns: 0,
            last_ts_ns: 0,
            packets_fwd: 1,
            packets_bwd: 0,
            bytes_fwd: 60,
            bytes_bwd: 0,
            first_offset: 0,
            last_offset: 0,
            end_reason: EndReason::EndOfCapture,
            features: [0.0; N_FEATURES],
            signals: 0,
            behaviour: None,
        }
    }

    #[test]
    fn conditions() {
        let f = flow("10.99.99.8", 50000, "172.23.33.10", 445, 6);
        let r = |s: &str| s.parse::<Rule>().unwrap().matches(&f);
        assert!(r("all"));
        assert!(!r("none"));
        assert!(r("net=10.99.99.0/24"));
        assert!(!r("net=10.99.98.0/24"));
        assert!(r("pair=172.23.33.10-10.99.99.8 proto=6"));
        assert!(!r("pair=172.23.33.10-10.99.99.8 proto=17"));
        assert!(r("host=172.23.33.10 port=445"));
        assert!(!r("host=172.23.33.11"));
        assert!(r("net=0.0.0.0/0"));
        let v6 = flow("2001:db8::1", 1, "2001:db8:1::2", 2, 17);
        assert!("net=2001:db8::/32".parse::<Rule>().unwrap().matches(&v6));
        assert!(!"net=10.0.0.0/8".parse::<Rule>().unwrap().matches(&v6));
        for bad in [
            "",
            "host=1.2.3",
            "pair=1.2.3.4",
            "color=red",
            "port=x",
            "net=1.2.3.4",
        ] {
            assert!(bad.parse::<Rule>().is_err(), "{bad:?} should not parse");
        }
    }
}
