//! Everything that crosses a process boundary, in one place: the queue messages
//! ([`ShardMessage`], [`AggregateMessage`]) and the objects stages read from each other
//! ([`Status`], [`SplitReport`]; the summary is [`crate::CaptureSummary`]).
//!
//! Versioned: every message carries `v` ([`WIRE_VERSION`]); a message of a newer version than
//! this build knows is refused as [`PipelineError::BadMessage`] (it goes to the dead-letter
//! queue, not misread). The stored objects only ever gain optional fields (`serde(default)`),
//! so a newer reader reads an older object; an incompatible change bumps `WIRE_VERSION`.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::PipelineError;

/// The version of the messages this build writes and the newest it reads.
pub const WIRE_VERSION: u32 = 1;

fn v1() -> u32 {
    1
}

/// A message from JSON, refusing what is not one or is of a newer version.
fn message<T: DeserializeOwned + Versioned>(s: &str, what: &str) -> Result<T, PipelineError> {
    let m: T = serde_json::from_str(s)
        .map_err(|e| PipelineError::BadMessage(format!("not a {what}: {e}")))?;
    if m.v() > WIRE_VERSION {
        return Err(PipelineError::BadMessage(format!(
            "{what} of wire version {} (this build reads up to {WIRE_VERSION}): upgrade the consumer",
            m.v()
        )));
    }
    Ok(m)
}

fn json<T: Serialize>(m: &T) -> String {
    // Plain structs of strings and numbers: serializing cannot fail.
    serde_json::to_string(m).expect("a message serializes")
}

trait Versioned {
    fn v(&self) -> u32;
}

/// The message the splitter sends per shard (a claim check: a pointer, a few hundred bytes).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShardMessage {
    /// Wire version ([`WIRE_VERSION`]).
    #[serde(default = "v1")]
    pub v: u32,
    /// Capture id.
    pub capture: String,
    /// Shard number (0, 1, ...).
    pub shard: u32,
    /// Where the shard is.
    pub key: String,
    /// Flows in it.
    pub flows: u64,
    /// The version of the upload the shard was cut from (S3: its ETag): a shard message of an
    /// upload since replaced is dropped, not classified into the new one's results.
    #[serde(default)]
    pub source_version: Option<String>,
}

impl Versioned for ShardMessage {
    fn v(&self) -> u32 {
        self.v
    }
}

impl ShardMessage {
    /// The message as JSON.
    pub fn to_json(&self) -> String {
        json(self)
    }

    /// A message from JSON.
    pub fn from_json(s: &str) -> Result<Self, PipelineError> {
        message(s, "shard message")
    }
}

/// The message that tells the aggregator a capture has all its results.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AggregateMessage {
    /// Wire version ([`WIRE_VERSION`]).
    #[serde(default = "v1")]
    pub v: u32,
    /// Capture id.
    pub capture: String,
    /// The upload version the results are of.
    #[serde(default)]
    pub source_version: Option<String>,
}

impl Versioned for AggregateMessage {
    fn v(&self) -> u32 {
        self.v
    }
}

impl AggregateMessage {
    /// The message for a capture.
    pub fn new(capture: &str, source_version: Option<String>) -> Self {
        AggregateMessage {
            v: WIRE_VERSION,
            capture: capture.to_string(),
            source_version,
        }
    }

    /// The message as JSON.
    pub fn to_json(&self) -> String {
        json(self)
    }

    /// A message from JSON.
    pub fn from_json(s: &str) -> Result<Self, PipelineError> {
        message(s, "aggregate message")
    }
}

/// Where a capture is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
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
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
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

/// What the splitter read, stored at [`crate::split_key`].
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
    fn messages_round_trip_stay_small_and_refuse_newer_versions() {
        let m = ShardMessage {
            v: WIRE_VERSION,
            capture: "x-0123abcd".into(),
            shard: 12,
            key: crate::shard_key("x-0123abcd", 12),
            flows: 10_000,
            source_version: Some("\"9b2cf535f27731c974343645a3985328\"".into()),
        };
        let j = m.to_json();
        assert!(j.len() < 256, "{j}");
        assert_eq!(ShardMessage::from_json(&j).unwrap(), m);
        assert!(ShardMessage::from_json("{\"shard\":1}").is_err());
        // A message of the first release (no v, no source_version) still reads.
        let old = r#"{"capture":"c","shard":0,"key":"k","flows":3}"#;
        assert_eq!(ShardMessage::from_json(old).unwrap().v, 1);
        let newer = j.replace("\"v\":1", "\"v\":2");
        let e = ShardMessage::from_json(&newer).unwrap_err();
        assert!(
            matches!(e, PipelineError::BadMessage(_)) && !e.retryable(),
            "{e}"
        );
        let a = AggregateMessage::new("c", None);
        assert_eq!(AggregateMessage::from_json(&a.to_json()).unwrap(), a);
    }

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
}
