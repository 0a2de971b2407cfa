//! Tests of `aggregate`.

use super::*;

#[test]
fn long_timelines_get_wider_buckets() {
    let minute = |m: i64, flows| Tally {
        key: (m * 60_000_000_000).to_string(),
        flows,
        packets: 2,
        bytes: 10,
        alerts: 1,
    };
    let (t, w) = bucketed(vec![minute(0, 1), minute(1, 2), minute(5, 3)]);
    assert_eq!((t.len(), w), (3, 60));
    // Two days of minutes: 2,880 buckets -> 48 hours.
    let (t, w) = bucketed((0..2880).map(|m| minute(m, 1)).collect());
    assert_eq!((t.len(), w), (48, 3_600));
    assert_eq!(t[1].key, "1970-01-01T01:00:00.000Z");
    assert_eq!(t.iter().map(|x| x.flows).sum::<u64>(), 2880);
    assert_eq!(t.iter().map(|x| x.alerts).sum::<u64>(), 2880);
    // Ten years of hours -> days, whatever the count.
    let (t, w) = bucketed((0..87_600).map(|h| minute(h * 60, 1)).collect());
    assert_eq!(w, 86_400);
    assert_eq!(t.len(), 3650);
}

fn flow<'a>(src: &'a str, dst: &'a str, proto: u8, sport: u32, dport: u32) -> AlertFlow<'a> {
    AlertFlow {
        src,
        dst,
        to: service_to(proto, sport, dport),
        from: service_from(proto, sport),
        packets: 1,
        bytes: 60,
        first: 1_600_000_000_000_000_000,
        last: 1_600_000_001_000_000_000,
        p: 0.9,
        evidence: "",
    }
}

#[test]
fn a_scan_is_one_line_naming_attacker_victim_and_ports() {
    let mut g = Groups::default();
    for port in 1..=1000 {
        g.add("Port Scan", &flow("10.0.0.7", "10.0.0.1", 6, 40_000, port));
    }
    let out = g.finish();
    assert_eq!(out.len(), 1, "{out:?}");
    let l = &out[0].line;
    assert_eq!(
        l,
        "Port Scan: 10.0.0.7 -> 10.0.0.1 on 1,000 tcp ports, 1,000 flows, \
         2020-09-13T12:26:40.000Z to 2020-09-13T12:26:41.000Z; model p up to 0.90"
    );
    assert_eq!((out[0].attacker_count, out[0].victim_count), (1, 1));
    // A behaviour detector's evidence replaces the probability, the latest (largest) kept.
    let mut g = Groups::default();
    for (port, ev) in [
        (1, "10.0.0.7 probed 25 ports"),
        (2, ""),
        (3, "10.0.0.7 probed 26 ports"),
    ] {
        let mut f = flow("10.0.0.7", "10.0.0.1", 6, 40_000, port);
        f.evidence = ev;
        g.add("Port Scan", &f);
    }
    let out = g.finish();
    assert_eq!(out[0].evidence, "10.0.0.7 probed 26 ports");
    assert!(
        out[0].line.ends_with("; 10.0.0.7 probed 26 ports"),
        "{}",
        out[0].line
    );
}

#[test]
fn a_reflection_flood_names_the_victim_and_the_reflecting_service() {
    let mut g = Groups::default();
    let srcs: Vec<String> = (0..300).map(|i| format!("198.51.100.{i}")).collect();
    for (i, s) in srcs.iter().enumerate() {
        g.add("DDoS", &flow(s, "10.0.0.9", 17, 53, 1024 + i as u32));
    }
    // A brute force by one host on one service in the same capture.
    for p in 0..40 {
        g.add(
            "SSH Patator",
            &flow("10.0.0.66", "10.0.0.9", 6, 50_000 + p, 22),
        );
    }
    let out = g.finish();
    assert_eq!(out.len(), 2, "{out:?}");
    assert_eq!(out[0].class, "DDoS");
    assert_eq!(out[0].victims, vec!["10.0.0.9".to_string()]);
    assert_eq!(out[0].attacker_count, 300);
    assert_eq!(out[0].service, "from udp/53");
    assert!(
        out[0].line.starts_with("DDoS: 300 hosts (198.51.100.")
            && out[0]
                .line
                .contains(", ...) -> 10.0.0.9 from udp/53, 300 flows"),
        "{}",
        out[0].line
    );
    assert!(
        out[1]
            .line
            .starts_with("SSH Patator: 10.0.0.66 -> 10.0.0.9 on tcp/22, 40 flows"),
        "{}",
        out[1].line
    );
}

#[test]
fn services_count_both_directions_with_the_port_as_a_number() {
    let t = |n| Tally {
        flows: n,
        ..Tally::default()
    };
    let to = HashMap::from([
        ("udp/53".to_string(), t(2)),
        ("icmp type 8 code 0".into(), t(5)),
    ]);
    let from = HashMap::from([("udp/53".to_string(), t(40)), ("tcp/51234".into(), t(1))]);
    let v = top_services(to, from);
    assert_eq!(v.len(), 2, "a one-flow client port is left out: {v:?}");
    assert_eq!(
        (v[0].service.as_str(), v[0].flows_to, v[0].flows_from),
        ("udp/53", 2, 40)
    );
    assert_eq!((v[0].proto.as_str(), v[0].port), ("udp", Some(53)));
    assert_eq!((v[1].proto.as_str(), v[1].port), ("icmp", None));
}

#[test]
fn flows_read_as_people_write_them() {
    assert_eq!(
        flow_text(1, "1.2.3.4", 3, "5.6.7.8", 1),
        "ICMP 1.2.3.4 -> 5.6.7.8 type 3 code 1"
    );
    assert_eq!(
        flow_text(6, "1.2.3.4", 5000, "::1", 80),
        "TCP 1.2.3.4:5000 -> [::1]:80"
    );
    assert_eq!(service_to(58, 128, 0), "icmpv6 type 128 code 0");
    assert_eq!(service_from(1, 8), None);
    assert_eq!(thousands(1234567), "1,234,567");
    assert_eq!(thousands(999), "999");
}
