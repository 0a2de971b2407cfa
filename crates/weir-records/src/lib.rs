//! # weir-records
//!
//! Owns: the table schema, column docs and the Parquet/CSV/JSON encoders. Must not depend on:
//! the store, an inference runtime.
//!
//! Flow records as columnar tables. One schema ([`flow_schema`]) for every output format:
//! Parquet (through polars, zstd, row-group statistics), CSV and JSON Lines. Writers are
//! streaming: each batch of flows becomes a row group / a block of lines, so memory stays
//! bounded by the batch size.
#![warn(missing_docs)]

pub mod columns;
mod parquet;
pub use parquet::{ParquetSink, SMALL_ROWS};

use std::io::Write;
use weir_wire::columns as col;

use polars::prelude::*;
use weir_flow::{feature_columns, FlowRecord, FEATURES, FEATURE_VERSION, N_FEATURES};

/// Output format.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OutputFormat {
    /// Apache Parquet (zstd).
    Parquet,
    /// Comma-separated values with a header line.
    Csv,
    /// One JSON object per line.
    Jsonl,
}

/// Errors of the record writers.
#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    /// polars failed to build or write a table.
    #[error("writing {format:?} output failed: {source}")]
    Polars {
        /// The output format.
        format: OutputFormat,
        /// The underlying error.
        #[source]
        source: PolarsError,
    },
}

/// The `behaviour_class` column of a flow frame (empty when the frame has none: a shard
/// written before the detectors existed).
pub fn behaviour_classes(df: &DataFrame) -> Vec<Option<String>> {
    let Ok(c) = df.column(col::BEHAVIOUR_CLASS) else {
        return Vec::new();
    };
    let Ok(c) = c.cast(&DataType::String) else {
        return Vec::new();
    };
    c.str()
        .map(|ca| ca.iter().map(|v| v.map(str::to_string)).collect())
        .unwrap_or_default()
}

/// Per flow of `df`, whether the model's verdict may not alert on its own: flows of fewer
/// than [`weir_flow::MODEL_MIN_PACKETS`] packets (`packets_fwd` + `packets_bwd`). Empty when
/// the frame has no packet columns.
pub fn model_silenced(df: &DataFrame) -> Vec<bool> {
    let count = |name: &str| -> Option<Vec<u64>> {
        let c = df.column(name).ok()?.cast(&DataType::UInt64).ok()?;
        Some(c.u64().ok()?.iter().map(|v| v.unwrap_or(0)).collect())
    };
    match (count(col::PACKETS_FWD), count(col::PACKETS_BWD)) {
        (Some(f), Some(b)) => f
            .iter()
            .zip(&b)
            .map(|(f, b)| !weir_flow::model_may_alert(f + b))
            .collect(),
        _ => Vec::new(),
    }
}

/// The behaviour columns every flow table ends its flow part with (after the features).
pub const BEHAVIOUR_COLUMNS: [&str; 3] = [col::BEHAVIOUR, col::BEHAVIOUR_CLASS, col::EVIDENCE];

/// The classification columns [`verdict_columns`] adds after the features (then `p_<class>`).
pub const VERDICT_COLUMNS: [&str; 6] = [
    col::CLASS,
    col::CLASS_PROBABILITY,
    col::ALERT,
    col::ANOMALY,
    col::ANOMALY_PERCENTILE,
    col::MODEL_VERSION,
];

