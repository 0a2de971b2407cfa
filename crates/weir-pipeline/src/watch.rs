//! [`watch`]: follow a store's captures and report each change (and wait for one capture to
//! finish). Everything is read from the status objects, so it works the same on a data
//! directory and on a bucket; how people see it (the table, the options of `weir status` and
//! `weir-status`) is weir-cli's.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use crate::{capture_id, capture_status, captures, PipelineError, Status, Store};

/// What [`watch`] follows.
#[derive(Clone, Debug)]
pub struct WatchOptions {
    /// Time between two looks at the store.
    pub interval: Duration,
    /// Stop when this capture (an id, or the key it was uploaded as) is final.
    pub until: Option<String>,
    /// Give up after this long (an error naming what was awaited).
    pub timeout: Option<Duration>,
    /// With `until`: how long the capture may be absent from the store before that is an
    /// error (an upload is listed as queued as soon as it is stored, so a capture that stays
    /// absent is most likely a wrong id).
    pub absent_for: Duration,
}

impl Default for WatchOptions {
    fn default() -> Self {
        WatchOptions {
            interval: Duration::from_secs(1),
            until: None,
            timeout: None,
            absent_for: Duration::from_secs(60),
        }
    }
}

/// Follow the captures of `store`: `report` gets every capture (with `until`, only that one)
/// once at the start and again each time its state, shard count, flows or reason change.
/// Returns the awaited capture's final status with `until`, and runs until `timeout` (then
/// `Ok(None)`) or forever without.
pub fn watch(
    store: &dyn Store,
    opts: &WatchOptions,
    mut report: impl FnMut(&Status),
) -> Result<Option<Status>, PipelineError> {
    let want = opts.until.as_deref().map(|u| {
        if u.contains('/') {
            capture_id(u)
        } else {
            u.to_string()
        }
    });
    let start = Instant::now();
    let mut seen: HashMap<String, Status> = HashMap::new();
    loop {
        // Waiting for one capture reads its status alone, not every capture's.
        let all: Vec<Status> = match &want {
            Some(want) => capture_status(store, want)?.into_iter().collect(),
            None => captures(store)?,
        };
        for s in &all {
            if seen.get(&s.capture) != Some(s) {
                report(s);
                seen.insert(s.capture.clone(), s.clone());
            }
        }
        let timed_out = opts.timeout.is_some_and(|t| start.elapsed() >= t);
        if let Some(want) = &want {
            match all.first() {
                Some(s) if s.state.is_final() => return Ok(Some(s.clone())),
                Some(_) if timed_out => {
                    return Err(PipelineError::Wait(format!(
                        "capture {want} not finished after {} s",
                        start.elapsed().as_secs()
                    )))
                }
                None if timed_out || start.elapsed() >= opts.absent_for => {
                    return Err(PipelineError::Wait(format!(
                        "no capture {want} in the store after {} s: give an id that `weir status` lists (file stem + 8 hex digits) or the key it was uploaded as (uploads/...)",
                        start.elapsed().as_secs()
                    )))
                }
                _ => {}
            }
        } else if timed_out {
            return Ok(None);
        }
        std::thread::sleep(opts.interval);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{LocalStore, State};

    #[test]
    fn watch_reports_changes_and_waits_for_the_capture() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalStore::new(dir.path());
        store.put("uploads/a.pcap", b"x").unwrap();
        store.put("uploads/other.pcap", b"x").unwrap();
        let id = capture_id("uploads/a.pcap");
        // Another thread moves the capture along, one step each time `watch` has reported
        // the previous one (so no step can fall between two looks).
        let (tx, rx) = std::sync::mpsc::channel::<State>();
        let mover = {
            let root = dir.path().to_path_buf();
            let id = id.clone();
            std::thread::spawn(move || {
                let store = LocalStore::new(&root);
                let mut st = Status::new(&id, "uploads/a.pcap", State::Splitting);
                for (after, next) in [
                    (State::Queued, State::Splitting),
                    (State::Splitting, State::Classifying),
                    (State::Classifying, State::Done),
                ] {
                    while rx.recv().unwrap() != after {}
                    st.state = next;
                    let js = serde_json::to_vec(&st).unwrap();
                    store.put(&crate::status_key(&id), &js).unwrap();
                }
            })
        };
        let mut states = Vec::new();
        let opts = WatchOptions {
            interval: Duration::from_millis(5),
            until: Some("uploads/a.pcap".into()),
            timeout: Some(Duration::from_secs(60)),
            ..WatchOptions::default()
        };
        let last = watch(&store, &opts, |s| {
            states.push(s.state);
            let _ = tx.send(s.state);
        })
        .unwrap()
        .unwrap();
        mover.join().unwrap();
        assert_eq!(last.state, State::Done);
        assert_eq!(
            states,
            [
                State::Queued,
                State::Splitting,
                State::Classifying,
                State::Done
            ]
        );
    }

    #[test]
    fn waiting_for_an_unknown_capture_says_so() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalStore::new(dir.path());
        let opts = WatchOptions {
            interval: Duration::from_millis(5),
            until: Some("nope-00000000".into()),
            absent_for: Duration::from_millis(30),
            ..WatchOptions::default()
        };
        let err = watch(&store, &opts, |_| {}).unwrap_err().to_string();
        assert!(err.contains("no capture nope-00000000"), "{err}");
        // Without `until`, a timeout ends the watch quietly.
        let opts = WatchOptions {
            interval: Duration::from_millis(5),
            timeout: Some(Duration::from_millis(20)),
            ..WatchOptions::default()
        };
        assert!(watch(&store, &opts, |_| {}).unwrap().is_none());
    }
}
