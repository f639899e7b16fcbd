//! The `digests` dataset: one row per CloudTrail digest file, so the integrity record of a trail
//! (which log files were delivered in each hour, with their hashes, and how the digests chain)
//! can be queried next to the events it vouches for.
//!
//! A row holds every field of the digest JSON, the chain it belongs to as its key names it
//! (`trail`, `home_region`), the signature CloudTrail keeps outside the file (S3 user metadata
//! `signature` and `signature-algorithm`, NULL for a local copy, which has none), and the SHA-256
//! of the inflated digest: the value its successor's `previousDigestHashValue` states, so the
//! chain can be followed with a join. Fields CloudTrail may add later go to `unmapped`, so nothing
//! is dropped. Rows are partitioned by `digestEndTime`: a digest is about the hour that ends there.
//!
//! Converting a digest records what it says; it does not verify it (`parquetrail verify` does,
//! with the trail's public keys).

use std::collections::BTreeMap;
use std::sync::{Arc, OnceLock};

use arrow_schema::{DataType, Field, Fields, Schema, SchemaRef, TimeUnit};
use parquet::arrow::ArrowWriter;
use parquet::arrow::arrow_writer::ArrowWriterOptions;
use serde::Serialize;
use serde_arrow::ArrayBuilder;
use serde_json::value::RawValue;

use crate::digest::{Digest, DigestError, DigestKey, hex, sha256};
use crate::encode::WriterSettings;
use crate::error::DataError;
use crate::object_key::ObjectKey;
use crate::partition::PartitionKey;
use crate::schema::{ColumnDoc, Origin};

fn s(name: &str) -> Field {
    Field::new(name, DataType::Utf8, true)
}

/// The schema of the `digests` dataset. Partition columns (`account`, `region`, `date`) are in the
/// path, not in the files.
pub fn schema() -> SchemaRef {
    static SCHEMA: OnceLock<SchemaRef> = OnceLock::new();
    SCHEMA
        .get_or_init(|| {
            let log_file = DataType::Struct(Fields::from(vec![
                s("s3bucket"),
                s("s3object"),
                s("hashvalue"),
                s("hashalgorithm"),
                s("newesteventtime"),
                s("oldesteventtime"),
            ]));
            Arc::new(Schema::new(vec![
                s("awsaccountid"),
                s("trail"),
                s("home_region"),
                s("digeststarttime"),
                s("digestendtime"),
                Field::new("digestendtime_ts", DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())), true),
                s("digests3bucket"),
                s("digests3object"),
                s("digestpublickeyfingerprint"),
                s("digestsignaturealgorithm"),
                s("newesteventtime"),
                s("oldesteventtime"),
                s("previousdigests3bucket"),
                s("previousdigests3object"),
                s("previousdigesthashvalue"),
                s("previousdigesthashalgorithm"),
                s("previousdigestsignature"),
                Field::new("logfiles", DataType::List(Arc::new(Field::new("item", log_file, true))), true),
                s("signature"),
                s("signature_algorithm"),
                Field::new("sha256", DataType::Utf8, false),
                Field::new("source_key", DataType::Utf8, false),
                s("unmapped"),
            ]))
        })
        .clone()
}

macro_rules! docs {
    ($( $path:literal, $json:literal, $origin:ident, $doc:literal; )*) => {
        /// Every column of the `digests` dataset, in schema order.
        pub const COLUMNS: &[ColumnDoc] = &[ $( ColumnDoc { path: $path, json: $json, origin: Origin::$origin, doc: $doc }, )* ];
    };
}

