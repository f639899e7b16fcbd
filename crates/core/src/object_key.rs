//! CloudTrail's S3 key layouts, and the names of the objects we write for them.
//!
//! CloudTrail writes `[prefix/]AWSLogs/[o-id/]<account>/<kind>/<region>/YYYY/MM/DD/<file>`, where
//! `<kind>` is `CloudTrail`, `CloudTrail-Insight` or `CloudTrail-Digest`; AWS Config shares such
//! buckets under `Config/`, and other services (ELB, VPC flow logs) use `AWSLogs/` too. The key tells
//! us what an object is before we read a byte of it — but the content has the last word (see
//! [`crate::log_file`]), because users also feed us files from outside that layout.

use chrono::NaiveDate;
use sha2::{Digest as _, Sha256};

/// What the key says an object is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyKind {
    /// `CloudTrail/`: a log file of events.
    Log,
    /// `CloudTrail-Insight/`: a log file of Insights events.
    Insight,
    /// `CloudTrail-Digest/`: an hourly integrity digest, not events.
    Digest,
    /// `Config/`: AWS Config history, snapshots or its write check file.
    Config,
    /// Under `AWSLogs/<account>/` but another service's logs.
    OtherService,
    /// Not in CloudTrail's layout at all; the content decides.
    Unknown,
}

/// A parsed object key. Fields borrow from the key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectKey<'a> {
    /// The whole key as given.
    pub key: &'a str,
    /// The trail's key prefix before `AWSLogs/`, if any.
    pub prefix: Option<&'a str>,
    /// The organization ID of an organization trail.
    pub org_id: Option<&'a str>,
    /// The account the key is filed under.
    pub account: Option<&'a str>,
    pub kind: KeyKind,
    /// The region the key is filed under.
    pub region: Option<&'a str>,
    /// The delivery date of the key path (not the events' date).
    pub delivery_date: Option<NaiveDate>,
    /// The last path segment.
    pub file_name: &'a str,
}

impl<'a> ObjectKey<'a> {
    /// Parses a key. Never fails: keys outside the layout are [`KeyKind::Unknown`].
    pub fn parse(key: &'a str) -> Self {
        let file_name = key.rsplit('/').next().unwrap_or(key);
        let mut parsed = ObjectKey {
            key,
            prefix: None,
            org_id: None,
            account: None,
            kind: KeyKind::Unknown,
            region: None,
            delivery_date: None,
            file_name,
        };
        // Try every `AWSLogs` segment: Control Tower buckets use the org id as the trail prefix, so
        // the layout can be `o-id/AWSLogs/o-id/<acct>/...`, and a prefix may itself say AWSLogs.
        // A CloudTrail kind wins over another service's layout found earlier in the key.
        let mut best: Option<(usize, Layout<'a>)> = None;
        let mut start = 0;
        while let Some(found) = find_segment(key, start, "AWSLogs") {
            if let Some(layout) = parse_after_awslogs(&key[found + "AWSLogs/".len()..]) {
                let cloudtrail = layout.kind != KeyKind::OtherService;
                if best.is_none() || cloudtrail {
                    best = Some((found, layout));
                }
                if cloudtrail {
                    break;
                }
            }
            start = found + 1;
        }
        if let Some((found, layout)) = best {
            parsed.prefix = (found > 0).then(|| &key[..found - 1]);
            parsed.org_id = layout.org_id;
            parsed.account = Some(layout.account);
            parsed.kind = layout.kind;
            parsed.region = layout.region;
            parsed.delivery_date = layout.date;
            return parsed;
        }
        if file_name == "ConfigWritabilityCheckFile" {
            parsed.kind = KeyKind::Config;
        } else if file_name.contains("_CloudTrail-Digest_") {
            parsed.kind = KeyKind::Digest;
        } else if file_name.contains("_CloudTrail-Insight_") {
            parsed.kind = KeyKind::Insight;
        }
        parsed
    }

    /// The identity of the source object for naming outputs: the key from `AWSLogs/` on, so that a
    /// local copy (`aws s3 sync s3://trail/prefix .`) and the bucket itself name outputs alike and
    /// converting either never duplicates the other; the whole key outside the layout.
    pub fn source_id(&self) -> &'a str {
        match self.prefix {
            Some(p) => &self.key[p.len() + 1..],
            None => self.key,
        }
    }

