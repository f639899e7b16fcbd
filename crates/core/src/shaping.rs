//! What is archived beyond what is recorded: opt-in rules that drop known noise and redact
//! secrets that leak into records. The archive is lossless by default; shaping is chosen per run
//! (`convert --drop-noise --redact-secrets`, the Lambda's `PARQUETRAIL_SHAPING`), and every
//! record it touches is counted, so a run still reconciles:
//! `records = rows + quarantined + filtered`, with dropped records among `filtered` and both
//! drops and redactions counted per rule in [`crate::convert::FileReport::shaped`].
//!
//! Rules come in versioned sets, written as JSON (the built-in ones are in `shaping/` beside this
//! file, compiled in): a set's `name@version` names exactly which rules ran, so an archive can say
//! how it was shaped ([`Shaping::provenance`]). A user's own set has the same form.
//!
//! A rule matches on the record's `eventSource`, `eventName` (exact, or a prefix ending in `*`),
//! `userIdentity.type`, `readOnly`, and whether an AWS service made the call (`invokedBy` or a
//! `sourceIPAddress` ending in `.amazonaws.com`); every condition given must hold. A `drop` rule
//! drops the record; a `redact` rule replaces the string value of each named key, wherever it
//! occurs in the JSON bodies (`requestParameters`, `responseElements`, `additionalEventData`,
//! `serviceEventDetails`), with `"REDACTED"`.

use std::borrow::Cow;
use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::record::Row;

/// The built-in set that drops known noise.
pub const NOISE: &str = include_str!("shaping/noise.json");
/// The built-in set that redacts secrets.
pub const SECRETS: &str = include_str!("shaping/secrets.json");

/// What a redacted value becomes.
pub const REDACTED: &str = "REDACTED";

/// A versioned set of rules.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleSet {
    pub name: String,
    pub version: u32,
    #[serde(default)]
    pub description: String,
    pub rules: Vec<Rule>,
}

/// One rule: when it applies, and what it does.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    /// Unique within its set; counts are reported as `<set>/<id>`.
    pub id: String,
    #[serde(default)]
    pub description: String,
    pub action: Action,
    #[serde(default, rename = "match")]
    pub when: Match,
    /// For `redact`: the JSON keys whose string values are replaced.
    #[serde(default)]
    pub keys: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    Drop,
    Redact,
}

/// Conditions on a record; an absent one holds for every record.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Match {
    #[serde(default, rename = "eventSource", skip_serializing_if = "Vec::is_empty")]
    pub event_source: Vec<String>,
    /// Exact names, or prefixes ending in `*` (`Describe*`).
    #[serde(default, rename = "eventName", skip_serializing_if = "Vec::is_empty")]
    pub event_name: Vec<String>,
    #[serde(default, rename = "identityType", skip_serializing_if = "Vec::is_empty")]
    pub identity_type: Vec<String>,
    #[serde(default, rename = "readOnly", skip_serializing_if = "Option::is_none")]
    pub read_only: Option<bool>,
    /// `true`: only calls an AWS service made on its own or a user's behalf.
    #[serde(default, rename = "byAwsService", skip_serializing_if = "Option::is_none")]
    pub by_aws_service: Option<bool>,
}

