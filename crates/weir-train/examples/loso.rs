//! Leave-one-source-out with the model in Rust, dumping every held-out flow's verdicts as CSV
//! (for choosing alert thresholds): `cargo run --release -p weir-train --example loso -- OUT.csv`
use std::io::Write;
use std::path::Path;
use weir_flow::BehaviourTracker;
use weir_train::data::{label_capture, load_flow_csv, load_manifest};
use weir_train::*;

fn main() {
    let out = std::env::args().nth(1).unwrap_or("/tmp/loso.csv".into());
    let shared = data::shared_dir(Path::new("."));
    let entries = load_manifest(Path::new("models/captures.csv"), &shared).unwrap();
    let captures: Vec<_> = par_map(&entries, 2, |e| label_capture(&shared, e).unwrap());
    let cic =
        load_flow_csv(&shared.join("labeled/flows/cicids2017_improved_stratified.csv")).unwrap();
    let synthetic = synthetic_suite(SYNTH_TRAIN, 2).unwrap();
    let corpus = Corpus {
        captures,
        cic,
        synthetic,
    };
    let recipe = Recipe::default();
    let (fold, names) = source_folds(&corpus.captures);
    let mut w = std::io::BufWriter::new(std::fs::File::create(&out).unwrap());
    writeln!(
        w,
        "file,source,capture_class,label,pred,prob,energy,behaviour"
    )
    .unwrap();
    for (k, name) in names.iter().enumerate() {
        let d = dataset(&corpus, |i| fold[i] != k, &recipe);
        let m = train(&d, &recipe, |_| {});
        for c in corpus
            .captures
            .iter()
            .enumerate()
            .filter(|(i, _)| fold[*i] == k)
            .map(|(_, c)| c)
        {
            let (p, q, en) = classify_in_rust(&m, c);
            let f = BehaviourTracker::new().observe(&c.flows);
            for i in 0..c.flows.len() {
                writeln!(
                    w,
                    "{},{},{},{},{},{},{},{}",
                    c.entry.file,
                    name,
                    c.entry.class,
                    CLASSES[c.labels[i] as usize],
                    CLASSES[p[i] as usize],
                    q[i],
                    en[i],
                    f[i].as_ref().map_or("", |f| f.class.name())
                )
                .unwrap();
            }
        }
        eprintln!("[{}/{}] {name}", k + 1, names.len());
    }
}
