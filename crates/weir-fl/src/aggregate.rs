//! Combining accepted updates into one step of the global model.
//!
//! - **FedAvg**, weighted by sample counts capped at `sample_cap` (a node's count is its own
//!   claim: uncapped, one node saying "a billion" would be the whole average).
//! - **Coordinate-wise median** and **trimmed mean** (drop the `trim` share of the highest and
//!   lowest values per coordinate): robust to a minority of arbitrary updates.
//! - **Server-side clipping** of each update before combining (bounds any one node's pull:
//!   the standard defence against model replacement), **Gaussian noise** on the result
//!   (σ = `noise_multiplier × server_clip / n`, as DP-FedAvg adds it) and **server momentum**
//!   (FedAvgM: v ← β v + Δ, step v).
//! - **Staleness**: in asynchronous mode an update made from an older model counts
//!   `1 / √(1 + staleness)` of its weight.

use serde::{Deserialize, Serialize};

use crate::params;
use crate::screen::Screen;

/// How updates are combined.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "rule", rename_all = "snake_case")]
pub enum Rule {
    /// Sample-weighted mean (counts capped).
    FedAvg,
    /// Coordinate-wise median (unweighted).
    Median,
    /// Coordinate-wise mean after dropping the `trim` share at each end (unweighted).
    TrimmedMean {
        /// Share dropped at each end, 0 ≤ trim < 0.5.
        trim: f32,
    },
}

impl std::str::FromStr for Rule {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "fedavg" => Ok(Rule::FedAvg),
            "median" => Ok(Rule::Median),
            _ => match s.strip_prefix("trimmed") {
                Some("") | Some("-mean") => Ok(Rule::TrimmedMean { trim: 0.2 }),
                Some(rest) => rest
                    .trim_start_matches([':', '-', '='])
                    .parse::<f32>()
                    .ok()
                    .filter(|t| (0.0..0.5).contains(t))
                    .map(|trim| Rule::TrimmedMean { trim })
                    .ok_or_else(|| {
                        format!("{s:?}: the trim share must be in [0, 0.5), e.g. trimmed:0.2")
                    }),
                None => Err(format!(
                    "unknown aggregation {s:?}: use fedavg, median or trimmed[:SHARE]"
                )),
            },
        }
    }
}

impl std::fmt::Display for Rule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Rule::FedAvg => write!(f, "fedavg"),
            Rule::Median => write!(f, "median"),
            Rule::TrimmedMean { trim } => write!(f, "trimmed:{trim}"),
        }
    }
}

/// The aggregation's settings.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Aggregation {
    /// How updates are combined.
    pub rule: Rule,
    /// A node's sample count counts at most this much (FedAvg).
    pub sample_cap: u64,
    /// Clip each update to this L2 norm before combining (`None`: as they came, within the
    /// verification bound).
    pub server_clip: Option<f32>,
    /// Clip each update to the median norm of the round's updates (and `server_clip`), as
    /// FLAME does: a minority cannot pull harder than a typical honest node.
    #[serde(default)]
    pub clip_to_median: bool,
    /// Gaussian noise on the combined update, as a multiple of `server_clip / n` (needs
    /// `server_clip`).
    pub noise_multiplier: f32,
    /// Server momentum β (0: none).
    pub momentum: f32,
    /// Server learning rate: the global model moves by this times the combined update.
    pub server_lr: f32,
    /// Leave out updates that point away from the server's reference update on its
    /// evaluation set (when the registry has one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub screen: Option<Screen>,
}

impl Default for Aggregation {
    fn default() -> Self {
        Aggregation {
            rule: Rule::FedAvg,
            sample_cap: 20_000,
            server_clip: None,
            clip_to_median: false,
            noise_multiplier: 0.0,
            momentum: 0.0,
            server_lr: 1.0,
            screen: None,
        }
    }
}

impl Aggregation {
    /// The robust setting the merge function defaults to: updates screened against the
    /// server's reference, then a trimmed mean over updates clipped at `clip` (and the
    /// round's median norm), with a little noise.
    pub fn robust(clip: f32) -> Self {
        Aggregation {
            rule: Rule::TrimmedMean { trim: 0.2 },
            server_clip: Some(clip),
            clip_to_median: true,
            noise_multiplier: 0.01,
            screen: Some(Screen::default()),
            ..Aggregation::default()
        }
    }
}

/// One accepted update as the aggregation sees it.
#[derive(Clone, Copy, Debug)]
pub struct Contribution<'a> {
    /// Δ.
    pub delta: &'a [f32],
    /// Claimed sample count.
    pub samples: u64,
    /// Versions between its base and the current model (0 in synchronous rounds).
    pub staleness: u64,
}

