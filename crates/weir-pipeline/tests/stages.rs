//! The stages against a real capture, the real flow engine and the real ONNX Runtime, with a
//! directory as the store and a Vec as the queue: shards and messages, idempotent results,
//! status from the objects, damage and non-captures.

use std::path::PathBuf;

use weir_classify::{Classifier, Device, Options};
use weir_pipeline::*;

fn shared() -> PathBuf {
    std::env::var_os("WEIR_SHARED")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared"))
}

/// Split options with `n` flows per shard.
fn so(n: usize) -> SplitOptions {
    SplitOptions {
        shard_flows: n,
        ..SplitOptions::default()
    }
}

fn classifier() -> Classifier {
    let model = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../models/weir-mlp.onnx");
    Classifier::load(
        &model,
        &Options {
            device: Device::Cpu,
            threads: 1,
            ..Options::default()
        },
    )
    .expect("model and ONNX Runtime (scripts/setup-ort.sh) load")
}

fn strings(df: &polars::prelude::DataFrame, name: &str) -> Vec<String> {
    let c = df.column(name).unwrap().str().unwrap();
    c.downcast_iter()
        .flat_map(|a| a.iter())
        .map(|s| s.unwrap_or_default().to_string())
        .collect()
}

#[test]
fn split_classify_progress_on_a_real_capture() {
    let dir = tempfile::tempdir().unwrap();
    let store = LocalStore::new(dir.path());
    let bytes = std::fs::read(shared().join("labeled/attacks/doup123/udp__flood.pcap")).unwrap();
    store.put("uploads/udp flood.pcap", &bytes).unwrap();
    store.put("uploads/later.pcap", &bytes[..1000]).unwrap();
    // Uploaded, no splitter yet: queued (there is no status object to say so).
    let listed = captures(&store).unwrap();
    assert_eq!(listed.len(), 2);
    assert!(listed
        .iter()
        .all(|s| s.state == State::Queued && s.shards.is_none()));
    assert_eq!(listed[1].source, "uploads/udp flood.pcap");

    let mut queue = Vec::new();
    let report = split(&store, "uploads/udp flood.pcap", &so(3000), |m| {
        queue.push(m.to_json());
        Ok(())
    })
    .unwrap()
    .expect("split, not a duplicate");
    let id = capture_id("uploads/udp flood.pcap");
    assert_eq!(report.flows, 10_000);
    assert_eq!(report.shards, 4);
    assert_eq!(queue.len(), 4);
    assert!(report.damage.is_none());
    let st = weir_pipeline::load_status(&store, &id).unwrap();
    assert_eq!(
        (st.state, st.shards, st.shards_done, st.flows),
        (State::Classifying, Some(4), 0, 10_000)
    );
    let listed = captures(&store).unwrap();
    let states: Vec<_> = listed
        .iter()
        .map(|s| (s.capture.as_str(), s.state))
        .collect();
    assert_eq!(
        states,
        [
            (capture_id("uploads/later.pcap").as_str(), State::Queued),
            (id.as_str(), State::Classifying)
        ]
    );
    assert_eq!(
        store.children("captures/").unwrap(),
        std::slice::from_ref(&id),
        "one directory per capture"
    );

    // The same flows as the flow stage on its own, in the same order.
    let mut direct = Vec::new();
    weir_flow::extract(
        std::io::Cursor::new(&bytes),
        &weir_flow::ExtractOptions::default(),
        |b| direct.extend(b),
        |_| {},
    )
    .unwrap();

    let mut c = classifier();
    let mut rows = 0;
    for (i, json) in queue.iter().enumerate() {
        let m = ShardMessage::from_json(json).unwrap();
        rows += classify_shard(&store, &mut c, &m).unwrap();
        let st = progress(&store, &id).unwrap();
        assert_eq!(st.shards_done, i as u32 + 1);
    }
    assert_eq!(rows, 10_000);
    assert_eq!(progress(&store, &id).unwrap().state, State::Aggregating);

    // A duplicated message rewrites the same object with the same bytes; progress counts it once.
    let m0 = ShardMessage::from_json(&queue[0]).unwrap();
    let first = store.get(&result_key(&id, 0)).unwrap();
    classify_shard(&store, &mut c, &m0).unwrap();
    assert_eq!(store.get(&result_key(&id, 0)).unwrap(), first);
    assert_eq!(progress(&store, &id).unwrap().shards_done, 4);

    // Results: the shard's flows in order with the classes a direct classification gives.
    let df = weir_records::parquet_to_frame(&first).unwrap();
    assert_eq!(df.height(), 3000);
    let x: Vec<f32> = direct[..3000]
        .iter()
        .flat_map(|f| f.features.map(|v| v as f32))
        .collect();
    let p = c.classify(&x).unwrap();
    let classes = &c.info().classes;
    let got = strings(&df, "class");
    let want: Vec<String> = p
        .predicted
        .iter()
        .map(|i| classes[*i as usize].clone())
        .collect();
    assert_eq!(got, want);
    let ids = strings(&df, "community_id");
    let want_ids: Vec<String> = direct[..3000]
        .iter()
        .map(|f| f.community_id.clone())
        .collect();
    assert_eq!(ids, want_ids);
}

