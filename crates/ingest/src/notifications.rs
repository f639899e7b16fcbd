//! Every payload that can invoke the parquetrail Lambda, reduced to the S3 objects it announces.
//!
//! # Why one parser for many shapes
//!
//! A new CloudTrail log file can reach the function along many routes: an S3 event notification invoked
//! directly, through SNS, through SQS (raw, or wrapped in an SNS envelope, or with SNS raw delivery), an
//! EventBridge rule (directly or via an SQS target), CloudTrail's own SNS notice (`{"s3Bucket","s3ObjectKey"}`),
//! and S3 Batch Operations for backfills. Which one arrives depends on how a deployment was wired, not on this
//! code, and confusing the shapes is the most common way such pipelines break. So the event is inspected as a
//! [`serde_json::Value`] and told apart by its distinguishing fields, and an unrecognised payload produces an
//! error naming its top-level keys rather than a bare "missing field".
//!
//! The typed structs of the Lambda events crates are not used: they require fields (event time, principal,
//! request parameters) that `s3:TestEvent` and CloudTrail's notices lack, so one unusual message would fail a
//! whole batch.
//!
//! # Why keys are form-decoded
//!
//! S3 event notifications write the object key `application/x-www-form-urlencoded`: `red flower.jpg` arrives
//! as `red+flower.jpg` and a literal `+` as `%2B` (documented, and relied upon by existing consumers). GETting the key
//! as written fails with `NoSuchKey` for any key holding a space, `+`, `=`, `:` or a non-ASCII character, so
//! those keys are decoded ([`decode_form_key`]) and the decoded key is the only one.
//!
//! CloudTrail's own SNS notice writes plain keys: decoding them would turn a literal `+` into a space, so they
//! are used as written.
//!
//! EventBridge's `detail.object.key` and the `s3Key` of S3 Batch Operations schema 2.0 are not documented either
//! way. Decoding them first would turn a plain `a+b` into `a b` and, when an object `a b` happens to exist, convert
//! that one and report success while `a+b` never is. So the key is used as given ([`ObjectRef::key`]) and its
//! form-decoded reading is kept in [`ObjectRef::raw_key`], tried only when the key as given is not found: a
//! different object that exists is never converted in its place. Batch schema 1.0 `s3Key` (URL-encoded, as AWS's
//! examples for it decode it) is decoded first, with the key as written as the fallback. A key that does not
//! decode to UTF-8 cannot have been encoded by AWS and has no second reading.
//!
//! # Why SQS messages fail one by one
//!
//! With `ReportBatchItemFailures`, the function reports the `messageId`s that failed and SQS redelivers only
//! those; so each message carries its own result ([`SqsMessage::objects`]) and one malformed body does not send
//! the other messages round again. A message without an ID cannot be reported (Lambda treats an empty or unknown
//! identifier as a failure of the whole batch), so it makes the whole event invalid instead.

use std::borrow::Cow;
use std::collections::BTreeMap;

use percent_encoding::percent_decode_str;
use serde_json::{Map, Value};

/// How many SNS envelopes may be nested around a notification before the payload is rejected; real routes
/// (S3 → SNS → SQS, EventBridge → SNS → SQS) use one.
const MAX_NESTING: usize = 4;

/// How many top-level keys an [`NotificationError::UnknownShape`] lists.
const MAX_KEYS_SHOWN: usize = 10;

/// How many characters of one key name an [`NotificationError::UnknownShape`] shows.
const MAX_KEY_CHARS: usize = 40;

/// An object some notification announced.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ObjectRef {
    /// The bucket name (never an ARN).
    pub bucket: String,
    /// The key to GET first: decoded where the notification documents its encoding (S3 event notifications,
    /// Batch schema 1.0), as given where it does not (EventBridge, Batch schema 2.0).
    pub key: String,
    /// The other reading of an ambiguously encoded key, when it differs from `key`: the caller GETs it only when
    /// `key` is not found (NoSuchKey), never instead of an object that exists. The form-decoded key for EventBridge
    /// and Batch schema 2.0; the key as written for Batch schema 1.0. None for S3 event notifications (always
    /// form-encoded, documented) and CloudTrail SNS notices (plain keys).
    pub raw_key: Option<String>,
    /// The object version, when the bucket is versioned and the notification names it.
    pub version_id: Option<String>,
    /// The object size in bytes, when the notification gives it.
    pub size: Option<u64>,
    /// The object's ETag as the notification wrote it (S3 notifications write it without quotes).
    pub etag: Option<String>,
}

/// Which kind of notification announced a [`Trigger::Objects`] list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum TriggerSource {
    /// An S3 event notification (`{"Records":[{"eventSource":"aws:s3",…}]}`) invoking the function directly.
    S3,
    /// An SNS subscription (`{"Records":[{"EventSource":"aws:sns",…}]}`), whatever its messages hold.
    Sns,
    /// An EventBridge rule targeting the function.
    EventBridge,
    /// CloudTrail's own SNS notice (`{"s3Bucket","s3ObjectKey":[…]}`) passed to the function as the event.
    CloudTrailSns,
}

/// What one Lambda invocation asks for.
#[derive(Debug, Clone, PartialEq)]
pub enum Trigger {
    /// Objects announced by an S3 event notification invoked directly, SNS→Lambda, an EventBridge event, or a
    /// CloudTrail SNS notice invoked directly. Non-creation S3 events (ObjectRemoved…) are left out.
    Objects {
        /// The route the notification took.
        source: TriggerSource,
        /// The announced objects, in notification order; possibly empty.
        objects: Vec<ObjectRef>,
    },
    /// `s3:TestEvent` (sent when a notification is configured): acknowledged, nothing to do.
    TestEvent,
    /// An SQS batch: one entry per message, in order.
    Sqs(Vec<SqsMessage>),
    /// An S3 Batch Operations invocation.
    Batch(BatchInvocation),
}

/// One message of an SQS batch.
#[derive(Debug, Clone, PartialEq)]
pub struct SqsMessage {
    /// The SQS message ID: what a partial batch response reports as `itemIdentifier`.
    pub message_id: String,
    /// The objects its body announces: `Ok(vec![])` for a test event or a non-creation event, `Err` for a body
    /// this module cannot read (report the message as failed; the other messages are unaffected).
    pub objects: Result<Vec<ObjectRef>, NotificationError>,
}

/// An S3 Batch Operations invocation (schema `1.0` or `2.0`).
#[derive(Debug, Clone, PartialEq)]
pub struct BatchInvocation {
    /// `invocationSchemaVersion`, echoed in the response.
    pub schema_version: String,
    /// `invocationId`, echoed in the response.
    pub invocation_id: String,
    /// `job.id`.
    pub job_id: String,
    /// `job.userArguments` (schema `2.0`); empty when absent.
    pub user_arguments: BTreeMap<String, String>,
    /// The tasks, in order (S3 currently sends exactly one per invocation).
    pub tasks: Vec<BatchTask>,
}

/// One task of an S3 Batch Operations invocation.
#[derive(Debug, Clone, PartialEq)]
pub struct BatchTask {
    /// `taskId`, echoed in the task's result.
    pub task_id: String,
    /// The object to process, or why the task cannot name one (report it as a permanent failure).
    pub object: Result<ObjectRef, NotificationError>,
}

/// The outcome of one S3 Batch Operations task.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum ResultCode {
    /// The task completed.
    Succeeded,
    /// The task failed but may succeed if retried; S3 retries it.
    TemporaryFailure,
    /// The task failed and retrying will not help.
    PermanentFailure,
}

/// The result of one S3 Batch Operations task, as S3 expects it in the response.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct BatchResult {
    /// The task's `taskId`.
    pub task_id: String,
    /// The outcome.
    pub result_code: ResultCode,
    /// A short human-readable note, written to the job's completion report.
    pub result_string: String,
}

