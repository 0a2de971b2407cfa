//! A model that classifies flows, as the stages see it: [`FlowModel`]. The pipeline, the API
//! (uploads, explanations) and the federated reload take one of these, so none of them links
//! an inference runtime: the binaries pass in `weir_classify::Classifier` (ONNX Runtime), and
//! tests may pass in anything that answers the same way.

use crate::ModelInfo;

/// Class predictions for a batch of rows.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Predictions {
    /// Number of classes (row width of `probabilities`).
    pub classes: usize,
    /// Index of the most probable class, per row.
    pub predicted: Vec<u16>,
    /// `rows × classes` probabilities, row-major.
    pub probabilities: Vec<f32>,
    /// Anomaly score per row (energy; higher = less like the training data).
    pub anomaly: Vec<f32>,
    /// Rows that had a NaN or infinite feature (classified with it as unknown / clipped).
    pub nonfinite_rows: usize,
}

impl Predictions {
    /// Number of rows.
    pub fn len(&self) -> usize {
        self.predicted.len()
    }

    /// No rows.
    pub fn is_empty(&self) -> bool {
        self.predicted.is_empty()
    }

    /// Probabilities of row `i`.
    pub fn row(&self, i: usize) -> &[f32] {
        &self.probabilities[i * self.classes..(i + 1) * self.classes]
    }
}

/// Why a batch could not be classified.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[error("{reason}")]
pub struct InferenceError {
    /// What the runtime or the model check said.
    pub reason: String,
    /// The model itself is at fault (trying again with it cannot help), as opposed to a run
    /// that failed (the runtime, the device, a malformed batch).
    pub model_fault: bool,
}

/// A loaded model that classifies flow feature vectors.
pub trait FlowModel: Send {
    /// What the model says about itself (version, feature spec, classes, thresholds).
    fn info(&self) -> &ModelInfo;
    /// The alert threshold on the predicted class's probability.
    fn min_probability(&self) -> f32;
    /// Classify `x` (row-major, `info().features.len()` values per row).
    fn classify(&mut self, x: &[f32]) -> Result<Predictions, InferenceError>;
}

impl<M: FlowModel + ?Sized> FlowModel for Box<M> {
    fn info(&self) -> &ModelInfo {
        (**self).info()
    }
    fn min_probability(&self) -> f32 {
        (**self).min_probability()
    }
    fn classify(&mut self, x: &[f32]) -> Result<Predictions, InferenceError> {
        (**self).classify(x)
    }
}

/// Why a flow got its verdict, by occlusion: each feature in turn replaced by "unknown" (NaN,
/// which the model's normalization maps to the training mean) and the row classified again.
/// Returns `(feature index, p(class) as is - p(class) with that feature at the mean)` for
/// every feature, largest effect (either sign) first: positive means the feature's value
/// pushed the model toward `class`. One batch of `features + 1` rows through the model.
pub fn explain(
    m: &mut dyn FlowModel,
    x: &[f32],
    class: usize,
) -> Result<Vec<(usize, f32)>, InferenceError> {
    let f = m.info().features.len();
    if x.len() != f {
        return Err(InferenceError {
            reason: format!("{} values is not one {f}-feature row", x.len()),
            model_fault: false,
        });
    }
    let mut batch = Vec::with_capacity((f + 1) * f);
    batch.extend_from_slice(x);
    for i in 0..f {
        let start = batch.len();
        batch.extend_from_slice(x);
        batch[start + i] = f32::NAN;
    }
    let p = m.classify(&batch)?;
    let base = p.row(0).get(class).copied().unwrap_or(f32::NAN);
    let mut out: Vec<(usize, f32)> = (0..f)
        .map(|i| {
            (
                i,
                base - p.row(i + 1).get(class).copied().unwrap_or(f32::NAN),
            )
        })
        .collect();
    out.sort_by(|a, b| b.1.abs().total_cmp(&a.1.abs()).then(a.0.cmp(&b.0)));
    Ok(out)
}
