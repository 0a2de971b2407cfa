//! The merged model as ONNX Runtime runs it: version 1 published by the merge loads in ort,
//! its outputs match the Rust forward pass of the averaged weights to float tolerance, and the
//! same updates merged again give the same bytes.

use weir_classify::Classifier;
use weir_fl::aggregate::Aggregation;
use weir_fl::params::{self, Gauss};
use weir_fl::registry::Registry;
use weir_fl::round::{self, MergeConfig, Merger};
use weir_fl::update::{self, Provenance, SigningKey};
use weir_store::LocalStore;

/// Registry at version 0 (the shipped model), three nodes' updates, one merge step.
fn merged(dir: &std::path::Path) -> (weir_model::Mlp, Vec<Vec<f32>>, Vec<u8>) {
    let store = LocalStore::new(dir);
    let m0 = weir_model::read_model(weir_classify::SHIPPED_MODEL).unwrap();
    let reg = Registry::new(&store, None);
    reg.init(&m0, None).unwrap();
    let n = params::count(&params::shapes(&m0));
    let mut deltas = Vec::new();
    for i in 1..=3u8 {
        let key = SigningKey::from_seed(&format!("edge-{i}"), [i; 32]).unwrap();
        round::register_node(&store, &key.id, &key.public_hex()).unwrap();
        let mut g = Gauss::new(u64::from(i));
        let d: Vec<f32> = (0..n).map(|_| 0.002 * g.draw()).collect();
        let classes = m0.n_classes();
        let mut counts = vec![0u64; classes];
        counts[0] = 100;
        let s = update::sign(
            &key,
            &d,
            &Provenance {
                base_version: 0,
                round: 1,
                samples: 100,
                class_counts: counts,
            },
            5.0,
            None,
            params::shapes(&m0),
        );
        round::upload(&store, &s).unwrap();
        deltas.push(d);
    }
    let cfg = MergeConfig {
        aggregation: Aggregation::default(),
        quorum: 3,
        ..MergeConfig::default()
    };
    let r = Merger::new(&store, None, cfg)
        .with_noise_seed(1)
        .step(update::now_unix())
        .unwrap();
    assert_eq!(r.closed.unwrap().version, Some(1));
    let bytes = store.get(&weir_fl::registry::model_key(1)).unwrap();
    (m0, deltas, bytes)
}

use weir_store::Store;

#[test]
fn the_merged_model_runs_in_onnx_runtime_as_the_rust_forward_pass() {
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (m0, deltas, bytes) = merged(a.path());
    // FedAvg of equal counts: the plain mean of the three updates, added to version 0.
    let n = deltas[0].len();
    let mean: Vec<f32> = (0..n)
        .map(|j| deltas.iter().map(|d| f64::from(d[j])).sum::<f64>() as f32 / 3.0)
        .collect();
    let expected = params::with_params(&m0, &params::add(&params::flatten(&m0), &mean));
    let published = weir_model::read_model(&bytes).unwrap();
    for (p, e) in params::flatten(&published)
        .iter()
        .zip(params::flatten(&expected))
    {
        assert!((p - e).abs() <= 1e-6 * e.abs().max(1.0), "{p} vs {e}");
    }
    // ONNX Runtime on real flows' features against the Rust forward pass.
    let mut c = Classifier::from_bytes(
        &bytes,
        &weir_classify::Options {
            device: weir_classify::Device::Cpu,
            threads: 1,
            ..weir_classify::Options::default()
        },
    )
    .expect("the merged model loads in ONNX Runtime (scripts/setup-ort.sh)");
    assert!(c.info().model_version.ends_with("+fl.v1"));
    let f = m0.n_features();
    let mut g = Gauss::new(9);
    let x: Vec<f32> = (0..64 * f)
        .map(|i| {
            if i % 17 == 0 {
                f32::NAN
            } else {
                (3.0 * g.draw()).exp()
            }
        })
        .collect();
    let ort = c.classify(&x).unwrap();
    let rust = expected.forward(&x);
    let k = m0.n_classes();
    for (i, (a, b)) in ort
        .probabilities
        .iter()
        .zip(&rust.probabilities)
        .enumerate()
    {
        assert!(
            (a - b).abs() < 1e-4,
            "row {} class {}: ort {a} rust {b}",
            i / k,
            i % k
        );
    }
    for (a, b) in ort.anomaly.iter().zip(&rust.energy) {
        assert!(
            (a - b).abs() < 1e-3 * b.abs().max(1.0),
            "energy ort {a} rust {b}"
        );
    }
    // The same updates merged again, elsewhere: the same bytes.
    let (_, _, again) = merged(b.path());
    assert_eq!(bytes, again);
}