#[test]
fn damage_is_kept_as_a_warning_and_a_non_capture_fails_with_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    let store = LocalStore::new(dir.path());
    let bytes = std::fs::read(shared().join("labeled/attacks/doup123/udp__flood.pcap")).unwrap();
    store
        .put("cut.pcap", &bytes[..bytes.len() / 2 + 7])
        .unwrap();
    let r = split(&store, "cut.pcap", &so(SHARD_FLOWS), |_| Ok(()))
        .unwrap()
        .expect("split, not a duplicate");
    assert!(r.damage.is_some() && r.flows > 1000, "{r:?}");
    let st = weir_pipeline::load_status(&store, &capture_id("cut.pcap")).unwrap();
    assert_eq!(st.warnings.len(), 1);
    assert_eq!(st.flows, r.flows);

    store.put("notes.txt", b"this is not a capture\n").unwrap();
    let e = split(&store, "notes.txt", &so(SHARD_FLOWS), |_| Ok(()));
    assert!(matches!(e, Err(PipelineError::NotACapture { .. })), "{e:?}");
    let st = weir_pipeline::load_status(&store, &capture_id("notes.txt")).unwrap();
    assert_eq!(st.state, State::Failed);
    assert!(st.reason.unwrap().contains("not a readable capture"));
    assert!(store
        .list(&format!("captures/{}/shards/", capture_id("notes.txt")))
        .unwrap()
        .is_empty());
}

