//! Tests of `round`.

use super::*;
use crate::update::{Provenance, UpdateOptions};
use weir_store::LocalStore;

fn node(i: u8) -> SigningKey {
    SigningKey::from_seed(&format!("edge-{i}"), [i; 32]).unwrap()
}

fn shifted(m: &Mlp, by: f32) -> Mlp {
    let p: Vec<f32> = params::flatten(m).iter().map(|x| x + by).collect();
    params::with_params(m, &p)
}

/// `key`'s update of `global` moved by `by` in every parameter, from version `base` for
/// `round`, clipped to `clip` (10 samples, three classes).
fn made(
    key: &SigningKey,
    global: &Mlp,
    base: u64,
    round: u64,
    by: f32,
    clip: f32,
) -> update::Signed {
    update::make(
        key,
        global,
        &shifted(global, by),
        &Provenance {
            base_version: base,
            round,
            samples: 10,
            class_counts: vec![4, 3, 3],
        },
        &UpdateOptions {
            clip,
            ..UpdateOptions::default()
        },
        &mut Gauss::new(1),
    )
}

fn push(
    store: &dyn Store,
    key: &SigningKey,
    global: &Mlp,
    base: u64,
    round: u64,
    by: f32,
) -> String {
    upload(store, &made(key, global, base, round, by, 0.5)).unwrap()
}

#[test]
fn a_round_closes_at_quorum_publishes_once_and_records_refusals() {
    let dir = tempfile::tempdir().unwrap();
    let store = LocalStore::new(dir.path());
    let registry_key = SigningKey::from_seed("registry", [42; 32]).unwrap();
    let reg = Registry::new(&store, Some(registry_key.public_hex()));
    let m0 = weir_model::test_model(4, 6, 3, 1);
    reg.init(&m0, Some(&registry_key)).unwrap();
    for i in 1..=3 {
        register_node(&store, &format!("edge-{i}"), &node(i).public_hex()).unwrap();
    }
    assert!(register_node(&store, "../x", &node(1).public_hex()).is_err());
    let cfg = MergeConfig {
        quorum: 2,
        aggregation: Aggregation::default(),
        ..MergeConfig::default()
    };
    let merger = Merger::new(&store, Some(&registry_key), cfg.clone());
    // One good update: not yet a quorum.
    push(&store, &node(1), &m0, 0, 1, 0.1);
    let r = merger.step(now_unix()).unwrap();
    assert_eq!(
        (r.judged.len(), r.accepted, r.closed.is_none()),
        (1, 1, true)
    );
    // The same node again (a second update this round), an unregistered node, a stale base.
    push(&store, &node(1), &m0, 0, 1, 0.02);
    push(&store, &node(9), &m0, 0, 1, 0.01);
    push(&store, &node(3), &m0, 7, 1, 0.01);
    let r = merger.step(now_unix()).unwrap();
    let tags: Vec<&str> = r
        .judged
        .iter()
        .filter_map(|v| v.rejection.as_ref().map(|r| r.tag()))
        .collect();
    assert_eq!(tags.len(), 3, "{r:?}");
    assert!(
        tags.contains(&"replay") && tags.contains(&"unknown_node") && tags.contains(&"stale_base")
    );
    assert!(r.closed.is_none());
    // Node 2's good update makes the quorum.
    push(&store, &node(2), &m0, 0, 1, 0.1);
    let r = merger.step(now_unix()).unwrap();
    let closed = r.closed.unwrap();
    assert_eq!(
        (closed.outcome.as_str(), closed.version),
        ("published", Some(1))
    );
    // A second merge step (say, a concurrent Lambda) finds round 2 open and nothing to do.
    let r2 = Merger::new(&store, Some(&registry_key), cfg)
        .step(now_unix())
        .unwrap();
    assert_eq!((r2.round, r2.closed), (2, None));
    let card = reg.card(1).unwrap();
    assert_eq!(card.included.len(), 2);
    assert_eq!(card.excluded.len(), 3);
    assert!(card
        .excluded
        .iter()
        .any(|e| e.reason.contains("stale base")));
    let v1 = reg.current(Some(&m0)).unwrap();
    assert_eq!((v1.pointer.version, v1.pointer.round), (1, 2));
    assert!(
        v1.model.info.model_version.ends_with("+fl.v1"),
        "{}",
        v1.model.info.model_version
    );
    // The merged model is the global model plus the mean of the two clipped updates.
    let step = params::sub(&params::flatten(&v1.model), &params::flatten(&m0));
    assert!(
        (params::norm(&step) - 0.5).abs() < 1e-3,
        "{}",
        params::norm(&step)
    );
}

