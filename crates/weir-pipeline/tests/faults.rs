//! The stages under the failures S3 has in ordinary operation, injected with
//! [`FaultyStore`] over a real directory, a real capture and the real model: a read error is
//! retried and never becomes a verdict or silent truncation, an overwrite while reading is
//! never stitched into one capture, a status write delayed past `done` never undoes it, and
//! a duplicate split deletes nothing a classifier reads.

use std::path::PathBuf;

use weir_classify::Classifier;
use weir_pipeline::faults::FaultyStore;
use weir_pipeline::*;

fn shared() -> PathBuf {
    std::env::var_os("WEIR_SHARED")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared"))
}

fn flood() -> Vec<u8> {
    std::fs::read(shared().join("labeled/attacks/doup123/udp__flood.pcap")).unwrap()
}

fn classifier() -> Classifier {
    Classifier::shipped_cpu().expect("model and ONNX Runtime (scripts/setup-ort.sh) load")
}

const KEY: &str = "uploads/flood.pcap";

fn so() -> SplitOptions {
    SplitOptions {
        shard_flows: 3000,
        ..SplitOptions::default()
    }
}

fn setup() -> (tempfile::TempDir, FaultyStore, Vec<u8>) {
    let dir = tempfile::tempdir().unwrap();
    let store = FaultyStore::new(LocalStore::new(dir.path()));
    let bytes = flood();
    store.put(KEY, &bytes).unwrap();
    (dir, store, bytes)
}

fn split_all(
    store: &dyn Store,
) -> (
    Result<Option<SplitReport>, PipelineError>,
    Vec<ShardMessage>,
) {
    let mut msgs = Vec::new();
    let r = split(store, KEY, &so(), |m| {
        msgs.push(m.clone());
        Ok(())
    });
    (r, msgs)
}

#[test]
fn a_read_error_on_the_first_range_is_retried_not_a_verdict() {
    let (_d, store, _) = setup();
    store.fail_reads(KEY, 0, 1, StoreFault::Transient);
    let (r, msgs) = split_all(&store);
    let e = r.unwrap_err();
    assert!(e.retryable(), "{e}");
    assert_eq!(e.fault(), Some(StoreFault::Transient));
    assert!(msgs.is_empty());
    let id = capture_id(KEY);
    let st = weir_pipeline::load_status(&store, &id).unwrap();
    assert_eq!(st.state, State::Splitting, "{st:?}");
    assert!(st.reason.is_none());
    // The redelivery reads it whole.
    let (r, msgs) = split_all(&store);
    let report = r.unwrap().unwrap();
    assert_eq!((report.flows, report.shards, msgs.len()), (10_000, 4, 4));
    assert!(report.damage.is_none());
}

/// Flows in a capture, read straight from memory (no store in between).
fn flows_in(bytes: &[u8]) -> u64 {
    let opts = weir_flow::ExtractOptions::default();
    weir_flow::extract(std::io::Cursor::new(bytes), &opts, |_| {}, |_| {})
        .unwrap()
        .flows
}

#[test]
fn a_read_error_mid_stream_is_retried_not_truncation() {
    // Larger than the capture reader's first 1 MiB fill, so the fault lands mid-stream,
    // after packets were read and flows made.
    let (_d, store, _) = setup();
    let hulk = std::fs::read(shared().join("labeled/attacks/mlriding/hulk.pcap")).unwrap();
    assert!(hulk.len() > 2 << 20);
    store.put(KEY, &hulk).unwrap();
    store.fail_reads(KEY, 3 << 19, 1, StoreFault::Transient);
    let (r, _) = split_all(&store);
    let e = r.unwrap_err();
    assert!(e.retryable(), "{e}");
    let id = capture_id(KEY);
    // No split report: nothing says the capture ended, with or without warnings.
    assert!(!store.exists(&split_key(&id)).unwrap());
    let st = weir_pipeline::load_status(&store, &id).unwrap();
    assert!(!st.state.is_final() && st.warnings.is_empty(), "{st:?}");
    let (r, _) = split_all(&store);
    let report = r.unwrap().unwrap();
    assert_eq!(report.flows, flows_in(&hulk));
    assert!(report.damage.is_none(), "{report:?}");
    let st = weir_pipeline::load_status(&store, &id).unwrap();
    assert_eq!((st.state, st.flows), (State::Classifying, report.flows));
}

