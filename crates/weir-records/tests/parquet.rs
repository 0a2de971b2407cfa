//! Flow tables as Parquet: snake_case columns, timestamps in UTC, every column described in
//! the file (Arrow field metadata and the key-value metadata `weir.columns`).

use polars::prelude::*;

fn sample_flows() -> Vec<weir_flow::FlowRecord> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../samples/loopback.pcapng");
    let mut flows = Vec::new();
    weir_flow::extract(
        std::fs::File::open(path).unwrap(),
        &weir_flow::ExtractOptions::default(),
        |b| flows.extend(b),
        |_| {},
    )
    .unwrap();
    flows
}

#[test]
fn flow_parquet_has_utc_timestamps_snake_case_names_and_descriptions() {
    let flows = sample_flows();
    let mut df = weir_records::flows_to_frame(&flows).unwrap();
    let utc = weir_records::timestamp();
    assert_eq!(df.column("first_ts").unwrap().dtype(), &utc);
    let bytes = weir_records::frame_to_parquet(&mut df).unwrap();
    let back = weir_records::parquet_to_frame(&bytes).unwrap();
    assert_eq!(back.column("last_ts").unwrap().dtype(), &utc);
    let first = back
        .column("first_ts")
        .unwrap()
        .cast(&DataType::Int64)
        .unwrap();
    assert_eq!(first.i64().unwrap().get(0), Some(flows[0].first_ts_ns));
    for name in back.get_column_names() {
        let n = name.as_str();
        assert!(
            n.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'),
            "{n}"
        );
    }
    // Feature 0 is `proto` itself, not a second float column.
    assert_eq!(
        back.width(),
        weir_records::FIXED_COLUMNS.len() + weir_flow::N_FEATURES - 1
    );
    let x = weir_records::feature_matrix(&back).unwrap();
    assert_eq!(x[0], f32::from(flows[0].proto));
    let meta = polars_parquet::read::read_metadata(&mut std::io::Cursor::new(&bytes)).unwrap();
    let kv: std::collections::HashMap<String, String> = meta
        .key_value_metadata()
        .clone()
        .unwrap_or_default()
        .into_iter()
        .map(|k| (k.key, k.value.unwrap_or_default()))
        .collect();
    assert_eq!(kv["weir.feature_version"], weir_flow::FEATURE_VERSION);
    assert!(
        kv.contains_key("ARROW:schema"),
        "readers keep the column types"
    );
    let docs: serde_json::Value = serde_json::from_str(&kv["weir.columns"]).unwrap();
    for name in back.get_column_names() {
        assert!(
            docs[name.as_str()]["description"]
                .as_str()
                .is_some_and(|d| d.len() > 10),
            "{name} undescribed"
        );
    }
    assert_eq!(
        docs["flow_bytes_per_s"]["cicflowmeter_name"],
        "Flow Bytes/s"
    );
    assert_eq!(docs["first_ts"]["unit"], "timestamp ns UTC");
}

#[test]
fn probability_columns_are_snake_case() {
    assert_eq!(
        weir_records::probability_column("Web Attack - XSS"),
        "p_web_attack_xss"
    );
    assert_eq!(weir_records::probability_column("DoS Hulk"), "p_dos_hulk");
    assert!(weir_records::column_doc("p_dos_hulk").is_some());
    assert!(weir_records::column_doc("no_such_column").is_none());
}
