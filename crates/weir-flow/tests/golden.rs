//! Golden files: flows and every feature of a few small captures, checked into
//! crates/weir-flow/tests/golden/. A change in flow assembly or features shows up as a diff.
//! After an intended change: `UPDATE_GOLDEN=1 cargo test -p weir-flow --test golden` and review.

mod common;

use std::fmt::Write;
use std::path::PathBuf;

use common::{flows_of, shared};
use weir_flow::FEATURES;

fn render(path: &std::path::Path) -> String {
    let (flows, summary) = flows_of(path);
    let mut s = String::new();
    writeln!(
        s,
        "# packets {} in_flows {} flows {} skipped {:?} error {:?}",
        summary.packets,
        summary.packets_in_flows,
        summary.flows,
        summary.skipped,
        summary.error.map(|e| e.to_string())
    )
    .unwrap();
    for f in &flows {
        writeln!(
            s,
            "flow {} {} {}:{} -> {}:{} vlan {} tunnel {:?} ts {}..{} pkts {}/{} bytes {}/{} offsets {}..{} end {}",
            f.community_id, f.proto, f.src_ip, f.src_port, f.dst_ip, f.dst_port, f.vlan, f.tunnel, f.first_ts_ns, f.last_ts_ns,
            f.packets_fwd, f.packets_bwd, f.bytes_fwd, f.bytes_bwd, f.first_offset, f.last_offset, f.end_reason.name()
        )
        .unwrap();
        for (spec, v) in FEATURES.iter().zip(f.features.iter()) {
            // 9 significant digits: stable across platforms, precise enough to catch real changes.
            writeln!(s, "  {} = {:.9e}", spec.name, v).unwrap();
        }
    }
    s
}

fn check(name: &str, capture: PathBuf) {
    let golden = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden")
        .join(format!("{name}.txt"));
    let actual = render(&capture);
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::create_dir_all(golden.parent().unwrap()).unwrap();
        std::fs::write(&golden, &actual).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(&golden)
        .unwrap_or_else(|_| panic!("missing {}; run with UPDATE_GOLDEN=1", golden.display()));
    if expected != actual {
        let first = expected
            .lines()
            .zip(actual.lines())
            .position(|(a, b)| a != b);
        panic!(
            "{name}: output differs from {} at line {:?}:\n  expected: {:?}\n  actual:   {:?}\n(UPDATE_GOLDEN=1 to accept an intended change)",
            golden.display(),
            first.map(|i| i + 1),
            first.and_then(|i| expected.lines().nth(i)),
            first.and_then(|i| actual.lines().nth(i)),
        );
    }
}

#[test]
fn sample_loopback_http_and_udp() {
    check(
        "loopback",
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../samples/loopback.pcapng"),
    );
}

#[test]
fn vlan_and_mpls() {
    check(
        "mixed-vlan-mpls",
        shared().join("corpus/realistic/zeek/mixed-vlan-mpls.pcap"),
    );
}

#[test]
fn six_in_four_tunnel() {
    check(
        "6in4tunnel",
        shared().join("corpus/realistic/ndpi/6in4tunnel.pcap"),
    );
}

#[test]
fn tcp_flag_edge_cases() {
    check(
        "one_way_all_flags",
        shared().join("corpus/robustness/esnet-tcp-control/one_way_all_flags.pcap"),
    );
}