impl Match {
    fn holds(&self, row: &Row<'_>) -> bool {
        let any = |list: &[String], value: Option<&str>| {
            list.is_empty() || value.is_some_and(|v| list.iter().any(|l| l == v))
        };
        let names = self.event_name.is_empty()
            || row.eventname.as_deref().is_some_and(|name| {
                self.event_name.iter().any(|p| match p.strip_suffix('*') {
                    Some(prefix) => name.starts_with(prefix),
                    None => p == name,
                })
            });
        let identity = row.useridentity.as_ref().and_then(|u| u.r#type.as_deref());
        any(&self.event_source, row.eventsource.as_deref())
            && names
            && any(&self.identity_type, identity)
            && self.read_only.is_none_or(|r| row.readonly.as_deref() == Some(if r { "true" } else { "false" }))
            && self.by_aws_service.is_none_or(|b| by_aws_service(row) == b)
    }
}

fn by_aws_service(row: &Row<'_>) -> bool {
    row.useridentity.as_ref().is_some_and(|u| u.r#type.as_deref() == Some("AWSService") || u.invokedby.is_some())
        || row.sourceipaddress.as_deref().is_some_and(|ip| ip.ends_with(".amazonaws.com"))
}

/// The rule sets one run applies.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Shaping {
    pub sets: Vec<RuleSet>,
}

/// What shaping did to one record.
#[derive(Debug, Default)]
pub struct Outcome {
    /// The drop rule that matched (`<set>/<id>`), if any.
    pub dropped: Option<String>,
    /// Redacting rules that changed the record, with how many values each replaced.
    pub redacted: Vec<(String, u32)>,
}

/// Why a rule set was refused.
#[derive(Debug, thiserror::Error)]
pub enum RuleSetError {
    #[error("not a rule set: {0}")]
    Json(#[from] serde_json::Error),
    #[error("rule set name {0:?}: must be non-empty, without '/', '@' or ','")]
    Name(String),
    #[error("rule set {set}: rule id {id:?} appears twice")]
    DuplicateId { set: String, id: String },
    #[error("rule {set}/{id}: a redact rule needs `keys`")]
    RedactWithoutKeys { set: String, id: String },
    #[error("rule {set}/{id}: `keys` is for redact rules")]
    KeysOnDrop { set: String, id: String },
    #[error("no built-in rule set {0:?} (there are: noise, secrets)")]
    UnknownBuiltin(String),
}

impl Shaping {
    /// Parses and checks a set: known actions, unique ids, keys only on `redact` rules.
    pub fn parse_set(json: &str) -> Result<RuleSet, RuleSetError> {
        let set: RuleSet = serde_json::from_str(json)?;
        if set.name.is_empty() || set.name.contains(['/', '@', ',']) {
            return Err(RuleSetError::Name(set.name));
        }
        let mut ids = std::collections::BTreeSet::new();
        for rule in &set.rules {
            let (set, id) = (set.name.clone(), rule.id.clone());
            match rule.action {
                _ if !ids.insert(&rule.id) => return Err(RuleSetError::DuplicateId { set, id }),
                Action::Redact if rule.keys.is_empty() => return Err(RuleSetError::RedactWithoutKeys { set, id }),
                Action::Drop if !rule.keys.is_empty() => return Err(RuleSetError::KeysOnDrop { set, id }),
                _ => {}
            }
        }
        Ok(set)
    }

