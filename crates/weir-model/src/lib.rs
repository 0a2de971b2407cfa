//! # weir-model
//!
//! Owns: the model (weights, ONNX in and out, training), what classifies (`FlowModel`) and the
//! alert rule (`AlertScore`). Must not depend on: ONNX Runtime, polars, the store.
//!
//! The classifier model over weir's flow feature vector: a multilayer perceptron with the
//! feature normalization inside it, its ONNX export (what `weir-classify` runs through ONNX
//! Runtime, on CUDA or CPU) and a reference forward pass in plain Rust (what tests compare the
//! runtime against, and what training and federated averaging work on).
//!
//! Graph of the exported model, for a batch of N flows:
//!
//! ```text
//! features [N, F] ─ slog ─ Sub(mean) ─ Div(std) ─ NaN→0 ─ Clip(±30) ─ Gemm ─ Relu ─ … ─ Gemm ─ logits [N, C]
//!                                                                       ├─ Softmax ─ probabilities [N, C]
//!                                                                       └─ -LogSumExp ─ energy [N]
//! ```
//!
//! `slog(x) = sign(x)·ln(1 + |x|)` tames the heavy tails of byte counts, rates and times (they
//! span ten orders of magnitude); `mean` and `std` are those of the transformed features. After
//! normalization a NaN feature becomes 0 (the training mean: "unknown") and ±∞ or extreme values
//! are clipped to ±30 standard deviations, so no input makes the outputs NaN.
//!
//! The anomaly score is the energy score `-log Σ exp(logit)` (Liu et al., 2020): high for
//! inputs unlike the training data. Metadata carried in the ONNX file: model version, feature
//! spec version, class names.
#![warn(missing_docs)]

mod infer;
pub mod onnx;
pub mod train;
mod verdict;

pub use infer::{explain, FlowModel, InferenceError, Predictions};
pub use verdict::{AlertScore, FlowVerdict};

use prost::Message;
use serde::{Deserialize, Serialize};

use onnx::*;

/// Errors reading a model.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    /// The bytes are not an ONNX model.
    #[error("not an ONNX model: {0}")]
    Decode(String),
    /// An ONNX model, but not one weir wrote (metadata missing or inconsistent).
    #[error("not a weir model: {0}")]
    NotWeir(String),
}

/// One fully connected layer: `y = x · Wᵀ + b`, weights row-major `[out][in]`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Dense {
    /// Input width.
    pub inputs: usize,
    /// Output width.
    pub outputs: usize,
    /// `outputs × inputs` weights, row-major.
    pub weight: Vec<f32>,
    /// `outputs` biases.
    pub bias: Vec<f32>,
}

/// What the model file says about itself (ONNX metadata_props `weir.*`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ModelInfo {
    /// Model version, e.g. `weir-mlp/1`.
    pub model_version: String,
    /// The feature spec the model was trained on (`weir_flow::FEATURE_VERSION`).
    pub feature_version: String,
    /// Class names, in output order.
    pub classes: Vec<String>,
    /// Feature names, in input order.
    pub features: Vec<String>,
    /// The anomaly score (energy) of the benign training flows at percentiles 0, 1, ..., 100
    /// ([`anomaly_reference`]): what [`anomaly_percentile`] reads a score against. Empty for
    /// a model written before it existed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub anomaly_reference: Vec<f32>,
    /// Per class (output order), the least probability at which the model's verdict of that
    /// class is an alert, chosen from the evaluation for a false-alert budget (above 1: the
    /// model never alerts on it alone). The user's `--min-probability` applies on top (the
    /// higher of the two). Empty: the user's threshold alone.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub alert_thresholds: Vec<f32>,
}

impl ModelInfo {
    /// The model's own alert threshold for class `c` (0 when it has none).
    pub fn alert_threshold(&self, c: usize) -> f32 {
        class_threshold(&self.alert_thresholds, c)
    }
}

/// Class `c`'s threshold in a per-class list ([`ModelInfo::alert_thresholds`]); 0 where the
/// list has none for it.
pub fn class_threshold(thresholds: &[f32], c: usize) -> f32 {
    thresholds.get(c).copied().unwrap_or(0.0)
}

/// The energies at percentiles 0, 1, ..., 100 of `energy` (benign flows' scores; NaN
/// ignored): nearest-rank quantiles, 101 values ascending, or empty without values.
pub fn anomaly_reference(energy: &[f32]) -> Vec<f32> {
    let mut v: Vec<f32> = energy.iter().copied().filter(|e| e.is_finite()).collect();
    if v.is_empty() {
        return Vec::new();
    }
    v.sort_by(f32::total_cmp);
    let n = v.len();
    (0..=100)
        .map(|p| v[((p as f64 / 100.0) * (n - 1) as f64).round() as usize])
        .collect()
}

