//! Record contents: fields, shapes, variety, key order.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{TimeZone, Utc};
use parquetrail_synth::{RecordContext, record, record_json, sample_records, sample_records_json};
use serde_json::Value;

use crate::common::{big_tree, record_texts, top_level_keys};

/// CloudTrail's top-level key order (optional keys in their slots).
const ORDER: &[&str] = &[
    "eventVersion",
    "userIdentity",
    "eventTime",
    "eventSource",
    "eventName",
    "awsRegion",
    "sourceIPAddress",
    "userAgent",
    "errorCode",
    "errorMessage",
    "requestParameters",
    "responseElements",
    "additionalEventData",
    "requestID",
    "eventID",
    "readOnly",
    "resources",
    "eventType",
    "apiVersion",
    "managementEvent",
    "recipientAccountId",
    "sharedEventID",
    "serviceEventDetails",
    "vpcEndpointId",
    "vpcEndpointAccountId",
    "eventAnnotation",
    "eventCategory",
    "tlsDetails",
    "sessionCredentialFromConsole",
    "addendum",
];

const INSIGHT_ORDER: &[&str] = &[
    "eventVersion",
    "eventTime",
    "awsRegion",
    "eventID",
    "eventType",
    "recipientAccountId",
    "sharedEventID",
    "insightDetails",
    "eventCategory",
];

fn api_records() -> impl Iterator<Item = &'static Value> {
    big_tree().iter().filter(|p| !p.file.insight).flat_map(|p| p.records.iter())
}

fn is_guid(s: &str) -> bool {
    let parts: Vec<&str> = s.split('-').collect();
    parts.iter().map(|p| p.len()).eq([8, 4, 4, 4, 12]) && parts.iter().all(|p| p.bytes().all(|b| b.is_ascii_hexdigit()))
}

fn str_of<'a>(r: &'a Value, k: &str) -> &'a str {
    r[k].as_str().unwrap_or_else(|| panic!("{k} is not a string in {r}"))
}

#[test]
fn keys_follow_cloudtrail_order() {
    let mut checked = 0;
    for p in big_tree() {
        let order = if p.file.insight { INSIGHT_ORDER } else { ORDER };
        for text in record_texts(&p.text) {
            let keys = top_level_keys(text);
            let pos: Vec<usize> = keys
                .iter()
                .map(|k| order.iter().position(|o| o == k).unwrap_or_else(|| panic!("unexpected key {k} in {text}")))
                .collect();
            assert!(pos.windows(2).all(|w| w[0] < w[1]), "order {keys:?}");
            checked += 1;
        }
    }
    let records: usize = big_tree().iter().map(|p| p.records.len()).sum();
    assert_eq!(checked, records);
}

#[test]
fn every_record_has_valid_required_fields() {
    let versions = ["1.08", "1.09", "1.10", "1.11"];
    let mut ids = BTreeSet::new();
    let mut n = 0usize;
    for p in big_tree().iter().filter(|p| !p.file.insight) {
        for r in &p.records {
            let o = r.as_object().unwrap();
            let v = str_of(r, "eventVersion");
            assert!(versions.contains(&v), "{v}");
            assert!(o["userIdentity"].is_object());
            assert!(str_of(r, "eventSource").ends_with(".amazonaws.com"));
            assert!(!str_of(r, "eventName").is_empty());
            assert!(!str_of(r, "sourceIPAddress").is_empty());
            assert!(o["requestParameters"].is_object() || o["requestParameters"].is_null());
            assert!(o["responseElements"].is_object() || o["responseElements"].is_null());
            let eid = str_of(r, "eventID");
            assert!(is_guid(eid), "{eid}");
            assert!(ids.insert(eid.to_owned()), "duplicate eventID {eid}");
            if let Some(req) = o.get("requestID") {
                assert!(!req.as_str().unwrap().is_empty());
            }
            assert!(o["readOnly"].is_boolean());
            assert!(o["managementEvent"].is_boolean());
            assert!(matches!(str_of(r, "eventType"), "AwsApiCall" | "AwsServiceEvent" | "AwsConsoleSignIn"));
            let data = str_of(r, "eventCategory") == "Data";
            assert_eq!(data, !o["managementEvent"].as_bool().unwrap());
            if data {
                assert!(!o["resources"].as_array().unwrap().is_empty(), "{r}");
            }
            if let Some(res) = o.get("resources") {
                for x in res.as_array().unwrap() {
                    assert!(x["ARN"].as_str().unwrap().starts_with("arn:aws:"), "{x}");
                    assert!(x["type"].as_str().unwrap().starts_with("AWS::"), "{x}");
                }
            }
            if o["readOnly"] == true && str_of(r, "eventSource") != "sts.amazonaws.com" {
                assert!(o["responseElements"].is_null(), "{r}");
            }
            if o.contains_key("errorCode") {
                assert!(o.contains_key("errorMessage"));
            }
            if let Some(tls) = o.get("tlsDetails") {
                assert!(str_of(tls, "tlsVersion").starts_with("TLSv1."));
                assert!(!str_of(tls, "cipherSuite").is_empty());
                assert!(!str_of(tls, "clientProvidedHostHeader").is_empty());
                if tls.get("keyExchange").is_some() {
                    assert_eq!(v, "1.11");
                }
            }
            if o.contains_key("vpcEndpointAccountId") {
                assert!(v >= "1.09");
                assert!(str_of(r, "vpcEndpointId").starts_with("vpce-"));
            }
            if let Some(s) = o.get("sessionCredentialFromConsole") {
                assert_eq!(s, "true");
            }
            n += 1;
        }
    }
    assert!(n > 10_000, "{n} records");
}

