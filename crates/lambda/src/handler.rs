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
//!
//! An event with a top-level `"parquetrail"` field is a command to the function, not a
//! notification (no AWS event has that field), and is recognised before any notification parsing:
//! `{"parquetrail":"compact"}`, sent by a schedule, compacts the archive ([`CompactRequest`]);
//! `{"parquetrail":"insights"}` computes Insights over the archive ([`InsightsRequest`]).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use aws_lambda_events::sqs::{BatchItemFailure, SqsBatchResponse};
use chrono::{Days, NaiveDate, Utc};
use parquetrail_core::compact::CompactOptions;
use parquetrail_core::convert::{Dataset, FileReport, Options};
use parquetrail_ingest::compaction::{Compactor, Control, Failure, Scope, Settings, Totals};
use parquetrail_ingest::ledger::{Entry, record_objects, record_shaping};
use parquetrail_ingest::listing::DatasetChoice;
use parquetrail_ingest::notifications::{
    BatchInvocation, BatchResponse, BatchResult, ObjectRef, ResultCode, Trigger, parse_trigger,
};
use parquetrail_ingest::s3::S3Storage;
use parquetrail_ingest::storage::ErrorKind;
use parquetrail_ingest::{Error, IngestError, Location, Outcome, Pipeline, Storage, StorageError};
use serde::Serialize;
use serde_json::{Map, Value, json};
use tokio::sync::Semaphore;

use crate::config::{Config, parse_duration};
use crate::metrics::InvocationMetrics;

/// Everything built once at cold start and shared by invocations.
#[derive(Debug)]
pub struct App {
    pub config: Config,
    pub client: aws_sdk_s3::Client,
    pub pipeline: Pipeline,
    pub function_name: String,
    /// Set once this instance has recorded the shaping rule sets in the archive (`_shaping/`).
    shaping_recorded: tokio::sync::OnceCell<()>,
}

impl App {
    pub fn new(config: Config, client: aws_sdk_s3::Client, function_name: impl Into<String>) -> Self {
        let pipeline = pipeline_for(&client, &config.destination, config.options.clone());
        App { config, client, pipeline, function_name: function_name.into(), shaping_recorded: Default::default() }
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

/// Handles one invocation, with no time limit (tests, and callers without a deadline).
pub async fn handle(app: &App, event: Value) -> Result<Value, RetryableFailure> {
    handle_with_deadline(app, event, None).await
}

/// Handles one invocation that must end by `deadline` (the Lambda context's): long work (a
/// compaction run) stops starting new units in time to answer.
pub async fn handle_with_deadline(
    app: &App,
    event: Value,
    deadline: Option<SystemTime>,
) -> Result<Value, RetryableFailure> {
    match parse_command(&event) {
        None => {}
        Some(Ok(Command::Compact(request))) => return compact(app, &request, deadline).await,
        Some(Ok(Command::Insights(request))) => return insights(app, &request, deadline).await,
        Some(Err(e)) => {
            tracing::error!(error = %e, "invalid parquetrail command");
            return Err(RetryableFailure(format!("invalid parquetrail command: {e}")));
        }
    }
    let started = Instant::now();
    let answer_by = deadline.map(answer_by);
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
            let outcomes = process_all(app, &app.pipeline, &objects, answer_by).await;
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
            // Every object of every message at once (bounded by the concurrency setting), so a
            // slow or failing message never keeps the others from starting; each message is
            // then judged by its own objects alone.
            let work: Vec<(usize, &ObjectRef)> = messages
                .iter()
                .enumerate()
                .filter_map(|(i, m)| m.objects.as_ref().ok().map(|objects| objects.iter().map(move |o| (i, o))))
                .flatten()
                .collect();
            let objects: Vec<ObjectRef> = work.iter().map(|(_, o)| (*o).clone()).collect();
            let outcomes = process_all(app, &app.pipeline, &objects, answer_by).await;
            outcomes.iter().for_each(|o| add(&mut metrics, o));
            let mut failed = vec![false; messages.len()];
            for ((i, _), outcome) in work.iter().zip(&outcomes) {
                failed[*i] |= matches!(&outcome.result, Err(e) if e.retryable);
            }
            let mut failures = Vec::new();
            for (message, failed) in messages.iter().zip(failed) {
                if let Err(e) = &message.objects {
                    tracing::error!(message_id = %message.message_id, error = %e, "message is not a notification");
                } else if !failed {
                    continue;
                }
                let mut f = BatchItemFailure::default();
                f.item_identifier = message.message_id.clone();
                failures.push(f);
            }
            let mut response = SqsBatchResponse::default();
            response.batch_item_failures = failures;
            Ok(serde_json::to_value(response).expect("responses serialize"))
        }
        Trigger::Batch(invocation) => {
            let response = handle_batch(app, &invocation, &mut metrics, answer_by).await;
            Ok(serde_json::to_value(response).expect("responses serialize"))
        }
    };
    metrics.latency_ms = started.elapsed().as_millis() as u64;
    let now =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0);
    println!("{}", metrics.emf(&app.config.metrics_namespace, &app.function_name, now));
    result
}

