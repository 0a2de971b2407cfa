//! weir-worker: the long-running classifier for GPU hosts (ECS/EC2). Polls the shard queue,
//! classifies the shards of up to 10 messages in one pass (CUDA when present), keeps the
//! messages hidden while it works, deletes them when their results are stored, and on
//! SIGTERM or Ctrl-C stops taking messages, finishes the batch in hand and exits 0.

use clap::Parser;
use weir_aws::handlers::{poll, Ctx, PollOptions};

/// Classify weir's flow shards from SQS until stopped.
///
/// Reads the same environment as the functions: WEIR_BUCKET, WEIR_SHARD_QUEUE,
/// WEIR_AGGREGATE_QUEUE (URL or name), WEIR_MAX_RECEIVES, the standard AWS variables
/// (AWS_REGION, credentials, AWS_ENDPOINT_URL for LocalStack), and for the model WEIR_MODEL,
/// WEIR_DEVICE (auto|cpu|cuda), WEIR_THREADS, WEIR_BATCH; WEIR_MODEL_REGISTRY=bucket follows
/// the federated model registry in the bucket (a new version is picked up between batches,
/// without a restart; WEIR_MODEL_POLL_S, WEIR_REGISTRY_PUBKEY).
#[derive(Parser, Debug)]
#[command(name = "weir-worker", version)]
struct Args {
    /// Messages taken per receive (1-10); their shards go through the model together.
    #[arg(long, default_value_t = 10)]
    messages: i32,
    /// Seconds a taken message stays hidden; renewed every third of it while working.
    #[arg(long, default_value_t = 60)]
    visibility: i32,
    /// Long-poll wait in seconds (0-20).
    #[arg(long, default_value_t = 20)]
    wait: i32,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    weir_functions::init_logging();
    let args = Args::parse();
    let (model, opts) = weir_functions::load_model_with_options()?;
    let ctx = Ctx::from_env()
        .await
        .and_then(|c| c.with_registry(&opts))
        .map_err(anyhow::Error::msg)?;
    let (tx, rx) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = term.recv() => {},
                    _ = tokio::signal::ctrl_c() => {},
                }
            }
            Err(e) => {
                tracing::warn!("no SIGTERM handler ({e}); Ctrl-C still stops the worker");
                let _ = tokio::signal::ctrl_c().await;
            }
        }
        tracing::info!("stopping: finishing the batch in hand");
        let _ = tx.send(true);
    });
    let opts = PollOptions {
        max_messages: args.messages,
        visibility_s: args.visibility,
        wait_s: args.wait,
    };
    tracing::info!(queue = ctx.shards.url(), "polling");
    let n = poll(ctx, model, opts, rx)
        .await
        .map_err(anyhow::Error::msg)?;
    tracing::info!(messages = n, "stopped");
    Ok(())
}
