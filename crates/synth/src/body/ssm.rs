//! Systems Manager calls: parameters, the agent's heartbeat, Run Command.

use crate::ids::push_hex;
use crate::json::Json;

use super::{Call, Extra, generic, hex_id, java_date, push_private_dns, push_private_ip, response, uuid};

const COMMENT: &str = "restart \\\"orders-api\\\" after deploy";

/// Systems Manager bodies.
pub(super) fn write(j: &mut Json, rng: &mut fastrand::Rng, c: &Call, x: &mut Extra) {
    let name = c.ev.name;
    match name {
        "GetParameter" | "GetParameters" | "GetParametersByPath" => {
            j.object("requestParameters", |j| {
                let p = [
                    "/prod/orders/db-password",
                    "/prod/orders/api-url",
                    "/shared/datadog/api-key",
                    "/staging/feature-flags/checkout",
                ];
                match name {
                    "GetParameter" => j.kv("name", p[rng.usize(0..p.len())]),
                    "GetParameters" => j.array("names", |j| {
                        for n in p.iter().take(rng.usize(1..5)) {
                            j.str(n);
                        }
                    }),
                    _ => {
                        j.kv("path", "/prod/orders/");
                        j.kv_bool("recursive", true);
                    }
                }
                j.kv_bool("withDecryption", rng.bool());
            });
            j.kv_null("responseElements");
        }
        "UpdateInstanceInformation" => {
            let ip = rng.u32(..);
            j.object("requestParameters", |j| {
                hex_id(j, rng, "instanceId", "i-0", 16);
                j.kv("agentVersion", "3.3.40.0");
                j.kv("agentStatus", "Active");
                j.kv("platformType", "Linux");
                j.kv("platformName", "Amazon Linux");
                j.kv("platformVersion", "2023");
                j.kv_with("iPAddress", |b| push_private_ip(b, ip));
                j.kv_with("computerName", |b| push_private_dns(b, ip));
                j.kv("agentName", "amazon-ssm-agent");
                j.kv_with("availabilityZone", |b| {
                    b.push_str(c.ctx.region);
                    b.push((b'a' + (ip >> 16) as u8 % 3) as char);
                });
            });
            j.kv_null("responseElements");
        }
        "PutParameter" => {
            j.object("requestParameters", |j| {
                j.kv("name", "/prod/orders/db-endpoint");
                j.kv_raw("description", "DB endpoint for \\\"orders\\\"\\nrotated monthly \\u2014 see runbook");
                j.kv("type", "SecureString");
                j.kv_bool("overwrite", true);
                j.kv("tier", "Standard");
            });
            response(j, c, |j| {
                j.kv_u64("version", rng.u64(2..40));
                j.kv("tier", "Standard");
            });
        }
        "SendCommand" => {
            j.object("requestParameters", |j| {
                j.array("instanceIds", |j| {
                    for _ in 0..rng.usize(1..4) {
                        j.str_with(|b| {
                            b.push_str("i-0");
                            push_hex(b, rng, 16);
                        });
                    }
                });
                j.kv("documentName", "AWS-RunShellScript");
                j.kv("parameters", "HIDDEN_DUE_TO_SECURITY_REASONS");
                j.kv_raw("comment", COMMENT);
                j.kv_bool("interactive", false);
            });
            response(j, c, |j| {
                j.object("command", |j| {
                    uuid(j, rng, "commandId");
                    j.kv("documentName", "AWS-RunShellScript");
                    j.kv("documentVersion", "$DEFAULT");
                    j.kv_raw("comment", COMMENT);
                    java_date(j, "expiresAfter", c.ctx.event_secs + 3600);
                    j.kv("parameters", "HIDDEN_DUE_TO_SECURITY_REASONS");
                    j.kv("status", "Pending");
                    java_date(j, "requestedDateTime", c.ctx.event_secs);
                    j.kv_u64("timeoutSeconds", 3600);
                    j.kv_u64("targetCount", 1);
                    j.kv_u64("completedCount", 0);
                    j.kv("maxConcurrency", "50");
                    j.kv("maxErrors", "0");
                });
            });
        }
        _ => generic::write(j, rng, c, x),
    }
}

#[cfg(test)]
mod tests {
    use crate::body::testing::{REGION, call, event_time, java_date};

    #[test]
    fn agent_heartbeat_describes_one_private_host() {
        let w = call("ssm", "UpdateInstanceInformation", 0, false);
        let req = &w.body["requestParameters"];
        let ip = req["iPAddress"].as_str().expect("iPAddress");
        assert!(ip.starts_with("10.0."), "{ip}");
        assert_eq!(req["computerName"], format!("ip-{}.ec2.internal", ip.replace('.', "-")));
        let az = req["availabilityZone"].as_str().unwrap();
        assert!(az.len() == REGION.len() + 1 && az.starts_with(REGION), "{az}");
    }

    #[test]
    fn send_command_expires_an_hour_after_the_call() {
        let w = call("ssm", "SendCommand", 1, false);
        let cmd = &w.body["responseElements"]["command"];
        assert_eq!(java_date(&cmd["requestedDateTime"]), event_time());
        assert_eq!(java_date(&cmd["expiresAfter"]), event_time() + chrono::Duration::hours(1));
        assert_eq!(cmd["comment"], w.body["requestParameters"]["comment"]);
        let ids = w.body["requestParameters"]["instanceIds"].as_array().unwrap();
        assert!((1..4).contains(&ids.len()));
        assert!(call("ssm", "SendCommand", 1, true).body["responseElements"].is_null());
    }
}
