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
            + weir_records::BEHAVIOUR_COLUMNS.len()
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

/// The classification columns of `n` rows over three classes.
fn verdicts(n: usize) -> Vec<Column> {
    let classes: Vec<String> = ["Normal", "Port Scan", "DDoS"].map(String::from).to_vec();
    let predicted: Vec<u16> = (0..n).map(|i| (i % 3) as u16).collect();
    let probabilities: Vec<f32> = (0..n)
        .flat_map(|i| {
            let p = 0.5 + (i % 5) as f32 / 10.0;
            let mut row = [(1.0 - p) / 2.0; 3];
            row[i % 3] = p;
            row
        })
        .collect();
    let anomaly: Vec<f32> = (0..n).map(|i| i as f32 * 0.25 - 3.0).collect();
    weir_records::verdict_columns(
        n,
        &weir_records::Verdicts {
            classes: &classes,
            model_version: "test-1",
            predicted: &predicted,
            probabilities: &probabilities,
            anomaly: &anomaly,
            min_probability: 0.7,
            anomaly_reference: &[],
            behaviour: &[],
            model_silenced: &[],
            class_thresholds: &[],
        },
    )
    .unwrap()
}

#[test]
fn every_column_type_round_trips_with_nulls_and_statistics() {
    let flows = sample_flows();
    assert!(flows.len() > 2, "{}", flows.len());
    let mut df = weir_records::flows_to_frame(&flows).unwrap();
    let cols = verdicts(df.height());
    df.hstack_mut(&cols).unwrap();
    let bytes = weir_records::frame_to_parquet(&mut df).unwrap();
    let back = weir_records::parquet_to_frame(&bytes).unwrap();
    // Every column: same name, same type, same values (nulls included: `tunnel` is null for
    // flows that did not come through one), in the same order.
    assert_eq!(back.schema(), df.schema());
    assert!(
        back.equals_missing(&df),
        "a value changed in the round trip"
    );
    let dtypes: std::collections::BTreeSet<String> =
        back.dtypes().iter().map(|d| format!("{d:?}")).collect();
    for t in ["String", "UInt32", "Float32", "Boolean", "Datetime"] {
        assert!(
            dtypes.iter().any(|d| d.starts_with(t)),
            "no {t} column: {dtypes:?}"
        );
    }
    assert!(back.column("tunnel").unwrap().null_count() > 0);
    // The alert rule travelled: not Normal and probability >= 0.7.
    let alert = back.column("alert").unwrap().bool().unwrap();
    let class = back.column("class").unwrap().str().unwrap();
    let p = back.column("class_probability").unwrap().f32().unwrap();
    for i in 0..back.height() {
        let want = class.get(i) != Some("Normal") && p.get(i).unwrap() >= 0.7;
        assert_eq!(alert.get(i), Some(want), "row {i}");
    }
    // Statistics: every column chunk has min/max (what readers prune row groups with).
    let meta = polars_parquet::read::read_metadata(&mut std::io::Cursor::new(&bytes)).unwrap();
    assert_eq!(meta.num_rows, df.height());
    for rg in meta.row_groups.iter() {
        for c in rg.parquet_columns() {
            let name = &c.descriptor().path_in_schema[0];
            let stats = c.statistics(&meta.footer_buf).and_then(|s| s.ok());
            assert!(stats.is_some(), "{name}: no statistics");
        }
    }
    // first_ts's statistics bound the data.
    let ts = back
        .column("first_ts")
        .unwrap()
        .cast(&DataType::Int64)
        .unwrap();
    let (lo, hi) = (
        ts.i64().unwrap().min().unwrap(),
        ts.i64().unwrap().max().unwrap(),
    );
    assert!(lo <= hi && lo == flows.iter().map(|f| f.first_ts_ns).min().unwrap());
}

#[test]
fn an_empty_batch_is_a_valid_file_with_the_full_schema() {
    let mut df = weir_records::flows_to_frame(&[]).unwrap();
    df.hstack_mut(&verdicts(0)).unwrap();
    assert_eq!(df.height(), 0);
    let bytes = weir_records::frame_to_parquet(&mut df).unwrap();
    let back = weir_records::parquet_to_frame(&bytes).unwrap();
    assert_eq!(back.height(), 0);
    assert_eq!(back.schema(), df.schema());
    assert_eq!(
        back.column("first_ts").unwrap().dtype(),
        &weir_records::timestamp()
    );
    assert!(weir_records::feature_matrix(&back).unwrap().is_empty());
    // A frame of another version (a feature column missing) is an error, not zeros.
    let narrow = back.drop(weir_flow::feature_columns()[3].as_str()).unwrap();
    assert!(weir_records::feature_matrix(&narrow).is_err());
}

#[test]
fn the_model_alone_does_not_alert_on_a_lone_packet() {
    let df = polars::df!(
        "packets_fwd" => [1u64, 1, 3],
        "packets_bwd" => [0u64, 1, 0],
    )
    .unwrap();
    let silenced = weir_records::model_silenced(&df);
    assert_eq!(silenced, vec![true, false, false]);
    let classes: Vec<String> = ["Normal", "DoS"].map(String::from).to_vec();
    // Every flow predicted DoS with probability 1; `behaviour` per flow.
    let columns = |behaviour: &[Option<String>]| {
        weir_records::verdict_columns(
            3,
            &weir_records::Verdicts {
                classes: &classes,
                model_version: "test-1",
                predicted: &[1, 1, 1],
                probabilities: &[0.0, 1.0, 0.0, 1.0, 0.0, 1.0],
                anomaly: &[0.0; 3],
                min_probability: 0.9,
                anomaly_reference: &[],
                behaviour,
                model_silenced: &silenced,
                class_thresholds: &[],
            },
        )
        .unwrap()
    };
    let alert = |cols: &[Column]| -> Vec<bool> {
        let c = cols.iter().find(|c| c.name() == "alert").unwrap();
        c.bool().unwrap().iter().map(|v| v.unwrap()).collect()
    };
    // The lone packet keeps its class but does not alert; the others do.
    let cols = columns(&[None, None, None]);
    assert_eq!(alert(&cols), vec![false, true, true]);
    let class = cols.iter().find(|c| c.name() == "class").unwrap();
    assert_eq!(class.str().unwrap().get(0), Some("DoS"));
    // A detector's finding alerts on a lone packet all the same.
    let cols = columns(&[Some("DoS".to_string()), None, None]);
    assert_eq!(alert(&cols), vec![true, true, true]);
}
