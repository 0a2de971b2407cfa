//! One flow: its full row, why the model decided as it did, and its packets.
//!
//! | endpoint | returns |
//! |---|---|
//! | `GET /api/flows/{capture}/{shard}/{row}` | the flow's full result row (features, every class probability) |
//! | `GET /api/flows/{capture}/{shard}/{row}/explain` | the features that moved its verdict most (occlusion) |
//! | `GET /api/flows/{capture}/{shard}/{row}/pcap` | its packets cut from the capture, as a PCAP |

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use weir_wire::columns as col;

use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use polars::prelude::*;
use serde_json::{json, Value as Js};
use weir_fl::reload::{Reload, Reloader};
use weir_model::FlowModel;
use weir_pipeline::{capture_status, carve, open_source, CarveError, FlowKey};
use weir_records::columns::{strings, u64s};
use weir_search::Searcher;

use crate::{blocking, checked_id, rows_json, ApiError, Shared};

/// How many features an explanation lists.
pub const EXPLAINED: usize = 12;

/// Builds the model that classifies uploads and explains verdicts: the binaries pass the
/// shipped ONNX model through ONNX Runtime (`weir_classify::shipped_cpu_model`), so this crate
/// links no inference runtime. Called once, on first use; its error is shown each time.
pub type ModelSource = Arc<dyn Fn() -> Result<Box<dyn FlowModel>, String> + Send + Sync>;

/// What the flow endpoints read: the store, where `weir analyze`'s captures are (a data
/// directory's parent), and the model that explains verdicts (loaded on first use).
pub struct Flows {
    /// The results.
    pub store: Shared,
    /// For a data directory of `weir analyze`: the directory its capture paths are relative to.
    pub files_beside: Option<PathBuf>,
    /// Searches over the store, with the parts read so far kept in memory.
    pub search: Arc<Searcher>,
    source: ModelSource,
    model: Mutex<Option<Result<Box<dyn FlowModel>, String>>>,
    registry: Mutex<Option<Reloader<Box<dyn FlowModel>>>>,
}

/// How much one feature moved a verdict.
#[derive(Clone, Debug, PartialEq)]
pub struct Attribution {
    /// Feature column.
    pub feature: String,
    /// Its value in the flow.
    pub value: f32,
    /// p(class) as the flow is, minus p(class) with the feature at its training mean.
    pub delta: f32,
}

impl Flows {
    /// Flow endpoints over `store`, with the model `source` builds.
    pub fn new(store: Shared, files_beside: Option<PathBuf>, source: ModelSource) -> Self {
        Flows {
            source,
            search: Arc::new(Searcher::new(store.clone())),
            store,
            files_beside,
            model: Mutex::new(None),
            registry: Mutex::new(None),
        }
    }

    /// Follow a federated-learning registry: uploads are classified, and verdicts explained,
    /// by its current version, checked by `reloader` before each use (a version that does
    /// not check out is refused and the running model stays).
    pub fn following(self, reloader: Reloader<Box<dyn FlowModel>>) -> Self {
        *self.registry.lock().unwrap_or_else(|p| p.into_inner()) = Some(reloader);
        self
    }

    /// `f` with the current model (the shipped one, or the registry's current version),
    /// loaded on first use (a load that failed says why, each time). One caller at a time:
    /// an upload's shards are all classified by one model.
    pub(crate) fn with_model<T>(
        &self,
        f: impl FnOnce(&mut Box<dyn FlowModel>) -> T,
    ) -> Result<T, String> {
        let mut guard = self.model.lock().unwrap_or_else(|p| p.into_inner());
        let model = guard.get_or_insert_with(|| (self.source)());
        let model = model.as_mut().map_err(|e| e.clone())?;
        if let Some(r) = self
            .registry
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .as_mut()
        {
            match r.check(model) {
                Reload::Swapped { from, to, .. } => {
                    tracing::info!(target: "weir::model", from, to, "model switched (published to the registry)")
                }
                Reload::Refused(why) => tracing::warn!(
                    "model: the registry's version was refused, keeping the one running: {why}"
                ),
                Reload::Unchanged => {}
            }
        }
        Ok(f(model))
    }

    /// The explaining model's classes (loaded if need be), or none when it cannot load.
    pub fn classes(&self) -> Vec<String> {
        self.with_model(|m| m.info().classes.clone())
            .unwrap_or_default()
    }

    /// Why the model gave `row` (one full result row) its class: the [`EXPLAINED`] features
    /// with the largest effect, by occlusion (`weir_model::explain`) with the shipped
    /// model, which must be the model that decided.
    pub fn explain(&self, row: &DataFrame) -> Result<Vec<Attribution>, String> {
        let e = |e: PolarsError| e.to_string();
        let class = strings(row, col::CLASS)
            .map_err(e)?
            .pop()
            .unwrap_or_default();
        let decided = strings(row, col::MODEL_VERSION)
            .map_err(e)?
            .pop()
            .unwrap_or_default();
        let x = weir_records::feature_matrix(row).map_err(e)?;
        let (info, effects) = self.with_model(|model| {
            let info = model.info().clone();
            if info.model_version != decided {
                return Err(format!(
                    "this flow was classified by model {decided}; this server has {} (explanations come from the model that decided)",
                    info.model_version
                ));
            }
            let k = info
                .classes
                .iter()
                .position(|c| *c == class)
                .ok_or_else(|| format!("the model has no class {class:?}"))?;
            let effects = weir_model::explain(model, &x, k).map_err(|e| e.to_string())?;
            Ok((info, effects))
        })??;
        Ok(effects
            .into_iter()
            .take(EXPLAINED)
            .map(|(i, delta)| Attribution {
                feature: info.features[i].clone(),
                value: x[i],
                delta,
            })
            .collect())
    }