/// docs/FEATURES.md: every column of weir's tables with its description, from the same docs
/// the Parquet files carry ([`column_doc`]) and the feature spec.
pub fn columns_markdown() -> String {
    let table = |names: &[&str]| {
        let mut s = String::from("| column | unit | meaning |\n|---|---|---|\n");
        for n in names {
            let (d, u, _) = column_doc(n).unwrap_or_default();
            s.push_str(&format!("| `{n}` | {u} | {d} |\n"));
        }
        s
    };
    format!(
        "# Columns of weir's tables ({FEATURE_VERSION})\n\n\
         Generated from `crates/weir-records/src/lib.rs` and `crates/weir-flow/src/features.rs` by \
         `weir features --markdown`; do not edit by hand.\n\n\
         Every Parquet file weir writes (flow shards, results, the search layout, `weir flows`) \
         carries these descriptions: in each field's Arrow metadata (`description`, `unit`, \
         `cicflowmeter_name`) and, as JSON, in the file's key-value metadata `weir.columns`, \
         beside `weir.feature_version`. In DuckDB: \
         `SELECT * FROM parquet_kv_metadata('results/00000.parquet')`. Column names are snake_case; \
         times are timestamps (ns, UTC).\n\n\
         ## Flow columns\n\n{}\n\
         After the features, the host-behaviour columns (docs/DETECTION.md):\n\n{}\n\
         ## Classification columns (results and search layout)\n\n{}\
         | `p_<class>` | 0-1 | the model's probability of each class, the class name in snake_case \
         (`p_normal`, `p_port_scan`, `p_web_attack_xss`, ...) |\n\n\
         The search layout (`flows/day=*/part-*.parquet`) adds:\n\n{}\n{}",
        table(&FIXED_COLUMNS),
        table(&BEHAVIOUR_COLUMNS),
        table(&VERDICT_COLUMNS),
        table(&[col::SHARD, col::ROW]),
        weir_flow::features::spec_markdown()
    )
}

/// Names of the fixed (non-feature) columns, in order.
pub const FIXED_COLUMNS: [&str; 18] = [
    col::COMMUNITY_ID,
    col::PROTO,
    col::SRC_IP,
    col::SRC_PORT,
    col::DST_IP,
    col::DST_PORT,
    col::VLAN,
    col::TUNNEL,
    col::FIRST_TS,
    col::LAST_TS,
    col::PACKETS_FWD,
    col::PACKETS_BWD,
    col::BYTES_FWD,
    col::BYTES_BWD,
    col::FIRST_OFFSET,
    col::LAST_OFFSET,
    col::END_REASON,
    col::FEATURE_VERSION,
];

/// Build a DataFrame from a batch of flow records. Timestamps are nanoseconds since the Unix
/// epoch (UTC); byte counts are whole frames on the wire; features follow [`FEATURES`].
pub fn flows_to_frame(flows: &[FlowRecord]) -> PolarsResult<DataFrame> {
    let n = flows.len();
    let mut cols: Vec<Column> = Vec::with_capacity(FIXED_COLUMNS.len() + N_FEATURES);
    macro_rules! col {
        ($name:expr, $f:expr) => {
            cols.push(Column::new(
                $name.into(),
                flows.iter().map($f).collect::<Vec<_>>(),
            ))
        };
    }
    col!(col::COMMUNITY_ID, |f: &FlowRecord| f.community_id.as_str());
    col!(col::PROTO, |f: &FlowRecord| f.proto as u32);
    col!(col::SRC_IP, |f: &FlowRecord| f.src_ip.to_string());
    col!(col::SRC_PORT, |f: &FlowRecord| f.src_port as u32);
    col!(col::DST_IP, |f: &FlowRecord| f.dst_ip.to_string());
    col!(col::DST_PORT, |f: &FlowRecord| f.dst_port as u32);
    col!(col::VLAN, |f: &FlowRecord| f.vlan as u32);
    col!(col::TUNNEL, |f: &FlowRecord| f
        .tunnel
        .map(|t| format!("{t:?}").to_lowercase()));
    for (name, ts) in [
        (
            col::FIRST_TS,
            flows.iter().map(|f| f.first_ts_ns).collect::<Vec<i64>>(),
        ),
        (col::LAST_TS, flows.iter().map(|f| f.last_ts_ns).collect()),
    ] {
        // Built as a timestamp (a cast from Int64 would drop the time zone).
        cols.push(
            Int64Chunked::from_vec(name.into(), ts)
                .into_datetime(TimeUnit::Nanoseconds, Some(TimeZone::UTC))
                .into_column(),
        );
    }
    col!(col::PACKETS_FWD, |f: &FlowRecord| f.packets_fwd);
    col!(col::PACKETS_BWD, |f: &FlowRecord| f.packets_bwd);
    col!(col::BYTES_FWD, |f: &FlowRecord| f.bytes_fwd);
    col!(col::BYTES_BWD, |f: &FlowRecord| f.bytes_bwd);
    col!(col::FIRST_OFFSET, |f: &FlowRecord| f.first_offset);
    col!(col::LAST_OFFSET, |f: &FlowRecord| f.last_offset);
    col!(col::END_REASON, |f: &FlowRecord| f.end_reason.name());
    col!(col::FEATURE_VERSION, |_f: &FlowRecord| FEATURE_VERSION);
    // Feature 0 (Protocol) is the `proto` column already.
    for (i, name) in feature_columns().iter().enumerate().skip(1) {
        cols.push(Column::new(
            name.as_str().into(),
            flows.iter().map(|f| f.features[i]).collect::<Vec<f64>>(),
        ));
    }
    col!(col::BEHAVIOUR, |f: &FlowRecord| f
        .behaviour
        .as_ref()
        .map(|x| x.detector.name()));
    col!(col::BEHAVIOUR_CLASS, |f: &FlowRecord| f
        .behaviour
        .as_ref()
        .map(|x| x.class.name()));
    col!(col::EVIDENCE, |f: &FlowRecord| f
        .behaviour
        .as_ref()
        .map(|x| x.evidence.clone()));
    DataFrame::new(n, cols)
}

