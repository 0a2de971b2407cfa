//! # weir-pipeline
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
//! present, never from counters a duplicate could bump twice.
#![warn(missing_docs)]

mod aggregate;
mod search;
mod store;
mod watch;

pub use aggregate::{
    aggregate, flow_text, flows_text, summary_key, thousands, Alert, AlertGroup, CaptureSummary,
    Service, Tally, TOP,
};
pub use search::{
    day_of, partition_range, rfc3339, search_key, search_parts, shard_period, write_search, Period,
    MIN_PART_ROWS, SEARCH_COLUMNS,
};
pub use store::{LocalStore, Store};
pub use watch::{show_status, status_header, status_row, watch, ShowOptions, WatchOptions};

use serde::{Deserialize, Serialize};
use weir_classify::Classifier;
use weir_flow::{extract, CaptureError, ExtractOptions, FlowRecord};

/// Flows per shard: about 3 MB of Parquet, far from any memory limit, and enough rows for a
/// GPU batch.
pub const SHARD_FLOWS: usize = 10_000;

/// Errors of the stages.
#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    /// The store failed for a key.
    #[error("object {0}: {1}")]
    Store(String, String),
    /// The object is not a capture at all (nothing was read).
    #[error("{0} is not a readable capture: {1}")]
    NotACapture(String, CaptureError),
    /// A shard or result could not be encoded or decoded.
    #[error("object {0}: {1}")]
    Data(String, String),
    /// Classification failed.
    #[error("classifying {0}: {1}")]
    Classify(String, weir_classify::ClassifyError),
    /// A message was not understood.
    #[error("message: {0}")]
    Message(String),
    /// Waiting for a capture ended without it finishing (not there, or a timeout).
    #[error("{0}")]
    Wait(String),
}

/// The id of a capture from its key: the file name without extension, cut to
/// `[A-Za-z0-9._-]`, then 8 hex digits of the whole key, so `a/x.pcap` and `b/x.pcap` differ.
/// (On S3 a key is the capture: uploading again under the same key replaces it.)
pub fn capture_id(key: &str) -> String {
    let h = key.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    format!("{}-{:08x}", clean_stem(key), h as u32)
}

/// The id of a capture from its file name and a hash of its bytes (hex; `weir analyze` uses
/// BLAKE3), as `weir analyze` names what it reads: the cleaned stem, then 12 hex digits of the
/// digest, so
/// two files that share a name but not their bytes never share an id, and the same file
/// analyzed again gets the same id (and its results are rewritten with the same bytes).
pub fn content_id(name: &str, digest_hex: &str) -> String {
    let digest: String = digest_hex.chars().take(12).collect();
    format!("{}-{digest}", clean_stem(name))
}

/// The file name of a key or path without its extension, cut to `[A-Za-z0-9._-]` and 80
/// characters.
fn clean_stem(key: &str) -> String {
    let name = key.rsplit('/').next().unwrap_or(key);
    let stem = name.rsplit_once('.').map_or(name, |(s, _)| s);
    stem.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .take(80)
        .collect()
}

/// Key of a capture's status object.
pub fn status_key(id: &str) -> String {
    format!("captures/{id}/status.json")
}

/// Key of a capture's split report.
pub fn split_key(id: &str) -> String {
    format!("captures/{id}/split.json")
}

/// Key of shard `n` of a capture.
pub fn shard_key(id: &str, n: u32) -> String {
    format!("captures/{id}/shards/{n:05}.parquet")
}

/// Key of the result of shard `n`.
pub fn result_key(id: &str, n: u32) -> String {
    format!("captures/{id}/results/{n:05}.parquet")
}

/// The message the splitter sends per shard (a claim check: a pointer, a few hundred bytes).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShardMessage {
    /// Capture id.
    pub capture: String,
    /// Shard number (0, 1, ...).
    pub shard: u32,
    /// Where the shard is.
    pub key: String,
    /// Flows in it.
    pub flows: u64,
}

