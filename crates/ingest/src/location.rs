//! Where a source or an archive is: `s3://bucket/prefix` or a local path.

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;

use crate::local::LocalStorage;
use crate::s3::{S3Settings, S3Storage};
use crate::storage::Storage;

/// A storage root and a key prefix within it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    S3 { bucket: String, prefix: String },
    Local(PathBuf),
}

/// Why a text is not a location; each names the text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LocationError {
    #[error("{0:?}: missing bucket name (expected s3://bucket/prefix)")]
    MissingBucket(String),
    #[error("{text:?}: {bucket:?} is not a valid S3 bucket name")]
    InvalidBucket { text: String, bucket: String },
    #[error("{0:?}: only s3:// URLs and local paths are supported")]
    UnsupportedScheme(String),
}

impl Location {
    /// Parses `s3://bucket[/prefix]` or a local path. Errors name what is wrong.
    pub fn parse(text: &str) -> Result<Location, LocationError> {
        if let Some(rest) = text.strip_prefix("s3://") {
            let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
            if bucket.is_empty() {
                return Err(LocationError::MissingBucket(text.to_string()));
            }
            if !bucket.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.')
                || bucket.len() < 3
                || bucket.len() > 63
            {
                return Err(LocationError::InvalidBucket { text: text.to_string(), bucket: bucket.to_string() });
            }
            return Ok(Location::S3 { bucket: bucket.to_string(), prefix: prefix.trim_end_matches('/').to_string() });
        }
        if text.contains("://") {
            return Err(LocationError::UnsupportedScheme(text.to_string()));
        }
        Ok(Location::Local(PathBuf::from(text)))
    }

    /// The key prefix within the storage (empty for local paths, whose root is the path).
    pub fn prefix(&self) -> &str {
        match self {
            Location::S3 { prefix, .. } => prefix,
            Location::Local(_) => "",
        }
    }

    pub fn is_s3(&self) -> bool {
        matches!(self, Location::S3 { .. })
    }

    /// The storage this location lives in (an S3 client is built only for S3 locations).
    pub async fn storage(&self, s3: &S3Settings) -> Arc<dyn Storage> {
        match self {
            Location::S3 { bucket, .. } => Arc::new(S3Storage::new(s3.client().await, bucket)),
            Location::Local(path) => Arc::new(LocalStorage::new(path.clone())),
        }
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Location::S3 { bucket, prefix } if prefix.is_empty() => write!(f, "s3://{bucket}"),
            Location::S3 { bucket, prefix } => write!(f, "s3://{bucket}/{prefix}"),
            Location::Local(p) => write!(f, "{}", p.display()),
        }
    }
}

/// Joins a prefix and a relative key with exactly one `/`.
pub fn join(prefix: &str, key: &str) -> String {
    let prefix = prefix.trim_end_matches('/');
    if prefix.is_empty() { key.to_string() } else { format!("{prefix}/{key}") }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_locations() {
        let ok = [
            ("s3://trail-bucket", Location::S3 { bucket: "trail-bucket".into(), prefix: "".into() }),
            ("s3://trail-bucket/", Location::S3 { bucket: "trail-bucket".into(), prefix: "".into() }),
            ("s3://a.b-c/x/y/", Location::S3 { bucket: "a.b-c".into(), prefix: "x/y".into() }),
            ("./archive", Location::Local("./archive".into())),
        ];
        for (text, want) in ok {
            assert_eq!(Location::parse(text).as_ref(), Ok(&want), "{text}");
        }
        for bad in ["s3://", "s3:///x", "s3://UPPER/x", "gs://bucket/x", "s3://ab"] {
            assert!(Location::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(join("a/", "b/c"), "a/b/c");
        assert_eq!(join("", "b"), "b");
    }
}
