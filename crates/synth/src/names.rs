//! Resource names and per-event facts derived once from the catalog.
//!
//! Each account owns a small, stable pool of resources per service (buckets, tables, queues,
//! "prod-log-group-7"…), drawn front-loaded so a few hot resources dominate as in real logs.

use std::sync::OnceLock;

use crate::catalog::{self, IdStyle, SERVICES, Service};
use crate::ids::{hash_str, mix2, push_hex_from};
use crate::json::push_u64;

/// Facts about one catalog event, computed once.
#[derive(Debug)]
pub(crate) struct EventInfo {
    /// API name, e.g. `DescribeSecurityGroups`.
    pub name: &'static str,
    /// The resource noun in CamelCase and singular, e.g. `SecurityGroup`.
    pub noun: String,
    /// The noun in kebab case, e.g. `security-group`.
    pub kebab: String,
    /// Generic request key naming the resource, e.g. `securityGroupId`.
    pub param: String,
    /// The name addressed a collection (`List…`, plural `Describe…`).
    pub plural: bool,
    /// The verb prefix, e.g. `Describe`.
    pub verb: &'static str,
    /// `readOnly` value.
    pub read_only: bool,
    /// Logged as a data event.
    pub data: bool,
    /// Logged as an `AwsServiceEvent`.
    pub service_event: bool,
}

/// Verb prefixes, longest first where one is a prefix of another.
const VERBS: &[&str] = &[
    "BatchGet",
    "BatchWrite",
    "BatchCreate",
    "BatchImport",
    "BatchUpdate",
    "BatchCheck",
    "Describe",
    "List",
    "Get",
    "Create",
    "Delete",
    "Update",
    "Put",
    "Modify",
    "Start",
    "Stop",
    "Enable",
    "Disable",
    "Attach",
    "Detach",
    "Associate",
    "Register",
    "Deregister",
    "Tag",
    "Untag",
    "Send",
    "Submit",
    "Execute",
    "Complete",
    "Rotate",
    "Request",
    "Accept",
    "Add",
    "Remove",
    "Change",
    "Import",
    "Refresh",
    "Generate",
    "Archive",
    "Purge",
    "Reboot",
    "Resume",
    "Pause",
    "Move",
    "Initiate",
    "Retire",
    "Schedule",
    "Renew",
    "Increase",
    "Respond",
    "Admin",
    "Set",
    "Run",
    "Terminate",
    "Authorize",
    "Revoke",
    "Invoke",
    "Publish",
    "Subscribe",
    "Unsubscribe",
    "Validate",
    "Simulate",
    "Search",
    "Lookup",
    "Filter",
    "Check",
    "Is",
    "Decode",
    "Receive",
    "Head",
    "Copy",
    "Upload",
    "Query",
    "Scan",
    "Converse",
    "Exit",
    "Switch",
    "Console",
    "New",
    "Shared",
    "Pass",
    "Assume",
    "Decrypt",
    "Encrypt",
    "ReEncrypt",
    "Federate",
    "Authenticate",
    "Logout",
    "Increase",
];

fn split_verb(name: &'static str) -> (&'static str, &'static str) {
    for v in VERBS {
        if let Some(rest) = name.strip_prefix(v) {
            // Do not split words: the next char must start a new CamelCase word.
            if rest.is_empty() || rest.starts_with(|c: char| c.is_ascii_uppercase()) {
                return (v, rest);
            }
        }
    }
    ("", name)
}

fn singular(noun: &str) -> (String, bool) {
    let n = noun.trim_end_matches(|c: char| c.is_ascii_digit() || c == 'v');
    // Lambda's versioned names end in e.g. "20150331v2"; keep the real noun.
    let n = if n.len() < noun.len() && noun[n.len()..].starts_with(|c: char| c.is_ascii_digit()) { n } else { noun };
    if let Some(s) = n.strip_suffix("ies") {
        return (format!("{s}y"), true);
    }
    for suf in ["sses", "xes", "liases", "uses"] {
        if n.ends_with(suf) {
            return (n[..n.len() - 2].to_owned(), true);
        }
    }
    if n.ends_with('s') && !n.ends_with("ss") && !n.ends_with("us") && n.len() > 1 {
        return (n[..n.len() - 1].to_owned(), true);
    }
    (n.to_owned(), false)
}

fn kebab(noun: &str) -> String {
    let b = noun.as_bytes();
    let mut out = String::with_capacity(noun.len() + 4);
    for (i, &c) in b.iter().enumerate() {
        if c.is_ascii_uppercase() && i > 0 {
            let prev_lower = b[i - 1].is_ascii_lowercase() || b[i - 1].is_ascii_digit();
            let next_lower = b.get(i + 1).is_some_and(|n| n.is_ascii_lowercase());
            if prev_lower || (next_lower && b[i - 1].is_ascii_uppercase()) {
                out.push('-');
            }
        }
        out.push(c.to_ascii_lowercase() as char);
    }
    out
}

fn lower_first(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_ascii_lowercase().to_string() + c.as_str(),
        None => String::new(),
    }
}

