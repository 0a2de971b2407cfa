//! The merge: one step checks every update that arrived for the open round, records a verdict
//! for each (accepted, or refused with its reason), and closes the round when enough are in
//! (a quorum) or its deadline has passed: combine, gate on the server's evaluation set,
//! publish the next version (or record why not) and open the next round.
//!
//! A step is idempotent and safe to run concurrently (the merge function runs one per SQS
//! message, Lambda may run several at once): verdicts are written with `If-None-Match: *` (the
//! first verdict on an update stands), the version with `If-None-Match: *` and the pointer with
//! `If-Match`, so two steps closing the same round publish one version.
//!
//! What is merged is what was verified. Edge nodes write under `fl/updates/` (each its own
//! prefix) and may overwrite there; the merge never reads an update twice. When it accepts
//! one it first claims the node's one place in the round (`accepted/NODE.json`, written
//! `If-None-Match: *`: of two concurrent steps that each accept a different update from one
//! node, one claim stands and the other update is refused as a replay), then keeps the very
//! bytes it verified under its own prefix (`accepted/NODE.bin`), which only the merge may write.
//! Closing reads those copies, checks them against the claim's SHA-256, their length and that
//! every value is finite; a copy that fails is left out with its reason, never a panic.
//! Every object an edge node wrote is sized (a HEAD) before it is read, and read no further
//! than the most this merge takes: an envelope of [`MAX_ENVELOPE_BYTES`], a payload of exactly
//! the model's parameters.
//!
//! ```text
//! fl/nodes/NODE.pub                              a registered node's Ed25519 public key, hex
//! fl/updates/round-000004/NODE/NONCE.json        an update's envelope (manifest + signature)
//! fl/updates/round-000004/NODE/NONCE.bin         its payload (Δ, f32 little-endian)
//! fl/rounds/round-000004/verdicts/NODE/NONCE.json accepted or refused, with the reason
//! fl/rounds/round-000004/accepted/NODE.json      the node's one accepted update (the claim)
//! fl/rounds/round-000004/accepted/NODE.bin       the payload bytes that were verified
//! fl/rounds/round-000004/result.json             how the round closed
//! fl/eval/eval.bin                               the server's evaluation set (the gate)
//! fl/state/velocity-v000003.bin                  server momentum after version 3
//! ```

use std::collections::{HashMap, HashSet};

use serde::{Deserialize, Serialize};
use weir_model::train::Dataset;
use weir_model::Mlp;
use weir_pipeline::{Condition, Store};

use crate::aggregate::{self, Aggregation, Contribution};
use crate::params::{self, Gauss};
use crate::registry::{Card, Excluded, GateMetrics, Included, Registry, RegistryError};
use crate::screen;
use crate::update::{self, now_unix, Checks, Rejection, SigningKey};

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
fn round_prefix(round: u64) -> String {
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

fn velocity_key(version: u64) -> String {
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

/// How a round closes.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "mode", rename_all = "snake_case")]
pub enum Mode {
    /// Close at `quorum` accepted updates, or at the deadline with at least `min_updates`.
    Sync,
    /// Fold in whatever arrived at each step once `min_updates` are in, including updates
    /// made from up to `max_staleness` older versions, each weighted 1/√(1 + staleness).
    Async {
        /// Oldest base accepted, in versions behind the current one.
        max_staleness: u64,
    },
}

/// The merge's settings.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MergeConfig {
    /// How updates are combined.
    pub aggregation: Aggregation,
    /// Largest L2 norm accepted (nodes clip to [`update::DEFAULT_CLIP`]; local noise may add
    /// a little).
    pub bound: f32,
    /// Accepted updates that close a round.
    pub quorum: usize,
    /// Seconds after the round opened when it closes with what it has.
    pub deadline_s: u64,
    /// Fewest updates a round may close with at its deadline.
    pub min_updates: usize,
    /// The candidate may fall at most this far (macro-F1, 0-1) below the current model.
    pub gate_margin: f64,
    /// Synchronous or asynchronous rounds.
    pub mode: Mode,
}

impl Default for MergeConfig {
    fn default() -> Self {
        MergeConfig {
            aggregation: Aggregation::robust(update::DEFAULT_CLIP),
            bound: update::DEFAULT_CLIP * 1.5,
            quorum: 3,
            deadline_s: 3600,
            min_updates: 1,
            gate_margin: 0.02,
            mode: Mode::Sync,
        }
    }
}

/// A verdict on one update, as recorded.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Verdict {
    /// The envelope's key.
    pub key: String,
    /// The node it names (from the key).
    pub node: String,
    /// The nonce (from the key).
    pub nonce: String,
    /// Accepted?
    pub accepted: bool,
    /// The refusal, when refused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rejection: Option<Rejection>,
    /// Claimed samples (accepted updates).
    pub samples: u64,
    /// Its norm (accepted updates).
    pub norm: f32,
    /// Versions behind (async).
    pub staleness: u64,
    /// SHA-256 of the verified payload (accepted updates).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub payload_sha256: String,
    /// When it was judged.
    pub judged_unix: u64,
}

impl Verdict {
    /// This verdict turned into a refusal for `r`.
    pub fn refused(mut self, r: Rejection) -> Verdict {
        self.accepted = false;
        self.rejection = Some(r);
        self.samples = 0;
        self.norm = 0.0;
        self.staleness = 0;
        self.payload_sha256.clear();
        self
    }
}

/// How a round ended.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RoundResult {
    /// The round.
    pub round: u64,
    /// The model it started from.
    pub base_version: u64,
    /// "published", "gated" (candidate worse than the margin allows), "screened" (every
    /// update screened out), "raced" (another merge
    /// published first).
    pub outcome: String,
    /// The version published, if any.
    pub version: Option<u64>,
    /// Updates combined.
    pub accepted: usize,
    /// Updates refused.
    pub refused: usize,
    /// Updates that passed verification but were screened out (also in `refused`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub screened: Vec<Excluded>,
    /// Gate figures.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metrics: Option<GateMetrics>,
    /// Why it closed ("quorum 3 of 3", "deadline").
    pub closed_by: String,
    /// When.
    pub closed_unix: u64,
}

/// What one step did.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct StepReport {
    /// The round looked at.
    pub round: u64,
    /// New verdicts written this step.
    pub judged: Vec<Verdict>,
    /// Accepted updates in the round so far.
    pub accepted: usize,
    /// The round's result, when this step closed it.
    pub closed: Option<RoundResult>,
}

/// The merge over a store.
pub struct Merger<'a> {
    store: &'a dyn Store,
    registry: Registry<'a>,
    key: Option<&'a SigningKey>,
    noise_seed: Option<u64>,
    /// Settings.
    pub cfg: MergeConfig,
}

/// Errors of a merge step.
pub type MergeError = RegistryError;

impl<'a> Merger<'a> {
    /// A merge over `store`, signing pointers with `key` when given.
    pub fn new(store: &'a dyn Store, key: Option<&'a SigningKey>, cfg: MergeConfig) -> Self {
        Merger {
            store,
            registry: Registry::new(store, key.map(|k| k.public_hex())),
            key,
            noise_seed: None,
            cfg,
        }
    }

