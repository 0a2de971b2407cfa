//! Training the MLP in plain Rust: mini-batch Adam on a class-weighted cross-entropy.
//!
//! The same code trains the shipped model (`weir train`) and fine-tunes it on edge nodes for
//! federated learning ([`fit`] starts from an existing model and keeps its normalization, so
//! updates from several nodes can be averaged weight by weight).
//!
//! Reproducible: the only randomness is a seeded PCG stream (initial weights, shuffling), and the
//! matrix products run single-threaded (`matrixmultiply`), so the same data, seed and
//! hyper-parameters give the same weights on the same CPU.

use crate::{normalize, slog, Dense, Mlp, ModelInfo};

/// Hyper-parameters.
#[derive(Clone, Debug, PartialEq)]
pub struct TrainConfig {
    /// Hidden layer widths.
    pub hidden: Vec<usize>,
    /// Passes over the data.
    pub epochs: usize,
    /// Rows per step.
    pub batch: usize,
    /// Adam learning rate at the start; it follows a half cosine down to 0 over the run, so
    /// the last epochs settle instead of jumping between minima.
    pub learning_rate: f32,
    /// Decoupled weight decay (AdamW), per step, times the learning rate.
    pub weight_decay: f32,
    /// Seed of the initial weights and the shuffling.
    pub seed: u64,
}

impl Default for TrainConfig {
    fn default() -> Self {
        TrainConfig {
            hidden: vec![256, 256],
            epochs: 30,
            batch: 256,
            learning_rate: 2e-3,
            weight_decay: 1e-4,
            seed: 1,
        }
    }
}

/// Labelled rows: raw (untransformed) features, row-major, NaN where a feature is unknown.
#[derive(Clone, Debug, Default)]
pub struct Dataset {
    /// Feature count per row.
    pub features: usize,
    /// `rows × features` raw feature values.
    pub x: Vec<f32>,
    /// Class index per row.
    pub y: Vec<u16>,
    /// Loss weight per row (1 for an unweighted row).
    pub weight: Vec<f32>,
}

impl Dataset {
    /// Empty set of rows with `features` columns.
    pub fn new(features: usize) -> Self {
        Dataset {
            features,
            ..Default::default()
        }
    }

    /// Number of rows.
    pub fn len(&self) -> usize {
        self.y.len()
    }

    /// No rows.
    pub fn is_empty(&self) -> bool {
        self.y.is_empty()
    }

    /// Append one row.
    pub fn push(&mut self, row: &[f32], class: u16, weight: f32) {
        assert_eq!(row.len(), self.features, "row width");
        self.x.extend_from_slice(row);
        self.y.push(class);
        self.weight.push(weight);
    }

    /// Append every row of `other`.
    pub fn extend(&mut self, other: &Dataset) {
        assert_eq!(other.features, self.features, "row width");
        self.x.extend_from_slice(&other.x);
        self.y.extend_from_slice(&other.y);
        self.weight.extend_from_slice(&other.weight);
    }

    /// Row `i`.
    pub fn row(&self, i: usize) -> &[f32] {
        &self.x[i * self.features..(i + 1) * self.features]
    }
}

/// What one epoch did.
#[derive(Clone, Copy, Debug)]
pub struct EpochReport {
    /// 1-based epoch number.
    pub epoch: usize,
    /// Mean weighted cross-entropy over the epoch.
    pub loss: f32,
    /// Share of rows whose arg-max was right (unweighted).
    pub accuracy: f32,
}

/// Small deterministic PCG-XSH-RR generator (no dependency, same stream everywhere).
#[derive(Clone, Debug)]
pub struct Pcg(u64);

impl Pcg {
    /// Seeded generator.
    pub fn new(seed: u64) -> Self {
        let mut p = Pcg(seed.wrapping_add(0x853c_49e6_748f_ea9b));
        p.next_u32();
        p
    }

    /// Next 32 random bits.
    pub fn next_u32(&mut self) -> u32 {
        let old = self.0;
        self.0 = old
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        let x = (((old >> 18) ^ old) >> 27) as u32;
        x.rotate_right((old >> 59) as u32)
    }

    /// Uniform in [0, 1).
    pub fn unit(&mut self) -> f32 {
        (self.next_u32() >> 8) as f32 / (1u32 << 24) as f32
    }

    /// Uniform in 0..n (n > 0).
    pub fn below(&mut self, n: usize) -> usize {
        ((self.next_u32() as u64 * n as u64) >> 32) as usize
    }
}

