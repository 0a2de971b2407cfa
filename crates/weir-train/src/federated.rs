//! `weir fl simulate`: federated learning over the labelled data, run through the same code
//! as the real thing (node updates made and signed by `weir_fl::update`, uploaded to a
//! registry in a temporary directory, judged, combined, gated and published by
//! `weir_fl::round::Merger`), against each node alone and centralized training on the union.
//!
//! - **Held out**: one capture in five (capture-level folds) and one CIC-IDS2017 chunk in five;
//!   no node ever has them. Scores on them: macro-F1 over flows (the classes present) and, per
//!   held-out capture, whether the model alone raised an alert of the capture's class or family
//!   (probability ≥ 0.5, at least two packets: `weir analyze`'s rule without detectors).
//! - **Nodes**: the rest is cut into units (a capture whole, or 500 CIC rows of one class) and
//!   each class's units are dealt to the K nodes by proportions drawn from Dirichlet(α), so
//!   nodes see different classes in different amounts (non-IID), split by source capture.
//! - **Version 0**: random weights over the normalization of the nodes' data pooled (feature
//!   means and spreads, which nodes can share as sums before the first round). It stays fixed
//!   across rounds.
//! - **Attacks** (a share of the nodes, registered and signing properly: compromised, not
//!   strangers): sign flip ×10, label flip (attack → Normal), Gaussian noise, and a
//!   model-replacement backdoor from one node (Bagdasaryan et al. 2020's semantic backdoor:
//!   the node relabels one attack class it has, its largest, as Normal and boosts its update
//!   by K to replace the average; success = the share of that class's held-out flows the
//!   global model then calls Normal, next to the same share for the clean run). Attackers know the merge's norm bound and
//!   scale their update to fit under it, the stronger test.

use std::time::Instant;

use serde::Serialize;
use weir_fl::aggregate::Aggregation;
use weir_fl::params::{self, Gauss};
use weir_fl::registry::Registry;
use weir_fl::round::{self, MergeConfig, Merger, Mode};
use weir_fl::update::{self, Provenance, SigningKey};
use weir_flow::N_FEATURES;
use weir_model::train::{Dataset, Pcg, TrainConfig};
use weir_model::Mlp;
use weir_pipeline::Store;

use crate::data::{FlowRows, LabelledCapture};
use crate::eval::Evaluation;
use crate::{
    class_index, classify_in_rust, dataset, folds, Corpus, Decider, Recipe, CLASSES, NORMAL,
};

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
    pub rule: weir_fl::Rule,
    /// The robust setting's gate: the candidate may fall at most this far below the current
    /// model on the server's evaluation set (macro-F1, 0-1; negative: no gate).
    pub gate_margin: f64,
    /// The poisoning scenarios to run (each against FedAvg and the robust setting).
    pub attacks: Vec<Attack>,
    /// The robust clip actually used (set by [`simulate`]).
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

