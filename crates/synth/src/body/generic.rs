//! The verb-driven body of calls without a hand-written one.

use crate::ids::{push_b64, push_uuid};
use crate::json::{Json, push_u64};

use super::{Call, Extra, java_date, push_resource_type, resource, tags};

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
        if c.svc.id_style == crate::catalog::IdStyle::Arn {
            j.raw_str(&t.arn);
        } else {
            j.raw_str(&t.name);
        }
    };
    let collection = ev.plural || ev.verb.is_empty() && ev.read_only;
    // requestParameters
    if collection {
        match rng.u8(0..6) {
            0 | 1 => j.kv_null("requestParameters"),
            2 => {
                j.obj("requestParameters");
                j.kv_u64("maxResults", [20u64, 50, 100, 1000][rng.usize(0..4)]);
                j.close();
            }
            3 => {
                j.obj("requestParameters");
                let n = 40 + rng.usize(0..160);
                j.kv_with("nextToken", |b| push_b64(b, rng, n));
                j.kv_u64("maxResults", 100);
                j.close();
            }
            4 => {
                j.obj("requestParameters");
                j.arr("filters");
                j.open();
                j.kv("name", "tag:Environment");
                j.arr("values");
                j.str("prod");
                if rng.bool() {
                    j.str("staging");
                }
                j.close_arr();
                j.close();
                j.close_arr();
                j.close();
            }
            _ => {
                j.obj("requestParameters");
                ident(j);
                j.close();
            }
        }
    } else {
        j.obj("requestParameters");
        ident(j);
        match ev.verb {
            "Create" | "Register" | "Request" => {
                if rng.bool() {
                    j.kv_raw("description", DESCRIPTIONS[rng.usize(0..DESCRIPTIONS.len())]);
                }
                match rng.u8(0..4) {
                    0 => {
                        j.obj("configuration");
                        j.kv_u64("retentionInDays", [7u64, 30, 90, 365][rng.usize(0..4)]);
                        j.kv_bool("enabled", true);
                        j.kv_num("threshold", ["0.75", "1.50", "99.9", "0.0", "2.5E-4"][rng.usize(0..5)]);
                        j.close();
                    }
                    1 => {
                        j.kv_with("clientToken", |b| push_uuid(b, rng));
                    }
                    _ => {}
                }
                tags(j, rng, "tags", "key", "value");
            }
            "Update" | "Modify" | "Put" | "Set" | "Change" => match rng.u8(0..3) {
                0 => {
                    j.kv_bool("enabled", rng.bool());
                    j.kv_u64("retentionInDays", [7u64, 30, 90][rng.usize(0..3)]);
                }
                1 => {
                    j.obj("settings");
                    j.kv("mode", ["ENFORCED", "AUDIT", "DISABLED"][rng.usize(0..3)]);
                    j.kv_num("samplingRate", ["0.05", "0.5", "1"][rng.usize(0..3)]);
                    j.arr("allowList");
                    j.str("10.0.0.0/8");
                    j.str("192.168.0.0/16");
                    j.close_arr();
                    j.close();
                }
                _ => j.kv_raw("description", DESCRIPTIONS[rng.usize(0..DESCRIPTIONS.len())]),
            },
            "Tag" => tags(j, rng, "tags", "key", "value"),
            "Untag" => {
                j.arr("tagKeys");
                j.str("Environment");
                j.close_arr();
            }
            "Start" | "Run" | "Execute" | "Send" | "Submit" | "Publish" | "Invoke" | "Converse" => {
                if rng.bool() {
                    j.kv_with("clientRequestToken", |b| push_uuid(b, rng));
                }
                if ev.name.contains("Model") || ev.name.starts_with("Converse") {
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
        j.close();
    }
    // responseElements: null for reads and failures, a small object for most writes.
    if ev.read_only || c.error {
        j.kv_null("responseElements");
    } else {
        match ev.verb {
            "Create" | "Register" | "Request" | "Start" | "Run" | "Execute" | "Publish" | "Send" => {
                j.obj("responseElements");
                let mut k = String::with_capacity(ev.noun.len() + 3);
                let mut ch = ev.noun.chars();
                if let Some(f) = ch.next() {
                    k.push(f.to_ascii_lowercase());
                    k.push_str(ch.as_str());
                }
                j.obj(&k);
                k.push_str("Arn");
                j.kv_raw(&k, &t.arn);
                j.kv_raw("name", &t.name);
                j.kv("status", ["CREATING", "ACTIVE", "PENDING", "RUNNING"][rng.usize(0..4)]);
                if rng.bool() {
                    // Epoch seconds with a fraction, as several JSON-protocol services return.
                    let mut n = String::with_capacity(16);
                    push_u64(&mut n, c.ctx.event_secs as u64);
                    n.push('.');
                    crate::json::push_padded(&mut n, rng.u64(0..1000), 3);
                    j.kv_num("createdAt", &n);
                } else {
                    java_date(j, "creationTime", c.ctx.event_secs);
                }
                j.close();
                j.close();
            }
            _ if rng.u8(0..3) == 0 => {
                j.obj("responseElements");
                j.kv_with("requestId", |b| push_uuid(b, rng));
                j.close();
            }
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
