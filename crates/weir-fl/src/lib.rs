//! # weir-fl
//!
//! Owns: federated learning (updates, aggregation, registry, the merge round, hot reload). Must
//! not depend on: weir-pipeline, an inference runtime (a reload builds its model through the
//! caller's `Loader`), AWS.
//!
//! Federated learning for weir: edge nodes fine-tune the global model on their own traffic
//! and send only a clipped, signed parameter difference; a merge checks, combines and gates
//! the updates and publishes the next model version to a registry that workers reload from.
//!
//! The one library behind `weir edge`, the merge function (functions/), `weir fl` and the
//! simulation (`weir fl simulate`; weir-train brings the labelled data and the scoring):
//!
//! - [`params`]: a model's parameters as one vector (the normalization is not a parameter).
//! - [`update`]: node keys (Ed25519), the signed manifest and payload, [`update::verify`].
//! - [`aggregate`]: FedAvg with capped counts, median, trimmed mean, server clipping, noise,
//!   momentum, staleness.
//! - [`registry`]: versioned models in a store, the signed pointer, publish-once, rollback.
//! - [`screen`]: each update against the server's reference update on its evaluation set.
//! - [`round`]: the merge step (judge, close at quorum or deadline, screen, gate, publish).
//! - [`reload`]: hot reload of a worker's classifier when the registry moves.
//! - [`status`]: the federation as people see it (versions, rounds, verdicts, nodes).
//! - [`sim`]: the simulation: nodes, poisoning attacks, each run through [`round`].
#![warn(missing_docs)]

pub mod aggregate;
pub mod params;
pub mod registry;
pub mod reload;
pub mod round;
pub mod screen;
pub mod sim;
pub mod status;
pub mod update;

pub use aggregate::{Aggregation, Rule};
pub use registry::{Card, Pointer, Registry, RegistryError};
pub use round::{MergeConfig, Merger, Mode};
pub use update::{Rejection, SigningKey};
