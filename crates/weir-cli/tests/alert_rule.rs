//! One alert rule: on every flow of every capture of ../shared/labeled (the attack captures
//! of models/captures.csv and the benign ones of NORMAL_FROM_CORPUS.txt), production's verdict
//! (the pipeline's split and classifier stages as `weir analyze` and the functions run them:
//! the `alert` column of the result objects) and the evaluation's (`weir eval`'s path: flows,
//! feature rows, the same model, the behaviour detectors, `weir_train::decide_flows`) alert
//! on the same flows, in the same class. Both call `weir_model::AlertScore`; this checks that
//! what each feeds it (flows, features, findings, thresholds, lone packets) agrees too.

use std::path::PathBuf;

use weir_classify::Classifier;
use weir_pipeline::{classify_shards, result_key, split, LocalStore, SplitOptions, Store};
use weir_records::columns::{strings, u64s};

fn shared() -> PathBuf {
    std::env::var("WEIR_SHARED")
        .map(PathBuf::from)
        .unwrap_or_else(|_| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared"))
}

#[test]
fn production_and_evaluation_alert_on_the_same_flows() {
    let shared = shared();
    let repo = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let entries = weir_train::data::load_manifest(&repo.join("models/captures.csv"), &shared)
        .expect("models/captures.csv and shared/labeled (WEIR_SHARED)");
    assert!(entries.len() > 150, "{} captures", entries.len());
    let mut model =
        Classifier::shipped_cpu().expect("model and ONNX Runtime (scripts/setup-ort.sh)");
    let info = model.info().clone();
    let normal = weir_train::class_index(weir_train::NORMAL).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let store = LocalStore::new(dir.path());
    let (mut flows, mut alerts, mut captures) = (0usize, 0usize, 0usize);
    let mut differ = Vec::new();
    for (n, entry) in entries.iter().enumerate() {
        let path = shared.join(&entry.file);
        let Ok(c) = weir_train::data::label_capture(&shared, entry) else {
            continue; // not a capture at all: neither path has flows
        };
        // Evaluation's path.
        let x: Vec<f32> = c
            .flows
            .iter()
            .flat_map(weir_train::data::feature_row)
            .collect();
        let p = model.classify(&x).unwrap();
        let prob: Vec<f32> = (0..p.len())
            .map(|i| p.row(i)[p.predicted[i] as usize])
            .collect();
        let findings = weir_flow::BehaviourTracker::new().observe(&c.flows);
        let (eval_class, _) = weir_train::decide_flows(
            &info.alert_thresholds,
            &p.predicted,
            &prob,
            &findings,
            &c.flows,
            model.min_probability(),
        );
        // Production's path.
        let key = format!("uploads/{n:04}.pcap");
        store.put_file(&key, &path).unwrap();
        let mut msgs = Vec::new();
        split(&store, &key, &SplitOptions::default(), |m| {
            msgs.push(m.clone());
            Ok(())
        })
        .unwrap();
        let (mut prod_alert, mut prod_class) = (Vec::new(), Vec::new());
        for r in classify_shards(&store, &mut model, &msgs) {
            r.unwrap();
        }
        for m in &msgs {
            let df = weir_records::parquet_to_frame(
                &store.get(&result_key(&m.capture, m.shard)).unwrap(),
            )
            .unwrap();
            prod_alert.extend(u64s(&df, "alert").unwrap().into_iter().map(|a| a != 0));
            prod_class.extend(strings(&df, "class").unwrap());
        }
        assert_eq!(prod_alert.len(), c.flows.len(), "{}: flows", entry.file);
        captures += 1;
        for (i, (&a, cl)) in prod_alert.iter().zip(&prod_class).enumerate() {
            let e = eval_class[i] != normal;
            let same_class = !a || weir_train::CLASSES[eval_class[i] as usize] == cl.as_str();
            if a != e || !same_class {
                differ.push(format!(
                    "{} flow {i}: production {} {cl}, evaluation {} {}",
                    entry.file,
                    if a { "alerts" } else { "does not alert" },
                    if e { "alerts" } else { "does not alert" },
                    weir_train::CLASSES[eval_class[i] as usize]
                ));
            }
        }
        flows += c.flows.len();
        alerts += prod_alert.iter().filter(|a| **a).count();
    }
    eprintln!("{captures} captures, {flows} flows, {alerts} alerts: the same in both");
    assert!(
        captures > 150 && alerts > 1000,
        "{captures} captures, {alerts} alerts"
    );
    assert!(
        differ.is_empty(),
        "{} flows differ:\n{}",
        differ.len(),
        differ
            .iter()
            .take(20)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n")
    );
}
