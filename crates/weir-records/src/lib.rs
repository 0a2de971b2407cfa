//! # weir-records
//!
//! Flow records as columnar tables. One schema ([`flow_schema`]) for every output format:
//! Parquet (through polars, zstd, row-group statistics), CSV and JSON Lines. Writers are
//! streaming: each batch of flows becomes a row group / a block of lines, so memory stays
//! bounded by the batch size.
#![warn(missing_docs)]

mod parquet;
pub use parquet::{ParquetSink, SMALL_ROWS};

use std::io::Write;

use polars::prelude::*;
use weir_flow::{FlowRecord, FEATURES, FEATURE_VERSION, N_FEATURES};

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

/// Names of the fixed (non-feature) columns, in order.
pub const FIXED_COLUMNS: [&str; 18] = [
    "community_id",
    "proto",
    "src_ip",
    "src_port",
    "dst_ip",
    "dst_port",
    "vlan",
    "tunnel",
    "first_ts",
    "last_ts",
    "packets_fwd",
    "packets_bwd",
    "bytes_fwd",
    "bytes_bwd",
    "first_offset",
    "last_offset",
    "end_reason",
    "feature_version",
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
    col!("community_id", |f: &FlowRecord| f.community_id.as_str());
    col!("proto", |f: &FlowRecord| f.proto as u32);
    col!("src_ip", |f: &FlowRecord| f.src_ip.to_string());
    col!("src_port", |f: &FlowRecord| f.src_port as u32);
    col!("dst_ip", |f: &FlowRecord| f.dst_ip.to_string());
    col!("dst_port", |f: &FlowRecord| f.dst_port as u32);
    col!("vlan", |f: &FlowRecord| f.vlan as u32);
    col!("tunnel", |f: &FlowRecord| f
        .tunnel
        .map(|t| format!("{t:?}").to_lowercase()));
    col!("first_ts", |f: &FlowRecord| f.first_ts_ns);
    col!("last_ts", |f: &FlowRecord| f.last_ts_ns);
    col!("packets_fwd", |f: &FlowRecord| f.packets_fwd);
    col!("packets_bwd", |f: &FlowRecord| f.packets_bwd);
    col!("bytes_fwd", |f: &FlowRecord| f.bytes_fwd);
    col!("bytes_bwd", |f: &FlowRecord| f.bytes_bwd);
    col!("first_offset", |f: &FlowRecord| f.first_offset);
    col!("last_offset", |f: &FlowRecord| f.last_offset);
    col!("end_reason", |f: &FlowRecord| f.end_reason.name());
    col!("feature_version", |_f: &FlowRecord| FEATURE_VERSION);
    for (i, spec) in FEATURES.iter().enumerate() {
        cols.push(Column::new(
            spec.name.into(),
            flows.iter().map(|f| f.features[i]).collect::<Vec<f64>>(),
        ));
    }
    DataFrame::new(n, cols)
}

/// Classification of a batch of flows, added as columns after the features: `class` (the
/// predicted class), `class_probability`, `alert` (class is not Normal), `anomaly` (the
/// model's anomaly score), `model_version`, then `p_<class>` for every class.
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
}

/// Name of the benign class (flows of any other class are alerts).
pub const NORMAL_CLASS: &str = "Normal";

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
    let mut cols = vec![
        Column::new(
            "class".into(),
            v.predicted.iter().map(|p| name(*p)).collect::<Vec<_>>(),
        ),
        Column::new(
            "class_probability".into(),
            v.predicted
                .iter()
                .enumerate()
                .map(|(i, p)| v.probabilities[i * k + *p as usize])
                .collect::<Vec<f32>>(),
        ),
        Column::new(
            "alert".into(),
            v.predicted
                .iter()
                .map(|p| name(*p) != NORMAL_CLASS)
                .collect::<Vec<bool>>(),
        ),
        Column::new("anomaly".into(), v.anomaly.to_vec()),
        Column::new("model_version".into(), vec![v.model_version; n]),
    ];
    for (j, c) in v.classes.iter().enumerate() {
        cols.push(Column::new(
            format!("p_{c}").into(),
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
    for (j, f) in FEATURES.iter().enumerate() {
        let col = df.column(f.name)?.cast(&DataType::Float32)?;
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
