//! A capture's status: read, listed, and changed only forward.
//!
//! Every write of `status.json` goes through [`update_status`]: read it with its version,
//! decide, write it only if it is still that version (S3 `If-Match`, `If-None-Match: *` for
//! the first), and decide again when another writer came first. What may replace what is one
//! rule, [`Status::may_become`]: for one upload version the state only moves forward and a
//! final state is never overwritten, so a classifier whose write was delayed by retries
//! cannot turn `done` back into `classifying 3/4`.

use std::time::Duration;

use crate::error::to_json;
use crate::{
    capture_id, results_prefix, split_key, status_key, Condition, PipelineError, SplitReport,
    State, Status, Store, StoreFault, UPLOADS,
};

/// How often [`update_status`] tries before giving up (each lost race means another writer
/// made progress, so this is only reached under a storm of writers).
const CAS_TRIES: u32 = 32;

/// Read a capture's status.
pub fn load_status(store: &dyn Store, id: &str) -> Result<Status, PipelineError> {
    let key = status_key(id);
    serde_json::from_slice(&store.get(&key)?).map_err(|e| PipelineError::corrupt(key, e))
}

/// Change a capture's status: `decide` gets the current one (`None` when there is none or it
/// is unreadable) and returns what to write, or `None` to leave it. Optimistic concurrency:
/// the write happens only if nobody wrote in between, else `decide` runs again on what is
/// there now. A returned status that [`Status::may_become`] refuses is not written. Returns
/// the status as it is afterwards.
pub fn update_status(
    store: &dyn Store,
    id: &str,
    mut decide: impl FnMut(Option<&Status>) -> Option<Status>,
) -> Result<Option<Status>, PipelineError> {
    let key = status_key(id);
    for attempt in 0..CAS_TRIES {
        let (cur, cond) = match store.get_versioned(&key)? {
            Some((bytes, v)) => (
                serde_json::from_slice::<Status>(&bytes).ok(),
                Condition::Version(v),
            ),
            None => (None, Condition::Absent),
        };
        let Some(next) = decide(cur.as_ref()) else {
            return Ok(cur);
        };
        if cur.as_ref().is_some_and(|c| !c.may_become(&next)) {
            return Ok(cur);
        }
        if store.put_if(&key, &to_json(&key, &next)?, &cond)? {
            return Ok(Some(next));
        }
        std::thread::sleep(Duration::from_millis(5 << attempt.min(6)));
    }
    Err(PipelineError::store(
        key,
        StoreFault::Changed,
        format!("the status changed under {CAS_TRIES} writes in a row; try again"),
    ))
}

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
/// `None` when there is none (not started).
fn stored_status(store: &dyn Store, id: &str) -> Result<Option<Status>, PipelineError> {
    match load_status(store, id) {
        Ok(st) => Ok(Some(st)),
        Err(e) if e.fault() == Some(StoreFault::NotFound) => Ok(None),
        Err(e @ PipelineError::Corrupt { .. }) => {
            let mut st = Status::new(id, "", State::Failed);
            st.reason = Some(format!("unreadable status: {e}"));
            Ok(Some(st))
        }
        Err(e) => Err(e),
    }
}

/// Mark a capture failed with `reason` whatever stage it was in, unless it already ended (a
/// late failure never overwrites a result) or is now another upload's (`source_version`
/// given and different): the last delivery of a message that keeps failing does this before
/// the message goes to the dead-letter queue. Returns the status as it is afterwards.
pub fn mark_failed(
    store: &dyn Store,
    id: &str,
    source_version: Option<&str>,
    reason: &str,
) -> Result<Option<Status>, PipelineError> {
    update_status(store, id, |cur| {
        if let (Some(c), Some(v)) = (cur, source_version) {
            if c.source_version.as_deref() != Some(v) {
                return None;
            }
        }
        let mut st = cur
            .cloned()
            .unwrap_or_else(|| Status::new(id, "", State::Failed));
        st.state = State::Failed;
        st.reason = Some(reason.to_string());
        Some(st)
    })
}

/// Recompute a capture's status from the objects present (split report, results) and store
/// it: classifying k/n until every shard has its result, then aggregating. Safe to call any
/// number of times from any worker, in any order: it only moves the status forward.
pub fn progress(store: &dyn Store, id: &str) -> Result<Status, PipelineError> {
    let key = split_key(id);
    let report: Option<SplitReport> = match store.get(&key) {
        Ok(b) => Some(serde_json::from_slice(&b).map_err(|e| PipelineError::corrupt(&key, e))?),
        Err(e) if e.is_not_found() => None,
        Err(e) => return Err(e.into()),
    };
    let done = match &report {
        Some(_) => store.list(&results_prefix(id))?.len() as u32,
        None => 0,
    };
    let st = update_status(store, id, |cur| {
        let cur = cur?;
        let report = report.as_ref()?;
        // The split report of another upload version (a re-split in progress): not ours.
        if cur.state.is_final() || report.source_version != cur.source_version {
            return None;
        }
        let mut st = cur.clone();
        st.shards = Some(report.shards);
        st.shards_done = done.min(report.shards);
        st.flows = report.flows;
        st.warnings = report.damage.iter().cloned().collect();
        st.state = if st.shards_done < report.shards {
            State::Classifying
        } else {
            State::Aggregating
        };
        Some(st)
    })?;
    st.ok_or_else(|| {
        PipelineError::store(
            status_key(id),
            StoreFault::NotFound,
            format!("capture {id} has no status"),
        )
    })
}