    /// The built-in sets by name: `noise`, `secrets`.
    pub fn builtin(name: &str) -> Result<RuleSet, RuleSetError> {
        match name {
            "noise" => Self::parse_set(NOISE),
            "secrets" => Self::parse_set(SECRETS),
            other => Err(RuleSetError::UnknownBuiltin(other.to_string())),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.sets.iter().all(|s| s.rules.is_empty())
    }

    /// `name@version` of each set, in order: what an archive records of how it was shaped.
    pub fn provenance(&self) -> Vec<String> {
        self.sets.iter().map(|s| format!("{}@{}", s.name, s.version)).collect()
    }

    /// Applies the rules to `row`: the first drop rule that matches drops it (nothing else is
    /// done); otherwise every matching redact rule rewrites the bodies in place.
    pub fn apply(&self, row: &mut Row<'_>) -> Outcome {
        let mut outcome = Outcome::default();
        for set in &self.sets {
            for rule in set.rules.iter().filter(|r| r.action == Action::Drop) {
                if rule.when.holds(row) {
                    outcome.dropped = Some(format!("{}/{}", set.name, rule.id));
                    return outcome;
                }
            }
        }
        for set in &self.sets {
            for rule in set.rules.iter().filter(|r| r.action == Action::Redact) {
                if !rule.when.holds(row) {
                    continue;
                }
                let mut n = 0;
                for body in [
                    &mut row.requestparameters,
                    &mut row.responseelements,
                    &mut row.additionaleventdata,
                    &mut row.serviceeventdetails,
                ] {
                    if let Some(text) = body.as_deref()
                        && let Some((redacted, count)) = redact_keys(text, &rule.keys)
                    {
                        *body = Some(Cow::Owned(redacted));
                        n += count;
                    }
                }
                if n > 0 {
                    outcome.redacted.push((format!("{}/{}", set.name, rule.id), n));
                }
            }
        }
        outcome
    }
}

/// Replaces the string value of every member named one of `keys` in the JSON text `json`, at any
/// depth, with [`REDACTED`]; `None` when there is none. Works on the text, so everything else
/// (number lexemes, key order) stays exactly as written.
pub fn redact_keys(json: &str, keys: &[String]) -> Option<(String, u32)> {
    let bytes = json.as_bytes();
    let mut out = String::new();
    let mut copied = 0;
    let mut count = 0;
    let mut i = 0;
    // Walk string tokens; a string followed by ':' is a key, and a key we redact followed by a
    // string value has that value replaced.
    while i < bytes.len() {
        if bytes[i] != b'"' {
            i += 1;
            continue;
        }
        let end = string_end(bytes, i)?;
        let mut j = end;
        while j < bytes.len() && bytes[j].is_ascii_whitespace() {
            j += 1;
        }
        if j < bytes.len() && bytes[j] == b':' {
            let key = &json[i + 1..end - 1];
            j += 1;
            while j < bytes.len() && bytes[j].is_ascii_whitespace() {
                j += 1;
            }
            if j < bytes.len() && bytes[j] == b'"' && keys.iter().any(|k| k == key) {
                let value_end = string_end(bytes, j)?;
                if &json[j + 1..value_end - 1] != REDACTED {
                    out.push_str(&json[copied..j]);
                    out.push('"');
                    out.push_str(REDACTED);
                    out.push('"');
                    copied = value_end;
                    count += 1;
                }
                i = value_end;
                continue;
            }
        }
        i = end;
    }
    if count == 0 {
        return None;
    }
    out.push_str(&json[copied..]);
    Some((out, count))
}

/// The index just past the string starting at `start` (a `"`); `None` if it does not end.
fn string_end(bytes: &[u8], start: usize) -> Option<usize> {
    let mut i = start + 1;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' => i += 2,
            b'"' => return Some(i + 1),
            _ => i += 1,
        }
    }
    None
}

/// Where an archive records the rule sets that shaped it: one object per set and version,
/// `_shaping/<name>@<version>.json`, holding the set as it ran.
pub const MARKER_DIR: &str = "_shaping";

impl Shaping {
    /// Writes the archive's record of these sets ([`MARKER_DIR`]); the same set written again
    /// gives the same bytes, so every run may write it.
    pub fn record(&self, sink: &dyn crate::sink::Sink) -> std::io::Result<()> {
        for (path, body) in self.markers() {
            let mut file = sink.create(&path)?;
            std::io::Write::write_all(&mut file, &body)?;
            file.commit()?;
        }
        Ok(())
    }

    /// The objects [`Shaping::record`] writes: `(path under the archive root, body)`.
    pub fn markers(&self) -> Vec<(String, Vec<u8>)> {
        self.sets
            .iter()
            .map(|set| {
                let body = serde_json::to_vec_pretty(set).expect("a rule set serializes");
                (format!("{MARKER_DIR}/{}@{}.json", set.name, set.version), body)
            })
            .collect()
    }

    /// A sentence naming the sets found in an archive's [`MARKER_DIR`] (`name@version` file stems)
    /// and what they do, for `export` and `summary` to say; `None` when there are none.
    pub fn describe_recorded(sets: &[RuleSet]) -> Option<String> {
        if sets.is_empty() {
            return None;
        }
        let parts: Vec<String> = sets
            .iter()
            .map(|s| {
                let rules: Vec<String> = s
                    .rules
                    .iter()
                    .map(|r| format!("{} {}", if r.action == Action::Drop { "drops" } else { "redacts" }, r.id))
                    .collect();
                format!("{}@{} ({})", s.name, s.version, rules.join(", "))
            })
            .collect();
        Some(format!(
            "this archive was shaped when converted, by {}: it is not every record CloudTrail delivered, as delivered",
            parts.join("; ")
        ))
    }
}

/// Per-rule counts of one file or run: `<set>/<id>` → records dropped, or values redacted.
pub type RuleCounts = BTreeMap<String, u64>;

#[cfg(test)]
mod tests {
    use super::*;

    fn row(json: &str) -> Row<'_> {
        Row::parse(json.as_bytes(), "k", 0).unwrap()
    }

    #[test]
    fn the_built_in_sets_parse_and_are_versioned() {
        for name in ["noise", "secrets"] {
            let set = Shaping::builtin(name).unwrap();
            assert_eq!(set.name, name);
            assert!(set.version >= 1 && !set.rules.is_empty());
        }
        assert!(Shaping::builtin("other").unwrap_err().to_string().contains("noise, secrets"));
    }

