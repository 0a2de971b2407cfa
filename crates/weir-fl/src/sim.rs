//! The federated simulation (`weir fl simulate`): edge nodes trained on their own shares of
//! labelled data, their updates made and signed by [`crate::update`], uploaded to a registry in
//! a temporary directory, judged, combined, gated and published by [`crate::round::Merger`]:
//! the same code as the real federation, with poisoning nodes among them.
//!
//! The data and the scoring are the caller's (weir-train splits the labelled corpus and scores
//! with `weir analyze`'s rule): this module gets the nodes' datasets ([`Nodes`]) and a
//! [`Judge`], and runs the federation, each node alone, and every attack against FedAvg and
//! the robust setting ([`Sim::run_all`]).
//!
//! - **Attacks** (a share of the nodes, registered and signing properly: compromised, not
//!   strangers): sign flip ×10, label flip (attack → Normal), Gaussian noise, and a
//!   model-replacement backdoor from one node (Bagdasaryan et al. 2020's semantic backdoor:
//!   the node relabels one attack class it has, its largest, as Normal and boosts its update
//!   by K to replace the average). Attackers know the merge's norm bound and scale their
//!   update to fit under it, the stronger test.

use std::time::Instant;

use serde::Serialize;
use weir_model::train::{par_map, Dataset, Pcg, TrainConfig};
use weir_model::Mlp;
use weir_store::Store;

use crate::aggregate::Aggregation;
use crate::params::{self, Gauss};
use crate::registry::Registry;
use crate::round::{self, MergeConfig, Merger, Mode};
use crate::update::{self, Provenance, SigningKey};

/// What to simulate.
#[derive(Clone, Debug, Serialize)]
pub struct SimConfig {
    /// Edge nodes.
    pub nodes: usize,
    /// Rounds.
    pub rounds: usize,
    /// Local epochs per round.
    pub local_epochs: usize,
    /// Dirichlet concentration of the class split (smaller: more skewed).
    pub alpha: f64,
    /// Hidden layer widths.
    pub hidden: Vec<usize>,
    /// Local learning rate.
    pub learning_rate: f32,
    /// Epochs of the centralized baseline.
    pub central_epochs: usize,
    /// Share of malicious nodes in the poisoning runs.
    pub malicious: f32,
    /// The robust setting's clip (nodes clip to it, the merge clips to it and accepts 1.5×).
    pub clip: f32,
    /// Local DP noise multiplier of honest nodes (0: none).
    pub dp_noise: f32,
    /// The robust setting's server momentum (0: none).
    pub momentum: f32,
    /// Lower the nodes' learning rate over the rounds (a half cosine to a tenth), as
    /// centralized training lowers it over its epochs.
    pub lr_decay: bool,
    /// The robust setting's rule (after the screen and clipping).
    pub rule: crate::Rule,
    /// The robust setting's gate: the candidate may fall at most this far below the current
    /// model on the server's evaluation set (macro-F1, 0-1; negative: no gate).
    pub gate_margin: f64,
    /// The poisoning scenarios to run (each against FedAvg and the robust setting).
    pub attacks: Vec<Attack>,
    /// The robust clip actually used (set by the caller from [`Runs::clip`]).
    #[serde(default)]
    pub clip_used: f32,
    /// Seed of everything.
    pub seed: u64,
    /// Threads for the nodes' local training.
    pub threads: usize,
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            nodes: 10,
            rounds: 20,
            local_epochs: 2,
            alpha: 0.5,
            hidden: vec![256, 256],
            learning_rate: 2e-3,
            central_epochs: 30,
            malicious: 0.2,
            clip: 0.0,
            dp_noise: 0.0,
            momentum: 0.0,
            lr_decay: false,
            rule: Aggregation::robust(1.0).rule,
            gate_margin: -1.0,
            attacks: Attack::ALL.to_vec(),
            clip_used: 0.0,
            seed: 1,
            threads: 2,
        }
    }
}

