//! A model's trainable parameters as one flat vector: what an update carries and what the
//! aggregators average. The order is fixed: for each layer, its weights (row-major, as
//! [`weir_model::Dense`] keeps them) then its biases. The normalization (mean, std) is not a
//! parameter: it stays what the registry's first model baked into the graph, since averaging
//! weights trained under different input scalings would be meaningless.

use weir_model::Mlp;

/// The `[outputs, inputs]` of every layer: two models' parameter vectors line up only when
/// these are equal.
pub fn shapes(m: &Mlp) -> Vec<[usize; 2]> {
    m.layers.iter().map(|l| [l.outputs, l.inputs]).collect()
}

/// Parameter count of a model with these layer shapes.
pub fn count(shapes: &[[usize; 2]]) -> usize {
    shapes.iter().map(|[o, i]| o * i + o).sum()
}

/// The model's parameters, flattened.
pub fn flatten(m: &Mlp) -> Vec<f32> {
    let mut v = Vec::with_capacity(count(&shapes(m)));
    for l in &m.layers {
        v.extend_from_slice(&l.weight);
        v.extend_from_slice(&l.bias);
    }
    v
}

/// A copy of `m` with its parameters replaced by `p` (same layout as [`flatten`]).
///
/// # Panics
/// When `p` is not exactly as long as the model's parameters: callers check shapes first.
pub fn with_params(m: &Mlp, p: &[f32]) -> Mlp {
    assert_eq!(p.len(), count(&shapes(m)), "parameter count");
    let mut out = m.clone();
    let mut at = 0;
    for l in &mut out.layers {
        let (w, b) = (l.weight.len(), l.bias.len());
        l.weight.copy_from_slice(&p[at..at + w]);
        at += w;
        l.bias.copy_from_slice(&p[at..at + b]);
        at += b;
    }
    out
}

/// `a − b`, element by element.
pub fn sub(a: &[f32], b: &[f32]) -> Vec<f32> {
    a.iter().zip(b).map(|(x, y)| x - y).collect()
}

/// `a + b`, element by element.
pub fn add(a: &[f32], b: &[f32]) -> Vec<f32> {
    a.iter().zip(b).map(|(x, y)| x + y).collect()
}

/// The L2 norm (accumulated in f64).
pub fn norm(v: &[f32]) -> f32 {
    v.iter().map(|x| f64::from(*x).powi(2)).sum::<f64>().sqrt() as f32
}

/// Scale `v` down so its L2 norm is at most `bound` (no change when it already is); returns
/// the norm before clipping.
pub fn clip(v: &mut [f32], bound: f32) -> f32 {
    let n = norm(v);
    if n > bound && n > 0.0 {
        let s = bound / n;
        v.iter_mut().for_each(|x| *x *= s);
    }
    n
}

/// Standard normal draws from a seeded generator (Box-Muller over [`weir_model::train::Pcg`]).
pub struct Gauss {
    rng: weir_model::train::Pcg,
    spare: Option<f32>,
}

impl Gauss {
    /// A stream from `seed`.
    pub fn new(seed: u64) -> Self {
        Gauss {
            rng: weir_model::train::Pcg::new(seed),
            spare: None,
        }
    }

    /// A stream seeded from the operating system's random source: for privacy noise, which
    /// must not be predictable from anything an observer knows.
    pub fn from_os() -> Self {
        use ring::rand::SecureRandom;
        let mut b = [0u8; 8];
        // SystemRandom fails only when the OS has no random source at all.
        let seed = match ring::rand::SystemRandom::new().fill(&mut b) {
            Ok(()) => u64::from_le_bytes(b),
            Err(_) => std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos() as u64),
        };
        Gauss::new(seed)
    }

    /// One N(0, 1) draw.
    pub fn draw(&mut self) -> f32 {
        if let Some(s) = self.spare.take() {
            return s;
        }
        let u1 = (self.rng.unit() as f64).max(1e-12);
        let u2 = self.rng.unit() as f64;
        let r = (-2.0 * u1.ln()).sqrt();
        let t = 2.0 * std::f64::consts::PI * u2;
        self.spare = Some((r * t.sin()) as f32);
        (r * t.cos()) as f32
    }

    /// Add N(0, std²) to every element.
    pub fn perturb(&mut self, v: &mut [f32], std: f32) {
        if std > 0.0 {
            v.iter_mut().for_each(|x| *x += std * self.draw());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flatten_and_back_is_the_same_model() {
        let m = weir_model::test_model(5, 7, 3, 2);
        let p = flatten(&m);
        assert_eq!(p.len(), count(&shapes(&m)));
        assert_eq!(with_params(&m, &p), m);
        let q: Vec<f32> = p.iter().map(|x| x + 1.0).collect();
        let m2 = with_params(&m, &q);
        assert_ne!(m2, m);
        assert_eq!(flatten(&m2), q);
        assert_eq!(m2.mean, m.mean);
    }

    #[test]
    fn clip_bounds_the_norm_and_keeps_the_direction() {
        let mut v = vec![3.0, 4.0];
        assert_eq!(clip(&mut v, 10.0), 5.0);
        assert_eq!(v, vec![3.0, 4.0]);
        assert_eq!(clip(&mut v, 1.0), 5.0);
        assert!((norm(&v) - 1.0).abs() < 1e-6);
        assert!((v[0] / v[1] - 0.75).abs() < 1e-6);
    }

    #[test]
    fn gaussian_draws_have_unit_variance() {
        let mut g = Gauss::new(7);
        let x: Vec<f64> = (0..20000).map(|_| f64::from(g.draw())).collect();
        let mean = x.iter().sum::<f64>() / x.len() as f64;
        let var = x.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / x.len() as f64;
        assert!(mean.abs() < 0.03, "{mean}");
        assert!((var - 1.0).abs() < 0.05, "{var}");
    }
}
