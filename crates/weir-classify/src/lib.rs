//! # weir-classify
//!
//! Owns: ONNX Runtime (the only crate that links `ort`), as a `weir_model::FlowModel`. Must not
//! depend on: the store, polars, the pipeline.
//!
//! Batched classification of flow feature vectors with a weir ONNX model, through ONNX Runtime
//! (`ort`, loaded at run time from the library `scripts/setup-ort.sh` fetches).
//!
//! One [`Classifier`] holds one session, created once and reused for every batch. It runs on
//! CUDA when asked for ([`Device::Cuda`], which fails loudly if CUDA cannot be used) or when
//! available ([`Device::Auto`], which falls back to the CPU and says so), else on the CPU. The
//! provider actually in use is logged and kept in [`Classifier::provider`].
//!
//! Every result row has the predicted class, the probability of every class, the anomaly score
//! (energy) and, through [`Classifier::info`], the model version.
//!
//! Bad input never panics: a missing, corrupt or foreign model file, or a model trained on
//! another feature spec, is an error that says what to do; NaN and infinite features are a
//! handled case (the model maps NaN to "unknown" and clips infinities, see `weir_model`), and
//! [`Predictions::nonfinite_rows`] counts the rows that had any.
#![warn(missing_docs)]

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use ort::session::Session;
use tracing::{info, warn};
pub use weir_model::{explain, Predictions};
use weir_model::{FlowModel, InferenceError, ModelInfo, INPUT, OUT_ENERGY, OUT_PROBABILITIES};

/// The ONNX Runtime version `scripts/setup-ort.sh` installs.
pub const ORT_VERSION: &str = "1.31.1";

/// The model shipped with this build: models/weir-mlp.onnx, trained by `weir train` (see
/// models/MODEL_CARD.md). `weir analyze` and the function binaries use it unless given
/// another.
pub static SHIPPED_MODEL: &[u8] = include_bytes!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../models/weir-mlp.onnx"
));

/// Default rows per inference call (measured by `just bench-classify`).
pub const DEFAULT_BATCH: usize = 4096;

/// Where to run.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Device {
    /// CUDA when the CUDA provider loads, else the CPU (logged).
    #[default]
    Auto,
    /// The CPU.
    Cpu,
    /// CUDA, or an error.
    Cuda,
}

impl std::str::FromStr for Device {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "auto" => Ok(Device::Auto),
            "cpu" => Ok(Device::Cpu),
            "cuda" | "gpu" => Ok(Device::Cuda),
            _ => Err(format!("unknown device {s:?}: use auto, cpu or cuda")),
        }
    }
}

/// The execution provider a session runs on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Provider {
    /// ONNX Runtime's CPU provider.
    Cpu,
    /// The CUDA provider.
    Cuda,
}

impl Provider {
    /// Name as ONNX Runtime spells it.
    pub fn name(self) -> &'static str {
        match self {
            Provider::Cpu => "CPUExecutionProvider",
            Provider::Cuda => "CUDAExecutionProvider",
        }
    }
}

/// How to build a [`Classifier`].
#[derive(Clone, Debug)]
pub struct Options {
    /// Where to run.
    pub device: Device,
    /// Threads ONNX Runtime uses inside one call (0: its default, one per core).
    pub threads: usize,
    /// Let ONNX Runtime's threads spin waiting for the next call (its default). Off here:
    /// weir's classifier shares the cores with other stages (the splitter in `weir analyze`,
    /// Parquet and S3 in the workers), and a spinning thread takes a core they need.
    pub spin: bool,
    /// Rows per inference call.
    pub batch: usize,
    /// The feature spec the engine produces; a model trained on another is refused.
    pub feature_version: String,
    /// The number of features the engine produces.
    pub features: usize,
    /// CUDA device ordinal.
    pub cuda_device: i32,
    /// A flow raises an alert when its class is not Normal and that class's probability is
    /// at least this ([`DEFAULT_MIN_PROBABILITY`]; 0 flags every non-Normal verdict).
    pub min_probability: f32,
}