/// The type of `first_ts` and `last_ts`: a Parquet/Arrow timestamp, ns, UTC.
pub fn timestamp() -> DataType {
    DataType::Datetime(TimeUnit::Nanoseconds, Some(TimeZone::UTC))
}

/// `p_web_attack_xss` for `Web Attack - XSS`: the column of a class's probability.
pub fn probability_column(class: &str) -> String {
    format!("p_{}", weir_flow::column_name(class))
}

/// What a column of weir's tables holds (its description in the Parquet field metadata and
/// in docs/FEATURES.md), `(description, unit, CICFlowMeter name)`, or `None` for a column
/// weir does not write.
pub fn column_doc(name: &str) -> Option<(String, &'static str, &'static str)> {
    let fixed: Option<(&str, &str)> = match name {
        col::COMMUNITY_ID => Some(("Community ID (v1, seed 0) of the flow's 5-tuple: the same string Zeek, Suricata and Arkime compute", "")),
        col::PROTO => Some(("IP protocol number (6 TCP, 17 UDP, 1 ICMP, 58 ICMPv6); also feature 0 (CIC `Protocol`)", "IANA number")),
        col::SRC_IP => Some(("address of the initiator (the sender of the flow's first packet)", "")),
        col::SRC_PORT => Some(("initiator's port; for ICMP the type of the first packet", "")),
        col::DST_IP => Some(("address of the responder", "")),
        col::DST_PORT => Some(("responder's port; for ICMP the code of the first packet", "")),
        col::VLAN => Some(("outermost VLAN id (0: none)", "")),
        col::TUNNEL => Some(("encapsulation the flow was found in (gre, vxlan, geneve, ipip, ...), null when none", "")),
        col::FIRST_TS => Some(("time of the flow's first packet", "timestamp ns UTC")),
        col::LAST_TS => Some(("time of the flow's last packet", "timestamp ns UTC")),
        col::PACKETS_FWD => Some(("packets from the initiator", "packets")),
        col::PACKETS_BWD => Some(("packets from the responder", "packets")),
        col::BYTES_FWD => Some(("bytes from the initiator, whole frames on the wire", "bytes")),
        col::BYTES_BWD => Some(("bytes from the responder, whole frames on the wire", "bytes")),
        col::FIRST_OFFSET => Some(("byte offset of the flow's first packet record in the capture file", "bytes")),
        col::LAST_OFFSET => Some(("byte offset of the flow's last packet record in the capture file", "bytes")),
        col::END_REASON => Some(("why the flow ended: idle, active, fin, rst, reused or eof", "")),
        col::FEATURE_VERSION => Some(("version of the feature vector (docs/FEATURES.md)", "")),
        col::BEHAVIOUR => Some(("the host-behaviour detector that fired on this flow (port_scan, sweep, brute_force, flood, reflection, slow_dos, http_flood, beacon, payload, dns_tunnel, c2_session), null when none; such a flow alerts with that detector's class whatever the model says (docs/DETECTION.md)", "")),
        col::BEHAVIOUR_CLASS => Some(("the class the behaviour detector stands for, null when none fired", "")),
        col::EVIDENCE => Some(("what the behaviour detector saw, in words (counts, hosts, service), null when none fired", "")),
        col::CLASS => Some(("the verdict: the behaviour detector's class where one fired, else the class the model predicted (Normal or an attack class)", "")),
        col::CLASS_PROBABILITY => Some(("the model's probability of the predicted class (1 where a behaviour detector decided)", "0-1")),
        col::ALERT => Some(("true when a behaviour detector fired, or the class is not Normal and its probability is at least both --min-probability and the model's own threshold for that class (weir.alert_thresholds, models/MODEL_CARD.md)", "")),
        col::ANOMALY => Some(("raw energy anomaly score: higher = less like the training data (see models/MODEL_CARD.md)", "energy")),
        col::ANOMALY_PERCENTILE => Some(("the anomaly score as a percentile of benign training flows: 99 = less usual than 99% of them, 100 = beyond all; NaN for a model without a benign reference", "0-100")),
        col::MODEL_VERSION => Some(("version of the model that classified the flow", "")),
        col::SHARD => Some(("the shard whose results/NNNNN.parquet holds the flow's full row", "")),
        col::ROW => Some(("the flow's row in that result file", "")),
        _ => None,
    };
    if let Some((d, u)) = fixed {
        return Some((d.to_string(), u, ""));
    }
    if let Some(i) = feature_columns().iter().position(|c| c == name) {
        let f = &FEATURES[i];
        return Some((f.description.to_string(), f.unit, f.name));
    }
    name.strip_prefix("p_").map(|c| {
        (
            format!("the model's probability that the flow is {c} (class name in snake_case)"),
            "0-1",
            "",
        )
    })
}

