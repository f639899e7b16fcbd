//! A real local S3 endpoint for tests: Python moto's `moto_server` as a child process.
//!
//! ```no_run
//! # async fn demo() {
//! use parquetrail_testkit::moto::MotoServer;
//! let Some(moto) = MotoServer::start("my_test") else { return }; // "NOT RUN: ..." already reported
//! moto.create_bucket("trail").await;
//! let s3 = moto.client().await;
//! # let _ = s3;
//! # }
//! ```
//!
//! The endpoint is `http://127.0.0.1:PORT`. Because it is an IP address, the SDK uses path-style addressing even
//! without `force_path_style`, so a child process configured only through [`MotoServer::env`] reaches it too.
//!
//! moto has no way to make S3 fail on purpose, so retry tests put a [`FaultyProxy`] in front of it
//! ([`MotoServer::faulty_endpoint`]).

use std::fs::{self, File};
use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use aws_config::{BehaviorVersion, Region};
use aws_sdk_s3::config::Credentials;
use aws_sdk_s3::error::DisplayErrorContext;

use crate::{not_run, on_ci};

mod proxy;

pub use proxy::{Fault, FaultPlan, FaultRequest, FaultyProxy, Forwarded, RequestCounts, RequestKind};

/// Region of every client and environment built here.
pub const REGION: &str = "us-east-1";
/// Static access key id accepted by moto.
pub const ACCESS_KEY_ID: &str = "test";
/// Static secret access key accepted by moto.
pub const SECRET_ACCESS_KEY: &str = "test";

/// How long [`MotoServer::start`] waits for the server to answer HTTP.
const STARTUP_TIMEOUT: Duration = Duration::from_secs(20);
/// How many times a server that exits during startup (for example because another process grabbed the port between
/// picking and binding it) is started again on a new port.
const START_ATTEMPTS: usize = 3;

/// A running `moto_server` on `127.0.0.1` with a random free port. Dropping it kills the server and waits for it.
///
/// Each server starts with empty state; use one per test.
#[derive(Debug)]
pub struct MotoServer {
    child: Child,
    endpoint: String,
    address: SocketAddr,
    log_dir: PathBuf,
    version: Option<(u32, u32, u32)>,
}

impl MotoServer {
    /// Starts `moto_server` on `127.0.0.1` with a random free port and waits (at most 20 s) until it answers HTTP.
    ///
    /// The binary is, in order: `$PARQUETRAIL_MOTO_SERVER`; `moto_server` next to `$PARQUETRAIL_PYTHON` (the python
    /// of a virtualenv with `moto[server]` installed); `moto_server` on `PATH`.
    ///
    /// If there is none, this panics on CI (see [`on_ci`]); elsewhere it reports `NOT RUN: <test> because <why>` (see
    /// [`not_run`]) and returns `None`, and the test should return early. A binary that is found but does not come up
    /// is always a panic, with the tail of its log.
    pub fn start(test: &str) -> Option<MotoServer> {
        let binary = match find_binary() {
            Ok(binary) => binary,
            Err(why) => {
                if on_ci() {
                    panic!("{test}: {why}; CI is set, so a missing moto_server is a failure");
                }
                not_run(test, &why);
                return None;
            }
        };
        let version = moto_version(&binary);
        let mut failures = Vec::new();
        for _ in 0..START_ATTEMPTS {
            match Self::spawn(&binary) {
                Ok(mut server) => {
                    server.version = version;
                    return Some(server);
                }
                Err(failure) => failures.push(failure),
            }
        }
        panic!("{test}: {} did not start:\n{}", binary.display(), failures.join("\n"));
    }