/// Mean and standard deviation of each transformed feature, NaN and ±∞ ignored; a constant
/// feature gets std 1 so it normalizes to 0.
pub fn feature_moments(data: &Dataset) -> (Vec<f32>, Vec<f32>) {
    let f = data.features;
    let mut sum = vec![0f64; f];
    let mut sq = vec![0f64; f];
    let mut n = vec![0u64; f];
    for i in 0..data.len() {
        for (j, v) in data.row(i).iter().enumerate() {
            let t = slog(*v);
            if t.is_finite() {
                sum[j] += t as f64;
                sq[j] += (t as f64) * (t as f64);
                n[j] += 1;
            }
        }
    }
    let mut mean = vec![0f32; f];
    let mut std = vec![1f32; f];
    for j in 0..f {
        if n[j] > 0 {
            let m = sum[j] / n[j] as f64;
            let var = (sq[j] / n[j] as f64 - m * m).max(0.0);
            mean[j] = m as f32;
            let s = var.sqrt() as f32;
            std[j] = if s > 1e-4 { s } else { 1.0 };
        }
    }
    (mean, std)
}

/// A fresh model: normalization from the data, He-initialized layers.
pub fn init(info: ModelInfo, data: &Dataset, hidden: &[usize], seed: u64) -> Mlp {
    let (mean, std) = feature_moments(data);
    let mut rng = Pcg::new(seed);
    let mut widths = vec![data.features];
    widths.extend_from_slice(hidden);
    widths.push(info.classes.len());
    let layers = widths
        .windows(2)
        .map(|w| {
            let (i, o) = (w[0], w[1]);
            let bound = (6.0 / i as f32).sqrt();
            Dense {
                inputs: i,
                outputs: o,
                weight: (0..i * o)
                    .map(|_| (rng.unit() * 2.0 - 1.0) * bound)
                    .collect(),
                bias: vec![0.0; o],
            }
        })
        .collect();
    Mlp {
        info,
        mean,
        std,
        layers,
    }
}

/// Train a new model on `data` (see [`fit`]).
pub fn train(
    info: ModelInfo,
    data: &Dataset,
    cfg: &TrainConfig,
    progress: impl FnMut(&EpochReport),
) -> Mlp {
    let mut model = init(info, data, &cfg.hidden, cfg.seed);
    fit(&mut model, data, cfg, progress);
    model
}

/// One stored row-major matrix (`rows × cols`), read as is or transposed.
#[derive(Clone, Copy)]
struct Mat<'a> {
    data: &'a [f32],
    rows: usize,
    cols: usize,
    transposed: bool,
}

impl<'a> Mat<'a> {
    fn new(data: &'a [f32], rows: usize, cols: usize) -> Self {
        Mat {
            data,
            rows,
            cols,
            transposed: false,
        }
    }

    fn t(self) -> Self {
        Mat {
            transposed: !self.transposed,
            ..self
        }
    }

    /// (rows, cols, row stride, column stride) as read.
    fn view(&self) -> (usize, usize, isize, isize) {
        if self.transposed {
            (self.cols, self.rows, 1, self.cols as isize)
        } else {
            (self.rows, self.cols, self.cols as isize, 1)
        }
    }
}

/// `c = a · b + beta · c`, `c` row-major `m × n`.
fn gemm(a: Mat<'_>, b: Mat<'_>, c: &mut [f32], beta: f32) {
    let (m, k, rsa, csa) = a.view();
    let (kb, n, rsb, csb) = b.view();
    assert!(k == kb, "inner dimensions {k} and {kb}");
    assert!(a.data.len() >= a.rows * a.cols && b.data.len() >= b.rows * b.cols);
    assert!(c.len() >= m * n);
    // SAFETY: the assertions keep every index the strides reach inside the three slices.
    unsafe {
        matrixmultiply::sgemm(
            m,
            k,
            n,
            1.0,
            a.data.as_ptr(),
            rsa,
            csa,
            b.data.as_ptr(),
            rsb,
            csb,
            beta,
            c.as_mut_ptr(),
            n as isize,
            1,
        );
    }
}

/// Adam moments of one parameter vector.
struct Adam {
    m: Vec<f32>,
    v: Vec<f32>,
}

impl Adam {
    fn new(n: usize) -> Self {
        Adam {
            m: vec![0.0; n],
            v: vec![0.0; n],
        }
    }

    fn step(&mut self, p: &mut [f32], g: &[f32], lr: f32, decay: f32, t: i32) {
        const B1: f32 = 0.9;
        const B2: f32 = 0.999;
        let c1 = 1.0 - B1.powi(t);
        let c2 = 1.0 - B2.powi(t);
        for i in 0..p.len() {
            self.m[i] = B1 * self.m[i] + (1.0 - B1) * g[i];
            self.v[i] = B2 * self.v[i] + (1.0 - B2) * g[i] * g[i];
            let mh = self.m[i] / c1;
            let vh = self.v[i] / c2;
            p[i] -= lr * (mh / (vh.sqrt() + 1e-8) + decay * p[i]);
        }
    }
}

