//! Where a round's objects live (the layout in the module doc of `round`), node registration,
//! and the bound on what an edge node may make the merge read.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};
use weir_store::Store;

use crate::registry::RegistryError;
use crate::update;

/// Where a node's public key is registered.
pub fn node_key(node: &str) -> String {
    format!("fl/nodes/{node}.pub")
}

/// The prefix updates for `round` are uploaded under.
pub fn updates_prefix(round: u64) -> String {
    format!("fl/updates/round-{round:06}/")
}

/// The envelope key of an update (`.bin` beside it is the payload).
pub fn update_key(round: u64, node: &str, nonce: &str) -> String {
    format!("{}{node}/{nonce}.json", updates_prefix(round))
}

/// Where the merge keeps what it decided in `round` (only the merge writes here).
pub(crate) fn round_prefix(round: u64) -> String {
    format!("fl/rounds/round-{round:06}/")
}

/// Where `round`'s verdicts are.
pub fn verdicts_prefix(round: u64) -> String {
    format!("{}verdicts/", round_prefix(round))
}

/// A verdict's key: one folder per node, so no two (node, nonce) pairs share a key and a
/// node's IAM grant (`verdicts/NODE/*`) reads its own verdicts only. An update whose key
/// names no valid node or nonce gets a verdict under `~malformed/` (`~` is in no node id),
/// named by a hash of both.
pub fn verdict_key(round: u64, node: &str, nonce: &str) -> String {
    if valid_node_id(node) && valid_node_id(nonce) {
        format!("{}{node}/{nonce}.json", verdicts_prefix(round))
    } else {
        let h = update::sha256_hex(format!("{node}/{nonce}").as_bytes());
        format!("{}~malformed/{}.json", verdicts_prefix(round), &h[..32])
    }
}

/// The claim on `node`'s one accepted update in `round` (JSON: which update, its SHA-256).
pub fn claim_key(round: u64, node: &str) -> String {
    format!("{}accepted/{node}.json", round_prefix(round))
}

/// The merge's own copy of the payload bytes it verified for `node` in `round`.
pub fn kept_payload_key(round: u64, node: &str) -> String {
    format!("{}accepted/{node}.bin", round_prefix(round))
}

/// The largest envelope (manifest + signature) the merge reads: a manifest is a few hundred
/// bytes plus one count per class and one shape per layer.
pub const MAX_ENVELOPE_BYTES: u64 = 64 * 1024;

/// A node's claim on its one accepted update of a round.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Claim {
    /// The update's envelope key.
    pub key: String,
    /// SHA-256 of the payload bytes that were verified (and kept).
    pub payload_sha256: String,
}

/// A round's result key.
pub fn result_key(round: u64) -> String {
    format!("{}result.json", round_prefix(round))
}

/// The server's evaluation set.
pub const EVAL_KEY: &str = "fl/eval/eval.bin";

pub(crate) fn velocity_key(version: u64) -> String {
    format!("fl/state/velocity-v{version:06}.bin")
}

/// Whether `id` is a usable node id (it becomes part of object keys).
pub fn valid_node_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 64
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// Register a node's public key (an operator's act: who may contribute).
pub fn register_node(store: &dyn Store, node: &str, public_hex: &str) -> Result<(), String> {
    if !valid_node_id(node) {
        return Err(format!(
            "node id {node:?}: use 1-64 letters, digits, '-' or '_'"
        ));
    }
    let pk = hex::decode(public_hex.trim()).map_err(|e| format!("public key: {e}"))?;
    if pk.len() != 32 {
        return Err(format!(
            "public key: {} bytes, an Ed25519 key has 32",
            pk.len()
        ));
    }
    store
        .put(&node_key(node), public_hex.trim().as_bytes())
        .map_err(|e| e.to_string())
}

/// Every registered node's key.
pub fn node_keys(store: &dyn Store) -> Result<HashMap<String, String>, RegistryError> {
    let mut keys = HashMap::new();
    for k in store.list("fl/nodes/")? {
        if let Some(node) = k
            .strip_prefix("fl/nodes/")
            .and_then(|n| n.strip_suffix(".pub"))
        {
            let v = store.get(&k)?;
            keys.insert(
                node.to_string(),
                String::from_utf8_lossy(&v).trim().to_string(),
            );
        }
    }
    Ok(keys)
}