/// An anomaly score as a percentile (0-100) of the benign reference: the share of benign
/// training flows with a lower score, interpolated between the reference's percentiles. 99
/// means less usual than 99% of benign flows; 100 is beyond all of them. NaN without a
/// reference.
pub fn anomaly_percentile(reference: &[f32], energy: f32) -> f32 {
    if reference.len() < 2 || energy.is_nan() {
        return f32::NAN;
    }
    let last = reference.len() - 1;
    if energy >= reference[last] {
        return 100.0;
    }
    if energy < reference[0] {
        return 0.0;
    }
    // reference[i] <= energy < reference[i + 1]
    let i = reference
        .partition_point(|r| *r <= energy)
        .saturating_sub(1)
        .min(last - 1);
    let (lo, hi) = (reference[i], reference[i + 1]);
    let frac = if hi > lo {
        (energy - lo) / (hi - lo)
    } else {
        1.0
    };
    100.0 * (i as f32 + frac) / last as f32
}

/// The MLP: normalization, then dense layers with ReLU between them.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Mlp {
    /// Self-description.
    pub info: ModelInfo,
    /// Per-feature mean of the transformed features ([`slog`]), subtracted first.
    pub mean: Vec<f32>,
    /// Per-feature scale of the transformed features, divided by next (never 0).
    pub std: Vec<f32>,
    /// The layers; ReLU after every one but the last.
    pub layers: Vec<Dense>,
}

/// Outputs of the model for a batch.
#[derive(Clone, Debug, PartialEq)]
pub struct Outputs {
    /// `N × C` class probabilities, row-major.
    pub probabilities: Vec<f32>,
    /// `N` energy scores (higher = less like the training data).
    pub energy: Vec<f32>,
}

/// Names of the graph's inputs and outputs.
pub const INPUT: &str = "features";
/// The benign class: a flow of any other class is an attack (an alert when its probability is
/// high enough). The one definition every crate uses.
pub const NORMAL_CLASS: &str = weir_wire::Class::Normal.name();
/// Probabilities output.
pub const OUT_PROBABILITIES: &str = "probabilities";
/// Energy (anomaly) output.
pub const OUT_ENERGY: &str = "energy";
/// Logits output.
pub const OUT_LOGITS: &str = "logits";
const OPSET: i64 = 18;
/// Normalized features are clipped to ±`CLIP` standard deviations.
pub const CLIP: f32 = 30.0;

/// The input transform before normalization: `sign(x)·ln(1 + |x|)`.
#[inline]
pub fn slog(x: f32) -> f32 {
    if x.is_nan() {
        return x;
    }
    (1.0 + x.abs()).ln().copysign(x)
}

/// Normalize one transformed feature: NaN becomes 0, the rest is clipped to ±[`CLIP`].
#[inline]
pub fn normalize(v: f32, mean: f32, std: f32) -> f32 {
    let z = (slog(v) - mean) / std;
    if z.is_nan() {
        0.0
    } else {
        z.clamp(-CLIP, CLIP)
    }
}

impl Mlp {
    /// Input width.
    pub fn n_features(&self) -> usize {
        self.mean.len()
    }

    /// Output width.
    pub fn n_classes(&self) -> usize {
        self.layers.last().map_or(0, |l| l.outputs)
    }

    /// Reference forward pass over `n` rows of `x` (row-major `n × F`), in f32 like the runtime.
    pub fn forward(&self, x: &[f32]) -> Outputs {
        let f = self.n_features();
        let n = x.len().checked_div(f).unwrap_or(0);
        let c = self.n_classes();
        let mut probabilities = Vec::with_capacity(n * c);
        let mut energy = Vec::with_capacity(n);
        let mut cur: Vec<f32> = Vec::new();
        let mut next: Vec<f32> = Vec::new();
        for row in x.chunks_exact(f).take(n) {
            cur.clear();
            cur.extend(
                row.iter()
                    .zip(self.mean.iter().zip(&self.std))
                    .map(|(v, (m, s))| normalize(*v, *m, *s)),
            );
            for (k, l) in self.layers.iter().enumerate() {
                next.clear();
                for o in 0..l.outputs {
                    let w = &l.weight[o * l.inputs..(o + 1) * l.inputs];
                    let mut acc = 0.0f32;
                    for (a, b) in w.iter().zip(&cur) {
                        acc += a * b;
                    }
                    acc += l.bias[o];
                    next.push(if k + 1 < self.layers.len() {
                        acc.max(0.0)
                    } else {
                        acc
                    });
                }
                std::mem::swap(&mut cur, &mut next);
            }
            let m = cur.iter().copied().fold(f32::NEG_INFINITY, f32::max);
            let sum: f32 = cur.iter().map(|v| (v - m).exp()).sum();
            probabilities.extend(cur.iter().map(|v| (v - m).exp() / sum));
            energy.push(-(m + sum.ln()));
        }
        Outputs {
            probabilities,
            energy,
        }
    }

