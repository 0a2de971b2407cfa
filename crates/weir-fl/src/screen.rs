//! Screening each update against the server's own reference update (FLTrust, Cao et al. 2021,
//! used as a filter).
//!
//! Clipping and the trimmed mean bound how hard one node pulls, but not *where*: a node that
//! trains on attack flows relabelled Normal sends an update of honest size and honest
//! spread. The server holds a small labelled evaluation set (`fl/eval/eval.bin`); before
//! combining, it trains the current model on that set for a few epochs (the reference
//! update Δs) and leaves out every update whose cosine with Δs is below a floor. Honest nodes
//! with skewed data still agree with Δs on the classes they hold (a positive cosine);
//! a flipped or reversed update points away from it.
//!
//! The reference never enters the average: it only decides which updates do. Each update
//! left out is recorded on the version's card with its cosine.

use serde::{Deserialize, Serialize};
use weir_model::train::{Dataset, TrainConfig};
use weir_model::Mlp;

use crate::params;

/// The screen's settings.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Screen {
    /// Leave out updates whose cosine with the reference is below this (-1 to 1).
    pub min_cosine: f32,
    /// Epochs of the reference training on the evaluation set.
    pub epochs: usize,
    /// Its learning rate (Adam, as the nodes train).
    pub learning_rate: f32,
}

impl Default for Screen {
    fn default() -> Self {
        Screen {
            min_cosine: 0.0,
            epochs: 2,
            learning_rate: 2e-3,
        }
    }
}

/// The server's reference update: the current model trained on `eval` (each class weighted
/// to the same total, as the nodes weight theirs), minus the current model.
pub fn reference(current: &Mlp, eval: &Dataset, cfg: &Screen, seed: u64) -> Vec<f32> {
    let mut d = eval.clone();
    let classes = current.n_classes();
    let mut count = vec![0usize; classes];
    for y in &d.y {
        if let Some(c) = count.get_mut(*y as usize) {
            *c += 1;
        }
    }
    let present = count.iter().filter(|c| **c > 0).count().max(1);
    let n = d.len().max(1) as f32;
    for (y, w) in d.y.iter().zip(d.weight.iter_mut()) {
        let c = count.get(*y as usize).copied().unwrap_or(0).max(1) as f32;
        *w = n / (present as f32 * c);
    }
    let mut m = current.clone();
    let train = TrainConfig {
        hidden: Vec::new(),
        epochs: cfg.epochs,
        learning_rate: cfg.learning_rate,
        seed,
        ..TrainConfig::default()
    };
    weir_model::train::fit(&mut m, &d, &train, |_| {});
    params::sub(&params::flatten(&m), &params::flatten(current))
}

/// Cosine of two vectors (0 when either is zero).
pub fn cosine(a: &[f32], b: &[f32]) -> f32 {
    let dot: f64 = a
        .iter()
        .zip(b)
        .map(|(x, y)| f64::from(*x) * f64::from(*y))
        .sum();
    let (na, nb) = (params::norm(a), params::norm(b));
    if na == 0.0 || nb == 0.0 {
        return 0.0;
    }
    (dot / (f64::from(na) * f64::from(nb))) as f32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cosine_of_aligned_opposite_and_orthogonal_vectors() {
        assert!((cosine(&[1.0, 2.0], &[2.0, 4.0]) - 1.0).abs() < 1e-6);
        assert!((cosine(&[1.0, 2.0], &[-1.0, -2.0]) + 1.0).abs() < 1e-6);
        assert_eq!(cosine(&[1.0, 0.0], &[0.0, 3.0]), 0.0);
        assert_eq!(cosine(&[0.0, 0.0], &[1.0, 1.0]), 0.0);
    }
}
