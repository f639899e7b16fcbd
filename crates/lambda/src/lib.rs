//! # parquetrail-lambda
//!
//! The AWS Lambda (arm64, `provided.al2023`) that converts every CloudTrail object S3 announces —
//! directly, through SNS or SQS (with partial batch failure), EventBridge, CloudTrail's own SNS
//! notice, or S3 Batch Operations — into the Parquet archive. `main` is runtime glue only: it
//! parses [`config::Config`] and builds the S3 client once, then serves [`handler::handle`].

pub mod config;
pub mod handler;
pub mod metrics;
