//! The splitter: a capture streamed from the store → flow shards + one message per shard.

use std::io::Read;
use std::sync::Mutex;

use weir_flow::{extract, ExtractOptions, FlowRecord};

use crate::error::{from_io, to_json};
use crate::{
    capture_id, capture_prefix, progress, shard_key, split_key, status_key, update_status,
    PipelineError, ShardMessage, SplitReport, State, Status, Store, StoreFault, SHARD_FLOWS,
    WIRE_VERSION,
};

/// How to split.
#[derive(Clone, Debug)]
pub struct SplitOptions {
    /// Flows per shard.
    pub shard_flows: usize,
    /// Flow assembly settings.
    pub extract: ExtractOptions,
    /// Start over even when this upload version was split already (`weir analyze` runs
    /// every stage again each time it is asked). Off for the functions: a duplicate
    /// delivery of an upload that finished is a no-op, one that is in progress rewrites the
    /// same objects and deletes nothing.
    pub rerun: bool,
}

impl Default for SplitOptions {
    fn default() -> Self {
        SplitOptions {
            shard_flows: SHARD_FLOWS,
            extract: ExtractOptions::default(),
            rerun: false,
        }
    }
}

/// Remembers the first error the store's reader returned: the capture reader sees only
/// "read failed", which must not become a verdict on the capture.
struct Latch<'a, R> {
    inner: R,
    key: &'a str,
    failed: &'a Mutex<Option<PipelineError>>,
}

impl<R: Read> Read for Latch<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.inner.read(buf).inspect_err(|e| {
            let mut f = self.failed.lock().unwrap_or_else(|p| p.into_inner());
            f.get_or_insert_with(|| from_io(self.key, e));
        })
    }
}

/// Split a capture under its key's id ([`capture_id`]); see [`split_as`].
pub fn split(
    store: &dyn Store,
    source: &str,
    opts: &SplitOptions,
    send: impl FnMut(&ShardMessage) -> Result<(), PipelineError> + Send,
) -> Result<Option<SplitReport>, PipelineError> {
    split_as(store, source, &capture_id(source), opts, send)
}

/// Split a capture: stream it from `store` (pinned to the version it has now), assemble
/// flows, write them as Parquet shards of `shard_flows` flows, and hand one [`ShardMessage`]
/// per shard to `send` as soon as its shard is stored. Status goes splitting → classifying.
///
/// What can happen: `Ok(Some(report))`, damage included (`report.damage`: the flows before
/// it are kept); `Ok(None)` when this upload version already finished (a duplicate
/// delivery: nothing done); [`PipelineError::NotACapture`] (the status says failed, with the
/// reason); [`PipelineError::Superseded`] when the upload was replaced while read (its own
/// event splits the new one); a retryable store error (nothing recorded as the capture's
/// fault: the read is tried again from the start, rewriting the same objects).
///
/// A new upload version starts over: the objects of the previous one are deleted. The same
/// version again deletes nothing (a classifier may be reading its shards).
///
/// Two threads: this one reads and assembles flows, a second builds, encodes and stores the
/// shards (a third of the work) and calls `send`. Memory: the flow table plus at most three
/// shards (being filled, waiting, being written).
pub fn split_as(
    store: &dyn Store,
    source: &str,
    id: &str,
    opts: &SplitOptions,
    mut send: impl FnMut(&ShardMessage) -> Result<(), PipelineError> + Send,
) -> Result<Option<SplitReport>, PipelineError> {
    let version = store.version(source)?.ok_or_else(|| {
        PipelineError::store(
            source,
            StoreFault::NotFound,
            "no such object (deleted since it was uploaded?)",
        )
    })?;
    let mut fresh = Status::new(id, source, State::Splitting);
    fresh.source_version = Some(version.clone());
    let start_over = if opts.rerun {
        let key = status_key(id);
        store.put(&key, &to_json(&key, &fresh)?)?;
        true
    } else {
        let mut reset = false;
        let st = update_status(store, id, |cur| match cur {
            Some(c) if c.source_version.as_ref() == Some(&version) => {
                reset = false;
                None
            }
            _ => {
                reset = true;
                Some(fresh.clone())
            }
        })?;
        if st.is_some_and(|s| s.state.is_final() && s.source_version.as_ref() == Some(&version)) {
            return Ok(None);
        }
        reset
    };
    if start_over {
        // What an earlier upload under this key left (shards, results, summary, search
        // layout) must not count for this one.
        let status = status_key(id);
        for k in store.list(&capture_prefix(id))? {
            if k != status {
                store.delete(&k)?;
            }
        }
    }
    let failed = Mutex::new(None);
    let reader = Latch {
        inner: store.open_version(source, &version)?,
        key: source,
        failed: &failed,
    };
    let shard_flows = opts.shard_flows.max(1);
    let id_s = id.to_string();
    let mut emit = |batch: &[FlowRecord], n: u32| -> Result<(), PipelineError> {
        let key = shard_key(&id_s, n);
        let mut df =
            weir_records::flows_to_frame(batch).map_err(|e| PipelineError::corrupt(&key, e))?;
        let bytes =
            weir_records::frame_to_parquet(&mut df).map_err(|e| PipelineError::corrupt(&key, e))?;
        store.put(&key, &bytes)?;
        send(&ShardMessage {
            v: WIRE_VERSION,
            capture: id_s.clone(),
            shard: n,
            key,
            flows: batch.len() as u64,
            source_version: Some(version.clone()),
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
        // Host behaviour over the whole capture, in the flow stage's output order: the
        // splitter is the one place that sees every flow (the classifiers see shards).
        let mut behaviour = weir_flow::BehaviourTracker::new();
        let summary = extract(
            reader,
            &opts.extract,
            |mut batch| {
                behaviour.mark(&mut batch);
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
        let written = writer
            .join()
            .unwrap_or(Err(PipelineError::Stopped("the shard writer thread")));
        (summary, written)
    });
    // A failed read of the store is the store's failure, never the capture's: not "not a
    // capture", not damage. Retried from the start (or dropped if the upload was replaced).
    if let Some(e) = failed.into_inner().unwrap_or_else(|p| p.into_inner()) {
        return Err(match e.fault() {
            Some(StoreFault::Changed) => PipelineError::Superseded { key: source.into() },
            _ => e,
        });
    }
    let summary = match summary {
        Ok(s) => s,
        Err(error) => {
            let err = PipelineError::NotACapture {
                source_key: source.to_string(),
                error,
            };
            let reason = err.to_string();
            update_status(store, id, |cur| {
                let c = cur?;
                (c.source_version.as_ref() == Some(&version)).then(|| {
                    let mut st = c.clone();
                    st.state = State::Failed;
                    st.reason = Some(reason.clone());
                    st
                })
            })?;
            return Err(err);
        }
    };
    let shards = written?;
    let report = SplitReport {
        capture: id.to_string(),
        source_version: Some(version),
        shards,
        flows: summary.flows,
        packets: summary.packets,
        bytes: summary.file_bytes,
        damage: summary.error.as_ref().map(|e| e.to_string()),
    };
    let key = split_key(id);
    store.put(&key, &to_json(&key, &report)?)?;
    progress(store, id)?;
    Ok(Some(report))
}