/// Classification of a batch of flows, added as columns after the features: `class` (the
/// predicted class), `class_probability`, `alert` (class is not Normal, probability at least
/// the threshold), `anomaly` (the model's energy score), `anomaly_percentile` (that score
/// against benign flows, 0-100), `model_version`, then `p_<class>` for every class.
#[derive(Clone, Copy, Debug)]
pub struct Verdicts<'a> {
    /// Class names in model output order.
    pub classes: &'a [String],
    /// The model's version string.
    pub model_version: &'a str,
    /// Predicted class index per flow.
    pub predicted: &'a [u16],
    /// `flows × classes` probabilities, row-major.
    pub probabilities: &'a [f32],
    /// Anomaly score per flow.
    pub anomaly: &'a [f32],
    /// A flow whose class is not Normal alerts when its probability is at least this.
    pub min_probability: f32,
    /// The model's benign anomaly reference (`ModelInfo::anomaly_reference`; may be empty).
    pub anomaly_reference: &'a [f32],
    /// Per class, the model's own alert threshold ([`weir_model::ModelInfo::alert_thresholds`];
    /// empty: none); the higher of it and `min_probability` applies.
    pub class_thresholds: &'a [f32],
    /// Per flow, the class a behaviour detector decided (the `behaviour_class` column), which
    /// overrides the model: that class, probability 1, an alert. Empty: none.
    pub behaviour: &'a [Option<String>],
    /// Per flow, true where the model's verdict may not alert on its own
    /// ([`model_silenced`]: a lone packet); the flow keeps its class. Empty: none.
    pub model_silenced: &'a [bool],
}

pub use weir_model::NORMAL_CLASS;

