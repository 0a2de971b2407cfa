//! Shared start-up code of weir's function binaries: logging, the Lambda environment check,
//! the model. Owns: process start-up only. Must not own: a handler's decisions (weir-aws has them).
//!
//! The binaries (`src/bin/`) are thin: they build a [`weir_aws::handlers::Ctx`] from the
//! environment and hand events to the handlers in `weir_aws::handlers`. The same binaries
//! run on AWS Lambda and, locally, under `weir-lambda-local` (which plays the Lambda service
//! against LocalStack): the code that handles an event is the same in both.

use std::sync::{Arc, Mutex};

use weir_classify::{Classifier, Device, Options};

/// Log to stderr (what Lambda sends to CloudWatch), `RUST_LOG` filters (default info), no
/// colours, no timestamps (Lambda adds its own).
pub fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .without_time()
        .try_init();
}

/// Exit with a clear message unless this process runs where a Lambda Runtime API is.
pub fn require_lambda(name: &str) {
    if std::env::var("AWS_LAMBDA_RUNTIME_API").is_err() {
        eprintln!(
            "{name}: AWS_LAMBDA_RUNTIME_API is not set: this binary is an AWS Lambda function.\n\
             Run it on Lambda, or locally under the local Lambda service:\n\
             \x20 just localstack-up            (LocalStack + the functions)\n\
             \x20 weir-lambda-local --help      (run functions against any SQS queues)"
        );
        std::process::exit(2);
    }
    for (k, v) in [
        ("AWS_LAMBDA_FUNCTION_NAME", name),
        ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "1024"),
        ("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST"),
    ] {
        if std::env::var(k).is_err() {
            std::env::set_var(k, v);
        }
    }
}

/// The model: `WEIR_MODEL` (a file written by `weir train`) or the one built in; device
/// from `WEIR_DEVICE` (auto, cpu, cuda), threads from `WEIR_THREADS` (0: all cores), batch
/// from `WEIR_BATCH`, alert threshold from `WEIR_MIN_PROBABILITY`. The provider in use is
/// logged.
pub fn load_model() -> anyhow::Result<Arc<Mutex<Classifier>>> {
    Ok(load_model_with_options()?.0)
}

/// [`load_model`], and the options it was built with (what a hot reload builds the next
/// session with: `weir_aws::handlers::Ctx::with_registry`).
pub fn load_model_with_options() -> anyhow::Result<(Arc<Mutex<Classifier>>, Options)> {
    let mut opts = Options::default();
    if let Ok(d) = std::env::var("WEIR_DEVICE") {
        opts.device = d
            .parse::<Device>()
            .map_err(|e| anyhow::anyhow!("WEIR_DEVICE={d}: {e}"))?;
    }
    if let Some(t) = std::env::var("WEIR_THREADS")
        .ok()
        .and_then(|v| v.parse().ok())
    {
        opts.threads = t;
    }
    if let Some(b) = std::env::var("WEIR_BATCH")
        .ok()
        .and_then(|v| v.parse().ok())
    {
        opts.batch = b;
    }
    if let Ok(v) = std::env::var("WEIR_MIN_PROBABILITY") {
        opts.min_probability = weir_classify::parse_probability(&v)
            .map_err(|e| anyhow::anyhow!("WEIR_MIN_PROBABILITY: {e}"))?;
    }
    let c = match std::env::var("WEIR_MODEL") {
        Ok(p) if !p.is_empty() => Classifier::load(std::path::Path::new(&p), &opts)?,
        _ => Classifier::from_bytes(weir_classify::SHIPPED_MODEL, &opts)?,
    };
    tracing::info!(
        model = c.info().model_version,
        provider = c.provider().name(),
        "model loaded"
    );
    Ok((Arc::new(Mutex::new(c)), opts))
}
