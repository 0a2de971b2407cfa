//! The classifier against the real ONNX Runtime (the library `scripts/setup-ort.sh` fetches;
//! these tests fail, with the message that says so, when it is missing).

use weir_classify::{Classifier, ClassifyError, Device, Options, Provider};
use weir_model::train::{train, Dataset, Pcg, TrainConfig};
use weir_model::{test_model, Mlp, ModelError, ModelInfo};

fn opts_for(m: &Mlp) -> Options {
    Options {
        device: Device::Cpu,
        threads: 1,
        batch: 7,
        feature_version: m.info.feature_version.clone(),
        features: m.n_features(),
        cuda_device: 0,
        spin: false,
        min_probability: weir_classify::DEFAULT_MIN_PROBABILITY,
    }
}

/// Rows with a spread of magnitudes, signs, zeros, and some NaN / ±∞ cells.
fn rows(n: usize, f: usize, seed: u64, nonfinite: bool) -> Vec<f32> {
    let mut rng = Pcg::new(seed);
    (0..n * f)
        .map(|i| {
            let u = rng.unit();
            match (nonfinite, i % 53) {
                (true, 5) => f32::NAN,
                (true, 17) => f32::INFINITY,
                (true, 29) => f32::NEG_INFINITY,
                _ if i % 11 == 0 => 0.0,
                _ => (u - 0.3) * 10f32.powi((i % 9) as i32),
            }
        })
        .collect()
}

fn assert_matches(c: &mut Classifier, m: &Mlp, x: &[f32]) {
    let got = c.classify(x).expect("classify");
    let want = m.forward(x);
    assert_eq!(got.len(), want.energy.len());
    for (i, (g, w)) in got
        .probabilities
        .iter()
        .zip(&want.probabilities)
        .enumerate()
    {
        assert!((g - w).abs() <= 2e-5, "probability {i}: ort {g} rust {w}");
    }
    for (i, (g, w)) in got.anomaly.iter().zip(&want.energy).enumerate() {
        assert!(g.is_finite(), "score {i} is {g}");
        assert!(
            (g - w).abs() <= 1e-4 * w.abs().max(1.0),
            "score {i}: ort {g} rust {w}"
        );
    }
    for (i, p) in got.predicted.iter().enumerate() {
        let row = got.row(i);
        assert!(row.iter().all(|v| *v <= row[*p as usize]));
    }
}

#[test]
fn onnx_matches_the_rust_forward_pass_in_batches() {
    let m = test_model(weir_flow::N_FEATURES, 32, 24, 3);
    let mut c = Classifier::from_bytes(&m.to_onnx(), &opts_for(&m)).unwrap();
    assert_eq!(c.provider(), Provider::Cpu);
    assert_eq!(c.info(), &m.info);
    // 20 rows through batches of 7: 7 + 7 + 6
    assert_matches(&mut c, &m, &rows(20, weir_flow::N_FEATURES, 1, false));
    let empty = c.classify(&[]).unwrap();
    assert!(empty.is_empty());
}

#[test]
fn nan_and_infinite_features_are_handled_not_propagated() {
    let m = test_model(weir_flow::N_FEATURES, 32, 24, 4);
    let mut c = Classifier::from_bytes(&m.to_onnx(), &opts_for(&m)).unwrap();
    let x = rows(30, weir_flow::N_FEATURES, 2, true);
    let p = c.classify(&x).unwrap();
    assert!(p.nonfinite_rows > 0);
    assert!(p.probabilities.iter().all(|v| v.is_finite()));
    assert_matches(&mut c, &m, &x);
    assert!(matches!(
        c.classify(&x[..100]),
        Err(ClassifyError::Shape {
            len: 100,
            features: weir_flow::N_FEATURES
        })
    ));
}

#[test]
fn a_trained_model_runs_the_same_in_ort() {
    // heavy-tailed 3-class data, trained by the training code, then exported
    let mut rng = Pcg::new(9);
    let mut d = Dataset::new(6);
    for i in 0..900 {
        let c = i % 3;
        let row: Vec<f32> = (0..6)
            .map(|j| {
                ((c * 3 + j) as f32).powi(3) * (0.5 + rng.unit()) * if j == 2 { -1.0 } else { 1.0 }
            })
            .collect();
        d.push(&row, c as u16, 1.0);
    }
    let info = ModelInfo {
        model_version: "weir-mlp/test-trained".into(),
        feature_version: "test".into(),
        classes: vec!["a".into(), "b".into(), "c".into()],
        features: (0..6).map(|j| format!("f{j}")).collect(),
        anomaly_reference: Vec::new(),
        alert_thresholds: Vec::new(),
    };
    let cfg = TrainConfig {
        hidden: vec![16, 16],
        epochs: 5,
        ..Default::default()
    };
    let m = train(info, &d, &cfg, |_| {});
    let mut c = Classifier::from_bytes(&m.to_onnx(), &opts_for(&m)).unwrap();
    assert_matches(&mut c, &m, &d.x);
}

