//! weir-classifier (AWS Lambda, CPU): SQS batch of shard messages → one Parquet result per
//! shard, partial batch failures reported. See `weir_aws::handlers::classifier_lambda`.

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use lambda_runtime::{service_fn, Error, LambdaEvent};

#[tokio::main]
async fn main() -> Result<(), Error> {
    weir_functions::init_logging();
    weir_functions::require_lambda("weir-classifier");
    // Loaded once per execution environment, reused by every invocation; with
    // WEIR_MODEL_REGISTRY=bucket it follows the model registry between batches.
    let (model, opts) = weir_functions::load_model_with_options()?;
    let ctx = weir_aws::handlers::Ctx::from_env()
        .await?
        .with_registry(&opts)?;
    lambda_runtime::run(service_fn(move |ev: LambdaEvent<SqsEvent>| {
        let (ctx, model) = (ctx.clone(), model.clone());
        async move {
            Ok::<SqsBatchResponse, Error>(
                weir_aws::handlers::classifier_lambda(ctx, model, ev.payload).await,
            )
        }
    }))
    .await
}
