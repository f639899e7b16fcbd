//! # parquetrail-ingest
//!
//! The pipeline of `parquetrail-core` over real storage: objects are read from S3 (aws-sdk-s3,
//! streamed) or local disk, converted on a blocking thread by the pure core, and written back
//! through a sink that streams multipart uploads. This crate is async and knows AWS; the core
//! knows neither.
//!
//! - [`error`]: the crate's one error type, whose [`Error::retryable`] is the verdict the Lambda,
//!   the CLI and backfill reports act on.
//! - [`storage`]: the one small [`storage::Storage`] trait, with S3 and local-disk implementations.
//! - [`location`]: `s3://bucket/prefix` or a local path.
//! - [`notifications`]: every way S3 announces an object (S3 events, SNS, SQS, EventBridge,
//!   CloudTrail's own SNS notice, S3 Batch Operations) → object references.
//! - [`compaction`]: a partition's small files into few large ones, swapped in through its manifest.
//! - [`manifest`]: per-partition manifests (what readers see), swapped with conditional writes.
//! - [`pipeline`]: one object through the core, with retries and a verdict the Lambda can act on
//!   (retryable or permanent).
//! - [`listing`], [`ledger`], [`backfill`]: converting a trail's history for a date range —
//!   delimiter listing of only the day prefixes in range, bounded concurrency, and a ledger in
//!   the archive that makes reruns resume where a crash or Ctrl-C left off.
//! - [`insights`]: the `metrics` dataset kept up to date, the Insights model run over it, and
//!   the computed Insight records written to the `insights` dataset.
//! - [`reader`]: lookups over an archive: partitions through the manifests, pruned by account,
//!   region, date and row-group statistics, newest first, with request and byte counts.
//! - [`verify`]: CloudTrail's digest chains walked over the trail bucket, every signed log file
//!   hashed, and the archive's ledger reconciled with what was signed.

pub mod backfill;
pub mod compaction;
pub mod error;
pub mod idle;
pub mod insights;
pub mod ledger;
pub mod listing;
pub mod local;
pub mod location;
pub mod manifest;
pub mod notifications;
pub mod pipeline;
pub mod reader;
pub mod s3;
pub mod storage;
pub mod verify;

pub use error::{Error, Result};
pub use location::Location;
pub use pipeline::{IngestError, Outcome, Pipeline};
pub use storage::{ListPage, ObjectMeta, Opened, Storage, StorageError};