    #[test]
    fn bad_sets_are_refused_with_the_reason() {
        let cases = [
            (r#"{"name":"a","version":1,"rules":[{"id":"x","action":"redact"}]}"#, "needs `keys`"),
            (r#"{"name":"a","version":1,"rules":[{"id":"x","action":"drop","keys":["k"]}]}"#, "for redact rules"),
            (r#"{"name":"a","version":1,"rules":[{"id":"x","action":"drop"},{"id":"x","action":"drop"}]}"#, "twice"),
            (r#"{"name":"a/b","version":1,"rules":[]}"#, "without '/'"),
            (r#"{"name":"a","version":1,"rules":[{"id":"x","action":"keep"}]}"#, "not a rule set"),
            (
                r#"{"name":"a","version":1,"rules":[{"id":"x","action":"drop","match":{"eventname":"X"}}]}"#,
                "unknown field",
            ),
        ];
        for (json, expected) in cases {
            let err = Shaping::parse_set(json).unwrap_err().to_string();
            assert!(err.contains(expected), "{json}: {err}");
        }
    }

    #[test]
    fn noise_drops_service_kms_calls_and_keeps_a_users() {
        let shaping = Shaping { sets: vec![Shaping::builtin("noise").unwrap()] };
        let service = r#"{"eventTime":"2024-01-01T00:00:00Z","eventSource":"kms.amazonaws.com","eventName":"Decrypt","readOnly":true,"userIdentity":{"type":"AWSService","invokedBy":"s3.amazonaws.com"},"sourceIPAddress":"s3.amazonaws.com"}"#;
        let user = r#"{"eventTime":"2024-01-01T00:00:00Z","eventSource":"kms.amazonaws.com","eventName":"Decrypt","readOnly":true,"userIdentity":{"type":"IAMUser"},"sourceIPAddress":"203.0.113.9"}"#;
        let user_delete = r#"{"eventTime":"2024-01-01T00:00:00Z","eventSource":"kms.amazonaws.com","eventName":"ScheduleKeyDeletion","readOnly":false,"userIdentity":{"type":"AWSService"}}"#;
        assert!(shaping.apply(&mut row(service)).dropped.is_some());
        assert!(shaping.apply(&mut row(user)).dropped.is_none());
        assert!(shaping.apply(&mut row(user_delete)).dropped.is_none(), "key management is never noise");
    }

    #[test]
    fn redaction_replaces_string_values_of_named_keys_only() {
        let keys = vec!["sessionToken".to_string(), "x-amz-id-2".to_string()];
        let body = r#"{"credentials":{"accessKeyId":"ASIA","sessionToken":"IQo\"Jb3==","expiration":"x"},"n":1.50,"note":"sessionToken","list":[{"x-amz-id-2" : "abc"}],"sessionToken":null}"#;
        let (out, n) = redact_keys(body, &keys).unwrap();
        assert_eq!(n, 2);
        assert_eq!(
            out,
            r#"{"credentials":{"accessKeyId":"ASIA","sessionToken":"REDACTED","expiration":"x"},"n":1.50,"note":"sessionToken","list":[{"x-amz-id-2" : "REDACTED"}],"sessionToken":null}"#
        );
        assert_eq!(redact_keys(&out, &keys), None, "redacting again changes nothing");
        assert_eq!(redact_keys(r#"{"a":"sessionToken"}"#, &keys), None);
    }

    #[test]
    fn secrets_redacts_a_session_token_in_an_assume_role_response() {
        let shaping = Shaping { sets: vec![Shaping::builtin("secrets").unwrap()] };
        let json = r#"{"eventTime":"2024-01-01T00:00:00Z","eventSource":"sts.amazonaws.com","eventName":"AssumeRole","responseElements":{"credentials":{"accessKeyId":"ASIAX","sessionToken":"secret","expiration":"Jan 1, 2024"}},"additionalEventData":{"x-amz-id-2":"hostid"}}"#;
        let mut r = row(json);
        let outcome = shaping.apply(&mut r);
        assert!(outcome.dropped.is_none());
        assert_eq!(outcome.redacted.iter().map(|(_, n)| n).sum::<u32>(), 2, "{outcome:?}");
        let back: serde_json::Value = serde_json::from_str(&r.to_json()).unwrap();
        assert_eq!(back["responseElements"]["credentials"]["sessionToken"], REDACTED);
        assert_eq!(back["responseElements"]["credentials"]["accessKeyId"], "ASIAX");
        assert_eq!(back["additionalEventData"]["x-amz-id-2"], REDACTED);
    }
}
