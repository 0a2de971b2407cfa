//! What can go wrong in a stage, typed by what the caller must do about it: try again
//! ([`PipelineError::retryable`]: the store or network failed, a write raced another), give
//! up with a reason (not a capture, a corrupt object or model, a message nobody can read), or
//! nothing (the input was replaced by a new upload, whose own run takes over). Damage inside a
//! capture is not an error at all: it is recorded ([`crate::SplitReport::damage`]) and the
//! flows before it are kept.

use weir_flow::CaptureError;
use weir_store::{StoreError, StoreFault};

/// Errors of the stages.
#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    /// The store failed for a key.
    #[error("{key}: {reason}")]
    Store {
        /// The object (or queue) concerned.
        key: String,
        /// What kind of failure.
        fault: StoreFault,
        /// What the store said.
        reason: String,
    },
    /// The object is not a capture at all (no packet could be read): permanent.
    #[error("{source_key} is not a readable capture: {error}")]
    NotACapture {
        /// The upload's key or path.
        source_key: String,
        /// What the reader found.
        error: CaptureError,
    },
    /// The input was replaced while it was read (another version of the upload, a new
    /// split of the capture): this run's output is not wanted; the new one's run takes over.
    #[error("{key} was replaced by a newer upload while this run read it; the new upload is processed on its own")]
    Superseded {
        /// The object that changed.
        key: String,
    },
    /// An object weir wrote or reads cannot be encoded or decoded: permanent.
    #[error("object {key}: {reason}")]
    Corrupt {
        /// The object.
        key: String,
        /// What was wrong.
        reason: String,
    },
    /// The model cannot be used (unreadable, wrong outputs, no classes): permanent.
    #[error("the model: {0}")]
    Model(String),
    /// Running the model failed on this batch (the runtime, the device): worth another try.
    #[error("classifying {key}: {reason}")]
    Inference {
        /// The shard.
        key: String,
        /// What the runtime said.
        reason: String,
    },
    /// A message that is not one of weir's: permanent.
    #[error("not a weir message: {0}")]
    BadMessage(String),
    /// Aggregation was asked for before every shard had its result: try again later.
    #[error("capture {capture} is {state} ({done} of {shards} shards classified): nothing to aggregate yet")]
    NotReady {
        /// Capture id.
        capture: String,
        /// Its state.
        state: &'static str,
        /// Shards classified.
        done: u32,
        /// Shards there are (0 while unknown).
        shards: u32,
    },
    /// The capture failed already (its status says why): nothing more to do.
    #[error("capture {capture} failed: {reason}")]
    Failed {
        /// Capture id.
        capture: String,
        /// The reason in its status.
        reason: String,
    },
    /// A stage's thread stopped or panicked before finishing: worth another try.
    #[error("{0} stopped before it finished")]
    Stopped(&'static str),
    /// Waiting for a capture ended without it finishing (not there, or a timeout).
    #[error("{0}")]
    Wait(String),
}

impl PipelineError {
    /// A store error.
    pub fn store(key: impl Into<String>, fault: StoreFault, reason: impl ToString) -> Self {
        PipelineError::Store {
            key: key.into(),
            fault,
            reason: reason.to_string(),
        }
    }

    /// An object that cannot be encoded or decoded.
    pub fn corrupt(key: impl Into<String>, reason: impl ToString) -> Self {
        PipelineError::Corrupt {
            key: key.into(),
            reason: reason.to_string(),
        }
    }

    /// Whether the same work may succeed if tried again (the message is retried; the last
    /// delivery marks the capture failed). Everything else is final at once.
    pub fn retryable(&self) -> bool {
        match self {
            PipelineError::Store { fault, .. } => {
                matches!(fault, StoreFault::Transient | StoreFault::Changed)
            }
            PipelineError::Inference { .. }
            | PipelineError::NotReady { .. }
            | PipelineError::Stopped(_) => true,
            PipelineError::NotACapture { .. }
            | PipelineError::Superseded { .. }
            | PipelineError::Corrupt { .. }
            | PipelineError::Model(_)
            | PipelineError::BadMessage(_)
            | PipelineError::Failed { .. }
            | PipelineError::Wait(_) => false,
        }
    }

    /// The store's fault, for store errors.
    pub fn fault(&self) -> Option<StoreFault> {
        match self {
            PipelineError::Store { fault, .. } => Some(*fault),
            _ => None,
        }
    }
}

/// JSON of a value weir defined, for storing: a failure is a bug, reported, never an empty
/// object written in its place.
pub(crate) fn to_json<T: serde::Serialize>(key: &str, v: &T) -> Result<Vec<u8>, PipelineError> {
    serde_json::to_vec_pretty(v).map_err(|e| PipelineError::corrupt(key, e))
}

/// An I/O error from a reader the store handed out, as a stage's error.
pub(crate) fn from_io(key: &str, e: &std::io::Error) -> PipelineError {
    weir_store::from_io(key, e).into()
}

impl From<StoreError> for PipelineError {
    fn from(e: StoreError) -> Self {
        PipelineError::Store {
            key: e.key,
            fault: e.fault,
            reason: e.reason,
        }
    }
}