    /// The flow's packets as a PCAP.
    pub fn carve(&self, capture: &str, row: &DataFrame) -> Result<(Vec<u8>, u64), CarveError> {
        let bad = |e: PolarsError| CarveError::Read(e.to_string());
        let st = capture_status(self.store.as_ref(), capture)?
            .ok_or_else(|| CarveError::Unavailable(format!("no capture {capture:?}")))?;
        let ip = |c: &str| -> Result<std::net::IpAddr, CarveError> {
            let s = strings(row, c).map_err(bad)?.pop().unwrap_or_default();
            s.parse()
                .map_err(|_| CarveError::Read(format!("{c} {s:?} is not an address")))
        };
        let n = |c: &str| -> Result<u64, CarveError> {
            Ok(u64s(row, c).map_err(bad)?.pop().unwrap_or(0))
        };
        let key = FlowKey {
            proto: n(col::PROTO)? as u8,
            src: (ip(col::SRC_IP)?, n(col::SRC_PORT)? as u16),
            dst: (ip(col::DST_IP)?, n(col::DST_PORT)? as u16),
            first_offset: n(col::FIRST_OFFSET)?,
            last_offset: n(col::LAST_OFFSET)?,
        };
        let source = open_source(self.store.as_ref(), &st, self.files_beside.as_deref())?;
        let c = carve(source, &key)?;
        Ok((c.pcap, c.packets))
    }
}

/// The flow endpoints' routes.
pub fn router(flows: Arc<Flows>) -> Router {
    Router::new()
        .route("/api/flows/{capture}/{shard}/{row}", get(one))
        .route("/api/flows/{capture}/{shard}/{row}/explain", get(explain))
        .route("/api/flows/{capture}/{shard}/{row}/pcap", get(pcap))
        .with_state(flows)
}

type At = Path<(String, String, String)>;

/// The path's flow: its capture id (checked) and full row.
async fn flow_of(flows: &Arc<Flows>, at: At) -> Result<(String, DataFrame), ApiError> {
    let Path((capture, shard, row)) = at;
    checked_id(&capture)?;
    let num = |what: &str, s: &str| {
        s.parse::<u32>()
            .map_err(|_| ApiError::bad(format!("{what} {s:?} is not a number")))
    };
    let (shard, row) = (num("shard", &shard)?, num("row", &row)?);
    let store = flows.store.clone();
    let c = capture.clone();
    let df = blocking(move || Ok(weir_search::flow_row(store.as_ref(), &c, shard, row)?)).await?;
    Ok((capture, df))
}

async fn one(State(flows): State<Arc<Flows>>, at: At) -> Result<Json<Js>, ApiError> {
    let (_, df) = flow_of(&flows, at).await?;
    let mut rows = rows_json(&df).map_err(ApiError::internal)?;
    Ok(Json(rows.pop().unwrap_or(Js::Null)))
}

async fn explain(State(flows): State<Arc<Flows>>, at: At) -> Result<Json<Js>, ApiError> {
    let (_, df) = flow_of(&flows, at).await?;
    let f = flows.clone();
    let d = df.clone();
    let effects = blocking(move || Ok(f.explain(&d))).await?;
    let class = strings(&df, col::CLASS)
        .map_err(ApiError::internal)?
        .pop()
        .unwrap_or_default();
    let model = strings(&df, col::MODEL_VERSION)
        .map_err(ApiError::internal)?
        .pop()
        .unwrap_or_default();
    match effects {
        Ok(list) => Ok(Json(json!({
            "method": "occlusion: each feature in turn replaced by its training mean, the flow classified again",
            "class": class,
            "model_version": model,
            "features": list.iter().map(|a| json!({
                "feature": a.feature,
                "value": if a.value.is_finite() { json!(a.value) } else { Js::Null },
                "delta": a.delta,
            })).collect::<Vec<_>>(),
        }))),
        Err(reason) => Err(ApiError::conflict(reason)),
    }
}

async fn pcap(State(flows): State<Arc<Flows>>, at: At) -> Result<Response, ApiError> {
    let (capture, df) = flow_of(&flows, at).await?;
    let f = flows.clone();
    let c = capture.clone();
    let (bytes, _) = blocking(move || {
        f.carve(&c, &df).map_err(|e| match e {
            CarveError::Store(e) => e.into(),
            CarveError::Unavailable(m) => ApiError::conflict(m),
            CarveError::Read(m) => ApiError::internal(m),
        })
    })
    .await?;
    Ok((
        [
            (
                axum::http::header::CONTENT_TYPE,
                "application/vnd.tcpdump.pcap".to_string(),
            ),
            (
                axum::http::header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{capture}-flow.pcap\""),
            ),
        ],
        bytes,
    )
        .into_response())
}
