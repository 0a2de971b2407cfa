//! # weir-synth
//!
//! Owns: generated labelled captures. Must not depend on: any other weir crate but weir-wire
//! (the class names).
//!
//! Labelled synthetic traffic: PCAP captures of normal activity (DNS, HTTP, TLS, SSH, NTP,
//! ICMP) and of attack classes, each with randomized rates, sizes, counts, timing and
//! addresses, and a label for every flow. `weir synth` writes them to files; `weir train` and
//! `weir eval` generate them in memory from fixed seeds (same seed, same bytes).
//!
//! What it is for: the classes no real capture covers (Analysis, Fuzzers, Generic, Shellcode
//! have none; Web Attack - Brute Force only CIC-IDS2017 rows), more variety for the classes
//! that have one or two real captures, more benign traffic, and tests.
//!
//! What it is not: a network simulator. Packets are well-formed (checksums, handshakes,
//! sequence numbers, segmentation) but hosts do not run real stacks; sizes and timing follow
//! simple distributions. The four classes without real data follow the UNSW-NB15 descriptions
//! of them (probing/penetration for Analysis, malformed and random input for Fuzzers, many
//! short fixed-size exchanges for Generic, sled + code + return addresses for Shellcode), so a
//! model learns weir's reading of those descriptions, not the traffic of a real tool.
#![warn(missing_docs)]

pub mod attacks;
pub mod busy;
pub mod net;
pub mod normal;
pub mod rng;

use std::net::Ipv4Addr;
use weir_wire::Class;

pub use net::{Capture, Label};

/// One second in ns.
pub const SECOND: i64 = 1_000_000_000;
/// The benign class.
pub const NORMAL: &str = Class::Normal.name();

/// Addresses of one capture: a LAN /24, its resolver, and public address pools.
#[derive(Clone, Debug)]
pub struct Net {
    /// First three octets of the LAN.
    pub prefix: [u8; 3],
    /// The LAN's DNS resolver.
    pub resolver: Ipv4Addr,
}

impl Net {
    /// A random LAN.
    pub fn new(cap: &mut Capture) -> Net {
        let prefix = [10, cap.rng.below(256) as u8, cap.rng.below(256) as u8];
        Net {
            prefix,
            resolver: Ipv4Addr::new(prefix[0], prefix[1], prefix[2], 1),
        }
    }

    /// A random LAN host (not the resolver).
    pub fn lan(&self, cap: &mut Capture) -> Ipv4Addr {
        let p = self.prefix;
        Ipv4Addr::new(p[0], p[1], p[2], cap.rng.range(2, 254) as u8)
    }

    /// A random public address.
    pub fn public(&self, cap: &mut Capture) -> Ipv4Addr {
        loop {
            let a = cap.rng.range(1, 223) as u8;
            if ![10, 100, 127, 169, 172, 192, 198, 203].contains(&a) {
                return Ipv4Addr::new(
                    a,
                    cap.rng.below(256) as u8,
                    cap.rng.below(256) as u8,
                    cap.rng.range(1, 254) as u8,
                );
            }
        }
    }

    /// An attacker: outside (public) most of the time, sometimes a LAN host.
    pub fn attacker(&self, cap: &mut Capture) -> Ipv4Addr {
        if cap.rng.chance(0.7) {
            self.public(cap)
        } else {
            self.lan(cap)
        }
    }
}

/// What one synthetic capture holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Scenario {
    /// Short name (file names, `--only`).
    pub name: &'static str,
    /// The attack class, or Normal for background only.
    pub class: &'static str,
}

/// Every scenario: two benign (`normal`: people browsing; `busy`: the same plus bursts of
/// scripted clients, health checks, logs and metrics over UDP, DNS-heavy hosts, some of it
/// on loopback), one per attack class weir can generate.
pub const SCENARIOS: [Scenario; 20] = [
    Scenario {
        name: "normal",
        class: NORMAL,
    },
    Scenario {
        name: "busy",
        class: NORMAL,
    },
    Scenario {
        name: "port-scan",
        class: Class::PortScan.name(),
    },
    Scenario {
        name: "sweep",
        class: Class::Reconnaissance.name(),
    },
    Scenario {
        name: "flood",
        class: Class::DoS.name(),
    },
    Scenario {
        name: "ddos",
        class: Class::DDoS.name(),
    },
    Scenario {
        name: "hulk",
        class: Class::DoSHulk.name(),
    },
    Scenario {
        name: "goldeneye",
        class: Class::DoSGoldenEye.name(),
    },
    Scenario {
        name: "slowloris",
        class: Class::DoSSlowloris.name(),
    },
    Scenario {
        name: "slowhttptest",
        class: Class::DoSSlowHttpTest.name(),
    },
    Scenario {
        name: "ssh-patator",
        class: Class::SshPatator.name(),
    },
    Scenario {
        name: "ftp-patator",
        class: Class::FtpPatator.name(),
    },
    Scenario {
        name: "web-brute-force",
        class: Class::WebBruteForce.name(),
    },
    Scenario {
        name: "sqli",
        class: Class::WebSqlInjection.name(),
    },
    Scenario {
        name: "xss",
        class: Class::WebXss.name(),
    },
    Scenario {
        name: "shellcode",
        class: Class::Shellcode.name(),
    },
    Scenario {
        name: "fuzzers",
        class: Class::Fuzzers.name(),
    },
    Scenario {
        name: "analysis",
        class: Class::Analysis.name(),
    },
    Scenario {
        name: "generic",
        class: Class::Generic.name(),
    },
    Scenario {
        name: "bot",
        class: Class::Bot.name(),
    },
];