#[test]
fn variety_of_services_names_and_identities() {
    let mut names = BTreeSet::new();
    let mut sources = BTreeSet::new();
    let mut types: BTreeMap<String, usize> = BTreeMap::new();
    let mut event_types = BTreeSet::new();
    let mut versions = BTreeSet::new();
    let mut errors = 0usize;
    let mut error_codes = BTreeSet::new();
    let mut n = 0usize;
    for r in api_records() {
        names.insert(str_of(r, "eventName"));
        sources.insert(str_of(r, "eventSource"));
        versions.insert(str_of(r, "eventVersion"));
        event_types.insert(str_of(r, "eventType"));
        let t = r["userIdentity"]["type"].as_str().unwrap_or("(service event)");
        *types.entry(t.to_owned()).or_default() += 1;
        if r.get("errorMessage").is_some() {
            errors += 1;
        }
        if let Some(c) = r.get("errorCode") {
            error_codes.insert(c.as_str().unwrap());
        }
        n += 1;
    }
    assert!(names.len() >= 150, "{} event names", names.len());
    assert!(sources.len() >= 40, "{} services", sources.len());
    for t in [
        "IAMUser",
        "AssumedRole",
        "Root",
        "AWSService",
        "FederatedUser",
        "IdentityCenterUser",
        "WebIdentityUser",
        "SAMLUser",
        "(service event)",
    ] {
        assert!(types.get(t).copied().unwrap_or(0) > 0, "no {t}: {types:?}");
    }
    assert_eq!(versions.len(), 4);
    assert_eq!(event_types.len(), 3, "{event_types:?}");
    assert!(errors * 100 >= n * 4 && errors * 100 <= n * 11, "{errors} errors of {n}");
    for c in ["AccessDenied", "ThrottlingException", "NoSuchEntityException"] {
        assert!(error_codes.contains(c), "{c} missing from {error_codes:?}");
    }
}