/// The classification columns of [`Verdicts`] for `n` flows, to add after a flow frame's
/// columns (a shard read back from Parquet gets them the same way as fresh flows).
pub fn verdict_columns(n: usize, v: &Verdicts<'_>) -> PolarsResult<Vec<Column>> {
    let k = v.classes.len();
    if v.predicted.len() != n || v.anomaly.len() != n || v.probabilities.len() != n * k {
        return Err(PolarsError::ShapeMismatch(
            format!(
                "{n} flows but {} predictions, {} scores, {} probabilities for {k} classes",
                v.predicted.len(),
                v.anomaly.len(),
                v.probabilities.len()
            )
            .into(),
        ));
    }
    let name = |i: u16| v.classes.get(i as usize).map_or("?", String::as_str);
    let decided = |i: usize| v.behaviour.get(i).and_then(|b| b.as_deref());
    let mut cols = vec![
        Column::new(
            col::CLASS.into(),
            v.predicted
                .iter()
                .enumerate()
                .map(|(i, p)| decided(i).unwrap_or(name(*p)))
                .collect::<Vec<_>>(),
        ),
        Column::new(
            col::CLASS_PROBABILITY.into(),
            v.predicted
                .iter()
                .enumerate()
                .map(|(i, p)| match decided(i) {
                    Some(_) => 1.0,
                    None => v.probabilities[i * k + *p as usize],
                })
                .collect::<Vec<f32>>(),
        ),
        Column::new(
            col::ALERT.into(),
            v.predicted
                .iter()
                .enumerate()
                .map(|(i, p)| {
                    weir_model::AlertScore::of(&weir_model::FlowVerdict {
                        detector: decided(i).is_some(),
                        normal: name(*p) == NORMAL_CLASS,
                        probability: v.probabilities[i * k + *p as usize],
                        class_threshold: weir_model::class_threshold(
                            v.class_thresholds,
                            *p as usize,
                        ),
                        silenced: v.model_silenced.get(i).copied().unwrap_or(false),
                    })
                    .alerts(v.min_probability)
                })
                .collect::<Vec<bool>>(),
        ),
        Column::new(col::ANOMALY.into(), v.anomaly.to_vec()),
        Column::new(
            col::ANOMALY_PERCENTILE.into(),
            v.anomaly
                .iter()
                .map(|e| weir_model::anomaly_percentile(v.anomaly_reference, *e))
                .collect::<Vec<f32>>(),
        ),
        Column::new(col::MODEL_VERSION.into(), vec![v.model_version; n]),
    ];
    for (j, c) in v.classes.iter().enumerate() {
        cols.push(Column::new(
            probability_column(c).into(),
            (0..n)
                .map(|i| v.probabilities[i * k + j])
                .collect::<Vec<f32>>(),
        ));
    }
    Ok(cols)
}

/// A frame as one Parquet object (row-group statistics; zstd, or LZ4 under [`SMALL_ROWS`]
/// rows), e.g. a flow shard.
pub fn frame_to_parquet(df: &mut DataFrame) -> PolarsResult<Vec<u8>> {
    let c = if df.height() < SMALL_ROWS {
        polars_parquet::write::CompressionOptions::Lz4Raw
    } else {
        polars_parquet::write::CompressionOptions::Zstd(None)
    };
    let mut sink = ParquetSink::with_compression(Vec::new(), &df.schema().clone(), c)?;
    sink.write(df)?;
    sink.finish()
}

/// A Parquet object read back as a frame.
pub fn parquet_to_frame(bytes: &[u8]) -> PolarsResult<DataFrame> {
    ParquetReader::new(std::io::Cursor::new(bytes)).finish()
}

/// A Parquet object as a frame, decoded on the calling thread only: for callers that decode
/// many objects in parallel themselves (a rayon worker that waits on polars' own pool runs
/// other queued decodes meanwhile, one inside the other, until the stack runs out).
pub fn parquet_to_frame_serial(bytes: &[u8]) -> PolarsResult<DataFrame> {
    ParquetReader::new(std::io::Cursor::new(bytes))
        .read_parallel(ParallelStrategy::None)
        .finish()
}

/// Only the named columns of a Parquet object (the others are not decoded).
pub fn parquet_to_frame_columns(bytes: &[u8], columns: &[&str]) -> PolarsResult<DataFrame> {
    ParquetReader::new(std::io::Cursor::new(bytes))
        .with_columns(Some(columns.iter().map(|c| c.to_string()).collect()))
        .finish()
}

/// The feature vectors of a flow frame, `rows × N_FEATURES` f32 in [`FEATURES`] order (the
/// model's input). Errors if a feature column is missing: the frame is of another version.
pub fn feature_matrix(df: &DataFrame) -> PolarsResult<Vec<f32>> {
    let n = df.height();
    let mut x = vec![0f32; n * N_FEATURES];
    for (j, name) in feature_columns().iter().enumerate() {
        let col = df.column(name)?.cast(&DataType::Float32)?;
        let ca = col.f32()?;
        let values = ca.downcast_iter().flat_map(|a| a.iter());
        for (i, v) in values.enumerate() {
            x[i * N_FEATURES + j] = v.copied().unwrap_or(f32::NAN);
        }
    }
    Ok(x)
}