/// Buffers for one mini-batch's forward and backward pass.
struct Workspace {
    /// Layer inputs: `acts[0]` is the batch, `acts[k + 1]` the output of layer k.
    acts: Vec<Vec<f32>>,
    grad_w: Vec<Vec<f32>>,
    grad_b: Vec<Vec<f32>>,
    delta: Vec<f32>,
    delta_prev: Vec<f32>,
}

/// Loss and accuracy over one mini-batch.
struct BatchLoss {
    weighted_loss: f64,
    weight: f64,
    correct: usize,
}

impl Workspace {
    fn new(model: &Mlp, batch: usize) -> Self {
        let mut acts = vec![vec![0.0; batch * model.n_features()]];
        acts.extend(model.layers.iter().map(|l| vec![0.0; batch * l.outputs]));
        let widest = model
            .layers
            .iter()
            .map(|l| l.outputs.max(l.inputs))
            .max()
            .unwrap_or(0);
        Workspace {
            acts,
            grad_w: model
                .layers
                .iter()
                .map(|l| vec![0.0; l.weight.len()])
                .collect(),
            grad_b: model.layers.iter().map(|l| vec![0.0; l.outputs]).collect(),
            delta: vec![0.0; batch * widest],
            delta_prev: vec![0.0; batch * widest],
        }
    }

    /// Forward and backward over rows `idx` of the normalized rows `z`: fills `grad_w`/`grad_b`
    /// with the gradient of the batch's weighted mean cross-entropy.
    fn gradients(&mut self, model: &Mlp, z: &[f32], data: &Dataset, idx: &[usize]) -> BatchLoss {
        let (f, c, nl, b) = (
            model.n_features(),
            model.n_classes(),
            model.layers.len(),
            idx.len(),
        );
        for (r, &i) in idx.iter().enumerate() {
            self.acts[0][r * f..(r + 1) * f].copy_from_slice(&z[i * f..(i + 1) * f]);
        }
        for (k, l) in model.layers.iter().enumerate() {
            let (lo, hi) = self.acts.split_at_mut(k + 1);
            let (x, y) = (&lo[k], &mut hi[0]);
            for r in 0..b {
                y[r * l.outputs..(r + 1) * l.outputs].copy_from_slice(&l.bias);
            }
            gemm(
                Mat::new(x, b, l.inputs),
                Mat::new(&l.weight, l.outputs, l.inputs).t(),
                y,
                1.0,
            );
            if k + 1 < nl {
                for v in &mut y[..b * l.outputs] {
                    *v = v.max(0.0);
                }
            }
        }
        // softmax cross-entropy, weighted; delta = dLoss/dlogits
        let wsum: f32 = idx.iter().map(|&i| data.weight[i]).sum::<f32>().max(1e-12);
        let mut out = BatchLoss {
            weighted_loss: 0.0,
            weight: 0.0,
            correct: 0,
        };
        let logits = &self.acts[nl];
        for (r, &i) in idx.iter().enumerate() {
            let row = &logits[r * c..(r + 1) * c];
            let m = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
            let s: f32 = row.iter().map(|v| (v - m).exp()).sum();
            let (y, w) = (data.y[i] as usize, data.weight[i]);
            let arg = row
                .iter()
                .enumerate()
                .fold(0, |a, (j, v)| if *v > row[a] { j } else { a });
            out.correct += usize::from(arg == y);
            out.weighted_loss += (w * (m + s.ln() - row[y])) as f64;
            out.weight += w as f64;
            let d = &mut self.delta[r * c..(r + 1) * c];
            for (j, (dj, v)) in d.iter_mut().zip(row).enumerate() {
                let p = (v - m).exp() / s;
                *dj = (p - f32::from(j == y)) * w / wsum;
            }
        }
        for k in (0..nl).rev() {
            let l = &model.layers[k];
            let x = &self.acts[k];
            let delta = Mat::new(&self.delta, b, l.outputs);
            gemm(
                delta.t(),
                Mat::new(x, b, l.inputs),
                &mut self.grad_w[k],
                0.0,
            );
            let gb = &mut self.grad_b[k];
            gb.iter_mut().for_each(|v| *v = 0.0);
            for r in 0..b {
                for (g, d) in gb
                    .iter_mut()
                    .zip(&self.delta[r * l.outputs..(r + 1) * l.outputs])
                {
                    *g += d;
                }
            }
            if k > 0 {
                let w = Mat::new(&l.weight, l.outputs, l.inputs);
                gemm(delta, w, &mut self.delta_prev, 0.0);
                for (d, a) in self.delta_prev[..b * l.inputs]
                    .iter_mut()
                    .zip(&x[..b * l.inputs])
                {
                    if *a <= 0.0 {
                        *d = 0.0;
                    }
                }
                std::mem::swap(&mut self.delta, &mut self.delta_prev);
            }
        }
        out
    }
}