docs! {
    "awsaccountid", "awsAccountId", Official, "Account whose logs the digest covers.";
    "trail", "—", Added, "Trail name, from the digest's key (NULL when the key does not follow CloudTrail's naming).";
    "home_region", "—", Added, "The trail's home region, whose key pair signs the digest (from the key).";
    "digeststarttime", "digestStartTime", Official, "Start of the delivery window the digest covers, as written.";
    "digestendtime", "digestEndTime", Official, "End of that window, as written (the `date` partition).";
    "digestendtime_ts", "digestEndTime", Added, "`digestEndTime` as a UTC timestamp (microseconds).";
    "digests3bucket", "digestS3Bucket", Official, "Bucket CloudTrail delivered the digest to.";
    "digests3object", "digestS3Object", Official, "Key CloudTrail delivered the digest to.";
    "digestpublickeyfingerprint", "digestPublicKeyFingerprint", Official, "Hex fingerprint of the public key that verifies the signature.";
    "digestsignaturealgorithm", "digestSignatureAlgorithm", Official, "`SHA256withRSA`.";
    "newesteventtime", "newestEventTime", Official, "Newest event in the listed log files; NULL when none were delivered.";
    "oldesteventtime", "oldestEventTime", Official, "Oldest event in the listed log files; NULL when none were delivered.";
    "previousdigests3bucket", "previousDigestS3Bucket", Official, "Bucket of the previous digest of the chain; NULL in a starting digest.";
    "previousdigests3object", "previousDigestS3Object", Official, "Key of the previous digest.";
    "previousdigesthashvalue", "previousDigestHashValue", Official, "Hex SHA-256 of the previous digest's inflated bytes (its `sha256`).";
    "previousdigesthashalgorithm", "previousDigestHashAlgorithm", Official, "`SHA-256`.";
    "previousdigestsignature", "previousDigestSignature", Official, "Hex signature of the previous digest (its `signature`).";
    "logfiles", "logFiles", Official, "Log files delivered in the window: `s3bucket`, `s3object`, `hashvalue` (hex SHA-256 of the inflated file), `hashalgorithm`, `newesteventtime`, `oldesteventtime`.";
    "signature", "—", Added, "Hex signature from the object's user metadata (`signature`); NULL when the object had none, e.g. a local copy.";
    "signature_algorithm", "—", Added, "Signature algorithm from the object's user metadata (`signature-algorithm`).";
    "sha256", "—", Added, "Hex SHA-256 of the inflated digest: what the next digest's `previousdigesthashvalue` states.";
    "source_key", "—", Added, "Key of the digest object the row came from.";
    "unmapped", "—", Added, "Lossless remainder as JSON: `{\"fields\":{<JSON Pointer>:<value>}}` for fields this schema does not model (top level or in `logFiles`). NULL when the typed columns hold the whole digest.";
}

/// The `digests` section of `docs/COLUMNS.md`.
pub fn columns_markdown() -> String {
    let mut out = String::from(
        "\n## The `digests` dataset\n\n\
         One row per CloudTrail digest file. Partition columns are in the path: `account` (from \
         `awsAccountId`, else the key), `region` (the region whose logs the digest covers, from the key) \
         and `date` (`YYYY-MM-DD` of `digestEndTime`, UTC).\n\n\
         | column | type | CloudTrail field | origin | meaning |\n|---|---|---|---|---|\n",
    );
    let schema = schema();
    for col in COLUMNS {
        let ty = crate::schema::hive_type_of_path(&schema, col.path).unwrap_or_else(|| "?".into());
        let origin = match col.origin {
            Origin::Official => "digest file",
            Origin::Added => "added",
        };
        out.push_str(&format!("| `{}` | `{}` | `{}` | {} | {} |\n", col.path, ty, col.json, origin, col.doc));
    }
    out
}

/// The signature CloudTrail stores beside a digest (S3 user metadata), when the object had it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Signature<'a> {
    pub signature: Option<&'a str>,
    pub algorithm: Option<&'a str>,
}

/// One log file a digest lists, as a `logfiles` element.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LogFileRow {
    pub s3bucket: Option<String>,
    pub s3object: Option<String>,
    pub hashvalue: Option<String>,
    pub hashalgorithm: Option<String>,
    pub newesteventtime: Option<String>,
    pub oldesteventtime: Option<String>,
}

/// One row of the `digests` dataset (field order is the schema's).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DigestRow {
    pub awsaccountid: Option<String>,
    pub trail: Option<String>,
    pub home_region: Option<String>,
    pub digeststarttime: Option<String>,
    pub digestendtime: Option<String>,
    pub digestendtime_ts: Option<i64>,
    pub digests3bucket: Option<String>,
    pub digests3object: Option<String>,
    pub digestpublickeyfingerprint: Option<String>,
    pub digestsignaturealgorithm: Option<String>,
    pub newesteventtime: Option<String>,
    pub oldesteventtime: Option<String>,
    pub previousdigests3bucket: Option<String>,
    pub previousdigests3object: Option<String>,
    pub previousdigesthashvalue: Option<String>,
    pub previousdigesthashalgorithm: Option<String>,
    pub previousdigestsignature: Option<String>,
    pub logfiles: Vec<LogFileRow>,
    pub signature: Option<String>,
    pub signature_algorithm: Option<String>,
    pub sha256: String,
    pub source_key: String,
    pub unmapped: Option<String>,
    /// Where the row is written (not a column).
    #[serde(skip)]
    pub partition: PartitionKey,
}

