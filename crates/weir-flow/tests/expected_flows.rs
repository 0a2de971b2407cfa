//! Flows agree with independent tools: tshark's conversation tables and Suricata's flow counts
//! in ../shared/corpus/EXPECTED_FLOWS.md.

mod common;

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;

use common::{flows_of, flows_with, shared};
use weir_flow::{ExtractOptions, FlowConfig};

#[derive(Debug, Clone)]
struct Conv {
    a: (IpAddr, u16),
    b: (IpAddr, u16),
    frames_to_a: u64,
    frames_from_a: u64,
    bytes: (u64, &'static str),
}

fn parse_size(n: &str, unit: &str) -> (u64, &'static str) {
    let n: u64 = n.parse().unwrap();
    match unit {
        "bytes" => (n, "bytes"),
        "kB" => (n, "kB"),
        "MB" => (n, "MB"),
        u => panic!("unit {u}"),
    }
}

fn split_endpoint(s: &str) -> (IpAddr, u16) {
    let i = s.rfind(':').unwrap();
    (s[..i].parse().unwrap(), s[i + 1..].parse().unwrap())
}

/// Conversation tables per (file, "tcp"/"udp") from EXPECTED_FLOWS.md.
fn tshark_tables() -> HashMap<(String, String), Vec<Conv>> {
    let md = std::fs::read_to_string(shared().join("corpus/EXPECTED_FLOWS.md")).unwrap();
    let mut out: HashMap<(String, String), Vec<Conv>> = HashMap::new();
    let (mut file, mut proto) = (String::new(), String::new());
    for line in md.lines() {
        if let Some(rest) = line.strip_prefix("## `") {
            file = rest.trim_end_matches('`').to_string();
        } else if line.starts_with("`tshark -r FILE -q -z conv,") {
            proto = line[27..30].to_string();
        } else if line.contains("<->") && !file.is_empty() {
            let t: Vec<&str> = line.split_whitespace().collect();
            // A <-> B  fr_to_a size unit  fr_from_a size unit  total_fr size unit  start dur
            let a = split_endpoint(t[0]);
            let b = split_endpoint(t[2]);
            out.entry((file.clone(), proto.clone()))
                .or_default()
                .push(Conv {
                    a,
                    b,
                    frames_to_a: t[3].parse().unwrap(),
                    frames_from_a: t[6].parse().unwrap(),
                    bytes: parse_size(t[10], t[11]),
                });
        }
    }
    out
}

type Endpoint = (IpAddr, u16);
/// Frames sent by each endpoint, and total wire bytes.
type ConvTotals = (HashMap<Endpoint, u64>, u64);

/// Our flows merged per unordered endpoint pair (tshark's conversation key):
/// (frames from each endpoint, total wire bytes).
fn our_conversations(file: &str, proto: u8) -> HashMap<(Endpoint, Endpoint), ConvTotals> {
    let (flows, _) = flows_of(&shared().join("corpus").join(file));
    let mut m: HashMap<_, ConvTotals> = HashMap::new();
    for f in flows.iter().filter(|f| f.proto == proto) {
        let (s, d) = ((f.src_ip, f.src_port), (f.dst_ip, f.dst_port));
        let key = if s <= d { (s, d) } else { (d, s) };
        let e = m.entry(key).or_default();
        *e.0.entry(s).or_default() += f.packets_fwd;
        *e.0.entry(d).or_default() += f.packets_bwd;
        e.1 += f.bytes_fwd + f.bytes_bwd;
    }
    m
}

#[test]
fn same_tuples_packets_and_bytes_as_tshark() {
    let tables = tshark_tables();
    assert_eq!(
        tables.len(),
        7,
        "expected tcp and udp tables for 3 files and a tcp table for mixed-vlan-mpls: {:?}",
        tables.keys()
    );
    for ((file, proto), convs) in &tables {
        let ours = our_conversations(file, if proto == "tcp" { 6 } else { 17 });
        assert_eq!(
            ours.len(),
            convs.len(),
            "{file} {proto}: conversation count"
        );
        for c in convs {
            let key = if c.a <= c.b { (c.a, c.b) } else { (c.b, c.a) };
            let (frames, bytes) = ours
                .get(&key)
                .unwrap_or_else(|| panic!("{file} {proto}: missing {c:?}"));
            assert_eq!(
                frames.get(&c.a).copied().unwrap_or(0),
                c.frames_from_a,
                "{file} {proto} {c:?}: frames from A"
            );
            assert_eq!(
                frames.get(&c.b).copied().unwrap_or(0),
                c.frames_to_a,
                "{file} {proto} {c:?}: frames to A"
            );
            match c.bytes {
                (n, "bytes") => assert_eq!(*bytes, n, "{file} {proto} {c:?}: bytes"),
                // tshark rounds to whole kB / MB (SI units).
                (n, "kB") => assert!(
                    (*bytes as f64 / 1e3 - n as f64).abs() <= 1.0,
                    "{file} {proto} {c:?}: {bytes} bytes"
                ),
                (n, _) => assert!(
                    (*bytes as f64 / 1e6 - n as f64).abs() <= 1.0,
                    "{file} {proto} {c:?}: {bytes} bytes"
                ),
            }
        }
    }
}

fn counts(file: &str) -> BTreeMap<u8, usize> {
    counts_with(file, &ExtractOptions::default())
}

fn counts_with(file: &str, opts: &ExtractOptions) -> BTreeMap<u8, usize> {
    let (flows, _) = flows_with(&shared().join("corpus").join(file), opts);
    let mut m = BTreeMap::new();
    for f in flows {
        *m.entry(f.proto).or_default() += 1;
    }
    m
}

/// Suricata 7.0.10 `--runmode single` flow counts from EXPECTED_FLOWS.md, next to weir's. Every
/// difference is explained; the checks assert weir's exact counts so a change is noticed.
#[test]
fn flow_counts_per_protocol_vs_suricata() {
    // viber.pcap — Suricata: ICMP 1, IPv6-ICMP 1, TCP 13, UDP 15. Identical.
    assert_eq!(
        counts("realistic/ndpi/viber.pcap"),
        BTreeMap::from([(1, 1), (6, 13), (17, 15), (58, 1)])
    );

    // mixed-vlan-mpls.pcap — Suricata: TCP 3. Identical (VLAN and MPLS decoded to the inner IP 5-tuple).
    assert_eq!(
        counts("realistic/zeek/mixed-vlan-mpls.pcap"),
        BTreeMap::from([(6, 3)])
    );

    // 6in4tunnel.pcap — Suricata: IPv6 1, IPv6-ICMP 3, TCP 5, UDP 2. weir decapsulates the
    // 6in4 tunnel and keys every packet on its inner flow, so it has the 10 inner flows and no
    // flow for the outer IPv4 proto-41 carrier (Suricata reports both layers).
    assert_eq!(
        counts("realistic/ndpi/6in4tunnel.pcap"),
        BTreeMap::from([(6, 5), (17, 2), (58, 3)])
    );

    // whatsapp_login_call.pcap — Suricata: TCP 28, UDP 31; weir: TCP 27, UDP 29, ICMP 1.
    // * TCP +1 in Suricata: 192.168.2.4:49193 <-> 17.110.229.14:5223 is picked up mid-stream
    //   (no SYN), which Suricata keeps in its "new" state with a 60 s timeout; a 101 s gap splits
    //   it in two. weir's flow has packets both ways, so its 120 s idle timeout applies (tshark
    //   also has one conversation).
    // * UDP +2 in Suricata: 192.168.2.1:57621 -> 192.168.2.255:57621 broadcasts come ~38 s
    //   apart: beyond Suricata's 30 s timeout for unanswered UDP flows (3 flows there), within
    //   weir's 45 s (1 flow here). With `unanswered_timeout` at 31 s weir has Suricata's 31 UDP
    //   flows (the Dropbox broadcasts to port 17500 come 30.05 s apart and Suricata compares
    //   whole seconds).
    // * ICMP: weir has one flow of 10 ICMP port-unreachable messages (192.168.2.4 ->
    //   91.253.176.65); Suricata attaches ICMPv4 errors to the flow of the packet they quote and
    //   makes no flow for them.
    assert_eq!(
        counts("realistic/ndpi/whatsapp_login_call.pcap"),
        BTreeMap::from([(1, 1), (6, 27), (17, 29)])
    );
    let suricata_like = ExtractOptions {
        flow: FlowConfig {
            unanswered_timeout_ns: 31_000_000_000,
            ..FlowConfig::default()
        },
        ..ExtractOptions::default()
    };
    assert_eq!(
        counts_with("realistic/ndpi/whatsapp_login_call.pcap", &suricata_like)[&17],
        31
    );
}
