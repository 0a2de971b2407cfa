//! Federated learning on AWS: the merge function's handler and the classifiers' hot reload,
//! both over the capture bucket (the registry lives in it, under `registry/` and `fl/`).
//!
//! Environment:
//! - `WEIR_MODEL_REGISTRY=bucket`: classifiers (Lambda, GPU worker) follow the registry in
//!   `WEIR_BUCKET`, looking every `WEIR_MODEL_POLL_S` seconds (30) between batches; with
//!   `WEIR_REGISTRY_PUBKEY` (hex) they refuse pointers the registry key did not sign.
//! - The merge function: `WEIR_FL_QUORUM` (3), `WEIR_FL_AGGREGATION` (trimmed:0.2 | median |
//!   fedavg), `WEIR_FL_SERVER_CLIP` (5; 0 = none), `WEIR_FL_MEDIAN_CLIP` (true: also clip to the
//!   round's median update norm), `WEIR_FL_NOISE` (0.01), `WEIR_FL_MOMENTUM`
//!   (0), `WEIR_FL_BOUND` (7.5), `WEIR_FL_DEADLINE_S` (3600), `WEIR_FL_GATE_MARGIN` (0.02),
//!   `WEIR_FL_ASYNC_STALENESS` (unset: synchronous rounds), `WEIR_FL_SCREEN_COSINE` (0: leave
//!   out updates whose cosine with the server's reference update is below it; `off`: no
//!   screen), `WEIR_REGISTRY_KEY` (a key file the pointer is signed with; without it, the key
//!   `weir fl init` keeps in the bucket at `fl/keys/registry.key`). The merge refuses to run
//!   without a key: every pointer it publishes is signed.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use tracing::{info, warn};
use weir_classify::{Classifier, Options};
use weir_fl::reload::{Reload, Reloader};
use weir_fl::round::{MergeConfig, Merger, Mode};
use weir_fl::update::SigningKey;
use weir_fl::Aggregation;
use weir_pipeline::Store;

use crate::{clients, S3Store};

fn env<T: std::str::FromStr>(name: &str, default: T) -> Result<T, String>
where
    T::Err: std::fmt::Display,
{
    match std::env::var(name) {
        Ok(v) if !v.trim().is_empty() => v.trim().parse().map_err(|e| format!("{name}={v}: {e}")),
        _ => Ok(default),
    }
}

/// The merge's settings from the environment (see the module doc).
pub fn merge_config_from_env() -> Result<MergeConfig, String> {
    let d = MergeConfig::default();
    let clip: f32 = env("WEIR_FL_SERVER_CLIP", weir_fl::update::DEFAULT_CLIP)?;
    Ok(MergeConfig {
        aggregation: Aggregation {
            rule: env("WEIR_FL_AGGREGATION", d.aggregation.rule)?,
            sample_cap: env("WEIR_FL_SAMPLE_CAP", d.aggregation.sample_cap)?,
            server_clip: (clip > 0.0).then_some(clip),
            clip_to_median: env("WEIR_FL_MEDIAN_CLIP", true)?,
            noise_multiplier: env("WEIR_FL_NOISE", d.aggregation.noise_multiplier)?,
            momentum: env("WEIR_FL_MOMENTUM", 0.0)?,
            server_lr: 1.0,
            screen: match std::env::var("WEIR_FL_SCREEN_COSINE") {
                Ok(v) if v.trim() == "off" => None,
                _ => Some(weir_fl::screen::Screen {
                    min_cosine: env("WEIR_FL_SCREEN_COSINE", 0.0)?,
                    ..weir_fl::screen::Screen::default()
                }),
            },
        },
        bound: env("WEIR_FL_BOUND", d.bound)?,
        quorum: env("WEIR_FL_QUORUM", d.quorum)?,
        deadline_s: env("WEIR_FL_DEADLINE_S", d.deadline_s)?,
        min_updates: 1,
        gate_margin: env("WEIR_FL_GATE_MARGIN", d.gate_margin)?,
        mode: match std::env::var("WEIR_FL_ASYNC_STALENESS") {
            Ok(v) if !v.is_empty() => Mode::Async {
                max_staleness: v
                    .parse()
                    .map_err(|e| format!("WEIR_FL_ASYNC_STALENESS={v}: {e}"))?,
            },
            _ => Mode::Sync,
        },
    })
}

/// A signing key from the file `WEIR_REGISTRY_KEY` names, if set.
pub fn registry_key_from_env() -> Result<Option<SigningKey>, String> {
    match std::env::var("WEIR_REGISTRY_KEY") {
        Ok(p) if !p.is_empty() => SigningKey::read_file("registry", std::path::Path::new(&p))
            .map(Some)
            .map_err(|e| format!("WEIR_REGISTRY_KEY: {e}")),
        _ => Ok(None),
    }
}

