//! The handlers' decisions ([`Stage`]) over a directory and in-memory queues, with the real
//! flow engine and model: what is retried, what fails the capture at once, what is dropped,
//! and that a panic or a broken model never leaves a capture "classifying" forever.

use std::path::PathBuf;
use std::sync::Mutex;

use weir_aws::handlers::{Stage, Work};
use weir_classify::Classifier;
use weir_pipeline::faults::FaultyStore;
use weir_pipeline::*;

const BUCKET: &str = "weir-test";
const KEY: &str = "uploads/flood.pcap";
const MAX: u32 = 3;

fn shared() -> PathBuf {
    std::env::var_os("WEIR_SHARED")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared"))
}

fn classifier() -> Classifier {
    Classifier::shipped_cpu().expect("model and ONNX Runtime (scripts/setup-ort.sh) load")
}

struct Rig {
    _dir: tempfile::TempDir,
    store: FaultyStore,
    shards: Mutex<Vec<String>>,
    aggregate: Mutex<Vec<String>>,
}

impl Rig {
    fn new(upload: &[u8]) -> Rig {
        let dir = tempfile::tempdir().unwrap();
        let store = FaultyStore::new(LocalStore::new(dir.path()));
        store.put(KEY, upload).unwrap();
        Rig {
            _dir: dir,
            store,
            shards: Mutex::new(Vec::new()),
            aggregate: Mutex::new(Vec::new()),
        }
    }

    fn stage(&self) -> Stage<'_> {
        Stage {
            store: &self.store,
            shards: &self.shards,
            aggregate: &self.aggregate,
            bucket: BUCKET,
            max_receives: MAX,
            split: SplitOptions {
                shard_flows: 3000,
                ..SplitOptions::default()
            },
        }
    }

    fn take(q: &Mutex<Vec<String>>, receives: u32) -> Vec<Work> {
        q.lock()
            .unwrap()
            .drain(..)
            .enumerate()
            .map(|(i, body)| Work {
                id: format!("m{i}"),
                receives,
                body,
            })
            .collect()
    }

    /// Classify every queued shard message, then aggregate: the capture's final status.
    fn finish(&self) -> Status {
        let work = Rig::take(&self.shards, 1);
        let mut c = classifier();
        let failed = self
            .stage()
            .classify_work(&work, |m| classify_shards(&self.store, &mut c, m));
        assert!(failed.is_empty(), "{failed:?}");
        for w in Rig::take(&self.aggregate, 1) {
            self.stage().aggregate_work(&w).unwrap();
        }
        self.status()
    }

    fn status(&self) -> Status {
        weir_pipeline::load_status(&self.store, &capture_id(KEY)).unwrap()
    }
}

fn flood() -> Vec<u8> {
    std::fs::read(shared().join("labeled/attacks/doup123/udp__flood.pcap")).unwrap()
}

#[test]
fn an_upload_goes_through_every_handler() {
    let rig = Rig::new(&flood());
    let v = rig.stage().split_object(BUCKET, KEY, 1).unwrap();
    assert_eq!(v["shards"], 4);
    assert_eq!(rig.shards.lock().unwrap().len(), 4);
    let st = rig.finish();
    assert_eq!((st.state, st.flows), (State::Done, 10_000));
    // The same upload event again: nothing happens.
    let v = rig.stage().split_object(BUCKET, KEY, 1).unwrap();
    assert_eq!(v["duplicate"], true);
    assert!(rig.shards.lock().unwrap().is_empty());
    assert!(rig.stage().split_object("other-bucket", KEY, 1).is_err());
}