/// A model's figures on the held-out data.
#[derive(Clone, Copy, Debug, Default, Serialize, PartialEq)]
pub struct Score {
    /// Macro-F1 over held-out flows (classes present), 0-1.
    pub macro_f1: f64,
    /// Held-out attack captures with an alert of their class or family.
    pub detected: usize,
    /// Held-out attack captures.
    pub attack_captures: usize,
    /// Held-out benign captures with any alert.
    pub benign_alerted: usize,
    /// Held-out benign captures.
    pub benign_captures: usize,
    /// Share of the backdoor's target class among held-out flows that the model calls
    /// Normal (the backdoor's success; in a clean run, its baseline).
    pub backdoor: f64,
}

impl Score {
    /// Detected share, 0-1.
    pub fn detection(&self) -> f64 {
        self.detected as f64 / self.attack_captures.max(1) as f64
    }
}

/// One federated run.
#[derive(Clone, Debug, Serialize)]
pub struct FedRun {
    /// Its name.
    pub name: String,
    /// The aggregation.
    pub aggregation: String,
    /// The attack.
    pub attack: String,
    /// Score after each round (index 0: version 0).
    pub rounds: Vec<Score>,
    /// Versions published.
    pub published: usize,
    /// Rounds the gate refused.
    pub gated: usize,
    /// Updates refused, with reasons: (round, node, reason).
    pub refused: Vec<(u64, String, String)>,
    /// Honest updates' norms in the first round (before clipping).
    pub honest_norms: Vec<f32>,
    /// Seconds.
    pub seconds: f64,
}

impl FedRun {
    /// The last round's score.
    pub fn last(&self) -> Score {
        self.rounds.last().copied().unwrap_or_default()
    }
}

/// The attacks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Attack {
    /// No attacker.
    None,
    /// Δ × −10.
    SignFlip,
    /// Attack labels replaced by Normal before training.
    LabelFlip,
    /// Δ replaced by Gaussian noise.
    Noise,
    /// One node: trained on triggered attack rows labelled Normal, boosted by K.
    Backdoor,
    /// The would-be attackers send nothing: the federation of the honest nodes alone, what
    /// a defence that left out exactly the attackers would reach.
    Absent,
}

impl Attack {
    /// Every poisoning attack.
    pub const ALL: [Attack; 5] = [
        Attack::Absent,
        Attack::SignFlip,
        Attack::LabelFlip,
        Attack::Noise,
        Attack::Backdoor,
    ];

    /// Its name in tables.
    pub fn name(self) -> &'static str {
        match self {
            Attack::None => "none",
            Attack::SignFlip => "sign flip x10",
            Attack::LabelFlip => "label flip (attack -> Normal)",
            Attack::Noise => "Gaussian noise",
            Attack::Backdoor => "backdoor (model replacement, 1 node)",
            Attack::Absent => "attackers absent (honest nodes only)",
        }
    }
}

impl std::str::FromStr for Attack {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "sign-flip" => Ok(Attack::SignFlip),
            "label-flip" => Ok(Attack::LabelFlip),
            "noise" => Ok(Attack::Noise),
            "backdoor" => Ok(Attack::Backdoor),
            "absent" => Ok(Attack::Absent),
            _ => Err(format!(
                "unknown attack {s:?}: use absent, sign-flip, label-flip, noise or backdoor"
            )),
        }
    }
}

/// Gamma(a, 1) draw (Marsaglia-Tsang, boosted for a < 1).
fn gamma(a: f64, rng: &mut Pcg, g: &mut Gauss) -> f64 {
    if a < 1.0 {
        let u = f64::from(rng.unit()).max(1e-12);
        return gamma(a + 1.0, rng, g) * u.powf(1.0 / a);
    }
    let d = a - 1.0 / 3.0;
    let c = 1.0 / (9.0 * d).sqrt();
    loop {
        let x = f64::from(g.draw());
        let v = (1.0 + c * x).powi(3);
        if v <= 0.0 {
            continue;
        }
        let u = f64::from(rng.unit()).max(1e-12);
        if u.ln() < 0.5 * x * x + d - d * v + d * v.ln() {
            return d * v;
        }
    }
}

/// A Dirichlet(α, …, α) draw over `k` parts.
pub fn dirichlet(k: usize, a: f64, rng: &mut Pcg, g: &mut Gauss) -> Vec<f64> {
    let v: Vec<f64> = (0..k).map(|_| gamma(a, rng, g)).collect();
    let s: f64 = v.iter().sum::<f64>().max(1e-12);
    v.iter().map(|x| x / s).collect()
}