#[test]
fn the_gate_refuses_a_worse_model_and_the_round_moves_on() {
    let dir = tempfile::tempdir().unwrap();
    let store = LocalStore::new(dir.path());
    let m0 = weir_model::test_model(4, 6, 3, 1);
    let reg = Registry::new(&store, None);
    reg.init(&m0, None).unwrap();
    register_node(&store, "edge-1", &node(1).public_hex()).unwrap();
    // An evaluation set labelled by the current model: any big change makes it worse.
    let mut d = Dataset::new(4);
    let mut g = Gauss::new(5);
    for _ in 0..300 {
        let row: Vec<f32> = (0..4).map(|_| 3.0 * g.draw()).collect();
        d.push(&row, 0, 1.0);
    }
    d.y = predict(&m0, &d);
    let back = decode_eval(&encode_eval(&d)).unwrap();
    assert_eq!((back.x.clone(), back.y.clone()), (d.x.clone(), d.y.clone()));
    store.put(EVAL_KEY, &encode_eval(&d)).unwrap();
    let cfg = MergeConfig {
        quorum: 1,
        bound: 100.0,
        aggregation: Aggregation::default(),
        gate_margin: 0.01,
        ..MergeConfig::default()
    };
    let s = update::sign(
        &node(1),
        &vec![-3.0; params::count(&params::shapes(&m0))],
        &Provenance {
            base_version: 0,
            round: 1,
            samples: 3,
            class_counts: vec![1, 1, 1],
        },
        100.0,
        None,
        params::shapes(&m0),
    );
    upload(&store, &s).unwrap();
    let r = Merger::new(&store, None, cfg).step(now_unix()).unwrap();
    let c = r.closed.unwrap();
    assert_eq!(c.outcome, "gated", "{c:?}");
    let m = c.metrics.unwrap();
    assert!(m.macro_f1 < m.base_macro_f1 && !m.passed);
    let p = reg.pointer().unwrap().unwrap().0;
    assert_eq!((p.version, p.round), (0, 2));
    assert_eq!(reg.versions().unwrap(), vec![0]);
}

/// Rows labelled by `teacher`.
fn taught(teacher: &Mlp, rows: usize, seed: u64) -> Dataset {
    let mut d = Dataset::new(teacher.n_features());
    let mut g = Gauss::new(seed);
    for _ in 0..rows {
        let row: Vec<f32> = (0..teacher.n_features()).map(|_| 2.0 * g.draw()).collect();
        d.push(&row, 0, 1.0);
    }
    d.y = predict(teacher, &d);
    d
}

#[test]
fn the_screen_leaves_out_an_update_that_points_away_and_says_why() {
    let dir = tempfile::tempdir().unwrap();
    let store = LocalStore::new(dir.path());
    let m0 = weir_model::test_model(4, 8, 3, 1);
    let teacher = weir_model::test_model(4, 8, 3, 7);
    let reg = Registry::new(&store, None);
    reg.init(&m0, None).unwrap();
    store
        .put(EVAL_KEY, &encode_eval(&taught(&teacher, 400, 3)))
        .unwrap();
    let shapes = params::shapes(&m0);
    let prov = Provenance {
        base_version: 0,
        round: 1,
        samples: 100,
        class_counts: vec![40, 30, 30],
    };
    // Two honest nodes learn the teacher from their own rows; the third sends the
    // reverse of an honest update (a sign flip), of honest size.
    let mut honest = Vec::new();
    for i in 1..=2u8 {
        let mut local = m0.clone();
        let cfg = weir_model::train::TrainConfig {
            epochs: 3,
            seed: u64::from(i),
            ..Default::default()
        };
        weir_model::train::fit(
            &mut local,
            &taught(&teacher, 400, 10 + u64::from(i)),
            &cfg,
            |_| {},
        );
        honest.push(params::sub(&params::flatten(&local), &params::flatten(&m0)));
    }
    let flipped: Vec<f32> = honest[0].iter().map(|x| -x).collect();
    for (i, d) in [(1u8, &honest[0]), (2, &honest[1]), (3, &flipped)] {
        register_node(&store, &node(i).id, &node(i).public_hex()).unwrap();
        let s = update::sign(&node(i), d, &prov, 100.0, None, shapes.clone());
        upload(&store, &s).unwrap();
    }
    let cfg = MergeConfig {
        quorum: 3,
        bound: 100.0,
        gate_margin: 1.0,
        aggregation: Aggregation {
            screen: Some(screen::Screen::default()),
            ..Aggregation::default()
        },
        ..MergeConfig::default()
    };
    let c = Merger::new(&store, None, cfg)
        .step(now_unix())
        .unwrap()
        .closed
        .unwrap();
    assert_eq!(c.outcome, "published", "{c:?}");
    assert_eq!((c.accepted, c.refused), (2, 1), "{c:?}");
    assert_eq!(c.screened.len(), 1, "{c:?}");
    assert_eq!(c.screened[0].node, "edge-3");
    assert_eq!(c.screened[0].tag, "screened");
    assert!(
        c.screened[0].reason.contains("cosine -"),
        "{}",
        c.screened[0].reason
    );
    let card = reg.card(1).unwrap();
    assert!(card
        .excluded
        .iter()
        .any(|e| e.node == "edge-3" && e.tag == "screened"));
    for inc in &card.included {
        assert!(inc.cosine.unwrap() > 0.0, "{inc:?}");
    }
    // Without an evaluation set nothing is screened.
    let none = Merger::new(&store, None, MergeConfig::default()).screen(
        &m0,
        None,
        1,
        &mut Vec::new(),
        &mut Vec::new(),
    );
    assert!(none.is_empty());
}

