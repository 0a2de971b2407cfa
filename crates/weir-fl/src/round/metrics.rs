//! How the gate scores a model on the server's evaluation set, and that set's codec.

use weir_model::train::Dataset;
use weir_model::Mlp;

use crate::update;

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
