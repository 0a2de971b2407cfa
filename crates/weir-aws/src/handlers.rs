//! The handlers the function binaries run. Each takes an event as AWS delivers it, runs the
//! stage functions of weir-pipeline on a blocking thread, and says which messages failed.
//!
//! The decisions are made by [`Stage`], generic over the [`Store`] and an [`Outbox`] for the
//! messages it sends (S3 and SQS here; a directory and a vector in the unit tests), one rule
//! for every handler, by what the error means ([`PipelineError::retryable`]):
//! - retryable (the store or network failed, the model run failed, a thread panicked): the
//!   message is reported failed, so SQS delivers it again after its visibility timeout; on
//!   its last delivery ([`Settings::max_receives`], the queue's redrive `maxReceiveCount`)
//!   the capture is marked failed with the reason before the message goes to the
//!   dead-letter queue;
//! - permanent (not a capture, a corrupt object, an unusable model): the capture is marked
//!   failed with the reason at once and the message is consumed (no retry can help);
//! - superseded (the upload was replaced): consumed, nothing written; the new upload's own
//!   event runs it;
//! - damage inside a capture is not an error: recorded, the capture ends done-with-warnings;
//! - a message that is not weir's: reported failed until it reaches the dead-letter queue,
//!   where it is kept for a person to look at.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent};
use serde_json::{json, Value};
use tokio::runtime::Handle;
use tokio::sync::watch;
use tracing::{info, warn};
use weir_classify::Classifier;
use weir_pipeline::{
    AggregateMessage, PipelineError, ShardMessage, SplitOptions, State, Store, StoreFault,
};

use crate::events::{receive_count, uploads, via_sqs};
use crate::{clients, Clients, Queue, S3Store, Settings};

/// Where a stage sends messages: an SQS queue on AWS, a vector in tests.
pub trait Outbox: Send + Sync {
    /// Send one message body.
    fn send(&self, body: &str) -> Result<(), PipelineError>;
}

/// An SQS queue as an [`Outbox`] (blocking on `rt`).
pub struct Sqs<'a>(pub &'a Queue, pub &'a Handle);

impl Outbox for Sqs<'_> {
    fn send(&self, body: &str) -> Result<(), PipelineError> {
        self.1
            .block_on(self.0.send(body))
            .map_err(|e| PipelineError::store(self.0.url(), StoreFault::Transient, e))
    }
}