fn info(svc: &Service, name: &'static str) -> EventInfo {
    let (verb, rest) = split_verb(name);
    let (mut noun, mut plural) = singular(rest);
    if noun.is_empty() {
        noun = "Resource".to_owned();
    }
    if verb == "List" {
        plural = true;
    }
    let suffix = match svc.id_style {
        IdStyle::Name => "Name",
        IdStyle::Id => "Id",
        IdStyle::Arn => "Arn",
        IdStyle::Identifier => "Identifier",
    };
    EventInfo {
        name,
        param: lower_first(&noun) + suffix,
        kebab: kebab(&noun),
        noun,
        plural,
        verb,
        read_only: catalog::is_read_only(name),
        data: catalog::is_data_event(svc.source, name),
        service_event: catalog::is_service_event(name),
    }
}

/// Per-service event facts, indexed like [`SERVICES`] and their `events`.
pub(crate) fn events() -> &'static [Vec<EventInfo>] {
    static CELL: OnceLock<Vec<Vec<EventInfo>>> = OnceLock::new();
    CELL.get_or_init(|| SERVICES.iter().map(|s| s.events.iter().map(|n| info(s, n)).collect()).collect())
}

/// Cumulative service weights for weighted picks.
pub(crate) fn cumulative_weights() -> &'static [u32] {
    static CELL: OnceLock<Vec<u32>> = OnceLock::new();
    CELL.get_or_init(|| {
        let mut acc = 0;
        SERVICES
            .iter()
            .map(|s| {
                acc += s.weight;
                acc
            })
            .collect()
    })
}

/// Picks a (service, event) pair.
pub(crate) fn pick_event(rng: &mut fastrand::Rng) -> (usize, usize) {
    let cum = cumulative_weights();
    let x = rng.u32(0..catalog::total_weight());
    let si = cum.partition_point(|&c| c <= x);
    let n = SERVICES[si].events.len();
    // Zipf-like bias to the front (u^2.5): the first events of a service are its everyday
    // calls, the last ones still show up a few times per thousand.
    let u = rng.f64();
    let ei = (u * u * u.sqrt() * n as f64) as usize;
    (si, ei.min(n - 1))
}

/// Environment-ish prefixes for generated resource names.
const ENVS: &[&str] =
    &["prod", "staging", "dev", "shared", "analytics", "payments", "orders", "platform", "data", "edge"];

/// A front-loaded index in `0..n` (index 0 is the hottest resource).
pub(crate) fn hot(rng: &mut fastrand::Rng, n: usize) -> usize {
    let u = rng.f64();
    ((u * u * u) * n as f64) as usize % n.max(1)
}

/// Appends a stable generic resource name, e.g. `payments-log-group-17`.
pub(crate) fn push_generic_name(out: &mut String, account_hash: u64, ns: &str, kebab: &str, k: usize) {
    let h = mix2(account_hash ^ hash_str(ns), k as u64);
    out.push_str(ENVS[(h % ENVS.len() as u64) as usize]);
    out.push('-');
    out.push_str(kebab);
    if h & 0x100 != 0 {
        out.push('-');
        push_u64(out, (h >> 12) % 100);
    }
}

/// Appends a stable generic id for id-style services, e.g. `sg-0a1b2c3d4e5f60718`.
pub(crate) fn push_generic_id(out: &mut String, account_hash: u64, ns: &str, noun: &str, k: usize) {
    let h = mix2(account_hash ^ hash_str(ns) ^ hash_str(noun), k as u64);
    if ns == "ec2" {
        out.push_str(ec2_prefix(noun));
        out.push_str("-0");
        push_hex_from(out, h, 16);
    } else {
        push_hex_from(out, h, 16);
        push_hex_from(out, h >> 20, 4);
    }
}

/// EC2 id prefixes by resource noun.
pub(crate) fn ec2_prefix(noun: &str) -> &'static str {
    match noun {
        "Instance" | "InstanceStatus" | "InstanceAttribute" => "i",
        "SecurityGroup" | "SecurityGroupIngress" => "sg",
        "Vpc" => "vpc",
        "Subnet" => "subnet",
        "Volume" => "vol",
        "Snapshot" | "SnapshotCopyInitiated" => "snap",
        "Image" => "ami",
        "NetworkInterface" => "eni",
        "Address" => "eipalloc",
        "RouteTable" => "rtb",
        _ => "res",
    }
}

/// Whether a service namespace is global (ARNs without a region).
pub(crate) fn is_global(ns: &str) -> bool {
    matches!(ns, "iam" | "organizations" | "route53" | "cloudfront" | "sts" | "signin" | "support" | "ce")
}

/// S3 bucket base names; account id is appended to keep them globally unique.
pub(crate) const BUCKETS: &[&str] = &[
    "data-lake-raw",
    "app-uploads",
    "cloudtrail-logs",
    "static-site-assets",
    "athena-results",
    "terraform-state",
    "backups",
    "ml-training-data",
    "access-logs",
    "exports",
];