    /// The model as an ONNX file (IR 10, opset 18), with metadata.
    pub fn to_onnx(&self) -> Vec<u8> {
        let f = self.n_features() as i64;
        let c = self.n_classes() as i64;
        let mut init = vec![
            tensor("mean", &[1, f], &self.mean),
            tensor("std", &[1, f], &self.std),
            TensorProto {
                dims: vec![1],
                data_type: Some(INT64),
                int64_data: vec![1],
                name: Some("axis1".into()),
                ..Default::default()
            },
            tensor("one", &[], &[1.0]),
            tensor("zero", &[], &[0.0]),
            tensor("clip_lo", &[], &[-CLIP]),
            tensor("clip_hi", &[], &[CLIP]),
        ];
        let mut nodes = vec![
            // slog(x) = sign(x) * ln(1 + |x|); NaN stays NaN (Sign(NaN) is 0 or NaN, Log is NaN)
            node("Abs", &[INPUT], &["abs"], vec![]),
            node("Add", &["abs", "one"], &["abs1"], vec![]),
            node("Log", &["abs1"], &["logabs"], vec![]),
            node("Sign", &[INPUT], &["sign"], vec![]),
            node("Mul", &["sign", "logabs"], &["slog"], vec![]),
            node("Sub", &["slog", "mean"], &["centered"], vec![]),
            node("Div", &["centered", "std"], &["z"], vec![]),
            node("IsNaN", &["z"], &["z_nan"], vec![]),
            node("Where", &["z_nan", "zero", "z"], &["z_known"], vec![]),
            node("Clip", &["z_known", "clip_lo", "clip_hi"], &["x0"], vec![]),
        ];
        let mut x = "x0".to_string();
        for (k, l) in self.layers.iter().enumerate() {
            let (w, b) = (format!("w{k}"), format!("b{k}"));
            init.push(tensor(&w, &[l.outputs as i64, l.inputs as i64], &l.weight));
            init.push(tensor(&b, &[l.outputs as i64], &l.bias));
            let last = k + 1 == self.layers.len();
            let y = if last {
                OUT_LOGITS.to_string()
            } else {
                format!("h{k}")
            };
            nodes.push(node(
                "Gemm",
                &[&x, &w, &b],
                &[&y],
                vec![attr_int("transB", 1)],
            ));
            if last {
                x = y;
            } else {
                let r = format!("r{k}");
                nodes.push(node("Relu", &[&y], &[&r], vec![]));
                x = r;
            }
        }
        nodes.push(node(
            "Softmax",
            &[&x],
            &[OUT_PROBABILITIES],
            vec![attr_int("axis", 1)],
        ));
        nodes.push(node(
            "ReduceLogSumExp",
            &[&x, "axis1"],
            &["lse"],
            vec![attr_int("keepdims", 0)],
        ));
        nodes.push(node("Neg", &["lse"], &[OUT_ENERGY], vec![]));
        let info = &self.info;
        let meta = [
            ("weir.model_version", info.model_version.clone()),
            ("weir.feature_version", info.feature_version.clone()),
            (
                "weir.classes",
                serde_json::Value::from(info.classes.clone()).to_string(),
            ),
            (
                "weir.features",
                serde_json::Value::from(info.features.clone()).to_string(),
            ),
        ];
        let reference = (!info.anomaly_reference.is_empty()).then(|| {
            (
                "weir.anomaly_reference",
                // A list of floats cannot fail to serialize (NaN would be null).
                serde_json::to_string(&info.anomaly_reference)
                    .expect("a list of floats serializes"),
            )
        });
        let thresholds = (!info.alert_thresholds.is_empty()).then(|| {
            (
                "weir.alert_thresholds",
                serde_json::to_string(&info.alert_thresholds).expect("a list of floats serializes"),
            )
        });
        let meta = meta.into_iter().chain(reference).chain(thresholds);
        let model = ModelProto {
            ir_version: Some(10),
            opset_import: vec![OperatorSetIdProto {
                domain: Some(String::new()),
                version: Some(OPSET),
            }],
            producer_name: Some("weir".into()),
            producer_version: Some(env!("CARGO_PKG_VERSION").into()),
            model_version: Some(1),
            doc_string: Some(
                "weir flow classifier: class probabilities and an energy anomaly score".into(),
            ),
            graph: Some(GraphProto {
                node: nodes,
                name: Some("weir_mlp".into()),
                initializer: init,
                input: vec![value_info(INPUT, &[None, Some(f)])],
                output: vec![
                    value_info(OUT_PROBABILITIES, &[None, Some(c)]),
                    value_info(OUT_ENERGY, &[None]),
                    value_info(OUT_LOGITS, &[None, Some(c)]),
                ],
                ..Default::default()
            }),
            metadata_props: meta
                .into_iter()
                .map(|(k, v)| StringStringEntryProto {
                    key: Some(k.into()),
                    value: Some(v),
                })
                .collect(),
            ..Default::default()
        };
        model.encode_to_vec()
    }
}

