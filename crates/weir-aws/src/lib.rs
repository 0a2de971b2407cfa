//! # weir-aws
//!
//! Owns: everything that speaks to AWS (S3, SQS, the Lambda handlers' decisions, the merge
//! function). Must not depend on: the web app or the CLI.
//!
//! weir's stages on AWS. [`S3Store`] is weir-pipeline's [`Store`](weir_pipeline::Store) over
//! S3 (ranged GETs, so a capture is never whole in memory), [`Queue`] is an SQS queue, and
//! [`handlers`] are the Lambda and worker handlers the binaries in `functions/` run: they
//! parse events, call the stage functions of weir-pipeline, and report partial failures.
//!
//! Settings come from the environment, so the same binaries run on AWS and on LocalStack
//! (see [`Settings`]): the standard AWS variables (`AWS_REGION`, credentials,
//! `AWS_ENDPOINT_URL` for LocalStack) and weir's own (`WEIR_SHARD_QUEUE`,
//! `WEIR_AGGREGATE_QUEUE`, ...).
//!
//! Threading: the stage functions are synchronous (they read captures, run polars and ONNX
//! Runtime); the store and queue wrap the async SDK with a runtime [`Handle`](tokio::runtime::Handle)
//! and `block_on`. Handlers therefore run stages inside `tokio::task::spawn_blocking`, never
//! on a runtime worker thread.
#![warn(missing_docs)]

mod config;
pub mod events;
pub mod fl;
pub mod handlers;
mod s3;
mod sqs;

pub use config::{clients, Clients, Settings};
pub use s3::S3Store;
pub use sqs::{Queue, Received};

/// An AWS call failed (after the SDK's retries).
#[derive(Debug, thiserror::Error)]
#[error("{what}: {message}")]
pub struct AwsError {
    /// The call and its target.
    pub what: String,
    /// What the SDK said (with its error chain).
    pub message: String,
}

impl AwsError {
    pub(crate) fn new(what: impl Into<String>, e: impl std::error::Error) -> Self {
        AwsError {
            what: what.into(),
            message: aws_smithy_types_display(&e),
        }
    }
}

/// An error with its whole source chain, as the SDK's DisplayErrorContext prints it.
fn aws_smithy_types_display(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(x) = src {
        s.push_str(": ");
        s.push_str(&x.to_string());
        src = x.source();
    }
    s
}
