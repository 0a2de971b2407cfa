//! Hot reload: a worker that classifies with a [`FlowModel`] asks a [`Reloader`] between
//! batches whether the registry moved; when it did, the new model is read, checked (the
//! pointer's signature when a registry key is trusted, the SHA-256, a weir model with the same
//! features and classes) and loaded by the worker's own [`Loader`] (for the binaries: a new
//! ONNX Runtime session), and only then swapped in. Anything
//! wrong leaves the running model as it is, and says why.
//!
//! A batch is classified by one model from start to end (the swap happens between batches,
//! under the same lock the batch holds), so every result row's `model_version` names the
//! model that classified it.

use std::sync::Arc;
use std::time::{Duration, Instant};

use weir_model::FlowModel;
use weir_store::Store;

use crate::registry::Registry;

/// What a check did.
#[derive(Clone, Debug, PartialEq)]
pub enum Reload {
    /// Not time to look yet, or the registry still names the running model.
    Unchanged,
    /// A new model is running.
    Swapped {
        /// The model version string before.
        from: String,
        /// The model version string now.
        to: String,
        /// The registry version now running.
        version: u64,
    },
    /// The registry names a model that was refused; the running one stays.
    Refused(String),
}

/// Builds a running model from a model file's bytes (the binaries: a new ONNX Runtime session
/// with the worker's options); the error says why it would not load.
pub type Loader<M> = Box<dyn Fn(&[u8]) -> Result<M, String> + Send + Sync>;

/// Watches a registry for a classifier.
pub struct Reloader<M> {
    store: Arc<dyn Store>,
    trust: Option<String>,
    load: Loader<M>,
    every: Duration,
    last: Option<Instant>,
    running: Option<(u64, String)>,
}

impl<M> std::fmt::Debug for Reloader<M> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reloader")
            .field("every", &self.every)
            .field("running", &self.running)
            .field("trusts_a_key", &self.trust.is_some())
            .finish()
    }
}

impl<M: FlowModel> Reloader<M> {
    /// Watch the registry in `store`, looking at most every `every`; new models are built by
    /// `load`; `trust`: the registry's public key (hex), when pointers must be signed.
    pub fn new(
        store: Arc<dyn Store>,
        load: Loader<M>,
        every: Duration,
        trust: Option<String>,
    ) -> Self {
        Reloader {
            store,
            trust,
            load,
            every,
            last: None,
            running: None,
        }
    }

    /// The registry version running, once one was loaded from the registry.
    pub fn version(&self) -> Option<u64> {
        self.running.as_ref().map(|r| r.0)
    }

    /// Between batches: if it is time, read the pointer and swap `c` for the model it names
    /// when that is another one and checks out. The first call always looks.
    pub fn check(&mut self, c: &mut M) -> Reload {
        if self.last.is_some_and(|t| t.elapsed() < self.every) {
            return Reload::Unchanged;
        }
        self.last = Some(Instant::now());
        let reg = Registry::new(self.store.as_ref(), self.trust.clone());
        let p = match reg.pointer() {
            Ok(Some((p, _))) => p,
            Ok(None) => return Reload::Unchanged,
            Err(e) => return Reload::Refused(e.to_string()),
        };
        if self
            .running
            .as_ref()
            .is_some_and(|(v, sha)| *v == p.version && *sha == p.sha256)
        {
            return Reload::Unchanged;
        }
        let loaded = match reg.load(&p, None) {
            Ok(l) => l,
            Err(e) => return Reload::Refused(e.to_string()),
        };
        let (old, new) = (c.info(), &loaded.model.info);
        if old.features != new.features || old.classes != new.classes {
            return Reload::Refused(format!(
                "version {} has other features or classes than the running model",
                p.version
            ));
        }
        match (self.load)(&loaded.bytes) {
            Ok(next) => {
                let from = c.info().model_version.clone();
                *c = next;
                self.running = Some((p.version, p.sha256.clone()));
                Reload::Swapped {
                    from,
                    to: c.info().model_version.clone(),
                    version: p.version,
                }
            }
            Err(e) => Reload::Refused(format!("version {}: {e}", p.version)),
        }
    }
}