/// A generated capture.
#[derive(Clone, Debug)]
pub struct Generated {
    /// What was generated.
    pub scenario: Scenario,
    /// The seed it was generated from.
    pub seed: u64,
    /// The PCAP file.
    pub pcap: Vec<u8>,
    /// One label per flow the generator started.
    pub labels: Vec<Label>,
}

impl Generated {
    /// A file name for it: `<scenario>-<seed>.pcap`.
    pub fn file_name(&self) -> String {
        format!("{}-{}.pcap", self.scenario.name, self.seed)
    }

    /// The labels as CSV (`src,sport,dst,dport,proto,class`; ICMP ports 0).
    pub fn labels_csv(&self) -> String {
        let mut s = String::from("src,sport,dst,dport,proto,class\n");
        for l in &self.labels {
            s.push_str(&format!(
                "{},{},{},{},{},{}\n",
                l.src, l.sport, l.dst, l.dport, l.proto, l.class
            ));
        }
        s
    }
}

/// Generate one capture: a few minutes of background traffic from a handful of LAN clients,
/// and (for an attack scenario) the attack inside it.
pub fn generate(scenario: Scenario, seed: u64) -> Generated {
    let mut cap = Capture::new(seed ^ fnv(scenario.name));
    let net = Net::new(&mut cap);
    // Somewhere in 2023-2026.
    let t0 = 1_672_531_200 * SECOND + cap.rng.below(3 * 365 * 86_400) as i64 * SECOND;
    let (clients, minutes) = if scenario.class == NORMAL {
        (cap.rng.range(4, 12), cap.rng.range(3, 10))
    } else {
        (cap.rng.range(1, 4), cap.rng.range(2, 4))
    };
    normal::background(
        &mut cap,
        &net,
        clients,
        t0,
        t0 + minutes as i64 * 60 * SECOND,
    );
    let t1 = t0 + minutes as i64 * 60 * SECOND;
    // Bursty benign traffic: the whole point of `busy`, and now and then behind an attack
    // too, so that a burst is never by itself the sign of one.
    let bursts = if scenario.name == "busy" {
        cap.rng.range(2, 6)
    } else {
        u64::from(cap.rng.chance(0.3))
    };
    busy::bursts(&mut cap, &net, bursts, t0, t1);
    let ta = t0 + cap.rng.range(5, 60) as i64 * SECOND;
    match scenario.name {
        "port-scan" => attacks::port_scan(&mut cap, &net, ta),
        "sweep" => attacks::sweep(&mut cap, &net, ta),
        "flood" => attacks::flood(&mut cap, &net, ta),
        "ddos" => attacks::ddos(&mut cap, &net, ta),
        "hulk" => attacks::hulk(&mut cap, &net, ta),
        "goldeneye" => attacks::goldeneye(&mut cap, &net, ta),
        "slowloris" => attacks::slow(&mut cap, &net, ta, Class::DoSSlowloris.name()),
        "slowhttptest" => attacks::slow(&mut cap, &net, ta, Class::DoSSlowHttpTest.name()),
        "ssh-patator" => attacks::ssh_patator(&mut cap, &net, ta),
        "ftp-patator" => attacks::ftp_patator(&mut cap, &net, ta),
        "web-brute-force" => attacks::web_brute_force(&mut cap, &net, ta),
        "sqli" => attacks::sqli(&mut cap, &net, ta),
        "xss" => attacks::xss(&mut cap, &net, ta),
        "shellcode" => attacks::shellcode(&mut cap, &net, ta),
        "fuzzers" => attacks::fuzzers(&mut cap, &net, ta),
        "analysis" => attacks::analysis(&mut cap, &net, ta),
        "generic" => attacks::generic(&mut cap, &net, ta),
        "bot" => attacks::bot(&mut cap, &net, ta),
        _ => {}
    }
    let (pcap, labels) = cap.pcap();
    Generated {
        scenario,
        seed,
        pcap,
        labels,
    }
}

/// A scenario by name.
pub fn scenario(name: &str) -> Option<Scenario> {
    SCENARIOS.iter().copied().find(|s| s.name == name)
}

/// `per_scenario` captures of every scenario (`normal_extra` more of the benign one), seeds
/// `base_seed`, `base_seed + 1`, ...
pub fn suite(base_seed: u64, per_scenario: u64, normal_extra: u64) -> Vec<(Scenario, u64)> {
    let mut out = Vec::new();
    for s in SCENARIOS {
        let n = per_scenario + if s.class == NORMAL { normal_extra } else { 0 };
        for i in 0..n {
            out.push((s, base_seed + i));
        }
    }
    out
}

fn fnv(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_bytes_other_seed_other_bytes() {
        let s = scenario("port-scan").unwrap();
        let a = generate(s, 7);
        assert_eq!(a.pcap, generate(s, 7).pcap);
        assert_ne!(a.pcap, generate(s, 8).pcap);
        assert!(a.labels.iter().any(|l| l.class == "Port Scan"));
        assert!(a.labels.iter().any(|l| l.class == NORMAL));
    }

    #[test]
    fn every_scenario_labels_its_class() {
        for s in SCENARIOS {
            let g = generate(s, 1);
            assert!(g.labels.iter().any(|l| l.class == s.class), "{}", s.name);
            assert!(g.pcap.len() > 1000, "{}", s.name);
        }
    }
}