/// Rows of `data` normalized as `model` normalizes its input.
fn normalized(model: &Mlp, data: &Dataset) -> Vec<f32> {
    let f = model.n_features();
    let mut z = vec![0f32; data.len() * f];
    for i in 0..data.len() {
        for (j, v) in data.row(i).iter().enumerate() {
            z[i * f + j] = normalize(*v, model.mean[j], model.std[j]);
        }
    }
    z
}

/// Train `model` further on `data`, keeping its normalization (mean/std) as it is.
pub fn fit(
    model: &mut Mlp,
    data: &Dataset,
    cfg: &TrainConfig,
    mut progress: impl FnMut(&EpochReport),
) {
    assert_eq!(
        data.features,
        model.n_features(),
        "data width must match the model"
    );
    let n = data.len();
    if n == 0 || cfg.epochs == 0 {
        return;
    }
    let z = normalized(model, data);
    let mut adam_w: Vec<Adam> = model
        .layers
        .iter()
        .map(|l| Adam::new(l.weight.len()))
        .collect();
    let mut adam_b: Vec<Adam> = model
        .layers
        .iter()
        .map(|l| Adam::new(l.bias.len()))
        .collect();
    let bmax = cfg.batch.max(1);
    let mut ws = Workspace::new(model, bmax);
    let mut order: Vec<usize> = (0..n).collect();
    let mut rng = Pcg::new(cfg.seed ^ 0x5eed);
    let mut t = 0i32;
    let total_steps = (cfg.epochs * n.div_ceil(bmax)).max(1) as f64;
    for epoch in 1..=cfg.epochs {
        for i in (1..n).rev() {
            order.swap(i, rng.below(i + 1));
        }
        let (mut loss_sum, mut weight_sum, mut correct) = (0f64, 0f64, 0usize);
        for idx in order.chunks(bmax) {
            let bl = ws.gradients(model, &z, data, idx);
            loss_sum += bl.weighted_loss;
            weight_sum += bl.weight;
            correct += bl.correct;
            let progress = f64::from(t) / total_steps;
            let lr =
                cfg.learning_rate * (0.5 * (1.0 + (std::f64::consts::PI * progress).cos())) as f32;
            t += 1;
            for (k, l) in model.layers.iter_mut().enumerate() {
                let decay = cfg.weight_decay;
                adam_w[k].step(&mut l.weight, &ws.grad_w[k], lr, decay, t);
                adam_b[k].step(&mut l.bias, &ws.grad_b[k], lr, 0.0, t);
            }
        }
        progress(&EpochReport {
            epoch,
            loss: (loss_sum / weight_sum.max(1e-12)) as f32,
            accuracy: correct as f32 / n as f32,
        });
    }
}