/// A store as another party sees it: listings under `hide` come back empty (a step that
/// listed before another step's write landed), and reading an object over `max_read`
/// bytes whole fails the test (the merge would have held it in memory).
struct Probe<'a> {
    inner: &'a LocalStore,
    hide: Vec<String>,
    max_read: u64,
}

impl Store for Probe<'_> {
    fn open(
        &self,
        key: &str,
    ) -> Result<Box<dyn std::io::Read + Send + '_>, weir_store::StoreError> {
        let n = std::fs::metadata(self.inner.path_of(key)).map_or(0, |m| m.len());
        assert!(n <= self.max_read, "the merge read {key} ({n} bytes) whole");
        self.inner.open(key)
    }
    fn version(&self, key: &str) -> Result<Option<String>, weir_store::StoreError> {
        self.inner.version(key)
    }
    fn open_version(
        &self,
        key: &str,
        version: &str,
    ) -> Result<Box<dyn std::io::Read + Send + '_>, weir_store::StoreError> {
        self.inner.open_version(key, version)
    }
    fn get_versioned(
        &self,
        key: &str,
    ) -> Result<Option<(Vec<u8>, String)>, weir_store::StoreError> {
        self.inner.get_versioned(key)
    }
    fn put_if(
        &self,
        key: &str,
        bytes: &[u8],
        cond: &Condition,
    ) -> Result<bool, weir_store::StoreError> {
        self.inner.put_if(key, bytes, cond)
    }
    fn put(&self, key: &str, bytes: &[u8]) -> Result<(), weir_store::StoreError> {
        self.inner.put(key, bytes)
    }
    fn exists(&self, key: &str) -> Result<bool, weir_store::StoreError> {
        self.inner.exists(key)
    }
    fn size(&self, key: &str) -> Result<Option<u64>, weir_store::StoreError> {
        self.inner.size(key)
    }
    fn list(&self, prefix: &str) -> Result<Vec<String>, weir_store::StoreError> {
        if self.hide.iter().any(|h| prefix.starts_with(h.as_str())) {
            return Ok(Vec::new());
        }
        self.inner.list(prefix)
    }
    fn delete(&self, key: &str) -> Result<(), weir_store::StoreError> {
        self.inner.delete(key)
    }
}

/// A registry at version 0 with nodes 1..=n registered.
fn federation(dir: &std::path::Path, n: u8) -> (LocalStore, Mlp) {
    let store = LocalStore::new(dir);
    let m0 = weir_model::test_model(4, 6, 3, 1);
    Registry::new(&store, None).init(&m0, None).unwrap();
    for i in 1..=n {
        register_node(&store, &format!("edge-{i}"), &node(i).public_hex()).unwrap();
    }
    (store, m0)
}

fn plain(quorum: usize) -> MergeConfig {
    MergeConfig {
        quorum,
        aggregation: Aggregation::default(),
        ..MergeConfig::default()
    }
}