impl ShardMessage {
    /// The message as JSON.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    /// A message from JSON.
    pub fn from_json(s: &str) -> Result<Self, PipelineError> {
        serde_json::from_str(s).map_err(|e| PipelineError::Message(e.to_string()))
    }
}

/// Where a capture is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum State {
    /// Uploaded, not started.
    Queued,
    /// The splitter is reading it.
    Splitting,
    /// Shards are being classified.
    Classifying,
    /// The summary is being built.
    Aggregating,
    /// Finished.
    Done,
    /// Finished; part of the capture was damaged (flows up to the damage are kept).
    DoneWithWarnings,
    /// Nothing usable; `reason` says why.
    Failed,
}

impl State {
    /// The state's name as stored in `status.json` (`classifying`, `done-with-warnings`...).
    pub fn name(self) -> &'static str {
        match self {
            State::Queued => "queued",
            State::Splitting => "splitting",
            State::Classifying => "classifying",
            State::Aggregating => "aggregating",
            State::Done => "done",
            State::DoneWithWarnings => "done-with-warnings",
            State::Failed => "failed",
        }
    }

    /// Whether nothing more will happen to the capture (done, done with warnings, failed).
    pub fn is_final(self) -> bool {
        matches!(self, State::Done | State::DoneWithWarnings | State::Failed)
    }
}

/// A capture's status object.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Status {
    /// Capture id.
    pub capture: String,
    /// The key it was read from.
    pub source: String,
    /// Where it is.
    pub state: State,
    /// Shards written by the splitter (known once splitting ended).
    pub shards: Option<u32>,
    /// Shards classified so far.
    pub shards_done: u32,
    /// Flows found.
    pub flows: u64,
    /// Why it failed.
    pub reason: Option<String>,
    /// Damage met while reading (flows before it kept).
    pub warnings: Vec<String>,
    /// Flows that raised an alert (set by the aggregator).
    #[serde(default)]
    pub alerts: Option<u64>,
    /// The classes with the most alerts and their counts (`Port Scan 9,902`), at most three
    /// (set by the aggregator).
    #[serde(default)]
    pub alert_classes: Vec<String>,
}

impl Status {
    /// A fresh status.
    pub fn new(capture: &str, source: &str, state: State) -> Self {
        Status {
            capture: capture.into(),
            source: source.into(),
            state,
            shards: None,
            shards_done: 0,
            flows: 0,
            reason: None,
            warnings: Vec::new(),
            alerts: None,
            alert_classes: Vec::new(),
        }
    }

    /// Store it at [`status_key`].
    pub fn save(&self, store: &dyn Store) -> Result<(), PipelineError> {
        let json = serde_json::to_vec_pretty(self).unwrap_or_default();
        store.put(&status_key(&self.capture), &json)
    }

    /// Read a capture's status.
    pub fn load(store: &dyn Store, id: &str) -> Result<Status, PipelineError> {
        let key = status_key(id);
        serde_json::from_slice(&store.get(&key)?)
            .map_err(|e| PipelineError::Data(key, e.to_string()))
    }
}

/// What the splitter read, stored at [`split_key`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SplitReport {
    /// Capture id.
    pub capture: String,
    /// Shards written.
    pub shards: u32,
    /// Flows in them.
    pub flows: u64,
    /// Packets read.
    pub packets: u64,
    /// Bytes of the capture read.
    pub bytes: u64,
    /// Damage that ended reading early.
    pub damage: Option<String>,
}

/// Split a capture: stream it from `store`, assemble flows, write them as Parquet shards of
/// `shard_flows` flows, and hand one [`ShardMessage`] per shard to `send` as soon as its
/// shard is stored. Status goes splitting → classifying (or failed with the reason when the
/// object is not a capture). Two threads: this one reads and assembles flows, a second
/// builds, encodes and stores the shards (a third of the work) and calls `send`. Memory: the
/// flow table plus at most three shards (being filled, waiting, being written).
pub fn split(
    store: &dyn Store,
    source: &str,
    shard_flows: usize,
    opts: &ExtractOptions,
    send: impl FnMut(&ShardMessage) -> Result<(), PipelineError> + Send,
) -> Result<SplitReport, PipelineError> {
    split_as(store, source, &capture_id(source), shard_flows, opts, send)
}

