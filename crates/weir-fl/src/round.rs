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

use std::collections::HashSet;

use serde::{Deserialize, Serialize};
use weir_model::train::Dataset;
use weir_model::Mlp;
use weir_store::{Condition, Store};

use crate::aggregate::{self, Aggregation, Contribution};
use crate::params::{self, Gauss};
use crate::registry::{Card, Excluded, GateMetrics, Included, Registry, RegistryError};
use crate::screen;
use crate::update::{self, now_unix, Checks, Rejection, SigningKey};

mod keys;
mod metrics;

use keys::velocity_key;
pub use keys::*;
pub use metrics::*;

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

#[cfg(test)]
mod tests;
