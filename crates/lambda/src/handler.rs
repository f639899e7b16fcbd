//! The handler: tells the trigger apart by shape, converts every announced object through the
//! pipeline, and answers in the trigger's own terms.
//!
//! | trigger | a retryable failure | a permanent failure (corrupt file, gone object) |
//! |---|---|---|
//! | S3 / SNS / EventBridge (async invoke) | the invocation fails → Lambda retries it | quarantined, invocation succeeds |
//! | SQS | that message in `batchItemFailures` (redelivered, then DLQ) | quarantined, message acknowledged |
//! | S3 Batch Operations | `TemporaryFailure` (retried by the job) | `PermanentFailure` with the reason |
//!
//! A message whose body is not a notification at all is reported in `batchItemFailures`, so it
//! ends in the queue's DLQ for an operator instead of being dropped.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use aws_lambda_events::sqs::{BatchItemFailure, SqsBatchResponse};
use parquetrail_core::convert::Options;
use parquetrail_ingest::ledger::{Entry, record_object};
use parquetrail_ingest::listing::DatasetChoice;
use parquetrail_ingest::notifications::{
    BatchInvocation, BatchResponse, BatchResult, ObjectRef, ResultCode, Trigger, parse_trigger,
};
use parquetrail_ingest::s3::S3Storage;
use parquetrail_ingest::{IngestError, Location, Outcome, Pipeline, Storage};
use serde_json::{Value, json};
use tokio::sync::Semaphore;

use crate::config::Config;
use crate::metrics::InvocationMetrics;

/// Everything built once at cold start and shared by invocations.
#[derive(Debug)]
pub struct App {
    pub config: Config,
    pub client: aws_sdk_s3::Client,
    pub pipeline: Pipeline,
    pub function_name: String,
}

impl App {
    pub fn new(config: Config, client: aws_sdk_s3::Client, function_name: impl Into<String>) -> Self {
        let pipeline = pipeline_for(&client, &config.destination, config.options.clone());
        App { config, client, pipeline, function_name: function_name.into() }
    }

    fn source(&self, bucket: &str) -> S3Storage {
        S3Storage::new(self.client.clone(), bucket)
    }
}

fn pipeline_for(client: &aws_sdk_s3::Client, destination: &Location, options: Options) -> Pipeline {
    let Location::S3 { bucket, prefix } = destination else {
        unreachable!("the configuration only accepts s3:// destinations")
    };
    Pipeline::new(Arc::new(S3Storage::new(client.clone(), bucket)), prefix.clone(), options)
}

/// An invocation that must be retried; its message lists every object that failed.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct RetryableFailure(pub String);

