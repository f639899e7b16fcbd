//! The built Lambda binary under a local Lambda Runtime API emulator: the real `main`, the real
//! configuration from environment variables, the real S3 client from the standard chain.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use parquetrail_testkit::{Invocation, RuntimeEmulator, lambda_env};
use serde_json::json;

use crate::support::*;

fn spawn(emulator: &RuntimeEmulator, env: Vec<(String, String)>) -> Child {
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

struct Killed(Child);
impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn built_binary_serves_invocations_through_the_runtime_api() {
    let Some(w) = world("built_binary_serves_invocations_through_the_runtime_api").await else { return };
    let emulator = RuntimeEmulator::start();
    let mut env = w.moto.env();
    env.push(("PARQUETRAIL_DESTINATION".into(), format!("s3://{ARCHIVE}/cloudtrail")));
    let child = Killed(spawn(&emulator, env));

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
    drop(child);
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
