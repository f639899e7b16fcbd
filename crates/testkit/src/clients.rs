//! Real AWS clients for tests of our APIs: the AWS CLI and boto3 (installed by `.ci/run` in the
//! venv of `$PARQUETRAIL_PYTHON`), found or reported: `NOT RUN` on a developer's machine, a failure
//! on CI, where they must be there.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::{not_run, on_ci};

/// Where a needed tool is missing: a failure on CI, `NOT RUN` elsewhere.
fn missing(test: &str, why: &str) {
    assert!(!on_ci(), "{test}: {why}; CI is set, so a missing tool is a failure");
    not_run(test, why);
}

/// The AWS CLI: next to `$PARQUETRAIL_PYTHON` (the CI venv), else `aws` on `PATH`.
pub fn aws_cli(test: &str) -> Option<PathBuf> {
    let binary = match std::env::var_os("PARQUETRAIL_PYTHON") {
        Some(python) => PathBuf::from(python).with_file_name("aws"),
        None => PathBuf::from("aws"),
    };
    tool(test, binary, &["--version"], "the AWS CLI")
}

/// A python that imports boto3: `$PARQUETRAIL_PYTHON`, else `python3`.
pub fn python_with_boto3(test: &str) -> Option<PathBuf> {
    let python = std::env::var_os("PARQUETRAIL_PYTHON").map_or_else(|| PathBuf::from("python3"), PathBuf::from);
    tool(test, python, &["-c", "import boto3"], "python with boto3")
}

/// `binary` if `binary probe…` succeeds; otherwise [`missing`].
fn tool(test: &str, binary: PathBuf, probe: &[&str], what: &str) -> Option<PathBuf> {
    let why = match Command::new(&binary).args(probe).output() {
        Ok(out) if out.status.success() => return Some(binary),
        Ok(out) => format!("{what} ({}) failed: {}", binary.display(), String::from_utf8_lossy(&out.stderr).trim()),
        Err(e) => format!("{what} ({}) cannot run: {e}", binary.display()),
    };
    missing(test, &why);
    None
}

/// Environment for an AWS client child process: these credentials and Region only, no profile,
/// no config file, no instance metadata.
pub fn client_command(binary: &Path, access_key_id: &str, secret: &str, region: &str, home: &Path) -> Command {
    let mut command = Command::new(binary);
    for name in ["AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN", "AWS_CA_BUNDLE", "AWS_ENDPOINT_URL"] {
        command.env_remove(name);
    }
    let nowhere = home.join("absent");
    command
        .env("AWS_ACCESS_KEY_ID", access_key_id)
        .env("AWS_SECRET_ACCESS_KEY", secret)
        .env("AWS_DEFAULT_REGION", region)
        .env("AWS_CONFIG_FILE", &nowhere)
        .env("AWS_SHARED_CREDENTIALS_FILE", &nowhere)
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("AWS_MAX_ATTEMPTS", "1")
        .env("AWS_PAGER", "")
        .env("HOME", home);
    command
}

/// The AWS CLI's exit status when the service answers with an error: 254 from v2 on (documented as
/// "the command was parsed and a request made, but the service returned an error"), 255 in v1,
/// which has no status of its own for it.
pub fn aws_cli_service_error_status(cli: &Path) -> i32 {
    let out = Command::new(cli).arg("--version").output().expect("the AWS CLI runs");
    // v1 printed its version to stderr, later versions to stdout.
    let version = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    match version.trim().strip_prefix("aws-cli/").and_then(|v| v.split('.').next()) {
        Some("1") => 255,
        Some(_) => 254,
        None => panic!("not an AWS CLI version: {version:?}"),
    }
}

/// A python that imports duckdb (an independent reader of the archive's Parquet):
/// `$PARQUETRAIL_PYTHON`, else `python3`.
pub fn python_with_duckdb(test: &str) -> Option<PathBuf> {
    let python = std::env::var_os("PARQUETRAIL_PYTHON").map_or_else(|| PathBuf::from("python3"), PathBuf::from);
    tool(test, python, &["-c", "import duckdb"], "python with duckdb")
}