#[test]
fn identity_shapes() {
    let mut seen = BTreeSet::new();
    for r in api_records() {
        let u = &r["userIdentity"];
        match u["type"].as_str() {
            Some("AssumedRole") => {
                let sc = &u["sessionContext"];
                let issuer = &sc["sessionIssuer"];
                assert_eq!(issuer["type"], "Role");
                for k in ["principalId", "arn", "accountId", "userName"] {
                    assert!(issuer[k].is_string(), "{k} in {u}");
                }
                assert!(sc["webIdFederationData"].is_object());
                assert!(sc["attributes"]["creationDate"].is_string());
                assert!(matches!(sc["attributes"]["mfaAuthenticated"].as_str(), Some("true" | "false")));
                assert!(u["principalId"].as_str().unwrap().starts_with("AROA"));
                assert!(u["arn"].as_str().unwrap().contains(":assumed-role/"));
                if sc.get("sourceIdentity").is_some() {
                    seen.insert("sourceIdentity");
                }
                if sc.get("ec2RoleDelivery") == Some(&Value::from("2.0")) {
                    seen.insert("ec2RoleDelivery");
                }
                if sc["webIdFederationData"].get("federatedProvider").is_some() {
                    seen.insert("federatedProvider");
                }
                if let Some(s) = u.get("inScopeOf") {
                    for k in ["sourceArn", "sourceAccount", "issuerType", "credentialsIssuedTo"] {
                        assert!(s[k].is_string(), "{k} in {u}");
                    }
                    seen.insert("inScopeOf");
                }
                if sc.get("futureField").is_some() {
                    seen.insert("futureField");
                }
            }
            Some("IdentityCenterUser") => {
                assert!(u["onBehalfOf"]["userId"].is_string());
                assert!(u["onBehalfOf"]["identityStoreArn"].as_str().unwrap().contains(":identitystore/d-"));
                assert!(u["credentialId"].is_string());
                seen.insert("onBehalfOf");
            }
            Some("AWSService") => {
                assert!(u["invokedBy"].as_str().unwrap().ends_with(".amazonaws.com"));
            }
            Some("Root") => {
                assert!(u["arn"].as_str().unwrap().ends_with(":root"));
                if u["sessionContext"]["assumedRoot"] == "true" {
                    seen.insert("assumedRoot");
                }
                if u.get("sessionContext").is_none() {
                    seen.insert("rootWithoutSession");
                }
            }
            Some("WebIdentityUser") | Some("SAMLUser") => {
                assert!(u["identityProvider"].is_string());
                assert!(u["userName"].is_string());
            }
            _ => {}
        }
    }
    for s in [
        "sourceIdentity",
        "ec2RoleDelivery",
        "federatedProvider",
        "inScopeOf",
        "onBehalfOf",
        "assumedRoot",
        "rootWithoutSession",
        "futureField",
    ] {
        assert!(seen.contains(s), "{s} never generated");
    }
}

#[test]
fn hallmark_events_have_real_shapes() {
    let mut seen = BTreeSet::new();
    for r in api_records() {
        let (src, name) = (str_of(r, "eventSource"), str_of(r, "eventName"));
        match (src, name) {
            ("s3.amazonaws.com", "GetObject" | "PutObject") => {
                let res = r["resources"].as_array().unwrap();
                assert_eq!(res[0]["type"], "AWS::S3::Object");
                assert_eq!(res[1]["type"], "AWS::S3::Bucket");
                assert!(r["additionalEventData"]["bytesTransferredOut"].is_u64());
                assert!(r["requestParameters"]["key"].is_string());
                assert_eq!(r["eventCategory"], "Data");
                seen.insert(name);
            }
            ("sts.amazonaws.com", "AssumeRole") => {
                assert!(r["requestParameters"]["roleArn"].is_string());
                if r.get("errorCode").is_none() {
                    assert!(r["responseElements"]["credentials"]["sessionToken"].is_string());
                }
                let role_acct = r["resources"][0]["accountId"].as_str().unwrap();
                if role_acct != str_of(r, "recipientAccountId") {
                    assert!(is_guid(str_of(r, "sharedEventID")), "{r}");
                    seen.insert("crossAccountAssumeRole");
                }
                seen.insert(name);
            }
            ("kms.amazonaws.com", "Decrypt" | "GenerateDataKey") => {
                assert_eq!(r["resources"][0]["type"], "AWS::KMS::Key");
                if r["userIdentity"]["invokedBy"].is_string() {
                    seen.insert("kmsInvokedBy");
                }
            }
            ("lambda.amazonaws.com", "Invoke") => {
                assert_eq!(r["eventCategory"], "Data");
                assert_eq!(r["resources"][0]["type"], "AWS::Lambda::Function");
                seen.insert(name);
            }
            ("signin.amazonaws.com", "ConsoleLogin") => {
                assert_eq!(r["eventType"], "AwsConsoleSignIn");
                let outcome = r["responseElements"]["ConsoleLogin"].as_str().unwrap();
                assert!(matches!(outcome, "Success" | "Failure"));
                assert_eq!(outcome == "Failure", r.get("errorMessage").is_some());
                assert!(matches!(r["additionalEventData"]["MFAUsed"].as_str(), Some("Yes" | "No")));
                assert!(r["additionalEventData"]["LoginTo"].is_string());
                seen.insert(outcome);
            }
            ("iam.amazonaws.com", n) if n.starts_with("Create") || n.starts_with("Attach") => {
                seen.insert("iamWrite");
            }
            _ => {}
        }
        if let Some(a) = r.get("addendum") {
            assert!(matches!(a["reason"].as_str(), Some("DELIVERY_DELAY" | "UPDATED_DATA")));
            seen.insert("addendum");
        }
        if r.get("eventAnnotation").is_some() {
            seen.insert("eventAnnotation");
        }
        if r.get("vpcEndpointAccountId").is_some() {
            seen.insert("vpcEndpointAccountId");
        }
        if r["tlsDetails"].get("keyExchange").is_some() {
            seen.insert("keyExchange");
        }
        if r.get("serviceEventDetails").is_some() {
            seen.insert("serviceEventDetails");
        }
        let ip = str_of(r, "sourceIPAddress");
        if ip.contains(':') {
            seen.insert("ipv6");
        } else if ip.ends_with(".amazonaws.com") {
            seen.insert("serviceIp");
        } else if ip == "AWS Internal" {
            seen.insert("awsInternalIp");
        }
    }
    for s in [
        "GetObject",
        "PutObject",
        "AssumeRole",
        "crossAccountAssumeRole",
        "kmsInvokedBy",
        "Invoke",
        "Success",
        "Failure",
        "iamWrite",
        "addendum",
        "eventAnnotation",
        "vpcEndpointAccountId",
        "keyExchange",
        "serviceEventDetails",
        "ipv6",
        "serviceIp",
        "awsInternalIp",
    ] {
        assert!(seen.contains(s), "{s} never generated");
    }
}