/// The default alert threshold on the predicted class's probability. From the evaluation's
/// threshold table (models/EVAL.md): the lowest threshold at which the held-out benign flows
/// flagged fall under the 2% target (1.84% vs 3.11% at 0.5: 32 flows instead of 54, 10 benign
/// captures with an alert instead of 14), for one attack capture of 29 found less (17 vs 18).
pub const DEFAULT_MIN_PROBABILITY: f32 = 0.9;

/// An alert threshold as a user writes it (`--min-probability`, `WEIR_MIN_PROBABILITY`): a
/// number from 0 to 1, or an error that says so.
pub fn parse_probability(s: &str) -> Result<f32, String> {
    match s.parse::<f32>() {
        Ok(p) if (0.0..=1.0).contains(&p) => Ok(p),
        _ => Err(format!(
            "{s:?} is not a probability: give a number from 0 to 1"
        )),
    }
}

impl Default for Options {
    fn default() -> Self {
        Options {
            device: Device::Auto,
            threads: 0,
            spin: false,
            batch: DEFAULT_BATCH,
            feature_version: weir_flow::FEATURE_VERSION.to_string(),
            features: weir_flow::N_FEATURES,
            cuda_device: 0,
            min_probability: DEFAULT_MIN_PROBABILITY,
        }
    }
}

/// Why a classifier could not be built or run.
#[derive(Debug, thiserror::Error)]
pub enum ClassifyError {
    /// The ONNX Runtime library is not where weir looks for it.
    #[error(
        "ONNX Runtime library not found at {0}: run `bash scripts/setup-ort.sh` (fetches it from \
         PyPI and checks its sha256) or point WEIR_ORT_LIB at a libonnxruntime.so {ORT_VERSION}"
    )]
    RuntimeMissing(PathBuf),
    /// The library exists but would not load.
    #[error("could not load ONNX Runtime from {path}: {reason}")]
    RuntimeLoad {
        /// The library.
        path: PathBuf,
        /// ONNX Runtime's or the loader's message.
        reason: String,
    },
    /// The model file could not be read.
    #[error("cannot read model {path}: {reason}")]
    ModelRead {
        /// The file.
        path: PathBuf,
        /// The OS error.
        reason: String,
    },
    /// The bytes are not a weir model.
    #[error("{0} (expected an ONNX file written by `weir train`, such as models/weir-mlp.onnx)")]
    Model(#[from] weir_model::ModelError),
    /// The model was trained on another feature spec.
    #[error(
        "the model was trained on features {model:?} but this engine produces {engine:?}: \
         retrain it with `weir train` or use the model shipped with this version"
    )]
    FeatureVersion {
        /// What the model says.
        model: String,
        /// What the engine produces.
        engine: String,
    },
    /// The model's input width is not the engine's.
    #[error("the model takes {model} features but the engine produces {engine}")]
    FeatureCount {
        /// Model input width.
        model: usize,
        /// Engine feature count.
        engine: usize,
    },
    /// CUDA was required and could not be used.
    #[error(
        "CUDA requested but unavailable: {0}. Fetch the CUDA provider with \
         `WEIR_ORT_GPU=1 bash scripts/setup-ort.sh`, make the CUDA 13 / cuDNN 9 libraries \
         loadable (LD_LIBRARY_PATH), or use --device cpu"
    )]
    Cuda(String),
    /// The input is not a whole number of rows.
    #[error("{len} values is not a whole number of {features}-feature rows")]
    Shape {
        /// Values given.
        len: usize,
        /// Row width.
        features: usize,
    },
    /// The model's graph is not one weir can read answers from (output names, classes).
    #[error("the model is not usable: {0} (expected an ONNX file written by `weir train`)")]
    Unusable(String),
    /// ONNX Runtime refused the model or a run.
    #[error("ONNX Runtime: {0}")]
    Ort(String),
}

