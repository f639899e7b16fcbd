//! The ingest pipeline against a real local S3 endpoint (moto_server) through aws-sdk-s3.

mod compaction;
mod s3;
mod scheduler;
mod timeouts;