/// The response S3 Batch Operations expects: {"invocationSchemaVersion", "treatMissingKeysAs":"PermanentFailure",
/// "invocationId", "results":[{"taskId","resultCode","resultString"}]}
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct BatchResponse {
    /// The invocation's schema version, echoed.
    pub invocation_schema_version: String,
    /// How S3 counts a task the response leaves out.
    pub treat_missing_keys_as: ResultCode,
    /// The invocation's ID, echoed.
    pub invocation_id: String,
    /// One result per task.
    pub results: Vec<BatchResult>,
}

impl BatchResponse {
    /// The response to `invocation`: its schema version and ID echoed, tasks missing from `results` counted as
    /// permanent failures.
    pub fn new(invocation: &BatchInvocation, results: Vec<BatchResult>) -> Self {
        Self {
            invocation_schema_version: invocation.schema_version.clone(),
            treat_missing_keys_as: ResultCode::PermanentFailure,
            invocation_id: invocation.invocation_id.clone(),
            results,
        }
    }
}

/// Why a notification could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NotificationError {
    /// The text (an SQS body or an SNS `Message`) is not JSON.
    #[error("not JSON: {0}")]
    NotJson(String),
    /// JSON of no shape this module knows; holds the sorted top-level keys (at most ten).
    #[error("unrecognised notification shape (top-level keys: {0})")]
    UnknownShape(String),
    /// A known shape with a missing or ill-typed field; holds where and what.
    #[error("invalid notification: {0}")]
    Invalid(String),
}

impl NotificationError {
    /// Prefixes the message with where in the payload the problem was found (not for `UnknownShape`, whose
    /// message is a key list).
    fn at(self, place: &str) -> Self {
        match self {
            Self::NotJson(m) => Self::NotJson(format!("{place}: {m}")),
            Self::Invalid(m) => Self::Invalid(format!("{place}: {m}")),
            unknown @ Self::UnknownShape(_) => unknown,
        }
    }
}

/// Tells the shape apart and extracts what it announces.
pub fn parse_trigger(event: &Value) -> Result<Trigger, NotificationError> {
    let obj = as_object(event, "the event")?;
    match shape(obj)? {
        Shape::Records(records) => parse_records_trigger(records),
        Shape::TestEvent => Ok(Trigger::TestEvent),
        Shape::Batch => parse_batch(obj).map(Trigger::Batch),
        Shape::CloudTrailNotice => {
            Ok(Trigger::Objects { source: TriggerSource::CloudTrailSns, objects: cloudtrail_notice_objects(obj)? })
        }
        Shape::EventBridge => {
            Ok(Trigger::Objects { source: TriggerSource::EventBridge, objects: eventbridge_objects(obj)? })
        }
        // An SNS envelope is not what SNS hands Lambda (it wraps it in `Records`), but it is what a message
        // copied from a queue looks like, so accept it as one SNS notification.
        Shape::SnsEnvelope => {
            Ok(Trigger::Objects { source: TriggerSource::Sns, objects: sns_envelope_objects(obj, 1)? })
        }
        Shape::Unknown => Err(unknown_shape(obj)),
    }
}

/// One SQS message body (or an SNS `Message`): an S3 event, an SNS envelope around anything here (recursively,
/// at most a few levels), a raw-delivery SNS message (= the S3 event itself), CloudTrail's own SNS notice
/// {"s3Bucket":…,"s3ObjectKey":[…]} (several keys), an EventBridge event (SQS target of a rule), or a test event
/// (Ok(empty)).
pub fn parse_message_body(body: &str) -> Result<Vec<ObjectRef>, NotificationError> {
    parse_body_at(body, 0)
}

/// Decodes an application/x-www-form-urlencoded key: '+' is a space, %XX a byte; the result must be UTF-8 (else
/// Invalid).
///
/// A `%` not followed by two hex digits is kept literally (as Python's `unquote_plus` does), since S3 always
/// escapes `%` itself as `%25`.
pub fn decode_form_key(key: &str) -> Result<String, NotificationError> {
    // '+' first: a literal '+' arrives as "%2B", which must survive as '+'.
    let spaced = key.replace('+', " ");
    percent_decode_str(&spaced)
        .decode_utf8()
        .map(Cow::into_owned)
        .map_err(|_| NotificationError::Invalid(format!("key {key:?} is not UTF-8 once percent-decoded")))
}

/// The shapes told apart by their distinguishing top-level fields.
enum Shape<'a> {
    /// `{"Records":[…]}`: S3 event, SQS batch or SNS delivery, told apart by each record's event source.
    Records(&'a [Value]),
    /// `{"Event":"s3:TestEvent",…}`.
    TestEvent,
    /// `{"invocationSchemaVersion",…}`: S3 Batch Operations.
    Batch,
    /// `{"s3Bucket","s3ObjectKey"}`: CloudTrail's own SNS notice.
    CloudTrailNotice,
    /// `{"detail-type","source","detail",…}`: an EventBridge event.
    EventBridge,
    /// `{"Type":"Notification","Message",…}`: an SNS envelope (as SNS delivers to SQS without raw delivery).
    SnsEnvelope,
    /// None of the above.
    Unknown,
}

/// Classifies a top-level object.
fn shape(obj: &Map<String, Value>) -> Result<Shape<'_>, NotificationError> {
    if let Some(records) = obj.get("Records") {
        let records = records
            .as_array()
            .ok_or_else(|| NotificationError::Invalid(format!("Records is {}, not an array", kind(records))))?;
        if records.is_empty() {
            return Err(NotificationError::Invalid("Records is empty".into()));
        }
        return Ok(Shape::Records(records));
    }
    let has = |k: &str| obj.contains_key(k);
    Ok(if obj.get("Event").and_then(Value::as_str) == Some("s3:TestEvent") {
        Shape::TestEvent
    } else if has("invocationSchemaVersion") {
        Shape::Batch
    } else if has("s3Bucket") && has("s3ObjectKey") {
        Shape::CloudTrailNotice
    } else if has("detail-type") && has("source") && has("detail") {
        Shape::EventBridge
    } else if obj.get("Type").and_then(Value::as_str) == Some("Notification") && has("Message") {
        Shape::SnsEnvelope
    } else {
        Shape::Unknown
    })
}

/// The event source a Lambda `Records` entry names (`eventSource` for S3 and SQS, `EventSource` for SNS).
fn record_source(record: &Value) -> Option<&str> {
    record.get("eventSource").or_else(|| record.get("EventSource")).and_then(Value::as_str)
}

/// A top-level `{"Records":[…]}`: an S3 notification, an SQS batch or an SNS delivery.
fn parse_records_trigger(records: &[Value]) -> Result<Trigger, NotificationError> {
    let first = record_source(&records[0])
        .ok_or_else(|| NotificationError::Invalid("Records[0] has no eventSource or EventSource".into()))?;
    for (i, record) in records.iter().enumerate().skip(1) {
        let source = record_source(record);
        if source != Some(first) {
            return Err(NotificationError::Invalid(format!(
                "Records[{i}] has event source {source:?}, unlike Records[0] ({first:?})"
            )));
        }
    }
    match first {
        "aws:s3" => Ok(Trigger::Objects { source: TriggerSource::S3, objects: s3_records_objects(records)? }),
        "aws:sqs" => {
            records.iter().enumerate().map(|(i, r)| sqs_message(r, i)).collect::<Result<_, _>>().map(Trigger::Sqs)
        }
        "aws:sns" => {
            let mut objects = Vec::new();
            for (i, record) in records.iter().enumerate() {
                objects.extend(sns_record_objects(record).map_err(|e| e.at(&format!("Records[{i}]")))?);
            }
            Ok(Trigger::Objects { source: TriggerSource::Sns, objects })
        }
        other => Err(NotificationError::Invalid(format!(
            "Records[0] has event source {other:?}, not aws:s3, aws:sqs or aws:sns (a CloudTrail log file itself?)"
        ))),
    }
}