    /// The deterministic file stem of every output made from this object: the readable file name
    /// (so an operator can trace a row back) plus a hash of [`Self::source_id`] (so equal file names
    /// under different paths never collide).
    pub fn output_stem(&self) -> String {
        let base = strip_extensions(self.file_name);
        let mut stem: String = base
            .chars()
            .take(120)
            .map(|c| if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') { c } else { '_' })
            .collect();
        if stem.is_empty() || stem.starts_with('.') {
            stem.insert(0, 'f');
        }
        let digest = Sha256::digest(self.source_id().as_bytes());
        stem.push('-');
        for b in &digest[..8] {
            stem.push_str(&format!("{b:02x}"));
        }
        stem
    }
}

struct Layout<'a> {
    org_id: Option<&'a str>,
    account: &'a str,
    kind: KeyKind,
    region: Option<&'a str>,
    date: Option<NaiveDate>,
}

fn parse_after_awslogs(rest: &str) -> Option<Layout<'_>> {
    let mut parts = rest.split('/');
    let mut first = parts.next()?;
    let mut org_id = None;
    if first.starts_with("o-") {
        org_id = Some(first);
        first = parts.next()?;
    }
    if first.is_empty() || first.starts_with("o-") {
        return None;
    }
    let account = first;
    let kind = match parts.next()? {
        "CloudTrail" => KeyKind::Log,
        "CloudTrail-Insight" => KeyKind::Insight,
        "CloudTrail-Digest" => KeyKind::Digest,
        "Config" | "ConfigWritabilityCheckFile" => KeyKind::Config,
        "" => return None,
        _ => KeyKind::OtherService,
    };
    let mut layout = Layout { org_id, account, kind, region: None, date: None };
    if matches!(kind, KeyKind::Log | KeyKind::Insight | KeyKind::Digest) {
        let rest: Vec<&str> = parts.collect();
        // region/YYYY/MM/DD/file
        if rest.len() >= 5 {
            layout.region = Some(rest[0]).filter(|r| !r.is_empty());
            layout.date = NaiveDate::parse_from_str(&format!("{}-{}-{}", rest[1], rest[2], rest[3]), "%Y-%m-%d").ok();
        } else if let Some(r) = rest.first().filter(|r| !r.is_empty() && rest.len() > 1) {
            layout.region = Some(r);
        }
    }
    Some(layout)
}

fn find_segment(key: &str, from: usize, segment: &str) -> Option<usize> {
    let mut i = from;
    while let Some(pos) = key[i..].find(segment) {
        let at = i + pos;
        let end = at + segment.len();
        let starts = at == 0 || key.as_bytes()[at - 1] == b'/';
        let ends = key.as_bytes().get(end) == Some(&b'/');
        if starts && ends {
            return Some(at);
        }
        i = at + 1;
    }
    None
}