/// `(outputs, inputs)` of every Gemm weight in an ONNX file, in graph order (for FLOP counts).
pub fn onnx_dense_shapes(onnx_bytes: &[u8]) -> Result<Vec<(usize, usize)>, ModelError> {
    let m = ModelProto::decode(onnx_bytes).map_err(|e| ModelError::Decode(e.to_string()))?;
    let g = m
        .graph
        .ok_or_else(|| ModelError::Decode("no graph".into()))?;
    Ok(g.node
        .iter()
        .filter(|n| n.op_type.as_deref() == Some("Gemm"))
        .filter_map(|n| {
            let w = n.input.get(1)?;
            let t = g.initializer.iter().find(|t| t.name.as_ref() == Some(w))?;
            Some((*t.dims.first()? as usize, *t.dims.get(1)? as usize))
        })
        .collect())
}

/// The model of an ONNX file weir wrote ([`Mlp::to_onnx`]): its metadata, normalization and
/// layers read back, so that federated learning can start from a published model and the
/// same model written again gives the same bytes.
pub fn read_model(onnx_bytes: &[u8]) -> Result<Mlp, ModelError> {
    let info = read_info(onnx_bytes)?;
    let m = ModelProto::decode(onnx_bytes).map_err(|e| ModelError::Decode(e.to_string()))?;
    let g = m
        .graph
        .ok_or_else(|| ModelError::Decode("no graph".into()))?;
    let floats = |name: &str| -> Result<(Vec<i64>, Vec<f32>), ModelError> {
        let t = g
            .initializer
            .iter()
            .find(|t| t.name.as_deref() == Some(name))
            .ok_or_else(|| ModelError::NotWeir(format!("initializer {name} missing")))?;
        let v: Vec<f32> = match &t.raw_data {
            Some(raw) if raw.len() % 4 == 0 => raw
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect(),
            Some(_) => return Err(ModelError::NotWeir(format!("{name}: ragged raw data"))),
            None => t.float_data.clone(),
        };
        let want: i64 = t.dims.iter().product();
        if want < 0 || v.len() != want as usize {
            return Err(ModelError::NotWeir(format!(
                "{name}: {} values for dims {:?}",
                v.len(),
                t.dims
            )));
        }
        Ok((t.dims.clone(), v))
    };
    let (_, mean) = floats("mean")?;
    let (_, std) = floats("std")?;
    let f = info.features.len();
    if mean.len() != f || std.len() != f {
        return Err(ModelError::NotWeir(format!(
            "normalization for {} features, metadata names {f}",
            mean.len()
        )));
    }
    let mut layers = Vec::new();
    let mut inputs = f;
    for k in 0.. {
        let Ok((dims, weight)) = floats(&format!("w{k}")) else {
            break;
        };
        let (_, bias) = floats(&format!("b{k}"))?;
        let (o, i) = match dims.as_slice() {
            [o, i] => (*o as usize, *i as usize),
            _ => return Err(ModelError::NotWeir(format!("w{k}: dims {dims:?}"))),
        };
        if i != inputs || bias.len() != o {
            return Err(ModelError::NotWeir(format!(
                "layer {k}: {o}x{i} after a width of {inputs}, {} biases",
                bias.len()
            )));
        }
        layers.push(Dense {
            inputs: i,
            outputs: o,
            weight,
            bias,
        });
        inputs = o;
    }
    if layers.is_empty() || inputs != info.classes.len() {
        return Err(ModelError::NotWeir(format!(
            "{} layers ending in {inputs} outputs for {} classes",
            layers.len(),
            info.classes.len()
        )));
    }
    Ok(Mlp {
        info,
        mean,
        std,
        layers,
    })
}