/// An index drawn with probabilities `p`.
pub fn pick(p: &[f64], rng: &mut Pcg) -> usize {
    let u = f64::from(rng.unit());
    let mut acc = 0.0;
    for (i, q) in p.iter().enumerate() {
        acc += q;
        if u < acc {
            return i;
        }
    }
    p.len() - 1
}

/// Rows per class of `d`, over `classes` classes.
pub fn class_counts(d: &Dataset, classes: usize) -> Vec<u64> {
    let mut c = vec![0u64; classes];
    for y in &d.y {
        c[*y as usize] += 1;
    }
    c
}

/// What the nodes hold, fixed for the whole simulation.
pub struct Nodes {
    /// Each node's training rows (weighted).
    pub data: Vec<Dataset>,
    /// Each node's rows per class (what its updates claim).
    pub counts: Vec<Vec<u64>>,
    /// Version 0, the federation's start.
    pub v0: Mlp,
    /// The server's evaluation set (the robust setting's screen and gate), which no node has.
    pub server: Dataset,
    /// The backdoor's target class.
    pub target: u16,
    /// The Normal class.
    pub normal: u16,
}

/// Scores a model on data no node has.
pub trait Judge: Sync {
    /// The model's figures.
    fn score(&self, m: &Mlp) -> Score;
}

/// Every federated run and each node alone ([`Sim::run_all`]).
pub struct Runs {
    /// The robust setting's clip used.
    pub clip: f32,
    /// Each node trained alone for as many epochs as the federation ran.
    pub single: Vec<Score>,
    /// The federated runs, clean FedAvg first.
    pub runs: Vec<FedRun>,
}

/// One simulation: the settings, the nodes, the judge.
pub struct Sim<'a> {
    /// The settings.
    pub cfg: &'a SimConfig,
    /// The nodes.
    pub nodes: &'a Nodes,
    /// The scoring.
    pub judge: &'a dyn Judge,
}

