//! Synthetic captures go through the real flow engine and every flow gets the generator's
//! label: no flow unlabelled, the attack present, one flow per generated conversation.

use std::collections::HashSet;

use weir_train::data::synthetic_capture;
use weir_train::{class_index, NORMAL};

const SEEDS: [u64; 2] = [42, 7];

#[test]
fn every_scenario_is_labelled_flow_by_flow() {
    let normal = class_index(NORMAL).unwrap();
    for s in weir_synth::SCENARIOS {
        for seed in SEEDS {
            let g = weir_synth::generate(s, seed);
            let c = synthetic_capture(&g).expect("a synthetic capture reads");
            assert!(
                c.warning.is_none(),
                "{} seed {seed}: {:?}",
                s.name,
                c.warning
            );
            let class = class_index(s.class).expect("scenario classes are weir classes");
            let attack = c.labels.iter().filter(|l| **l == class).count();
            assert!(attack > 0, "{}: no {} flow", s.name, s.class);
            if class != normal {
                assert!(
                    c.labels.contains(&normal),
                    "{}: the attack runs inside benign traffic",
                    s.name
                );
            }
            // Every generated conversation (distinct 5-tuple) is a flow of its own, never merged
            // into another. A tuple may give more than one flow: a SYN scan that probes a
            // port twice from one source port opens a new flow after the RST closed the first.
            let tuples: HashSet<_> = g
                .labels
                .iter()
                .map(|l| {
                    let (a, b) = ((l.src, l.sport), (l.dst, l.dport));
                    (a.min(b), a.max(b), l.proto)
                })
                .collect();
            let flows: HashSet<_> = c
                .flows
                .iter()
                .map(|f| {
                    let icmp = f.proto == 1;
                    let p = |port: u16| if icmp { 0 } else { port };
                    let (a, b) = ((f.src_ip, p(f.src_port)), (f.dst_ip, p(f.dst_port)));
                    (a.min(b), a.max(b), f.proto)
                })
                .collect();
            let tuples: HashSet<_> = tuples
                .into_iter()
                .map(|(a, b, p)| ((a.0.into(), a.1), (b.0.into(), b.1), p))
                .collect();
            assert_eq!(flows, tuples, "{} seed {seed}", s.name);
            assert!(c.flows.len() >= tuples.len());
        }
    }
}

#[test]
fn a_scan_shows_in_the_context_features() {
    let g = weir_synth::generate(weir_synth::scenario("port-scan").unwrap(), 3);
    let c = synthetic_capture(&g).unwrap();
    let ports = weir_flow::FEATURES
        .iter()
        .position(|f| f.name == "Src Dst Ports 30s")
        .unwrap();
    let class = class_index("Port Scan").unwrap();
    let max = c
        .flows
        .iter()
        .zip(&c.labels)
        .filter(|(_, l)| **l == class)
        .map(|(f, _)| f.features[ports])
        .fold(0.0, f64::max);
    assert!(max >= 100.0, "a scanner reaches many ports in 30 s: {max}");
}