/// [`split`] under a given capture id (`weir analyze` names a capture by its content, see
/// [`content_id`]; the functions by its key, [`capture_id`]).
pub fn split_as(
    store: &dyn Store,
    source: &str,
    id: &str,
    shard_flows: usize,
    opts: &ExtractOptions,
    mut send: impl FnMut(&ShardMessage) -> Result<(), PipelineError> + Send,
) -> Result<SplitReport, PipelineError> {
    let id = id.to_string();
    // A capture uploaded again under the same key may be another file: what an earlier run
    // left (shards, results, summary, search layout) must not count for this one.
    let status = status_key(&id);
    for k in store.list(&format!("captures/{id}/"))? {
        if k != status {
            store.delete(&k)?;
        }
    }
    Status::new(&id, source, State::Splitting).save(store)?;
    let reader = store.open(source)?;
    let shard_flows = shard_flows.max(1);
    let mut emit = |batch: &[FlowRecord], n: u32| -> Result<(), PipelineError> {
        let key = shard_key(&id, n);
        let mut df = weir_records::flows_to_frame(batch)
            .map_err(|e| PipelineError::Data(key.clone(), e.to_string()))?;
        let bytes = weir_records::frame_to_parquet(&mut df)
            .map_err(|e| PipelineError::Data(key.clone(), e.to_string()))?;
        store.put(&key, &bytes)?;
        send(&ShardMessage {
            capture: id.clone(),
            shard: n,
            key,
            flows: batch.len() as u64,
        })
    };
    let (tx, rx) = crossbeam_channel::bounded::<Vec<FlowRecord>>(1);
    let (summary, written) = std::thread::scope(|s| {
        let writer = s.spawn(move || -> Result<u32, PipelineError> {
            let mut n = 0u32;
            for batch in rx {
                emit(&batch, n)?;
                n += 1;
            }
            Ok(n)
        });
        let mut pending: Vec<FlowRecord> = Vec::with_capacity(shard_flows);
        let mut writing = true;
        let summary = extract(
            reader,
            opts,
            |batch| {
                for f in batch {
                    pending.push(f);
                    if pending.len() >= shard_flows && writing {
                        let full = std::mem::replace(&mut pending, Vec::with_capacity(shard_flows));
                        // A writer that stopped has its error: the flows are dropped.
                        writing = tx.send(full).is_ok();
                    }
                }
                if !writing {
                    pending.clear();
                }
            },
            |_| {},
        );
        if summary.is_ok() && !pending.is_empty() && writing {
            let _ = tx.send(pending);
        }
        drop(tx);
        let written = writer.join().unwrap_or_else(|_| {
            Err(PipelineError::Message(
                "the shard writer thread panicked".into(),
            ))
        });
        (summary, written)
    });
    let summary = match summary {
        Ok(s) => s,
        Err(e) => {
            let err = PipelineError::NotACapture(source.to_string(), e);
            let mut st = Status::new(&id, source, State::Failed);
            st.reason = Some(err.to_string());
            st.save(store)?;
            return Err(err);
        }
    };
    let shards = written?;
    let report = SplitReport {
        capture: id.clone(),
        shards,
        flows: summary.flows,
        packets: summary.packets,
        bytes: summary.file_bytes,
        damage: summary.error.as_ref().map(|e| e.to_string()),
    };
    store.put(
        &split_key(&id),
        &serde_json::to_vec_pretty(&report).unwrap_or_default(),
    )?;
    progress(store, &id)?;
    Ok(report)
}

/// Classify one shard and store its result at [`result_key`]: the shard's rows with the
/// classification columns after them. Idempotent: the same shard and model give the same
/// object under the same key. Returns the number of flows.
pub fn classify_shard(
    store: &dyn Store,
    classifier: &mut Classifier,
    msg: &ShardMessage,
) -> Result<u64, PipelineError> {
    classify_shards(store, classifier, std::slice::from_ref(msg))
        .pop()
        .unwrap_or(Ok(0))
}

