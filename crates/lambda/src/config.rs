//! The function's configuration: environment variables parsed once, at cold start, into one typed
//! struct. A bad value fails the start with a message naming the variable; an unknown
//! `PARQUETRAIL_*` variable is rejected too (a typo must not silently fall back to a default).

use std::collections::BTreeMap;

use parquetrail_core::UnknownValue;
use parquetrail_core::convert::{EventFilter, Layout, Options};
use parquetrail_core::encode::WriterSettings;
use parquetrail_ingest::Location;
use parquetrail_ingest::s3::{S3Limits, S3Settings, parse_bool};

/// A configuration error, naming the variable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{variable}: {message}")]
pub struct ConfigError {
    pub variable: String,
    pub message: String,
}

fn err(variable: &str, message: impl std::fmt::Display) -> ConfigError {
    ConfigError { variable: variable.to_string(), message: message.to_string() }
}

/// Every variable the function reads, with its meaning (also the `--help` of the deployment).
pub const VARIABLES: &[(&str, &str)] = &[
    ("PARQUETRAIL_DESTINATION", "required: where the archive goes, s3://bucket[/prefix]"),
    ("PARQUETRAIL_QUARANTINE_PREFIX", "prefix under the destination for quarantine objects (default: quarantine)"),
    ("PARQUETRAIL_COMPRESSION", "Parquet codec: zstd, zstd:LEVEL, snappy or none (default: zstd)"),
    ("PARQUETRAIL_ROW_GROUP_ROWS", "rows per Parquet row group (default: 32768)"),
    (
        "PARQUETRAIL_EVENT_CATEGORIES",
        "keep only these categories: management,data,insight,networkactivity (default: all)",
    ),
    ("PARQUETRAIL_READ_WRITE", "all, readonly or writeonly (default: all)"),
    (
        "PARQUETRAIL_EXCLUDE_EVENT_SOURCES",
        "drop events from these sources, e.g. kms.amazonaws.com,rdsdata.amazonaws.com",
    ),
    (
        "PARQUETRAIL_SHAPING",
        "opt-in: built-in rule sets shaping what is archived, noise and/or secrets (default: none, lossless; docs/SHAPING.md)",
    ),
    ("PARQUETRAIL_SHAPING_RULES", "opt-in: a rule set of your own, as JSON (docs/SHAPING.md)"),
    ("PARQUETRAIL_CONCURRENCY", "objects converted at once per invocation (default: 4)"),
    (
        "PARQUETRAIL_S3_PATH_STYLE",
        "true/false: path-style S3 addressing (default: on when AWS_ENDPOINT_URL[_S3] is set)",
    ),
    ("PARQUETRAIL_S3_CONNECT_TIMEOUT", "S3: time to establish a connection, e.g. 3s (default: 3s)"),
    (
        "PARQUETRAIL_S3_READ_TIMEOUT",
        "S3: longest wait for the next byte: the first of an answer, or the next of a downloading body (default: 20s)",
    ),
    ("PARQUETRAIL_S3_ATTEMPT_TIMEOUT", "S3: one attempt of a request, up to its answer's headers (default: 30s)"),
    (
        "PARQUETRAIL_S3_OPERATION_TIMEOUT",
        "S3: one request, all attempts and backoffs included (default: 60s); keep it well under the function timeout",
    ),
    ("PARQUETRAIL_S3_MAX_ATTEMPTS", "S3: attempts per request, 1 to 10 (default: 5)"),
    (
        "PARQUETRAIL_COMPACT_TARGET_SIZE",
        "compaction: size of each compacted file, e.g. 64MiB or 1GiB (default: 128MiB)",
    ),
    (
        "PARQUETRAIL_COMPACT_MEMORY",
        "compaction: memory for sorting one partition's rows, e.g. 256MiB (default: 256MiB); keep it times \
         PARQUETRAIL_COMPACT_CONCURRENCY under half the function's memory",
    ),
    ("PARQUETRAIL_COMPACT_CONCURRENCY", "compaction: partitions compacted at once per invocation (default: 1)"),
    ("PARQUETRAIL_METRICS_NAMESPACE", "CloudWatch namespace of the embedded metrics (default: parquetrail)"),
    ("PARQUETRAIL_LOG_FORMAT", "json or text (default: json)"),
];

