//! The classifier stage: shards → result objects (rows + classification columns) and the
//! search layout.

use std::collections::HashMap;

use weir_model::FlowModel;

use crate::{result_key, write_search, PipelineError, ShardMessage, Store, StoreFault};

/// Classify one shard and store its result at [`result_key`]: the shard's rows with the
/// classification columns after them. Idempotent: the same shard and model give the same
/// object under the same key. Returns the number of flows.
pub fn classify_shard(
    store: &dyn Store,
    classifier: &mut dyn FlowModel,
    msg: &ShardMessage,
) -> Result<u64, PipelineError> {
    classify_shards(store, classifier, std::slice::from_ref(msg))
        .pop()
        .unwrap_or(Ok(0))
}

/// The upload version each capture's status names now, read once per capture.
struct Versions<'a> {
    store: &'a dyn Store,
    seen: HashMap<String, Option<String>>,
}

impl Versions<'_> {
    /// `Err(Superseded)` when the message is of another upload version than the capture's
    /// status now names (the upload was replaced and split again).
    fn check(&mut self, msg: &ShardMessage) -> Result<(), PipelineError> {
        let Some(mine) = &msg.source_version else {
            return Ok(());
        };
        if !self.seen.contains_key(&msg.capture) {
            let v = match crate::load_status(self.store, &msg.capture) {
                Ok(st) => st.source_version,
                Err(e) if e.fault() == Some(StoreFault::NotFound) => None,
                Err(e) => return Err(e),
            };
            self.seen.insert(msg.capture.clone(), v);
        }
        match self.seen.get(&msg.capture) {
            Some(Some(now)) if now != mine => Err(PipelineError::Superseded {
                key: msg.key.clone(),
            }),
            _ => Ok(()),
        }
    }
}

/// Classify several shards with one pass through the model (a GPU worker batches the flows
/// of all the messages it took, not message by message) and store each result as
/// [`classify_shard`] does. One result per message, in order: a shard that cannot be read or
/// written fails alone; a model failure fails them all ([`PipelineError::Inference`],
/// retryable). A message of an upload since replaced is [`PipelineError::Superseded`] and
/// writes nothing.
pub fn classify_shards(
    store: &dyn Store,
    classifier: &mut dyn FlowModel,
    msgs: &[ShardMessage],
) -> Vec<Result<u64, PipelineError>> {
    let mut versions = Versions {
        store,
        seen: HashMap::new(),
    };
    let mut out: Vec<Result<u64, PipelineError>> = Vec::with_capacity(msgs.len());
    let mut frames = Vec::new();
    let mut x: Vec<f32> = Vec::new();
    for msg in msgs {
        let read = versions.check(msg).and_then(|_| {
            let b = store.get(&msg.key).map_err(|e| -> PipelineError {
                // A shard deleted by a re-split of a new upload: superseded, not missing.
                if e.is_not_found() {
                    versions.seen.remove(&msg.capture);
                    if let Err(s) = versions.check(msg) {
                        return s;
                    }
                }
                e.into()
            })?;
            let corrupt = |e: polars::error::PolarsError| PipelineError::corrupt(&msg.key, e);
            let df = weir_records::parquet_to_frame(&b).map_err(corrupt)?;
            let f = weir_records::feature_matrix(&df).map_err(corrupt)?;
            Ok((df, f))
        });
        match read {
            Ok((df, f)) => {
                x.extend_from_slice(&f);
                frames.push((out.len(), df));
                out.push(Ok(0));
            }
            Err(e) => out.push(Err(e)),
        }
    }
    if frames.is_empty() {
        return out;
    }
    let p = match classifier.classify(&x) {
        Ok(p) => p,
        Err(e) => {
            let model_fault = e.model_fault;
            for (i, _) in &frames {
                out[*i] = Err(if model_fault {
                    PipelineError::Model(e.to_string())
                } else {
                    PipelineError::Inference {
                        key: msgs[*i].key.clone(),
                        reason: e.to_string(),
                    }
                });
            }
            return out;
        }
    };
    drop(x);
    let info = classifier.info();
    let min_probability = classifier.min_probability();
    let k = p.classes;
    let mut row = 0usize;
    // Checked again just before writing: a re-split that started while the model ran.
    versions.seen.clear();
    for (i, mut df) in frames {
        let msg = &msgs[i];
        let n = df.height();
        let key = result_key(&msg.capture, msg.shard);
        let corrupt = |e: polars::error::PolarsError| PipelineError::corrupt(&key, e);
        let behaviour = weir_records::behaviour_classes(&df);
        let silenced = weir_records::model_silenced(&df);
        let cols = weir_records::verdict_columns(
            n,
            &weir_records::Verdicts {
                classes: &info.classes,
                model_version: &info.model_version,
                predicted: &p.predicted[row..row + n],
                probabilities: &p.probabilities[row * k..(row + n) * k],
                anomaly: &p.anomaly[row..row + n],
                min_probability,
                anomaly_reference: &info.anomaly_reference,
                behaviour: &behaviour,
                model_silenced: &silenced,
                class_thresholds: &info.alert_thresholds,
            },
        );
        row += n;
        // The search parts first: a result present means its shard is searchable.
        out[i] = cols
            .and_then(|cols| df.hstack_mut(&cols).map(|_| ()))
            .map_err(corrupt)
            .and_then(|_| versions.check(msg))
            .and_then(|_| write_search(store, &msg.capture, msg.shard, &df))
            .and_then(|_| weir_records::frame_to_parquet(&mut df).map_err(corrupt))
            .and_then(|bytes| Ok(store.put(&key, &bytes)?))
            .map(|_| n as u64);
    }
    out
}
