//! The verb-driven body of calls without a hand-written one.

use crate::catalog::IdStyle;
use crate::ids::push_b64;
use crate::json::{Json, push_padded, push_u64};

use super::{Call, Extra, java_date, push_resource_type, resource, tags, uuid};

const DESCRIPTIONS: &[&str] = &[
    "Managed by \\\"terraform\\\"",
    "Created for incident INC-4821\\nDo not delete",
    "Ingest pipeline \\u2014 stage 2",
    "Réplica de producción",
    "C:\\\\deploy\\\\config",
    "tab\\tseparated",
    "Owner: platform-team",
];

/// A verb-driven body for calls without a hand-written one.
pub(super) fn write(j: &mut Json, rng: &mut fastrand::Rng, c: &Call, x: &mut Extra) {
    let ev = c.ev;
    let t = c.target;
    let ident = |j: &mut Json| {
        j.key(&ev.param);
        j.raw_str(if c.svc.id_style == IdStyle::Arn { &t.arn } else { &t.name });
    };
    let collection = ev.plural || ev.verb.is_empty() && ev.read_only;
    if collection {
        match rng.u8(0..6) {
            0 | 1 => j.kv_null("requestParameters"),
            2 => j.object("requestParameters", |j| j.kv_u64("maxResults", [20u64, 50, 100, 1000][rng.usize(0..4)])),
            3 => j.object("requestParameters", |j| {
                let n = 40 + rng.usize(0..160);
                j.kv_with("nextToken", |b| push_b64(b, rng, n));
                j.kv_u64("maxResults", 100);
            }),
            4 => j.object("requestParameters", |j| {
                j.array("filters", |j| {
                    j.element(|j| {
                        j.kv("name", "tag:Environment");
                        j.array("values", |j| {
                            j.str("prod");
                            if rng.bool() {
                                j.str("staging");
                            }
                        });
                    });
                });
            }),
            _ => j.object("requestParameters", ident),
        }
    } else {
        j.object("requestParameters", |j| {
            ident(j);
            request(j, rng, c);
        });
    }
    // responseElements: null for reads and failures, a small object for most writes.
    if ev.read_only || c.error {
        j.kv_null("responseElements");
    } else {
        match ev.verb {
            "Create" | "Register" | "Request" | "Start" | "Run" | "Execute" | "Publish" | "Send" => {
                j.object("responseElements", |j| created(j, rng, c));
            }
            _ if rng.u8(0..3) == 0 => j.object("responseElements", |j| uuid(j, rng, "requestId")),
            _ => j.kv_null("responseElements"),
        }
    }
    // Most single-resource management calls list the resource.
    if ev.data || (!collection && rng.u8(0..5) < 2) {
        let mut ty = String::with_capacity(40);
        push_resource_type(&mut ty, c.svc.ns, &ev.noun);
        resource(x, Some(c.ctx.account), &ty, &t.arn);
    }
}

/// The request members after the resource's id, by the call's verb.
fn request(j: &mut Json, rng: &mut fastrand::Rng, c: &Call) {
    let description = |j: &mut Json, rng: &mut fastrand::Rng| {
        j.kv_raw("description", DESCRIPTIONS[rng.usize(0..DESCRIPTIONS.len())]);
    };
    match c.ev.verb {
        "Create" | "Register" | "Request" => {
            if rng.bool() {
                description(j, rng);
            }
            match rng.u8(0..4) {
                0 => j.object("configuration", |j| {
                    j.kv_u64("retentionInDays", [7u64, 30, 90, 365][rng.usize(0..4)]);
                    j.kv_bool("enabled", true);
                    j.kv_num("threshold", ["0.75", "1.50", "99.9", "0.0", "2.5E-4"][rng.usize(0..5)]);
                }),
                1 => uuid(j, rng, "clientToken"),
                _ => {}
            }
            tags(j, rng, "tags", "key", "value");
        }
        "Update" | "Modify" | "Put" | "Set" | "Change" => match rng.u8(0..3) {
            0 => {
                j.kv_bool("enabled", rng.bool());
                j.kv_u64("retentionInDays", [7u64, 30, 90][rng.usize(0..3)]);
            }
            1 => j.object("settings", |j| {
                j.kv("mode", ["ENFORCED", "AUDIT", "DISABLED"][rng.usize(0..3)]);
                j.kv_num("samplingRate", ["0.05", "0.5", "1"][rng.usize(0..3)]);
                j.array("allowList", |j| {
                    j.str("10.0.0.0/8");
                    j.str("192.168.0.0/16");
                });
            }),
            _ => description(j, rng),
        },
        "Tag" => tags(j, rng, "tags", "key", "value"),
        "Untag" => j.array("tagKeys", |j| j.str("Environment")),
        "Start" | "Run" | "Execute" | "Send" | "Submit" | "Publish" | "Invoke" | "Converse" => {
            if rng.bool() {
                uuid(j, rng, "clientRequestToken");
            }
            let name = c.ev.name;
            if name.contains("Model") || name.starts_with("Converse") {
                j.kv(
                    "modelId",
                    [
                        "anthropic.claude-3-haiku-20240307-v1:0",
                        "amazon.titan-embed-text-v2:0",
                        "meta.llama3-8b-instruct-v1:0",
                    ][rng.usize(0..3)],
                );
            }
        }
        "Get" | "Describe" if rng.u8(0..4) == 0 => j.kv_bool("includeDeleted", false),
        _ => {}
    }
}