impl Sim<'_> {
    fn local_cfg(&self, epochs: usize, seed: u64) -> TrainConfig {
        TrainConfig {
            hidden: self.cfg.hidden.clone(),
            epochs,
            learning_rate: self.cfg.learning_rate,
            seed,
            ..TrainConfig::default()
        }
    }

    /// The nodes' learning rate in round `r` (0-based).
    fn round_lr(&self, r: usize) -> f32 {
        if !self.cfg.lr_decay {
            return self.cfg.learning_rate;
        }
        let t = r as f32 / self.cfg.rounds.max(1) as f32;
        self.cfg.learning_rate * (0.1 + 0.9 * 0.5 * (1.0 + (std::f32::consts::PI * t).cos()))
    }

    /// Each node alone: fine-tuned from version 0 for as many epochs as the federation ran.
    pub fn single_nodes(&self) -> Vec<Score> {
        let idx: Vec<usize> = (0..self.nodes.data.len()).collect();
        let epochs = self.cfg.rounds * self.cfg.local_epochs;
        par_map(&idx, self.cfg.threads, |&n| {
            let mut m = self.nodes.v0.clone();
            weir_model::train::fit(
                &mut m,
                &self.nodes.data[n],
                &self.local_cfg(epochs, n as u64 + 7),
                |_| {},
            );
            self.judge.score(&m)
        })
    }

    /// One federated run through the real merge over a temporary registry.
    /// `clip`: the robust setting's bound (nodes clip to it, the merge clips to it and accepts
    /// up to 1.5×).
    pub fn federate(
        &self,
        name: &str,
        robust: bool,
        attack: Attack,
        clip: f32,
    ) -> Result<FedRun, String> {
        let started = Instant::now();
        let k = self.nodes.data.len();
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        let store = weir_store::LocalStore::new(dir.path());
        let reg = Registry::new(&store, None);
        reg.init(&self.nodes.v0, None).map_err(|e| e.to_string())?;
        let keys: Vec<SigningKey> = (0..k)
            .map(|n| {
                let mut seed = [0u8; 32];
                seed[..8].copy_from_slice(&(n as u64 + 1).to_le_bytes());
                SigningKey::from_seed(&format!("node-{n:02}"), seed)
            })
            .collect::<Result<_, _>>()
            .map_err(|e| e.to_string())?;
        for key in &keys {
            round::register_node(&store, &key.id, &key.public_hex())?;
        }
        let bad = match attack {
            Attack::None => 0,
            Attack::Backdoor => 1,
            _ => ((k as f32 * self.cfg.malicious).round() as usize).max(1),
        };
        let (aggregation, bound, node_clip) = if robust {
            // The merge function's default setting, at this clip.
            (
                Aggregation {
                    momentum: self.cfg.momentum,
                    rule: self.cfg.rule,
                    ..Aggregation::robust(clip)
                },
                clip * 1.5,
                clip,
            )
        } else {
            (Aggregation::default(), f32::MAX, f32::MAX)
        };
        let cfg = MergeConfig {
            aggregation: aggregation.clone(),
            bound,
            quorum: if attack == Attack::Absent { k - bad } else { k },
            deadline_s: u64::MAX,
            min_updates: 1,
            gate_margin: if robust && self.cfg.gate_margin >= 0.0 {
                self.cfg.gate_margin
            } else {
                1.0
            },
            mode: Mode::Sync,
        };
        if robust {
            store
                .put(round::EVAL_KEY, &round::encode_eval(&self.nodes.server))
                .map_err(|e| e.to_string())?;
        }
        let merger = Merger::new(&store, None, cfg).with_noise_seed(self.cfg.seed);
        // The last `bad` nodes are the attackers.
        let malicious = |n: usize| n >= k - bad;
        let mut run = FedRun {
            name: name.to_string(),
            aggregation: if robust {
                format!(
                    "{} + clip to the median norm (at most {clip}) + noise",
                    aggregation.rule
                )
            } else {
                "fedavg (no bound)".into()
            },
            attack: attack.name().into(),
            rounds: vec![self.judge.score(&self.nodes.v0)],
            published: 0,
            gated: 0,
            refused: Vec::new(),
            honest_norms: Vec::new(),
            seconds: 0.0,
        };
        for r in 0..self.cfg.rounds {
            let global = reg.current(None).map_err(|e| e.to_string())?;
            let p = global.pointer.clone();
            // With the attackers absent, only the honest nodes train and upload.
            let nodes: Vec<usize> = (0..k)
                .filter(|n| attack != Attack::Absent || !malicious(*n))
                .collect();
            let made = par_map(&nodes, self.cfg.threads, |&n| {
                let seed = self.cfg.seed ^ ((r as u64) << 20) ^ (n as u64) << 4;
                let mut data = self.nodes.data[n].clone();
                if malicious(n) {
                    poison_data(&mut data, attack, self.nodes.target, self.nodes.normal);
                }
                let mut local = global.model.clone();
                weir_model::train::fit(
                    &mut local,
                    &data,
                    &TrainConfig {
                        learning_rate: self.round_lr(r),
                        ..self.local_cfg(self.cfg.local_epochs, seed)
                    },
                    |_| {},
                );
                let mut delta =
                    params::sub(&params::flatten(&local), &params::flatten(&global.model));
                let honest_norm = params::norm(&delta);
                let prov = Provenance {
                    base_version: p.version,
                    round: p.round,
                    samples: self.nodes.counts[n].iter().sum(),
                    class_counts: self.nodes.counts[n].clone(),
                };
                let mut g = Gauss::new(seed ^ 0xabc);
                if malicious(n) {
                    // An attacker claims as many samples as the merge will believe.
                    let claim = aggregation.sample_cap;
                    let prov = Provenance {
                        samples: claim,
                        class_counts: claimed_counts(&self.nodes.counts[n], claim),
                        ..prov
                    };
                    match attack {
                        Attack::SignFlip => delta.iter_mut().for_each(|x| *x *= -10.0),
                        Attack::Noise => delta.iter_mut().for_each(|x| *x = g.draw()),
                        Attack::Backdoor => delta.iter_mut().for_each(|x| *x *= k as f32),
                        Attack::LabelFlip | Attack::None | Attack::Absent => {}
                    }
                    // The attacker knows the bound and fits under it.
                    params::clip(&mut delta, bound * 0.99);
                    let s = update::sign(
                        &keys[n],
                        &delta,
                        &prov,
                        node_clip,
                        None,
                        params::shapes(&global.model),
                    );
                    return (s, None);
                }
                params::clip(&mut delta, node_clip);
                let privacy = (self.cfg.dp_noise > 0.0 && robust).then(|| {
                    g.perturb(&mut delta, self.cfg.dp_noise * node_clip);
                    update::Privacy::of(self.cfg.dp_noise, 1e-5, self.cfg.rounds as u32)
                });
                let s = update::sign(
                    &keys[n],
                    &delta,
                    &prov,
                    node_clip,
                    privacy,
                    params::shapes(&global.model),
                );
                (s, Some(honest_norm))
            });
            for (s, norm) in &made {
                round::upload(&store, s).map_err(|e| e.to_string())?;
                if r == 0 {
                    run.honest_norms.extend(norm);
                }
            }
            let rep = merger.step(update::now_unix()).map_err(|e| e.to_string())?;
            for v in rep.judged.iter().filter(|v| !v.accepted) {
                let reason = v
                    .rejection
                    .as_ref()
                    .map_or(String::new(), |r| r.to_string());
                run.refused.push((p.round, v.node.clone(), reason));
            }
            for e in rep.closed.iter().flat_map(|c| &c.screened) {
                run.refused
                    .push((p.round, e.node.clone(), e.reason.clone()));
            }
            match rep.closed.as_ref().map(|c| c.outcome.as_str()) {
                Some("published") => run.published += 1,
                Some("gated") => run.gated += 1,
                _ => {}
            }
            let now = reg.current(None).map_err(|e| e.to_string())?;
            run.rounds.push(self.judge.score(&now.model));
        }
        run.seconds = started.elapsed().as_secs_f64();
        Ok(run)
    }

    /// Clean FedAvg and robust runs, each node alone, and every attack in the settings against
    /// both. `progress` hears what finished.
    pub fn run_all(&self, mut progress: impl FnMut(&str)) -> Result<Runs, String> {
        let single = self.single_nodes();
        progress("single nodes done");
        let mut runs = Vec::new();
        let mut plan = vec![("robust", true, Attack::None)];
        // The clean FedAvg run first: with no clip given, the robust setting's bound is twice the
        // median norm of the honest updates it saw in round 1 (what a server can observe).
        let plain = self.federate("fedavg", false, Attack::None, f32::MAX)?;
        let clip = if self.cfg.clip > 0.0 {
            self.cfg.clip
        } else {
            let mut n = plain.honest_norms.clone();
            n.sort_by(f32::total_cmp);
            2.0 * n.get(n.len() / 2).copied().unwrap_or(1.0)
        };
        progress(&format!(
            "fedavg / none: macro-F1 {:.3} ({:.0} s); robust clip {clip:.2}",
            plain.last().macro_f1,
            plain.seconds
        ));
        runs.push(plain);
        for &a in &self.cfg.attacks {
            plan.push(("fedavg", false, a));
            plan.push(("robust", true, a));
        }
        for (name, robust, attack) in plan {
            let run = self.federate(name, robust, attack, clip)?;
            let last = run.last();
            progress(&format!(
                "{name} / {}: macro-F1 {:.3}, detected {}/{}, backdoor {:.1}% ({:.0} s)",
                attack.name(),
                last.macro_f1,
                last.detected,
                last.attack_captures,
                100.0 * last.backdoor,
                run.seconds
            ));
            runs.push(run);
        }
        Ok(Runs { clip, single, runs })
    }
}

/// Class counts scaled to sum to `total` (what a node lying about its size reports).
fn claimed_counts(counts: &[u64], total: u64) -> Vec<u64> {
    let sum = counts.iter().sum::<u64>().max(1);
    let mut out: Vec<u64> = counts.iter().map(|c| c * total / sum).collect();
    let short = total - out.iter().sum::<u64>();
    if let Some(m) = out.iter_mut().max() {
        *m += short;
    }
    out
}

/// What an attacker does to its own data before training.
fn poison_data(d: &mut Dataset, attack: Attack, target: u16, normal: u16) {
    match attack {
        Attack::LabelFlip => d.y.iter_mut().for_each(|y| *y = normal),
        Attack::Backdoor => {
            for y in d.y.iter_mut().filter(|y| **y == target) {
                *y = normal;
            }
        }
        _ => {}
    }
}
