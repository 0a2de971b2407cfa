//! weir-aggregator (AWS Lambda): "capture complete" messages → the capture's polars summary
//! (the search layout is written by the classifiers). See `weir_aws::handlers::aggregator`.

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use lambda_runtime::{service_fn, Error, LambdaEvent};

#[tokio::main]
async fn main() -> Result<(), Error> {
    weir_functions::init_logging();
    weir_functions::require_lambda("weir-aggregator");
    let ctx = weir_aws::handlers::Ctx::from_env().await?;
    lambda_runtime::run(service_fn(move |ev: LambdaEvent<SqsEvent>| {
        let ctx = ctx.clone();
        async move {
            Ok::<SqsBatchResponse, Error>(weir_aws::handlers::aggregator(ctx, ev.payload).await)
        }
    }))
    .await
}