/// Read the weir metadata of an ONNX file (checks it is one weir wrote).
pub fn read_info(onnx_bytes: &[u8]) -> Result<ModelInfo, ModelError> {
    let m = ModelProto::decode(onnx_bytes).map_err(|e| ModelError::Decode(e.to_string()))?;
    if m.graph.is_none() {
        return Err(ModelError::Decode("no graph".into()));
    }
    let get = |k: &str| {
        m.metadata_props
            .iter()
            .find(|e| e.key.as_deref() == Some(k))
            .and_then(|e| e.value.clone())
            .ok_or_else(|| ModelError::NotWeir(format!("metadata {k} missing")))
    };
    let list = |k: &str| -> Result<Vec<String>, ModelError> {
        serde_json::from_str(&get(k)?).map_err(|e| ModelError::NotWeir(format!("{k}: {e}")))
    };
    let info = ModelInfo {
        model_version: get("weir.model_version")?,
        feature_version: get("weir.feature_version")?,
        classes: list("weir.classes")?,
        features: list("weir.features")?,
        anomaly_reference: match get("weir.anomaly_reference") {
            Ok(v) => serde_json::from_str(&v)
                .map_err(|e| ModelError::NotWeir(format!("weir.anomaly_reference: {e}")))?,
            Err(_) => Vec::new(),
        },
        alert_thresholds: match get("weir.alert_thresholds") {
            Ok(v) => serde_json::from_str(&v)
                .map_err(|e| ModelError::NotWeir(format!("weir.alert_thresholds: {e}")))?,
            Err(_) => Vec::new(),
        },
    };
    // One threshold per class or none: a shorter list would leave classes at 0 unseen.
    let (t, c) = (info.alert_thresholds.len(), info.classes.len());
    if t != 0 && t != c {
        return Err(ModelError::NotWeir(format!(
            "weir.alert_thresholds: {t} values for {c} classes (one per class, in class order)"
        )));
    }
    Ok(info)
}

fn tensor(name: &str, dims: &[i64], data: &[f32]) -> TensorProto {
    let mut raw = Vec::with_capacity(data.len() * 4);
    for v in data {
        raw.extend_from_slice(&v.to_le_bytes());
    }
    TensorProto {
        dims: dims.to_vec(),
        data_type: Some(FLOAT),
        name: Some(name.into()),
        raw_data: Some(raw),
        ..Default::default()
    }
}

fn node(op: &str, inputs: &[&str], outputs: &[&str], attribute: Vec<AttributeProto>) -> NodeProto {
    NodeProto {
        input: inputs.iter().map(|s| s.to_string()).collect(),
        output: outputs.iter().map(|s| s.to_string()).collect(),
        name: Some(format!("{op}_{}", outputs[0])),
        op_type: Some(op.into()),
        domain: Some(String::new()),
        attribute,
    }
}

fn attr_int(name: &str, v: i64) -> AttributeProto {
    AttributeProto {
        name: Some(name.into()),
        r#type: Some(ATTR_INT),
        i: Some(v),
        ..Default::default()
    }
}

fn value_info(name: &str, dims: &[Option<i64>]) -> ValueInfoProto {
    ValueInfoProto {
        name: Some(name.into()),
        r#type: Some(TypeProto {
            tensor_type: Some(TypeProtoTensor {
                elem_type: Some(FLOAT),
                shape: Some(TensorShapeProto {
                    dim: dims
                        .iter()
                        .map(|d| match d {
                            Some(v) => Dimension {
                                dim_value: Some(*v),
                                dim_param: None,
                            },
                            None => Dimension {
                                dim_value: None,
                                dim_param: Some("N".into()),
                            },
                        })
                        .collect(),
                }),
            }),
        }),
        doc_string: None,
    }
}