/// Top-level digest fields the typed columns hold.
const KNOWN: [&str; 15] = [
    "awsAccountId",
    "digestStartTime",
    "digestEndTime",
    "digestS3Bucket",
    "digestS3Object",
    "digestPublicKeyFingerprint",
    "digestSignatureAlgorithm",
    "newestEventTime",
    "oldestEventTime",
    "previousDigestS3Bucket",
    "previousDigestS3Object",
    "previousDigestHashValue",
    "previousDigestHashAlgorithm",
    "previousDigestSignature",
    "logFiles",
];

/// `logFiles[]` fields the typed columns hold.
const KNOWN_LOG_FILE: [&str; 6] =
    ["s3Bucket", "s3Object", "hashValue", "hashAlgorithm", "newestEventTime", "oldestEventTime"];

/// Why a digest cannot be a row; the file is quarantined with this as its reason.
#[derive(Debug, thiserror::Error)]
pub enum DigestRowError {
    #[error("not a CloudTrail digest: {0}")]
    Digest(#[source] DigestError),
    #[error("not a CloudTrail digest: {0}")]
    Json(#[source] serde_json::Error),
    #[error("not a CloudTrail digest: logFiles: {0}")]
    LogFiles(#[source] serde_json::Error),
    #[error("digestEndTime {0:?} is not an RFC 3339 time")]
    EndTime(String),
}

impl DigestRow {
    /// The row of an inflated digest read from `object`. `Err` says why the digest cannot be a row
    /// (not JSON, a required field missing, a field of the wrong type, no usable `digestEndTime`):
    /// such a file is quarantined.
    pub fn parse(
        inflated: &[u8],
        object: &ObjectKey<'_>,
        signature: Signature<'_>,
    ) -> Result<DigestRow, DigestRowError> {
        let digest = Digest::parse(inflated).map_err(DigestRowError::Digest)?;
        let end = digest
            .end_time()
            .ok_or_else(|| DigestRowError::EndTime(digest.digest_end_time.clone().unwrap_or_default()))?;
        let unmapped = unmapped(inflated)?;
        let key = DigestKey::parse(object.key);
        let chain = key.as_ref().map(|k| &k.chain);
        let account = digest
            .aws_account_id
            .as_deref()
            .filter(|a| !a.is_empty())
            .or(chain.map(|c| c.account.as_str()))
            .or(object.account)
            .unwrap_or_default();
        let region = chain.map(|c| c.region.as_str()).or(object.region).unwrap_or_default();
        let partition =
            PartitionKey { account: account.to_string(), region: region.to_string(), date: end.date_naive() };
        let logfiles = digest
            .log_files
            .into_iter()
            .map(|f| LogFileRow {
                s3bucket: f.s3_bucket,
                s3object: f.s3_object,
                hashvalue: f.hash_value,
                hashalgorithm: f.hash_algorithm,
                newesteventtime: f.newest_event_time,
                oldesteventtime: f.oldest_event_time,
            })
            .collect();
        Ok(DigestRow {
            awsaccountid: digest.aws_account_id,
            trail: chain.map(|c| c.trail.clone()),
            home_region: chain.map(|c| c.home_region.clone()),
            digeststarttime: digest.digest_start_time,
            digestendtime: digest.digest_end_time,
            digestendtime_ts: Some(end.timestamp_micros()),
            digests3bucket: digest.digest_s3_bucket,
            digests3object: digest.digest_s3_object,
            digestpublickeyfingerprint: digest.digest_public_key_fingerprint,
            digestsignaturealgorithm: digest.digest_signature_algorithm,
            newesteventtime: digest.newest_event_time,
            oldesteventtime: digest.oldest_event_time,
            previousdigests3bucket: digest.previous_digest_s3_bucket,
            previousdigests3object: digest.previous_digest_s3_object,
            previousdigesthashvalue: digest.previous_digest_hash_value,
            previousdigesthashalgorithm: digest.previous_digest_hash_algorithm,
            previousdigestsignature: digest.previous_digest_signature,
            logfiles,
            signature: signature.signature.map(str::to_string),
            signature_algorithm: signature.algorithm.map(str::to_string),
            sha256: hex(&sha256(inflated)),
            source_key: object.key.to_string(),
            unmapped,
            partition,
        })
    }
}

/// The fields the typed columns do not hold, as `{"fields":{<JSON Pointer>:<value>}}`, values
/// exactly as written.
fn unmapped(inflated: &[u8]) -> Result<Option<String>, DigestRowError> {
    let top: BTreeMap<String, &RawValue> = serde_json::from_slice(inflated).map_err(DigestRowError::Json)?;
    let mut fields: Vec<(String, &str)> = Vec::new();
    for (name, value) in &top {
        if name == "logFiles" {
            let entries: Vec<BTreeMap<String, &RawValue>> =
                serde_json::from_str(value.get()).map_err(DigestRowError::LogFiles)?;
            for (i, entry) in entries.iter().enumerate() {
                for (field, value) in entry.iter().filter(|(f, _)| !KNOWN_LOG_FILE.contains(&f.as_str())) {
                    fields.push((format!("/logFiles/{i}/{}", pointer_token(field)), value.get()));
                }
            }
        } else if !KNOWN.contains(&name.as_str()) {
            fields.push((format!("/{}", pointer_token(name)), value.get()));
        }
    }
    if fields.is_empty() {
        return Ok(None);
    }
    let members: Vec<String> = fields
        .iter()
        .map(|(pointer, value)| format!("{}:{}", serde_json::to_string(pointer).expect("strings serialize"), value))
        .collect();
    Ok(Some(format!("{{\"fields\":{{{}}}}}", members.join(","))))
}

/// One JSON Pointer reference token (RFC 6901: `~` → `~0`, `/` → `~1`).
fn pointer_token(name: &str) -> String {
    name.replace('~', "~0").replace('/', "~1")
}

/// Rows → one Parquet file in memory, with the run's writer settings (a digest is a few KB: no
/// streaming needed).
pub fn encode(rows: &[DigestRow], settings: &WriterSettings) -> Result<Vec<u8>, DataError> {
    let mut builder = ArrayBuilder::from_arrow(schema().fields())?;
    for row in rows {
        builder.push(row)?;
    }
    let batch = builder.to_record_batch()?;
    // Like the events files: Parquet's logical types carry every type used, so no Arrow schema copy.
    let options = ArrowWriterOptions::new().with_properties(settings.properties()).with_skip_arrow_metadata(true);
    let mut writer = ArrowWriter::try_new_with_options(Vec::new(), schema(), options)?;
    writer.write(&batch)?;
    Ok(writer.into_inner()?)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use arrow_array::cast::AsArray;
    use arrow_array::types::TimestampMicrosecondType;

    pub(crate) const KEY: &str = "AWSLogs/111122223333/CloudTrail-Digest/us-east-2/2015/08/17/111122223333_CloudTrail-Digest_us-east-2_my_trail_us-east-1_20150817T150131Z.json.gz";

    pub(crate) const DIGEST: &str = r#"{"awsAccountId":"111122223333","digestStartTime":"2015-08-17T14:01:31Z","digestEndTime":"2015-08-17T15:01:31Z","digestS3Bucket":"b","digestS3Object":"AWSLogs/111122223333/CloudTrail-Digest/us-east-2/2015/08/17/111122223333_CloudTrail-Digest_us-east-2_my_trail_us-east-1_20150817T150131Z.json.gz","digestPublicKeyFingerprint":"31e8","digestSignatureAlgorithm":"SHA256withRSA","newestEventTime":"2015-08-17T14:52:27Z","oldestEventTime":"2015-08-17T14:42:27Z","previousDigestS3Bucket":null,"previousDigestS3Object":null,"previousDigestHashValue":null,"previousDigestHashAlgorithm":null,"previousDigestSignature":null,"logFiles":[{"s3Bucket":"b","s3Object":"AWSLogs/111122223333/CloudTrail/us-east-2/2015/08/17/a.json.gz","hashValue":"9bb6","hashAlgorithm":"SHA-256","newestEventTime":"2015-08-17T14:52:27Z","oldestEventTime":"2015-08-17T14:42:27Z"}]}"#;

    #[test]
    fn parses_every_field_and_the_chain_from_the_key() {
        let sig = Signature { signature: Some("abcd"), algorithm: Some("SHA256withRSA") };
        let row = DigestRow::parse(DIGEST.as_bytes(), &ObjectKey::parse(KEY), sig).unwrap();
        assert_eq!(row.awsaccountid.as_deref(), Some("111122223333"));
        assert_eq!((row.trail.as_deref(), row.home_region.as_deref()), (Some("my_trail"), Some("us-east-1")));
        assert_eq!(row.partition.path(), "account=111122223333/region=us-east-2/date=2015-08-17");
        assert_eq!(row.digestendtime_ts, Some(1_439_823_691_000_000));
        assert_eq!(row.logfiles.len(), 1);
        assert_eq!(row.logfiles[0].hashvalue.as_deref(), Some("9bb6"));
        assert_eq!(
            (row.signature.as_deref(), row.signature_algorithm.as_deref()),
            (Some("abcd"), Some("SHA256withRSA"))
        );
        assert_eq!(row.sha256, hex(&sha256(DIGEST.as_bytes())));
        assert_eq!(row.previousdigestsignature, None, "a starting digest");
        assert_eq!(row.unmapped, None, "every field is typed");
    }

    #[test]
    fn unknown_fields_are_kept_in_unmapped() {
        let json = DIGEST
            .replacen("{\"awsAccountId\"", "{\"newField\":{\"a\":[1,2.50]},\"a/b~\":true,\"awsAccountId\"", 1)
            .replacen("\"s3Bucket\":\"b\"", "\"s3Bucket\":\"b\",\"size\":123", 1);
        let row = DigestRow::parse(json.as_bytes(), &ObjectKey::parse(KEY), Signature::default()).unwrap();
        let unmapped = row.unmapped.unwrap();
        assert_eq!(unmapped, r#"{"fields":{"/a~1b~0":true,"/logFiles/0/size":123,"/newField":{"a":[1,2.50]}}}"#);
        assert_eq!(row.signature, None);
    }

    #[test]
    fn what_cannot_be_a_row_is_an_error_with_the_reason() {
        let cases = [
            ("not json", "{".to_string(), "not JSON"),
            ("required field", DIGEST.replace("\"digestStartTime\"", "\"x\""), "no digestStartTime"),
            ("wrong type", DIGEST.replace("\"logFiles\":[", "\"logFiles\":\"x\",\"other\":["), "invalid type"),
            (
                "bad end time",
                DIGEST.replace("\"digestEndTime\":\"2015-08-17T15:01:31Z\"", "\"digestEndTime\":\"soon\""),
                "digestEndTime",
            ),
        ];
        for (name, json, want) in cases {
            let err = DigestRow::parse(json.as_bytes(), &ObjectKey::parse(KEY), Signature::default())
                .unwrap_err()
                .to_string();
            assert!(err.contains(want), "{name}: {err}");
        }
    }

    #[test]
    fn round_trips_through_parquet() {
        let row = DigestRow::parse(DIGEST.as_bytes(), &ObjectKey::parse(KEY), Signature::default()).unwrap();
        let bytes = encode(std::slice::from_ref(&row), &WriterSettings::default()).unwrap();
        let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(bytes::Bytes::from(bytes))
            .unwrap()
            .build()
            .unwrap();
        let batches: Vec<_> = reader.collect::<Result<_, _>>().unwrap();
        assert_eq!(batches.len(), 1);
        let batch = &batches[0];
        assert_eq!(batch.num_rows(), 1);
        let names: Vec<&str> = batch.schema_ref().fields().iter().map(|f| f.name().as_str()).collect();
        let schema = schema();
        let want: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
        assert_eq!(names, want);
        let col = |name: &str| batch.column_by_name(name).unwrap().clone();
        assert_eq!(col("trail").as_string::<i32>().value(0), "my_trail");
        let ts = col("digestendtime_ts");
        assert_eq!(ts.as_primitive::<TimestampMicrosecondType>().value(0), 1_439_823_691_000_000);
        let files = col("logfiles");
        let item = files.as_list::<i32>().value(0);
        assert_eq!(item.as_struct().column_by_name("hashvalue").unwrap().as_string::<i32>().value(0), "9bb6");
        assert!(col("signature").is_null(0));
    }

    #[test]
    fn every_column_is_documented() {
        let documented: Vec<&str> = COLUMNS.iter().map(|c| c.path).collect();
        let names: Vec<String> = schema().fields().iter().map(|f| f.name().clone()).collect();
        assert_eq!(documented, names);
    }
}