    /// Starts one server and waits for it; on failure the error carries the log tail.
    fn spawn(binary: &Path) -> Result<MotoServer, String> {
        let port = free_port().map_err(|e| format!("cannot pick a free port: {e}"))?;
        let log_dir = unique_temp_dir().map_err(|e| format!("cannot create a log directory: {e}"))?;
        let log_path = log_dir.join("moto_server.log");
        let mut command = match interpreter(binary) {
            Some(mut python) => {
                let mut command = Command::new(python.remove(0));
                command.args(python).args(["-c", SERIALIZED_CONDITIONAL_PUTS]);
                command
            }
            None => Command::new(binary),
        };
        let spawned = File::create(&log_path).and_then(|log| {
            command
                .args(["-H", "127.0.0.1", "-p", &port.to_string()])
                .stdin(Stdio::null())
                .stdout(log.try_clone()?)
                .stderr(log)
                .spawn()
        });
        let child = match spawned {
            Ok(child) => child,
            Err(e) => {
                let _ = fs::remove_dir_all(&log_dir);
                return Err(format!("cannot run {}: {e}", binary.display()));
            }
        };
        let address = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
        // From here on, dropping `server` kills the child and removes the log directory.
        let mut server = MotoServer { child, endpoint: format!("http://{address}"), address, log_dir, version: None };
        let deadline = Instant::now() + STARTUP_TIMEOUT;
        loop {
            if let Ok(Some(status)) = server.child.try_wait() {
                return Err(format!("it exited with {status} during startup; log:\n{}", server.log_tail()));
            }
            if answers_http(address) {
                return Ok(server);
            }
            if Instant::now() >= deadline {
                return Err(format!(
                    "it did not answer HTTP on {address} within {STARTUP_TIMEOUT:?}; log:\n{}",
                    server.log_tail()
                ));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The moto version, when it could be read from the interpreter behind `moto_server`.
    pub fn version(&self) -> Option<(u32, u32, u32)> {
        self.version
    }

    /// Whether this moto answers multipart uploads the way aws-sdk-s3 expects: releases before
    /// 5.2.5 answer `CompleteMultipartUpload` with an XML root the SDK rejects. When it does not
    /// (a fresh machine may have an older moto on `PATH`), a test that needs it says NOT RUN with
    /// the fix, and fails on CI, which installs the pinned version.
    pub fn supports_multipart(&self, test: &str) -> bool {
        match self.version {
            Some(v) if v < (5, 2, 5) => {
                let why = format!(
                    "moto {}.{}.{} answers CompleteMultipartUpload in a form aws-sdk-s3 rejects; \
                     pip install -r tests/readers/requirements.txt (moto 5.2.5) and set PARQUETRAIL_PYTHON",
                    v.0, v.1, v.2
                );
                assert!(!on_ci(), "{test}: {why}");
                not_run(test, &why);
                false
            }
            _ => true,
        }
    }

    /// The base URL, `http://127.0.0.1:PORT`.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// The socket address the server listens on.
    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// The last lines of the server's log (its stdout and stderr: one line per request), for failure messages.
    pub fn log_tail(&self) -> String {
        let log = fs::read_to_string(self.log_dir.join("moto_server.log")).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(40)..].join("\n")
    }

    /// An S3 client for this server; see [`client_for`].
    pub async fn client(&self) -> aws_sdk_s3::Client {
        client_for(&self.endpoint).await
    }

    /// Environment for a child process (the Lambda binary, the CLI) to reach this server through the SDK's standard
    /// configuration chain; see [`env_for`].
    pub fn env(&self) -> Vec<(String, String)> {
        env_for(&self.endpoint)
    }

    /// Creates a bucket (in `us-east-1`, so without a location constraint). Panics on failure.
    pub async fn create_bucket(&self, name: &str) {
        if let Err(e) = self.client().await.create_bucket().bucket(name).send().await {
            panic!("creating bucket {name} on moto failed: {}", DisplayErrorContext(&e));
        }
    }

    /// Starts a [`FaultyProxy`] in front of this server: requests go through to moto, except those `plan` answers
    /// with an injected error (`503 SlowDown`, `500 InternalError`, `412 PreconditionFailed`) or stalls. Point clients at [`FaultyProxy::endpoint`] (or use
    /// [`FaultyProxy::client`] / [`FaultyProxy::env`]).
    pub fn faulty_endpoint(&self, plan: FaultPlan) -> FaultyProxy {
        FaultyProxy::start(self.address, plan)
    }
}

impl Drop for MotoServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = fs::remove_dir_all(&self.log_dir);
    }
}