#[test]
fn an_update_swapped_after_it_was_accepted_is_not_what_is_merged() {
    // Edge roles may overwrite their own prefix. Node 1's update is accepted, then its
    // envelope and payload are replaced by a consistent pair (the new payload's SHA-256
    // in an unsigned manifest) of the wrong length with a NaN in it. Closing used to
    // re-read both and trust the re-read manifest: an index out of bounds in every later
    // merge step, or NaN in the model.
    let dir = tempfile::tempdir().unwrap();
    let (store, m0) = federation(dir.path(), 2);
    let merger = Merger::new(&store, None, plain(2));
    let k1 = push(&store, &node(1), &m0, 0, 1, 0.1);
    assert_eq!(merger.step(now_unix()).unwrap().accepted, 1);
    let evil = update::encode_payload(&[f32::NAN, 1.0, 2.0]);
    let env: update::Envelope = serde_json::from_slice(&store.get(&k1).unwrap()).unwrap();
    let mut m: update::Manifest = serde_json::from_str(&env.manifest).unwrap();
    m.payload_sha256 = update::sha256_hex(&evil);
    let forged = update::Envelope {
        manifest: serde_json::to_string(&m).unwrap(),
        signature: env.signature,
    };
    std::fs::write(store.path_of(&k1), serde_json::to_vec(&forged).unwrap()).unwrap();
    std::fs::write(store.path_of(&k1.replace(".json", ".bin")), &evil).unwrap();
    push(&store, &node(2), &m0, 0, 1, 0.1);
    let c = merger.step(now_unix()).unwrap().closed.unwrap();
    assert_eq!((c.outcome.as_str(), c.accepted), ("published", 2), "{c:?}");
    let v1 = Registry::new(&store, None).current(None).unwrap().model;
    let p = params::flatten(&v1);
    assert!(p.iter().all(|x| x.is_finite()));
    // Both clipped updates (norm 0.5 each, same direction) moved it: node 1's verified
    // bytes were merged, not the swapped ones.
    let step = params::norm(&params::sub(&p, &params::flatten(&m0)));
    assert!((step - 0.5).abs() < 1e-3, "{step}");
}

#[test]
fn a_kept_copy_that_changed_is_left_out_with_its_reason() {
    let dir = tempfile::tempdir().unwrap();
    let (store, m0) = federation(dir.path(), 2);
    let merger = Merger::new(&store, None, plain(2));
    push(&store, &node(1), &m0, 0, 1, 0.1);
    merger.step(now_unix()).unwrap();
    // The merge's own copy damaged (a fault, an operator's slip): too short, then NaN.
    let kept = store.path_of(&kept_payload_key(1, "edge-1"));
    std::fs::write(&kept, update::encode_payload(&[f32::NAN])).unwrap();
    push(&store, &node(2), &m0, 0, 1, 0.1);
    let c = merger.step(now_unix()).unwrap().closed.unwrap();
    assert_eq!((c.outcome.as_str(), c.accepted), ("published", 1), "{c:?}");
    let card = Registry::new(&store, None).card(1).unwrap();
    let e = card.excluded.iter().find(|e| e.node == "edge-1").unwrap();
    assert_eq!(e.tag, "unmergeable");
    assert!(
        e.reason.contains("changed after it was verified"),
        "{}",
        e.reason
    );
}

#[test]
fn an_oversized_update_is_refused_from_its_size_not_read() {
    // A 3 GiB payload and a 200 MiB envelope (sparse files: no disk, no memory). The
    // merge used to read the payload whole before checking anything: out of memory on
    // every retry of the merge function.
    let dir = tempfile::tempdir().unwrap();
    let (store, m0) = federation(dir.path(), 2);
    let k1 = push(&store, &node(1), &m0, 0, 1, 0.1);
    std::fs::File::options()
        .write(true)
        .open(store.path_of(&k1.replace(".json", ".bin")))
        .unwrap()
        .set_len(3 << 30)
        .unwrap();
    let k2 = push(&store, &node(2), &m0, 0, 1, 0.1);
    std::fs::File::options()
        .write(true)
        .open(store.path_of(&k2))
        .unwrap()
        .set_len(200 << 20)
        .unwrap();
    let probe = Probe {
        inner: &store,
        hide: Vec::new(),
        max_read: 1 << 20,
    };
    let r = Merger::new(&probe, None, plain(3))
        .step(now_unix())
        .unwrap();
    let why: Vec<String> = r
        .judged
        .iter()
        .map(|v| {
            v.rejection
                .as_ref()
                .map_or("accepted".into(), |r| r.to_string())
        })
        .collect();
    assert_eq!(why.len(), 2);
    assert!(
        why[0].contains("the payload is 3221225472 bytes"),
        "{why:?}"
    );
    assert!(
        why[1].contains("the envelope is 209715200 bytes"),
        "{why:?}"
    );
    assert!(r
        .judged
        .iter()
        .all(|v| v.rejection.as_ref().unwrap().tag() == "oversize"));
}

