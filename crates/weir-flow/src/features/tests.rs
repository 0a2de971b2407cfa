//! Tests of `features`.

use super::*;

fn pkt(ts_us: f64, dir: Direction, len: u32, flags: u8) -> PacketFeatures<'static> {
    PacketFeatures {
        ts_us,
        dir,
        payload_len: len,
        header_len: 20,
        flags,
        window: 100,
        payload: &[],
        icmp: None,
    }
}

fn get(v: &[f64; N_FEATURES], name: &str) -> f64 {
    v[FEATURES
        .iter()
        .position(|f| f.name == name)
        .unwrap_or_else(|| panic!("no feature {name}"))]
}

#[test]
fn names_are_unique() {
    let mut names: Vec<_> = FEATURES.iter().map(|f| f.name).collect();
    names.sort();
    names.dedup();
    assert_eq!(names.len(), N_FEATURES);
}

#[test]
fn hand_computed_flow() {
    use Direction::*;
    let mut s = FlowStats::new(6, &pkt(0.0, Forward, 0, crate::FLAG_SYN));
    s.add(&pkt(1000.0, Backward, 0, crate::FLAG_SYN | crate::FLAG_ACK));
    s.add(&pkt(
        2000.0,
        Forward,
        100,
        crate::FLAG_ACK | crate::FLAG_PSH,
    ));
    s.add(&pkt(
        6000.0,
        Backward,
        300,
        crate::FLAG_ACK | crate::FLAG_PSH,
    ));
    let v = s.vector();
    assert_eq!(get(&v, "Flow Duration"), 6000.0);
    assert_eq!(get(&v, "Total Fwd Packet"), 2.0);
    assert_eq!(get(&v, "Total Length of Bwd Packet"), 300.0);
    assert_eq!(get(&v, "Fwd Packet Length Mean"), 50.0);
    assert!((get(&v, "Fwd Packet Length Std") - 70.710678).abs() < 1e-5);
    assert!((get(&v, "Flow Bytes/s") - 400.0 / 0.006).abs() < 1e-6);
    assert_eq!(get(&v, "Flow IAT Max"), 4000.0);
    assert_eq!(get(&v, "Flow IAT Min"), 1000.0);
    assert_eq!(get(&v, "Fwd IAT Total"), 2000.0);
    assert_eq!(get(&v, "Bwd IAT Mean"), 5000.0);
    assert_eq!(get(&v, "SYN Flag Count"), 2.0);
    assert_eq!(get(&v, "PSH Flag Count"), 2.0);
    assert_eq!(get(&v, "Fwd PSH Flags"), 1.0);
    assert_eq!(get(&v, "Down/Up Ratio"), 1.0);
    assert_eq!(get(&v, "Average Packet Size"), 100.0);
    assert_eq!(get(&v, "Fwd Header Length"), 40.0);
    assert_eq!(get(&v, "Fwd Act Data Pkts"), 1.0);
    assert_eq!(get(&v, "Subflow Fwd Packets"), 2.0);
    assert_eq!(get(&v, "Active Mean"), 6000.0);
    assert_eq!(get(&v, "Idle Mean"), 0.0);
    assert_eq!(get(&v, "ICMP Type"), -1.0);
    assert_eq!(get(&v, "Total TCP Flow Time"), 6000.0);
    assert_eq!(get(&v, "Fwd Payload Byte 0"), -1.0);
}

#[test]
fn idle_active_and_subflows() {
    use Direction::*;
    let mut s = FlowStats::new(17, &pkt(0.0, Forward, 10, 0));
    s.add(&pkt(100.0, Forward, 10, 0));
    s.add(&pkt(10_000_100.0, Forward, 10, 0)); // 10 s gap: idle period, new subflow
    s.add(&pkt(10_000_300.0, Backward, 10, 0));
    let v = s.vector();
    assert_eq!(get(&v, "Idle Mean"), 10_000_000.0);
    assert_eq!(get(&v, "Active Mean"), 150.0); // periods of 100 and 200 µs
    assert_eq!(get(&v, "Subflow Fwd Packets"), 1.5);
    assert_eq!(get(&v, "Total TCP Flow Time"), 0.0);
}

#[test]
fn bulk_needs_four_data_packets_in_a_row() {
    use Direction::*;
    let mut s = FlowStats::new(6, &pkt(0.0, Forward, 100, 0));
    for i in 1..5 {
        s.add(&pkt(f64::from(i) * 1000.0, Forward, 100, 0));
    }
    let v = s.vector();
    assert_eq!(get(&v, "Fwd Bytes/Bulk Avg"), 500.0);
    assert_eq!(get(&v, "Fwd Packet/Bulk Avg"), 5.0);
    assert!((get(&v, "Fwd Bulk Rate Avg") - 500.0 / 0.004).abs() < 1e-6);
    // Interleaved data in the other direction prevents a bulk.
    let mut s = FlowStats::new(6, &pkt(0.0, Forward, 100, 0));
    for i in 1..8 {
        let dir = if i % 2 == 0 { Forward } else { Backward };
        s.add(&pkt(f64::from(i) * 1000.0, dir, 100, 0));
    }
    assert_eq!(get(&s.vector(), "Fwd Bytes/Bulk Avg"), 0.0);
}