/// The function's configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// `PARQUETRAIL_DESTINATION`.
    pub destination: Location,
    /// Conversion options: writer settings, dataset layout (quarantine prefix), event filter.
    pub options: Options,
    /// `PARQUETRAIL_CONCURRENCY`.
    pub concurrency: usize,
    /// How to reach S3 (`PARQUETRAIL_S3_PATH_STYLE`; endpoint and credentials from the standard chain),
    /// and its timeouts and attempts (`PARQUETRAIL_S3_*_TIMEOUT`, `PARQUETRAIL_S3_MAX_ATTEMPTS`; defaults
    /// of [`S3Limits::lambda`]).
    pub s3: S3Settings,
    /// How a scheduled compaction run compacts (the writer settings are those of `options`).
    pub compaction: CompactionConfig,
    /// `PARQUETRAIL_METRICS_NAMESPACE`.
    pub metrics_namespace: String,
    /// `PARQUETRAIL_LOG_FORMAT` is `json`.
    pub json_logs: bool,
}

/// How the function compacts, when a schedule asks it to (`{"parquetrail":"compact"}`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompactionConfig {
    /// `PARQUETRAIL_COMPACT_TARGET_SIZE`: bytes per compacted file.
    pub target_bytes: u64,
    /// `PARQUETRAIL_COMPACT_MEMORY`: bytes of decoded rows held to sort one partition.
    pub memory_budget: usize,
    /// `PARQUETRAIL_COMPACT_CONCURRENCY`: partitions compacted at once. One by default: a
    /// partition may hold up to `memory_budget` of rows, and the function's memory is small.
    pub concurrency: usize,
}

impl Default for CompactionConfig {
    fn default() -> Self {
        CompactionConfig { target_bytes: 128 << 20, memory_budget: 256 << 20, concurrency: 1 }
    }
}

pub use parquetrail_ingest::compaction::{parse_duration, parse_size};

fn list(value: &str) -> impl Iterator<Item = &str> {
    value.split(',').map(str::trim).filter(|s| !s.is_empty())
}

impl Config {
    /// Reads the process environment.
    pub fn from_env() -> Result<Config, ConfigError> {
        Config::from_vars(std::env::vars())
    }