/// The shipped model on the CPU ([`Classifier::shipped_cpu`]) as a boxed [`FlowModel`], with
/// an error an analyst reads: the model `weir serve` classifies uploads and explains verdicts
/// with (`weir_api::ModelSource`).
pub fn shipped_cpu_model() -> Result<Box<dyn FlowModel>, String> {
    Classifier::shipped_cpu()
        .map(|c| Box::new(c) as Box<dyn FlowModel>)
        .map_err(|e| format!("the model could not be loaded: {e}"))
}

/// Builds classifiers from model bytes with `opts`: the loader a hot reload
/// (`weir_fl::reload::Reloader`) runs for a model the registry names.
pub fn loader(opts: Options) -> Box<dyn Fn(&[u8]) -> Result<Classifier, String> + Send + Sync> {
    Box::new(move |bytes| Classifier::from_bytes(bytes, &opts).map_err(|e| e.to_string()))
}

impl From<ClassifyError> for InferenceError {
    fn from(e: ClassifyError) -> Self {
        InferenceError {
            model_fault: e.is_model_fault(),
            reason: e.to_string(),
        }
    }
}

/// What the stages call (weir-pipeline, weir-api, weir-fl's reload): the same as the
/// inherent methods.
impl FlowModel for Classifier {
    fn info(&self) -> &ModelInfo {
        &self.info
    }
    fn min_probability(&self) -> f32 {
        self.min_probability
    }
    fn classify(&mut self, x: &[f32]) -> Result<Predictions, InferenceError> {
        Classifier::classify(self, x).map_err(InferenceError::from)
    }
}

impl ClassifyError {
    /// Whether the model itself is at fault (trying again with it cannot help), as opposed
    /// to a run that failed.
    pub fn is_model_fault(&self) -> bool {
        !matches!(self, ClassifyError::Ort(_) | ClassifyError::Shape { .. })
    }
}

fn ort_err<R>(e: ort::Error<R>) -> ClassifyError {
    ClassifyError::Ort(e.message().to_string())
}

/// The library weir loads: `WEIR_ORT_LIB`; else the first directory of `WEIR_ORT_DIR`, the
/// running executable's own directory, `../lib/weir` beside it (where `scripts/install.sh`
/// puts it next to `~/.local/bin/weir`) and the cache `scripts/setup-ort.sh` fills
/// (`~/.cache/weir/ort/VERSION`) that holds it; its `gpu/` build when `gpu` and present.
pub fn runtime_path(gpu: bool) -> PathBuf {
    if let Some(p) = std::env::var_os("WEIR_ORT_LIB") {
        return PathBuf::from(p);
    }
    let name = format!("libonnxruntime.so.{ORT_VERSION}");
    let mut dirs: Vec<PathBuf> = Vec::new();
    if let Some(d) = std::env::var_os("WEIR_ORT_DIR") {
        dirs.push(PathBuf::from(d));
    } else {
        if let Some(exe) = std::env::current_exe()
            .ok()
            .and_then(|e| e.canonicalize().ok())
        {
            if let Some(bin) = exe.parent() {
                dirs.push(bin.to_path_buf());
                dirs.push(bin.join("../lib/weir"));
            }
        }
        let home = std::env::var_os("HOME").unwrap_or_else(|| ".".into());
        dirs.push(Path::new(&home).join(".cache/weir/ort").join(ORT_VERSION));
    }
    let last = dirs.last().cloned().unwrap_or_default();
    let dir = dirs
        .into_iter()
        .find(|d| d.join(&name).exists())
        .unwrap_or(last);
    let gpu_lib = dir.join("gpu").join(&name);
    if gpu && gpu_lib.exists() && dir.join("gpu/libonnxruntime_providers_cuda.so").exists() {
        gpu_lib
    } else {
        dir.join(name)
    }
}

/// The process-wide ONNX Runtime environment (one library per process).
struct Runtime {
    env: ort::environment::Environment,
    path: PathBuf,
}

/// Why the process-wide runtime could not be set up (kept, so every later call reports the
/// library that was actually tried).
enum InitError {
    Missing(PathBuf),
    Load(PathBuf, String),
}

static RUNTIME: OnceLock<Result<Runtime, InitError>> = OnceLock::new();

