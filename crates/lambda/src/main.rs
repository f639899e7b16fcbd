//! Runtime glue: logging, configuration and the S3 client are built once at cold start; every
//! invocation then goes to `handler::handle_with_deadline`, with its deadline. A bad configuration
//! fails the start with a message naming the variable.

/// Each conversion opens a Parquet writer per partition, allocating and freeing many short-lived
/// buffers: mimalloc serves them faster than glibc (BENCHMARKS.md, "Allocator").
#[cfg(feature = "mimalloc")]
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::sync::Arc;

use lambda_runtime::{LambdaEvent, service_fn};
use parquetrail_lambda::config::Config;
use parquetrail_lambda::handler::{App, handle_with_deadline};
use serde_json::Value;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    let config = Config::from_env();
    let json_logs = config.as_ref().map(|c| c.json_logs).unwrap_or(true);
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into());
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_target(false).without_time();
    if json_logs {
        builder.json().flatten_event(true).init();
    } else {
        builder.init();
    }
    let config = config.inspect_err(|e| tracing::error!(variable = %e.variable, "invalid configuration: {e}"))?;
    let client = config.s3.client().await;
    let function = std::env::var("AWS_LAMBDA_FUNCTION_NAME").unwrap_or_else(|_| "parquetrail".into());
    tracing::info!(destination = %config.destination, "parquetrail-lambda ready");
    let app = Arc::new(App::new(config, client, function));
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| {
        let app = app.clone();
        async move { handle_with_deadline(&app, event.payload, Some(event.context.deadline())).await }
    }))
    .await
}