fn strip_extensions(name: &str) -> &str {
    let mut s = name;
    for ext in [".gz", ".json", ".jsonl"] {
        if let Some(stripped) = s.strip_suffix(ext) {
            s = stripped;
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_cloudtrail_layouts() {
        struct Case {
            key: &'static str,
            prefix: Option<&'static str>,
            org: Option<&'static str>,
            account: Option<&'static str>,
            kind: KeyKind,
            region: Option<&'static str>,
            date: Option<&'static str>,
            source_id: &'static str,
        }
        let cases = [
            Case {
                key: "AWSLogs/123456789012/CloudTrail/us-west-1/2014/06/20/123456789012_CloudTrail_us-west-1_20140620T1255Z_HdkvFTXOA3Vnhbc.json.gz",
                prefix: None,
                org: None,
                account: Some("123456789012"),
                kind: KeyKind::Log,
                region: Some("us-west-1"),
                date: Some("2014-06-20"),
                source_id: "AWSLogs/123456789012/CloudTrail/us-west-1/2014/06/20/123456789012_CloudTrail_us-west-1_20140620T1255Z_HdkvFTXOA3Vnhbc.json.gz",
            },
            Case {
                key: "trails/prod/AWSLogs/o-exampleorgid/111122223333/CloudTrail/eu-west-1/2022/11/10/x.json.gz",
                prefix: Some("trails/prod"),
                org: Some("o-exampleorgid"),
                account: Some("111122223333"),
                kind: KeyKind::Log,
                region: Some("eu-west-1"),
                date: Some("2022-11-10"),
                source_id: "AWSLogs/o-exampleorgid/111122223333/CloudTrail/eu-west-1/2022/11/10/x.json.gz",
            },
            Case {
                // Control Tower: the org id is also the trail prefix.
                key: "o-abc/AWSLogs/o-abc/111122223333/CloudTrail-Insight/us-east-1/2020/07/21/y.json.gz",
                prefix: Some("o-abc"),
                org: Some("o-abc"),
                account: Some("111122223333"),
                kind: KeyKind::Insight,
                region: Some("us-east-1"),
                date: Some("2020-07-21"),
                source_id: "AWSLogs/o-abc/111122223333/CloudTrail-Insight/us-east-1/2020/07/21/y.json.gz",
            },
            Case {
                key: "AWSLogs/111122223333/CloudTrail-Digest/us-east-2/2015/08/17/111122223333_CloudTrail-Digest_us-east-2_t_us-east-2_20150817T150131Z.json.gz",
                prefix: None,
                org: None,
                account: Some("111122223333"),
                kind: KeyKind::Digest,
                region: Some("us-east-2"),
                date: Some("2015-08-17"),
                source_id: "AWSLogs/111122223333/CloudTrail-Digest/us-east-2/2015/08/17/111122223333_CloudTrail-Digest_us-east-2_t_us-east-2_20150817T150131Z.json.gz",
            },
            Case {
                key: "logs/AWSLogs/111122223333/Config/ConfigWritabilityCheckFile",
                prefix: Some("logs"),
                org: None,
                account: Some("111122223333"),
                kind: KeyKind::Config,
                region: None,
                date: None,
                source_id: "AWSLogs/111122223333/Config/ConfigWritabilityCheckFile",
            },
            Case {
                key: "AWSLogs/111122223333/elasticloadbalancing/us-east-1/2024/01/01/lb.log.gz",
                prefix: None,
                org: None,
                account: Some("111122223333"),
                kind: KeyKind::OtherService,
                region: None,
                date: None,
                source_id: "AWSLogs/111122223333/elasticloadbalancing/us-east-1/2024/01/01/lb.log.gz",
            },
            Case {
                // A prefix named AWSLogs that is not the layout: the real one follows.
                key: "AWSLogs/AWSLogs/123456789012/CloudTrail/us-east-1/2024/01/02/f.json.gz",
                prefix: Some("AWSLogs"),
                org: None,
                account: Some("123456789012"),
                kind: KeyKind::Log,
                region: Some("us-east-1"),
                date: Some("2024-01-02"),
                source_id: "AWSLogs/123456789012/CloudTrail/us-east-1/2024/01/02/f.json.gz",
            },
            Case {
                key: "edge-cases/some file.json.gz",
                prefix: None,
                org: None,
                account: None,
                kind: KeyKind::Unknown,
                region: None,
                date: None,
                source_id: "edge-cases/some file.json.gz",
            },
            Case {
                key: "x/123456789012_CloudTrail-Digest_us-east-1_t_us-east-1_20150817T150131Z.json.gz",
                prefix: None,
                org: None,
                account: None,
                kind: KeyKind::Digest,
                region: None,
                date: None,
                source_id: "x/123456789012_CloudTrail-Digest_us-east-1_t_us-east-1_20150817T150131Z.json.gz",
            },
        ];
        for case in cases {
            let k = ObjectKey::parse(case.key);
            let date = case.date.map(|d| NaiveDate::parse_from_str(d, "%Y-%m-%d").unwrap());
            let got = (k.prefix, k.org_id, k.account, k.kind, k.region, k.delivery_date, k.source_id());
            let want = (case.prefix, case.org, case.account, case.kind, case.region, date, case.source_id);
            assert_eq!(got, want, "key: {}", case.key);
        }
    }

    #[test]
    fn output_stem_is_readable_deterministic_and_safe() {
        let a = ObjectKey::parse("p/AWSLogs/1/CloudTrail/r/2024/01/01/1_CloudTrail_r_20240101T0000Z_abc.json.gz");
        let b = ObjectKey::parse("other/AWSLogs/1/CloudTrail/r/2024/01/01/1_CloudTrail_r_20240101T0000Z_abc.json.gz");
        assert!(a.output_stem().starts_with("1_CloudTrail_r_20240101T0000Z_abc-"), "{}", a.output_stem());
        // The trail prefix is not part of the identity: local copies and the bucket agree.
        assert_eq!(a.output_stem(), b.output_stem());
        let c = ObjectKey::parse("AWSLogs/2/CloudTrail/r/2024/01/01/1_CloudTrail_r_20240101T0000Z_abc.json.gz");
        assert_ne!(a.output_stem(), c.output_stem());
        for hostile in ["../../etc/passwd", "a/..", "dir/.hidden.json", "x/we ird&name=1%2F.json.gz", "d/"] {
            let stem = ObjectKey::parse(hostile).output_stem();
            assert!(!stem.contains('/') && !stem.starts_with('.'), "{hostile} -> {stem}");
            assert!(stem.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c)), "{hostile} -> {stem}");
        }
    }
}