/// Handles one invocation.
pub async fn handle(app: &App, event: Value) -> Result<Value, RetryableFailure> {
    let started = Instant::now();
    let trigger = match parse_trigger(&event) {
        Ok(t) => t,
        Err(e) => {
            // Not a shape we know: retrying will not help, but failing makes the event visible
            // (async retries, then the on-failure destination or DLQ) instead of dropping it.
            tracing::error!(error = %e, "unrecognised event");
            return Err(RetryableFailure(format!("unrecognised event: {e}")));
        }
    };
    let mut metrics = InvocationMetrics::default();
    let result = match trigger {
        Trigger::TestEvent => {
            tracing::info!("s3:TestEvent acknowledged");
            Ok(json!({"ignored": "s3:TestEvent"}))
        }
        Trigger::Objects { source, objects } => {
            let outcomes = process_all(app, &app.pipeline, &objects).await;
            outcomes.iter().for_each(|o| add(&mut metrics, o));
            let retry: Vec<String> = outcomes
                .iter()
                .filter(|o| matches!(&o.result, Err(e) if e.retryable))
                .map(|o| format!("{}: {}", o.key, o.problem().unwrap_or_default()))
                .collect();
            if retry.is_empty() {
                Ok(json!({ "source": source, "objects": summary(&outcomes) }))
            } else {
                Err(RetryableFailure(format!(
                    "{} object(s) failed and will be retried: {}",
                    retry.len(),
                    retry.join("; ")
                )))
            }
        }
        Trigger::Sqs(messages) => {
            let mut failures = Vec::new();
            for message in &messages {
                let failed = match &message.objects {
                    Err(e) => {
                        tracing::error!(message_id = %message.message_id, error = %e, "message is not a notification");
                        true
                    }
                    Ok(objects) => {
                        let outcomes = process_all(app, &app.pipeline, objects).await;
                        outcomes.iter().for_each(|o| add(&mut metrics, o));
                        outcomes.iter().any(|o| matches!(&o.result, Err(e) if e.retryable))
                    }
                };
                if failed {
                    let mut f = BatchItemFailure::default();
                    f.item_identifier = message.message_id.clone();
                    failures.push(f);
                }
            }
            let mut response = SqsBatchResponse::default();
            response.batch_item_failures = failures;
            Ok(serde_json::to_value(response).expect("responses serialize"))
        }
        Trigger::Batch(invocation) => {
            let response = handle_batch(app, &invocation, &mut metrics).await;
            Ok(serde_json::to_value(response).expect("responses serialize"))
        }
    };
    metrics.latency_ms = started.elapsed().as_millis() as u64;
    let now =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0);
    println!("{}", metrics.emf(&app.config.metrics_namespace, &app.function_name, now));
    result
}

async fn handle_batch(app: &App, invocation: &BatchInvocation, metrics: &mut InvocationMetrics) -> BatchResponse {
    // Schema 2.0 `userArguments` may point a backfill job elsewhere or at one dataset.
    let custom = batch_pipeline(app, &invocation.user_arguments);
    let mut results = Vec::new();
    for task in &invocation.tasks {
        let (code, text) = match (&task.object, &custom) {
            (_, Err(e)) => (ResultCode::PermanentFailure, e.clone()),
            (Err(e), _) => (ResultCode::PermanentFailure, e.to_string()),
            (Ok(object), Ok(pipeline)) => {
                let pipeline = pipeline.as_ref().unwrap_or(&app.pipeline);
                let outcome = process_one(app, pipeline, object).await;
                add(metrics, &outcome);
                match &outcome.result {
                    Err(e) if e.retryable => (ResultCode::TemporaryFailure, e.message.clone()),
                    Err(e) => (ResultCode::PermanentFailure, e.message.clone()),
                    Ok(r) if r.failure.is_some() => {
                        (ResultCode::PermanentFailure, outcome.problem().unwrap_or_default())
                    }
                    Ok(r) if r.skipped.is_some() => {
                        (ResultCode::Succeeded, format!("skipped: {}", r.skipped.as_deref().unwrap_or("")))
                    }
                    Ok(r) => (
                        ResultCode::Succeeded,
                        format!(
                            "{} records: {} rows, {} quarantined, {} filtered",
                            r.records, r.rows, r.quarantined, r.filtered
                        ),
                    ),
                }
            }
        };
        results.push(BatchResult { task_id: task.task_id.clone(), result_code: code, result_string: text });
    }
    BatchResponse::new(invocation, results)
}

/// The pipeline for a Batch job's `userArguments` (`destination`, `dataset`), `None` for defaults.
fn batch_pipeline(app: &App, args: &BTreeMap<String, String>) -> Result<Option<Pipeline>, String> {
    if args.is_empty() {
        return Ok(None);
    }
    let mut destination = app.config.destination.clone();
    let mut options = app.config.options.clone();
    for (k, v) in args {
        match k.as_str() {
            "destination" => {
                destination = Location::parse(v).map_err(|e| format!("userArguments.destination: {e}"))?;
                if !destination.is_s3() {
                    return Err(format!("userArguments.destination: {v:?} is not an s3:// URL"));
                }
            }
            // The same filter `parquetrail backfill --dataset` applies, so both write identical outputs.
            // A digest file becomes its `digests` row whatever the filter: `digests` changes nothing.
            "dataset" => match v.parse::<DatasetChoice>() {
                Ok(DatasetChoice::All | DatasetChoice::Digests) => {}
                Ok(choice) => options.filter.categories = choice.filter().categories,
                Err(e) => return Err(format!("userArguments.dataset: {e}")),
            },
            other => return Err(format!("userArguments: unknown argument {other:?} (known: destination, dataset)")),
        }
    }
    Ok(Some(pipeline_for(&app.client, &destination, options)))
}

