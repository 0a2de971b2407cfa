//! SDK clients and weir's settings, from the environment.

use std::time::Duration;

use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::BehaviorVersion;
use aws_smithy_http_client::tls::{self, rustls_provider::CryptoMode};

/// weir's settings for the functions, from `WEIR_*` variables.
#[derive(Clone, Debug)]
pub struct Settings {
    /// Queue (URL or name) the splitter sends shard messages to (`WEIR_SHARD_QUEUE`).
    pub shard_queue: String,
    /// Queue (URL or name) for "capture ready to aggregate" messages
    /// (`WEIR_AGGREGATE_QUEUE`).
    pub aggregate_queue: String,
    /// Flows per shard (`WEIR_SHARD_FLOWS`, default [`weir_pipeline::SHARD_FLOWS`]).
    pub shard_flows: usize,
    /// Deliveries after which a failing message is given up (goes to the dead-letter queue)
    /// and its capture marked failed: must equal the queues' redrive `maxReceiveCount`
    /// (`WEIR_MAX_RECEIVES`, default 3).
    pub max_receives: u32,
}

impl Settings {
    /// Read them; a missing queue is an error that names the variable.
    pub fn from_env() -> Result<Settings, String> {
        let var = |k: &str| {
            std::env::var(k)
                .ok()
                .filter(|v| !v.is_empty())
                .ok_or_else(|| format!("{k} is not set: the URL or name of the SQS queue (`bash localstack/ctl.sh up` makes weir-shards and weir-aggregate; see the README)"))
        };
        let num = |k: &str, d: usize| -> Result<usize, String> {
            match std::env::var(k) {
                Ok(v) if !v.is_empty() => v
                    .parse()
                    .map_err(|_| format!("{k}={v} is not a whole number")),
                _ => Ok(d),
            }
        };
        Ok(Settings {
            shard_queue: var("WEIR_SHARD_QUEUE")?,
            aggregate_queue: var("WEIR_AGGREGATE_QUEUE")?,
            shard_flows: num("WEIR_SHARD_FLOWS", weir_pipeline::SHARD_FLOWS)?.max(1),
            max_receives: num("WEIR_MAX_RECEIVES", 3)?.max(1) as u32,
        })
    }
}

/// The S3 and SQS clients.
#[derive(Clone, Debug)]
pub struct Clients {
    /// S3.
    pub s3: aws_sdk_s3::Client,
    /// SQS.
    pub sqs: aws_sdk_sqs::Client,
}

/// Clients from the standard AWS environment (region, credentials, `AWS_ENDPOINT_URL`),
/// with TLS over rustls/ring and the SDK's standard retry mode: exponential backoff with
/// jitter on throttling, 5xx, timeouts and refused connections, up to `WEIR_AWS_ATTEMPTS`
/// attempts (default 10, backoff capped at 5 s: about half a minute of an endpoint being
/// away, e.g. LocalStack restarting), each attempt cut off after 45 s (5 s to connect). S3 uses path-style addressing when an endpoint URL is
/// set (LocalStack) or `WEIR_S3_PATH_STYLE=1`.
pub async fn clients() -> Clients {
    let attempts = std::env::var("WEIR_AWS_ATTEMPTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10u32)
        .max(1);
    let http = aws_smithy_http_client::Builder::new()
        .tls_provider(tls::Provider::Rustls(CryptoMode::Ring))
        .build_https();
    let retry = RetryConfig::standard()
        .with_max_attempts(attempts)
        .with_initial_backoff(Duration::from_millis(200))
        .with_max_backoff(Duration::from_secs(5));
    // A frozen endpoint must not hang a function: each attempt gives up after 45 s (long
    // polls wait at most 20 s), connecting after 5 s; then the retry policy takes over.
    let timeouts = TimeoutConfig::builder()
        .connect_timeout(Duration::from_secs(5))
        .operation_attempt_timeout(Duration::from_secs(45))
        .build();
    let mut loader = aws_config::defaults(BehaviorVersion::latest())
        .http_client(http)
        .retry_config(retry)
        .timeout_config(timeouts);
    if std::env::var("AWS_REGION").is_err() && std::env::var("AWS_DEFAULT_REGION").is_err() {
        loader = loader.region(aws_config::Region::new("us-east-1"));
    }
    let conf = loader.load().await;
    let path_style = std::env::var("AWS_ENDPOINT_URL").is_ok_and(|v| !v.is_empty())
        || std::env::var("AWS_ENDPOINT_URL_S3").is_ok_and(|v| !v.is_empty())
        || std::env::var("WEIR_S3_PATH_STYLE").is_ok_and(|v| v == "1");
    let s3conf = aws_sdk_s3::config::Builder::from(&conf)
        .force_path_style(path_style)
        .build();
    Clients {
        s3: aws_sdk_s3::Client::from_conf(s3conf),
        sqs: aws_sdk_sqs::Client::new(&conf),
    }
}