#[test]
fn an_old_rounds_update_is_not_replayed_in_a_later_async_round() {
    let dir = tempfile::tempdir().unwrap();
    let (store, m0) = federation(dir.path(), 2);
    let cfg = MergeConfig {
        mode: Mode::Async { max_staleness: 2 },
        ..plain(1)
    };
    let merger = Merger::new(&store, None, cfg);
    let k1 = push(&store, &node(1), &m0, 0, 1, 0.1);
    let c = merger.step(now_unix()).unwrap().closed.unwrap();
    assert_eq!(c.version, Some(1));
    // Round 2 is open; node 1's signed round-1 update is copied into it.
    let k_again = k1.replace("round-000001", "round-000002");
    for (from, to) in [(&k1, &k_again)] {
        for ext in [".json", ".bin"] {
            let b = store.get(&from.replace(".json", ext)).unwrap();
            store.put(&to.replace(".json", ext), &b).unwrap();
        }
    }
    let r = merger.step(now_unix()).unwrap();
    assert_eq!(r.round, 2);
    assert_eq!(r.judged.len(), 1);
    let v = &r.judged[0];
    assert!(
        !v.accepted,
        "a round-1 update was accepted in round 2: {v:?}"
    );
    assert_eq!(v.rejection.as_ref().unwrap().tag(), "wrong_round");
    // A fresh update made from version 0 (one behind) for round 2 is still taken.
    push(&store, &node(2), &m0, 0, 2, 0.1);
    let r = merger.step(now_unix()).unwrap();
    let v = r.judged.iter().find(|v| v.node == "edge-2").unwrap();
    assert!(v.accepted && v.staleness == 1, "{v:?}");
}

#[test]
fn two_concurrent_steps_accept_one_update_per_node() {
    // Step A accepts node 1's update K1. Step B listed the verdicts before A wrote its
    // verdict, and judges node 1's second update K2 first (it sorts first): each step
    // saw no accepted update from node 1.
    let dir = tempfile::tempdir().unwrap();
    let (store, m0) = federation(dir.path(), 3);
    let k1 = push(&store, &node(1), &m0, 0, 1, 0.1);
    Merger::new(&store, None, plain(3))
        .step(now_unix())
        .unwrap();
    let nonce1 = parse_update_key(&k1).1;
    let k2 = loop {
        let s = made(&node(1), &m0, 0, 1, 0.05, update::DEFAULT_CLIP);
        if s.manifest.nonce < nonce1 {
            break upload(&store, &s).unwrap();
        }
    };
    let blind = Probe {
        inner: &store,
        hide: vec!["fl/rounds/round-000001/verdicts/".into()],
        max_read: u64::MAX,
    };
    let r = Merger::new(&blind, None, plain(3))
        .step(now_unix())
        .unwrap();
    let v2 = r.judged.iter().find(|v| v.key == k2).unwrap();
    assert!(
        !v2.accepted,
        "a second update from node 1 was accepted: {v2:?}"
    );
    assert!(
        v2.rejection.as_ref().unwrap().to_string().contains(&k1),
        "{v2:?}"
    );
    push(&store, &node(2), &m0, 0, 1, 0.1);
    push(&store, &node(3), &m0, 0, 1, 0.1);
    let c = Merger::new(&store, None, plain(3))
        .step(now_unix())
        .unwrap()
        .closed
        .unwrap();
    assert_eq!(c.accepted, 3, "{c:?}");
    let card = Registry::new(&store, None).card(1).unwrap();
    let from1: Vec<&str> = card
        .included
        .iter()
        .filter(|i| i.node == "edge-1")
        .map(|i| i.nonce.as_str())
        .collect();
    assert_eq!(from1, vec![nonce1.as_str()]);
}

