//! The host-behaviour detectors alone over the labelled captures (or, with `--synth`, the
//! synthetic test suite): per capture what fired, then the totals. `DUMP=DIR` also writes each
//! capture's per-flow findings (one class or an empty line per flow) into DIR, for
//! `examples/loso.rs`'s CSV. `cargo run --release -p weir-train --example behaviour`
use std::collections::BTreeMap;
use std::path::Path;
use weir_flow::BehaviourTracker;
use weir_train::data::{label_capture, load_manifest};
use weir_train::{family, par_map, NORMAL};

fn main() {
    let shared = weir_train::data::shared_dir(Path::new("."));
    let entries = load_manifest(Path::new("models/captures.csv"), &shared).unwrap();
    let synth = if std::env::args().any(|a| a == "--synth") {
        weir_train::synthetic_suite(weir_train::SYNTH_TEST, 2).unwrap()
    } else {
        Vec::new()
    };
    let items: Vec<Option<usize>> = if synth.is_empty() {
        (0..entries.len()).map(Some).collect()
    } else {
        (0..synth.len()).map(|i| Some(i + 1_000_000)).collect()
    };
    let res = par_map(&items, 2, |i| {
        let i = i.unwrap();
        let c = if i >= 1_000_000 {
            synth[i - 1_000_000].clone()
        } else {
            label_capture(&shared, &entries[i]).unwrap()
        };
        let mut t = BehaviourTracker::new();
        let v = t.observe(&c.flows);
        if let Ok(dir) = std::env::var("DUMP") {
            let name = c.entry.file.replace('/', "~");
            let body: String = v
                .iter()
                .map(|f| format!("{}\n", f.as_ref().map_or("", |f| f.class.name())))
                .collect();
            std::fs::write(format!("{dir}/{name}"), body).unwrap();
        }
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
            println!(
                "{} {file} [{class}] {n} flows: {by:?} {ev}",
                if ok { "ok " } else { "-- " }
            );
        }
    }
    println!("attack captures found {found}/{att}; benign flows flagged {bflag}/{bflows}; benign captures with any {bcap}/{bcaps}");
}
