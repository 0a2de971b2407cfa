//! Leave-one-source-out with the model in Rust, for iterating on the recipe and detectors.
//! `cargo run --release -p weir-train --example loso -- [EPOCHS] [MIN_PROB]`
use std::path::Path;
use weir_flow::BehaviourTracker;
use weir_train::data::{label_capture, load_flow_csv, load_manifest};
use weir_train::eval::Evaluation;
use weir_train::*;

fn main() {
    let a: Vec<String> = std::env::args().collect();
    let epochs: usize = a.get(1).and_then(|s| s.parse().ok()).unwrap_or(30);
    let t: f32 = a.get(2).and_then(|s| s.parse().ok()).unwrap_or(0.9);
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
    let mut recipe = Recipe::default();
    recipe.train.epochs = epochs;
    let (fold, names) = source_folds(&corpus.captures);
    let mut e = [Evaluation::at(t), Evaluation::at(t), Evaluation::at(t)];
    for (k, name) in names.iter().enumerate() {
        let d = dataset(&corpus, |i| fold[i] != k, &recipe);
        let m = train(&d, &recipe, |_| {});
        for (i, c) in corpus
            .captures
            .iter()
            .enumerate()
            .filter(|(i, _)| fold[*i] == k)
        {
            let _ = i;
            let (p, q, an) = classify_in_rust(&m, c);
            let f = BehaviourTracker::new().observe(&c.flows);
            for (ev, d) in e
                .iter_mut()
                .zip([Decider::Both, Decider::Model, Decider::Behaviour])
            {
                add_capture(ev, c, &p, &q, &an, &f, d);
            }
        }
        let (f, n) = e[0].found();
        eprintln!("source {k} {name}: found so far {f}/{n}");
    }
    for (ev, what) in e.iter().zip(["BOTH", "MODEL", "BEHAVIOUR"]) {
        println!("==== {what}");
        let r = ev.report();
        println!(
            "{}",
            if what == "BOTH" {
                r
            } else {
                r.lines().take(12).collect::<Vec<_>>().join("\n")
            }
        );
    }
}