/// Classify several shards with one pass through the model (a GPU worker batches the flows
/// of all the messages it took, not message by message) and store each result as
/// [`classify_shard`] does. One result per message, in order: a shard that cannot be read or
/// written fails alone; a model failure fails them all.
pub fn classify_shards(
    store: &dyn Store,
    classifier: &mut Classifier,
    msgs: &[ShardMessage],
) -> Vec<Result<u64, PipelineError>> {
    let mut out: Vec<Result<u64, PipelineError>> = Vec::with_capacity(msgs.len());
    let mut frames = Vec::new();
    let mut x: Vec<f32> = Vec::new();
    for msg in msgs {
        let data = |e: String| PipelineError::Data(msg.key.clone(), e);
        let read = store.get(&msg.key).and_then(|b| {
            let df = weir_records::parquet_to_frame(&b).map_err(|e| data(e.to_string()))?;
            let f = weir_records::feature_matrix(&df).map_err(|e| data(e.to_string()))?;
            Ok((df, f))
        });
        match read {
            Ok((df, f)) => {
                x.extend_from_slice(&f);
                frames.push((out.len(), df));
                out.push(Ok(0));
            }
            Err(e) => out.push(Err(e)),
        }
    }
    if frames.is_empty() {
        return out;
    }
    let p = match classifier.classify(&x) {
        Ok(p) => p,
        Err(e) => {
            let e = e.to_string();
            for (i, _) in &frames {
                out[*i] = Err(PipelineError::Data(
                    msgs[*i].key.clone(),
                    format!("classifying: {e}"),
                ));
            }
            return out;
        }
    };
    drop(x);
    let classes = classifier.info().classes.clone();
    let version = classifier.info().model_version.clone();
    let min_probability = classifier.min_probability();
    let reference = classifier.info().anomaly_reference.clone();
    let k = p.classes;
    let mut row = 0usize;
    for (i, mut df) in frames {
        let msg = &msgs[i];
        let n = df.height();
        let key = result_key(&msg.capture, msg.shard);
        let data = |e: String| PipelineError::Data(key.clone(), e);
        let cols = weir_records::verdict_columns(
            n,
            &weir_records::Verdicts {
                classes: &classes,
                model_version: &version,
                predicted: &p.predicted[row..row + n],
                probabilities: &p.probabilities[row * k..(row + n) * k],
                anomaly: &p.anomaly[row..row + n],
                min_probability,
                anomaly_reference: &reference,
            },
        );
        row += n;
        // The search parts first: a result present means its shard is searchable.
        out[i] = cols
            .and_then(|cols| df.hstack_mut(&cols).map(|_| ()))
            .map_err(|e| data(e.to_string()))
            .and_then(|_| write_search(store, &msg.capture, msg.shard, &df))
            .and_then(|_| weir_records::frame_to_parquet(&mut df).map_err(|e| data(e.to_string())))
            .and_then(|bytes| store.put(&key, &bytes))
            .map(|_| n as u64);
    }
    out
}

/// Where upload notifications point: captures are uploaded under this prefix.
pub const UPLOADS: &str = "uploads/";

/// Every capture the store knows, by id: those with a status object as it says, and every
/// upload under [`UPLOADS`] that no splitter has started yet as [`State::Queued`] (S3 writes
/// nothing of its own when an object arrives, so "queued" is the absence of a status).
/// What `weir status`, and the web app, list.
pub fn captures(store: &dyn Store) -> Result<Vec<Status>, PipelineError> {
    let mut out: std::collections::BTreeMap<String, Status> = std::collections::BTreeMap::new();
    for id in store.children("captures/")? {
        if let Some(st) = stored_status(store, &id)? {
            out.insert(id, st);
        }
    }
    for key in store.list(UPLOADS)? {
        let id = capture_id(&key);
        out.entry(id.clone())
            .or_insert_with(|| Status::new(&id, &key, State::Queued));
    }
    Ok(out.into_values().collect())
}

