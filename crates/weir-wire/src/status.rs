//! A capture's progress as the pipeline stores it (`captures/ID/status.json`,
//! `captures/ID/split.json`), the API serves it and the web app shows it.

use serde::{Deserialize, Serialize};

/// Where a capture is.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum State {
    /// Uploaded, not started.
    #[default]
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

    /// Whether its flows are classified and summarized (done, with or without warnings).
    pub fn has_results(self) -> bool {
        matches!(self, State::Done | State::DoneWithWarnings)
    }

    /// Whether nothing more will happen to the capture (done, done with warnings, failed).
    pub fn is_final(self) -> bool {
        matches!(self, State::Done | State::DoneWithWarnings | State::Failed)
    }

    /// How far along: a capture's status only ever moves forward (see
    /// [`Status::may_become`]).
    pub fn rank(self) -> u8 {
        match self {
            State::Queued => 0,
            State::Splitting => 1,
            State::Classifying => 2,
            State::Aggregating => 3,
            State::Done | State::DoneWithWarnings | State::Failed => 4,
        }
    }
}

/// A capture's status object.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Status {
    /// Capture id.
    pub capture: String,
    /// The key it was read from.
    pub source: String,
    /// The version of the upload this status is about (S3: its ETag; `weir analyze`: the
    /// file's hash). A new version starts the capture over.
    #[serde(default)]
    pub source_version: Option<String>,
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
            source_version: None,
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

    /// Whether `next` may replace this status: the one rule every writer follows. Another
    /// upload version starts over (only the splitter writes that); for the same version the
    /// status never moves back (a final state is final; `classifying k/n` never lowers k),
    /// so a write delayed by retries cannot undo a later one.
    pub fn may_become(&self, next: &Status) -> bool {
        if self.source_version != next.source_version {
            return true;
        }
        if self.state.is_final() {
            return false;
        }
        match next.state.rank().cmp(&self.state.rank()) {
            std::cmp::Ordering::Greater => true,
            std::cmp::Ordering::Less => false,
            std::cmp::Ordering::Equal => next.shards_done >= self.shards_done && next != self,
        }
    }
}

/// What the splitter read, stored at `captures/ID/split.json`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SplitReport {
    /// Capture id.
    pub capture: String,
    /// The upload version read.
    #[serde(default)]
    pub source_version: Option<String>,
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_only_moves_forward_within_a_version() {
        let mut cur = Status::new("c", "k", State::Classifying);
        cur.source_version = Some("v1".into());
        cur.shards = Some(4);
        cur.shards_done = 3;
        let mut stale = cur.clone();
        stale.shards_done = 2;
        assert!(!cur.may_become(&stale));
        let mut more = cur.clone();
        more.shards_done = 4;
        assert!(cur.may_become(&more));
        assert!(!cur.may_become(&cur.clone()));
        let mut done = cur.clone();
        done.state = State::Done;
        assert!(cur.may_become(&done));
        assert!(!done.may_become(&cur), "done stepped back to classifying");
        let mut failed = done.clone();
        failed.state = State::Failed;
        assert!(!done.may_become(&failed));
        let mut fresh = Status::new("c", "k", State::Splitting);
        fresh.source_version = Some("v2".into());
        assert!(done.may_become(&fresh), "a new upload starts over");
    }

    #[test]
    fn names_are_the_serialized_names() {
        for st in [
            State::Queued,
            State::Splitting,
            State::Classifying,
            State::Aggregating,
            State::Done,
            State::DoneWithWarnings,
            State::Failed,
        ] {
            assert_eq!(serde_json::to_value(st).unwrap(), st.name());
            assert_eq!(
                st.is_final(),
                ["done", "done-with-warnings", "failed"].contains(&st.name())
            );
        }
    }
}
