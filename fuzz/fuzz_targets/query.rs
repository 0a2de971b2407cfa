//! The query language from anybody who can send a request: any text is parsed without a
//! panic or a stack overflow, what parses prints to a canonical text that parses back to the
//! same query, and the query runs over a small table of flows without a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use polars::prelude::*;
use std::sync::OnceLock;
use weir_search::{matches, Query};

fn flows() -> &'static DataFrame {
    static DF: OnceLock<DataFrame> = OnceLock::new();
    DF.get_or_init(|| {
        df!(
            "first_ts" => [1i64, 2, 3, 4],
            "last_ts" => [10i64, 20, 30, 40],
            "proto" => [6u32, 17, 6, 1],
            "src_ip" => ["10.0.0.1", "10.0.0.2", "2001:db8::5", "not an address"],
            "src_port" => [40000u32, 5353, 50000, 8],
            "dst_ip" => ["10.0.0.9", "8.8.8.8", "::ffff:10.0.0.1", "10.0.0.1"],
            "dst_port" => [22u32, 53, 443, 0],
            "community_id" => ["1:a", "1:b", "1:c", "1:d"],
            "class" => ["SSH Patator", "Normal", "Port Scan", "Normal"],
            "class_probability" => [0.99f32, 0.7, 0.95, 0.5],
            "alert" => [true, false, true, false],
            "anomaly" => [3.0f32, -1.0, 7.5, 0.0],
            "anomaly_percentile" => [90.0f32, 10.0, 99.5, 50.0],
            "model_version" => ["m1", "m1", "m1", "m2"],
        )
        .expect("the table")
    })
}

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    match Query::parse(&text) {
        Ok(q) => {
            let canonical = q.to_string();
            let again = Query::parse(&canonical).expect("the canonical text parses");
            assert_eq!(again, q, "{text:?} -> {canonical:?}");
            let m = matches(flows(), &q).expect("a query runs");
            assert_eq!(m.len(), 4);
        }
        Err(e) => {
            let _ = e.pointed(&text);
        }
    }
});
