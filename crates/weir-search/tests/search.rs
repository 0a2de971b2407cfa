//! Search over the layout the real pipeline writes (two labelled captures through split,
//! classify and aggregate with the shipped model), checked against an independent reading
//! of the results objects (every flow's full row, not the search layout).

use std::path::PathBuf;

use polars::prelude::*;
use weir_classify::Classifier;
use weir_pipeline::*;
use weir_search::*;

fn shared() -> PathBuf {
    std::env::var_os("WEIR_SHARED")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared"))
}

const SCAN: &str = "uploads/portScan.pcapng";
const FLOOD: &str = "uploads/flood.pcap";

/// A store holding two analyzed captures.
fn store() -> (tempfile::TempDir, LocalStore) {
    let dir = tempfile::tempdir().unwrap();
    let store = LocalStore::new(dir.path());
    let mut c = Classifier::shipped_cpu().unwrap();
    for (key, rel) in [
        (SCAN, "labeled/attacks/sgr/portScan_1_to_10000.pcapng"),
        (FLOOD, "labeled/attacks/doup123/udp__flood.pcap"),
    ] {
        store
            .put(key, &std::fs::read(shared().join(rel)).unwrap())
            .unwrap();
        let mut msgs = Vec::new();
        split(&store, key, &SplitOptions::default(), |m| {
            msgs.push(m.clone());
            Ok(())
        })
        .unwrap();
        for r in classify_shards(&store, &mut c, &msgs) {
            r.unwrap();
        }
        aggregate(&store, &capture_id(key)).unwrap();
    }
    (dir, store)
}

/// Every result row of a capture (the full rows the classifier wrote).
fn results(store: &LocalStore, key: &str) -> DataFrame {
    let id = capture_id(key);
    let mut all: Option<DataFrame> = None;
    for k in store.list(&results_prefix(&id)).unwrap() {
        let df = weir_records::parquet_to_frame(&store.get(&k).unwrap()).unwrap();
        match &mut all {
            None => all = Some(df),
            Some(a) => {
                a.vstack_mut(&df).unwrap();
            }
        }
    }
    all.unwrap()
}

fn count(store: &LocalStore, q: &str) -> usize {
    let query = Query::parse(q).unwrap();
    [SCAN, FLOOD]
        .iter()
        .map(|k| {
            matches(&results(store, k), &query)
                .unwrap()
                .iter()
                .filter(|m| **m)
                .count()
        })
        .sum()
}

fn run(store: &LocalStore, q: &str) -> Page {
    search(
        store,
        &Search {
            query: Query::parse(q).unwrap(),
            limit: MAX_LIMIT,
            ..Search::default()
        },
    )
    .unwrap()
}

#[test]
fn searches_agree_with_the_results_and_page_through_them() {
    let (_d, store) = store();
    let all = run(&store, "");
    let flows: usize = captures(&store)
        .unwrap()
        .iter()
        .map(|s| s.flows as usize)
        .sum();
    assert_eq!(all.total, flows);
    assert!(flows > 20_000, "{flows}");
    for q in [
        "src 192.168.1.7 and class \"Port Scan\"",
        "ip 192.168.1.0/24 and not dport 80",
        "proto udp and alert true",
        "class DDoS or class \"port scan\"",
        "dport < 1024 and p >= 0.9",
        "percentile >= 99",
        "-alert true",
        "ip 2001:db8::/32",
    ] {
        let page = run(&store, q);
        assert_eq!(page.total, count(&store, q), "{q}");
    }
    assert!(run(&store, "src 192.168.1.7 and class \"Port Scan\"").total > 9_000);
    assert_eq!(run(&store, "ip 2001:db8::/32").total, 0);

    // Pages: sorted by anomaly, descending; consecutive pages are the whole list.
    let q = Query::parse("class \"Port Scan\"").unwrap();
    let whole = search(
        &store,
        &Search {
            query: q.clone(),
            sort: Some(("anomaly".into(), true)),
            limit: MAX_LIMIT,
            ..Search::default()
        },
    )
    .unwrap();
    let anomaly = |df: &DataFrame| -> Vec<f32> {
        df.column("anomaly")
            .unwrap()
            .f32()
            .unwrap()
            .iter()
            .map(|v| v.unwrap())
            .collect()
    };
    let a = anomaly(&whole.rows);
    assert!(a.windows(2).all(|w| w[0] >= w[1]));
    let mut paged = Vec::new();
    for offset in (0..whole.total.min(3000)).step_by(1000) {
        let p = search(
            &store,
            &Search {
                query: q.clone(),
                sort: Some(("anomaly".into(), true)),
                offset,
                limit: 1000,
                ..Search::default()
            },
        )
        .unwrap();
        assert_eq!(p.total, whole.total);
        paged.extend(anomaly(&p.rows));
    }
    assert_eq!(paged[..], a[..paged.len()]);
    // Every row says which capture it is from.
    let caps = whole.rows.column("capture").unwrap().str().unwrap().clone();
    assert!(caps.iter().all(|c| c == Some(capture_id(SCAN).as_str())));
}

#[test]
fn a_time_range_and_capture_choice_narrow_the_search() {
    let (_d, store) = store();
    let flood = capture_id(FLOOD);
    let one = search(
        &store,
        &Search {
            captures: vec![flood.clone()],
            limit: MAX_LIMIT,
            ..Search::default()
        },
    )
    .unwrap();
    assert_eq!(one.total, 10_000);
    // The middle of the flood by time: counted independently from the results.
    let df = results(&store, FLOOD);
    let ts = |c: &str| -> Vec<i64> {
        df.column(c)
            .unwrap()
            .cast(&DataType::Int64)
            .unwrap()
            .i64()
            .unwrap()
            .iter()
            .map(|v| v.unwrap())
            .collect()
    };
    let (first, last) = (ts("first_ts"), ts("last_ts"));
    let mut sorted = first.clone();
    sorted.sort();
    let (from, to) = (sorted[2000], sorted[7000]);
    let want = (0..first.len())
        .filter(|&i| last[i] >= from && first[i] < to)
        .count();
    let page = search(
        &store,
        &Search {
            captures: vec![flood],
            from_ns: Some(from),
            to_ns: Some(to),
            limit: 10,
            ..Search::default()
        },
    )
    .unwrap();
    assert_eq!(page.total, want);
    assert_eq!(page.rows.height(), 10);
}

#[test]
fn bad_requests_say_what_to_change() {
    let (_d, store) = store();
    let bad = |s: Search| match search(&store, &s) {
        Err(SearchError::BadRequest(m)) => m,
        other => panic!("expected a bad request, got {other:?}"),
    };
    assert!(bad(Search {
        sort: Some(("colour".into(), false)),
        ..Search::default()
    })
    .contains("cannot sort by \"colour\""));
    assert!(bad(Search {
        limit: 0,
        ..Search::default()
    })
    .contains("limit 0"));
    assert!(bad(Search {
        captures: vec!["../../etc".into()],
        ..Search::default()
    })
    .contains("no capture"));
    assert!(bad(Search {
        from_ns: Some(5),
        to_ns: Some(5),
        ..Search::default()
    })
    .contains("time range is empty"));
}
