//! Search over the layout the real pipeline writes (two labelled captures through split,
//! classify and aggregate with the shipped model), checked against an independent reading
//! of the results objects (every flow's full row, not the search layout).

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::Arc;

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

/// A searcher over the store (each test's own, so what it keeps is the test's).
fn searcher(store: &LocalStore) -> Searcher {
    Searcher::new(Arc::new(store.clone()))
}

fn run(store: &LocalStore, q: &str) -> Page {
    searcher(store)
        .search(&Search {
            query: Query::parse(q).unwrap(),
            limit: MAX_LIMIT,
            ..Search::default()
        })
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
    let s = searcher(&store);
    let whole = s
        .search(&Search {
            query: q.clone(),
            sort: Some(("anomaly".into(), true)),
            limit: MAX_LIMIT,
            ..Search::default()
        })
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
        let p = s
            .search(&Search {
                query: q.clone(),
                sort: Some(("anomaly".into(), true)),
                offset,
                limit: 1000,
                ..Search::default()
            })
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
    let s = searcher(&store);
    let one = s
        .search(&Search {
            captures: vec![flood.clone()],
            limit: MAX_LIMIT,
            ..Search::default()
        })
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
    let page = s
        .search(&Search {
            captures: vec![flood],
            from_ns: Some(from),
            to_ns: Some(to),
            limit: 10,
            ..Search::default()
        })
        .unwrap();
    assert_eq!(page.total, want);
    assert_eq!(page.rows.height(), 10);
}

#[test]
fn bad_requests_say_what_to_change() {
    let (_d, store) = store();
    let searcher = searcher(&store);
    let bad = |s: Search| match searcher.search(&s) {
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

/// (capture, shard, row) of every row of a page: which flows it holds.
fn ids(df: &DataFrame) -> Vec<(String, u64, u64)> {
    let c = weir_records::columns::strings(df, "capture").unwrap();
    let s = weir_records::columns::u64s(df, "shard").unwrap();
    let r = weir_records::columns::u64s(df, "row").unwrap();
    (0..df.height())
        .map(|i| (c[i].clone(), s[i], r[i]))
        .collect()
}

/// Pages in time order (found by counting, not sorting) and in any column's order, both
/// ways, against the keys of every result row sorted independently: every page holds the
/// keys it should, and the pages together hold every flow exactly once.
#[test]
fn pages_deep_in_any_order_hold_each_flow_once() {
    let (_d, store) = store();
    let s = searcher(&store);
    let mut want_ts: Vec<i64> = Vec::new();
    let mut want_anomaly: Vec<f32> = Vec::new();
    for k in [SCAN, FLOOD] {
        let df = results(&store, k);
        want_ts.extend(weir_records::columns::i64s(&df, "first_ts").unwrap());
        want_anomaly.extend(
            weir_records::columns::f64s(&df, "anomaly")
                .unwrap()
                .into_iter()
                .map(|x| x as f32),
        );
    }
    let total = want_ts.len();
    for (col, desc) in [
        ("first_ts", false),
        ("first_ts", true),
        ("anomaly", true),
        ("src_ip", false),
    ] {
        let mut seen = HashSet::new();
        let mut keys_ts = Vec::new();
        let mut keys_anomaly = Vec::new();
        for offset in (0..total).step_by(997) {
            let p = s
                .search(&Search {
                    sort: Some((col.into(), desc)),
                    offset,
                    limit: 997,
                    ..Search::default()
                })
                .unwrap();
            assert_eq!(p.total, total);
            assert_eq!(
                p.rows.height(),
                997.min(total - offset),
                "{col} at {offset}"
            );
            for id in ids(&p.rows) {
                assert!(seen.insert(id.clone()), "{col} desc={desc}: {id:?} twice");
            }
            keys_ts.extend(weir_records::columns::i64s(&p.rows, "first_ts").unwrap());
            keys_anomaly.extend(
                weir_records::columns::f64s(&p.rows, "anomaly")
                    .unwrap()
                    .into_iter()
                    .map(|x| x as f32),
            );
        }
        assert_eq!(seen.len(), total, "{col} desc={desc}: pages miss flows");
        match col {
            "first_ts" => {
                let mut w = want_ts.clone();
                w.sort();
                if desc {
                    w.reverse();
                }
                assert_eq!(keys_ts, w, "first_ts desc={desc}");
            }
            "anomaly" => {
                let mut w = want_anomaly.clone();
                w.sort_by(|a, b| b.total_cmp(a));
                assert_eq!(keys_anomaly, w);
            }
            _ => {}
        }
    }
    // A page past the end is empty, and says how many there are.
    let p = s
        .search(&Search {
            offset: total + 5,
            ..Search::default()
        })
        .unwrap();
    assert_eq!((p.total, p.rows.height()), (total, 0));
}

/// What a searcher keeps is dropped when the store changes: a capture added after a search is
/// found by the next one, and a budget too small to keep anything changes no answer.
#[test]
fn a_kept_search_sees_the_store_change() {
    let (_d, store) = store();
    let s = searcher(&store);
    let before = s.search(&Search::default()).unwrap().total;
    assert!(s.cached_bytes() > 0);
    let key = "uploads/again.pcap";
    store
        .put(
            key,
            &std::fs::read(shared().join("labeled/attacks/doup123/udp__flood.pcap")).unwrap(),
        )
        .unwrap();
    let mut msgs = Vec::new();
    let opts = SplitOptions {
        shard_flows: 2_500,
        ..SplitOptions::default()
    };
    split(&store, key, &opts, |m| {
        msgs.push(m.clone());
        Ok(())
    })
    .unwrap();
    assert_eq!(msgs.len(), 4);
    // Mid-way: the capture is classifying, its parts appear as they land.
    let mut c = Classifier::shipped_cpu().unwrap();
    for r in classify_shards(&store, &mut c, &msgs[..1]) {
        r.unwrap();
    }
    let mid = s.search(&Search::default()).unwrap().total;
    assert!(mid > before, "{mid} after {before}");
    for r in classify_shards(&store, &mut c, &msgs[1..]) {
        r.unwrap();
    }
    aggregate(&store, &capture_id(key)).unwrap();
    assert_eq!(s.search(&Search::default()).unwrap().total, before + 10_000);
    let tiny = Searcher::with_budget(Arc::new(store.clone()), 1);
    let q = Search {
        query: Query::parse("class \"Port Scan\" and dport < 1024").unwrap(),
        sort: Some(("anomaly".into(), true)),
        limit: 50,
        ..Search::default()
    };
    let (a, b) = (s.search(&q).unwrap(), tiny.search(&q).unwrap());
    assert_eq!((a.total, ids(&a.rows)), (b.total, ids(&b.rows)));
    assert_eq!(a.overview, b.overview);
    assert!(tiny.cached_bytes() <= 1 || tiny.cached_bytes() < s.cached_bytes());
}