/// A small deterministic model for tests (pseudo-random weights from `seed`).
pub fn test_model(features: usize, hidden: usize, classes: usize, seed: u64) -> Mlp {
    let mut s = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
    let mut rnd = move || {
        s = s
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        ((s >> 40) as f32 / (1u64 << 24) as f32) - 0.5
    };
    let mut dense = |i: usize, o: usize| Dense {
        inputs: i,
        outputs: o,
        weight: (0..i * o).map(|_| rnd()).collect(),
        bias: (0..o).map(|_| rnd() * 0.1).collect(),
    };
    let layers = vec![
        dense(features, hidden),
        dense(hidden, hidden),
        dense(hidden, classes),
    ];
    Mlp {
        info: ModelInfo {
            model_version: "weir-mlp/test".into(),
            feature_version: "test".into(),
            classes: (0..classes).map(|c| format!("class{c}")).collect(),
            features: (0..features).map(|f| format!("f{f}")).collect(),
            anomaly_reference: Vec::new(),
            alert_thresholds: Vec::new(),
        },
        mean: (0..features).map(|i| i as f32 * 0.5).collect(),
        std: (0..features).map(|i| 1.0 + i as f32 * 0.25).collect(),
        layers,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forward_gives_probabilities_and_energy() {
        let m = test_model(5, 8, 3, 7);
        let x: Vec<f32> = (0..20).map(|i| i as f32 * 0.3 - 2.0).collect();
        let out = m.forward(&x);
        assert_eq!(out.probabilities.len(), 12);
        assert_eq!(out.energy.len(), 4);
        for row in out.probabilities.chunks(3) {
            assert!((row.iter().sum::<f32>() - 1.0).abs() < 1e-5);
            assert!(row.iter().all(|p| (0.0..=1.0).contains(p)));
        }
    }

    #[test]
    fn onnx_round_trip_keeps_metadata_and_weights() {
        let m = test_model(4, 6, 3, 1);
        let bytes = m.to_onnx();
        let info = read_info(&bytes).unwrap();
        assert_eq!(info, m.info);
        let decoded = ModelProto::decode(bytes.as_slice()).unwrap();
        let g = decoded.graph.unwrap();
        let w0 = g
            .initializer
            .iter()
            .find(|t| t.name.as_deref() == Some("w0"))
            .unwrap();
        assert_eq!(w0.dims, vec![6, 4]);
        // The whole model reads back, and writing it again gives the same bytes.
        let back = read_model(&bytes).unwrap();
        assert_eq!(back, m);
        assert_eq!(back.to_onnx(), bytes);
        let raw = w0.raw_data.as_ref().unwrap();
        assert_eq!(
            f32::from_le_bytes(raw[0..4].try_into().unwrap()),
            m.layers[0].weight[0]
        );
        assert!(matches!(
            read_info(b"not a model"),
            Err(ModelError::Decode(_))
        ));
        let foreign = ModelProto {
            graph: Some(GraphProto::default()),
            ..Default::default()
        };
        assert!(matches!(
            read_info(&foreign.encode_to_vec()),
            Err(ModelError::NotWeir(_))
        ));
    }

    #[test]
    fn a_threshold_list_that_does_not_fit_the_classes_is_refused() {
        // Three classes, two thresholds: the third class would silently get 0.
        let mut m = test_model(4, 6, 3, 1);
        m.info.alert_thresholds = vec![0.5, 0.9];
        let e = read_info(&m.to_onnx()).unwrap_err().to_string();
        assert!(e.contains("2 values for 3 classes"), "{e}");
        m.info.alert_thresholds = vec![0.5, 0.9, 1.5];
        assert_eq!(read_info(&m.to_onnx()).unwrap().alert_thresholds.len(), 3);
        m.info.alert_thresholds = Vec::new();
        assert!(
            read_info(&m.to_onnx()).is_ok(),
            "no list: the user's threshold alone"
        );
    }

    #[test]
    fn anomaly_percentiles_read_against_the_benign_reference() {
        let energy: Vec<f32> = (0..1001).map(|i| i as f32 / 10.0).collect();
        let r = anomaly_reference(&energy);
        assert_eq!(r.len(), 101);
        assert_eq!((r[0], r[50], r[100]), (0.0, 50.0, 100.0));
        assert_eq!(anomaly_percentile(&r, -5.0), 0.0);
        assert_eq!(anomaly_percentile(&r, 1e9), 100.0);
        assert!((anomaly_percentile(&r, 99.05) - 99.05).abs() < 1e-3);
        assert!((anomaly_percentile(&r, 12.5) - 12.5).abs() < 1e-3);
        assert!(anomaly_percentile(&[], 3.0).is_nan());
        assert!(anomaly_reference(&[f32::NAN]).is_empty());
    }
}