#[test]
fn bodies_carry_number_lexemes_escapes_and_unicode() {
    let mut found = BTreeSet::new();
    for p in big_tree() {
        for needle in [
            ":1.50",
            ":1e3",
            ":2.5E-4",
            "\\u00e9",
            "\\n",
            "\\\"",
            "\\t",
            "\\\\",
            "é",
            "日本語",
            "\"requestParameters\":null",
            "\"responseElements\":null",
        ] {
            if p.text.contains(needle) {
                found.insert(needle);
            }
        }
    }
    assert_eq!(found.len(), 12, "{found:?}");
}

#[test]
fn records_are_realistically_sized() {
    let (mut bytes, mut n) = (0usize, 0usize);
    for p in big_tree().iter().filter(|p| !p.file.insight) {
        bytes += p.file.json_bytes;
        n += p.records.len();
    }
    let avg = bytes / n;
    assert!((900..=2500).contains(&avg), "average record {avg} bytes");
}

#[test]
fn sample_records_are_deterministic() {
    let a = sample_records_json(7, 300);
    assert_eq!(a, sample_records_json(7, 300));
    assert_ne!(a, sample_records_json(8, 300));
    let v = sample_records(7, 300);
    assert_eq!(v.len(), 300);
    for (text, value) in a.iter().zip(&v) {
        assert_eq!(&serde_json::from_str::<Value>(text).unwrap(), value);
        assert!(value["eventTime"].as_str().unwrap().starts_with("2024-03-01T"));
    }
    let accounts: BTreeSet<&str> = v.iter().map(|r| str_of(r, "recipientAccountId")).collect();
    assert_eq!(accounts.len(), 3);
}

#[test]
fn single_record_api() {
    let ctx = RecordContext::new("123456789012", "eu-central-1", Utc.with_ymd_and_hms(2025, 1, 2, 3, 4, 5).unwrap());
    let mut rng = fastrand::Rng::with_seed(1);
    for _ in 0..200 {
        let r = record(&mut rng, &ctx);
        assert_eq!(r["recipientAccountId"], "123456789012");
        assert_eq!(r["awsRegion"], "eu-central-1");
        assert_eq!(r["eventTime"], "2025-01-02T03:04:05Z");
    }
    let mut a = String::new();
    let mut b = String::new();
    record_json(&mut fastrand::Rng::with_seed(5), &ctx, &mut a);
    record_json(&mut fastrand::Rng::with_seed(5), &ctx, &mut b);
    assert_eq!(a, b);
    assert!(a.starts_with("{\"eventVersion\":\"1.1") || a.starts_with("{\"eventVersion\":\"1.0"));
}
