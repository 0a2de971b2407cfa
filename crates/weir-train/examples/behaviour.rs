//! The host-behaviour detectors alone over the labelled captures: per capture what fired.
//! `cargo run --release -p weir-train --example behaviour [-- --all]`
use std::collections::BTreeMap;
use std::path::Path;
use weir_flow::BehaviourTracker;
use weir_train::data::{label_capture, load_manifest};
use weir_train::{family, par_map, NORMAL};

fn main() {
    let all = std::env::args().any(|a| a == "--all");
    let shared = weir_train::data::shared_dir(Path::new("."));
    let entries = load_manifest(Path::new("models/captures.csv"), &shared).unwrap();
    let res = par_map(&entries, 2, |e| {
        let c = label_capture(&shared, e).unwrap();
        let mut t = BehaviourTracker::new();
        let v = t.observe(&c.flows);
        let mut by: BTreeMap<String, usize> = BTreeMap::new();
        let mut ev = String::new();
        for f in v.iter().flatten() {
            let k = format!("{}:{}", f.class, f.detector.name());
            if !by.contains_key(&k) {
                ev = f.evidence.clone();
            }
            *by.entry(k).or_default() += 1;
        }
        (
            c.entry.file.clone(),
            c.entry.class.clone(),
            c.flows.len(),
            by,
            ev,
        )
    });
    let (mut found, mut att, mut bflows, mut bflag, mut bcap, mut bcaps) = (0, 0, 0, 0, 0, 0);
    for (file, class, n, by, ev) in &res {
        let flagged: usize = by.values().sum();
        if class == NORMAL {
            bcaps += 1;
            bflows += n;
            bflag += flagged;
            if flagged > 0 {
                bcap += 1;
                println!("FP  {file} {n} flows: {by:?} {ev}");
            }
        } else {
            att += 1;
            let ok = by
                .keys()
                .any(|k| family(k.split(':').next().unwrap()) == family(class));
            found += ok as usize;
            if all || !ok || true {
                println!(
                    "{} {file} [{class}] {n} flows: {by:?} {ev}",
                    if ok { "ok " } else { "-- " }
                );
            }
        }
    }
    println!("attack captures found {found}/{att}; benign flows flagged {bflag}/{bflows}; benign captures with any {bcap}/{bcaps}");
}
