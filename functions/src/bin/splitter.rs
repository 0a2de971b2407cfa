//! weir-splitter (AWS Lambda): S3 ObjectCreated (direct, or S3 → SQS) → flow shards in S3 +
//! one SQS message per shard. See `weir_aws::handlers::splitter`.

use lambda_runtime::{service_fn, Error, LambdaEvent};
use serde_json::Value;

#[tokio::main]
async fn main() -> Result<(), Error> {
    weir_functions::init_logging();
    weir_functions::require_lambda("weir-splitter");
    let ctx = weir_aws::handlers::Ctx::from_env().await?;
    lambda_runtime::run(service_fn(move |ev: LambdaEvent<Value>| {
        let ctx = ctx.clone();
        async move {
            weir_aws::handlers::splitter(ctx, ev.payload)
                .await
                .map_err(Error::from)
        }
    }))
    .await
}