/// An S3 client for `endpoint`: path-style addressing, static credentials `test`/`test`, region `us-east-1`, and the
/// SDK's defaults for everything else (including the standard retry policy).
pub async fn client_for(endpoint: &str) -> aws_sdk_s3::Client {
    let shared = aws_config::defaults(BehaviorVersion::latest())
        .endpoint_url(endpoint)
        .region(Region::new(REGION))
        .credentials_provider(Credentials::new(ACCESS_KEY_ID, SECRET_ACCESS_KEY, None, None, "parquetrail-testkit"))
        .load()
        .await;
    let config = aws_sdk_s3::config::Builder::from(&shared).force_path_style(true).build();
    aws_sdk_s3::Client::from_conf(config)
}

/// Environment for a child process to reach `endpoint` through the SDK's standard configuration chain:
/// `AWS_ENDPOINT_URL_S3`, `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_REGION` and
/// `AWS_EC2_METADATA_DISABLED=true`.
///
/// Variables inherited from the test's own environment still apply; remove `AWS_SESSION_TOKEN` and `AWS_PROFILE`
/// from the child's environment if they may be set.
pub fn env_for(endpoint: &str) -> Vec<(String, String)> {
    [
        ("AWS_ENDPOINT_URL_S3", endpoint),
        ("AWS_ACCESS_KEY_ID", ACCESS_KEY_ID),
        ("AWS_SECRET_ACCESS_KEY", SECRET_ACCESS_KEY),
        ("AWS_REGION", REGION),
        ("AWS_EC2_METADATA_DISABLED", "true"),
    ]
    .into_iter()
    .map(|(name, value)| (name.to_owned(), value.to_owned()))
    .collect()
}

/// Reads moto's version from the interpreter behind `moto_server`: the script's shebang names its
/// python; a shell shim (pyenv) defers to `python3` on `PATH`.
fn moto_version(binary: &Path) -> Option<(u32, u32, u32)> {
    let mut command = interpreter(binary).unwrap_or_else(|| vec!["python3".to_owned()]);
    let program = command.remove(0);
    let out = Command::new(program)
        .args(command)
        .args(["-c", "import moto; print(moto.__version__)"])
        .stderr(Stdio::null())
        .output()
        .ok()?;
    let text = String::from_utf8(out.stdout).ok()?;
    let mut parts =
        text.trim().split('.').map(|p| p.chars().take_while(char::is_ascii_digit).collect::<String>().parse::<u32>());
    Some((parts.next()?.ok()?, parts.next()?.ok()?, parts.next().and_then(Result::ok).unwrap_or(0)))
}

/// The Python command line behind a `moto_server` script (from its `#!` line), if it is one.
fn interpreter(binary: &Path) -> Option<Vec<String>> {
    let first = fs::read_to_string(binary).ok()?.lines().next()?.to_string();
    match first.strip_prefix("#!") {
        Some(interp) if interp.contains("python") => Some(interp.split_whitespace().map(str::to_owned).collect()),
        _ => None,
    }
}

/// moto evaluates `If-Match` / `If-None-Match` on PUT without holding a lock, so two racing
/// conditional writes of one key can both succeed. S3 evaluates them atomically, and the archive's
/// manifests rely on that (they are compare-and-swap registers), so the harness starts moto with
/// conditional PUTs serialized: tests then see S3's semantics, not a race of the emulator.
const SERIALIZED_CONDITIONAL_PUTS: &str = "\
import sys, threading
from moto.s3.responses import S3Response
_lock = threading.Lock()
_put = S3Response.put_object
def put_object(self):
    if 'If-Match' in self.headers or 'If-None-Match' in self.headers:
        with _lock:
            return _put(self)
    return _put(self)