#[test]
fn aggregate_summarizes_and_lays_out_for_search() {
    let dir = tempfile::tempdir().unwrap();
    let store = LocalStore::new(dir.path());
    let bytes = std::fs::read(shared().join("labeled/attacks/netlyzer/ddos.pcap")).unwrap();
    store.put("ddos.pcap", &bytes).unwrap();
    let id = capture_id("ddos.pcap");
    let mut queue = Vec::new();
    let r = split(&store, "ddos.pcap", &so(2000), |m| {
        queue.push(m.clone());
        Ok(())
    })
    .unwrap()
    .expect("split, not a duplicate");
    assert!(
        aggregate(&store, &id).is_err(),
        "nothing to aggregate before the shards are classified"
    );
    let mut c = classifier();
    for m in &queue {
        classify_shard(&store, &mut c, m).unwrap();
    }
    let s = aggregate(&store, &id).unwrap();
    assert_eq!(s.flows, r.flows);
    assert_eq!(s.classes.values().sum::<u64>(), r.flows);
    // An alert: a class other than Normal with at least the default threshold.
    let mut alerts = 0;
    for m in &queue {
        let res = weir_records::parquet_to_frame(
            &store.get(&weir_pipeline::result_key(&id, m.shard)).unwrap(),
        )
        .unwrap();
        let class = res.column("class").unwrap().str().unwrap().clone();
        let p = res
            .column("class_probability")
            .unwrap()
            .f32()
            .unwrap()
            .clone();
        let alert = res.column("alert").unwrap().bool().unwrap().clone();
        let decided = weir_records::behaviour_classes(&res);
        let silenced = weir_records::model_silenced(&res);
        assert_eq!(silenced.len(), res.height());
        let info = c.info().clone();
        for i in 0..res.height() {
            // A behaviour detector's class alerts; the model's needs the higher of the user's
            // threshold and the model's own for that class, and more than a lone packet.
            let k = info
                .classes
                .iter()
                .position(|n| Some(n.as_str()) == class.get(i))
                .unwrap();
            let want = decided.get(i).is_some_and(|d| d.is_some())
                || (class.get(i) != Some("Normal")
                    && silenced.get(i) == Some(&false)
                    && p.get(i).unwrap()
                        >= weir_classify::DEFAULT_MIN_PROBABILITY.max(info.alert_threshold(k)));
            assert_eq!(alert.get(i), Some(want), "row {i}");
            alerts += u64::from(want);
        }
    }
    assert_eq!(s.alerts, alerts);
    assert_eq!(s.timeline.iter().map(|t| t.flows).sum::<u64>(), r.flows);
    for top in [&s.top_sources, &s.top_destinations] {
        assert!(top.len() <= TOP && !top.is_empty());
        assert!(top.windows(2).all(|w| w[0].flows >= w[1].flows));
    }
    let st = weir_pipeline::load_status(&store, &id).unwrap();
    assert_eq!(st.alerts, Some(alerts));
    assert_eq!(
        weir_pipeline::load_status(&store, &id).unwrap().state,
        State::Done
    );

    // Search layout: every flow once, sorted by time within each part.
    let parts = store.list(&search_prefix(&id)).unwrap();
    assert!(!parts.is_empty());
    let mut rows = 0;
    for k in &parts {
        let df = weir_records::parquet_to_frame(&store.get(k).unwrap()).unwrap();
        rows += df.height() as u64;
        let v = first_ts(&df);
        assert!(v.windows(2).all(|w| w[0] <= w[1]), "{k} sorted by first_ts");
        // In the time range its partition (day=, month= or year=) names.
        let partition = k.rsplit('/').nth(1).unwrap();
        let (a, b) = weir_pipeline::partition_range(partition).unwrap();
        assert!(
            a <= v[0] && *v.last().unwrap() < b,
            "{k}: rows outside {partition}"
        );
        // Narrow, and (shard, row) points back at the same flow in the shard's result.
        assert_eq!(df.width(), weir_pipeline::SEARCH_COLUMNS.len() + 2, "{k}");
        assert!(df.column("p_normal").is_err());
        let shard = df.column("shard").unwrap().u32().unwrap().get(0).unwrap();
        let result = weir_records::parquet_to_frame(
            &store.get(&weir_pipeline::result_key(&id, shard)).unwrap(),
        )
        .unwrap();
        let cid = |d: &polars::prelude::DataFrame, i: usize| {
            d.column("community_id")
                .unwrap()
                .str()
                .unwrap()
                .get(i)
                .unwrap()
                .to_string()
        };
        let result_ts = first_ts(&result);
        for (i, ts) in v.iter().enumerate() {
            let row = df.column("row").unwrap().u32().unwrap().get(i).unwrap() as usize;
            assert_eq!(cid(&df, i), cid(&result, row), "{k} row {i}");
            assert_eq!(*ts, result_ts[row]);
        }
    }
    assert_eq!(rows, r.flows);

    // Idempotent: again, same summary.
    let summary = store.get(&summary_key(&id)).unwrap();
    aggregate(&store, &id).unwrap();
    assert_eq!(store.get(&summary_key(&id)).unwrap(), summary);
}

#[test]
fn another_file_uploaded_under_the_same_key_leaves_nothing_of_the_first() {
    let dir = tempfile::tempdir().unwrap();
    let store = LocalStore::new(dir.path());
    let key = "uploads/again.pcap";
    let run = |bytes: &[u8]| {
        store.put(key, bytes).unwrap();
        let mut msgs = Vec::new();
        split(&store, key, &so(3000), |m| {
            msgs.push(m.clone());
            Ok(())
        })
        .unwrap()
        .expect("split, not a duplicate");
        let mut c = classifier();
        for r in classify_shards(&store, &mut c, &msgs) {
            r.unwrap();
        }
        aggregate(&store, &capture_id(key)).unwrap()
    };
    let flood = std::fs::read(shared().join("labeled/attacks/doup123/udp__flood.pcap")).unwrap();
    assert_eq!(run(&flood).flows, 10_000);
    let id = capture_id(key);
    assert_eq!(
        store
            .list(&format!("captures/{id}/results/"))
            .unwrap()
            .len(),
        4
    );
    let small =
        std::fs::read(shared().join("labeled/normal/filesamples/simple_http.pcap")).unwrap();
    let second = run(&small);
    assert!(second.flows < 100, "{}", second.flows);
    assert_eq!(
        store
            .list(&format!("captures/{id}/results/"))
            .unwrap()
            .len(),
        1
    );
    assert_eq!(
        store.list(&format!("captures/{id}/shards/")).unwrap().len(),
        1
    );
    let st = weir_pipeline::load_status(&store, &id).unwrap();
    assert_eq!((st.state, st.flows), (State::Done, second.flows));
}

/// The `first_ts` column (a timestamp) as ns since the epoch.
fn first_ts(df: &polars::prelude::DataFrame) -> Vec<i64> {
    df.column("first_ts")
        .unwrap()
        .cast(&polars::prelude::DataType::Int64)
        .unwrap()
        .i64()
        .unwrap()
        .into_no_null_iter()
        .collect()
}