/// One SQS record: its message ID (required) and the result of parsing its body.
fn sqs_message(record: &Value, i: usize) -> Result<SqsMessage, NotificationError> {
    let place = format!("Records[{i}]");
    let record = as_object(record, &place)?;
    let message_id = required_str(record, "messageId").map_err(|e| e.at(&place))?.to_owned();
    let objects = match record.get("body") {
        Some(Value::String(body)) => parse_message_body(body).map_err(|e| e.at("body")),
        Some(other) => Err(NotificationError::Invalid(format!("body is {}, not a string", kind(other)))),
        None => Err(NotificationError::Invalid("no body".into())),
    };
    Ok(SqsMessage { message_id, objects })
}

/// One SNS→Lambda record: the objects its `Sns.Message` announces.
fn sns_record_objects(record: &Value) -> Result<Vec<ObjectRef>, NotificationError> {
    let record = as_object(record, "the record")?;
    let sns = required_object(record, "Sns")?;
    let message = required_string_field(sns, "Message").map_err(|e| e.at("Sns"))?;
    parse_body_at(message, 1).map_err(|e| e.at("Sns.Message"))
}

/// Parses a body or message text found `depth` wrappings deep.
fn parse_body_at(body: &str, depth: usize) -> Result<Vec<ObjectRef>, NotificationError> {
    let value: Value = serde_json::from_str(body).map_err(|e| NotificationError::NotJson(e.to_string()))?;
    let obj = as_object(&value, "the message")?;
    match shape(obj)? {
        Shape::Records(records) => s3_records_objects(records),
        Shape::TestEvent => Ok(Vec::new()),
        Shape::CloudTrailNotice => cloudtrail_notice_objects(obj),
        Shape::EventBridge => eventbridge_objects(obj),
        Shape::SnsEnvelope => sns_envelope_objects(obj, depth + 1),
        Shape::Batch => Err(NotificationError::Invalid(
            "an S3 Batch Operations invocation cannot arrive inside a message; invoke the function with it".into(),
        )),
        Shape::Unknown => Err(unknown_shape(obj)),
    }
}

/// An SNS envelope: the objects its `Message` announces, `depth` wrappings deep.
fn sns_envelope_objects(obj: &Map<String, Value>, depth: usize) -> Result<Vec<ObjectRef>, NotificationError> {
    if depth > MAX_NESTING {
        return Err(NotificationError::Invalid(format!("more than {MAX_NESTING} nested SNS envelopes")));
    }
    let message = required_string_field(obj, "Message")?;
    parse_body_at(message, depth).map_err(|e| e.at("Message"))
}

/// The creation events among S3 notification records (`eventSource` must be `aws:s3` throughout).
fn s3_records_objects(records: &[Value]) -> Result<Vec<ObjectRef>, NotificationError> {
    let mut objects = Vec::new();
    for (i, record) in records.iter().enumerate() {
        let place = format!("Records[{i}]");
        if let Some(object) = s3_record_object(record).map_err(|e| e.at(&place))? {
            objects.push(object);
        }
    }
    Ok(objects)
}

/// One S3 notification record: `Some` for an `ObjectCreated:*` event, `None` for any other event name.
fn s3_record_object(record: &Value) -> Result<Option<ObjectRef>, NotificationError> {
    let record = as_object(record, "the record")?;
    let source = required_str(record, "eventSource")?;
    if source != "aws:s3" {
        return Err(NotificationError::Invalid(format!("eventSource is {source:?}, not \"aws:s3\"")));
    }
    let event_name = required_str(record, "eventName")?;
    if !event_name.strip_prefix("s3:").unwrap_or(event_name).starts_with("ObjectCreated") {
        return Ok(None);
    }
    let s3 = required_object(record, "s3")?;
    let bucket =
        required_str(required_object(s3, "bucket").map_err(|e| e.at("s3"))?, "name").map_err(|e| e.at("s3.bucket"))?;
    let object = required_object(s3, "object").map_err(|e| e.at("s3"))?;
    let read = || -> Result<ObjectRef, NotificationError> {
        Ok(ObjectRef {
            bucket: bucket.to_owned(),
            key: decode_form_key(required_str(object, "key")?)?,
            raw_key: None,
            version_id: optional_str(object, "versionId")?,
            size: optional_u64(object, "size")?,
            etag: optional_str(object, "eTag")?,
        })
    };
    read().map(Some).map_err(|e| e.at("s3.object"))
}

/// CloudTrail's own SNS notice: one object per `s3ObjectKey` entry, keys as written.
fn cloudtrail_notice_objects(obj: &Map<String, Value>) -> Result<Vec<ObjectRef>, NotificationError> {
    let bucket = required_str(obj, "s3Bucket")?;
    let keys = match obj.get("s3ObjectKey") {
        Some(Value::Array(keys)) => keys.as_slice(),
        // Always an array in practice; a lone string is read as a list of one.
        Some(single @ Value::String(_)) => std::slice::from_ref(single),
        Some(other) => return Err(NotificationError::Invalid(format!("s3ObjectKey is {}, not an array", kind(other)))),
        None => return Err(NotificationError::Invalid("no s3ObjectKey".into())),
    };
    keys.iter()
        .enumerate()
        .map(|(i, key)| match key {
            Value::String(key) if !key.is_empty() => Ok(plain_object(bucket, key)),
            other => Err(NotificationError::Invalid(format!("s3ObjectKey[{i}] is {}, not a key", kind(other)))),
        })
        .collect()
}

/// An object named by a plain (not encoded) key, with nothing else known.
fn plain_object(bucket: &str, key: &str) -> ObjectRef {
    ObjectRef {
        bucket: bucket.to_owned(),
        key: key.to_owned(),
        raw_key: None,
        version_id: None,
        size: None,
        etag: None,
    }
}

/// An EventBridge event: the object of an S3 `Object Created` event; nothing for any other event.
fn eventbridge_objects(obj: &Map<String, Value>) -> Result<Vec<ObjectRef>, NotificationError> {
    let source = required_str(obj, "source")?;
    let detail_type = required_str(obj, "detail-type")?;
    if source != "aws.s3" || detail_type != "Object Created" {
        return Ok(Vec::new());
    }
    let detail = required_object(obj, "detail")?;
    let bucket = required_str(required_object(detail, "bucket").map_err(|e| e.at("detail"))?, "name")
        .map_err(|e| e.at("detail.bucket"))?;
    let object = required_object(detail, "object").map_err(|e| e.at("detail"))?;
    let read = || -> Result<ObjectRef, NotificationError> {
        let (key, raw_key) = as_given_then_decoded(required_str(object, "key")?);
        Ok(ObjectRef {
            bucket: bucket.to_owned(),
            key,
            raw_key,
            version_id: optional_str(object, "version-id")?,
            size: optional_u64(object, "size")?,
            etag: optional_str(object, "etag")?,
        })
    };
    read().map(|o| vec![o]).map_err(|e| e.at("detail.object"))
}

/// A key that is probably form-encoded: (decoded key, the original when it differs). A key that does not decode to
/// UTF-8 cannot have been encoded by AWS, so it is used as written.
pub(crate) fn decode_maybe_encoded(raw: &str) -> (String, Option<String>) {
    match decode_form_key(raw) {
        Ok(decoded) if decoded != raw => (decoded, Some(raw.to_owned())),
        _ => (raw.to_owned(), None),
    }
}

/// A key whose encoding is not documented: (the key as given, its form-decoded reading when that differs).
pub(crate) fn as_given_then_decoded(raw: &str) -> (String, Option<String>) {
    match decode_maybe_encoded(raw) {
        (decoded, Some(raw)) => (raw, Some(decoded)),
        (raw, None) => (raw, None),
    }
}

