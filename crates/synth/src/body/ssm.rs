//! Systems Manager calls: parameters, the agent's heartbeat, Run Command.

use crate::ids::{push_hex, push_uuid};
use crate::json::{Json, push_u64};

use super::{Call, Extra, generic, java_date};

/// Systems Manager bodies.
pub(super) fn write(j: &mut Json, rng: &mut fastrand::Rng, c: &Call, x: &mut Extra) {
    let ev = c.ev;
    match ev.name {
        "GetParameter" | "GetParameters" | "GetParametersByPath" => {
            j.obj("requestParameters");
            let p = [
                "/prod/orders/db-password",
                "/prod/orders/api-url",
                "/shared/datadog/api-key",
                "/staging/feature-flags/checkout",
            ];
            match ev.name {
                "GetParameter" => j.kv("name", p[rng.usize(0..p.len())]),
                "GetParameters" => {
                    j.arr("names");
                    for n in p.iter().take(rng.usize(1..5)) {
                        j.str(n);
                    }
                    j.close_arr();
                }
                _ => {
                    j.kv("path", "/prod/orders/");
                    j.kv_bool("recursive", true);
                }
            }
            j.kv_bool("withDecryption", rng.bool());
            j.close();
            j.kv_null("responseElements");
        }
        "UpdateInstanceInformation" => {
            let ip = rng.u32(..);
            j.obj("requestParameters");
            j.kv_with("instanceId", |b| {
                b.push_str("i-0");
                push_hex(b, rng, 16);
            });
            j.kv("agentVersion", "3.3.40.0");
            j.kv("agentStatus", "Active");
            j.kv("platformType", "Linux");
            j.kv("platformName", "Amazon Linux");
            j.kv("platformVersion", "2023");
            j.kv_with("iPAddress", |b| {
                b.push_str("10.0.");
                push_u64(b, (ip & 0xFF) as u64);
                b.push('.');
                push_u64(b, (ip >> 8 & 0xFF) as u64);
            });
            j.kv_with("computerName", |b| {
                b.push_str("ip-10-0-");
                push_u64(b, (ip & 0xFF) as u64);
                b.push('-');
                push_u64(b, (ip >> 8 & 0xFF) as u64);
                b.push_str(".ec2.internal");
            });
            j.kv("agentName", "amazon-ssm-agent");
            j.kv_with("availabilityZone", |b| {
                b.push_str(c.ctx.region);
                b.push((b'a' + (ip >> 16) as u8 % 3) as char);
            });
            j.close();
            j.kv_null("responseElements");
        }
        "PutParameter" => {
            j.obj("requestParameters");
            j.kv("name", "/prod/orders/db-endpoint");
            j.kv_raw("description", "DB endpoint for \\\"orders\\\"\\nrotated monthly \\u2014 see runbook");
            j.kv("type", "SecureString");
            j.kv_bool("overwrite", true);
            j.kv("tier", "Standard");
            j.close();
            if c.error {
                j.kv_null("responseElements");
            } else {
                j.obj("responseElements");
                j.kv_u64("version", rng.u64(2..40));
                j.kv("tier", "Standard");
                j.close();
            }
        }
        "SendCommand" => {
            j.obj("requestParameters");
            j.arr("instanceIds");
            for _ in 0..rng.usize(1..4) {
                j.str_with(|b| {
                    b.push_str("i-0");
                    push_hex(b, rng, 16);
                });
            }
            j.close_arr();
            j.kv("documentName", "AWS-RunShellScript");
            j.kv("parameters", "HIDDEN_DUE_TO_SECURITY_REASONS");
            j.kv_raw("comment", "restart \\\"orders-api\\\" after deploy");
            j.kv_bool("interactive", false);
            j.close();
            if c.error {
                j.kv_null("responseElements");
            } else {
                j.obj("responseElements");
                j.obj("command");
                j.kv_with("commandId", |b| push_uuid(b, rng));
                j.kv("documentName", "AWS-RunShellScript");
                j.kv("documentVersion", "$DEFAULT");
                j.kv_raw("comment", "restart \\\"orders-api\\\" after deploy");
                java_date(j, "expiresAfter", c.ctx.event_secs + 3600);
                j.kv("parameters", "HIDDEN_DUE_TO_SECURITY_REASONS");
                j.kv("status", "Pending");
                java_date(j, "requestedDateTime", c.ctx.event_secs);
                j.kv_u64("timeoutSeconds", 3600);
                j.kv_u64("targetCount", 1);
                j.kv_u64("completedCount", 0);
                j.kv("maxConcurrency", "50");
                j.kv("maxErrors", "0");
                j.close();
                j.close();
            }
        }
        _ => generic::write(j, rng, c, x),
    }
}
