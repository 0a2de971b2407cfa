//! # weir-pipeline
//!
//! Owns: the stages and the object layout. Must not depend on: weir-classify (the model is a
//! `&mut dyn FlowModel` from the caller), AWS (the store is a trait object).
//!
//! The stages of weir's pipeline as library functions over a [`Store`]: the splitter
//! ([`split`]: a capture → flow shards + one small message per shard) and the classifier
//! ([`classify_shard`]: one shard → one result object), with the capture's [`Status`]
//! derived from what is in the store. The Lambda and worker binaries are thin adapters over
//! these functions (S3 store, SQS messages); `weir analyze` runs the same functions with a
//! [`LocalStore`] and an in-memory queue.
//!
//! Layout of one capture (`ID` from [`capture_id`]), the same on S3 and on disk:
//!
//! ```text
//! captures/ID/status.json              state, reason, warnings (written by each stage)
//! captures/ID/split.json               what the splitter read: shards, flows, damage
//! captures/ID/shards/00000.parquet     flows + features, SHARD_FLOWS flows each
//! captures/ID/results/00000.parquet    the same rows + class, probabilities, anomaly
//! captures/ID/flows/day=D/part-00000.parquet   search layout (see [`write_search`]; month=,
//!                                              year= partitions for sparse shards)
//! captures/ID/summary.json             the aggregator's summary
//! ```
//!
//! Delivery: every object has a deterministic key, so a redelivered or duplicated message
//! rewrites the same object with the same bytes, and progress is counted from the objects
//! present, never from counters a duplicate could bump twice. The status only moves forward
//! (conditional writes, [`update_status`]); reads of an upload are pinned to one version of
//! it; failures are typed by what to do about them ([`PipelineError::retryable`]).
//!
//! Modules: `layout` (ids, keys), `wire` (what crosses a process boundary), `split`,
//! `classify`, `search` (the search layout), `aggregate`, `status`, `store`, `watch`.
#![warn(missing_docs)]

mod aggregate;
mod carve;
mod classify;
mod error;
mod layout;
mod search;
mod split;
mod status;
mod watch;
mod wire;

pub use aggregate::{
    aggregate, flow_text, flows_text, thousands, Alert, AlertGroup, CaptureSummary, Service, Tally,
    TOP,
};
pub use carve::{carve, file_hash, open_source, CarveError, Carved, FlowKey, Source};
pub use classify::{classify_shard, classify_shards};
pub use error::PipelineError;
// The store is weir-store's; re-exported because every stage takes one.
pub use layout::{
    capture_id, capture_prefix, content_id, is_capture_id, percent_decode, result_key,
    results_prefix, shard_key, split_key, status_key, summary_key, SHARD_FLOWS, UPLOADS,
};
pub use search::{
    day_of, parse_rfc3339, partition_range, rfc3339, search_key, search_parts, search_prefix,
    shard_period, write_search, Period, MIN_PART_ROWS, SEARCH_COLUMNS,
};
pub use split::{split, split_as, SplitOptions};
pub use status::{capture_status, captures, load_status, mark_failed, progress, update_status};
pub use watch::{watch, WatchOptions};
pub use weir_store::{faults, Condition, LocalStore, Store, StoreError, StoreFault, StoreIoError};
pub use wire::{AggregateMessage, ShardMessage, SplitReport, State, Status, WIRE_VERSION};