/// An S3 Batch Operations invocation (schema `1.0` or `2.0`).
fn parse_batch(obj: &Map<String, Value>) -> Result<BatchInvocation, NotificationError> {
    let schema_version = required_str(obj, "invocationSchemaVersion")?;
    if !matches!(schema_version, "1.0" | "2.0") {
        return Err(NotificationError::Invalid(format!(
            "S3 Batch Operations invocationSchemaVersion {schema_version:?} is not supported (only 1.0 and 2.0)"
        )));
    }
    let invocation_id = required_str(obj, "invocationId")?;
    let job = required_object(obj, "job")?;
    let job_id = required_str(job, "id").map_err(|e| e.at("job"))?;
    let mut user_arguments = BTreeMap::new();
    match job.get("userArguments") {
        None | Some(Value::Null) => {}
        Some(Value::Object(args)) => {
            for (name, value) in args {
                let Value::String(value) = value else {
                    return Err(NotificationError::Invalid(format!(
                        "job.userArguments.{name} is {}, not a string",
                        kind(value)
                    )));
                };
                user_arguments.insert(name.clone(), value.clone());
            }
        }
        Some(other) => {
            return Err(NotificationError::Invalid(format!("job.userArguments is {}, not an object", kind(other))));
        }
    }
    let tasks = match obj.get("tasks") {
        Some(Value::Array(tasks)) => tasks,
        Some(other) => return Err(NotificationError::Invalid(format!("tasks is {}, not an array", kind(other)))),
        None => return Err(NotificationError::Invalid("no tasks".into())),
    };
    let tasks = tasks
        .iter()
        .enumerate()
        .map(|(i, task)| {
            let place = format!("tasks[{i}]");
            let task = as_object(task, &place)?;
            // Without a task ID no result can be reported for the task, so the invocation is unusable.
            let task_id = required_str(task, "taskId").map_err(|e| e.at(&place))?.to_owned();
            let object = batch_task_object(task, schema_version).map_err(|e| e.at(&place));
            Ok(BatchTask { task_id, object })
        })
        .collect::<Result<_, NotificationError>>()?;
    Ok(BatchInvocation {
        schema_version: schema_version.to_owned(),
        invocation_id: invocation_id.to_owned(),
        job_id: job_id.to_owned(),
        user_arguments,
        tasks,
    })
}

/// The object of one Batch Operations task: bucket from `s3Bucket` (2.0) or `s3BucketArn` (1.0); the key decoded
/// first in schema 1.0, as given first in 2.0 (see the module's documentation).
fn batch_task_object(task: &Map<String, Value>, schema_version: &str) -> Result<ObjectRef, NotificationError> {
    let bucket = match (optional_str(task, "s3Bucket")?, optional_str(task, "s3BucketArn")?) {
        (Some(bucket), _) => bucket,
        (None, Some(arn)) => bucket_from_arn(&arn)
            .ok_or_else(|| NotificationError::Invalid(format!("s3BucketArn {arn:?} is not an S3 bucket ARN")))?
            .to_owned(),
        (None, None) => return Err(NotificationError::Invalid("neither s3Bucket nor s3BucketArn".into())),
    };
    let s3_key = required_str(task, "s3Key")?;
    let (key, raw_key) =
        if schema_version == "1.0" { decode_maybe_encoded(s3_key) } else { as_given_then_decoded(s3_key) };
    Ok(ObjectRef { bucket, key, raw_key, version_id: optional_str(task, "s3VersionId")?, size: None, etag: None })
}

/// The bucket name of an S3 bucket ARN (`arn:<partition>:s3:::<bucket>`), in any partition.
fn bucket_from_arn(arn: &str) -> Option<&str> {
    let mut parts = arn.splitn(6, ':');
    let (prefix, _partition, service, _region, _account, resource) =
        (parts.next()?, parts.next()?, parts.next()?, parts.next()?, parts.next()?, parts.next()?);
    (prefix == "arn" && service == "s3" && !resource.is_empty() && !resource.contains('/')).then_some(resource)
}

/// `value` as an object, or Invalid naming `what`.
fn as_object<'a>(value: &'a Value, what: &str) -> Result<&'a Map<String, Value>, NotificationError> {
    value.as_object().ok_or_else(|| NotificationError::Invalid(format!("{what} is {}, not a JSON object", kind(value))))
}

/// A required object-valued field.
fn required_object<'a>(obj: &'a Map<String, Value>, field: &str) -> Result<&'a Map<String, Value>, NotificationError> {
    match obj.get(field) {
        Some(Value::Object(inner)) => Ok(inner),
        Some(other) => Err(NotificationError::Invalid(format!("{field} is {}, not an object", kind(other)))),
        None => Err(NotificationError::Invalid(format!("no {field}"))),
    }
}

/// A required string field, possibly empty (used for message texts).
fn required_string_field<'a>(obj: &'a Map<String, Value>, field: &str) -> Result<&'a str, NotificationError> {
    match obj.get(field) {
        Some(Value::String(s)) => Ok(s),
        Some(other) => Err(NotificationError::Invalid(format!("{field} is {}, not a string", kind(other)))),
        None => Err(NotificationError::Invalid(format!("no {field}"))),
    }
}

/// A required, non-empty string field.
fn required_str<'a>(obj: &'a Map<String, Value>, field: &str) -> Result<&'a str, NotificationError> {
    match required_string_field(obj, field)? {
        "" => Err(NotificationError::Invalid(format!("{field} is empty"))),
        s => Ok(s),
    }
}

/// An optional string field: absent, null and empty all mean None.
fn optional_str(obj: &Map<String, Value>, field: &str) -> Result<Option<String>, NotificationError> {
    match obj.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.is_empty() => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(other) => Err(NotificationError::Invalid(format!("{field} is {}, not a string", kind(other)))),
    }
}

/// An optional non-negative integer field: absent and null mean None.
fn optional_u64(obj: &Map<String, Value>, field: &str) -> Result<Option<u64>, NotificationError> {
    match obj.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(value) => value.as_u64().map(Some).ok_or_else(|| {
            NotificationError::Invalid(format!("{field} is {}, not a non-negative integer", kind(value)))
        }),
    }
}

