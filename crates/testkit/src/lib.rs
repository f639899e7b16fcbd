//! Test harnesses for parquetrail's integration tests (a dev-dependency only).
//!
//! * [`moto`]: a real local S3 endpoint ([`moto::MotoServer`], backed by Python moto's `moto_server`), SDK clients
//!   and child-process environments for it, and a fault-injecting proxy ([`moto::FaultyProxy`]) that answers chosen
//!   requests with `503 SlowDown` / `500 InternalError` to exercise retries.
//! * [`runtime`]: a local Lambda Runtime API emulator ([`runtime::RuntimeEmulator`]) so tests can run the *built*
//!   Lambda binary and feed it invocations.
//! * [`aws_json`]: a fixed-answer AWS JSON 1.1 endpoint ([`AwsJsonEndpoint`]) for services without a local
//!   emulator (CloudTrail's `ListPublicKeys`).
//! * [`on_ci`] and [`not_run`]: how a test that lacks an external tool skips itself locally but fails on CI.
//!
//! Nothing here talks to real AWS.

use std::io::Write;

pub mod aws_json;
pub mod clients;
pub mod moto;
pub mod runtime;

mod http;

pub use aws_json::{AwsJsonEndpoint, AwsJsonRequest};
pub use moto::{Fault, FaultPlan, FaultyProxy, MotoServer};
pub use runtime::{Invocation, RuntimeEmulator, lambda_env};

/// Whether the tests run on CI: the `CI` environment variable is set, non-empty, and not `false` or `0`.
///
/// On CI a missing tool is a failure, never a silent skip.
pub fn on_ci() -> bool {
    match std::env::var("CI") {
        Ok(value) => {
            let value = value.trim();
            !value.is_empty() && value != "0" && !value.eq_ignore_ascii_case("false")
        }
        Err(_) => false,
    }
}

/// Incompressible text for tests that need outputs of a known size (a full disk, a multipart
/// upload): a xorshift stream over letters and digits, the same for the same seed.
#[derive(Debug, Clone)]
pub struct Noise(u64);

impl Noise {
    pub fn new(seed: u64) -> Self {
        Noise(0x9E37_79B9_7F4A_7C15u64 ^ seed)
    }

    /// The next `len` characters.
    pub fn text(&mut self, len: usize) -> String {
        (0..len)
            .map(|_| {
                self.0 ^= self.0 << 13;
                self.0 ^= self.0 >> 7;
                self.0 ^= self.0 << 17;
                b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"[(self.0 % 62) as usize] as char
            })
            .collect()
    }
}

/// Reports that `test` did not run, as `NOT RUN: <test> because <why>` on its own line.
///
/// It is written straight to the process's standard error with [`std::io::stderr`], bypassing the test harness's
/// output capture (which swallows `eprintln!` of passing tests), so a skipped test is visible in `cargo test` output.
pub fn not_run(test: &str, why: &str) {
    let line = format!("NOT RUN: {test} because {why}\n");
    let mut stderr = std::io::stderr().lock();
    // Nothing sensible to do if stderr is gone.
    let _ = stderr.write_all(line.as_bytes());
    let _ = stderr.flush();
}

/// The shared corpus of real-format CloudTrail deliveries (`../shared/data/cloudtrail` beside the
/// repository, or `PARQUETRAIL_CORPUS`), if present. When it is absent: a failure on CI, otherwise
/// [`not_run`] and `None`.
pub fn corpus(test: &str) -> Option<std::path::PathBuf> {
    let dir = std::env::var_os("PARQUETRAIL_CORPUS")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data/cloudtrail"));
    if dir.join("AWSLogs").is_dir() {
        return Some(dir);
    }
    let why = format!("the shared corpus is not at {} (set PARQUETRAIL_CORPUS to run it)", dir.display());
    assert!(!on_ci(), "{test}: {why}");
    not_run(test, &why);
    None
}

/// The `.json.gz` files under `dir`, sorted, each with its key: its path relative to `dir`,
/// `/`-separated (so `AWSLogs/…` for the corpus root).
pub fn gz_files(dir: &std::path::Path) -> Vec<(String, std::path::PathBuf)> {
    fn walk(root: &std::path::Path, dir: &std::path::Path, out: &mut Vec<(String, std::path::PathBuf)>) {
        let mut entries: Vec<_> =
            std::fs::read_dir(dir).expect("readable corpus").map(|e| e.expect("entry").path()).collect();
        entries.sort();
        for p in entries {
            if p.is_dir() {
                walk(root, &p, out);
            } else if p.to_string_lossy().ends_with(".json.gz") {
                let rel = p.strip_prefix(root).expect("under root").to_string_lossy().replace('\\', "/");
                out.push((rel, p));
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out
}