enum Inner<W: Write> {
    Parquet(Box<ParquetSink<W>>),
    Csv(polars::io::csv::write::BatchedWriter<W>),
    Jsonl(polars::io::json::BatchedWriter<W>),
    /// Nothing written yet: the batched writer is created with the first batch's schema.
    Pending(W),
    Done,
}

/// A streaming writer of flow records in one of the [`OutputFormat`]s.
pub struct FlowWriter<W: Write> {
    format: OutputFormat,
    inner: Inner<W>,
    rows: u64,
}

impl<W: Write> FlowWriter<W> {
    /// A writer over `w`.
    pub fn new(w: W, format: OutputFormat) -> Self {
        FlowWriter {
            format,
            inner: Inner::Pending(w),
            rows: 0,
        }
    }

    /// Rows written so far.
    pub fn rows(&self) -> u64 {
        self.rows
    }

    fn err(&self, source: PolarsError) -> RecordError {
        RecordError::Polars {
            format: self.format,
            source,
        }
    }

    /// Write one batch of flows.
    pub fn write(&mut self, flows: &[FlowRecord]) -> Result<(), RecordError> {
        if flows.is_empty() {
            return Ok(());
        }
        let mut df = flows_to_frame(flows).map_err(|e| self.err(e))?;
        self.write_frame(&mut df)?;
        self.rows += flows.len() as u64;
        Ok(())
    }

    fn open(&mut self, schema: &Schema) -> Result<(), RecordError> {
        if let Inner::Pending(_) = self.inner {
            let Inner::Pending(w) = std::mem::replace(&mut self.inner, Inner::Done) else {
                unreachable!()
            };
            let inner = match self.format {
                // Min, max and null counts per row group: what pruning needs. (Distinct counts
                // cost 6% of `weir flows` and no reader uses them.)
                OutputFormat::Parquet => {
                    ParquetSink::new(w, schema).map(|w| Inner::Parquet(Box::new(w)))
                }
                OutputFormat::Csv => CsvWriter::new(w)
                    .include_header(true)
                    // RFC 3339 in UTC, ns (polars writes no zone suffix of its own).
                    .with_datetime_format(Some("%Y-%m-%dT%H:%M:%S%.9fZ".into()))
                    .batched(schema)
                    .map(Inner::Csv),
                OutputFormat::Jsonl => Ok(Inner::Jsonl(polars::io::json::BatchedWriter::new(w))),
            };
            self.inner = inner.map_err(|e| self.err(e))?;
        }
        Ok(())
    }

    fn write_frame(&mut self, df: &mut DataFrame) -> Result<(), RecordError> {
        self.open(&df.schema().clone())?;
        df.rechunk_mut();
        let r = match &mut self.inner {
            Inner::Parquet(w) => w.write(df),
            Inner::Csv(w) => w.write_batch(df),
            Inner::Jsonl(w) => w.write_batch(df),
            Inner::Pending(_) | Inner::Done => Ok(()),
        };
        r.map_err(|e| self.err(e))
    }

    /// Finish the output (Parquet footer). An empty output still gets a valid file with the schema.
    pub fn finish(mut self) -> Result<u64, RecordError> {
        if let Inner::Pending(_) = self.inner {
            let empty = flows_to_frame(&[]);
            let mut empty = empty.map_err(|e| self.err(e))?;
            self.open(&empty.schema().clone())?;
            if self.format == OutputFormat::Csv {
                self.write_frame(&mut empty)?;
            }
        }
        let r = match std::mem::replace(&mut self.inner, Inner::Done) {
            Inner::Parquet(w) => w
                .finish()
                .and_then(|mut w| w.flush().map_err(PolarsError::from)),
            Inner::Csv(mut w) => w.finish(),
            _ => Ok(()),
        };
        r.map_err(|e| self.err(e))?;
        Ok(self.rows)
    }
}