/// One capture's status as [`captures`] lists it, without reading every other capture's:
/// `None` when the store has neither a status nor an upload for it.
pub fn capture_status(store: &dyn Store, id: &str) -> Result<Option<Status>, PipelineError> {
    if let Some(st) = stored_status(store, id)? {
        return Ok(Some(st));
    }
    Ok(store
        .list(UPLOADS)?
        .into_iter()
        .find(|key| capture_id(key) == id)
        .map(|key| Status::new(id, &key, State::Queued)))
}

/// A capture's status object; a failed status naming the problem when it is unreadable;
/// `None` when there is none (not started, or being cleared for a re-split).
fn stored_status(store: &dyn Store, id: &str) -> Result<Option<Status>, PipelineError> {
    match Status::load(store, id) {
        Ok(st) => Ok(Some(st)),
        Err(_) if !store.exists(&status_key(id))? => Ok(None),
        Err(e) => {
            let mut st = Status::new(id, "", State::Failed);
            st.reason = Some(format!("unreadable status: {e}"));
            Ok(Some(st))
        }
    }
}

/// Mark a capture failed with `reason` (kept in its status) whatever stage it was in: the
/// last delivery of a message that keeps failing does this before the message goes to the
/// dead-letter queue.
pub fn mark_failed(store: &dyn Store, id: &str, reason: &str) -> Result<Status, PipelineError> {
    let mut st = Status::load(store, id).unwrap_or_else(|_| Status::new(id, "", State::Failed));
    st.state = State::Failed;
    st.reason = Some(reason.to_string());
    st.save(store)?;
    Ok(st)
}

/// Recompute a capture's status from the objects present (split report, results) and store
/// it: classifying k/n until every shard has its result, then aggregating. Safe to call any
/// number of times from any worker.
pub fn progress(store: &dyn Store, id: &str) -> Result<Status, PipelineError> {
    let mut st = Status::load(store, id)?;
    if st.state.is_final() {
        return Ok(st);
    }
    let key = split_key(id);
    if !store.exists(&key)? {
        return Ok(st);
    }
    let report: SplitReport = serde_json::from_slice(&store.get(&key)?)
        .map_err(|e| PipelineError::Data(key, e.to_string()))?;
    let done = store.list(&format!("captures/{id}/results/"))?.len() as u32;
    st.shards = Some(report.shards);
    st.shards_done = done.min(report.shards);
    st.flows = report.flows;
    st.warnings = report.damage.into_iter().collect();
    st.state = if st.shards_done < report.shards {
        State::Classifying
    } else if store.exists(&summary_key(id))? {
        // Aggregated already (a late duplicate): never step a finished capture back.
        if st.warnings.is_empty() {
            State::Done
        } else {
            State::DoneWithWarnings
        }
    } else {
        State::Aggregating
    };
    st.save(store)?;
    Ok(st)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_clean_and_tell_keys_apart() {
        let a = capture_id("uploads/a/my capture (1).pcap");
        assert!(a.starts_with("my_capture__1_-"), "{a}");
        assert_ne!(capture_id("a/x.pcap"), capture_id("b/x.pcap"));
        assert_eq!(capture_id("a/x.pcap"), capture_id("a/x.pcap"));
        assert!(capture_id("../../etc/passwd").starts_with("passwd-"));
        let sha = "0123456789abcdef0123456789abcdef";
        assert_eq!(content_id("dir/my cap.pcapng", sha), "my_cap-0123456789ab");
        assert_ne!(
            content_id("x.pcap", sha),
            content_id("x.pcap", "f123456789abcdef")
        );
    }

    #[test]
    fn messages_round_trip_and_stay_small() {
        let m = ShardMessage {
            capture: capture_id("x.pcap"),
            shard: 12,
            key: shard_key(&capture_id("x.pcap"), 12),
            flows: 10_000,
        };
        let j = m.to_json();
        assert!(j.len() < 256, "{j}");
        assert_eq!(ShardMessage::from_json(&j).unwrap(), m);
        assert!(ShardMessage::from_json("{\"shard\":1}").is_err());
    }
}
