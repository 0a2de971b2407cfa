//! The handlers the function binaries run. Each takes an event as AWS delivers it, runs the
//! stage functions of weir-pipeline on a blocking thread, and says which messages failed.
//!
//! Failure handling, the same in every handler: a message whose work fails is reported as a
//! batch item failure, so SQS delivers it again (after its visibility timeout); on its last
//! delivery ([`Settings::max_receives`], equal to the queue's redrive `maxReceiveCount`) the
//! capture is marked failed with the reason before the message goes to the dead-letter
//! queue. A capture that is not a capture at all fails at once (no retry can help).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use tokio::runtime::Handle;
use tokio::sync::watch;
use tracing::{info, warn};
use weir_classify::Classifier;
use weir_flow::ExtractOptions;
use weir_pipeline::{PipelineError, ShardMessage, State, Store};

use crate::events::{receive_count, uploads, via_sqs};
use crate::{clients, Clients, Queue, S3Store, Settings};

/// Everything a handler needs, built once per process (cold start).
#[derive(Clone, Debug)]
pub struct Ctx {
    /// SDK clients.
    pub clients: Clients,
    /// weir's settings.
    pub settings: Settings,
    /// The bucket: uploads, shards, results, summaries (`WEIR_BUCKET`).
    pub bucket: String,
    /// Where shard messages go.
    pub shards: Queue,
    /// Where "aggregate this capture" messages go.
    pub aggregate: Queue,
    /// The runtime the store and queues block on.
    pub rt: Handle,
}

/// The message that tells the aggregator a capture has all its results.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AggregateMessage {
    /// Capture id.
    pub capture: String,
}

impl Ctx {
    /// From the environment (see [`Settings`] and [`clients`]); must be called inside a tokio
    /// runtime.
    pub async fn from_env() -> Result<Arc<Ctx>, String> {
        let settings = Settings::from_env()?;
        let bucket = std::env::var("WEIR_BUCKET")
            .ok()
            .filter(|b| !b.is_empty())
            .ok_or("WEIR_BUCKET is not set: the S3 bucket that holds uploads and results")?;
        let clients = clients().await;
        let shards = Queue::new(clients.sqs.clone(), &settings.shard_queue)
            .await
            .map_err(|e| e.to_string())?;
        let aggregate = Queue::new(clients.sqs.clone(), &settings.aggregate_queue)
            .await
            .map_err(|e| e.to_string())?;
        Ok(Arc::new(Ctx {
            clients,
            settings,
            bucket,
            shards,
            aggregate,
            rt: Handle::current(),
        }))
    }

    /// The bucket as an object store.
    pub fn store(&self) -> S3Store {
        S3Store::new(self.clients.s3.clone(), &self.bucket, self.rt.clone())
    }

    /// Recompute a capture's progress and, when every shard has its result, ask for its
    /// aggregation (at least once: a duplicate only rebuilds the same summary).
    fn advance(&self, store: &dyn Store, id: &str) -> Result<(), PipelineError> {
        let st = weir_pipeline::progress(store, id)?;
        if st.state == State::Aggregating {
            let body = serde_json::to_string(&AggregateMessage {
                capture: id.to_string(),
            })
            .unwrap_or_default();
            self.rt.block_on(self.aggregate.send(&body)).map_err(|e| {
                PipelineError::Store(self.aggregate.url().to_string(), e.to_string())
            })?;
        }
        Ok(())
    }

    /// On the last delivery of a failing message, mark its capture failed.
    fn give_up(&self, store: &dyn Store, id: &str, receives: u32, reason: &str) {
        if receives >= self.settings.max_receives {
            warn!(
                capture = id,
                reason,
                "giving up after {receives} deliveries; message goes to the dead-letter queue"
            );
            if let Err(e) = weir_pipeline::mark_failed(store, id, reason) {
                warn!(capture = id, "could not mark the capture failed: {e}");
            }
        }
    }
}

fn failures(ids: impl IntoIterator<Item = String>) -> SqsBatchResponse {
    let mut r = SqsBatchResponse::default();
    for id in ids {
        let mut f = BatchItemFailure::default();
        f.item_identifier = id;
        r.batch_item_failures.push(f);
    }
    r
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> Result<T, String> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| format!("worker thread failed: {e}"))
}

