//! Submitting the S3 Batch Operations job (`backfill --via-batch-operations --submit`).
//!
//! The request is built once, as the JSON the AWS CLI takes (`create_job_request` in
//! [`crate::backfill`]), and translated here into aws-sdk-s3control's builders, so what `--submit`
//! sends is exactly what the printed form documents. aws-sdk-s3control is used with its default
//! features off (only the HTTPS client and the tokio runtime), and only by this binary: the Lambda
//! never creates jobs.

use anyhow::{Context, Result, anyhow};
use aws_config::BehaviorVersion;
use aws_sdk_s3control::types::{
    JobManifest, JobManifestFieldName, JobManifestFormat, JobManifestLocation, JobManifestSpec, JobOperation,
    JobReport, JobReportFormat, JobReportScope, LambdaInvokeOperation,
};
use serde_json::Value;

fn text<'a>(v: &'a Value, path: &[&str]) -> Result<&'a str> {
    let mut at = v;
    for p in path {
        at = &at[*p];
    }
    at.as_str().ok_or_else(|| anyhow!("CreateJob request: {} is missing", path.join(".")))
}

/// Sends the CreateJob request; returns the new job's ID.
pub async fn submit(request: &Value) -> Result<String> {
    let lambda = &request["Operation"]["LambdaInvoke"];
    let mut invoke = LambdaInvokeOperation::builder()
        .function_arn(text(lambda, &["FunctionArn"])?)
        .invocation_schema_version(text(lambda, &["InvocationSchemaVersion"])?);
    if let Some(args) = lambda["UserArguments"].as_object() {
        for (k, v) in args {
            invoke = invoke.user_arguments(k, v.as_str().unwrap_or_default());
        }
    }
    let manifest = JobManifest::builder()
        .spec(
            JobManifestSpec::builder()
                .format(JobManifestFormat::S3BatchOperationsCsv20180820)
                .fields(JobManifestFieldName::Bucket)
                .fields(JobManifestFieldName::Key)
                .build()?,
        )
        .location(
            JobManifestLocation::builder()
                .object_arn(text(request, &["Manifest", "Location", "ObjectArn"])?)
                .e_tag(text(request, &["Manifest", "Location", "ETag"])?)
                .build()?,
        )
        .build();
    let report = JobReport::builder()
        .bucket(text(request, &["Report", "Bucket"])?)
        .prefix(text(request, &["Report", "Prefix"])?)
        .format(JobReportFormat::ReportCsv20180820)
        .enabled(true)
        .report_scope(JobReportScope::AllTasks)
        .build();
    let config = aws_config::defaults(BehaviorVersion::latest()).load().await;
    let client = aws_sdk_s3control::Client::new(&config);
    let out = client
        .create_job()
        .account_id(text(request, &["AccountId"])?)
        .confirmation_required(false)
        .operation(JobOperation::builder().lambda_invoke(invoke.build()).build())
        .manifest(manifest)
        .report(report)
        .priority(request["Priority"].as_i64().unwrap_or(10) as i32)
        .role_arn(text(request, &["RoleArn"])?)
        .client_request_token(text(request, &["ClientRequestToken"])?)
        .description(text(request, &["Description"])?)
        .send()
        .await
        .map_err(|e| anyhow!("{}", aws_sdk_s3control::error::DisplayErrorContext(&e)))
        .context("CreateJob")?;
    out.job_id().map(str::to_string).ok_or_else(|| anyhow!("CreateJob answered without a job ID"))
}