#[test]
fn token_counter_matches_a_naive_scan() {
    let naive = |bytes: &[u8]| -> u32 {
        SUSPICIOUS_TOKENS
            .iter()
            .map(|t| {
                bytes
                    .windows(t.len())
                    .filter(|w| w.eq_ignore_ascii_case(t))
                    .count() as u32
            })
            .sum()
    };
    assert!(SUSPICIOUS_TOKENS
        .iter()
        .all(|t| t.to_ascii_lowercase() == *t));
    let mut samples: Vec<Vec<u8>> = vec![
        b"GET /?id=1' OR 1=1 UNION SELECT * FROM users -- <ScRiPt>../../../etc/passwd".to_vec(),
        b"....//....%2F..%2f /BIN/SH cmd.EXE javascript:onerror=".to_vec(),
        vec![0x90; 40],
        b"union selec".to_vec(),
        Vec::new(),
    ];
    // Every token cut at each end, and a pseudo-random mix of token pieces.
    let mut x = 12345u32;
    for _ in 0..200 {
        let mut v = Vec::new();
        for _ in 0..8 {
            x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
            let t = SUSPICIOUS_TOKENS[(x >> 16) as usize % SUSPICIOUS_TOKENS.len()];
            let cut = (x >> 8) as usize % (t.len() + 1);
            v.extend_from_slice(if x & 1 == 0 { &t[..cut] } else { t });
        }
        samples.push(v);
    }
    for s in &samples {
        assert_eq!(count_tokens(s), naive(s), "{}", String::from_utf8_lossy(s));
    }
    assert_eq!(count_tokens(&[0x90; 10]), 3);
}

#[test]
fn payload_indicators() {
    let payload = b"GET /index.php?id=1' OR 1=1 UNION SELECT password FROM users HTTP/1.1\r\n";
    let p = PacketFeatures {
        ts_us: 0.0,
        dir: Direction::Forward,
        payload_len: payload.len() as u32,
        header_len: 20,
        flags: 0,
        window: 0,
        payload,
        icmp: None,
    };
    let v = FlowStats::new(6, &p).vector();
    assert_eq!(get(&v, "Fwd Payload Byte 0"), f64::from(b'G'));
    assert_eq!(get(&v, "Fwd Payload Printable Ratio"), 1.0);
    assert!(get(&v, "Fwd Payload Suspicious Tokens") >= 2.0);
    assert!(get(&v, "Fwd Payload Entropy") > 3.0);
    assert_eq!(entropy(&[7; 100]), 0.0);
    assert!((entropy(&(0..=255).collect::<Vec<u8>>()) - 8.0).abs() < 1e-4);
}

#[test]
fn zero_duration_rates_are_zero_not_infinite() {
    let v = FlowStats::new(17, &pkt(5.0, Direction::Forward, 10, 0)).vector();
    assert!(v[..CONTEXT_FIRST].iter().all(|x| x.is_finite()));
    // The context block is unknown until the context tracker fills it in.
    assert!(v[CONTEXT_FIRST..].iter().all(|x| x.is_nan()));
    assert_eq!(get(&v, "Flow Bytes/s"), 0.0);
}

#[test]
fn column_names_are_snake_case_and_unique() {
    let cols = super::feature_columns();
    assert_eq!(cols[0], "proto");
    let pos = |n: &str| FEATURES.iter().position(|f| f.name == n).unwrap();
    assert_eq!(cols[pos("Flow Bytes/s")], "flow_bytes_per_s");
    assert_eq!(cols[pos("FWD Init Win Bytes")], "fwd_init_win_bytes");
    assert_eq!(cols[pos("Total Bwd packets")], "total_bwd_packets");
    assert_eq!(cols[pos("Down/Up Ratio")], "down_up_ratio");
    assert_eq!(cols[pos("Fwd Packet/Bulk Avg")], "fwd_packet_per_bulk_avg");
    let mut seen = std::collections::HashSet::new();
    for c in cols {
        assert!(
            c.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
                && !c.starts_with('_')
                && !c.ends_with('_')
                && !c.contains("__"),
            "{c}"
        );
        assert!(seen.insert(c.clone()), "{c} twice");
    }
}

#[test]
fn every_feature_but_the_context_block_is_written_exactly_once() {
    let v = FlowStats::new(6, &pkt(0.0, Direction::Forward, 10, 0)).fill();
    let name = |m: u128| -> Vec<&str> {
        (0..N_FEATURES)
            .filter(|i| m & (1u128 << i) != 0)
            .map(|i| FEATURES[i].name)
            .collect()
    };
    assert_eq!(name(v.twice), Vec::<&str>::new(), "written twice");
    assert_eq!(
        name(FILLED & !v.written),
        Vec::<&str>::new(),
        "never written"
    );
    assert_eq!(
        name(v.written & !FILLED),
        Vec::<&str>::new(),
        "written in the context block"
    );
    assert!(v.v[CONTEXT_FIRST..].iter().all(|x| x.is_nan()));
    assert_eq!(ix::PROTOCOL, 0);
    assert_eq!(FEATURES[ix::FWD_PAYLOAD_BYTE_0].name, "Fwd Payload Byte 0");
    assert_eq!(ix::DST_SRC_HOSTS_30S, N_FEATURES - 1);
}
