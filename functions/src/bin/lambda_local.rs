//! weir-lambda-local: the Lambda service, locally. LocalStack cannot run Lambda functions
//! without Docker, so this plays the two parts of Lambda weir uses:
//!
//! - the **Runtime API** (`/2018-06-01/runtime/invocation/next`, `.../response`,
//!   `.../error`, `/init/error`) that the function binaries' lambda_runtime talks to, one
//!   endpoint per execution environment, each running the real, unchanged binary;
//! - the **SQS event source mapping**: receive up to BATCH messages from the function's
//!   queue, invoke the function with the SQS event AWS would send, delete the messages that
//!   did not come back as `batchItemFailures` (all of them stay when the invocation fails or
//!   times out, so SQS delivers them again and, after the queue's maxReceiveCount, moves
//!   them to the dead-letter queue).
//!
//! An environment whose process dies (crash, kill) is started again, as Lambda does; the
//! invocation it held counts as failed.

use std::collections::HashMap;
use std::convert::Infallible;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context, Result};
use clap::Parser;
use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response, StatusCode};
use serde_json::{json, Value};
use tokio::sync::{mpsc, oneshot, Mutex};
use tracing::{info, warn};
use weir_aws::Queue;

/// Run Lambda functions locally against SQS queues (LocalStack or AWS).
///
/// Each --function is NAME=QUEUE=BINARY[,batch=N][,concurrency=N][,timeout=SECONDS]: the
/// binary runs as NAME in CONCURRENCY execution environments, invoked with SQS events of up
/// to BATCH messages (default 10) from QUEUE (URL or name). The binaries inherit this
/// process's environment (AWS_*, WEIR_*). Stop with SIGTERM or Ctrl-C: the functions are
/// stopped too.
///
/// Example (what `just localstack-up` runs):
///   weir-lambda-local --function splitter=weir-uploads=target/debug/weir-splitter,batch=1
///                     --function classifier=weir-shards=target/debug/weir-classifier
#[derive(Parser, Debug)]
#[command(name = "weir-lambda-local", version, verbatim_doc_comment)]
struct Args {
    /// A function: NAME=QUEUE=BINARY[,batch=N][,concurrency=N][,timeout=SECONDS][,visibility=SECONDS].
    #[arg(long = "function", required = true, value_name = "SPEC")]
    functions: Vec<String>,
    /// Seconds a received message stays hidden, for every function that does not set its
    /// own `visibility=`: how soon a failed message is delivered again. Default: six times
    /// the function's timeout, as AWS recommends for Lambda event sources, so a message is
    /// never delivered again while an invocation may still be working on it.
    #[arg(long)]
    visibility: Option<i32>,
}

#[derive(Clone, Debug)]
struct Spec {
    name: String,
    queue: String,
    binary: PathBuf,
    batch: i32,
    concurrency: usize,
    timeout: Duration,
    visibility: Option<i32>,
}

impl Spec {
    /// The visibility timeout of this function's receives.
    fn visibility(&self, default: Option<i32>) -> i32 {
        self.visibility
            .or(default)
            .unwrap_or((6 * self.timeout.as_secs()).min(43_200) as i32)
    }
}

fn parse_spec(s: &str) -> Result<Spec> {
    let (head, opts) = s.split_once(',').unwrap_or((s, ""));
    let parts: Vec<&str> = head.splitn(3, '=').collect();
    let [name, queue, binary] = parts[..] else {
        bail!("--function {s}: expected NAME=QUEUE=BINARY[,batch=N][,concurrency=N][,timeout=S][,visibility=S]");
    };
    let mut spec = Spec {
        name: name.into(),
        queue: queue.into(),
        binary: binary.into(),
        batch: 10,
        concurrency: 1,
        timeout: Duration::from_secs(900),
        visibility: None,
    };
    for o in opts.split(',').filter(|o| !o.is_empty()) {
        let (k, v) = o
            .split_once('=')
            .with_context(|| format!("--function {s}: {o}: expected KEY=VALUE"))?;
        let n: u64 = v
            .parse()
            .with_context(|| format!("--function {s}: {k}={v} is not a number"))?;
        match k {
            "batch" => spec.batch = n.clamp(1, 10) as i32,
            "concurrency" => spec.concurrency = n.max(1) as usize,
            "timeout" => spec.timeout = Duration::from_secs(n.max(1)),
            "visibility" => spec.visibility = Some(n.clamp(1, 43_200) as i32),
            _ => bail!(
                "--function {s}: unknown option {k} (batch, concurrency, timeout, visibility)"
            ),
        }
    }
    if !spec.binary.is_file() {
        bail!("--function {s}: {} is not a file (build the functions first: cargo build -p weir-functions)", spec.binary.display());
    }
    Ok(spec)
}

/// One invocation waiting for, or held by, the function.
struct Invocation {
    id: String,
    payload: Vec<u8>,
    deadline_ms: u64,
    reply: oneshot::Sender<Result<Vec<u8>, Vec<u8>>>,
}

