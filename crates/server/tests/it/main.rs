//! Integration tests of parquetrail-server: a real server on a free loopback port over a reference
//! backend, queried by real clients (raw HTTP, `aws-sdk-cloudtrail`, the AWS CLI, boto3).

mod auth;
mod awscli;
mod boto3;
mod metric_data;
mod regions;
mod sdk;
mod support;
mod wire;
