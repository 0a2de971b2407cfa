//! Everything that crosses a process boundary, in one place: the queue messages
//! ([`ShardMessage`], [`AggregateMessage`]) and the objects stages read from each other
//! ([`Status`], [`SplitReport`] and the summary, [`crate::CaptureSummary`], are weir-wire's:
//! the API serves them and the web app reads them as they are).
//!
//! Versioned: every message carries `v` ([`WIRE_VERSION`]); a message of a newer version than
//! this build knows is refused as [`PipelineError::BadMessage`] (it goes to the dead-letter
//! queue, not misread). The stored objects only ever gain optional fields (`serde(default)`),
//! so a newer reader reads an older object; an incompatible change bumps `WIRE_VERSION`.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::PipelineError;

pub use weir_wire::status::{SplitReport, State, Status};
pub use weir_wire::WIRE_VERSION;

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
}