/// In-memory outbox (tests, and anyone who wants the messages in hand).
impl Outbox for Mutex<Vec<String>> {
    fn send(&self, body: &str) -> Result<(), PipelineError> {
        self.lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(body.to_string());
        Ok(())
    }
}

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
    /// Follows the model registry between batches (`WEIR_MODEL_REGISTRY`,
    /// [`Ctx::with_registry`]); `None`: the model loaded at start serves throughout.
    pub reload: Option<Arc<Mutex<weir_fl::reload::Reloader<weir_classify::Classifier>>>>,
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
            reload: None,
        }))
    }

    /// This context with a model reloader when `WEIR_MODEL_REGISTRY` asks for one (the
    /// registry in this bucket; new sessions built with `opts`).
    pub fn with_registry(
        self: Arc<Self>,
        opts: &weir_classify::Options,
    ) -> Result<Arc<Ctx>, String> {
        let store: Arc<dyn Store> = Arc::new(self.store());
        match crate::fl::reloader_from_env(store, opts)? {
            Some(r) => {
                info!(bucket = self.bucket, "following the model registry");
                let mut c = (*self).clone();
                c.reload = Some(Arc::new(Mutex::new(r)));
                Ok(Arc::new(c))
            }
            None => Ok(self),
        }
    }

    /// The bucket as an object store.
    pub fn store(&self) -> S3Store {
        S3Store::new(self.clients.s3.clone(), &self.bucket, self.rt.clone())
    }

    /// Run `f` with this context's [`Stage`] (S3 store, SQS outboxes).
    fn with_stage<T>(&self, f: impl FnOnce(&Stage<'_>) -> T) -> T {
        let store = self.store();
        let (shards, aggregate) = (Sqs(&self.shards, &self.rt), Sqs(&self.aggregate, &self.rt));
        f(&Stage {
            store: &store,
            shards: &shards,
            aggregate: &aggregate,
            bucket: &self.bucket,
            max_receives: self.settings.max_receives,
            split: SplitOptions {
                shard_flows: self.settings.shard_flows,
                ..SplitOptions::default()
            },
        })
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

/// The handlers' decisions over any store and outboxes.
pub struct Stage<'a> {
    /// The object store (the bucket).
    pub store: &'a dyn Store,
    /// Where shard messages go.
    pub shards: &'a dyn Outbox,
    /// Where aggregate messages go.
    pub aggregate: &'a dyn Outbox,
    /// The bucket this stage serves (events naming another are refused).
    pub bucket: &'a str,
    /// Deliveries after which a failing message is given up ([`Settings::max_receives`]).
    pub max_receives: u32,
    /// How the splitter splits.
    pub split: SplitOptions,
}

/// What became of one message.
#[derive(Debug)]
enum Outcome {
    /// Done (or nothing to do): delete it.
    Consumed,
    /// Deliver it again.
    Retry(String),
}

impl Stage<'_> {
    /// Recompute a capture's progress and, when every shard has its result, ask for its
    /// aggregation (at least once: a duplicate only rebuilds the same summary).
    fn advance(&self, id: &str) -> Result<(), PipelineError> {
        let st = weir_pipeline::progress(self.store, id)?;
        if st.state == State::Aggregating {
            self.aggregate
                .send(&AggregateMessage::new(id, st.source_version).to_json())?;
        }
        Ok(())
    }

    /// Decide what a failed message means: retry (marking the capture failed on the last
    /// delivery), fail the capture at once (permanent), or drop it (superseded).
    fn settle(&self, id: &str, version: Option<&str>, receives: u32, e: &PipelineError) -> Outcome {
        let reason = e.to_string();
        if let PipelineError::Superseded { .. } | PipelineError::Failed { .. } = e {
            info!(capture = id, "{reason}: nothing to do");
            return Outcome::Consumed;
        }
        let last = receives >= self.max_receives;
        if e.retryable() && !last {
            warn!(
                capture = id,
                "{reason} (delivery {receives}): will be tried again"
            );
            return Outcome::Retry(reason);
        }
        if e.retryable() {
            warn!(
                capture = id,
                "{reason}: giving up after {receives} deliveries; the message goes to the dead-letter queue"
            );
        } else {
            warn!(
                capture = id,
                "{reason}: no retry can help; the capture is marked failed"
            );
        }
        if let Err(m) = weir_pipeline::mark_failed(self.store, id, version, &reason) {
            warn!(capture = id, "could not mark the capture failed: {m}");
            return Outcome::Retry(format!("{reason}; marking it failed: {m}"));
        }
        if e.retryable() {
            Outcome::Retry(reason)
        } else {
            Outcome::Consumed
        }
    }

    /// Split one uploaded object (an S3 event's record). `Err` means deliver it again.
    pub fn split_object(&self, bucket: &str, key: &str, receives: u32) -> Result<Value, String> {
        let id = weir_pipeline::capture_id(key);
        if bucket != self.bucket {
            return Err(format!(
                "s3://{bucket}/{key}: this splitter serves bucket {} (WEIR_BUCKET)",
                self.bucket
            ));
        }
        let send = |m: &ShardMessage| self.shards.send(&m.to_json());
        let r = weir_pipeline::split(self.store, key, &self.split, send)
            .and_then(|r| self.advance(&id).map(|_| r));
        match r {
            Ok(Some(report)) => {
                info!(
                    capture = id,
                    shards = report.shards,
                    flows = report.flows,
                    "split"
                );
                Ok(json!({ "capture": id, "shards": report.shards, "flows": report.flows }))
            }
            Ok(None) => {
                info!(
                    capture = id,
                    "this upload was split already: duplicate delivery, nothing done"
                );
                Ok(json!({ "capture": id, "duplicate": true }))
            }
            Err(e) => match self.settle(&id, None, receives, &e) {
                Outcome::Consumed => Ok(json!({ "capture": id, "failed": e.to_string() })),
                Outcome::Retry(reason) => Err(reason),
            },
        }
    }

    /// Classify the shards the messages point at with `run` (one pass through the model);
    /// returns the ids of the messages to deliver again. A panic inside `run` fails every
    /// message of the batch like a retryable error (the capture is marked failed on the
    /// last delivery), never leaving it "classifying" forever.
    pub fn classify_work(
        &self,
        work: &[Work],
        run: impl FnOnce(&[ShardMessage]) -> Vec<Result<u64, PipelineError>>,
    ) -> Vec<String> {
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
                    // Nobody can read it: kept in the dead-letter queue for a person.
                    warn!(message = w.id, "{e}");
                    failed.push(w.id.clone());
                }
            }
        }
        if msgs.is_empty() {
            return failed;
        }
        let results = catch_unwind(AssertUnwindSafe(|| run(&msgs))).unwrap_or_else(|p| {
            let what = p
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| p.downcast_ref::<String>().cloned())
                .unwrap_or_default();
            warn!("the classifier panicked: {what}");
            msgs.iter()
                .map(|_| Err(PipelineError::Stopped("the classifier (it panicked)")))
                .collect()
        });
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
                    let v = m.source_version.as_deref();
                    if let Outcome::Retry(_) = self.settle(&m.capture, v, w.receives, &e) {
                        failed.push(w.id.clone());
                    }
                }
            }
        }
        for id in captures {
            if let Err(e) = self.advance(&id) {
                // The results are stored; a later shard or a redelivery advances it.
                warn!(capture = id, "progress: {e}");
            }
        }
        failed
    }

    /// Aggregate the capture an [`AggregateMessage`] names. `Err` means deliver it again.
    pub fn aggregate_work(&self, w: &Work) -> Result<(), String> {
        let m = AggregateMessage::from_json(&w.body).map_err(|e| e.to_string())?;
        let r =
            current(self.store, &m).and_then(|_| weir_pipeline::aggregate(self.store, &m.capture));
        match r {
            Ok(s) => {
                info!(capture = m.capture, flows = s.flows, "aggregated");
                Ok(())
            }
            Err(e) => match self.settle(&m.capture, m.source_version.as_deref(), w.receives, &e) {
                Outcome::Consumed => Ok(()),
                Outcome::Retry(reason) => Err(reason),
            },
        }
    }
}