#[test]
fn verdicts_of_two_nodes_never_share_a_key() {
    // Node "edge" names its nonce "1-" + node edge-1's nonce: as `{node}-{nonce}` both
    // verdicts were `edge-1-NONCE`, and edge-1's update took edge's verdict unjudged.
    let dir = tempfile::tempdir().unwrap();
    let (store, m0) = federation(dir.path(), 1);
    let edge = SigningKey::from_seed("edge", [77; 32]).unwrap();
    register_node(&store, "edge", &edge.public_hex()).unwrap();
    let honest = made(&node(1), &m0, 0, 1, 0.1, update::DEFAULT_CLIP);
    let mut s = update::sign(
        &edge,
        &update::decode_payload(&honest.payload).unwrap(),
        &Provenance {
            base_version: 0,
            round: 1,
            samples: 10,
            class_counts: vec![4, 3, 3],
        },
        5.0,
        None,
        params::shapes(&m0),
    );
    s.manifest.nonce = format!("1-{}", honest.manifest.nonce);
    let text = serde_json::to_string(&s.manifest).unwrap();
    s.envelope = serde_json::to_vec(&update::Envelope {
        signature: edge.sign_hex(text.as_bytes()),
        manifest: text,
    })
    .unwrap();
    upload(&store, &s).unwrap();
    let merger = Merger::new(&store, None, plain(3));
    let r = merger.step(now_unix()).unwrap();
    assert!(r.judged[0].accepted && r.judged[0].node == "edge", "{r:?}");
    upload(&store, &honest).unwrap();
    let r = merger.step(now_unix()).unwrap();
    assert_eq!(r.judged.len(), 1, "{r:?}");
    assert!(
        r.judged[0].accepted && r.judged[0].node == "edge-1",
        "{r:?}"
    );
    assert_ne!(
        verdict_key(1, "edge", &s.manifest.nonce),
        verdict_key(1, "edge-1", &honest.manifest.nonce)
    );
    // A key that names no valid node or nonce still gets a verdict of its own.
    assert!(verdict_key(1, "..", "x").contains("/verdicts/~malformed/"));
}

#[test]
fn a_merge_without_the_key_never_publishes_over_a_signed_pointer() {
    let dir = tempfile::tempdir().unwrap();
    let store = LocalStore::new(dir.path());
    let key = SigningKey::from_seed("registry", [5; 32]).unwrap();
    let m0 = weir_model::test_model(4, 6, 3, 1);
    Registry::new(&store, Some(key.public_hex()))
        .init(&m0, Some(&key))
        .unwrap();
    register_node(&store, "edge-1", &node(1).public_hex()).unwrap();
    push(&store, &node(1), &m0, 0, 1, 0.1);
    // Without the key: refused before anything is judged or published.
    let e = Merger::new(&store, None, plain(1))
        .step(now_unix())
        .unwrap_err();
    assert!(e.to_string().contains("has no registry key"), "{e}");
    let trusted = Registry::new(&store, Some(key.public_hex()));
    assert_eq!(trusted.pointer().unwrap().unwrap().0.version, 0);
    // Another key: the pointer it reads is not signed by it.
    let other = SigningKey::from_seed("registry", [6; 32]).unwrap();
    assert!(Merger::new(&store, Some(&other), plain(1))
        .step(now_unix())
        .is_err());
    // With it: published, and the new pointer verifies.
    let c = Merger::new(&store, Some(&key), plain(1))
        .step(now_unix())
        .unwrap()
        .closed
        .unwrap();
    assert_eq!(c.version, Some(1));
    assert_eq!(trusted.pointer().unwrap().unwrap().0.version, 1);
}

#[test]
fn federated_versions_name_their_registry_version() {
    assert_eq!(federated_version("weir-mlp/1", 1), "weir-mlp/1+fl.v1");
    assert_eq!(federated_version("weir-mlp/1+fl.v1", 2), "weir-mlp/1+fl.v2");
}

#[test]
fn macro_f1_counts_each_present_class_once() {
    assert_eq!(macro_f1_of(&[0, 0, 1, 1], &[0, 0, 1, 1], 3), 1.0);
    // class 0: tp 1, fn 1, fp 0 → 2/3; class 1: tp 2, fp 1 → 0.8
    let f = macro_f1_of(&[0, 0, 1, 1], &[0, 1, 1, 1], 3);
    assert!((f - (2.0 / 3.0 + 0.8) / 2.0).abs() < 1e-9);
}