/// The Runtime API of one execution environment.
struct RuntimeApi {
    next: Mutex<mpsc::Receiver<Invocation>>,
    held: Mutex<HashMap<String, oneshot::Sender<Result<Vec<u8>, Vec<u8>>>>>,
    name: String,
}

fn reply(status: StatusCode, body: impl Into<Bytes>) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(body.into()));
    *r.status_mut() = status;
    r
}

async fn serve(
    api: Arc<RuntimeApi>,
    req: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let path = req.uri().path().to_string();
    let method = req.method().clone();
    let body = req
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes().to_vec())
        .unwrap_or_default();
    let rest = path.strip_prefix("/2018-06-01/runtime/").unwrap_or("");
    if method == hyper::Method::GET && rest == "invocation/next" {
        let inv = api.next.lock().await.recv().await;
        let Some(inv) = inv else {
            return Ok(reply(StatusCode::GONE, "shutting down"));
        };
        api.held.lock().await.insert(inv.id.clone(), inv.reply);
        let mut r = reply(StatusCode::OK, inv.payload);
        let h = r.headers_mut();
        let hv = |s: &str| {
            hyper::header::HeaderValue::from_str(s)
                .unwrap_or(hyper::header::HeaderValue::from_static(""))
        };
        h.insert("lambda-runtime-aws-request-id", hv(&inv.id));
        h.insert(
            "lambda-runtime-deadline-ms",
            hv(&inv.deadline_ms.to_string()),
        );
        h.insert(
            "lambda-runtime-invoked-function-arn",
            hv(&format!(
                "arn:aws:lambda:us-east-1:000000000000:function:{}",
                api.name
            )),
        );
        h.insert(
            "lambda-runtime-trace-id",
            hv("Root=1-00000000-000000000000000000000000"),
        );
        h.insert("content-type", hv("application/json"));
        return Ok(r);
    }
    if method == hyper::Method::POST {
        if rest == "init/error" {
            warn!(
                function = api.name,
                "init error: {}",
                String::from_utf8_lossy(&body)
            );
            return Ok(reply(StatusCode::ACCEPTED, "{}"));
        }
        if let Some(x) = rest.strip_prefix("invocation/") {
            if let Some((id, what)) = x.split_once('/') {
                if let Some(tx) = api.held.lock().await.remove(id) {
                    let _ = tx.send(if what == "response" {
                        Ok(body)
                    } else {
                        Err(body)
                    });
                    return Ok(reply(StatusCode::ACCEPTED, "{}"));
                }
                return Ok(reply(StatusCode::BAD_REQUEST, "unknown request id"));
            }
        }
    }
    Ok(reply(
        StatusCode::NOT_FOUND,
        "not a Lambda Runtime API path",
    ))
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// The SQS event AWS sends a function for these messages.
fn sqs_event(queue: &Queue, msgs: &[weir_aws::Received]) -> Value {
    let name = queue.url().rsplit('/').next().unwrap_or("queue");
    let records: Vec<Value> = msgs
        .iter()
        .map(|m| {
            json!({
                "messageId": m.id,
                "receiptHandle": m.receipt,
                "body": m.body,
                "attributes": {
                    "ApproximateReceiveCount": m.receive_count.to_string(),
                    "SentTimestamp": now_ms().to_string(),
                    "SenderId": "000000000000",
                    "ApproximateFirstReceiveTimestamp": now_ms().to_string(),
                },
                "messageAttributes": {},
                "md5OfBody": "",
                "eventSource": "aws:sqs",
                "eventSourceARN": format!("arn:aws:sqs:us-east-1:000000000000:{name}"),
                "awsRegion": "us-east-1",
            })
        })
        .collect();
    json!({ "Records": records })
}

/// One run of a function's process with its own Runtime API endpoint. A process that dies
/// takes its endpoint with it: requests its dead connections still hold get nothing.
struct Incarnation {
    child: tokio::process::Child,
    tx: mpsc::Sender<Invocation>,
    api: Arc<RuntimeApi>,
    server: tokio::task::JoinHandle<()>,
}

impl Incarnation {
    async fn start(spec: &Spec, n: usize) -> Result<Incarnation> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let (tx, rx) = mpsc::channel::<Invocation>(1);
        let api = Arc::new(RuntimeApi {
            next: Mutex::new(rx),
            held: Mutex::new(HashMap::new()),
            name: spec.name.clone(),
        });
        let a = api.clone();
        let server = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let a = a.clone();
                tokio::spawn(async move {
                    let svc = hyper::service::service_fn(move |req| serve(a.clone(), req));
                    let io = hyper_util::rt::TokioIo::new(stream);
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(io, svc)
                        .await;
                });
            }
        });
        let child = tokio::process::Command::new(&spec.binary)
            .env("AWS_LAMBDA_RUNTIME_API", addr.to_string())
            .env("AWS_LAMBDA_FUNCTION_NAME", &spec.name)
            .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "2048")
            .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
            .env("AWS_LAMBDA_LOG_STREAM_NAME", format!("local/{n}"))
            .env(
                "AWS_LAMBDA_LOG_GROUP_NAME",
                format!("/aws/lambda/{}", spec.name),
            )
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("starting {}", spec.binary.display()))?;
        info!(function = spec.name, env = n, pid = child.id(), api = %addr, "started");
        Ok(Incarnation {
            child,
            tx,
            api,
            server,
        })
    }

    /// Replace a dead (or killed) process with a new one on a new endpoint.
    async fn restart(&mut self, spec: &Spec, n: usize) -> Result<()> {
        let _ = self.child.kill().await;
        self.server.abort();
        tokio::time::sleep(Duration::from_millis(200)).await;
        *self = Incarnation::start(spec, n).await?;
        Ok(())
    }
}