async fn handle_batch(
    app: &App,
    invocation: &BatchInvocation,
    metrics: &mut InvocationMetrics,
    answer_by: Option<tokio::time::Instant>,
) -> BatchResponse {
    // Schema 2.0 `userArguments` may point a backfill job elsewhere or at one dataset.
    let custom = batch_pipeline(app, &invocation.user_arguments);
    let mut results = Vec::new();
    for task in &invocation.tasks {
        let (code, text) = match (&task.object, &custom) {
            (_, Err(e)) => (ResultCode::PermanentFailure, e.clone()),
            (Err(e), _) => (ResultCode::PermanentFailure, e.to_string()),
            (Ok(object), Ok(pipeline)) => {
                let pipeline = pipeline.as_ref().unwrap_or(&app.pipeline);
                let mut outcome = process_bounded(app, pipeline, object, answer_by).await;
                record_done(app, pipeline, &[object], std::slice::from_mut(&mut outcome)).await;
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

/// Converts one object. Its ledger line is written by [`record_done`], with those of the other
/// objects of the invocation.
async fn convert_one(app: &App, pipeline: &Pipeline, object: &ObjectRef) -> Outcome {
    let source = app.source(&object.bucket);
    pipeline
        .process(&source as &dyn Storage, &object.key, object.raw_key.as_deref(), object.version_id.as_deref())
        .await
}

/// Records the converted objects of one invocation in the archive's ledger, so `parquetrail verify
/// --archive` reconciles what the Lambda archived as it does a backfill: one segment for all of
/// them, written after all their outputs are listed, so a line still means "done". If it cannot
/// be written, every one of them is reported for a retry, which rewrites identical outputs.
async fn record_done(app: &App, pipeline: &Pipeline, objects: &[&ObjectRef], outcomes: &mut [Outcome]) {
    let run = format!("lambda-{}", app.function_name);
    let entries: Vec<Entry> = objects
        .iter()
        .zip(outcomes.iter())
        .filter_map(|(object, outcome)| {
            let file = outcome.result.as_ref().ok()?;
            // The ETag S3 answered the GET with (a notification's may be absent, as in Batch
            // tasks), so a later `parquetrail backfill` knows this version of the object is done.
            let etag = outcome.etag.as_deref().or(object.etag.as_deref());
            Some(Entry::for_file(Some(&object.bucket), &outcome.key, etag, file.bytes_in, file, &run))
        })
        .collect();
    if entries.is_empty() {
        return;
    }
    let (dest, prefix) = pipeline.destination();
    let failed = match record_objects(dest.as_ref(), prefix, &entries).await {
        Err(source) => {
            tracing::error!(objects = entries.len(), error = %source, "outputs written but the ledger lines were not");
            Some(Error::Record { what: "the ledger line", source })
        }
        Ok(()) => match record_shaping_once(app, dest.as_ref(), prefix).await {
            Err(source) => {
                tracing::error!(error = %source, "outputs written but the shaping rules were not recorded");
                Some(Error::Record { what: "the archive's record of its shaping rules", source })
            }
            Ok(()) => None,
        },
    };
    let Some(error) = failed else { return };
    let error = IngestError::from(error);
    for outcome in outcomes.iter_mut().filter(|o| o.result.is_ok()) {
        outcome.result = Err(error.clone());
    }
}

/// Records the rule sets that shape this function's conversions in the archive (`_shaping/`,
/// what `export` reports), once per instance; nothing without shaping.
async fn record_shaping_once(app: &App, dest: &dyn Storage, prefix: &str) -> Result<(), StorageError> {
    if app.config.options.shaping.is_empty() {
        return Ok(());
    }
    app.shaping_recorded.get_or_try_init(|| record_shaping(dest, prefix, &app.config.options.shaping)).await.map(|_| ())
}

/// Converts objects with bounded concurrency, keeping their order in the result, then lists the
/// outputs of the converted ones in their manifests, one write per partition for all of them
/// (objects of one SQS batch often share a partition: a trail's account and Region on one day),
/// and records them in the ledger ([`record_done`]). If the listing fails, every converted object
/// is reported for a retry, which rewrites identical outputs and lists them.
async fn process_all(
    app: &App,
    pipeline: &Pipeline,
    objects: &[ObjectRef],
    answer_by: Option<tokio::time::Instant>,
) -> Vec<Outcome> {
    let later = pipeline.clone().listing_later();
    let pipeline = &later;
    let permits = Arc::new(Semaphore::new(app.config.concurrency));
    let tasks = objects.iter().map(|object| {
        let permits = permits.clone();
        async move {
            let _permit = permits.acquire().await.expect("semaphore is never closed");
            process_bounded(app, pipeline, object, answer_by).await
        }
    });
    let mut outcomes = futures_util::future::join_all(tasks).await;
    let converted: Vec<&FileReport> = outcomes.iter().filter_map(|o| o.result.as_ref().ok()).collect();
    // Bounded like the conversions, so the invocation still answers before its deadline.
    let listed = match answer_by {
        Some(answer_by) => tokio::time::timeout_at(answer_by, pipeline.list(&converted)).await.unwrap_or_else(|_| {
            Err(StorageError::new(ErrorKind::Retryable, "the outputs were not listed before the invocation's deadline"))
        }),
        None => pipeline.list(&converted).await,
    };
    if let Err(source) = listed {
        tracing::error!(objects = converted.len(), error = %source, "outputs written but not listed in their manifests");
        for outcome in outcomes.iter_mut().filter(|o| o.result.is_ok()) {
            outcome.result =
                Err(IngestError::from(Error::Publish { key: outcome.key.clone(), source: source.clone() }));
        }
    }
    let objects: Vec<&ObjectRef> = objects.iter().collect();
    record_done(app, pipeline, &objects, &mut outcomes).await;
    outcomes
}

/// When the answer must be under way: the invocation's deadline less a reserve for the answer,
/// the metrics line and the runtime's own round trip (a twentieth of the time left, from 2 s up to
/// 10 s).
fn answer_by(deadline: SystemTime) -> tokio::time::Instant {
    let left = deadline.duration_since(SystemTime::now()).unwrap_or_default();
    let reserve = (left / 20).clamp(Duration::from_secs(2), Duration::from_secs(10));
    tokio::time::Instant::now() + left.saturating_sub(reserve)
}

/// [`convert_one`], given up at `answer_by`: an object still converting then is reported as a
/// retryable failure (its message is redelivered), so the invocation answers for the others in
/// time instead of being killed with nothing answered. Nothing of the unfinished object becomes
/// visible: its outputs are listed in manifests only after the whole conversion, which this
/// abandons.
async fn process_bounded(
    app: &App,
    pipeline: &Pipeline,
    object: &ObjectRef,
    answer_by: Option<tokio::time::Instant>,
) -> Outcome {
    let Some(answer_by) = answer_by else {
        return convert_one(app, pipeline, object).await;
    };
    let started = Instant::now();
    match tokio::time::timeout_at(answer_by, convert_one(app, pipeline, object)).await {
        Ok(outcome) => outcome,
        Err(_) => {
            tracing::error!(bucket = %object.bucket, key = %object.key, "not finished before the invocation's deadline");
            Outcome {
                bucket: Some(object.bucket.clone()),
                key: object.key.clone(),
                result: Err(IngestError::from(Error::Deadline {
                    uri: format!("s3://{}/{}", object.bucket, object.key),
                    seconds: started.elapsed().as_secs_f64(),
                })),
                etag: None,
                attempts: 1,
                seconds: started.elapsed().as_secs_f64(),
            }
        }
    }
}

fn add(m: &mut InvocationMetrics, o: &Outcome) {
    match &o.result {
        Err(_) => m.files.add_failed(),
        Ok(r) => m.files.add(r),
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
                "shaped": r.shaped,
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

/// A command to the function itself: an event `{"parquetrail": NAME, …}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    Compact(CompactRequest),
    Insights(InsightsRequest),
}

/// A scheduled Insights run: `{"parquetrail":"insights"}`, with `since` (default `"1d"`): report
/// the Insights that started within that long before now. The model is the default one
/// (`docs/INSIGHTS.md`). Unknown fields are refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InsightsRequest {
    pub since: Duration,
}

impl Default for InsightsRequest {
    fn default() -> Self {
        InsightsRequest { since: Duration::from_secs(86_400) }
    }
}

impl InsightsRequest {
    fn parse(event: &Map<String, Value>) -> Result<InsightsRequest, String> {
        let mut request = InsightsRequest::default();
        for (name, value) in event {
            match name.as_str() {
                "parquetrail" => {}
                "since" => {
                    let text = value.as_str().ok_or_else(|| format!("{name}: expected a string, got {value}"))?;
                    request.since = parse_duration(text).map_err(|e| format!("{name}: {e}"))?;
                    if request.since.is_zero() {
                        return Err(format!("{name}: must be longer than 0s"));
                    }
                }
                other => return Err(format!("unknown field {other:?} (known: parquetrail, since)")),
            }
        }
        Ok(request)
    }
}

/// What an Insights run did: the invocation's response.
#[derive(Debug, Clone, Default, Serialize)]
pub struct InsightsSummary {
    /// The archive analysed.
    pub destination: String,
    /// `events` partitions whose metrics were needed, rebuilt, and not reached before the
    /// deadline (the next run carries on; nothing is detected until none is left).
    pub partitions: usize,
    pub rebuilt: usize,
    pub remaining: usize,
    /// Events counted into rebuilt metrics.
    pub events: u64,
    pub episodes: usize,
    pub records: usize,
    /// `insights` partitions whose computed file changed.
    pub partitions_written: usize,
    pub seconds: f64,
}

/// An Insights run over the function's destination: the metrics of the days needed are brought
/// up to date partition by partition until the work or the time runs out (each partition's
/// metrics are kept, so a run cut short resumes where it stopped), then the model runs and the
/// records are written. An error to list or read makes the invocation fail (the schedule retries).
async fn insights(
    app: &App,
    request: &InsightsRequest,
    deadline: Option<SystemTime>,
) -> Result<Value, RetryableFailure> {
    use parquetrail_core::insights::detect::Model;
    use parquetrail_ingest::insights as run;
    let started = Instant::now();
    let time_left = |deadline: SystemTime| deadline.duration_since(SystemTime::now()).unwrap_or_default();
    let margin = deadline.map(|d| safety_margin(time_left(d)));
    let go_on = |_: &str| match (deadline, margin) {
        (Some(deadline), Some(margin)) => time_left(deadline) > margin,
        _ => true,
    };
    let (storage, root) = app.pipeline.destination();
    let until = Utc::now().timestamp_micros();
    let since = until.saturating_sub(i64::try_from(request.since.as_micros()).unwrap_or(i64::MAX));
    let failed = |e: parquetrail_ingest::StorageError| {
        tracing::error!(destination = %app.config.destination, error = %e, "insights run failed");
        RetryableFailure(format!("insights over {}: {e}", app.config.destination))
    };
    let (episodes, report) =
        run::find_episodes(storage, root, &Model::default(), since, until, &go_on).await.map_err(failed)?;
    let mut summary = InsightsSummary {
        destination: app.config.destination.to_string(),
        partitions: report.partitions,
        rebuilt: report.rebuilt,
        remaining: report.remaining,
        events: report.events,
        episodes: episodes.len(),
        records: episodes.iter().map(|e| if e.end.is_some() { 2 } else { 1 }).sum(),
        ..Default::default()
    };
    if report.remaining == 0 {
        summary.partitions_written =
            run::write_insights(storage, root, &episodes, since, until).await.map_err(failed)?;
    } else {
        tracing::warn!(remaining = report.remaining, "insights: out of time building metrics; the next run carries on");
    }
    summary.seconds = started.elapsed().as_secs_f64();
    tracing::info!(
        destination = %summary.destination,
        partitions = summary.partitions,
        rebuilt = summary.rebuilt,
        remaining = summary.remaining,
        episodes = summary.episodes,
        "insights run"
    );
    Ok(serde_json::to_value(&summary).expect("summaries serialize"))
}

/// A scheduled compaction run: `{"parquetrail":"compact"}`, every other field optional. Unknown
/// fields are refused, so a typo in a schedule's input fails loudly instead of compacting with
/// defaults.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompactRequest {
    /// `older_than` (default `"1h"`): only partitions whose day (UTC) ended at least this long
    /// ago, so late deliveries have landed.
    pub older_than: Duration,
    /// `lookback_days` (default 7): only partitions dated within the last this many days, so a run
    /// looks at a week of partitions, not the archive's whole history.
    pub lookback_days: u32,
    /// `dataset` (default `"all"`): `events`, `insights`, `digests` or `all`.
    pub dataset: DatasetChoice,
    /// `grace` (default `"1h"`): how long a replaced file stays readable, for queries planned on
    /// the previous manifest, before a run deletes it.
    pub grace: Duration,
}

impl Default for CompactRequest {
    fn default() -> Self {
        CompactRequest {
            older_than: Duration::from_secs(3600),
            lookback_days: 7,
            dataset: DatasetChoice::All,
            grace: Duration::from_secs(3600),
        }
    }
}

const COMPACT_FIELDS: &str = "parquetrail, older_than, lookback_days, dataset, grace";

impl CompactRequest {
    fn parse(event: &Map<String, Value>) -> Result<CompactRequest, String> {
        let mut request = CompactRequest::default();
        let text = |name: &str, v: &Value| -> Result<String, String> {
            v.as_str().map(str::to_string).ok_or_else(|| format!("{name}: expected a string, got {v}"))
        };
        for (name, value) in event {
            match name.as_str() {
                "parquetrail" => {}
                "older_than" => {
                    request.older_than = parse_duration(&text(name, value)?).map_err(|e| format!("{name}: {e}"))?;
                }
                "grace" => request.grace = parse_duration(&text(name, value)?).map_err(|e| format!("{name}: {e}"))?,
                "lookback_days" => {
                    request.lookback_days = value
                        .as_u64()
                        .and_then(|n| u32::try_from(n).ok())
                        .ok_or_else(|| format!("{name}: expected a whole number of days, got {value}"))?;
                }
                "dataset" => request.dataset = text(name, value)?.parse().map_err(|e| format!("{name}: {e}"))?,
                "older_than_days" => {
                    return Err(format!(
                        "unknown field {name:?} (known: {COMPACT_FIELDS}); for whole days, \"older_than\": \"1d\""
                    ));
                }
                other => return Err(format!("unknown field {other:?} (known: {COMPACT_FIELDS})")),
            }
        }
        Ok(request)
    }

    fn datasets(&self) -> Vec<Dataset> {
        match self.dataset {
            DatasetChoice::Events => vec![Dataset::Events],
            DatasetChoice::Insights => vec![Dataset::Insights],
            DatasetChoice::Digests => vec![Dataset::Digests],
            DatasetChoice::All => vec![Dataset::Events, Dataset::Insights, Dataset::Digests],
        }
    }
}

/// The command an event carries, if it is one (`None`: a notification, for `parse_trigger`).
pub fn parse_command(event: &Value) -> Option<Result<Command, String>> {
    let object = event.as_object()?;
    let name = object.get("parquetrail")?;
    Some(match name.as_str() {
        Some("compact") => CompactRequest::parse(object).map(Command::Compact),
        Some("insights") => InsightsRequest::parse(object).map(Command::Insights),
        _ => Err(format!("\"parquetrail\": unknown command {name} (known: \"compact\", \"insights\")")),
    })
}

/// Time kept back at the end of an invocation for the partitions in flight and the answer: a
/// quarter of the time the invocation had, at most this (so a 60 s function still compacts).
pub const SAFETY_MARGIN: Duration = Duration::from_secs(60);

fn safety_margin(time: Duration) -> Duration {
    (time / 4).min(SAFETY_MARGIN)
}

/// What a compaction run did: the invocation's response (the same totals `parquetrail compact
/// --json` prints; `not_started` partitions were left because the invocation ran short of time, and
/// the next run does them).
#[derive(Debug, Clone, Serialize)]
pub struct CompactionSummary {
    /// The archive compacted.
    pub destination: String,
    #[serde(flatten)]
    pub totals: Totals,
    /// Partitions that failed, with why; the others went on.
    pub failures: Vec<Failure>,
    pub seconds: f64,
}

/// A compaction run over the function's destination, partition by partition, until the work or
/// the time runs out. Every partition is compacted or left as it was, never half, so a run cut
/// short (here or by a timeout) loses nothing, and the next run carries on. A failed partition is
/// reported in the response, not as an invocation error: an error would make the schedule retry
/// the whole run; only failing to list the partitions at all is one.
async fn compact(app: &App, request: &CompactRequest, deadline: Option<SystemTime>) -> Result<Value, RetryableFailure> {
    let started = Instant::now();
    let time_left = |deadline: SystemTime| deadline.duration_since(SystemTime::now()).unwrap_or_default();
    let margin = deadline.map(|d| safety_margin(time_left(d)));
    let config = &app.config;
    let settings = Settings {
        options: CompactOptions {
            target_bytes: config.compaction.target_bytes,
            memory_budget: config.compaction.memory_budget,
            settings: config.options.writer.clone(),
        },
        grace: request.grace,
        concurrency: config.compaction.concurrency,
        dry_run: false,
    };
    let (storage, root) = app.pipeline.destination();
    let compactor = Compactor::new(storage.clone(), root, config.options.layout.clone(), settings);
    let today = Utc::now().date_naive();
    let scope = Scope {
        datasets: request.datasets(),
        older_than: Some(request.older_than),
        since: Some(today.checked_sub_days(Days::new(request.lookback_days.into())).unwrap_or(NaiveDate::MIN)),
        partitions: Vec::new(),
    };
    let partitions = compactor.partitions(&scope).await.map_err(|e| {
        tracing::error!(destination = %config.destination, error = %e, "compaction: listing partitions failed");
        RetryableFailure(format!("compaction: listing the partitions of {}: {e}", config.destination))
    })?;
    let go_on = || match (deadline, margin) {
        (Some(deadline), Some(margin)) => time_left(deadline) > margin,
        _ => true,
    };
    let report = compactor.schedule(partitions, Control::default().go_on_while(go_on)).await;
    for f in &report.failures {
        tracing::error!(partition = %f.partition, error = %f.error, "partition not compacted");
    }
    let summary = CompactionSummary {
        destination: config.destination.to_string(),
        totals: report.totals(),
        failures: report.failures,
        seconds: started.elapsed().as_secs_f64(),
    };
    if summary.totals.not_started > 0 {
        tracing::warn!(not_started = summary.totals.not_started, "compaction: out of time; the next run carries on");
    }
    tracing::info!(
        destination = %summary.destination,
        partitions = summary.totals.partitions,
        compacted = summary.totals.compacted,
        already_compact = summary.totals.already_compact,
        failed = summary.totals.failed,
        not_started = summary.totals.not_started,
        deleted = summary.totals.deleted,
        duplicates_removed = summary.totals.duplicates_removed,
        "compaction run"
    );
    Ok(serde_json::to_value(&summary).expect("summaries serialize"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_are_told_from_notifications() {
        let hour = Duration::from_secs(3600);
        let ok = [
            (json!({"parquetrail": "compact"}), CompactRequest::default()),
            (
                json!({"parquetrail": "compact", "older_than": "0s", "grace": "30m", "lookback_days": 30, "dataset": "events"}),
                CompactRequest {
                    older_than: Duration::ZERO,
                    lookback_days: 30,
                    dataset: DatasetChoice::Events,
                    grace: hour / 2,
                },
            ),
        ];
        for (event, want) in ok {
            assert_eq!(parse_command(&event), Some(Ok(Command::Compact(want))), "{event}");
        }
        let insights = [
            (json!({"parquetrail": "insights"}), InsightsRequest::default()),
            (json!({"parquetrail": "insights", "since": "2h"}), InsightsRequest { since: 2 * hour }),
        ];
        for (event, want) in insights {
            assert_eq!(parse_command(&event), Some(Ok(Command::Insights(want))), "{event}");
        }
        let bad = [
            (json!({"parquetrail": "explode"}), "unknown command"),
            (json!({"parquetrail": 1}), "unknown command"),
            (
                json!({"parquetrail": "compact", "older_than_days": 1}),
                "(known: parquetrail, older_than, lookback_days, dataset, grace); for whole days, \"older_than\": \"1d\"",
            ),
            (json!({"parquetrail": "compact", "older_than": "soon"}), "older_than: expected a duration"),
            (json!({"parquetrail": "compact", "older_than": 3600}), "older_than: expected a string"),
            (json!({"parquetrail": "compact", "lookback_days": -1}), "lookback_days: expected a whole number"),
            (json!({"parquetrail": "compact", "dataset": "logs"}), "dataset: \"logs\" is not"),
            (json!({"parquetrail": "insights", "since": 3600}), "since: expected a string"),
            (json!({"parquetrail": "insights", "since": "0s"}), "since: must be longer than 0s"),
            (json!({"parquetrail": "insights", "until": "now"}), "unknown field \"until\" (known: parquetrail, since)"),
        ];
        for (event, needle) in bad {
            let e = parse_command(&event).unwrap().unwrap_err();
            assert!(e.contains(needle), "{event}: {e}");
        }
        // Notifications are not commands, whatever else they hold.
        for event in [
            json!({"Records": []}),
            json!({"source": "aws.s3", "detail-type": "Object Created", "detail": {"parquetrail": "compact"}}),
            json!("parquetrail"),
        ] {
            assert_eq!(parse_command(&event), None, "{event}");
        }
    }

    #[test]
    fn the_margin_keeps_a_quarter_of_the_time_at_most_a_minute() {
        let s = Duration::from_secs;
        for (time, margin) in [(s(900), s(60)), (s(300), s(60)), (s(120), s(30)), (s(60), s(15)), (s(0), s(0))] {
            assert_eq!(safety_margin(time), margin, "{time:?}");
        }
    }
}