/// How many values a trimmed mean drops at each end of `k`: the `trim` share rounded up (at
/// least one whenever `trim > 0` and there are three or more, so the default quorum of three
/// is a median, not a plain mean), always keeping at least one value.
pub fn trimmed(k: usize, trim: f32) -> usize {
    if trim <= 0.0 || k < 3 {
        return 0;
    }
    // Less a hair, so a share that is a whole number of values (5 × 0.2) is not rounded up
    // past it by f32's 0.2 being a little over 0.2.
    let cut = (k as f64 * f64::from(trim) - 1e-6).ceil().max(1.0) as usize;
    cut.min((k - 1) / 2)
}

/// The combined update (before momentum and the server learning rate), or `None` without
/// contributions. `noise` draws the server noise.
pub fn combine(
    cfg: &Aggregation,
    updates: &[Contribution<'_>],
    noise: &mut params::Gauss,
) -> Option<Vec<f32>> {
    let first = updates.first()?;
    let n = first.delta.len();
    // Every update has the model's length (the merge checks each before it gets here).
    if updates.iter().any(|u| u.delta.len() != n) {
        return None;
    }
    let bound = clip_bound(cfg, updates);
    let clipped: Vec<Vec<f32>> = updates
        .iter()
        .map(|u| {
            let mut d = u.delta.to_vec();
            if let Some(c) = bound {
                params::clip(&mut d, c);
            }
            d
        })
        .collect();
    let stale = |u: &Contribution<'_>| 1.0 / (1.0 + u.staleness as f64).sqrt();
    let mut out = vec![0f32; n];
    match cfg.rule {
        Rule::FedAvg => {
            let w: Vec<f64> = updates
                .iter()
                .map(|u| u.samples.clamp(1, cfg.sample_cap.max(1)) as f64 * stale(u))
                .collect();
            let total: f64 = w.iter().sum();
            for (d, w) in clipped.iter().zip(&w) {
                for (o, x) in out.iter_mut().zip(d) {
                    *o += (f64::from(*x) * w / total) as f32;
                }
            }
        }
        Rule::Median | Rule::TrimmedMean { .. } => {
            let k = clipped.len();
            let cut = match cfg.rule {
                Rule::TrimmedMean { trim } => trimmed(k, trim),
                _ => 0,
            };
            let mut col = vec![0f32; k];
            for (j, o) in out.iter_mut().enumerate() {
                for (c, d) in col.iter_mut().zip(&clipped) {
                    *c = d[j];
                }
                col.sort_unstable_by(f32::total_cmp);
                *o = if cfg.rule == Rule::Median {
                    if k % 2 == 1 {
                        col[k / 2]
                    } else {
                        0.5 * (col[k / 2 - 1] + col[k / 2])
                    }
                } else {
                    let kept = &col[cut..k - cut];
                    kept.iter().sum::<f32>() / kept.len() as f32
                };
            }
        }
    }
    if let Some(c) = bound {
        noise.perturb(&mut out, cfg.noise_multiplier * c / updates.len() as f32);
    }
    Some(out)
}

/// The norm each update is clipped to: `server_clip`, lowered to the round's median norm
/// when `clip_to_median`; `None` when neither applies.
pub fn clip_bound(cfg: &Aggregation, updates: &[Contribution<'_>]) -> Option<f32> {
    let median = cfg.clip_to_median.then(|| {
        let mut n: Vec<f32> = updates.iter().map(|u| params::norm(u.delta)).collect();
        n.sort_by(f32::total_cmp);
        n.get(n.len() / 2).copied().unwrap_or(0.0)
    });
    match (cfg.server_clip, median) {
        (Some(c), Some(m)) => Some(c.min(m)),
        (c, m) => c.or(m),
    }
}

/// Apply a combined update to the global parameters with momentum: returns the new
/// parameters and updates `velocity` (empty = no momentum yet).
pub fn step(
    cfg: &Aggregation,
    global: &[f32],
    update: &[f32],
    velocity: &mut Vec<f32>,
) -> Vec<f32> {
    let v: Vec<f32> = if cfg.momentum > 0.0 && velocity.len() == update.len() {
        velocity
            .iter()
            .zip(update)
            .map(|(v, u)| cfg.momentum * v + u)
            .collect()
    } else {
        update.to_vec()
    };
    *velocity = v;
    global
        .iter()
        .zip(velocity.iter())
        .map(|(w, v)| w + cfg.server_lr * v)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(delta: &[f32], samples: u64) -> Contribution<'_> {
        Contribution {
            delta,
            samples,
            staleness: 0,
        }
    }

    #[test]
    fn fedavg_weights_by_capped_samples() {
        let a = [1.0, 0.0];
        let b = [0.0, 1.0];
        let mut g = params::Gauss::new(1);
        let cfg = Aggregation {
            sample_cap: 300,
            ..Aggregation::default()
        };
        let out = combine(&cfg, &[c(&a, 100), c(&b, 300)], &mut g).unwrap();
        assert_eq!(out, vec![0.25, 0.75]);
        // A node claiming a billion samples counts as the cap.
        let out = combine(&cfg, &[c(&a, 300), c(&b, 1_000_000_000)], &mut g).unwrap();
        assert_eq!(out, vec![0.5, 0.5]);
    }

    #[test]
    fn median_and_trimmed_mean_ignore_a_wild_minority() {
        let honest: Vec<[f32; 2]> = vec![[1.0, 1.0], [1.1, 0.9], [0.9, 1.1], [1.0, 1.05]];
        let wild = [-1000.0, 1000.0];
        let mut all: Vec<Contribution<'_>> = honest.iter().map(|d| c(d, 10)).collect();
        all.push(c(&wild, 10));
        let mut g = params::Gauss::new(1);
        let med = combine(
            &Aggregation {
                rule: Rule::Median,
                ..Aggregation::default()
            },
            &all,
            &mut g,
        )
        .unwrap();
        assert_eq!(med, vec![1.0, 1.05]);
        let tm = combine(
            &Aggregation {
                rule: Rule::TrimmedMean { trim: 0.2 },
                ..Aggregation::default()
            },
            &all,
            &mut g,
        )
        .unwrap();
        assert!(
            (tm[0] - 1.0).abs() < 0.05 && (tm[1] - 1.05).abs() < 0.05,
            "{tm:?}"
        );
        let avg = combine(&Aggregation::default(), &all, &mut g).unwrap();
        assert!(
            avg[0] < -100.0,
            "plain FedAvg is pulled by the wild update: {avg:?}"
        );
    }

    #[test]
    fn the_trimmed_mean_trims_at_the_default_quorum_of_three() {
        // Three updates, one wild: floor(3 × 0.2) = 0 trimmed nothing, and the mean followed
        // the wild value. Rounded up, one is dropped at each end: the middle one stands.
        let (a, b, wild) = ([1.0f32, 1.0], [1.2f32, 0.8], [-900.0f32, 900.0]);
        let all = [c(&a, 10), c(&b, 10), c(&wild, 10)];
        let tm = combine(
            &Aggregation {
                rule: Rule::TrimmedMean { trim: 0.2 },
                ..Aggregation::default()
            },
            &all,
            &mut params::Gauss::new(1),
        )
        .unwrap();
        assert_eq!(tm, vec![1.0, 1.0], "{tm:?}");
        // The share as written where it is a whole number of values; always one kept.
        let cuts: Vec<usize> = [1, 2, 3, 4, 5, 10, 11]
            .iter()
            .map(|k| trimmed(*k, 0.2))
            .collect();
        assert_eq!(cuts, vec![0, 0, 1, 1, 1, 2, 3]);
        assert_eq!(trimmed(5, 0.0), 0);
        assert_eq!(trimmed(4, 0.45), 1);
    }

    #[test]
    fn updates_of_another_length_are_not_combined() {
        let (a, short) = ([1.0f32, 1.0], [1.0f32]);
        let cfg = Aggregation::default();
        assert!(combine(&cfg, &[c(&a, 1), c(&short, 1)], &mut params::Gauss::new(1)).is_none());
    }

    #[test]
    fn server_clipping_bounds_one_nodes_pull() {
        let big = [300.0, 400.0];
        let small = [0.3, 0.4];
        let cfg = Aggregation {
            server_clip: Some(1.0),
            ..Aggregation::default()
        };
        let out = combine(
            &cfg,
            &[c(&big, 1), c(&small, 1)],
            &mut params::Gauss::new(3),
        )
        .unwrap();
        assert!(params::norm(&out) <= 1.0 + 1e-5, "{out:?}");
    }

    #[test]
    fn momentum_accumulates_and_staleness_discounts() {
        let cfg = Aggregation {
            momentum: 0.5,
            ..Aggregation::default()
        };
        let mut v = Vec::new();
        let w1 = step(&cfg, &[0.0], &[1.0], &mut v);
        let w2 = step(&cfg, &w1, &[1.0], &mut v);
        assert_eq!((w1, w2), (vec![1.0], vec![2.5]));
        let fresh = [1.0];
        let old = [0.0];
        let out = combine(
            &Aggregation::default(),
            &[
                c(&fresh, 10),
                Contribution {
                    delta: &old,
                    samples: 10,
                    staleness: 3,
                },
            ],
            &mut params::Gauss::new(1),
        )
        .unwrap();
        assert!((out[0] - 2.0 / 3.0).abs() < 1e-6, "{out:?}");
        assert_eq!(
            "trimmed:0.1".parse::<Rule>(),
            Ok(Rule::TrimmedMean { trim: 0.1 })
        );
        assert!("trimmed:0.7".parse::<Rule>().is_err());
        assert!("krum".parse::<Rule>().unwrap_err().contains("krum"));
    }
}