#[test]
fn an_upload_replaced_while_it_is_read_is_never_stitched() {
    let (_d, store, bytes) = setup();
    let other =
        std::fs::read(shared().join("labeled/normal/filesamples/simple_http.pcap")).unwrap();
    store.replace_during_read(KEY, bytes.len() as u64 / 2, other);
    let (r, _) = split_all(&store);
    let e = r.unwrap_err();
    assert!(matches!(e, PipelineError::Superseded { .. }), "{e}");
    let id = capture_id(KEY);
    assert!(!store.exists(&split_key(&id)).unwrap());
    assert_ne!(
        weir_pipeline::load_status(&store, &id).unwrap().state,
        State::Failed
    );
    // The new upload's own event: split from the start, only the new bytes.
    let (r, _) = split_all(&store);
    let report = r.unwrap().unwrap();
    assert!(report.flows < 100, "{report:?}");
}

#[test]
fn a_delayed_status_write_never_undoes_done() {
    let (_d, store, _) = setup();
    let (r, msgs) = split_all(&store);
    r.unwrap().unwrap();
    let id = capture_id(KEY);
    let mut c = classifier();
    for r in classify_shards(&store, &mut c, &msgs[..3]) {
        r.unwrap();
    }
    // A classifier computes "classifying 3/4" from the objects; before its write lands, the
    // last shard is classified and the capture aggregated (done) by others.
    let last = msgs[3].clone();
    store.before_next_put_if(
        &status_key(&id),
        Box::new(move |inner: &LocalStore| {
            let mut c = classifier();
            classify_shard(inner, &mut c, &last).unwrap();
            aggregate(inner, &capture_id(KEY)).unwrap();
            assert_eq!(
                weir_pipeline::load_status(inner, &capture_id(KEY))
                    .unwrap()
                    .state,
                State::Done
            );
        }),
    );
    let st = progress(&store, &id).unwrap();
    assert_eq!(st.state, State::Done, "{st:?}");
    let st = weir_pipeline::load_status(&store, &id).unwrap();
    assert_eq!((st.state, st.shards_done), (State::Done, 4), "{st:?}");
    assert!(st.alerts.is_some());
}

#[test]
fn a_duplicate_split_deletes_nothing_and_the_capture_finishes_once() {
    let (_d, store, _) = setup();
    let (r, msgs) = split_all(&store);
    r.unwrap().unwrap();
    let id = capture_id(KEY);
    let mut c = classifier();
    for r in classify_shards(&store, &mut c, &msgs[..2]) {
        r.unwrap();
    }
    let before = store.deleted().len();
    // The upload's message delivered again while its shards are being classified.
    let (r, again) = split_all(&store);
    r.unwrap().unwrap();
    assert_eq!(store.deleted().len(), before, "{:?}", store.deleted());
    assert_eq!(again, msgs, "the same shards, the same messages");
    let st = weir_pipeline::load_status(&store, &id).unwrap();
    assert_eq!((st.state, st.shards_done), (State::Classifying, 2));
    // Every message, duplicates included, classified; then aggregated: each flow once.
    for r in classify_shards(&store, &mut c, &[msgs.clone(), again].concat()) {
        r.unwrap();
    }
    let sum = aggregate(&store, &id).unwrap();
    assert_eq!(sum.flows, 10_000);
    assert_eq!(store.list(&results_prefix(&id)).unwrap().len(), 4);
    // Delivered once more after it finished: nothing is done at all.
    let n = store.deleted().len();
    let (r, m) = split_all(&store);
    assert!(r.unwrap().is_none());
    assert!(m.is_empty());
    assert_eq!(store.deleted().len(), n);
    assert_eq!(
        weir_pipeline::load_status(&store, &id).unwrap().state,
        State::Done
    );
}

#[test]
fn shard_messages_of_a_replaced_upload_write_nothing() {
    let (_d, store, _) = setup();
    let (r, old) = split_all(&store);
    r.unwrap().unwrap();
    // Another file uploaded under the same key and split before the old messages ran.
    let http = std::fs::read(shared().join("labeled/normal/filesamples/simple_http.pcap")).unwrap();
    store.put(KEY, &http).unwrap();
    let (r, new) = split_all(&store);
    r.unwrap().unwrap();
    let mut c = classifier();
    for r in classify_shards(&store, &mut c, &old) {
        assert!(matches!(r, Err(PipelineError::Superseded { .. })), "{r:?}");
    }
    for r in classify_shards(&store, &mut c, &new) {
        r.unwrap();
    }
    let id = capture_id(KEY);
    let sum = aggregate(&store, &id).unwrap();
    assert!(sum.flows < 100);
    assert_eq!(store.list(&results_prefix(&id)).unwrap().len(), new.len());
}