/// Converts one object and records it in the archive's ledger, so `parquetrail verify --archive`
/// reconciles what the Lambda archived as it does a backfill. The ledger line is written after the
/// outputs; if it cannot be, the object is reported for a retry, which rewrites identical outputs.
async fn process_one(app: &App, pipeline: &Pipeline, object: &ObjectRef) -> Outcome {
    let source = app.source(&object.bucket);
    let mut outcome = pipeline
        .process(&source as &dyn Storage, &object.key, object.raw_key.as_deref(), object.version_id.as_deref())
        .await;
    if let Ok(file) = &outcome.result {
        let run = format!("lambda-{}", app.function_name);
        // The ETag S3 answered the GET with (a notification's may be absent, as in Batch tasks), so a
        // later `parquetrail backfill` knows this version of the object is done.
        let etag = outcome.etag.as_deref().or(object.etag.as_deref());
        let entry = Entry::for_file(Some(&object.bucket), &outcome.key, etag, file.bytes_in, file, &run);
        let (dest, prefix) = pipeline.destination();
        if let Err(e) = record_object(dest.as_ref(), prefix, &entry).await {
            tracing::error!(key = %outcome.key, error = %e, "outputs written but the ledger line was not");
            outcome.result = Err(IngestError {
                retryable: true,
                message: format!("outputs written, but the ledger line could not be: {e}"),
            });
        }
    }
    outcome
}

/// Converts objects with bounded concurrency, keeping their order in the result.
async fn process_all(app: &App, pipeline: &Pipeline, objects: &[ObjectRef]) -> Vec<Outcome> {
    let permits = Arc::new(Semaphore::new(app.config.concurrency));
    let tasks = objects.iter().map(|object| {
        let permits = permits.clone();
        async move {
            let _permit = permits.acquire().await.expect("semaphore is never closed");
            process_one(app, pipeline, object).await
        }
    });
    futures_util::future::join_all(tasks).await
}

fn add(m: &mut InvocationMetrics, o: &Outcome) {
    m.objects += 1;
    match &o.result {
        Err(_) => m.files_failed += 1,
        Ok(r) => {
            m.records_in += r.records;
            m.rows_out += r.rows;
            m.records_quarantined += r.quarantined;
            m.records_filtered += r.filtered;
            m.bytes_in += r.bytes_in;
            m.bytes_out += r.outputs.iter().map(|x| x.bytes).sum::<u64>();
            if r.failure.is_some() {
                m.files_quarantined += 1;
            }
            if r.skipped.is_some() {
                m.files_skipped += 1;
            }
        }
    }
}

fn summary(outcomes: &[Outcome]) -> Vec<Value> {
    outcomes
        .iter()
        .map(|o| match &o.result {
            Ok(r) => json!({
                "bucket": o.bucket, "key": o.key, "records": r.records, "rows": r.rows,
                "quarantined": r.quarantined, "filtered": r.filtered, "skipped": r.skipped,
                "failure": r.failure.as_ref().map(|f| &f.reason), "outputs": r.outputs.len(),
            }),
            Err(e) => json!({"bucket": o.bucket, "key": o.key, "error": e.message, "retryable": e.retryable}),
        })
        .collect()
}

impl From<RetryableFailure> for lambda_runtime::Diagnostic {
    fn from(e: RetryableFailure) -> Self {
        lambda_runtime::Diagnostic { error_type: "RetryableFailure".into(), error_message: e.0 }
    }
}
