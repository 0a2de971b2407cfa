//! Sharding the flow table across threads changes nothing but speed: the same flows, the same
//! features, the same summary, in an order that depends only on the input.

mod common;

use common::{flows_with, shared};
use weir_flow::{ExtractOptions, FlowRecord};

fn key(f: &FlowRecord) -> String {
    format!("{f:?}")
}

#[test]
fn sharded_tables_give_the_flows_of_one_table() {
    let files = [
        "realistic/ndpi/whatsapp_login_call.pcap",
        "realistic/ndpi/6in4tunnel.pcap",
        "realistic/zeek/mixed-vlan-mpls.pcap",
        "realistic/ndpi/ip_fragmented_garbage.pcap",
        "realistic/zeek/ipv4__fragmented-4.pcap",
        "realistic/ndpi/viber.pcap",
    ];
    for file in files {
        let path = shared().join("corpus").join(file);
        let (one, s1) = flows_with(&path, &ExtractOptions::default());
        for shards in [2, 3] {
            let opts = ExtractOptions {
                shards,
                batch: 5,
                ..ExtractOptions::default()
            };
            let (many, s) = flows_with(&path, &opts);
            let (again, _) = flows_with(&path, &opts);
            assert_eq!(
                many, again,
                "{file}: order must not depend on thread timing"
            );
            let mut a: Vec<String> = one.iter().map(key).collect();
            let mut b: Vec<String> = many.iter().map(key).collect();
            a.sort();
            b.sort();
            assert_eq!(a, b, "{file} with {shards} shards");
            assert_eq!(
                (
                    s.packets,
                    s.packets_in_flows,
                    s.flows,
                    &s.skipped,
                    s.file_bytes
                ),
                (
                    s1.packets,
                    s1.packets_in_flows,
                    s1.flows,
                    &s1.skipped,
                    s1.file_bytes
                ),
                "{file} with {shards} shards"
            );
        }
    }
}

#[test]
fn sharded_tables_keep_the_flows_before_damage() {
    let bytes =
        std::fs::read(shared().join("corpus/realistic/ndpi/whatsapp_login_call.pcap")).unwrap();
    let cut = &bytes[..bytes.len() * 2 / 3];
    let run = |shards| {
        let opts = ExtractOptions {
            shards,
            ..ExtractOptions::default()
        };
        let mut flows = Vec::new();
        let s = weir_flow::extract(cut, &opts, |b| flows.extend(b), |_| {}).unwrap();
        let mut keys: Vec<String> = flows.iter().map(key).collect();
        keys.sort();
        (keys, s.packets, s.error.map(|e| e.to_string()))
    };
    let one = run(1);
    assert!(
        one.2.as_deref().is_some_and(|e| e.contains("truncated")),
        "{:?}",
        one.2
    );
    assert!(!one.0.is_empty());
    assert_eq!(run(2), one);
}