    /// Draw the server's noise from a seeded stream (simulations: reproducible runs) instead
    /// of the operating system's random source.
    pub fn with_noise_seed(mut self, seed: u64) -> Self {
        self.noise_seed = Some(seed);
        self
    }

    /// Judge what arrived, close the round if it is time (`now`: Unix seconds).
    pub fn step(&self, now: u64) -> Result<StepReport, MergeError> {
        let (pointer, etag) = self.registry.pointer()?.ok_or(RegistryError::Empty)?;
        if !pointer.signature.is_empty() && self.key.is_none() {
            // It would publish an unsigned pointer over a signed one: every worker that trusts
            // the registry key refuses it, and a registry once signed reads as unsigned.
            return Err(RegistryError::Refused(format!(
                "{} is signed and this merge has no registry key: give it the key (--registry-key, WEIR_REGISTRY_KEY, or {} in the store) so what it publishes is signed too",
                crate::registry::LATEST,
                crate::registry::KEY_OBJECT
            )));
        }
        let current = self.registry.load(&pointer, None)?;
        let keys = node_keys(self.store)?;
        let oldest_base = match self.cfg.mode {
            Mode::Sync => pointer.version,
            Mode::Async { max_staleness } => pointer.version.saturating_sub(max_staleness),
        };
        let checks = Checks {
            keys,
            base_version: pointer.version,
            round: pointer.round,
            shapes: params::shapes(&current.model),
            bound: self.cfg.bound,
            classes: current.model.n_classes(),
        };
        let round = pointer.round;
        let mut report = StepReport {
            round,
            ..StepReport::default()
        };
        // What was judged before, and every accepted update's payload.
        let mut verdicts: Vec<Verdict> = Vec::new();
        for k in self.store.list(&verdicts_prefix(round))? {
            if let Ok(v) = serde_json::from_slice::<Verdict>(&self.store.get(&k)?) {
                verdicts.push(v);
            }
        }
        let judged: HashSet<String> = verdicts.iter().map(|v| v.key.clone()).collect();
        let mut accepted_nodes: HashSet<String> = verdicts
            .iter()
            .filter(|v| v.accepted)
            .map(|v| v.node.clone())
            .collect();
        let mut nonces: HashSet<String> = verdicts.iter().map(|v| v.nonce.clone()).collect();
        let mut keys_now: Vec<String> = self
            .store
            .list(&updates_prefix(round))?
            .into_iter()
            .filter(|k| k.ends_with(".json") && !judged.contains(k))
            .collect();
        keys_now.sort();
        for key in keys_now {
            let (node, nonce) = parse_update_key(&key);
            let (mut v, verified) = self.judge(
                &checks,
                oldest_base,
                &key,
                &node,
                &nonce,
                &accepted_nodes,
                &nonces,
            )?;
            if let Some(payload) = verified.filter(|_| v.accepted) {
                if let Some(r) = self.claim(round, &v, &payload)? {
                    v = v.refused(r);
                }
            }
            // The first verdict on an update stands (another step may have judged it).
            let vk = verdict_key(round, &node, &nonce);
            let bytes = serde_json::to_vec_pretty(&v).unwrap_or_default();
            if self.store.put_if(&vk, &bytes, &Condition::Absent)? {
                if v.accepted {
                    accepted_nodes.insert(node.clone());
                }
                nonces.insert(nonce.clone());
                report.judged.push(v.clone());
                verdicts.push(v);
            } else if let Ok(v) = serde_json::from_slice::<Verdict>(&self.store.get(&vk)?) {
                if v.accepted {
                    accepted_nodes.insert(node.clone());
                }
                verdicts.push(v);
            }
        }
        let accepted: Vec<&Verdict> = verdicts.iter().filter(|v| v.accepted).collect();
        report.accepted = accepted.len();
        let age = now.saturating_sub(pointer.opened_unix);
        let closed_by = match self.cfg.mode {
            Mode::Sync if accepted.len() >= self.cfg.quorum.max(1) => {
                format!(
                    "quorum: {} accepted of {} needed",
                    accepted.len(),
                    self.cfg.quorum
                )
            }
            Mode::Async { .. } if accepted.len() >= self.cfg.min_updates.max(1) => {
                format!("async: {} accepted", accepted.len())
            }
            _ if age >= self.cfg.deadline_s && accepted.len() >= self.cfg.min_updates.max(1) => {
                format!(
                    "deadline: {age} s after it opened, {} accepted",
                    accepted.len()
                )
            }
            _ => return Ok(report),
        };
        report.closed = Some(self.close(&pointer, &etag, &current.model, &verdicts, closed_by)?);
        Ok(report)
    }

    /// Judge one update: its verdict, and the payload bytes that were verified when it is
    /// accepted (what [`Merger::claim`] keeps).
    #[allow(clippy::too_many_arguments)]
    fn judge(
        &self,
        checks: &Checks,
        oldest_base: u64,
        key: &str,
        node: &str,
        nonce: &str,
        accepted_nodes: &HashSet<String>,
        nonces: &HashSet<String>,
    ) -> Result<(Verdict, Option<Vec<u8>>), MergeError> {
        let mut verdict = Verdict {
            key: key.to_string(),
            node: node.to_string(),
            nonce: nonce.to_string(),
            accepted: false,
            rejection: None,
            samples: 0,
            norm: 0.0,
            staleness: 0,
            payload_sha256: String::new(),
            judged_unix: now_unix(),
        };
        if !valid_node_id(node) || !valid_node_id(nonce) {
            let detail = format!(
                "{key}: an update is uploaded as fl/updates/round-R/NODE/NONCE.json, NODE and NONCE 1-64 letters, digits, '-' or '_'"
            );
            return Ok((verdict.refused(Rejection::Malformed { detail }), None));
        }
        let (envelope, payload) = match self.read_update(checks, key)? {
            Ok(b) => b,
            Err(r) => return Ok((verdict.refused(r), None)),
        };
        let mut result = if oldest_base < checks.base_version {
            // Async: judge against the base the update names, if recent enough; the round is
            // always the open one (an update signed for an earlier round is a replay there).
            let m = serde_json::from_slice::<update::Envelope>(&envelope)
                .ok()
                .and_then(|e| serde_json::from_str::<update::Manifest>(&e.manifest).ok());
            match m {
                Some(m) if (oldest_base..=checks.base_version).contains(&m.base_version) => {
                    let c = Checks {
                        base_version: m.base_version,
                        ..checks.clone()
                    };
                    update::verify(&c, &envelope, &payload)
                }
                _ => update::verify(checks, &envelope, &payload),
            }
        } else {
            update::verify(checks, &envelope, &payload)
        };
        if let Ok(a) = &result {
            if a.manifest.node != node || a.manifest.nonce != nonce {
                result = Err(Rejection::Inconsistent {
                    detail: format!(
                        "uploaded as {node}/{nonce}, the manifest says {}/{}",
                        a.manifest.node, a.manifest.nonce
                    ),
                });
            } else if accepted_nodes.contains(node) {
                result = Err(Rejection::Replay {
                    detail: format!(
                        "node {node} already has an accepted update in round {}",
                        checks.round
                    ),
                });
            } else if nonces.contains(nonce) {
                result = Err(Rejection::Replay {
                    detail: format!("nonce {nonce} was seen before in round {}", checks.round),
                });
            }
        }
        Ok(match result {
            Ok(a) => {
                verdict.accepted = true;
                verdict.samples = a.manifest.samples;
                verdict.norm = params::norm(&a.delta);
                verdict.staleness = checks.base_version - a.manifest.base_version;
                verdict.payload_sha256 = a.manifest.payload_sha256;
                (verdict, Some(payload))
            }
            Err(r) => (verdict.refused(r), None),
        })
    }