/// `"<noun>":{"<noun>Arn":…,"name":…,"status":…,<time>}`, what most creating calls return.
fn created(j: &mut Json, rng: &mut fastrand::Rng, c: &Call) {
    let noun = &c.ev.noun;
    let mut k = String::with_capacity(noun.len() + 3);
    let mut ch = noun.chars();
    if let Some(f) = ch.next() {
        k.push(f.to_ascii_lowercase());
        k.push_str(ch.as_str());
    }
    j.key(&k);
    k.push_str("Arn");
    j.element(|j| {
        j.kv_raw(&k, &c.target.arn);
        j.kv_raw("name", &c.target.name);
        j.kv("status", ["CREATING", "ACTIVE", "PENDING", "RUNNING"][rng.usize(0..4)]);
        if rng.bool() {
            // Epoch seconds with a fraction, as several JSON-protocol services return.
            let mut n = String::with_capacity(16);
            push_u64(&mut n, c.ctx.event_secs as u64);
            n.push('.');
            push_padded(&mut n, rng.u64(0..1000), 3);
            j.kv_num("createdAt", &n);
        } else {
            java_date(j, "creationTime", c.ctx.event_secs);
        }
    });
}

#[cfg(test)]
mod tests {
    use crate::body::testing::{ACCOUNT, REGION, call, call_where};

    #[test]
    fn creating_calls_name_the_resource_and_return_it() {
        let w = call("states", "CreateStateMachine", 0, false);
        assert_eq!(w.arn(), format!("arn:aws:states:{REGION}:{ACCOUNT}:state-machine/{}", w.name()));
        let req = &w.body["requestParameters"];
        assert_eq!(req["stateMachineArn"], w.arn(), "ARN-style services name resources by ARN: {req}");
        let tags = req["tags"].as_array().expect("tags");
        assert!((1..=5).contains(&tags.len()) && tags.iter().all(|t| t["key"].is_string() && t["value"].is_string()));
        let created = &w.body["responseElements"]["stateMachine"];
        assert_eq!(created["stateMachineArn"], w.arn());
        assert_eq!(created["name"], w.name());
        let stack = call("cloudformation", "CreateStack", 0, false);
        assert_eq!(stack.body["requestParameters"]["stackName"], stack.name(), "name-style services use names");
    }

    #[test]
    fn listed_resources_get_cloudformation_style_types() {
        let w = call_where("events", "PutRule", false, |w| !w.resources.is_empty());
        let r = &w.resources[0];
        assert_eq!(r["type"], "AWS::Events::Rule");
        assert_eq!(r["ARN"], w.arn());
        assert_eq!(r["accountId"], ACCOUNT);
    }

    #[test]
    fn reads_and_failures_return_nothing_and_collections_list_nothing() {
        let mut unfiltered = 0;
        for seed in 0..12 {
            assert!(call("cloudformation", "DescribeStacks", seed, false).body["responseElements"].is_null());
            assert!(call("cloudformation", "CreateStack", seed, true).body["responseElements"].is_null());
            let list = call("cloudformation", "ListStacks", seed, false);
            unfiltered += usize::from(list.body["requestParameters"].is_null());
            assert!(list.resources.is_empty(), "{:?}", list.resources);
        }
        assert!(unfiltered > 0, "some listings send no parameters");
    }
}