/// One execution environment: a process (replaced when it dies, as Lambda does) and the
/// event source mapping feeding it.
async fn environment(spec: Spec, n: usize, queue: Queue, visibility: i32) -> Result<()> {
    let mut inc = Incarnation::start(&spec, n).await?;
    let mut seq = 0u64;
    loop {
        let msgs = tokio::select! {
            r = queue.receive(spec.batch, 10, visibility) => r,
            s = inc.child.wait() => {
                warn!(function = spec.name, "process exited ({s:?}); starting a new execution environment");
                inc.restart(&spec, n).await?;
                continue;
            }
        };
        let msgs = match msgs {
            Ok(m) if m.is_empty() => continue,
            Ok(m) => m,
            Err(e) => {
                warn!(function = spec.name, "receive: {e}; again in 2 s");
                tokio::time::sleep(Duration::from_secs(2)).await;
                continue;
            }
        };
        seq += 1;
        let id = format!("{:08x}-local-{n}-{seq}", now_ms() as u32);
        let (rtx, rrx) = oneshot::channel();
        let payload = serde_json::to_vec(&sqs_event(&queue, &msgs))
            .context("encoding the SQS event for the function")?;
        let inv = Invocation {
            id: id.clone(),
            payload,
            deadline_ms: now_ms() + spec.timeout.as_millis() as u64,
            reply: rtx,
        };
        if inc.tx.send(inv).await.is_err() {
            bail!("runtime API of {} closed", spec.name);
        }
        let outcome = tokio::select! {
            r = rrx => r.ok(),
            _ = tokio::time::sleep(spec.timeout) => {
                warn!(function = spec.name, "invocation {id} timed out after {:?}; starting a new execution environment", spec.timeout);
                None
            }
            s = inc.child.wait() => {
                warn!(function = spec.name, "process exited during invocation {id} ({s:?}); messages stay for redelivery; starting a new execution environment");
                None
            }
        };
        if outcome.is_none() {
            inc.api.held.lock().await.clear();
            inc.restart(&spec, n).await?;
        }
        let failed: Vec<String> = match outcome {
            Some(Ok(body)) => {
                let v: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
                v.get("batchItemFailures")
                    .and_then(Value::as_array)
                    .map(|a| {
                        a.iter()
                            .filter_map(|f| {
                                f.get("itemIdentifier")
                                    .and_then(Value::as_str)
                                    .map(String::from)
                            })
                            .collect()
                    })
                    .unwrap_or_default()
            }
            Some(Err(body)) => {
                warn!(
                    function = spec.name,
                    "invocation {id} failed: {}",
                    String::from_utf8_lossy(&body)
                );
                msgs.iter().map(|m| m.id.clone()).collect()
            }
            None => msgs.iter().map(|m| m.id.clone()).collect(),
        };
        for m in &msgs {
            if failed.contains(&m.id) {
                continue;
            }
            if let Err(e) = queue.delete(&m.receipt).await {
                warn!(function = spec.name, "delete {}: {e}", m.id);
            }
        }
        if !failed.is_empty() {
            info!(
                function = spec.name,
                "{} of {} messages failed; SQS delivers them again",
                failed.len(),
                msgs.len()
            );
        }
    }
}

#[tokio::main]
async fn main() -> Result<()> {
    weir_functions::init_logging();
    let args = Args::parse();
    let specs: Vec<Spec> = args
        .functions
        .iter()
        .map(|s| parse_spec(s))
        .collect::<Result<_>>()?;
    let clients = weir_aws::clients().await;
    let mut tasks = tokio::task::JoinSet::new();
    for spec in specs {
        let queue = Queue::new(clients.sqs.clone(), &spec.queue).await?;
        for n in 0..spec.concurrency {
            tasks.spawn(environment(
                spec.clone(),
                n,
                queue.clone(),
                spec.visibility(args.visibility),
            ));
        }
    }
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        _ = term.recv() => info!("SIGTERM: stopping the functions"),
        _ = tokio::signal::ctrl_c() => info!("interrupted: stopping the functions"),
        Some(r) = tasks.join_next() => {
            if let Ok(Err(e)) = r { warn!("{e:#}"); }
        }
    }
    // Dropping the tasks drops the children (kill_on_drop).
    tasks.shutdown().await;
    Ok(())
}