    /// An update's envelope and payload, each sized before it is read and read no further
    /// than this merge takes: a refusal for anything larger.
    #[allow(clippy::type_complexity)]
    fn read_update(
        &self,
        checks: &Checks,
        key: &str,
    ) -> Result<Result<(Vec<u8>, Vec<u8>), Rejection>, MergeError> {
        let oversize = |what: &str, bytes: u64, limit: u64| Rejection::Oversize {
            what: what.into(),
            bytes,
            limit,
        };
        let envelope = match self.store.get_at_most(key, MAX_ENVELOPE_BYTES)? {
            Ok(b) => b.unwrap_or_default(),
            Err(n) => return Ok(Err(oversize("envelope", n, MAX_ENVELOPE_BYTES))),
        };
        let want = 4 * params::count(&checks.shapes) as u64;
        let payload = match self
            .store
            .get_at_most(&key.replace(".json", ".bin"), want)?
        {
            Ok(b) => b.unwrap_or_default(),
            Err(n) => return Ok(Err(oversize("payload", n, want))),
        };
        Ok(Ok((envelope, payload)))
    }

    /// Claim `v.node`'s one accepted update of `round` for `v` and keep the verified bytes
    /// under the merge's own prefix. A refusal when another step already claimed a different
    /// update of that node (the conditional write decides, not what this step has read).
    fn claim(
        &self,
        round: u64,
        v: &Verdict,
        payload: &[u8],
    ) -> Result<Option<Rejection>, MergeError> {
        let ck = claim_key(round, &v.node);
        let claim = Claim {
            key: v.key.clone(),
            payload_sha256: v.payload_sha256.clone(),
        };
        let bytes = serde_json::to_vec_pretty(&claim).unwrap_or_default();
        if !self.store.put_if(&ck, &bytes, &Condition::Absent)? {
            let held: Option<Claim> = serde_json::from_slice(&self.store.get(&ck)?).ok();
            if held.as_ref().map(|c| &c.key) != Some(&v.key) {
                return Ok(Some(Rejection::Replay {
                    detail: format!(
                        "node {} already has an accepted update in round {round} ({})",
                        v.node,
                        held.map_or_else(|| "unreadable claim".into(), |c| c.key)
                    ),
                }));
            }
        }
        self.store.put(&kept_payload_key(round, &v.node), payload)?;
        Ok(None)
    }

    /// The update vector of an accepted verdict, from the merge's kept copy, or why it cannot
    /// be merged (no claim, another update's claim, a copy that changed, the wrong length, a
    /// value that is not finite).
    fn kept_delta(
        &self,
        round: u64,
        v: &Verdict,
        params_n: usize,
    ) -> Result<Result<Vec<f32>, String>, MergeError> {
        let claim: Option<Claim> = match self
            .store
            .get_at_most(&claim_key(round, &v.node), MAX_ENVELOPE_BYTES)?
        {
            Ok(Some(b)) => serde_json::from_slice(&b).ok(),
            _ => None,
        };
        let Some(claim) = claim else {
            return Ok(Err(format!(
                "no claim {} for it: its verified bytes were not kept",
                claim_key(round, &v.node)
            )));
        };
        if claim.key != v.key {
            return Ok(Err(format!(
                "replay: node {} already has an accepted update in round {round} ({})",
                v.node, claim.key
            )));
        }
        let want = 4 * params_n as u64;
        let kk = kept_payload_key(round, &v.node);
        let bytes = match self.store.get_at_most(&kk, want)? {
            Ok(Some(b)) => b,
            Ok(None) => return Ok(Err(format!("{kk} is missing"))),
            Err(n) => return Ok(Err(format!("{kk} is {n} bytes, an update is {want}"))),
        };
        let got = update::sha256_hex(&bytes);
        if got != claim.payload_sha256 {
            return Ok(Err(format!(
                "{kk} changed after it was verified (SHA-256 {got}, verified {})",
                claim.payload_sha256
            )));
        }
        let Some(d) = update::decode_payload(&bytes).filter(|d| d.len() == params_n) else {
            return Ok(Err(format!(
                "{kk} is {} bytes, an update is {want}",
                bytes.len()
            )));
        };
        if let Some((i, x)) = d.iter().enumerate().find(|(_, x)| !x.is_finite()) {
            return Ok(Err(format!("{kk}: value {i} is {x}")));
        }
        Ok(Ok(d))
    }

