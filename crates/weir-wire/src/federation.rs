//! The federation as its page shows it: the current model, the versions and the rounds
//! (`weir_fl::status::Federation::view` makes it from the registry).

use serde::{Deserialize, Serialize};

/// The federation page: the registry's current model, its versions and rounds.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct FederationView {
    /// `None`: the store holds no model registry.
    pub current: Option<CurrentModel>,
    /// Registered edge nodes.
    pub nodes: Vec<String>,
    /// Newest first.
    pub versions: Vec<VersionRow>,
    /// Newest first.
    pub rounds: Vec<RoundRow>,
}

/// What the pointer says.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct CurrentModel {
    /// The current version.
    pub version: u64,
    /// The round it closed.
    pub round: u64,
    /// Why the pointer was last moved.
    pub reason: String,
}

/// One published version.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct VersionRow {
    /// The version.
    pub version: u64,
    /// The round that made it (none: the initial model).
    pub round: Option<u64>,
    /// What made it (`init`, `merge`, `rollback`, ...); `(card unreadable)` without a card.
    pub made_by: String,
    /// Nodes whose updates went in.
    pub included: Vec<String>,
    /// Flows behind them (capped).
    pub samples: u64,
    /// Updates left out: (node, reason).
    pub excluded: Vec<(String, String)>,
    /// Macro-F1 on the server's evaluation set.
    pub macro_f1: Option<f64>,
    /// The base version's macro-F1 on the same set.
    pub base_macro_f1: Option<f64>,
}

/// One round.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct RoundRow {
    /// The round.
    pub round: u64,
    /// "open", "published", "gated", ...
    pub outcome: String,
    /// The version it published.
    pub version: Option<u64>,
    /// Accepted updates: (node, samples, norm).
    pub accepted: Vec<(String, u64, f32)>,
    /// Refused updates: (node, reason).
    pub refused: Vec<(String, String)>,
}