/// The JSON type of `value`, for messages.
fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// UnknownShape listing the sorted top-level keys (at most ten, each shortened).
fn unknown_shape(obj: &Map<String, Value>) -> NotificationError {
    let mut keys: Vec<&str> = obj.keys().map(String::as_str).collect();
    keys.sort_unstable();
    if keys.is_empty() {
        return NotificationError::UnknownShape("none".into());
    }
    let mut listed: Vec<String> = keys
        .iter()
        .take(MAX_KEYS_SHOWN)
        .map(|k| match k.char_indices().nth(MAX_KEY_CHARS) {
            Some((cut, _)) => format!("{}…", &k[..cut]),
            None => (*k).to_owned(),
        })
        .collect();
    if keys.len() > MAX_KEYS_SHOWN {
        listed.push(format!("… {} more", keys.len() - MAX_KEYS_SHOWN));
    }
    NotificationError::UnknownShape(listed.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const BUCKET: &str = "example-trail-bucket";
    const KEY: &str = "AWSLogs/o-exampleorg1/111122223333/CloudTrail/us-east-1/2024/03/01/\
                       111122223333_CloudTrail_us-east-1_20240301T0005Z_AbCdEfGhIjKlMnOp.json.gz";
    const KEY2: &str = "AWSLogs/o-exampleorg1/111122223333/CloudTrail/us-east-1/2024/03/01/\
                        111122223333_CloudTrail_us-east-1_20240301T0010Z_QrStUvWxYz012345.json.gz";

    /// An object with only bucket and key known.
    fn obj(bucket: &str, key: &str) -> ObjectRef {
        plain_object(bucket, key)
    }

    /// An object whose key has a second reading (`raw_key`), tried only when `key` is not found.
    fn obj_raw(bucket: &str, key: &str, raw: &str) -> ObjectRef {
        ObjectRef { raw_key: Some(raw.to_owned()), ..obj(bucket, key) }
    }

    /// A minimal S3 notification record.
    fn s3_record(event_name: &str, key: &str) -> Value {
        json!({
            "eventVersion": "2.1", "eventSource": "aws:s3", "awsRegion": "us-east-1",
            "eventTime": "2024-03-01T00:10:12.345Z", "eventName": event_name,
            "s3": {"s3SchemaVersion": "1.0", "bucket": {"name": BUCKET, "arn": "arn:aws:s3:::example-trail-bucket"},
                   "object": {"key": key, "sequencer": "0065E11D5A3C2B1A90"}}
        })
    }

    /// An S3 notification with one record per key, as JSON text.
    fn s3_event(keys: &[&str]) -> String {
        json!({"Records": keys.iter().map(|k| s3_record("ObjectCreated:Put", k)).collect::<Vec<_>>()}).to_string()
    }

    /// An SNS envelope (as delivered to SQS) around `message`.
    fn sns_envelope(message: &str) -> String {
        json!({"Type": "Notification", "MessageId": "95df01b4-ee98-5cb9-9903-4c221d41eb5e",
               "TopicArn": "arn:aws:sns:us-east-1:111122223333:t", "Message": message,
               "Timestamp": "2024-03-01T00:10:14.210Z", "SignatureVersion": "1", "Signature": "EXAMPLE"})
        .to_string()
    }

    /// An EventBridge S3 event.
    fn eventbridge(detail_type: &str, key: &str) -> Value {
        json!({"version": "0", "id": "17793124-05d4-b198-2fde-7ededc63b103", "detail-type": detail_type,
               "source": "aws.s3", "account": "111122223333", "time": "2024-03-01T00:10:12Z", "region": "us-east-1",
               "resources": ["arn:aws:s3:::example-trail-bucket"],
               "detail": {"version": "0", "bucket": {"name": BUCKET},
                          "object": {"key": key, "size": 4821, "etag": "5f2b", "version-id": "v1", "sequencer": "00"},
                          "reason": "PutObject"}})
    }

    /// An SQS event with one record per (message ID, body).
    fn sqs_event(messages: &[(&str, &str)]) -> Value {
        let records: Vec<Value> = messages
            .iter()
            .map(|(id, body)| {
                json!({"messageId": id, "receiptHandle": "AQEB", "body": body,
                       "attributes": {"ApproximateReceiveCount": "1"}, "messageAttributes": {},
                       "md5OfBody": "x", "eventSource": "aws:sqs",
                       "eventSourceARN": "arn:aws:sqs:us-east-1:111122223333:q", "awsRegion": "us-east-1"})
            })
            .collect();
        json!({ "Records": records })
    }

    #[test]
    fn decode_form_key_table() {
        let cases: &[(&str, Result<&str, ()>)] = &[
            ("red+flower.jpg", Ok("red flower.jpg")),
            ("a%2Bb", Ok("a+b")),
            ("%E2%9C%93+x", Ok("✓ x")),
            (KEY, Ok(KEY)),
            ("100%25", Ok("100%")),
            ("%ZZ", Ok("%ZZ")),
            ("50%", Ok("50%")),
            ("%2", Ok("%2")),
            ("%FF", Err(())),
            ("a%2Fb", Ok("a/b")),
            ("trail+prefix/AWSLogs/x%3Dy.json.gz", Ok("trail prefix/AWSLogs/x=y.json.gz")),
            ("", Ok("")),
        ];
        for (input, want) in cases {
            let got = decode_form_key(input);
            match want {
                Ok(want) => assert_eq!(got.as_deref(), Ok(*want), "input: {input:?}"),
                Err(()) => assert!(matches!(got, Err(NotificationError::Invalid(_))), "input: {input:?} got {got:?}"),
            }
        }
    }

    /// Which key each trigger shape GETs first and which only when that one is not found: decoded first where AWS
    /// documents the encoding (S3 notifications, Batch 1.0), as given first where it does not (EventBridge, Batch
    /// 2.0), never another reading for plain keys (CloudTrail's notice).
    #[test]
    fn key_readings_by_trigger_shape() {
        let batch = |version: &str, key: &str| {
            let task = if version == "1.0" {
                json!({"taskId": "t", "s3Key": key, "s3BucketArn": format!("arn:aws:s3:::{BUCKET}")})
            } else {
                json!({"taskId": "t", "s3Key": key, "s3Bucket": BUCKET})
            };
            json!({"invocationSchemaVersion": version, "invocationId": "i", "job": {"id": "j"}, "tasks": [task]})
        };
        let event_for = |shape: &str, k: &str| match shape {
            "s3" => serde_json::from_str(&s3_event(&[k])).unwrap(),
            "sqs s3" => sqs_event(&[("m", &s3_event(&[k]))]),
            "cloudtrail notice" => json!({"s3Bucket": BUCKET, "s3ObjectKey": [k]}),
            "eventbridge" => eventbridge("Object Created", k),
            "batch 1.0" => batch("1.0", k),
            "batch 2.0" => batch("2.0", k),
            other => panic!("no shape {other}"),
        };
        // (shape, key as written, key GET first, key GET only if the first is not found)
        let cases: &[(&str, &str, &str, Option<&str>)] = &[
            ("s3", "Amb+Plus+Key", "Amb Plus Key", None),
            ("s3", "Amb%2BPlus%2BKey", "Amb+Plus+Key", None),
            ("sqs s3", "Amb+Plus+Key", "Amb Plus Key", None),
            ("cloudtrail notice", "Amb+Plus+Key", "Amb+Plus+Key", None),
            ("cloudtrail notice", "Amb%2BKey", "Amb%2BKey", None),
            ("eventbridge", "Amb+Plus+Key", "Amb+Plus+Key", Some("Amb Plus Key")),
            ("eventbridge", "Amb Plus Key", "Amb Plus Key", None),
            ("eventbridge", "Amb%2BPlus%2BKey", "Amb%2BPlus%2BKey", Some("Amb+Plus+Key")),
            ("eventbridge", "plain/key.json.gz", "plain/key.json.gz", None),
            ("eventbridge", "bad%FF+x", "bad%FF+x", None),
            ("batch 1.0", "Amb+Plus+Key", "Amb Plus Key", Some("Amb+Plus+Key")),
            ("batch 1.0", "Amb%2BPlus%2BKey", "Amb+Plus+Key", Some("Amb%2BPlus%2BKey")),
            ("batch 1.0", "plain/key.json.gz", "plain/key.json.gz", None),
            ("batch 2.0", "Amb+Plus+Key", "Amb+Plus+Key", Some("Amb Plus Key")),
            ("batch 2.0", "Amb Plus Key", "Amb Plus Key", None),
            ("batch 2.0", "Amb%2BPlus%2BKey", "Amb%2BPlus%2BKey", Some("Amb+Plus+Key")),
            ("batch 2.0", "%E2%9C%93", "%E2%9C%93", Some("✓")),
            ("batch 2.0", "bad%FF+x", "bad%FF+x", None),
        ];
        for (shape, written, first, fallback) in cases {
            let event: Value = event_for(shape, written);
            let got = match parse_trigger(&event) {
                Ok(Trigger::Objects { objects, .. }) => objects,
                Ok(Trigger::Sqs(messages)) => messages.into_iter().flat_map(|m| m.objects.unwrap()).collect(),
                Ok(Trigger::Batch(b)) => b.tasks.into_iter().map(|t| t.object.unwrap()).collect(),
                other => panic!("{shape} {written:?}: unexpected {other:?}; input: {event}"),
            };
            let got: Vec<(&str, Option<&str>)> = got.iter().map(|o| (o.key.as_str(), o.raw_key.as_deref())).collect();
            assert_eq!(got, [(*first, *fallback)], "{shape}, key written {written:?}; input: {event}");
        }
    }

    #[test]
    fn message_bodies() {
        let ct_notice = json!({"s3Bucket": BUCKET, "s3ObjectKey": [KEY, KEY2, "a+b/c d.json.gz"]}).to_string();
        let test_event = json!({"Service": "Amazon S3", "Event": "s3:TestEvent", "Time": "2024-03-01T00:00:01.123Z",
                                "Bucket": BUCKET, "RequestId": "5582815E1AEA5ADF", "HostId": "8cLe"})
        .to_string();
        let removed =
            json!({"Records": [s3_record("ObjectRemoved:Delete", KEY), s3_record("s3:ObjectCreated:Copy", KEY2)]})
                .to_string();
        let full = json!({"Records": [{
            "eventVersion": "2.3", "eventSource": "aws:s3", "eventName": "ObjectCreated:CompleteMultipartUpload",
            "s3": {"bucket": {"name": BUCKET},
                   "object": {"key": "f.json.gz", "size": 12345, "eTag": "abc", "versionId": "v9"}}
        }]})
        .to_string();
        let mut full_obj = obj(BUCKET, "f.json.gz");
        full_obj.size = Some(12345);
        full_obj.etag = Some("abc".into());
        full_obj.version_id = Some("v9".into());
        let mut eb_obj = obj_raw(BUCKET, "trail+prefix/x%2By.json.gz", "trail prefix/x+y.json.gz");
        eb_obj.size = Some(4821);
        eb_obj.etag = Some("5f2b".into());
        eb_obj.version_id = Some("v1".into());
        let mut eb_plain = obj(BUCKET, KEY);
        eb_plain.size = Some(4821);
        eb_plain.etag = Some("5f2b".into());
        eb_plain.version_id = Some("v1".into());

        let cases: Vec<(&str, String, Vec<ObjectRef>)> = vec![
            ("s3 plain key", s3_event(&[KEY]), vec![obj(BUCKET, KEY)]),
            (
                "s3 encoded keys",
                s3_event(&["trail+prefix/", "o-abc/AWSLogs/a%2Bb.json.gz", "%E2%9C%93/%C3%A9t%C3%A9+1.json.gz"]),
                vec![
                    obj(BUCKET, "trail prefix/"),
                    obj(BUCKET, "o-abc/AWSLogs/a+b.json.gz"),
                    obj(BUCKET, "✓/été 1.json.gz"),
                ],
            ),
            ("s3 all fields, any 2.x version", full, vec![full_obj]),
            ("ObjectRemoved skipped, s3: prefix accepted", removed, vec![obj(BUCKET, KEY2)]),
            ("test event", test_event.clone(), vec![]),
            (
                "sns envelope around s3 event",
                sns_envelope(&s3_event(&["trail+prefix/"])),
                vec![obj(BUCKET, "trail prefix/")],
            ),
            ("sns envelope around test event", sns_envelope(&test_event), vec![]),
            (
                "cloudtrail notice, several plain keys",
                ct_notice.clone(),
                vec![obj(BUCKET, KEY), obj(BUCKET, KEY2), obj(BUCKET, "a+b/c d.json.gz")],
            ),
            (
                "sns envelope around cloudtrail notice",
                sns_envelope(&ct_notice),
                vec![obj(BUCKET, KEY), obj(BUCKET, KEY2), obj(BUCKET, "a+b/c d.json.gz")],
            ),
            ("sns envelope twice", sns_envelope(&sns_envelope(&s3_event(&[KEY]))), vec![obj(BUCKET, KEY)]),
            (
                "eventbridge encoded key",
                eventbridge("Object Created", "trail+prefix/x%2By.json.gz").to_string(),
                vec![eb_obj.clone()],
            ),
            ("eventbridge plain key", eventbridge("Object Created", KEY).to_string(), vec![eb_plain]),
            (
                "eventbridge in sns",
                sns_envelope(&eventbridge("Object Created", "trail+prefix/x%2By.json.gz").to_string()),
                vec![eb_obj],
            ),
            ("eventbridge other detail-type", eventbridge("Object Deleted", KEY).to_string(), vec![]),
        ];
        for (name, body, want) in cases {
            assert_eq!(parse_message_body(&body), Ok(want), "case {name}, input: {body}");
        }
    }

    #[test]
    fn message_body_errors() {
        let deep = (0..=MAX_NESTING).fold(s3_event(&[KEY]), |acc, _| sns_envelope(&acc));
        let cases: Vec<(&str, String, &str)> = vec![
            ("not json", "Hello".into(), "not JSON: "),
            ("json array", "[1]".into(), "invalid notification: the message is an array"),
            (
                "unknown keys",
                json!({"b": 1, "a": 2}).to_string(),
                "unrecognised notification shape (top-level keys: a, b)",
            ),
            ("empty object", "{}".into(), "unrecognised notification shape (top-level keys: none)"),
            (
                "many keys",
                serde_json::to_string(&(0..12).map(|i| (format!("k{i:02}"), i)).collect::<BTreeMap<_, _>>()).unwrap(),
                "unrecognised notification shape (top-level keys: k00, k01, k02, k03, k04, k05, k06, k07, k08, k09, \
                 … 2 more)",
            ),
            ("sns message not json", sns_envelope("nope"), "not JSON: Message: "),
            ("too deep", deep, "nested SNS envelopes"),
            (
                "s3 record without key",
                json!({"Records": [{"eventSource": "aws:s3", "eventName": "ObjectCreated:Put",
                "s3": {"bucket": {"name": BUCKET}, "object": {}}}]})
                .to_string(),
                "Records[0]: s3.object: no key",
            ),
            ("s3 key not utf-8", s3_event(&["%FF"]), "Records[0]: s3.object: key \"%FF\""),
            (
                "not an s3 record",
                json!({"Records": [{"eventSource": "ec2.amazonaws.com", "eventName": "RunInstances"}]}).to_string(),
                "eventSource is \"ec2.amazonaws.com\"",
            ),
            (
                "size is a string",
                json!({"Records": [{"eventSource": "aws:s3", "eventName": "ObjectCreated:Put",
                "s3": {"bucket": {"name": BUCKET}, "object": {"key": "k", "size": "12"}}}]})
                .to_string(),
                "s3.object: size is a string",
            ),
            ("empty records", json!({"Records": []}).to_string(), "Records is empty"),
            (
                "batch in a message",
                json!({"invocationSchemaVersion": "1.0"}).to_string(),
                "cannot arrive inside a message",
            ),
            (
                "notice with a non-string key",
                json!({"s3Bucket": BUCKET, "s3ObjectKey": [KEY, 3]}).to_string(),
                "s3ObjectKey[1] is a number",
            ),
        ];
        for (name, body, want) in cases {
            let got = parse_message_body(&body).expect_err(&format!("case {name} should fail, input: {body}"));
            assert!(got.to_string().contains(want), "case {name}: {got} lacks {want:?}; input: {body}");
        }
    }

    #[test]
    fn direct_triggers() {
        let test_event = json!({"Service": "Amazon S3", "Event": "s3:TestEvent", "Time": "2024-03-01T00:00:01.123Z",
                                "Bucket": BUCKET, "RequestId": "5582815E1AEA5ADF", "HostId": "8cLe"});
        let sns = json!({"Records": [
            {"EventSource": "aws:sns", "EventVersion": "1.0",
             "EventSubscriptionArn": "arn:aws:sns:us-east-1:111122223333:t:1",
             "Sns": {"Type": "Notification", "MessageId": "m1", "Message": s3_event(&["trail+prefix/a%2Bb.json.gz"])}},
            {"EventSource": "aws:sns", "EventVersion": "1.0",
             "Sns": {"Type": "Notification", "MessageId": "m2",
                     "Message": json!({"s3Bucket": BUCKET, "s3ObjectKey": [KEY]}).to_string()}}
        ]});
        let cases: Vec<(&str, Value, Trigger)> = vec![
            (
                "s3 direct",
                serde_json::from_str(&s3_event(&[KEY, "trail+prefix/x.json.gz"])).unwrap(),
                Trigger::Objects {
                    source: TriggerSource::S3,
                    objects: vec![obj(BUCKET, KEY), obj(BUCKET, "trail prefix/x.json.gz")],
                },
            ),
            (
                "s3 direct, only removals",
                json!({"Records": [s3_record("ObjectRemoved:DeleteMarkerCreated", KEY)]}),
                Trigger::Objects { source: TriggerSource::S3, objects: vec![] },
            ),
            ("test event", test_event, Trigger::TestEvent),
            (
                "sns to lambda",
                sns,
                Trigger::Objects {
                    source: TriggerSource::Sns,
                    objects: vec![obj(BUCKET, "trail prefix/a+b.json.gz"), obj(BUCKET, KEY)],
                },
            ),
            (
                "eventbridge",
                eventbridge("Object Created", KEY),
                Trigger::Objects {
                    source: TriggerSource::EventBridge,
                    objects: vec![ObjectRef {
                        size: Some(4821),
                        etag: Some("5f2b".into()),
                        version_id: Some("v1".into()),
                        ..obj(BUCKET, KEY)
                    }],
                },
            ),
            (
                "eventbridge, not an object creation",
                eventbridge("Object Restore Completed", KEY),
                Trigger::Objects { source: TriggerSource::EventBridge, objects: vec![] },
            ),
            (
                "cloudtrail notice direct",
                json!({"s3Bucket": BUCKET, "s3ObjectKey": [KEY, KEY2]}),
                Trigger::Objects {
                    source: TriggerSource::CloudTrailSns,
                    objects: vec![obj(BUCKET, KEY), obj(BUCKET, KEY2)],
                },
            ),
        ];
        for (name, event, want) in cases {
            assert_eq!(parse_trigger(&event), Ok(want), "case {name}, input: {event}");
        }
    }

    #[test]
    fn sqs_batches() {
        let ct_notice = json!({"s3Bucket": BUCKET, "s3ObjectKey": [KEY, KEY2]}).to_string();
        let test_event = json!({"Service": "Amazon S3", "Event": "s3:TestEvent", "Bucket": BUCKET}).to_string();
        let raw_sns = s3_event(&["o-abc%2F111122223333/%E2%9C%93.json.gz"]);
        let sns_s3 = sns_envelope(&s3_event(&["trail+prefix/"]));
        let eb = eventbridge("Object Created", KEY).to_string();
        let event = sqs_event(&[
            ("m-s3", &s3_event(&[KEY])),
            ("m-sns", &sns_s3),
            ("m-raw", &raw_sns),
            ("m-ct", &ct_notice),
            ("m-bad", "{not json"),
            ("m-eb", &eb),
            ("m-test", &test_event),
            ("m-unknown", r#"{"hello":"world"}"#),
        ]);
        let Ok(Trigger::Sqs(messages)) = parse_trigger(&event) else { panic!("not an SQS trigger; input: {event}") };
        let got: Vec<(&str, Result<Vec<ObjectRef>, bool>)> = messages
            .iter()
            .map(|m| (m.message_id.as_str(), m.objects.clone().map_err(|e| matches!(e, NotificationError::NotJson(_)))))
            .collect();
        let eb_obj = ObjectRef {
            size: Some(4821),
            etag: Some("5f2b".into()),
            version_id: Some("v1".into()),
            ..obj(BUCKET, KEY)
        };
        let want: Vec<(&str, Result<Vec<ObjectRef>, bool>)> = vec![
            ("m-s3", Ok(vec![obj(BUCKET, KEY)])),
            ("m-sns", Ok(vec![obj(BUCKET, "trail prefix/")])),
            ("m-raw", Ok(vec![obj(BUCKET, "o-abc/111122223333/✓.json.gz")])),
            ("m-ct", Ok(vec![obj(BUCKET, KEY), obj(BUCKET, KEY2)])),
            ("m-bad", Err(true)),
            ("m-eb", Ok(vec![eb_obj])),
            ("m-test", Ok(vec![])),
            ("m-unknown", Err(false)),
        ];
        assert_eq!(got, want, "input: {event}");
    }

    #[test]
    fn sqs_invalid_as_a_whole() {
        let cases: Vec<(&str, Value, &str)> = vec![
            (
                "missing messageId",
                json!({"Records": [{"eventSource": "aws:sqs", "body": "{}"}]}),
                "Records[0]: no messageId",
            ),
            ("empty messageId", sqs_event(&[("a", "{}"), ("", "{}")]), "Records[1]: messageId is empty"),
            (
                "mixed sources",
                json!({"Records": [{"eventSource": "aws:sqs", "messageId": "a", "body": "{}"},
                                   s3_record("ObjectCreated:Put", KEY)]}),
                "Records[1] has event source",
            ),
            ("no source", json!({"Records": [{"messageId": "a"}]}), "no eventSource"),
            (
                "cloudtrail log file",
                json!({"Records": [{"eventVersion": "1.11", "eventSource": "s3.amazonaws.com"}]}),
                "a CloudTrail log file",
            ),
            ("records not array", json!({"Records": {}}), "Records is an object"),
            ("not an object", json!([1, 2]), "the event is an array"),
            ("unknown", json!({"detail": 1, "zeta": 2, "alpha": 3}), "top-level keys: alpha, detail, zeta"),
            (
                "sns with a bad message",
                json!({"Records": [{"EventSource": "aws:sns", "Sns": {"Message": s3_event(&[KEY])}},
                                   {"EventSource": "aws:sns", "Sns": {"Message": "oops"}}]}),
                "not JSON: Records[1]: Sns.Message: ",
            ),
        ];
        for (name, event, want) in cases {
            let got = parse_trigger(&event).expect_err(&format!("case {name} should fail, input: {event}"));
            assert!(got.to_string().contains(want), "case {name}: {got} lacks {want:?}; input: {event}");
        }
        // A body that is not a string fails that message only.
        let event = json!({"Records": [{"eventSource": "aws:sqs", "messageId": "a", "body": {"Records": []}}]});
        let Ok(Trigger::Sqs(messages)) = parse_trigger(&event) else { panic!("input: {event}") };
        assert!(matches!(&messages[0].objects, Err(NotificationError::Invalid(m)) if m.contains("body is an object")));
    }

    #[test]
    fn batch_invocations() {
        let v1 = json!({"invocationSchemaVersion": "1.0", "invocationId": "inv1", "job": {"id": "job1"},
                        "tasks": [{"taskId": "t1", "s3Key": "trail+prefix/a%2Bb.json.gz", "s3VersionId": "ver1",
                                   "s3BucketArn": "arn:aws:s3:::example-trail-bucket"}]});
        let v2 = json!({"invocationSchemaVersion": "2.0", "invocationId": "inv2",
        "job": {"id": "job2", "userArguments": {"destination": "s3://example-archive-bucket/cloudtrail",
                                                "dataset": "events"}},
        "tasks": [
            {"taskId": "t1", "s3Key": KEY, "s3VersionId": null, "s3Bucket": BUCKET},
            {"taskId": "t2", "s3Key": "%FF.json.gz", "s3VersionId": null, "s3Bucket": BUCKET},
            {"taskId": "t3", "s3Key": KEY, "s3VersionId": null},
            {"taskId": "t4", "s3Key": KEY, "s3BucketArn": "arn:aws-cn:s3:::cn-bucket"},
            {"taskId": "t5", "s3Key": KEY, "s3BucketArn": "arn:aws:sqs:us-east-1:1:q"}
        ]});
        let cases: Vec<(&str, Value, BatchInvocation)> = vec![
            (
                "1.0",
                v1,
                BatchInvocation {
                    schema_version: "1.0".into(),
                    invocation_id: "inv1".into(),
                    job_id: "job1".into(),
                    user_arguments: BTreeMap::new(),
                    tasks: vec![BatchTask {
                        task_id: "t1".into(),
                        object: Ok(ObjectRef {
                            version_id: Some("ver1".into()),
                            ..obj_raw(BUCKET, "trail prefix/a+b.json.gz", "trail+prefix/a%2Bb.json.gz")
                        }),
                    }],
                },
            ),
            (
                "2.0",
                v2,
                BatchInvocation {
                    schema_version: "2.0".into(),
                    invocation_id: "inv2".into(),
                    job_id: "job2".into(),
                    user_arguments: BTreeMap::from([
                        ("dataset".to_owned(), "events".to_owned()),
                        ("destination".to_owned(), "s3://example-archive-bucket/cloudtrail".to_owned()),
                    ]),
                    tasks: vec![
                        BatchTask { task_id: "t1".into(), object: Ok(obj(BUCKET, KEY)) },
                        BatchTask { task_id: "t2".into(), object: Ok(obj(BUCKET, "%FF.json.gz")) },
                        BatchTask {
                            task_id: "t3".into(),
                            object: Err(NotificationError::Invalid(
                                "tasks[2]: neither s3Bucket nor s3BucketArn".into(),
                            )),
                        },
                        BatchTask { task_id: "t4".into(), object: Ok(obj("cn-bucket", KEY)) },
                        BatchTask {
                            task_id: "t5".into(),
                            object: Err(NotificationError::Invalid(
                                "tasks[4]: s3BucketArn \"arn:aws:sqs:us-east-1:1:q\" is not an S3 bucket ARN".into(),
                            )),
                        },
                    ],
                },
            ),
        ];
        for (name, event, want) in cases {
            assert_eq!(parse_trigger(&event), Ok(Trigger::Batch(want)), "case {name}, input: {event}");
        }
    }

    #[test]
    fn batch_errors() {
        let cases: Vec<(&str, Value, &str)> = vec![
            (
                "schema 3.0",
                json!({"invocationSchemaVersion": "3.0", "invocationId": "i", "job": {"id": "j"}, "tasks": []}),
                "\"3.0\" is not supported",
            ),
            (
                "non-string user argument",
                json!({"invocationSchemaVersion": "2.0", "invocationId": "i",
                       "job": {"id": "j", "userArguments": {"n": 1}}, "tasks": []}),
                "job.userArguments.n is a number",
            ),
            (
                "missing taskId",
                json!({"invocationSchemaVersion": "1.0", "invocationId": "i", "job": {"id": "j"},
                       "tasks": [{"s3Key": "k"}]}),
                "tasks[0]: no taskId",
            ),
            (
                "missing invocationId",
                json!({"invocationSchemaVersion": "1.0", "job": {"id": "j"}, "tasks": []}),
                "no invocationId",
            ),
            (
                "missing tasks",
                json!({"invocationSchemaVersion": "1.0", "invocationId": "i", "job": {"id": "j"}}),
                "no tasks",
            ),
        ];
        for (name, event, want) in cases {
            let got = parse_trigger(&event).expect_err(&format!("case {name} should fail, input: {event}"));
            assert!(
                matches!(&got, NotificationError::Invalid(m) if m.contains(want)),
                "case {name}: {got} lacks {want:?}; input: {event}"
            );
        }
    }

    #[test]
    fn batch_response_json() {
        let invocation = BatchInvocation {
            schema_version: "2.0".into(),
            invocation_id: "inv2".into(),
            job_id: "job2".into(),
            user_arguments: BTreeMap::new(),
            tasks: vec![],
        };
        let results = vec![
            BatchResult { task_id: "t1".into(), result_code: ResultCode::Succeeded, result_string: "ok".into() },
            BatchResult {
                task_id: "t2".into(),
                result_code: ResultCode::TemporaryFailure,
                result_string: "slow down".into(),
            },
            BatchResult {
                task_id: "t3".into(),
                result_code: ResultCode::PermanentFailure,
                result_string: "not found".into(),
            },
        ];
        let got = serde_json::to_value(BatchResponse::new(&invocation, results)).unwrap();
        let want = json!({
            "invocationSchemaVersion": "2.0",
            "treatMissingKeysAs": "PermanentFailure",
            "invocationId": "inv2",
            "results": [
                {"taskId": "t1", "resultCode": "Succeeded", "resultString": "ok"},
                {"taskId": "t2", "resultCode": "TemporaryFailure", "resultString": "slow down"},
                {"taskId": "t3", "resultCode": "PermanentFailure", "resultString": "not found"}
            ]
        });
        assert_eq!(got, want);
    }

    /// A one-line summary of a trigger: variant, then `bucket/key` (with `[raw]` when kept) per object.
    fn summary(trigger: &Trigger) -> String {
        fn objects(list: &[ObjectRef]) -> String {
            list.iter()
                .map(|o| match &o.raw_key {
                    Some(raw) => format!("{}/{} [{raw}]", o.bucket, o.key),
                    None => format!("{}/{}", o.bucket, o.key),
                })
                .collect::<Vec<_>>()
                .join(" | ")
        }
        match trigger {
            Trigger::Objects { source, objects: list } => format!("{source:?}: {}", objects(list)),
            Trigger::TestEvent => "TestEvent".into(),
            Trigger::Sqs(messages) => {
                let parts: Vec<String> = messages
                    .iter()
                    .map(|m| match &m.objects {
                        Ok(list) => format!("{{{}}}", objects(list)),
                        Err(e) => format!("{{Err {e}}}"),
                    })
                    .collect();
                format!("Sqs: {}", parts.join(" "))
            }
            Trigger::Batch(b) => {
                let tasks: Vec<String> = b
                    .tasks
                    .iter()
                    .map(|t| match &t.object {
                        Ok(o) => format!("{}={}", t.task_id, objects(std::slice::from_ref(o))),
                        Err(e) => format!("{}=Err {e}", t.task_id),
                    })
                    .collect();
                format!("Batch {} {:?}: {}", b.schema_version, b.user_arguments, tasks.join(" | "))
            }
        }
    }

    #[test]
    fn example_events() {
        let b = BUCKET;
        let space = format!("{b}/trail prefix/{KEY}");
        let cases: Vec<(&str, &str, String)> = vec![
            ("s3-object-created", include_str!("../../lambda/events/s3-object-created.json"), format!("S3: {space}")),
            ("s3-test-event", include_str!("../../lambda/events/s3-test-event.json"), "TestEvent".into()),
            (
                "sqs-s3-event",
                include_str!("../../lambda/events/sqs-s3-event.json"),
                format!("Sqs: {{{b}/{KEY}}} {{{space}}}"),
            ),
            (
                "sqs-sns-s3-event",
                include_str!("../../lambda/events/sqs-sns-s3-event.json"),
                format!("Sqs: {{{space}}}"),
            ),
            (
                "sqs-cloudtrail-sns",
                include_str!("../../lambda/events/sqs-cloudtrail-sns.json"),
                format!("Sqs: {{{b}/{KEY} | {b}/{KEY2}}}"),
            ),
            (
                "sqs-eventbridge",
                include_str!("../../lambda/events/sqs-eventbridge.json"),
                format!("Sqs: {{{b}/{KEY}}}"),
            ),
            ("sns-s3-event", include_str!("../../lambda/events/sns-s3-event.json"), format!("Sns: {b}/{KEY}")),
            (
                "eventbridge-object-created",
                include_str!("../../lambda/events/eventbridge-object-created.json"),
                format!("EventBridge: {b}/{KEY}"),
            ),
            (
                "cloudtrail-sns-direct",
                include_str!("../../lambda/events/cloudtrail-sns-direct.json"),
                format!("CloudTrailSns: {b}/{KEY} | {b}/{KEY2}"),
            ),
            (
                "batch-1.0",
                include_str!("../../lambda/events/batch-1.0.json"),
                format!("Batch 1.0 {{}}: dGFza2lkZ29lc2hlcmUK={b}/{KEY}"),
            ),
            (
                "batch-2.0",
                include_str!("../../lambda/events/batch-2.0.json"),
                format!(
                    "Batch 2.0 {{\"dataset\": \"events\", \
                     \"destination\": \"s3://example-archive-bucket/cloudtrail\"}}: ZGlmZmVyZW50dGFza2lkCg={b}/{KEY2}"
                ),
            ),
        ];
        for (name, text, want) in cases {
            let event: Value = serde_json::from_str(text).unwrap_or_else(|e| panic!("{name}.json is not JSON: {e}"));
            let got = parse_trigger(&event).unwrap_or_else(|e| panic!("{name}.json: {e}; input: {text}"));
            assert_eq!(summary(&got), want, "{name}.json, input: {text}");
        }
    }

    #[test]
    fn object_ref_serializes() {
        let got = serde_json::to_value(obj_raw(BUCKET, "a b", "a+b")).unwrap();
        let want =
            json!({"bucket": BUCKET, "key": "a b", "raw_key": "a+b", "version_id": null, "size": null, "etag": null});
        assert_eq!(got, want);
        assert_eq!(serde_json::to_value(TriggerSource::CloudTrailSns).unwrap(), json!("CloudTrailSns"));
    }
}