    fn close(
        &self,
        pointer: &crate::registry::Pointer,
        etag: &str,
        current: &Mlp,
        verdicts: &[Verdict],
        closed_by: String,
    ) -> Result<RoundResult, MergeError> {
        let round = pointer.round;
        let mut deltas = Vec::new();
        let mut included = Vec::new();
        let mut unmergeable = Vec::new();
        let params_n = params::count(&params::shapes(current));
        for v in verdicts.iter().filter(|v| v.accepted) {
            // The bytes verified when it was judged, as the merge kept them: never what
            // is under fl/updates/ now.
            match self.kept_delta(round, v, params_n)? {
                Ok(d) => {
                    included.push(Included {
                        node: v.node.clone(),
                        nonce: v.nonce.clone(),
                        samples: v.samples,
                        norm: v.norm,
                        cosine: None,
                    });
                    deltas.push((d, v.samples, v.staleness, v.key.clone()));
                }
                Err(reason) => unmergeable.push(Excluded {
                    node: v.node.clone(),
                    key: v.key.clone(),
                    tag: "unmergeable".into(),
                    reason,
                }),
            }
        }
        let eval = self.eval_set(current)?;
        let screened = self.screen(current, eval.as_ref(), round, &mut included, &mut deltas);
        let mut excluded: Vec<Excluded> = verdicts
            .iter()
            .filter(|v| !v.accepted)
            .map(|v| {
                let r = v.rejection.clone();
                Excluded {
                    node: v.node.clone(),
                    key: v.key.clone(),
                    tag: r.as_ref().map_or("refused", |r| r.tag()).to_string(),
                    reason: r.map_or_else(String::new, |r| r.to_string()),
                }
            })
            .collect();
        excluded.extend(unmergeable);
        excluded.extend(screened.iter().cloned());
        let contributions: Vec<Contribution<'_>> = deltas
            .iter()
            .map(|(d, s, st, _)| Contribution {
                delta: d,
                samples: *s,
                staleness: *st,
            })
            .collect();
        let mut noise = self
            .noise_seed
            .map_or_else(Gauss::from_os, |s| Gauss::new(s ^ round));
        let global = params::flatten(current);
        let combined = aggregate::combine(&self.cfg.aggregation, &contributions, &mut noise)
            .unwrap_or_else(|| vec![0.0; global.len()]);
        let mut velocity = self
            .store
            .get(&velocity_key(pointer.version))
            .ok()
            .and_then(|b| update::decode_payload(&b))
            .unwrap_or_default();
        let next = aggregate::step(&self.cfg.aggregation, &global, &combined, &mut velocity);
        let mut candidate = params::with_params(current, &next);
        let metrics = self.gate(current, &candidate, eval.as_ref());
        let version = self.registry.versions()?.last().map_or(0, |v| v + 1);
        candidate.info.model_version = federated_version(&current.info.model_version, version);
        let mut result = RoundResult {
            round,
            base_version: pointer.version,
            outcome: String::new(),
            version: None,
            accepted: included.len(),
            refused: excluded.len(),
            screened,
            metrics: metrics.clone(),
            closed_by,
            closed_unix: now_unix(),
        };
        let why_not = if included.is_empty() {
            Some(("screened", "every update was screened out"))
        } else if metrics.as_ref().is_some_and(|m| !m.passed) {
            Some(("gated", "the gate refused it"))
        } else {
            None
        };
        if let Some((outcome, why)) = why_not {
            result.outcome = outcome.into();
            let mut p = pointer.clone();
            p.round += 1;
            p.opened_unix = now_unix();
            p.reason = format!("round {round} closed without a new version: {why}");
            match self.registry.move_pointer(Some(etag), &mut p, self.key) {
                Ok(()) => {}
                Err(RegistryError::Raced(_)) => result.outcome = "raced".into(),
                Err(e) => return Err(e),
            }
            self.write_result(&result)?;
            return Ok(result);
        }
        let samples = included
            .iter()
            .map(|i| i.samples.min(self.cfg.aggregation.sample_cap))
            .sum();
        let card = Card {
            version,
            base_version: Some(pointer.version),
            round: Some(round),
            made_by: format!(
                "{} over {} updates{}{}",
                self.cfg.aggregation.rule,
                included.len(),
                self.cfg
                    .aggregation
                    .server_clip
                    .map_or(String::new(), |c| format!(", server clip {c}")),
                if self.cfg.aggregation.momentum > 0.0 {
                    format!(", momentum {}", self.cfg.aggregation.momentum)
                } else {
                    String::new()
                }
            ),
            included,
            excluded,
            samples,
            metrics,
            created_unix: now_unix(),
        };
        match self
            .registry
            .publish(Some(etag), version, round + 1, &candidate, &card, self.key)
        {
            Ok(Some(_)) => {
                if self.cfg.aggregation.momentum > 0.0 {
                    self.store
                        .put(&velocity_key(version), &update::encode_payload(&velocity))?;
                }
                result.outcome = "published".into();
                result.version = Some(version);
            }
            Ok(None) | Err(RegistryError::Raced(_)) => result.outcome = "raced".into(),
            Err(e) => return Err(e),
        }
        if result.outcome == "published" {
            self.write_result(&result)?;
        }
        Ok(result)
    }

    fn write_result(&self, r: &RoundResult) -> Result<(), MergeError> {
        let bytes = serde_json::to_vec_pretty(r).unwrap_or_default();
        self.store
            .put_if(&result_key(r.round), &bytes, &Condition::Absent)?;
        Ok(())
    }

    /// The server's evaluation set, when the store has one that fits the model.
    fn eval_set(&self, current: &Mlp) -> Result<Option<Dataset>, MergeError> {
        let Ok(bytes) = self.store.get(EVAL_KEY) else {
            return Ok(None);
        };
        let d = decode_eval(&bytes).ok_or_else(|| {
            RegistryError::Refused(format!("{EVAL_KEY} is not an evaluation set"))
        })?;
        Ok((d.features == current.n_features() && !d.is_empty()).then_some(d))
    }

    /// Leave out the updates that point away from the server's reference update (see
    /// [`crate::screen`]); returns them, and records each kept update's cosine.
    fn screen(
        &self,
        current: &Mlp,
        eval: Option<&Dataset>,
        round: u64,
        included: &mut Vec<Included>,
        deltas: &mut Vec<(Vec<f32>, u64, u64, String)>,
    ) -> Vec<Excluded> {
        let (Some(cfg), Some(eval)) = (self.cfg.aggregation.screen, eval) else {
            return Vec::new();
        };
        let reference = screen::reference(current, eval, &cfg, round);
        let mut out = Vec::new();
        let mut keep = Vec::new();
        for (mut inc, d) in included.drain(..).zip(deltas.drain(..)) {
            let c = screen::cosine(&d.0, &reference);
            inc.cosine = Some(c);
            if c < cfg.min_cosine {
                out.push(Excluded {
                    node: inc.node,
                    key: d.3,
                    tag: "screened".into(),
                    reason: format!(
                        "it points away from the server's reference update on the evaluation set (cosine {c:.3} < {})",
                        cfg.min_cosine
                    ),
                });
            } else {
                keep.push((inc, d));
            }
        }
        for (inc, d) in keep {
            included.push(inc);
            deltas.push(d);
        }
        out
    }

    /// The gate: macro-F1 of both models on the evaluation set, when there is one.
    fn gate(&self, current: &Mlp, candidate: &Mlp, eval: Option<&Dataset>) -> Option<GateMetrics> {
        let d = eval?;
        let base = macro_f1(current, d);
        let cand = macro_f1(candidate, d);
        Some(GateMetrics {
            rows: d.len(),
            macro_f1: cand,
            base_macro_f1: base,
            margin: self.cfg.gate_margin,
            passed: cand + self.cfg.gate_margin >= base,
        })
    }
}

/// The model version string of registry version `v` made from a model named `base`:
/// `weir-mlp/1+fl.v3` (what every result row's `model_version` then says).
pub fn federated_version(base: &str, v: u64) -> String {
    let stem = base.split_once("+fl.v").map_or(base, |(s, _)| s);
    format!("{stem}+fl.v{v}")
}

fn parse_update_key(key: &str) -> (String, String) {
    let parts: Vec<&str> = key.rsplitn(3, '/').collect();
    let nonce = parts
        .first()
        .and_then(|n| n.strip_suffix(".json"))
        .unwrap_or_default();
    let node = parts.get(1).copied().unwrap_or_default();
    (node.to_string(), nonce.to_string())
}

/// Upload a signed update where the merge looks for it (`If-None-Match`: an update is never
/// overwritten); the payload first, so the merge never sees an envelope without it.
pub fn upload(store: &dyn Store, s: &update::Signed) -> Result<String, RegistryError> {
    let key = update_key(s.manifest.round, &s.manifest.node, &s.manifest.nonce);
    store.put_if(
        &key.replace(".json", ".bin"),
        &s.payload,
        &Condition::Absent,
    )?;
    if !store.put_if(&key, &s.envelope, &Condition::Absent)? {
        return Err(RegistryError::Raced(format!("{key} exists already")));
    }
    Ok(key)
}

/// Predicted class per row (arg-max), by the Rust forward pass in batches.
pub fn predict(m: &Mlp, d: &Dataset) -> Vec<u16> {
    let k = m.n_classes();
    let mut out = Vec::with_capacity(d.len());
    for chunk in d.x.chunks(4096 * d.features.max(1)) {
        let o = m.forward(chunk);
        out.extend(o.probabilities.chunks_exact(k).map(|r| {
            r.iter()
                .enumerate()
                .fold(
                    (0usize, f32::MIN),
                    |b, (i, v)| if *v > b.1 { (i, *v) } else { b },
                )
                .0 as u16
        }));
    }
    out
}