/// DynamoDB table names.
pub(crate) const TABLES: &[&str] =
    &["orders", "sessions", "users", "idempotency-keys", "feature-flags", "inventory", "audit-trail", "rate-limits"];

/// SQS queue names.
pub(crate) const QUEUES: &[&str] = &[
    "orders-events",
    "image-jobs",
    "webhook-retries",
    "email-outbox",
    "orders-events-dlq",
    "cloudtrail-notifications",
];

/// Appends bucket `k` of an account.
pub(crate) fn push_bucket(out: &mut String, account: &str, k: usize) {
    out.push_str(BUCKETS[k % BUCKETS.len()]);
    out.push('-');
    out.push_str(account);
}

/// S3 object keys: a mix of partitioned data, uploads, and names needing JSON escapes.
/// Written as JSON string content (already escaped).
pub(crate) fn push_object_key(out: &mut String, rng: &mut fastrand::Rng, bucket_k: usize, secs: i64) {
    let c = crate::time::civil(secs);
    match (bucket_k % BUCKETS.len(), rng.u8(0..40)) {
        (_, 0) => out.push_str("exports/caf\\u00e9/r\\u00e9sum\\u00e9 final.pdf"),
        (_, 1) => out.push_str("données/été-2024/übersicht.csv"),
        (_, 2) => out.push_str("reports/Q1 \\\"draft\\\" (v2).xlsx"),
        (_, 3) => out.push_str("uploads/日本語/ファイル.png"),
        (0 | 7, _) => {
            out.push_str(if bucket_k.is_multiple_of(2) { "raw/events/dt=" } else { "features/v3/dt=" });
            crate::time::push_date_path(out, secs);
            out.push_str("/part-");
            crate::json::push_padded(out, rng.u64(0..2000), 5);
            out.push('-');
            crate::ids::push_uuid(out, rng);
            out.push_str(".c000.snappy.parquet");
        }
        (1, _) => {
            out.push_str("uploads/");
            crate::ids::push_uuid(out, rng);
            out.push_str(match rng.u8(0..4) {
                0 => ".jpg",
                1 => ".png",
                2 => ".pdf",
                _ => ".heic",
            });
        }
        (2, _) => {
            let acct = 100_000_000_000 + rng.u64(0..900_000_000_000);
            out.push_str("AWSLogs/");
            push_u64(out, acct);
            out.push_str("/CloudTrail/us-east-1/");
            crate::time::push_date_path(out, secs);
            out.push('/');
            push_u64(out, acct);
            out.push_str("_CloudTrail_us-east-1_");
            crate::time::push_compact_minute(out, secs - secs.rem_euclid(300));
            out.push('_');
            crate::ids::push_alnum(out, rng, 16);
            out.push_str(".json.gz");
        }
        (3, _) => {
            out.push_str(
                ["index.html", "assets/app.9f3c1e.js", "assets/app.9f3c1e.css", "img/logo.svg", "favicon.ico"]
                    [rng.usize(0..5)],
            );
        }
        (4, _) => {
            out.push_str("query-results/");
            crate::ids::push_uuid(out, rng);
            out.push_str(".csv");
        }
        (5, _) => out.push_str("env/prod/terraform.tfstate"),
        _ => {
            out.push_str("daily/");
            push_u64(out, c.year as u64);
            out.push('-');
            crate::json::push_padded(out, c.month as u64, 2);
            out.push('-');
            crate::json::push_padded(out, c.day as u64, 2);
            out.push_str("/snapshot-");
            push_hex_from(out, rng.u64(..), 8);
            out.push_str(".tar.zst");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nouns() {
        let s = &SERVICES[1];
        for (name, noun, kebab_, plural, verb) in [
            ("DescribeSecurityGroups", "SecurityGroup", "security-group", true, "Describe"),
            ("DescribeAddresses", "Address", "address", true, "Describe"),
            ("ListFunctions20150331", "Function", "function", true, "List"),
            ("UpdateFunctionCode20150331v2", "FunctionCode", "function-code", false, "Update"),
            ("DescribeDBInstances", "DBInstance", "db-instance", true, "Describe"),
            ("GetWebACL", "WebACL", "web-acl", false, "Get"),
            ("ListAliases", "Alias", "alias", true, "List"),
            ("GetDatabase", "Database", "database", false, "Get"),
            ("Search", "Resource", "resource", false, "Search"),
            ("GetPolicies", "Policy", "policy", true, "Get"),
            ("Isolate", "Isolate", "isolate", false, ""),
        ] {
            let i = info(s, name);
            assert_eq!((i.noun.as_str(), i.kebab.as_str(), i.plural, i.verb), (noun, kebab_, plural, verb), "{name}");
        }
    }

    #[test]
    fn pick_covers_everything() {
        let mut rng = fastrand::Rng::with_seed(5);
        let mut seen = std::collections::BTreeSet::new();
        for _ in 0..400_000 {
            seen.insert(pick_event(&mut rng));
        }
        let total: usize = SERVICES.iter().map(|s| s.events.len()).sum();
        assert!(seen.len() * 10 >= total * 9, "{} of {total}", seen.len());
    }
}
