//! # parquetrail-core
//!
//! Pure, synchronous conversion of AWS CloudTrail log files into Hive-partitioned Parquet:
//! bytes in, Parquet out. No async runtime, no cloud SDK, no environment variables — the Lambda,
//! the CLI and the tests drive the same code through the small [`sink::Sink`] trait.
//!
//! Data flows one way: object key → bytes → records → rows → Arrow batches → Parquet objects.
//!
//! - [`object_key`]: what a key is (log, Insight, digest, Config) and how outputs are named.
//! - [`log_file`]: gzip and the `{"Records":[…]}` envelope, one record at a time.
//! - [`record`]: the lossless record model ([`record::Row`]).
//! - [`partition`]: `account=/region=/date=` from each record's own `eventTime`.
//! - [`schema`]: the Arrow schema and its column documentation.
//! - [`digest`]: CloudTrail digest files: model, signature, chain verification.
//! - [`digest_table`]: the `digests` dataset, one row per digest file.
//! - [`ddl`]: Athena and Spark tables over an archive, typed from the schema.
//! - [`encode`]: rows → Parquet with the writer settings chosen in one place.
//! - [`convert`]: one log or digest file through all of the above, with quarantine and reconciliation.
//! - [`archive`]: reading an archive back (summaries, export to CloudTrail JSON).
//! - [`lookup`]: CloudTrail's Event history (`LookupEvents`) over the archive: attributes, Username, order, paging.
//! - [`insights`]: CloudTrail Insights computed from per-minute metrics, in CloudTrail's format.
//! - [`compact`](mod@compact): one partition's small files rewritten as a few large ones, sorted and deduplicated.
//!
//! ```
//! use parquetrail_core::{convert::{convert, Options}, sink::MemorySink};
//! let json = br#"{"Records":[{"eventVersion":"1.08","eventTime":"2024-03-01T12:00:00Z",
//!   "eventSource":"s3.amazonaws.com","eventName":"GetObject","awsRegion":"us-east-1",
//!   "recipientAccountId":"123456789012","requestParameters":null,"responseElements":null}]}"#;
//! let sink = MemorySink::default();
//! let key = "AWSLogs/123456789012/CloudTrail/us-east-1/2024/03/01/f.json.gz";
//! let report = convert(key, &json[..], &sink, &Options::default()).unwrap();
//! assert_eq!(report.rows, 1);
//! let paths = sink.paths();
//! assert!(paths[0].starts_with("events/account=123456789012/region=us-east-1/date=2024-03-01/"));
//! ```

pub mod archive;
pub mod compact;
pub mod convert;
pub mod ddl;
pub mod digest;
pub mod digest_table;
pub mod encode;
mod error;
pub mod insights;
mod json;
pub mod log_file;
pub mod lookup;
pub mod object_key;
pub mod partition;
pub mod record;
pub mod schema;
pub mod shaping;
pub mod sink;

pub use error::{DataError, Error, Result, UnknownValue, io_retryable};
pub use json::compact;

/// The cores this process may use, asked of the system once: on Linux the standard library
/// reads the cgroup's CPU quota files for it (a dozen system calls), which per converted file
/// was 2% of a tree's conversion.
pub(crate) fn cores() -> usize {
    static CORES: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *CORES.get_or_init(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
}