/// Everything `weir fl simulate` reports.
#[derive(Clone, Debug, Serialize)]
pub struct SimReport {
    /// The settings.
    pub config: SimConfig,
    /// Rows per node, and the classes each has.
    pub nodes: Vec<(usize, Vec<String>)>,
    /// Held-out rows, attack captures, benign captures.
    pub held_out: (usize, usize, usize),
    /// The backdoor's target class, and its held-out flows.
    pub backdoor_target: (String, usize),
    /// Version 0's score.
    pub initial: Score,
    /// Each node trained alone for as many epochs as the federation ran.
    pub single: Vec<Score>,
    /// Centralized training on the union of the nodes' data.
    pub central: Score,
    /// The federated runs.
    pub runs: Vec<FedRun>,
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

/// The held-out side.
struct HeldOut {
    data: Dataset,
    captures: Vec<LabelledCapture>,
    /// Rows of the backdoor's target class.
    target_rows: Dataset,
}

/// The simulation's fixed inputs.
pub struct Setup {
    cfg: SimConfig,
    node_data: Vec<Dataset>,
    node_counts: Vec<Vec<u64>>,
    union: Dataset,
    held: HeldOut,
    target: u16,
    v0: Mlp,
    recipe: Recipe,
    /// The server's evaluation set (the robust setting's screen and gate): one CIC-IDS2017
    /// chunk in ten, which neither the nodes nor the held-out side have.
    server: Dataset,
}

fn cic_subset(cic: &FlowRows, rows: &[usize]) -> FlowRows {
    let mut x = Vec::with_capacity(rows.len() * N_FEATURES);
    let mut y = Vec::with_capacity(rows.len());
    for &r in rows {
        x.extend_from_slice(&cic.x[r * N_FEATURES..(r + 1) * N_FEATURES]);
        y.push(cic.y[r]);
    }
    FlowRows {
        x,
        y,
        missing: cic.missing.clone(),
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
fn dirichlet(k: usize, a: f64, rng: &mut Pcg, g: &mut Gauss) -> Vec<f64> {
    let v: Vec<f64> = (0..k).map(|_| gamma(a, rng, g)).collect();
    let s: f64 = v.iter().sum::<f64>().max(1e-12);
    v.iter().map(|x| x / s).collect()
}

fn pick(p: &[f64], rng: &mut Pcg) -> usize {
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

fn class_counts(d: &Dataset) -> Vec<u64> {
    let mut c = vec![0u64; CLASSES.len()];
    for y in &d.y {
        c[*y as usize] += 1;
    }
    c
}

fn unweighted(rows: impl Iterator<Item = ([f32; N_FEATURES], u16)>) -> Dataset {
    let mut d = Dataset::new(N_FEATURES);
    for (r, y) in rows {
        d.push(&r, y, 1.0);
    }
    d
}

impl Setup {
    /// Split the corpus: held-out captures and CIC chunks, the rest dealt to the nodes.
    pub fn new(corpus: &Corpus, cfg: SimConfig) -> Setup {
        let mut rng = Pcg::new(cfg.seed ^ 0xfed);
        let mut g = Gauss::new(cfg.seed ^ 0xd1c);
        let k = cfg.nodes.max(1);
        let fold = folds(&corpus.captures, 5);
        // Units: (class, capture index) or (class, CIC rows).
        let mut node_caps: Vec<Vec<usize>> = vec![Vec::new(); k];
        let mut node_cic: Vec<Vec<usize>> = vec![Vec::new(); k];
        let mut held_caps = Vec::new();
        let mut held_cic = Vec::new();
        let mut server_cic = Vec::new();
        let mut by_class: Vec<Vec<(Option<usize>, Vec<usize>)>> = vec![Vec::new(); CLASSES.len()];
        let normal = class_index(NORMAL).unwrap_or(0);
        for (i, c) in corpus.captures.iter().enumerate() {
            if fold[i] == 0 {
                held_caps.push(i);
                continue;
            }
            let class = class_index(&c.entry.class).unwrap_or(normal);
            by_class[class as usize].push((Some(i), Vec::new()));
        }
        for class in 0..CLASSES.len() as u16 {
            let rows: Vec<usize> = (0..corpus.cic.y.len())
                .filter(|r| corpus.cic.y[*r] == class)
                .collect();
            for (j, chunk) in rows.chunks(500).enumerate() {
                if j % 5 == 0 {
                    held_cic.extend_from_slice(chunk);
                } else if j % 10 == 3 {
                    server_cic.extend_from_slice(chunk);
                } else {
                    by_class[class as usize].push((None, chunk.to_vec()));
                }
            }
        }
        for units in by_class {
            if units.is_empty() {
                continue;
            }
            let p = dirichlet(k, cfg.alpha, &mut rng, &mut g);
            for (cap, rows) in units {
                let n = pick(&p, &mut rng);
                match cap {
                    Some(i) => node_caps[n].push(i),
                    None => node_cic[n].extend(rows),
                }
            }
        }
        let recipe = Recipe {
            synthetic_weight: 0.0,
            train: TrainConfig {
                hidden: cfg.hidden.clone(),
                epochs: cfg.central_epochs,
                seed: cfg.seed,
                ..TrainConfig::default()
            },
            ..Recipe::default()
        };
        let node_corpus = |caps: &[usize], cic: &[usize]| Corpus {
            captures: caps.iter().map(|i| corpus.captures[*i].clone()).collect(),
            cic: cic_subset(&corpus.cic, cic),
            synthetic: Vec::new(),
        };
        let mut node_data: Vec<Dataset> = (0..k)
            .map(|n| dataset(&node_corpus(&node_caps[n], &node_cic[n]), |_| true, &recipe))
            .collect();
        let all_caps: Vec<usize> = node_caps.iter().flatten().copied().collect();
        let all_cic: Vec<usize> = node_cic.iter().flatten().copied().collect();
        let union = dataset(&node_corpus(&all_caps, &all_cic), |_| true, &recipe);
        // Each node weighted its own rows so its classes balance; rescale so that each class
        // carries, over all nodes, the weight centralized training gives it (nodes share their
        // per-class weight totals, like the normalization): the federation then optimizes
        // the same objective as centralized training.
        let totals = |d: &Dataset| {
            let mut t = vec![0f64; CLASSES.len()];
            for (y, w) in d.y.iter().zip(&d.weight) {
                t[*y as usize] += f64::from(*w);
            }
            t
        };
        let want = totals(&union);
        let mut have = vec![0f64; CLASSES.len()];
        for d in &node_data {
            for (h, t) in have.iter_mut().zip(totals(d)) {
                *h += t;
            }
        }
        for d in &mut node_data {
            for (y, w) in d.y.iter().zip(d.weight.iter_mut()) {
                let c = *y as usize;
                if have[c] > 0.0 {
                    *w = (f64::from(*w) * want[c] / have[c]) as f32;
                }
            }
        }
        let node_counts = node_data.iter().map(class_counts).collect();
        // Held out, unweighted.
        let held_captures: Vec<LabelledCapture> = held_caps
            .iter()
            .map(|i| corpus.captures[*i].clone())
            .collect();
        let cap_rows = held_captures.iter().flat_map(|c| {
            c.flows
                .iter()
                .zip(&c.labels)
                .map(|(f, l)| (crate::data::feature_row(f), *l))
        });
        let cic_row = |&r: &usize| {
            let mut row = [0f32; N_FEATURES];
            row.copy_from_slice(&corpus.cic.x[r * N_FEATURES..(r + 1) * N_FEATURES]);
            (row, corpus.cic.y[r])
        };
        let data = unweighted(cap_rows.chain(held_cic.iter().map(cic_row)));
        let server = unweighted(server_cic.iter().map(cic_row));
        // The backdoor's target: the attack class the last node (an attacker) has most of.
        let last = node_data.last().map(class_counts).unwrap_or_default();
        let target = (0..CLASSES.len())
            .filter(|c| *c != normal as usize)
            .max_by_key(|c| last.get(*c).copied().unwrap_or(0))
            .unwrap_or(0) as u16;
        let mut target_rows = Dataset::new(N_FEATURES);
        for i in 0..data.len() {
            if data.y[i] == target {
                target_rows.push(data.row(i), target, 1.0);
            }
        }
        // Version 0: random weights over the normalization of the nodes' data taken together
        // (feature means and spreads: what nodes can pool as sums before the first round;
        // centralized training computes the same from the same rows).
        let v0 = weir_model::train::init(crate::model_info(), &union, &cfg.hidden, cfg.seed);
        Setup {
            cfg,
            node_data,
            node_counts,
            union,
            held: HeldOut {
                data,
                captures: held_captures,
                target_rows,
            },
            target,
            v0,
            recipe,
            server,
        }
    }

    /// Score a model on the held-out side.
    pub fn score(&self, m: &Mlp) -> Score {
        let macro_f1 = round::macro_f1(m, &self.held.data);
        let mut e = Evaluation::at(0.5);
        for c in &self.held.captures {
            let (p, q, a) = classify_in_rust(m, c);
            crate::add_capture(&mut e, c, &p, &q, &a, &[], &[], Decider::Model);
        }
        let (detected, attack_captures) = e.found();
        let (benign_alerted, benign_captures) = e.benign_captures_alerted();
        Score {
            macro_f1,
            detected,
            attack_captures,
            benign_alerted,
            benign_captures,
            backdoor: self.backdoor_rate(m),
        }
    }

    fn backdoor_rate(&self, m: &Mlp) -> f64 {
        let normal = class_index(NORMAL).unwrap_or(0);
        let d = &self.held.target_rows;
        if d.is_empty() {
            return 0.0;
        }
        let p = round::predict(m, d);
        p.iter().filter(|c| **c == normal).count() as f64 / p.len() as f64
    }

    /// The backdoor's target class.
    pub fn target(&self) -> &'static str {
        CLASSES[self.target as usize]
    }

    /// Rows per node and their classes.
    pub fn node_summary(&self) -> Vec<(usize, Vec<String>)> {
        self.node_counts
            .iter()
            .map(|c| {
                (
                    c.iter().sum::<u64>() as usize,
                    c.iter()
                        .enumerate()
                        .filter(|(_, n)| **n > 0)
                        .map(|(i, _)| CLASSES[i].to_string())
                        .collect(),
                )
            })
            .collect()
    }

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
        let idx: Vec<usize> = (0..self.node_data.len()).collect();
        let epochs = self.cfg.rounds * self.cfg.local_epochs;
        crate::par_map(&idx, self.cfg.threads, |&n| {
            let mut m = self.v0.clone();
            weir_model::train::fit(
                &mut m,
                &self.node_data[n],
                &self.local_cfg(epochs, n as u64 + 7),
                |_| {},
            );
            self.score(&m)
        })
    }

    /// Centralized training on the union (as `weir train` does, from scratch).
    pub fn central(&self) -> (Mlp, Score) {
        let m = crate::train(&self.union, &self.recipe, |_| {});
        let s = self.score(&m);
        (m, s)
    }

    /// Version 0's score.
    pub fn initial(&self) -> Score {
        self.score(&self.v0)
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
        let k = self.node_data.len();
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        let store = weir_pipeline::LocalStore::new(dir.path());
        let reg = Registry::new(&store, None);
        reg.init(&self.v0, None).map_err(|e| e.to_string())?;
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
                .put(round::EVAL_KEY, &round::encode_eval(&self.server))
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
            rounds: vec![self.score(&self.v0)],
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
            let made = crate::par_map(&nodes, self.cfg.threads, |&n| {
                let seed = self.cfg.seed ^ ((r as u64) << 20) ^ (n as u64) << 4;
                let mut data = self.node_data[n].clone();
                if malicious(n) {
                    poison_data(&mut data, attack, self.target);
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
                    samples: self.node_counts[n].iter().sum(),
                    class_counts: self.node_counts[n].clone(),
                };
                let mut g = Gauss::new(seed ^ 0xabc);
                if malicious(n) {
                    // An attacker claims as many samples as the merge will believe.
                    let claim = aggregation.sample_cap;
                    let prov = Provenance {
                        samples: claim,
                        class_counts: claimed_counts(&self.node_counts[n], claim),
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
            run.rounds.push(self.score(&now.model));
        }
        run.seconds = started.elapsed().as_secs_f64();
        Ok(run)
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
fn poison_data(d: &mut Dataset, attack: Attack, target: u16) {
    let normal = class_index(NORMAL).unwrap_or(0);
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

/// The whole simulation: clean FedAvg and robust runs, each node alone, centralized, and
/// (when asked) every attack against both settings. `progress` hears what finished.
pub fn simulate(setup: &Setup, mut progress: impl FnMut(&str)) -> Result<SimReport, String> {
    let initial = setup.initial();
    let (_, central) = setup.central();
    progress(&format!("centralized: macro-F1 {:.3}", central.macro_f1));
    let single = setup.single_nodes();
    progress("single nodes done");
    let mut runs = Vec::new();
    let mut plan = vec![("robust", true, Attack::None)];
    // The clean FedAvg run first: with no clip given, the robust setting's bound is twice the
    // median norm of the honest updates it saw in round 1 (what a server can observe).
    let plain = setup.federate("fedavg", false, Attack::None, f32::MAX)?;
    let clip = if setup.cfg.clip > 0.0 {
        setup.cfg.clip
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
    for &a in &setup.cfg.attacks {
        plan.push(("fedavg", false, a));
        plan.push(("robust", true, a));
    }
    for (name, robust, attack) in plan {
        let run = setup.federate(name, robust, attack, clip)?;
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
    let mut config = setup.cfg.clone();
    config.clip_used = clip;
    Ok(SimReport {
        config,
        nodes: setup.node_summary(),
        held_out: (
            setup.held.data.len(),
            initial.attack_captures,
            initial.benign_captures,
        ),
        backdoor_target: (setup.target().to_string(), setup.held.target_rows.len()),
        initial,
        single,
        central,
        runs,
    })
}

impl SimReport {
    fn run(&self, name: &str, attack: &str) -> Option<&FedRun> {
        self.runs
            .iter()
            .find(|r| r.name == name && r.attack == attack)
    }

    /// The report as Markdown: the per-round table, the comparison, the poisoning table.
    pub fn markdown(&self) -> String {
        use std::fmt::Write;
        let pct = |x: f64| format!("{:.1}", 100.0 * x);
        let det = |s: &Score| format!("{}/{}", s.detected, s.attack_captures);
        let mut o = String::new();
        let c = &self.config;
        let _ = writeln!(
            o,
            "{} nodes, Dirichlet({}) over classes, split by source capture; {} rounds of {} local epochs; hidden {:?}; held out: {} flows, {} attack and {} benign captures no node has.\n",
            c.nodes, c.alpha, c.rounds, c.local_epochs, c.hidden, self.held_out.0, self.held_out.1, self.held_out.2
        );
        let _ = writeln!(o, "| node | rows | classes |\n|---|---:|---|");
        for (i, (rows, classes)) in self.nodes.iter().enumerate() {
            let _ = writeln!(o, "| {i} | {rows} | {} |", classes.join(", "));
        }
        let clean_f = self.run("fedavg", Attack::None.name());
        let clean_r = self.run("robust", Attack::None.name());
        let _ = writeln!(
            o,
            "\n### Per round (held-out macro-F1 %, attack captures detected)\n\n| round | FedAvg F1 | FedAvg detected | robust F1 | robust detected |\n|---:|---:|---:|---:|---:|"
        );
        if let (Some(f), Some(r)) = (clean_f, clean_r) {
            for (i, (a, b)) in f.rounds.iter().zip(&r.rounds).enumerate() {
                let _ = writeln!(
                    o,
                    "| {i} | {} | {} | {} | {} |",
                    pct(a.macro_f1),
                    det(a),
                    pct(b.macro_f1),
                    det(b)
                );
            }
        }
        let n = self.single.len().max(1) as f64;
        let mean_f1 = self.single.iter().map(|s| s.macro_f1).sum::<f64>() / n;
        let mean_det = self.single.iter().map(|s| s.detection()).sum::<f64>() / n;
        let best = self
            .single
            .iter()
            .max_by(|a, b| a.macro_f1.total_cmp(&b.macro_f1))
            .copied()
            .unwrap_or_default();
        let _ = writeln!(
            o,
            "\n### Against each node alone and centralized training\n\n| model | macro-F1 % | attack captures detected | benign captures alerted |\n|---|---:|---:|---:|"
        );
        let row = |o: &mut String, name: &str, s: &Score| {
            let _ = writeln!(
                o,
                "| {name} | {} | {} | {}/{} |",
                pct(s.macro_f1),
                det(s),
                s.benign_alerted,
                s.benign_captures
            );
        };
        row(&mut o, "version 0 (random weights)", &self.initial);
        let _ = writeln!(
            o,
            "| single node, mean of {} | {} | {:.1}% | |",
            self.single.len(),
            pct(mean_f1),
            100.0 * mean_det
        );
        row(&mut o, "single node, best", &best);
        if let Some(f) = clean_f {
            row(&mut o, "federated, FedAvg", &f.last());
        }
        if let Some(r) = clean_r {
            row(&mut o, "federated, robust", &r.last());
        }
        row(
            &mut o,
            "centralized `weir train` on the union",
            &self.central,
        );
        if self.runs.len() > 2 {
            let _ = writeln!(
                o,
                "\n### Poisoning ({}% of nodes malicious; the backdoor from one node, target {} ({} held-out flows): backdoor % = the share of them called Normal)\n\n| attack | FedAvg F1 % | FedAvg detected | FedAvg backdoor % | robust F1 % | robust detected | robust backdoor % | refused (robust) |\n|---|---:|---:|---:|---:|---:|---:|---:|",
                (100.0 * c.malicious).round(),
                self.backdoor_target.0,
                self.backdoor_target.1
            );
            for a in std::iter::once(Attack::None).chain(Attack::ALL) {
                if let (Some(f), Some(r)) =
                    (self.run("fedavg", a.name()), self.run("robust", a.name()))
                {
                    let (x, y) = (f.last(), r.last());
                    let _ = writeln!(
                        o,
                        "| {} | {} | {} | {} | {} | {} | {} | {} |",
                        a.name(),
                        pct(x.macro_f1),
                        det(&x),
                        pct(x.backdoor),
                        pct(y.macro_f1),
                        det(&y),
                        pct(y.backdoor),
                        r.refused.len()
                    );
                }
            }
        }
        if let Some(r) = clean_r {
            let mut norms = r.honest_norms.clone();
            norms.sort_by(f32::total_cmp);
            let _ = writeln!(
                o,
                "\nHonest updates' norms in round 1 (before clipping at {:.2}): {:?}",
                c.clip_used,
                norms
                    .iter()
                    .map(|x| (x * 100.0).round() / 100.0)
                    .collect::<Vec<_>>()
            );
        }
        o
    }
}
