//! Where a record lands: `account=<id>/region=<r>/date=YYYY-MM-DD`, from the record itself.
//!
//! Why the record's own `eventTime` and not the key's date: the key's date is when CloudTrail
//! *delivered* the file, and one file routinely holds events from before midnight, or hours-late
//! deliveries. Queries filter on when things happened, so partitions must too. One input file may
//! therefore feed several partitions.
//!
//! Partition values come from record content, which an attacker may influence (a crafted
//! `recipientAccountId` or `awsRegion` in a forged log). Every value is escaped the way Hive does
//! (`%XX` for anything but `[A-Za-z0-9_-]`), so no value can contain `/`, `=` or `..` and steer a
//! write outside its partition.

use std::borrow::Cow;
use std::fmt;

use chrono::NaiveDate;

/// The value Hive, Spark, Athena and DuckDB read back as NULL for an empty partition value.
pub const DEFAULT_PARTITION: &str = "__HIVE_DEFAULT_PARTITION__";

/// One Hive partition of a dataset.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PartitionKey {
    pub account: String,
    pub region: String,
    pub date: NaiveDate,
}

impl PartitionKey {
    /// The relative path `account=…/region=…/date=…`, every value escaped.
    pub fn path(&self) -> String {
        format!(
            "account={}/region={}/date={}",
            escape_value(&self.account),
            escape_value(&self.region),
            self.date.format("%Y-%m-%d")
        )
    }
}

impl fmt::Display for PartitionKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.path())
    }
}

/// Escapes one partition value: `[A-Za-z0-9_-]` pass through, every other byte becomes `%XX`
/// (upper-case hex, as Hive writes it); an empty value becomes [`DEFAULT_PARTITION`].
pub fn escape_value(value: &str) -> Cow<'_, str> {
    if value.is_empty() {
        return Cow::Borrowed(DEFAULT_PARTITION);
    }
    if value.bytes().all(is_plain) {
        return Cow::Borrowed(value);
    }
    let mut out = String::with_capacity(value.len() + 8);
    for b in value.bytes() {
        if is_plain(b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    Cow::Owned(out)
}

/// Reverses [`escape_value`] (for reading partition paths back).
pub fn unescape_value(value: &str) -> String {
    if value == DEFAULT_PARTITION {
        return String::new();
    }
    let bytes = value.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let (Some(hi), Some(lo)) = (hex(bytes[i + 1]), hex(bytes[i + 2]))
        {
            out.push(hi << 4 | lo);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hex(b: u8) -> Option<u8> {
    (b as char).to_digit(16).map(|d| d as u8)
}

fn is_plain(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b == b'-'
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partition_paths() {
        let d = NaiveDate::from_ymd_opt(2024, 3, 1).unwrap();
        let cases = [
            ("123456789012", "us-east-1", "account=123456789012/region=us-east-1/date=2024-03-01"),
            ("08966example", "eu-west-1", "account=08966example/region=eu-west-1/date=2024-03-01"),
            ("", "us-east-1", "account=__HIVE_DEFAULT_PARTITION__/region=us-east-1/date=2024-03-01"),
            ("../../x", "a/b", "account=%2E%2E%2F%2E%2E%2Fx/region=a%2Fb/date=2024-03-01"),
            ("1=2", "..", "account=1%3D2/region=%2E%2E/date=2024-03-01"),
            ("é", "r r", "account=%C3%A9/region=r%20r/date=2024-03-01"),
        ];
        for (account, region, want) in cases {
            let key = PartitionKey { account: account.into(), region: region.into(), date: d };
            let path = key.path();
            assert_eq!(path, want, "account={account:?} region={region:?}");
            // Exactly three segments, none escaping upwards.
            let segments: Vec<&str> = path.split('/').collect();
            assert_eq!(segments.len(), 3, "{path}");
            assert!(segments.iter().all(|s| *s != ".." && *s != "." && s.matches('=').count() == 1), "{path}");
            assert_eq!(unescape_value(segments[0].trim_start_matches("account=")), account);
            assert_eq!(unescape_value(segments[1].trim_start_matches("region=")), region);
        }
    }
}