/// `Err(Superseded)` when an aggregate message is of another upload version than the
/// capture's status.
fn current(store: &dyn Store, m: &AggregateMessage) -> Result<(), PipelineError> {
    let st = weir_pipeline::load_status(store, &m.capture)?;
    match (&m.source_version, &st.source_version) {
        (Some(a), Some(b)) if a != b => Err(PipelineError::Superseded {
            key: weir_pipeline::status_key(&m.capture),
        }),
        _ => Ok(()),
    }
}

pub(crate) fn failures(ids: impl IntoIterator<Item = String>) -> SqsBatchResponse {
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
            let r = blocking(move || {
                c.with_stage(|st| st.split_object(&obj.bucket, &obj.key, receives))
            })
            .await;
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
        return serde_json::to_value(failures(ids))
            .map_err(|e| format!("encoding the batch response: {e}"));
    }
    match failed.into_iter().next() {
        Some((_, e)) => Err(e),
        None => Ok(json!({ "split": split })),
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

/// Test hook, inert unless `WEIR_TEST_PAUSE_DIR` is set: the first classifier batch on the
/// host (whichever process creates `DIR/paused` first) writes its PID there and stops inside
/// the batch (messages received, nothing written) until it is killed, at most 10 minutes.
/// The LocalStack test kills that PID to show a batch killed mid-way is delivered again and
/// lands exactly once.
fn test_pause() {
    let Some(dir) = std::env::var_os("WEIR_TEST_PAUSE_DIR") else {
        return;
    };
    let path = std::path::Path::new(&dir).join("paused");
    if let Ok(mut f) = std::fs::File::create_new(&path) {
        use std::io::Write;
        let _ = writeln!(f, "{}", std::process::id());
        warn!(
            "test hook: paused inside a batch (pid {})",
            std::process::id()
        );
        std::thread::sleep(Duration::from_secs(600));
    }
}

fn classify_blocking(ctx: &Ctx, model: &Mutex<Classifier>, work: &[Work]) -> Vec<String> {
    ctx.with_stage(|st| {
        st.classify_work(work, |msgs| {
            test_pause();
            let mut m = model.lock().unwrap_or_else(|p| p.into_inner());
            // Between batches, under the lock: a batch is classified by one model.
            if let Some(r) = &ctx.reload {
                crate::fl::maybe_reload(r, &mut m);
            }
            weir_pipeline::classify_shards(st.store, &mut *m, msgs)
        })
    })
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
        let r = blocking(move || c.with_stage(|st| st.aggregate_work(&w2))).await;
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