S3Response.put_object = put_object
from moto.server import main
main(sys.argv[1:])
";

/// Finds the `moto_server` executable, or explains why there is none.
fn find_binary() -> Result<PathBuf, String> {
    let var = |name: &str| std::env::var_os(name).filter(|v| !v.is_empty());
    if let Some(explicit) = var("PARQUETRAIL_MOTO_SERVER") {
        let explicit = PathBuf::from(explicit);
        let found = if explicit.components().count() > 1 { Some(explicit.clone()) } else { search_path(&explicit) };
        return match found {
            Some(path) if is_executable(&path) => Ok(path),
            _ => Err(format!("PARQUETRAIL_MOTO_SERVER={} is not an executable file", explicit.display())),
        };
    }
    let mut looked = Vec::new();
    if let Some(python) = var("PARQUETRAIL_PYTHON") {
        let dir = Path::new(&python).parent().unwrap_or(Path::new("."));
        for name in binary_names() {
            let candidate = dir.join(name);
            if is_executable(&candidate) {
                return Ok(candidate);
            }
        }
        looked.push("next to PARQUETRAIL_PYTHON".to_owned());
    }
    if let Some(path) = search_path(Path::new("moto_server")) {
        return Ok(path);
    }
    looked.push("on PATH".to_owned());
    Err(format!(
        "moto_server was not found ({}); install it with `pip install \"moto[server]\"`, or set \
         PARQUETRAIL_MOTO_SERVER to the executable or PARQUETRAIL_PYTHON to a python that has it",
        looked.join(", ")
    ))
}

fn binary_names() -> &'static [&'static str] {
    if cfg!(windows) { &["moto_server.exe", "moto_server"] } else { &["moto_server"] }
}

/// Looks `name` up in the directories of `PATH`.
fn search_path(name: &Path) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).filter(|dir| !dir.as_os_str().is_empty()).find_map(|dir| {
        let mut names = vec![name.to_path_buf()];
        if cfg!(windows) && name.extension().is_none() {
            names.push(name.with_extension("exe"));
        }
        names.into_iter().map(|n| dir.join(n)).find(|candidate| is_executable(candidate))
    })
}

fn is_executable(path: &Path) -> bool {
    let Ok(meta) = fs::metadata(path) else { return false };
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        meta.is_file() && meta.permissions().mode() & 0o111 != 0
    }
    #[cfg(not(unix))]
    {
        meta.is_file()
    }
}

/// A port that was free a moment ago: bind port 0, read the port, release it.
fn free_port() -> std::io::Result<u16> {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?;
    Ok(listener.local_addr()?.port())
}

/// Whether something on `address` accepts a connection and answers `GET /` with an HTTP status line.
fn answers_http(address: SocketAddr) -> bool {
    let attempt = || -> std::io::Result<bool> {
        let mut stream = TcpStream::connect_timeout(&address, Duration::from_millis(500))?;
        stream.set_read_timeout(Some(Duration::from_secs(2)))?;
        stream.set_write_timeout(Some(Duration::from_secs(2)))?;
        write!(stream, "GET / HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\r\n")?;
        let mut start = [0u8; 8];
        stream.read_exact(&mut start)?;
        Ok(start.starts_with(b"HTTP/1."))
    };
    attempt().unwrap_or(false)
}

/// A fresh directory under the system temporary directory (removed by [`MotoServer`]'s `Drop`).
fn unique_temp_dir() -> std::io::Result<PathBuf> {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.subsec_nanos());
    let dir = std::env::temp_dir().join(format!(
        "parquetrail-moto-{}-{}-{nanos}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    ));
    fs::create_dir_all(&dir)?;
    Ok(dir)
}

#[cfg(test)]
mod tests;