fn runtime(gpu: bool) -> Result<&'static Runtime, ClassifyError> {
    let rt = RUNTIME.get_or_init(|| {
        let path = runtime_path(gpu);
        if !path.exists() {
            return Err(InitError::Missing(path));
        }
        let env = ort::init_from(&path)
            .map_err(|e| e.to_string())
            .and_then(|b| {
                b.with_name("weir")
                    .build()
                    .map_err(|e| e.message().to_string())
            })
            .map_err(|reason| InitError::Load(path.clone(), reason))?;
        info!(library = %path.display(), "ONNX Runtime loaded");
        Ok(Runtime { env, path })
    });
    match rt {
        Ok(r) => Ok(r),
        Err(InitError::Missing(p)) => Err(ClassifyError::RuntimeMissing(p.clone())),
        Err(InitError::Load(path, reason)) => Err(ClassifyError::RuntimeLoad {
            path: path.clone(),
            reason: reason.clone(),
        }),
    }
}

/// A loaded model on one execution provider.
pub struct Classifier {
    session: Session,
    info: ModelInfo,
    provider: Provider,
    batch: usize,
    min_probability: f32,
}

impl std::fmt::Debug for Classifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Classifier")
            .field("model", &self.info.model_version)
            .field("provider", &self.provider)
            .field("batch", &self.batch)
            .finish()
    }
}

impl Classifier {
    /// Load a model file.
    pub fn load(path: &Path, opts: &Options) -> Result<Self, ClassifyError> {
        let bytes = std::fs::read(path).map_err(|e| ClassifyError::ModelRead {
            path: path.to_path_buf(),
            reason: e.to_string(),
        })?;
        Self::from_bytes(&bytes, opts)
    }

    /// The model built into weir ([`SHIPPED_MODEL`]) on the CPU with one thread: what tests
    /// and small tools use.
    pub fn shipped_cpu() -> Result<Self, ClassifyError> {
        Self::from_bytes(
            SHIPPED_MODEL,
            &Options {
                device: Device::Cpu,
                threads: 1,
                ..Options::default()
            },
        )
    }

    /// Load a model from its bytes.
    pub fn from_bytes(bytes: &[u8], opts: &Options) -> Result<Self, ClassifyError> {
        // check the model before touching the runtime: clear errors even without it
        let info = weir_model::read_info(bytes)?;
        if info.feature_version != opts.feature_version {
            return Err(ClassifyError::FeatureVersion {
                model: info.feature_version,
                engine: opts.feature_version.clone(),
            });
        }
        if info.features.len() != opts.features {
            return Err(ClassifyError::FeatureCount {
                model: info.features.len(),
                engine: opts.features,
            });
        }
        if info.classes.is_empty() {
            return Err(ClassifyError::Unusable(
                "its weir.classes lists no class".into(),
            ));
        }
        let rt = runtime(opts.device != Device::Cpu)?;
        let (session, provider) = match opts.device {
            Device::Cpu => (build_session(rt, bytes, opts, false)?, Provider::Cpu),
            Device::Cuda => (
                build_session(rt, bytes, opts, true)
                    .map_err(|e| ClassifyError::Cuda(e.to_string()))?,
                Provider::Cuda,
            ),
            Device::Auto => match build_session(rt, bytes, opts, true) {
                Ok(s) => (s, Provider::Cuda),
                Err(e) => {
                    info!(reason = %e, "CUDA not available, using the CPU");
                    (build_session(rt, bytes, opts, false)?, Provider::Cpu)
                }
            },
        };
        check_graph(&session)?;
        info!(
            provider = provider.name(),
            model = %info.model_version,
            library = %rt.path.display(),
            "classifier ready"
        );
        Ok(Classifier {
            session,
            info,
            provider,
            batch: opts.batch.max(1),
            min_probability: opts.min_probability,
        })
    }

    /// What the model says about itself (version, feature spec, class names).
    pub fn info(&self) -> &ModelInfo {
        &self.info
    }

    /// The provider the session runs on.
    pub fn provider(&self) -> Provider {
        self.provider
    }