/// The splitter: for each created object, stream it from S3, write its flow shards and send
/// one message per shard. Invoked by S3 directly (returns what it split, or an error for
/// Lambda to retry) or through an SQS queue of S3 events (returns the batch item failures).
/// `s3:TestEvent` and non-ObjectCreated events are skipped; objects in another bucket than
/// `WEIR_BUCKET` are refused.
pub async fn splitter(ctx: Arc<Ctx>, event: Value) -> Result<Value, String> {
    let via_sqs = via_sqs(&event);
    let mut failed = Vec::new();
    let mut split = Vec::new();
    for up in uploads(&event)? {
        let created = match up.created {
            Ok(c) => c,
            Err(reason) => {
                warn!(message = ?up.message_id, "not an S3 event, dropped: {reason}");
                continue;
            }
        };
        for obj in created {
            let c = ctx.clone();
            let receives = up.receive_count;
            let key = obj.key.clone();
            let r = blocking(move || split_one(&c, &obj.bucket, &obj.key, receives)).await;
            match r.and_then(|r| r) {
                Ok(v) => split.push(v),
                Err(e) => {
                    warn!(key, "split failed (delivery {receives}): {e}");
                    failed.push((up.message_id.clone(), e));
                }
            }
        }
    }
    if via_sqs {
        let ids = failed.into_iter().filter_map(|(id, _)| id);
        return Ok(serde_json::to_value(failures(ids)).unwrap_or_default());
    }
    match failed.into_iter().next() {
        Some((_, e)) => Err(e),
        None => Ok(json!({ "split": split })),
    }
}

fn split_one(ctx: &Ctx, bucket: &str, key: &str, receives: u32) -> Result<Value, String> {
    let id = weir_pipeline::capture_id(key);
    if bucket != ctx.bucket {
        return Err(format!(
            "s3://{bucket}/{key}: this splitter serves bucket {} (WEIR_BUCKET)",
            ctx.bucket
        ));
    }
    let store = ctx.store();
    let opts = ExtractOptions::default();
    let send = |m: &ShardMessage| {
        ctx.rt
            .block_on(ctx.shards.send(&m.to_json()))
            .map_err(|e| PipelineError::Store(ctx.shards.url().to_string(), e.to_string()))
    };
    match weir_pipeline::split(&store, key, ctx.settings.shard_flows, &opts, send) {
        Ok(report) => {
            info!(
                capture = id,
                shards = report.shards,
                flows = report.flows,
                "split"
            );
            ctx.advance(&store, &id).map_err(|e| e.to_string())?;
            Ok(json!({ "capture": id, "shards": report.shards, "flows": report.flows }))
        }
        // The status already says failed, with the reason: nothing to retry.
        Err(e @ PipelineError::NotACapture(..)) => {
            warn!(capture = id, "{e}");
            Ok(json!({ "capture": id, "failed": e.to_string() }))
        }
        Err(e) => {
            let e = e.to_string();
            ctx.give_up(&store, &id, receives, &e);
            Err(e)
        }
    }
}

/// One message of work, from a Lambda SQS event or from the poller.
#[derive(Clone, Debug)]
pub struct Work {
    /// Message id (what a batch item failure names).
    pub id: String,
    /// Deliveries so far.
    pub receives: u32,
    /// The body.
    pub body: String,
}

impl Work {
    /// The records of an SQS event.
    pub fn from_event(event: SqsEvent) -> Vec<Work> {
        event
            .records
            .into_iter()
            .map(|m| Work {
                receives: receive_count(&m.attributes),
                id: m.message_id.unwrap_or_default(),
                body: m.body.unwrap_or_default(),
            })
            .collect()
    }
}

/// Classify the shards the messages point at, in one pass through the model; returns the ids
/// of the messages that failed.
pub async fn classify(
    ctx: Arc<Ctx>,
    model: Arc<Mutex<Classifier>>,
    work: Vec<Work>,
) -> Vec<String> {
    let c = ctx.clone();
    let ids: Vec<String> = work.iter().map(|w| w.id.clone()).collect();
    let r = blocking(move || classify_blocking(&c, &model, &work)).await;
    // A worker thread that died finished nothing: every message is delivered again.
    r.unwrap_or_else(|e| {
        warn!("{e}; all {} messages will be delivered again", ids.len());
        ids
    })
}

fn classify_blocking(ctx: &Ctx, model: &Mutex<Classifier>, work: &[Work]) -> Vec<String> {
    let store = ctx.store();
    let mut failed = Vec::new();
    let mut msgs = Vec::new();
    let mut owners = Vec::new();
    for w in work {
        match ShardMessage::from_json(&w.body) {
            Ok(m) => {
                msgs.push(m);
                owners.push(w);
            }
            Err(e) => {
                // Never going to parse: let it go to the dead-letter queue.
                warn!(message = w.id, "not a shard message: {e}");
                failed.push(w.id.clone());
            }
        }
    }
    let results = {
        let mut m = match model.lock() {
            Ok(m) => m,
            Err(p) => p.into_inner(),
        };
        weir_pipeline::classify_shards(&store, &mut m, &msgs)
    };
    let mut captures = std::collections::BTreeSet::new();
    for ((m, w), r) in msgs.iter().zip(&owners).zip(results) {
        match r {
            Ok(n) => {
                info!(
                    capture = m.capture,
                    shard = m.shard,
                    flows = n,
                    "classified"
                );
                captures.insert(m.capture.clone());
            }
            Err(e) => {
                let e = e.to_string();
                warn!(
                    capture = m.capture,
                    shard = m.shard,
                    "classify failed (delivery {}): {e}",
                    w.receives
                );
                ctx.give_up(&store, &m.capture, w.receives, &e);
                failed.push(w.id.clone());
            }
        }
    }
    for id in captures {
        if let Err(e) = ctx.advance(&store, &id) {
            // The results are stored; a later shard or a redelivery advances it.
            warn!(capture = id, "progress: {e}");
        }
    }
    failed
}

