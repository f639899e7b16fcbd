//! The built Lambda binary under a local Lambda Runtime API emulator: the real `main`, the real
//! configuration from environment variables, the real S3 client from the standard chain.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use parquetrail_testkit::{Invocation, RuntimeEmulator, lambda_env};
use serde_json::json;

use crate::support::*;

pub(crate) fn spawn(emulator: &RuntimeEmulator, env: Vec<(String, String)>) -> Child {
    Command::new(env!("CARGO_BIN_EXE_parquetrail-lambda"))
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("AWS_LAMBDA_RUNTIME_API", emulator.address())
        .envs(lambda_env("parquetrail"))
        .envs(env)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// Kills the function when the test ends, however it ends.
pub(crate) struct Killed(pub(crate) Option<Child>);
impl Killed {
    /// Stops the function and returns what it printed.
    pub(crate) fn output(mut self) -> String {
        let mut child = self.0.take().unwrap();
        let _ = child.kill();
        let out = child.wait_with_output().unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}
impl Drop for Killed {
    fn drop(&mut self) {
        if let Some(mut child) = self.0.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn built_binary_serves_invocations_through_the_runtime_api() {
    let Some(w) = world("built_binary_serves_invocations_through_the_runtime_api").await else { return };
    let emulator = RuntimeEmulator::start();
    let mut env = w.moto.env();
    env.push(("PARQUETRAIL_DESTINATION".into(), format!("s3://{ARCHIVE}/cloudtrail")));
    let child = Killed(Some(spawn(&emulator, env)));

    let first = emulator.invoke(s3_event(TRAIL, &[keys::GOOD]));
    let answer =
        tokio::task::spawn_blocking(move || emulator.wait(&first, Duration::from_secs(60)).map(|a| (a, emulator)))
            .await
            .unwrap();
    let (answer, emulator) = answer.unwrap();
    let Invocation::Response(body) = answer else { panic!("function error: {answer:?}") };
    assert_eq!(body["objects"][0]["rows"], 20, "{body}");

    let second =
        emulator.invoke(sqs_event(&[("ok", s3_event(TRAIL, &[keys::SECOND]).to_string()), ("bad", "nope".into())]));
    let (answer, _emulator) =
        tokio::task::spawn_blocking(move || emulator.wait(&second, Duration::from_secs(60)).map(|a| (a, emulator)))
            .await
            .unwrap()
            .unwrap();
    let Invocation::Response(body) = answer else { panic!("function error: {answer:?}") };
    assert_eq!(body, json!({"batchItemFailures": [{"itemIdentifier": "bad"}]}));
    assert_eq!(w.rows().await.len(), 27);

    // What the function printed: structured JSON logs with the object's facts, and one CloudWatch
    // embedded-metrics line per invocation.
    let stdout = child.output();
    let lines: Vec<serde_json::Value> = stdout.lines().filter_map(|l| serde_json::from_str(l).ok()).collect();
    let converted = lines
        .iter()
        .find(|l| l["message"] == "converted" && l["key"] == keys::GOOD)
        .unwrap_or_else(|| panic!("no JSON log line for the converted object in:\n{stdout}"));
    assert_eq!(converted["bucket"], TRAIL);
    assert_eq!((converted["records"].as_u64(), converted["rows"].as_u64()), (Some(21), Some(20)));
    for field in ["bytes", "partitions", "duration_ms"] {
        assert!(converted[field].is_u64(), "{field} missing: {converted}");
    }
    let emf: Vec<&serde_json::Value> = lines.iter().filter(|l| l["_aws"]["CloudWatchMetrics"].is_array()).collect();
    assert_eq!(emf.len(), 2, "one EMF line per invocation:\n{stdout}");
    assert_eq!(
        (emf[0]["RecordsIn"].as_u64(), emf[0]["RowsOut"].as_u64(), emf[0]["RecordsQuarantined"].as_u64()),
        (Some(21), Some(20), Some(1))
    );
    assert_eq!(emf[0]["FunctionName"], "parquetrail");
}

#[test]
fn bad_configuration_fails_the_start_naming_the_variable() {
    let emulator = RuntimeEmulator::start();
    let env = vec![
        ("PARQUETRAIL_DESTINATION".to_string(), "s3://archive-bucket/x".to_string()),
        ("PARQUETRAIL_COMPRESSION".to_string(), "gzip".to_string()),
    ];
    let child = spawn(&emulator, env);
    let out = child.wait_with_output().unwrap();
    assert!(!out.status.success());
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(text.contains("PARQUETRAIL_COMPRESSION"), "{text}");
}