/// What the merge function holds between invocations.
pub struct MergeCtx {
    store: S3Store,
    key: Option<SigningKey>,
    /// The key kept in the bucket, once read (when `key` is not given).
    stored: std::sync::OnceLock<SigningKey>,
    cfg: MergeConfig,
}

impl MergeCtx {
    /// From the environment (`WEIR_BUCKET`, the AWS variables, the merge settings); inside a
    /// tokio runtime.
    pub async fn from_env() -> Result<Arc<MergeCtx>, String> {
        let bucket = std::env::var("WEIR_BUCKET")
            .ok()
            .filter(|b| !b.is_empty())
            .ok_or("WEIR_BUCKET is not set: the bucket that holds the model registry")?;
        let c = clients().await;
        Ok(Arc::new(MergeCtx {
            store: S3Store::new(c.s3, bucket, tokio::runtime::Handle::current()),
            key: registry_key_from_env()?,
            stored: std::sync::OnceLock::new(),
            cfg: merge_config_from_env()?,
        }))
    }
}

/// The merge function: any message (an update's upload notification, or a scheduled tick for
/// deadlines) runs one merge step over the bucket. The step is idempotent, so a failed batch
/// is simply delivered again.
pub async fn merge(ctx: Arc<MergeCtx>, event: SqsEvent) -> SqsBatchResponse {
    let ids: Vec<String> = event
        .records
        .iter()
        .filter_map(|r| r.message_id.clone())
        .collect();
    let c = ctx.clone();
    let r = tokio::task::spawn_blocking(move || {
        // The key in the bucket is read once per instance (not once per message).
        let key = match (&c.key, c.stored.get()) {
            (Some(k), _) | (None, Some(k)) => k,
            (None, None) => {
                let k = weir_fl::registry::stored_key(&c.store, false)?.ok_or_else(|| {
                    weir_fl::RegistryError::Refused(format!(
                        "no registry key: the merge signs every pointer it publishes; set WEIR_REGISTRY_KEY (a key file) or make one in the bucket with `weir fl init --bucket {}` ({})",
                        c.store.bucket(),
                        weir_fl::registry::KEY_OBJECT
                    ))
                })?;
                c.stored.get_or_init(|| k)
            }
        };
        Merger::new(&c.store, Some(key), c.cfg.clone()).step(weir_fl::update::now_unix())
    })
    .await;
    match r {
        Ok(Ok(rep)) => {
            for v in &rep.judged {
                match &v.rejection {
                    None => info!(round = rep.round, node = v.node, "update accepted"),
                    Some(why) => warn!(round = rep.round, node = v.node, "update refused: {why}"),
                }
            }
            if let Some(c) = &rep.closed {
                info!(
                    round = c.round,
                    outcome = c.outcome,
                    version = c.version,
                    "round closed ({})",
                    c.closed_by
                );
            }
            SqsBatchResponse::default()
        }
        Ok(Err(e)) => {
            warn!("merge step failed: {e}; the messages will be delivered again");
            crate::handlers::failures(ids)
        }
        Err(e) => {
            warn!("merge step died: {e}; the messages will be delivered again");
            crate::handlers::failures(ids)
        }
    }
}

/// A reloader over `store` when `WEIR_MODEL_REGISTRY` asks for one (see the module doc).
pub fn reloader_from_env(
    store: Arc<dyn Store>,
    opts: &Options,
) -> Result<Option<Reloader<Classifier>>, String> {
    match std::env::var("WEIR_MODEL_REGISTRY").as_deref() {
        Ok("bucket") | Ok("1") => {}
        Ok("") | Ok("0") | Err(_) => return Ok(None),
        Ok(other) => {
            return Err(format!(
                "WEIR_MODEL_REGISTRY={other}: use `bucket` (follow the registry in WEIR_BUCKET) or leave it unset"
            ))
        }
    }
    let every = Duration::from_secs_f64(env("WEIR_MODEL_POLL_S", 30.0)?);
    let trust = std::env::var("WEIR_REGISTRY_PUBKEY")
        .ok()
        .filter(|k| !k.is_empty());
    Ok(Some(Reloader::new(
        store,
        weir_classify::loader(opts.clone()),
        every,
        trust,
    )))
}

/// Between batches: let the reloader swap the classifier when the registry moved; log what
/// happened.
pub fn maybe_reload(reload: &Mutex<Reloader<Classifier>>, model: &mut Classifier) {
    let mut r = reload.lock().unwrap_or_else(|p| p.into_inner());
    match r.check(model) {
        Reload::Unchanged => {}
        Reload::Swapped { from, to, version } => {
            info!(from, to, version, "model reloaded from the registry")
        }
        Reload::Refused(why) => warn!(
            "registry model refused, keeping {}: {why}",
            model.info().model_version
        ),
    }
}