#[test]
fn store_errors_reading_the_upload_are_retried_then_nothing_is_lost() {
    // On the first range, and mid-stream (past the capture reader's first 1 MiB fill).
    let hulk = std::fs::read(shared().join("labeled/attacks/mlriding/hulk.pcap")).unwrap();
    for (upload, at) in [(flood(), 0), (hulk, 3 << 19)] {
        let opts = weir_flow::ExtractOptions::default();
        let want = weir_flow::extract(std::io::Cursor::new(&upload), &opts, |_| {}, |_| {})
            .unwrap()
            .flows;
        let rig = Rig::new(&upload);
        rig.store.fail_reads(KEY, at, 1, StoreFault::Transient);
        let e = rig.stage().split_object(BUCKET, KEY, 1).unwrap_err();
        assert!(e.contains("injected"), "{e}");
        assert_ne!(rig.status().state, State::Failed);
        // Redelivered: read whole, every flow there, no warning.
        rig.stage().split_object(BUCKET, KEY, 2).unwrap();
        let st = rig.finish();
        assert_eq!((st.state, st.flows), (State::Done, want), "at {at}: {st:?}");
        assert!(st.warnings.is_empty());
    }
}

#[test]
fn the_last_delivery_of_a_failing_message_marks_the_capture_failed() {
    let rig = Rig::new(&flood());
    rig.store.fail_reads(KEY, 0, 100, StoreFault::Transient);
    for receives in 1..=MAX {
        assert!(rig.stage().split_object(BUCKET, KEY, receives).is_err());
    }
    let st = rig.status();
    assert_eq!(st.state, State::Failed);
    assert!(st.reason.unwrap().contains("injected fault"));
}

#[test]
fn a_non_capture_fails_at_once_and_is_not_retried() {
    let rig = Rig::new(b"this is not a capture\n");
    let v = rig.stage().split_object(BUCKET, KEY, 1).unwrap();
    assert!(v["failed"]
        .as_str()
        .unwrap()
        .contains("not a readable capture"));
    let st = rig.status();
    assert_eq!(st.state, State::Failed);
    assert!(st.reason.unwrap().contains("not a readable capture"));
}

#[test]
fn an_unusable_model_fails_the_capture_at_once() {
    let rig = Rig::new(&flood());
    rig.stage().split_object(BUCKET, KEY, 1).unwrap();
    let work = Rig::take(&rig.shards, 1);
    let failed = rig.stage().classify_work(&work, |m| {
        m.iter()
            .map(|_| Err(PipelineError::Model("no output named \"energy\"".into())))
            .collect()
    });
    assert!(failed.is_empty(), "no retry can help: {failed:?}");
    let st = rig.status();
    assert_eq!(st.state, State::Failed);
    assert!(st.reason.unwrap().contains("energy"));
}

#[test]
fn a_panicking_classifier_is_retried_then_fails_the_capture() {
    let rig = Rig::new(&flood());
    rig.stage().split_object(BUCKET, KEY, 1).unwrap();
    let bodies: Vec<String> = rig.shards.lock().unwrap().clone();
    for receives in 1..=MAX {
        let work: Vec<Work> = bodies
            .iter()
            .enumerate()
            .map(|(i, b)| Work {
                id: format!("m{i}"),
                receives,
                body: b.clone(),
            })
            .collect();
        let failed = rig
            .stage()
            .classify_work(&work, |_| panic!("index out of bounds"));
        assert_eq!(failed.len(), 4, "every message delivered again");
        let st = rig.status();
        if receives < MAX {
            assert_eq!(st.state, State::Classifying);
        } else {
            assert_eq!(st.state, State::Failed);
            assert!(st.reason.unwrap().contains("panicked"));
        }
    }
}

#[test]
fn messages_that_are_not_weirs_go_to_the_dead_letter_queue() {
    let rig = Rig::new(&flood());
    let work = vec![Work {
        id: "x".into(),
        receives: 1,
        body: "{\"hello\":1}".into(),
    }];
    let failed = rig.stage().classify_work(&work, |_| unreachable!());
    assert_eq!(failed, ["x"]);
    assert!(rig.stage().aggregate_work(&work[0]).is_err());
}