/// The classifier Lambda: an SQS batch of shard messages → batch item failures.
pub async fn classifier_lambda(
    ctx: Arc<Ctx>,
    model: Arc<Mutex<Classifier>>,
    event: SqsEvent,
) -> SqsBatchResponse {
    failures(classify(ctx, model, Work::from_event(event)).await)
}

/// The aggregator: an SQS batch of [`AggregateMessage`]s → summaries → batch item failures.
pub async fn aggregator(ctx: Arc<Ctx>, event: SqsEvent) -> SqsBatchResponse {
    let mut failed = Vec::new();
    for w in Work::from_event(event) {
        let c = ctx.clone();
        let w2 = w.clone();
        let r = blocking(move || {
            let m: AggregateMessage = serde_json::from_str(&w2.body)
                .map_err(|e| format!("not an aggregate message: {e}"))?;
            let store = c.store();
            weir_pipeline::aggregate(&store, &m.capture)
                .map(|s| info!(capture = m.capture, flows = s.flows, "aggregated"))
                .map_err(|e| {
                    let e = e.to_string();
                    c.give_up(&store, &m.capture, w2.receives, &e);
                    e
                })
        })
        .await;
        if let Err(e) = r.and_then(|r| r) {
            warn!(
                message = w.id,
                "aggregate failed (delivery {}): {e}", w.receives
            );
            failed.push(w.id);
        }
    }
    failures(failed)
}

/// How the long-running worker polls.
#[derive(Clone, Copy, Debug)]
pub struct PollOptions {
    /// Messages taken per receive (1-10): their shards are classified in one pass.
    pub max_messages: i32,
    /// Visibility timeout set on receive and renewed every third of it while working.
    pub visibility_s: i32,
    /// Long-poll wait.
    pub wait_s: i32,
}

impl Default for PollOptions {
    fn default() -> Self {
        PollOptions {
            max_messages: 10,
            visibility_s: 60,
            wait_s: 20,
        }
    }
}

/// The long-running worker for GPU hosts: take shard messages from the shard queue, classify
/// them (one model pass per receive), delete the ones done, keep the others hidden while
/// working (visibility renewed every `visibility_s / 3`). Returns the number of messages
/// handled when `stop` turns true: no new messages are taken after that, the batch in hand
/// is finished.
pub async fn poll(
    ctx: Arc<Ctx>,
    model: Arc<Mutex<Classifier>>,
    opts: PollOptions,
    mut stop: watch::Receiver<bool>,
) -> Result<u64, String> {
    let mut handled = 0u64;
    let queue = ctx.shards.clone();
    while !*stop.borrow() {
        let got = tokio::select! {
            r = queue.receive(opts.max_messages, opts.wait_s, opts.visibility_s) => r,
            _ = stop.changed() => break,
        };
        let msgs = match got {
            Ok(m) => m,
            Err(e) => {
                warn!("receive: {e}; trying again in 2 s");
                tokio::time::sleep(Duration::from_secs(2)).await;
                continue;
            }
        };
        if msgs.is_empty() {
            continue;
        }
        let work: Vec<Work> = msgs
            .iter()
            .map(|m| Work {
                id: m.id.clone(),
                receives: m.receive_count,
                body: m.body.clone(),
            })
            .collect();
        let job = tokio::spawn(classify(ctx.clone(), model.clone(), work));
        tokio::pin!(job);
        let every = Duration::from_secs((opts.visibility_s.max(3) / 3) as u64);
        let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
        let failed = loop {
            tokio::select! {
                r = &mut job => break r.unwrap_or_else(|_| msgs.iter().map(|m| m.id.clone()).collect()),
                _ = tick.tick() => {
                    for m in &msgs {
                        if let Err(e) = queue.set_visibility(&m.receipt, opts.visibility_s).await {
                            warn!("extending visibility: {e}");
                        }
                    }
                }
            }
        };
        for m in &msgs {
            if failed.contains(&m.id) {
                continue;
            }
            if let Err(e) = queue.delete(&m.receipt).await {
                warn!(
                    "delete {}: {e} (it will be delivered again; the result is rewritten the same)",
                    m.id
                );
            }
            handled += 1;
        }
    }
    Ok(handled)
}
