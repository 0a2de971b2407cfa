//! weir-merge (AWS Lambda): federated learning's merge. Each SQS batch (update uploads under
//! `fl/updates/`, or a scheduled tick for round deadlines) runs one merge step over the bucket:
//! judge the new updates, close the round at its quorum or deadline, gate, publish the next
//! model version. See `weir_aws::fl::merge` and `weir_fl::round`.

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use lambda_runtime::{service_fn, Error, LambdaEvent};

#[tokio::main]
async fn main() -> Result<(), Error> {
    weir_functions::init_logging();
    weir_functions::require_lambda("weir-merge");
    let ctx = weir_aws::fl::MergeCtx::from_env().await?;
    lambda_runtime::run(service_fn(move |ev: LambdaEvent<SqsEvent>| {
        let ctx = ctx.clone();
        async move { Ok::<SqsBatchResponse, Error>(weir_aws::fl::merge(ctx, ev.payload).await) }
    }))
    .await
}
