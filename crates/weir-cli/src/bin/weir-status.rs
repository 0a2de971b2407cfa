//! weir-status: `weir status` over the bucket the functions write to. Lists every capture
//! with its state (queued, splitting, classifying k/n, aggregating, done, done-with-warnings,
//! failed + reason), or follows them; the statuses come from the same objects, read the same
//! way (`weir_cli::status::show_status`).

use clap::Parser;
use weir_aws::S3Store;

/// List the captures in weir's bucket and where each one is; follow them.
///
/// Reads the standard AWS variables (AWS_REGION, credentials, AWS_ENDPOINT_URL for
/// LocalStack: `eval "$(bash localstack/ctl.sh env)"` sets them). On LocalStack,
/// `bash localstack/ctl.sh captures [OPTIONS]` runs it with those set.
///
/// Examples:
///   weir-status                                   # every capture in s3://$WEIR_BUCKET
///   weir-status --watch                           # a line per change, until Ctrl-C
///   aws s3 cp big.pcap s3://weir/uploads/ && weir-status --wait uploads/big.pcap
#[derive(Parser, Debug)]
#[command(name = "weir-status", version, verbatim_doc_comment)]
struct Args {
    /// The bucket (default: WEIR_BUCKET, else `weir`).
    #[arg(long, value_name = "NAME")]
    bucket: Option<String>,
    #[command(flatten)]
    show: weir_cli::status::ShowOptions,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let bucket = args
        .bucket
        .or_else(|| std::env::var("WEIR_BUCKET").ok())
        .unwrap_or_else(|| "weir".into());
    // A person is waiting: a few retries, not the functions' ten.
    if std::env::var("WEIR_AWS_ATTEMPTS").is_err() {
        std::env::set_var("WEIR_AWS_ATTEMPTS", "3");
    }
    let rt = tokio::runtime::Runtime::new()?;
    let clients = rt.block_on(weir_aws::clients());
    // The store blocks on the runtime, so it is used from this (non-runtime) thread.
    let store = S3Store::new(clients.s3, &bucket, rt.handle().clone());
    let place = format!("s3://{bucket}");
    let (mut out, mut note) = (std::io::stdout(), std::io::stderr());
    match weir_cli::status::show_status(&store, &args.show, &place, &mut out, &mut note) {
        // With --wait: 1 when the capture failed.
        Ok(shown) => std::process::exit(i32::from(shown.failed())),
        Err(e @ weir_pipeline::PipelineError::Wait(_)) => {
            eprintln!("weir-status: {e}");
            std::process::exit(2)
        }
        Err(e) => {
            eprintln!(
                "weir-status: {e}\n(reading s3://{bucket}: is the bucket right (--bucket, WEIR_BUCKET), and are the AWS variables set? On LocalStack: eval \"$(bash localstack/ctl.sh env)\")"
            );
            std::process::exit(2)
        }
    }
}