/// `f` over `items` on `threads` threads (work-stealing by index); the results are in item
/// order whatever the thread count.
pub fn par_map<T: Sync, R: Send>(
    items: &[T],
    threads: usize,
    f: impl Fn(&T) -> R + Sync,
) -> Vec<R> {
    let next = std::sync::atomic::AtomicUsize::new(0);
    let out: std::sync::Mutex<Vec<Option<R>>> =
        std::sync::Mutex::new((0..items.len()).map(|_| None).collect());
    std::thread::scope(|s| {
        for _ in 0..threads.max(1) {
            s.spawn(|| loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let Some(item) = items.get(i) else {
                    break;
                };
                let r = f(item);
                if let Ok(mut o) = out.lock() {
                    o[i] = Some(r);
                }
            });
        }
    });
    out.into_inner()
        .unwrap_or_default()
        .into_iter()
        .flatten()
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(features: usize, classes: usize) -> ModelInfo {
        ModelInfo {
            model_version: "t".into(),
            feature_version: "t".into(),
            classes: (0..classes).map(|c| format!("c{c}")).collect(),
            features: (0..features).map(|f| format!("f{f}")).collect(),
            anomaly_reference: Vec::new(),
            alert_thresholds: Vec::new(),
        }
    }

    /// Three blobs in 4-D, with heavy-tailed scales and a NaN column here and there.
    fn blobs(n: usize, seed: u64) -> Dataset {
        let mut rng = Pcg::new(seed);
        let mut d = Dataset::new(4);
        for i in 0..n {
            let c = i % 3;
            let centre = [
                [10.0, 1e5, 0.0, 3.0],
                [1e3, 10.0, 5.0, 3.0],
                [1e5, 1e3, -5.0, 3.0],
            ][c];
            let row: Vec<f32> = centre
                .iter()
                .enumerate()
                .map(|(j, m)| {
                    if j == 3 && i % 7 == 0 {
                        f32::NAN
                    } else {
                        m * (1.0 + 0.5 * (rng.unit() - 0.5)) + (rng.unit() - 0.5)
                    }
                })
                .collect();
            d.push(&row, c as u16, 1.0);
        }
        d
    }

    #[test]
    fn learns_separable_classes_and_is_reproducible() {
        let data = blobs(600, 3);
        let cfg = TrainConfig {
            hidden: vec![16],
            epochs: 20,
            batch: 32,
            ..Default::default()
        };
        let mut reports = Vec::new();
        let m = train(info(4, 3), &data, &cfg, |r| reports.push(*r));
        assert_eq!(reports.len(), 20);
        assert!(reports[19].loss < reports[0].loss / 4.0, "{reports:?}");
        let test = blobs(300, 99);
        let out = m.forward(&test.x);
        let right = out
            .probabilities
            .chunks(3)
            .zip(&test.y)
            .filter(|(p, y)| {
                let arg = (0..3).fold(0, |a, j| if p[j] > p[a] { j } else { a });
                arg == **y as usize
            })
            .count();
        assert!(right >= 297, "{right}/300 right");
        assert!(out.energy.iter().all(|e| e.is_finite()));
        let again = train(info(4, 3), &data, &cfg, |_| {});
        assert_eq!(m, again, "same data, seed and settings give the same model");
        let other = train(
            info(4, 3),
            &data,
            &TrainConfig {
                seed: 2,
                ..cfg.clone()
            },
            |_| {},
        );
        assert_ne!(m.layers[0].weight, other.layers[0].weight);
    }

    #[test]
    fn fit_keeps_normalization_and_weights_matter() {
        let data = blobs(300, 5);
        let mut m = init(info(4, 3), &data, &[8], 1);
        let (mean, std) = (m.mean.clone(), m.std.clone());
        let before = m.layers[0].weight.clone();
        fit(
            &mut m,
            &data,
            &TrainConfig {
                epochs: 2,
                ..Default::default()
            },
            |_| {},
        );
        assert_eq!((m.mean.clone(), m.std.clone()), (mean, std));
        assert_ne!(m.layers[0].weight, before);
    }

    #[test]
    fn gradients_match_finite_differences() {
        let mut data = blobs(40, 11);
        for (i, w) in data.weight.iter_mut().enumerate() {
            *w = 0.5 + (i % 3) as f32; // unequal weights are part of the loss
        }
        let m = init(info(4, 3), &data, &[6, 5], 4);
        let z = normalized(&m, &data);
        let idx: Vec<usize> = (0..data.len()).collect();
        let mut ws = Workspace::new(&m, idx.len());
        let loss = |m: &Mlp, ws: &mut Workspace| {
            let b = ws.gradients(m, &z, &data, &idx);
            (b.weighted_loss / b.weight) as f32
        };
        loss(&m, &mut ws);
        let (gw, gb) = (ws.grad_w.clone(), ws.grad_b.clone());
        let h = 1e-2f32;
        let mut checked = 0;
        for k in 0..m.layers.len() {
            for (p, analytic) in [(0, gw[k][0]), (1, gw[k][3]), (2, gb[k][1])] {
                let bump = |m: &mut Mlp, d: f32| match p {
                    0 => m.layers[k].weight[0] += d,
                    1 => m.layers[k].weight[3] += d,
                    _ => m.layers[k].bias[1] += d,
                };
                let mut mp = m.clone();
                bump(&mut mp, h);
                let lp = loss(&mp, &mut ws);
                let mut mm = m.clone();
                bump(&mut mm, -h);
                let lm = loss(&mm, &mut ws);
                let numeric = (lp - lm) / (2.0 * h);
                assert!(
                    (numeric - analytic).abs() <= 2e-3 + 0.05 * analytic.abs(),
                    "layer {k} param {p}: numeric {numeric} analytic {analytic}"
                );
                checked += 1;
            }
        }
        assert_eq!(checked, 9);
    }
}