/// Macro-F1 over the classes present in `truth`, in [0, 1].
pub fn macro_f1_of(truth: &[u16], predicted: &[u16], classes: usize) -> f64 {
    let mut tp = vec![0u64; classes];
    let mut fp = vec![0u64; classes];
    let mut fn_ = vec![0u64; classes];
    for (t, p) in truth.iter().zip(predicted) {
        let (t, p) = (*t as usize, *p as usize);
        if t == p {
            tp[t] += 1;
        } else {
            if p < classes {
                fp[p] += 1;
            }
            fn_[t] += 1;
        }
    }
    let present: Vec<usize> = (0..classes).filter(|c| tp[*c] + fn_[*c] > 0).collect();
    if present.is_empty() {
        return 0.0;
    }
    present
        .iter()
        .map(|&c| {
            let d = 2 * tp[c] + fp[c] + fn_[c];
            if d == 0 {
                0.0
            } else {
                2.0 * tp[c] as f64 / d as f64
            }
        })
        .sum::<f64>()
        / present.len() as f64
}

/// Macro-F1 of `m` on `d`.
pub fn macro_f1(m: &Mlp, d: &Dataset) -> f64 {
    macro_f1_of(&d.y, &predict(m, d), m.n_classes())
}

/// An evaluation set as bytes: `WEIREVAL`, features and rows (u32 LE), the rows (f32 LE),
/// the labels (u16 LE).
pub fn encode_eval(d: &Dataset) -> Vec<u8> {
    let mut b = b"WEIREVAL".to_vec();
    b.extend((d.features as u32).to_le_bytes());
    b.extend((d.len() as u32).to_le_bytes());
    b.extend(d.x.iter().flat_map(|x| x.to_le_bytes()));
    b.extend(d.y.iter().flat_map(|y| y.to_le_bytes()));
    b
}

