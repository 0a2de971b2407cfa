//! Parquet with weir's choice of column encodings, over the encoder polars itself uses.
//!
//! polars' `ParquetWriter` asks for dictionary encoding on every float and string column and,
//! to decide whether it pays, estimates each column chunk's cardinality (HyperLogLog) and
//! then hashes the values into a dictionary. Flow tables are mostly floats (101 features, 24
//! class probabilities) that rarely repeat exactly: the estimate alone was a sixth of
//! `weir analyze`'s time (a fixed cost per column chunk, so worst for small files), and zstd
//! compresses repeated values anyway (a class name repeated 10,000 times costs a few bytes).
//! Here floats and strings are written plain; integers keep polars' choice (a cheap min/max
//! test). Statistics (min, max, nulls) are written per row group as before: they are what
//! readers prune with. Frames under [`SMALL_ROWS`] rows get LZ4 instead of zstd: a zstd
//! context per column chunk costs more there than the few bytes it saves (857 files of ~45
//! rows: 0.22 s with LZ4, 0.45-0.65 s with zstd, 0.2 s uncompressed but a third larger).

use std::io::Write;

use polars::prelude::*;
use polars_buffer::Buffer;
use polars_parquet::write::{
    get_dtype_encoding, row_group_iter, schema_to_metadata_key, CompressionOptions, Encoding,
    FileWriter, KeyValue, ParquetType, StatisticsOptions, Version, WriteOptions,
};

/// Frames with fewer rows are written with LZ4 (not zstd) by [`frame_to_parquet`](crate::frame_to_parquet).
pub const SMALL_ROWS: usize = 1024;

/// A Parquet file being written: one row group per [`ParquetSink::write`].
pub struct ParquetSink<W: Write> {
    writer: FileWriter<W>,
    key_values: Vec<KeyValue>,
    fields: Vec<ParquetType>,
    encodings: Buffer<Vec<Encoding>>,
    options: WriteOptions,
}

fn encodings_of(dtype: &ArrowDataType) -> Vec<Encoding> {
    use ArrowDataType as T;
    match dtype {
        T::Float32 | T::Float64 | T::Utf8View | T::Utf8 | T::LargeUtf8 | T::BinaryView => {
            vec![Encoding::Plain]
        }
        _ => get_dtype_encoding(dtype),
    }
}

impl<W: Write> ParquetSink<W> {
    /// A file with `schema` (zstd; min/max/null statistics per column chunk).
    pub fn new(w: W, schema: &Schema) -> PolarsResult<Self> {
        Self::with_compression(w, schema, CompressionOptions::Zstd(None))
    }

    /// A file with `schema` and the given compression.
    pub fn with_compression(
        w: W,
        schema: &Schema,
        compression: CompressionOptions,
    ) -> PolarsResult<Self> {
        let mut arrow = schema.to_arrow(CompatLevel::newest());
        // Each column's description, unit and CICFlowMeter name in the Arrow field metadata
        // (pyarrow, polars); the same as JSON in the file's key-value metadata (DuckDB's
        // parquet_kv_metadata, Athena), with the feature version.
        let mut docs = serde_json::Map::new();
        for f in arrow.iter_values_mut() {
            if let Some((description, unit, cic)) = crate::column_doc(f.name.as_str()) {
                let mut md = polars_arrow::datatypes::Metadata::new();
                md.insert("description".into(), description.as_str().into());
                let mut doc = serde_json::json!({ "description": description });
                if !unit.is_empty() {
                    md.insert("unit".into(), unit.into());
                    doc["unit"] = unit.into();
                }
                if !cic.is_empty() {
                    md.insert("cicflowmeter_name".into(), cic.into());
                    doc["cicflowmeter_name"] = cic.into();
                }
                docs.insert(f.name.to_string(), doc);
                *f = f.clone().with_metadata(md);
            }
        }
        let key_values = vec![
            schema_to_metadata_key(&arrow),
            KeyValue::new(
                "weir.feature_version".to_string(),
                weir_flow::FEATURE_VERSION.to_string(),
            ),
            KeyValue::new(
                "weir.columns".to_string(),
                serde_json::Value::Object(docs).to_string(),
            ),
        ];
        let encodings: Vec<Vec<Encoding>> = arrow
            .iter_values()
            .map(|f| encodings_of(&f.dtype))
            .collect();
        let options = WriteOptions {
            statistics: StatisticsOptions::default(),
            compression,
            version: Version::V1,
            data_page_size: None,
        };
        let writer = FileWriter::try_new(w, arrow, options)?;
        let fields = writer.parquet_schema().fields().to_vec();
        Ok(ParquetSink {
            writer,
            key_values,
            fields,
            encodings: encodings.into(),
            options,
        })
    }

    /// Write `df` (the schema given to [`ParquetSink::new`]) as row groups.
    pub fn write(&mut self, df: &mut DataFrame) -> PolarsResult<()> {
        if df.width() != self.fields.len() {
            polars_bail!(ShapeMismatch: "a frame of {} columns for a file of {}", df.width(), self.fields.len());
        }
        df.rechunk_mut();
        for batch in df.iter_chunks(CompatLevel::newest(), false) {
            let rows = batch.len();
            if rows == 0 {
                continue;
            }
            let group = row_group_iter(
                batch,
                self.encodings.clone(),
                self.fields.clone(),
                self.options,
            );
            self.writer.write(rows as u64, group)?;
        }
        Ok(())
    }

    /// Write the footer (with the Arrow schema, so readers get the same column types back,
    /// the feature version and every column's description) and hand back the writer.
    pub fn finish(mut self) -> PolarsResult<W> {
        self.writer
            .end(Some(std::mem::take(&mut self.key_values)))?;
        Ok(self.writer.into_inner())
    }
}