    /// Parses the given variables (only `PARQUETRAIL_*` ones are looked at).
    pub fn from_vars(vars: impl IntoIterator<Item = (String, String)>) -> Result<Config, ConfigError> {
        let vars: BTreeMap<String, String> = vars.into_iter().filter(|(k, _)| k.starts_with("PARQUETRAIL_")).collect();
        for name in vars.keys() {
            if !VARIABLES.iter().any(|(known, _)| known == name) {
                let known: Vec<&str> = VARIABLES.iter().map(|(k, _)| *k).collect();
                return Err(err(name, format!("unknown variable (known: {})", known.join(", "))));
            }
        }
        let get = |name: &str| vars.get(name).map(|v| v.trim()).filter(|v| !v.is_empty());

        let destination = get("PARQUETRAIL_DESTINATION")
            .ok_or_else(|| err("PARQUETRAIL_DESTINATION", "is required, e.g. s3://my-archive-bucket/cloudtrail"))?;
        let destination = Location::parse(destination).map_err(|e| err("PARQUETRAIL_DESTINATION", e))?;
        if !destination.is_s3() {
            return Err(err("PARQUETRAIL_DESTINATION", "must be an s3:// URL in the Lambda"));
        }

        let mut writer = WriterSettings::default();
        if let Some(v) = get("PARQUETRAIL_COMPRESSION") {
            writer.codec = v.parse().map_err(|m: UnknownValue| err("PARQUETRAIL_COMPRESSION", m))?;
        }
        if let Some(v) = get("PARQUETRAIL_ROW_GROUP_ROWS") {
            writer.row_group_rows = v.parse::<usize>().ok().filter(|n| *n > 0).ok_or_else(|| {
                err("PARQUETRAIL_ROW_GROUP_ROWS", format!("expected a positive whole number, got {v:?}"))
            })?;
        }

        let mut layout = Layout::default();
        if let Some(v) = get("PARQUETRAIL_QUARANTINE_PREFIX") {
            let v = v.trim_matches('/');
            if v.is_empty() || v.split('/').any(|s| s.is_empty() || s == "." || s == "..") {
                return Err(err("PARQUETRAIL_QUARANTINE_PREFIX", format!("not a usable prefix: {v:?}")));
            }
            if v == layout.events || v == layout.insights || v == layout.digests {
                return Err(err("PARQUETRAIL_QUARANTINE_PREFIX", format!("{v:?} is a dataset's own prefix")));
            }
            layout.quarantine = v.to_string();
        }

        let mut filter = EventFilter::default();
        if let Some(v) = get("PARQUETRAIL_EVENT_CATEGORIES") {
            for c in list(v) {
                filter.categories.insert(c.parse().map_err(|m: UnknownValue| err("PARQUETRAIL_EVENT_CATEGORIES", m))?);
            }
        }
        if let Some(v) = get("PARQUETRAIL_READ_WRITE") {
            filter.read_write = v.parse().map_err(|m: UnknownValue| err("PARQUETRAIL_READ_WRITE", m))?;
        }
        if let Some(v) = get("PARQUETRAIL_EXCLUDE_EVENT_SOURCES") {
            for s in list(v) {
                if !s.contains('.') {
                    return Err(err(
                        "PARQUETRAIL_EXCLUDE_EVENT_SOURCES",
                        format!("{s:?} is not an event source like kms.amazonaws.com"),
                    ));
                }
                filter.exclude_sources.insert(s.to_string());
            }
        }

        let mut shaping = parquetrail_core::shaping::Shaping::default();
        if let Some(v) = get("PARQUETRAIL_SHAPING") {
            for name in list(v) {
                let set =
                    parquetrail_core::shaping::Shaping::builtin(name).map_err(|e| err("PARQUETRAIL_SHAPING", e))?;
                shaping.sets.push(set);
            }
        }
        if let Some(v) = get("PARQUETRAIL_SHAPING_RULES") {
            let set =
                parquetrail_core::shaping::Shaping::parse_set(v).map_err(|e| err("PARQUETRAIL_SHAPING_RULES", e))?;
            if shaping.sets.iter().any(|s| s.name == set.name) {
                return Err(err(
                    "PARQUETRAIL_SHAPING_RULES",
                    format!("a built-in set is already named {:?}", set.name),
                ));
            }
            shaping.sets.push(set);
        }

        let concurrency = match get("PARQUETRAIL_CONCURRENCY") {
            None => 4,
            Some(v) => v
                .parse::<usize>()
                .ok()
                .filter(|n| (1..=64).contains(n))
                .ok_or_else(|| err("PARQUETRAIL_CONCURRENCY", format!("expected 1 to 64, got {v:?}")))?,
        };
        let mut limits = S3Limits::lambda();
        for (name, field) in [
            ("PARQUETRAIL_S3_CONNECT_TIMEOUT", &mut limits.connect),
            ("PARQUETRAIL_S3_READ_TIMEOUT", &mut limits.read),
            ("PARQUETRAIL_S3_ATTEMPT_TIMEOUT", &mut limits.attempt),
            ("PARQUETRAIL_S3_OPERATION_TIMEOUT", &mut limits.operation),
        ] {
            if let Some(v) = get(name) {
                *field = parse_duration(v)
                    .ok()
                    .filter(|d| (1..=900).contains(&d.as_secs()))
                    .ok_or_else(|| err(name, format!("expected 1s to 15m, got {v:?}")))?;
            }
        }
        if let Some(v) = get("PARQUETRAIL_S3_MAX_ATTEMPTS") {
            limits.max_attempts = v
                .parse::<u32>()
                .ok()
                .filter(|n| (1..=10).contains(n))
                .ok_or_else(|| err("PARQUETRAIL_S3_MAX_ATTEMPTS", format!("expected 1 to 10, got {v:?}")))?;
        }
        if limits.attempt > limits.operation {
            return Err(err(
                "PARQUETRAIL_S3_ATTEMPT_TIMEOUT",
                format!("{:?} is longer than the operation timeout ({:?})", limits.attempt, limits.operation),
            ));
        }
        let s3 =
            S3Settings {
                force_path_style: match get("PARQUETRAIL_S3_PATH_STYLE") {
                    None => None,
                    Some(v) => Some(parse_bool(v).ok_or_else(|| {
                        err("PARQUETRAIL_S3_PATH_STYLE", format!("expected true or false, got {v:?}"))
                    })?),
                },
                limits,
                ..S3Settings::default()
            };
        let mut compaction = CompactionConfig::default();
        if let Some(v) = get("PARQUETRAIL_COMPACT_TARGET_SIZE") {
            compaction.target_bytes = parse_size(v).map_err(|m| err("PARQUETRAIL_COMPACT_TARGET_SIZE", m))?;
        }
        if let Some(v) = get("PARQUETRAIL_COMPACT_MEMORY") {
            let bytes = parse_size(v).map_err(|m| err("PARQUETRAIL_COMPACT_MEMORY", m))?;
            compaction.memory_budget = usize::try_from(bytes).unwrap_or(usize::MAX);
        }
        if let Some(v) = get("PARQUETRAIL_COMPACT_CONCURRENCY") {
            compaction.concurrency = v
                .parse::<usize>()
                .ok()
                .filter(|n| (1..=16).contains(n))
                .ok_or_else(|| err("PARQUETRAIL_COMPACT_CONCURRENCY", format!("expected 1 to 16, got {v:?}")))?;
        }
        let json_logs = match get("PARQUETRAIL_LOG_FORMAT") {
            None | Some("json") => true,
            Some("text") => false,
            Some(v) => return Err(err("PARQUETRAIL_LOG_FORMAT", format!("expected json or text, got {v:?}"))),
        };
        Ok(Config {
            destination,
            options: Options { writer, layout, filter, shaping, ..Options::default() },
            concurrency,
            s3,
            compaction,
            metrics_namespace: get("PARQUETRAIL_METRICS_NAMESPACE").unwrap_or("parquetrail").to_string(),
            json_logs,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use parquetrail_core::convert::{Category, ReadWrite};
    use parquetrail_core::encode::Codec;
    use std::time::Duration;

    fn vars(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn parses_a_full_configuration() {
        let c = Config::from_vars(vars(&[
            ("PARQUETRAIL_DESTINATION", "s3://archive-bucket/cloudtrail/"),
            ("PARQUETRAIL_QUARANTINE_PREFIX", "/bad-input/"),
            ("PARQUETRAIL_COMPRESSION", "zstd:6"),
            ("PARQUETRAIL_ROW_GROUP_ROWS", "65536"),
            ("PARQUETRAIL_EVENT_CATEGORIES", "management, data"),
            ("PARQUETRAIL_READ_WRITE", "writeonly"),
            ("PARQUETRAIL_EXCLUDE_EVENT_SOURCES", "kms.amazonaws.com,rdsdata.amazonaws.com"),
            ("PARQUETRAIL_CONCURRENCY", "8"),
            ("PARQUETRAIL_S3_PATH_STYLE", "true"),
            ("PARQUETRAIL_COMPACT_TARGET_SIZE", "64MiB"),
            ("PARQUETRAIL_COMPACT_MEMORY", "1GiB"),
            ("PARQUETRAIL_COMPACT_CONCURRENCY", "2"),
            ("PARQUETRAIL_S3_CONNECT_TIMEOUT", "2s"),
            ("PARQUETRAIL_S3_READ_TIMEOUT", "15s"),
            ("PARQUETRAIL_S3_ATTEMPT_TIMEOUT", "25s"),
            ("PARQUETRAIL_S3_OPERATION_TIMEOUT", "1m30s"),
            ("PARQUETRAIL_S3_MAX_ATTEMPTS", "3"),
            ("HOME", "/ignored"),
        ]))
        .unwrap();
        assert_eq!(c.destination, Location::S3 { bucket: "archive-bucket".into(), prefix: "cloudtrail".into() });
        assert_eq!(c.options.layout.quarantine, "bad-input");
        assert_eq!(c.options.writer.codec, Codec::Zstd(6));
        assert_eq!(c.options.writer.row_group_rows, 65536);
        assert_eq!(c.options.filter.categories, [Category::Management, Category::Data].into());
        assert_eq!(c.options.filter.read_write, ReadWrite::WriteOnly);
        assert_eq!(c.options.filter.exclude_sources.len(), 2);
        assert_eq!((c.concurrency, c.s3.force_path_style, c.json_logs), (8, Some(true), true));
        assert_eq!(c.compaction, CompactionConfig { target_bytes: 64 << 20, memory_budget: 1 << 30, concurrency: 2 });
        let secs = Duration::from_secs;
        assert_eq!(
            c.s3.limits,
            S3Limits { connect: secs(2), read: secs(15), attempt: secs(25), operation: secs(90), max_attempts: 3 }
        );
    }

    #[test]
    fn shaping_sets_come_from_the_built_ins_and_the_users_json() {
        let c = Config::from_vars(vars(&[
            ("PARQUETRAIL_DESTINATION", "s3://archive-bucket"),
            ("PARQUETRAIL_SHAPING", "secrets, noise"),
            ("PARQUETRAIL_SHAPING_RULES", r#"{"name":"ours","version":3,"rules":[{"id":"health","action":"drop","match":{"eventSource":["health.amazonaws.com"]}}]}"#),
        ]))
        .unwrap();
        assert_eq!(c.options.shaping.provenance(), ["secrets@1", "noise@1", "ours@3"]);
    }

    #[test]
    fn defaults_with_only_the_destination() {
        let c = Config::from_vars(vars(&[("PARQUETRAIL_DESTINATION", "s3://archive-bucket")])).unwrap();
        assert_eq!(c.options.layout, Layout::default());
        assert!(c.options.filter.keeps_all());
        assert!(c.options.shaping.is_empty(), "lossless unless asked");
        assert_eq!(c.options.writer, WriterSettings::default());
        assert_eq!(c.concurrency, 4);
        assert_eq!(c.compaction, CompactionConfig::default());
        assert_eq!(c.s3.limits, S3Limits::lambda());
    }

    #[test]
    fn bad_values_name_their_variable() {
        let base = ("PARQUETRAIL_DESTINATION", "s3://archive-bucket");
        let cases = [
            (vec![], "PARQUETRAIL_DESTINATION"),
            (vec![("PARQUETRAIL_DESTINATION", "/local/path")], "PARQUETRAIL_DESTINATION"),
            (vec![base, ("PARQUETRAIL_SHAPING", "noise,quiet")], "PARQUETRAIL_SHAPING"),
            (vec![base, ("PARQUETRAIL_SHAPING_RULES", "{\"name\":\"x\"}")], "PARQUETRAIL_SHAPING_RULES"),
            (
                vec![
                    base,
                    ("PARQUETRAIL_SHAPING", "noise"),
                    ("PARQUETRAIL_SHAPING_RULES", r#"{"name":"noise","version":9,"rules":[]}"#),
                ],
                "PARQUETRAIL_SHAPING_RULES",
            ),
            (vec![("PARQUETRAIL_DESTINATION", "s3://")], "PARQUETRAIL_DESTINATION"),
            (vec![base, ("PARQUETRAIL_COMPRESSION", "gzip")], "PARQUETRAIL_COMPRESSION"),
            (vec![base, ("PARQUETRAIL_ROW_GROUP_ROWS", "0")], "PARQUETRAIL_ROW_GROUP_ROWS"),
            (vec![base, ("PARQUETRAIL_EVENT_CATEGORIES", "management,bogus")], "PARQUETRAIL_EVENT_CATEGORIES"),
            (vec![base, ("PARQUETRAIL_READ_WRITE", "sometimes")], "PARQUETRAIL_READ_WRITE"),
            (vec![base, ("PARQUETRAIL_EXCLUDE_EVENT_SOURCES", "kms")], "PARQUETRAIL_EXCLUDE_EVENT_SOURCES"),
            (vec![base, ("PARQUETRAIL_CONCURRENCY", "1000")], "PARQUETRAIL_CONCURRENCY"),
            (vec![base, ("PARQUETRAIL_S3_PATH_STYLE", "maybe")], "PARQUETRAIL_S3_PATH_STYLE"),
            (vec![base, ("PARQUETRAIL_QUARANTINE_PREFIX", "a/../b")], "PARQUETRAIL_QUARANTINE_PREFIX"),
            (vec![base, ("PARQUETRAIL_QUARANTINE_PREFIX", "events")], "PARQUETRAIL_QUARANTINE_PREFIX"),
            (vec![base, ("PARQUETRAIL_DESTINATON", "typo")], "PARQUETRAIL_DESTINATON"),
            (vec![base, ("PARQUETRAIL_COMPACT_TARGET_SIZE", "big")], "PARQUETRAIL_COMPACT_TARGET_SIZE"),
            (vec![base, ("PARQUETRAIL_COMPACT_MEMORY", "0MiB")], "PARQUETRAIL_COMPACT_MEMORY"),
            (vec![base, ("PARQUETRAIL_COMPACT_CONCURRENCY", "0")], "PARQUETRAIL_COMPACT_CONCURRENCY"),
            (vec![base, ("PARQUETRAIL_S3_CONNECT_TIMEOUT", "0s")], "PARQUETRAIL_S3_CONNECT_TIMEOUT"),
            (vec![base, ("PARQUETRAIL_S3_READ_TIMEOUT", "20")], "PARQUETRAIL_S3_READ_TIMEOUT"),
            (vec![base, ("PARQUETRAIL_S3_OPERATION_TIMEOUT", "1h")], "PARQUETRAIL_S3_OPERATION_TIMEOUT"),
            (vec![base, ("PARQUETRAIL_S3_ATTEMPT_TIMEOUT", "2m")], "PARQUETRAIL_S3_ATTEMPT_TIMEOUT"),
            (vec![base, ("PARQUETRAIL_S3_MAX_ATTEMPTS", "0")], "PARQUETRAIL_S3_MAX_ATTEMPTS"),
            (vec![base, ("PARQUETRAIL_S3_TIMEOUT", "5s")], "PARQUETRAIL_S3_TIMEOUT"),
        ];
        for (pairs, variable) in cases {
            let e = Config::from_vars(vars(&pairs)).unwrap_err();
            assert_eq!(e.variable, variable, "{pairs:?}: {e}");
            assert!(e.to_string().starts_with(variable) && e.message.len() > 5, "{e}");
        }
    }
}