/// An evaluation set from [`encode_eval`]'s bytes.
pub fn decode_eval(b: &[u8]) -> Option<Dataset> {
    let rest = b.strip_prefix(b"WEIREVAL")?;
    let f = u32::from_le_bytes(rest.get(0..4)?.try_into().ok()?) as usize;
    let n = u32::from_le_bytes(rest.get(4..8)?.try_into().ok()?) as usize;
    let xs = rest.get(8..8 + n * f * 4)?;
    let ys = rest.get(8 + n * f * 4..8 + n * f * 4 + n * 2)?;
    let mut d = Dataset::new(f);
    d.x = update::decode_payload(xs)?;
    d.y = ys
        .chunks_exact(2)
        .map(|c| u16::from_le_bytes([c[0], c[1]]))
        .collect();
    d.weight = vec![1.0; n];
    Some(d)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::update::{Provenance, UpdateOptions};
    use weir_pipeline::LocalStore;

    fn node(i: u8) -> SigningKey {
        SigningKey::from_seed(&format!("edge-{i}"), [i; 32]).unwrap()
    }

    fn shifted(m: &Mlp, by: f32) -> Mlp {
        let p: Vec<f32> = params::flatten(m).iter().map(|x| x + by).collect();
        params::with_params(m, &p)
    }

    /// `key`'s update of `global` moved by `by` in every parameter, from version `base` for
    /// `round`, clipped to `clip` (10 samples, three classes).
    fn made(
        key: &SigningKey,
        global: &Mlp,
        base: u64,
        round: u64,
        by: f32,
        clip: f32,
    ) -> update::Signed {
        update::make(
            key,
            global,
            &shifted(global, by),
            &Provenance {
                base_version: base,
                round,
                samples: 10,
                class_counts: vec![4, 3, 3],
            },
            &UpdateOptions {
                clip,
                ..UpdateOptions::default()
            },
            &mut Gauss::new(1),
        )
    }

    fn push(
        store: &dyn Store,
        key: &SigningKey,
        global: &Mlp,
        base: u64,
        round: u64,
        by: f32,
    ) -> String {
        upload(store, &made(key, global, base, round, by, 0.5)).unwrap()
    }

    #[test]
    fn a_round_closes_at_quorum_publishes_once_and_records_refusals() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalStore::new(dir.path());
        let registry_key = SigningKey::from_seed("registry", [42; 32]).unwrap();
        let reg = Registry::new(&store, Some(registry_key.public_hex()));
        let m0 = weir_model::test_model(4, 6, 3, 1);
        reg.init(&m0, Some(&registry_key)).unwrap();
        for i in 1..=3 {
            register_node(&store, &format!("edge-{i}"), &node(i).public_hex()).unwrap();
        }
        assert!(register_node(&store, "../x", &node(1).public_hex()).is_err());
        let cfg = MergeConfig {
            quorum: 2,
            aggregation: Aggregation::default(),
            ..MergeConfig::default()
        };
        let merger = Merger::new(&store, Some(&registry_key), cfg.clone());
        // One good update: not yet a quorum.
        push(&store, &node(1), &m0, 0, 1, 0.1);
        let r = merger.step(now_unix()).unwrap();
        assert_eq!(
            (r.judged.len(), r.accepted, r.closed.is_none()),
            (1, 1, true)
        );
        // The same node again (a second update this round), an unregistered node, a stale base.
        push(&store, &node(1), &m0, 0, 1, 0.02);
        push(&store, &node(9), &m0, 0, 1, 0.01);
        push(&store, &node(3), &m0, 7, 1, 0.01);
        let r = merger.step(now_unix()).unwrap();
        let tags: Vec<&str> = r
            .judged
            .iter()
            .filter_map(|v| v.rejection.as_ref().map(|r| r.tag()))
            .collect();
        assert_eq!(tags.len(), 3, "{r:?}");
        assert!(
            tags.contains(&"replay")
                && tags.contains(&"unknown_node")
                && tags.contains(&"stale_base")
        );
        assert!(r.closed.is_none());
        // Node 2's good update makes the quorum.
        push(&store, &node(2), &m0, 0, 1, 0.1);
        let r = merger.step(now_unix()).unwrap();
        let closed = r.closed.unwrap();
        assert_eq!(
            (closed.outcome.as_str(), closed.version),
            ("published", Some(1))
        );
        // A second merge step (say, a concurrent Lambda) finds round 2 open and nothing to do.
        let r2 = Merger::new(&store, Some(&registry_key), cfg)
            .step(now_unix())
            .unwrap();
        assert_eq!((r2.round, r2.closed), (2, None));
        let card = reg.card(1).unwrap();
        assert_eq!(card.included.len(), 2);
        assert_eq!(card.excluded.len(), 3);
        assert!(card
            .excluded
            .iter()
            .any(|e| e.reason.contains("stale base")));
        let v1 = reg.current(Some(&m0)).unwrap();
        assert_eq!((v1.pointer.version, v1.pointer.round), (1, 2));
        assert!(
            v1.model.info.model_version.ends_with("+fl.v1"),
            "{}",
            v1.model.info.model_version
        );
        // The merged model is the global model plus the mean of the two clipped updates.
        let step = params::sub(&params::flatten(&v1.model), &params::flatten(&m0));
        assert!(
            (params::norm(&step) - 0.5).abs() < 1e-3,
            "{}",
            params::norm(&step)
        );
    }

    #[test]
    fn the_gate_refuses_a_worse_model_and_the_round_moves_on() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalStore::new(dir.path());
        let m0 = weir_model::test_model(4, 6, 3, 1);
        let reg = Registry::new(&store, None);
        reg.init(&m0, None).unwrap();
        register_node(&store, "edge-1", &node(1).public_hex()).unwrap();
        // An evaluation set labelled by the current model: any big change makes it worse.
        let mut d = Dataset::new(4);
        let mut g = Gauss::new(5);
        for _ in 0..300 {
            let row: Vec<f32> = (0..4).map(|_| 3.0 * g.draw()).collect();
            d.push(&row, 0, 1.0);
        }
        d.y = predict(&m0, &d);
        let back = decode_eval(&encode_eval(&d)).unwrap();
        assert_eq!((back.x.clone(), back.y.clone()), (d.x.clone(), d.y.clone()));
        store.put(EVAL_KEY, &encode_eval(&d)).unwrap();
        let cfg = MergeConfig {
            quorum: 1,
            bound: 100.0,
            aggregation: Aggregation::default(),
            gate_margin: 0.01,
            ..MergeConfig::default()
        };
        let s = update::sign(
            &node(1),
            &vec![-3.0; params::count(&params::shapes(&m0))],
            &Provenance {
                base_version: 0,
                round: 1,
                samples: 3,
                class_counts: vec![1, 1, 1],
            },
            100.0,
            None,
            params::shapes(&m0),
        );
        upload(&store, &s).unwrap();
        let r = Merger::new(&store, None, cfg).step(now_unix()).unwrap();
        let c = r.closed.unwrap();
        assert_eq!(c.outcome, "gated", "{c:?}");
        let m = c.metrics.unwrap();
        assert!(m.macro_f1 < m.base_macro_f1 && !m.passed);
        let p = reg.pointer().unwrap().unwrap().0;
        assert_eq!((p.version, p.round), (0, 2));
        assert_eq!(reg.versions().unwrap(), vec![0]);
    }

    /// Rows labelled by `teacher`.
    fn taught(teacher: &Mlp, rows: usize, seed: u64) -> Dataset {
        let mut d = Dataset::new(teacher.n_features());
        let mut g = Gauss::new(seed);
        for _ in 0..rows {
            let row: Vec<f32> = (0..teacher.n_features()).map(|_| 2.0 * g.draw()).collect();
            d.push(&row, 0, 1.0);
        }
        d.y = predict(teacher, &d);
        d
    }

    #[test]
    fn the_screen_leaves_out_an_update_that_points_away_and_says_why() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalStore::new(dir.path());
        let m0 = weir_model::test_model(4, 8, 3, 1);
        let teacher = weir_model::test_model(4, 8, 3, 7);
        let reg = Registry::new(&store, None);
        reg.init(&m0, None).unwrap();
        store
            .put(EVAL_KEY, &encode_eval(&taught(&teacher, 400, 3)))
            .unwrap();
        let shapes = params::shapes(&m0);
        let prov = Provenance {
            base_version: 0,
            round: 1,
            samples: 100,
            class_counts: vec![40, 30, 30],
        };
        // Two honest nodes learn the teacher from their own rows; the third sends the
        // reverse of an honest update (a sign flip), of honest size.
        let mut honest = Vec::new();
        for i in 1..=2u8 {
            let mut local = m0.clone();
            let cfg = weir_model::train::TrainConfig {
                epochs: 3,
                seed: u64::from(i),
                ..Default::default()
            };
            weir_model::train::fit(
                &mut local,
                &taught(&teacher, 400, 10 + u64::from(i)),
                &cfg,
                |_| {},
            );
            honest.push(params::sub(&params::flatten(&local), &params::flatten(&m0)));
        }
        let flipped: Vec<f32> = honest[0].iter().map(|x| -x).collect();
        for (i, d) in [(1u8, &honest[0]), (2, &honest[1]), (3, &flipped)] {
            register_node(&store, &node(i).id, &node(i).public_hex()).unwrap();
            let s = update::sign(&node(i), d, &prov, 100.0, None, shapes.clone());
            upload(&store, &s).unwrap();
        }
        let cfg = MergeConfig {
            quorum: 3,
            bound: 100.0,
            gate_margin: 1.0,
            aggregation: Aggregation {
                screen: Some(screen::Screen::default()),
                ..Aggregation::default()
            },
            ..MergeConfig::default()
        };
        let c = Merger::new(&store, None, cfg)
            .step(now_unix())
            .unwrap()
            .closed
            .unwrap();
        assert_eq!(c.outcome, "published", "{c:?}");
        assert_eq!((c.accepted, c.refused), (2, 1), "{c:?}");
        assert_eq!(c.screened.len(), 1, "{c:?}");
        assert_eq!(c.screened[0].node, "edge-3");
        assert_eq!(c.screened[0].tag, "screened");
        assert!(
            c.screened[0].reason.contains("cosine -"),
            "{}",
            c.screened[0].reason
        );
        let card = reg.card(1).unwrap();
        assert!(card
            .excluded
            .iter()
            .any(|e| e.node == "edge-3" && e.tag == "screened"));
        for inc in &card.included {
            assert!(inc.cosine.unwrap() > 0.0, "{inc:?}");
        }
        // Without an evaluation set nothing is screened.
        let none = Merger::new(&store, None, MergeConfig::default()).screen(
            &m0,
            None,
            1,
            &mut Vec::new(),
            &mut Vec::new(),
        );
        assert!(none.is_empty());
    }

    /// A store as another party sees it: listings under `hide` come back empty (a step that
    /// listed before another step's write landed), and reading an object over `max_read`
    /// bytes whole fails the test (the merge would have held it in memory).
    struct Probe<'a> {
        inner: &'a LocalStore,
        hide: Vec<String>,
        max_read: u64,
    }

    impl Store for Probe<'_> {
        fn open(
            &self,
            key: &str,
        ) -> Result<Box<dyn std::io::Read + Send + '_>, weir_pipeline::PipelineError> {
            let n = std::fs::metadata(self.inner.path_of(key)).map_or(0, |m| m.len());
            assert!(n <= self.max_read, "the merge read {key} ({n} bytes) whole");
            self.inner.open(key)
        }
        fn version(&self, key: &str) -> Result<Option<String>, weir_pipeline::PipelineError> {
            self.inner.version(key)
        }
        fn open_version(
            &self,
            key: &str,
            version: &str,
        ) -> Result<Box<dyn std::io::Read + Send + '_>, weir_pipeline::PipelineError> {
            self.inner.open_version(key, version)
        }
        fn get_versioned(
            &self,
            key: &str,
        ) -> Result<Option<(Vec<u8>, String)>, weir_pipeline::PipelineError> {
            self.inner.get_versioned(key)
        }
        fn put_if(
            &self,
            key: &str,
            bytes: &[u8],
            cond: &Condition,
        ) -> Result<bool, weir_pipeline::PipelineError> {
            self.inner.put_if(key, bytes, cond)
        }
        fn put(&self, key: &str, bytes: &[u8]) -> Result<(), weir_pipeline::PipelineError> {
            self.inner.put(key, bytes)
        }
        fn exists(&self, key: &str) -> Result<bool, weir_pipeline::PipelineError> {
            self.inner.exists(key)
        }
        fn size(&self, key: &str) -> Result<Option<u64>, weir_pipeline::PipelineError> {
            self.inner.size(key)
        }
        fn list(&self, prefix: &str) -> Result<Vec<String>, weir_pipeline::PipelineError> {
            if self.hide.iter().any(|h| prefix.starts_with(h.as_str())) {
                return Ok(Vec::new());
            }
            self.inner.list(prefix)
        }
        fn delete(&self, key: &str) -> Result<(), weir_pipeline::PipelineError> {
            self.inner.delete(key)
        }
    }

    /// A registry at version 0 with nodes 1..=n registered.
    fn federation(dir: &std::path::Path, n: u8) -> (LocalStore, Mlp) {
        let store = LocalStore::new(dir);
        let m0 = weir_model::test_model(4, 6, 3, 1);
        Registry::new(&store, None).init(&m0, None).unwrap();
        for i in 1..=n {
            register_node(&store, &format!("edge-{i}"), &node(i).public_hex()).unwrap();
        }
        (store, m0)
    }

    fn plain(quorum: usize) -> MergeConfig {
        MergeConfig {
            quorum,
            aggregation: Aggregation::default(),
            ..MergeConfig::default()
        }
    }

    #[test]
    fn an_update_swapped_after_it_was_accepted_is_not_what_is_merged() {
        // Edge roles may overwrite their own prefix. Node 1's update is accepted, then its
        // envelope and payload are replaced by a consistent pair (the new payload's SHA-256
        // in an unsigned manifest) of the wrong length with a NaN in it. Closing used to
        // re-read both and trust the re-read manifest: an index out of bounds in every later
        // merge step, or NaN in the model.
        let dir = tempfile::tempdir().unwrap();
        let (store, m0) = federation(dir.path(), 2);
        let merger = Merger::new(&store, None, plain(2));
        let k1 = push(&store, &node(1), &m0, 0, 1, 0.1);
        assert_eq!(merger.step(now_unix()).unwrap().accepted, 1);
        let evil = update::encode_payload(&[f32::NAN, 1.0, 2.0]);
        let env: update::Envelope = serde_json::from_slice(&store.get(&k1).unwrap()).unwrap();
        let mut m: update::Manifest = serde_json::from_str(&env.manifest).unwrap();
        m.payload_sha256 = update::sha256_hex(&evil);
        let forged = update::Envelope {
            manifest: serde_json::to_string(&m).unwrap(),
            signature: env.signature,
        };
        std::fs::write(store.path_of(&k1), serde_json::to_vec(&forged).unwrap()).unwrap();
        std::fs::write(store.path_of(&k1.replace(".json", ".bin")), &evil).unwrap();
        push(&store, &node(2), &m0, 0, 1, 0.1);
        let c = merger.step(now_unix()).unwrap().closed.unwrap();
        assert_eq!((c.outcome.as_str(), c.accepted), ("published", 2), "{c:?}");
        let v1 = Registry::new(&store, None).current(None).unwrap().model;
        let p = params::flatten(&v1);
        assert!(p.iter().all(|x| x.is_finite()));
        // Both clipped updates (norm 0.5 each, same direction) moved it: node 1's verified
        // bytes were merged, not the swapped ones.
        let step = params::norm(&params::sub(&p, &params::flatten(&m0)));
        assert!((step - 0.5).abs() < 1e-3, "{step}");
    }

    #[test]
    fn a_kept_copy_that_changed_is_left_out_with_its_reason() {
        let dir = tempfile::tempdir().unwrap();
        let (store, m0) = federation(dir.path(), 2);
        let merger = Merger::new(&store, None, plain(2));
        push(&store, &node(1), &m0, 0, 1, 0.1);
        merger.step(now_unix()).unwrap();
        // The merge's own copy damaged (a fault, an operator's slip): too short, then NaN.
        let kept = store.path_of(&kept_payload_key(1, "edge-1"));
        std::fs::write(&kept, update::encode_payload(&[f32::NAN])).unwrap();
        push(&store, &node(2), &m0, 0, 1, 0.1);
        let c = merger.step(now_unix()).unwrap().closed.unwrap();
        assert_eq!((c.outcome.as_str(), c.accepted), ("published", 1), "{c:?}");
        let card = Registry::new(&store, None).card(1).unwrap();
        let e = card.excluded.iter().find(|e| e.node == "edge-1").unwrap();
        assert_eq!(e.tag, "unmergeable");
        assert!(
            e.reason.contains("changed after it was verified"),
            "{}",
            e.reason
        );
    }

    #[test]
    fn an_oversized_update_is_refused_from_its_size_not_read() {
        // A 3 GiB payload and a 200 MiB envelope (sparse files: no disk, no memory). The
        // merge used to read the payload whole before checking anything: out of memory on
        // every retry of the merge function.
        let dir = tempfile::tempdir().unwrap();
        let (store, m0) = federation(dir.path(), 2);
        let k1 = push(&store, &node(1), &m0, 0, 1, 0.1);
        std::fs::File::options()
            .write(true)
            .open(store.path_of(&k1.replace(".json", ".bin")))
            .unwrap()
            .set_len(3 << 30)
            .unwrap();
        let k2 = push(&store, &node(2), &m0, 0, 1, 0.1);
        std::fs::File::options()
            .write(true)
            .open(store.path_of(&k2))
            .unwrap()
            .set_len(200 << 20)
            .unwrap();
        let probe = Probe {
            inner: &store,
            hide: Vec::new(),
            max_read: 1 << 20,
        };
        let r = Merger::new(&probe, None, plain(3))
            .step(now_unix())
            .unwrap();
        let why: Vec<String> = r
            .judged
            .iter()
            .map(|v| {
                v.rejection
                    .as_ref()
                    .map_or("accepted".into(), |r| r.to_string())
            })
            .collect();
        assert_eq!(why.len(), 2);
        assert!(
            why[0].contains("the payload is 3221225472 bytes"),
            "{why:?}"
        );
        assert!(
            why[1].contains("the envelope is 209715200 bytes"),
            "{why:?}"
        );
        assert!(r
            .judged
            .iter()
            .all(|v| v.rejection.as_ref().unwrap().tag() == "oversize"));
    }

    #[test]
    fn an_old_rounds_update_is_not_replayed_in_a_later_async_round() {
        let dir = tempfile::tempdir().unwrap();
        let (store, m0) = federation(dir.path(), 2);
        let cfg = MergeConfig {
            mode: Mode::Async { max_staleness: 2 },
            ..plain(1)
        };
        let merger = Merger::new(&store, None, cfg);
        let k1 = push(&store, &node(1), &m0, 0, 1, 0.1);
        let c = merger.step(now_unix()).unwrap().closed.unwrap();
        assert_eq!(c.version, Some(1));
        // Round 2 is open; node 1's signed round-1 update is copied into it.
        let k_again = k1.replace("round-000001", "round-000002");
        for (from, to) in [(&k1, &k_again)] {
            for ext in [".json", ".bin"] {
                let b = store.get(&from.replace(".json", ext)).unwrap();
                store.put(&to.replace(".json", ext), &b).unwrap();
            }
        }
        let r = merger.step(now_unix()).unwrap();
        assert_eq!(r.round, 2);
        assert_eq!(r.judged.len(), 1);
        let v = &r.judged[0];
        assert!(
            !v.accepted,
            "a round-1 update was accepted in round 2: {v:?}"
        );
        assert_eq!(v.rejection.as_ref().unwrap().tag(), "wrong_round");
        // A fresh update made from version 0 (one behind) for round 2 is still taken.
        push(&store, &node(2), &m0, 0, 2, 0.1);
        let r = merger.step(now_unix()).unwrap();
        let v = r.judged.iter().find(|v| v.node == "edge-2").unwrap();
        assert!(v.accepted && v.staleness == 1, "{v:?}");
    }

    #[test]
    fn two_concurrent_steps_accept_one_update_per_node() {
        // Step A accepts node 1's update K1. Step B listed the verdicts before A wrote its
        // verdict, and judges node 1's second update K2 first (it sorts first): each step
        // saw no accepted update from node 1.
        let dir = tempfile::tempdir().unwrap();
        let (store, m0) = federation(dir.path(), 3);
        let k1 = push(&store, &node(1), &m0, 0, 1, 0.1);
        Merger::new(&store, None, plain(3))
            .step(now_unix())
            .unwrap();
        let nonce1 = parse_update_key(&k1).1;
        let k2 = loop {
            let s = made(&node(1), &m0, 0, 1, 0.05, update::DEFAULT_CLIP);
            if s.manifest.nonce < nonce1 {
                break upload(&store, &s).unwrap();
            }
        };
        let blind = Probe {
            inner: &store,
            hide: vec!["fl/rounds/round-000001/verdicts/".into()],
            max_read: u64::MAX,
        };
        let r = Merger::new(&blind, None, plain(3))
            .step(now_unix())
            .unwrap();
        let v2 = r.judged.iter().find(|v| v.key == k2).unwrap();
        assert!(
            !v2.accepted,
            "a second update from node 1 was accepted: {v2:?}"
        );
        assert!(
            v2.rejection.as_ref().unwrap().to_string().contains(&k1),
            "{v2:?}"
        );
        push(&store, &node(2), &m0, 0, 1, 0.1);
        push(&store, &node(3), &m0, 0, 1, 0.1);
        let c = Merger::new(&store, None, plain(3))
            .step(now_unix())
            .unwrap()
            .closed
            .unwrap();
        assert_eq!(c.accepted, 3, "{c:?}");
        let card = Registry::new(&store, None).card(1).unwrap();
        let from1: Vec<&str> = card
            .included
            .iter()
            .filter(|i| i.node == "edge-1")
            .map(|i| i.nonce.as_str())
            .collect();
        assert_eq!(from1, vec![nonce1.as_str()]);
    }

    #[test]
    fn verdicts_of_two_nodes_never_share_a_key() {
        // Node "edge" names its nonce "1-" + node edge-1's nonce: as `{node}-{nonce}` both
        // verdicts were `edge-1-NONCE`, and edge-1's update took edge's verdict unjudged.
        let dir = tempfile::tempdir().unwrap();
        let (store, m0) = federation(dir.path(), 1);
        let edge = SigningKey::from_seed("edge", [77; 32]).unwrap();
        register_node(&store, "edge", &edge.public_hex()).unwrap();
        let honest = made(&node(1), &m0, 0, 1, 0.1, update::DEFAULT_CLIP);
        let mut s = update::sign(
            &edge,
            &update::decode_payload(&honest.payload).unwrap(),
            &Provenance {
                base_version: 0,
                round: 1,
                samples: 10,
                class_counts: vec![4, 3, 3],
            },
            5.0,
            None,
            params::shapes(&m0),
        );
        s.manifest.nonce = format!("1-{}", honest.manifest.nonce);
        let text = serde_json::to_string(&s.manifest).unwrap();
        s.envelope = serde_json::to_vec(&update::Envelope {
            signature: edge.sign_hex(text.as_bytes()),
            manifest: text,
        })
        .unwrap();
        upload(&store, &s).unwrap();
        let merger = Merger::new(&store, None, plain(3));
        let r = merger.step(now_unix()).unwrap();
        assert!(r.judged[0].accepted && r.judged[0].node == "edge", "{r:?}");
        upload(&store, &honest).unwrap();
        let r = merger.step(now_unix()).unwrap();
        assert_eq!(r.judged.len(), 1, "{r:?}");
        assert!(
            r.judged[0].accepted && r.judged[0].node == "edge-1",
            "{r:?}"
        );
        assert_ne!(
            verdict_key(1, "edge", &s.manifest.nonce),
            verdict_key(1, "edge-1", &honest.manifest.nonce)
        );
        // A key that names no valid node or nonce still gets a verdict of its own.
        assert!(verdict_key(1, "..", "x").contains("/verdicts/~malformed/"));
    }

    #[test]
    fn a_merge_without_the_key_never_publishes_over_a_signed_pointer() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalStore::new(dir.path());
        let key = SigningKey::from_seed("registry", [5; 32]).unwrap();
        let m0 = weir_model::test_model(4, 6, 3, 1);
        Registry::new(&store, Some(key.public_hex()))
            .init(&m0, Some(&key))
            .unwrap();
        register_node(&store, "edge-1", &node(1).public_hex()).unwrap();
        push(&store, &node(1), &m0, 0, 1, 0.1);
        // Without the key: refused before anything is judged or published.
        let e = Merger::new(&store, None, plain(1))
            .step(now_unix())
            .unwrap_err();
        assert!(e.to_string().contains("has no registry key"), "{e}");
        let trusted = Registry::new(&store, Some(key.public_hex()));
        assert_eq!(trusted.pointer().unwrap().unwrap().0.version, 0);
        // Another key: the pointer it reads is not signed by it.
        let other = SigningKey::from_seed("registry", [6; 32]).unwrap();
        assert!(Merger::new(&store, Some(&other), plain(1))
            .step(now_unix())
            .is_err());
        // With it: published, and the new pointer verifies.
        let c = Merger::new(&store, Some(&key), plain(1))
            .step(now_unix())
            .unwrap()
            .closed
            .unwrap();
        assert_eq!(c.version, Some(1));
        assert_eq!(trusted.pointer().unwrap().unwrap().0.version, 1);
    }

    #[test]
    fn federated_versions_name_their_registry_version() {
        assert_eq!(federated_version("weir-mlp/1", 1), "weir-mlp/1+fl.v1");
        assert_eq!(federated_version("weir-mlp/1+fl.v1", 2), "weir-mlp/1+fl.v2");
    }

    #[test]
    fn macro_f1_counts_each_present_class_once() {
        assert_eq!(macro_f1_of(&[0, 0, 1, 1], &[0, 0, 1, 1], 3), 1.0);
        // class 0: tp 1, fn 1, fp 0 → 2/3; class 1: tp 2, fp 1 → 0.8
        let f = macro_f1_of(&[0, 0, 1, 1], &[0, 1, 1, 1], 3);
        assert!((f - (2.0 / 3.0 + 0.8) / 2.0).abs() < 1e-9);
    }
}