    /// The alert threshold on the predicted class's probability ([`Options::min_probability`]).
    pub fn min_probability(&self) -> f32 {
        self.min_probability
    }

    /// Classify `x` (row-major, `info().features.len()` values per row), in batches.
    pub fn classify(&mut self, x: &[f32]) -> Result<Predictions, ClassifyError> {
        let f = self.info.features.len();
        let c = self.info.classes.len();
        if !x.len().is_multiple_of(f) {
            return Err(ClassifyError::Shape {
                len: x.len(),
                features: f,
            });
        }
        let rows = x.len() / f;
        let mut out = Predictions {
            classes: c,
            predicted: Vec::with_capacity(rows),
            probabilities: Vec::with_capacity(rows * c),
            anomaly: Vec::with_capacity(rows),
            nonfinite_rows: x
                .chunks_exact(f)
                .filter(|r| r.iter().any(|v| !v.is_finite()))
                .count(),
        };
        for chunk in x.chunks(self.batch * f) {
            let n = chunk.len() / f;
            let input = ort::value::TensorRef::from_array_view(([n, f], chunk)).map_err(ort_err)?;
            let outputs = self
                .session
                .run(ort::inputs![INPUT => input])
                .map_err(ort_err)?;
            let output = |name: &str| {
                outputs
                    .get(name)
                    .ok_or_else(|| ClassifyError::Unusable(format!("no output {name:?}")))
            };
            let (_, probs) = output(OUT_PROBABILITIES)?
                .try_extract_tensor::<f32>()
                .map_err(ort_err)?;
            let (_, energy) = output(OUT_ENERGY)?
                .try_extract_tensor::<f32>()
                .map_err(ort_err)?;
            if probs.len() != n * c || energy.len() != n {
                return Err(ClassifyError::Ort(format!(
                    "model returned {} probabilities and {} scores for {n} rows",
                    probs.len(),
                    energy.len()
                )));
            }
            for row in probs.chunks_exact(c) {
                let arg = (0..c).fold(0, |a, j| if row[j] > row[a] { j } else { a });
                out.predicted.push(arg as u16);
            }
            out.probabilities.extend_from_slice(probs);
            out.anomaly.extend_from_slice(energy);
        }
        if out.nonfinite_rows > 0 {
            warn!(
                rows = out.nonfinite_rows,
                "rows with NaN or infinite features (classified with those features as unknown)"
            );
        }
        Ok(out)
    }
}

/// The graph has the input and outputs weir feeds and reads, by name: checked when the
/// model loads, so a model that would fail (or worse) on the first batch is refused first.
fn check_graph(session: &Session) -> Result<(), ClassifyError> {
    let names =
        |o: &[ort::value::Outlet]| o.iter().map(|x| x.name().to_string()).collect::<Vec<_>>();
    let (inputs, outputs) = (names(session.inputs()), names(session.outputs()));
    if !inputs.iter().any(|n| n == INPUT) {
        return Err(ClassifyError::Unusable(format!(
            "no input named {INPUT:?} (its inputs: {inputs:?})"
        )));
    }
    for want in [OUT_PROBABILITIES, OUT_ENERGY] {
        if !outputs.iter().any(|n| n == want) {
            return Err(ClassifyError::Unusable(format!(
                "no output named {want:?} (its outputs: {outputs:?})"
            )));
        }
    }
    Ok(())
}

fn build_session(
    rt: &Runtime,
    bytes: &[u8],
    opts: &Options,
    cuda: bool,
) -> Result<Session, ClassifyError> {
    let mut b = Session::builder(&rt.env).map_err(ort_err)?;
    if opts.threads > 0 {
        b = b.with_intra_threads(opts.threads).map_err(ort_err)?;
    }
    b = b.with_intra_op_spinning(opts.spin).map_err(ort_err)?;
    if cuda {
        let ep = ort::ep::CUDA::default()
            .with_device_id(opts.cuda_device)
            .build()
            .error_on_failure();
        b = b.with_execution_providers([ep]).map_err(ort_err)?;
    }
    b.commit_from_memory(bytes).map_err(ort_err)
}