#[test]
fn bad_models_give_clear_errors() {
    let m = test_model(weir_flow::N_FEATURES, 8, 24, 5);
    let opts = opts_for(&m);
    let bytes = m.to_onnx();
    // not ONNX at all
    let e = Classifier::from_bytes(b"\x00\x01garbage that is not protobuf", &opts).unwrap_err();
    assert!(
        matches!(e, ClassifyError::Model(ModelError::Decode(_))),
        "{e}"
    );
    assert!(e.to_string().contains("weir train"), "{e}");
    // cut in half
    let e = Classifier::from_bytes(&bytes[..bytes.len() / 2], &opts).unwrap_err();
    assert!(matches!(e, ClassifyError::Model(_)), "{e}");
    // trained on another feature spec
    let mut other = m.clone();
    other.info.feature_version = "weir-features/0".into();
    let e = Classifier::from_bytes(&other.to_onnx(), &opts).unwrap_err();
    assert!(matches!(e, ClassifyError::FeatureVersion { .. }), "{e}");
    assert!(e.to_string().contains("weir-features/0"), "{e}");
    // the real engine's spec against a test model
    let e = Classifier::from_bytes(&bytes, &Options::default()).unwrap_err();
    assert!(matches!(e, ClassifyError::FeatureVersion { .. }), "{e}");
    // a missing file
    let e = Classifier::load(std::path::Path::new("/nonexistent/model.onnx"), &opts).unwrap_err();
    assert!(matches!(e, ClassifyError::ModelRead { .. }), "{e}");
    assert!(e.to_string().contains("/nonexistent/model.onnx"), "{e}");
    // metadata right but the graph broken: ONNX Runtime refuses it, an error, not a panic
    let mut broken = m.clone();
    broken.layers[1].weight.truncate(3);
    let e = Classifier::from_bytes(&broken.to_onnx(), &opts).unwrap_err();
    assert!(matches!(e, ClassifyError::Ort(_)), "{e}");
}

#[test]
fn cuda_is_loud_when_it_cannot_be_used_and_auto_falls_back() {
    let m = test_model(weir_flow::N_FEATURES, 8, 24, 6);
    let gpu_lib = weir_classify::runtime_path(true);
    if gpu_lib.parent().is_some_and(|d| d.ends_with("gpu")) {
        eprintln!(
            "GPU build of ONNX Runtime present ({}): skipping the no-CUDA check",
            gpu_lib.display()
        );
        return;
    }
    let e = Classifier::from_bytes(
        &m.to_onnx(),
        &Options {
            device: Device::Cuda,
            ..opts_for(&m)
        },
    )
    .unwrap_err();
    assert!(matches!(e, ClassifyError::Cuda(_)), "{e}");
    assert!(e.to_string().contains("--device cpu"), "{e}");
    let c = Classifier::from_bytes(
        &m.to_onnx(),
        &Options {
            device: Device::Auto,
            ..opts_for(&m)
        },
    )
    .unwrap();
    assert_eq!(c.provider(), Provider::Cpu);
}

/// A weir model whose graph or metadata was changed by `edit` (still valid ONNX).
fn edited(m: &Mlp, edit: impl FnOnce(&mut weir_model::onnx::ModelProto)) -> Vec<u8> {
    use prost::Message;
    let mut p = weir_model::onnx::ModelProto::decode(m.to_onnx().as_slice()).unwrap();
    edit(&mut p);
    p.encode_to_vec()
}

#[test]
fn a_model_with_other_outputs_or_no_classes_is_refused_at_load() {
    let m = test_model(12, 8, 4, 3);
    // The energy output renamed (node and graph output alike): a valid graph, not weir's.
    let renamed = edited(&m, |p| {
        let g = p.graph.as_mut().unwrap();
        for n in &mut g.node {
            for o in &mut n.output {
                if o == weir_model::OUT_ENERGY {
                    *o = "score".into();
                }
            }
        }
        for o in &mut g.output {
            if o.name.as_deref() == Some(weir_model::OUT_ENERGY) {
                o.name = Some("score".into());
            }
        }
    });
    match Classifier::from_bytes(&renamed, &opts_for(&m)) {
        Err(e @ ClassifyError::Unusable(_)) => {
            assert!(e.to_string().contains("energy"), "{e}");
            assert!(e.is_model_fault());
        }
        other => panic!("expected Unusable, got {:?}", other.map(|_| ())),
    }
    let no_classes = edited(&m, |p| {
        for kv in &mut p.metadata_props {
            if kv.key.as_deref() == Some("weir.classes") {
                kv.value = Some("[]".into());
            }
        }
    });
    match Classifier::from_bytes(&no_classes, &opts_for(&m)) {
        Err(e @ ClassifyError::Unusable(_)) => assert!(e.to_string().contains("no class"), "{e}"),
        other => panic!("expected Unusable, got {:?}", other.map(|_| ())),
    }
    // The untouched model loads and runs.
    let mut c = Classifier::from_bytes(&m.to_onnx(), &opts_for(&m)).unwrap();
    assert_eq!(c.classify(&rows(3, 12, 1, false)).unwrap().len(), 3);
}
