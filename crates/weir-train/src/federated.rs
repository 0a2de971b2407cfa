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

use serde::Serialize;
use weir_fl::params::Gauss;
use weir_fl::round;
use weir_fl::sim::{class_counts, dirichlet, pick, Judge, Nodes, Sim};
pub use weir_fl::sim::{Attack, FedRun, Score, SimConfig};
use weir_flow::N_FEATURES;
use weir_model::train::{Dataset, Pcg, TrainConfig};
use weir_model::Mlp;

use crate::data::{FlowRows, LabelledCapture};
use crate::eval::Evaluation;
use crate::{
    class_index, classify_in_rust, dataset, folds, Corpus, Decider, Recipe, CLASSES, NORMAL,
};

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
    /// The nodes' data, version 0, the server's evaluation set (one CIC-IDS2017 chunk in ten,
    /// which neither the nodes nor the held-out side have) and the backdoor's target.
    nodes: Nodes,
    union: Dataset,
    held: HeldOut,
    recipe: Recipe,
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
        let node_counts = node_data
            .iter()
            .map(|d| class_counts(d, CLASSES.len()))
            .collect();
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
        let last = node_data
            .last()
            .map(|d| class_counts(d, CLASSES.len()))
            .unwrap_or_default();
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
            nodes: Nodes {
                data: node_data,
                counts: node_counts,
                v0,
                server,
                target,
                normal,
            },
            union,
            held: HeldOut {
                data,
                captures: held_captures,
                target_rows,
            },
            recipe,
        }
    }

    /// Score a model on the held-out side.
    pub fn score(&self, m: &Mlp) -> Score {
        Judge::score(self, m)
    }

    fn backdoor_rate(&self, m: &Mlp) -> f64 {
        let normal = self.nodes.normal;
        let d = &self.held.target_rows;
        if d.is_empty() {
            return 0.0;
        }
        let p = round::predict(m, d);
        p.iter().filter(|c| **c == normal).count() as f64 / p.len() as f64
    }

    /// The backdoor's target class.
    pub fn target(&self) -> &'static str {
        CLASSES[self.nodes.target as usize]
    }

    /// Rows per node and their classes.
    pub fn node_summary(&self) -> Vec<(usize, Vec<String>)> {
        self.nodes
            .counts
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

    /// Centralized training on the union (as `weir train` does, from scratch).
    pub fn central(&self) -> (Mlp, Score) {
        let m = crate::train(&self.union, &self.recipe, |_| {});
        let s = self.score(&m);
        (m, s)
    }

    /// The federation over these nodes, scored on the held-out side.
    pub fn sim(&self) -> Sim<'_> {
        Sim {
            cfg: &self.cfg,
            nodes: &self.nodes,
            judge: self,
        }
    }
}

impl Judge for Setup {
    /// Macro-F1 over held-out flows and, per held-out capture, the model's alerts by
    /// `weir analyze`'s rule without detectors.
    fn score(&self, m: &Mlp) -> Score {
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
}

/// The whole simulation: clean FedAvg and robust runs, each node alone, centralized, and
/// (when asked) every attack against both settings. `progress` hears what finished.
pub fn simulate(setup: &Setup, mut progress: impl FnMut(&str)) -> Result<SimReport, String> {
    let initial = setup.score(&setup.nodes.v0);
    let (_, central) = setup.central();
    progress(&format!("centralized: macro-F1 {:.3}", central.macro_f1));
    let weir_fl::sim::Runs { clip, single, runs } = setup.sim().run_all(progress)?;
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
