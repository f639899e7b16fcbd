//! Hand-written bodies of single calls of services otherwise covered by the generic body:
//! Secrets Manager, Config, Auto Scaling, Service Quotas, CloudTrail and ECR.

use crate::ids::{push_b64, push_hex};
use crate::json::Json;

use super::{Call, Extra, generic, hex_id, java_date, resource, response};

/// Secrets Manager bodies.
pub(super) fn write_secrets_manager(j: &mut Json, rng: &mut fastrand::Rng, c: &Call, x: &mut Extra) {
    match c.ev.name {
        "GetSecretValue" | "DescribeSecret" => {
            j.object("requestParameters", |j| {
                j.kv_raw("secretId", if rng.bool() { &c.target.arn } else { &c.target.name });
            });
            j.kv_null("responseElements");
        }
        _ => generic::write(j, rng, c, x),
    }
}

/// AWS Config bodies.
pub(super) fn write_config(j: &mut Json, rng: &mut fastrand::Rng, c: &Call, x: &mut Extra) {
    match c.ev.name {
        "PutEvaluations" => {
            j.object("requestParameters", |j| {
                j.array("evaluations", |j| {
                    for _ in 0..rng.usize(1..4) {
                        j.element(|j| {
                            j.kv("complianceResourceType", "AWS::EC2::SecurityGroup");
                            hex_id(j, rng, "complianceResourceId", "sg-0", 16);
                            j.kv("complianceType", if rng.u8(0..5) == 0 { "NON_COMPLIANT" } else { "COMPLIANT" });
                            java_date(j, "orderingTimestamp", c.ctx.event_secs - 60);
                        });
                    }
                });
                j.kv_with("resultToken", |b| push_b64(b, rng, 400));
                j.kv_bool("testMode", false);
            });
            response(j, c, |j| j.array("failedEvaluations", |_| {}));
        }
        _ => generic::write(j, rng, c, x),
    }
}

/// Auto Scaling bodies.
pub(super) fn write_autoscaling(j: &mut Json, rng: &mut fastrand::Rng, c: &Call, x: &mut Extra) {
    match c.ev.name {
        "PutScalingPolicy" => {
            j.object("requestParameters", |j| {
                j.kv_raw("autoScalingGroupName", &c.target.name);
                j.kv("policyName", "cpu-target-tracking");
                j.kv("policyType", "TargetTrackingScaling");
                j.object("targetTrackingConfiguration", |j| {
                    j.object("predefinedMetricSpecification", |j| {
                        j.kv("predefinedMetricType", "ASGAverageCPUUtilization");
                    });
                    j.kv_num("targetValue", "70.50");
                    j.kv_bool("disableScaleIn", false);
                });
            });
            j.kv_null("responseElements");
        }
        "SetDesiredCapacity" => {
            j.object("requestParameters", |j| {
                j.kv_raw("autoScalingGroupName", &c.target.name);
                j.kv_u64("desiredCapacity", rng.u64(0..12));
                j.kv_bool("honorCooldown", false);
            });
            j.kv_null("responseElements");
        }
        _ => generic::write(j, rng, c, x),
    }
}

/// Service Quotas bodies.
pub(super) fn write_service_quotas(j: &mut Json, rng: &mut fastrand::Rng, c: &Call, x: &mut Extra) {
    match c.ev.name {
        "RequestServiceQuotaIncrease" => {
            j.object("requestParameters", |j| {
                j.kv("serviceCode", "ec2");
                j.kv("quotaCode", "L-1216C47A");
                j.kv_num("desiredValue", "1e3");
            });
            response(j, c, |j| {
                j.object("requestedQuota", |j| {
                    j.kv_with("id", |b| push_hex(b, rng, 32));
                    j.kv("serviceCode", "ec2");
                    j.kv("quotaCode", "L-1216C47A");
                    j.kv_num("desiredValue", "1000.0");
                    j.kv("status", "PENDING");
                    java_date(j, "created", c.ctx.event_secs);
                    // A JSON document as a string, escaped once more.
                    j.kv_with("requester", |b| {
                        b.push_str("{\\\"accountId\\\":\\\"");
                        b.push_str(c.ctx.account);
                        b.push_str("\\\",\\\"callerArn\\\":\\\"");
                        b.push_str(&c.caller.arn);
                        b.push_str("\\\"}");
                    });
                    j.kv_bool("globalQuota", false);
                    j.kv("unit", "None");
                });
            });
        }
        _ => generic::write(j, rng, c, x),
    }
}

/// CloudTrail bodies.
pub(super) fn write_cloudtrail(j: &mut Json, rng: &mut fastrand::Rng, c: &Call, x: &mut Extra) {
    match c.ev.name {
        "LookupEvents" => {
            j.object("requestParameters", |j| {
                j.array("lookupAttributes", |j| {
                    j.element(|j| {
                        j.kv("attributeKey", "EventName");
                        let names = ["ConsoleLogin", "CreateAccessKey", "StopLogging", "DeleteTrail"];
                        j.kv("attributeValue", names[rng.usize(0..4)]);
                    });
                });
                java_date(j, "startTime", c.ctx.event_secs - 7 * 86_400);
                java_date(j, "endTime", c.ctx.event_secs);
                j.kv_u64("maxResults", 50);
            });
            j.kv_null("responseElements");
        }
        _ => generic::write(j, rng, c, x),
    }
}

/// ECR bodies.
pub(super) fn write_ecr(j: &mut Json, rng: &mut fastrand::Rng, c: &Call, x: &mut Extra) {
    let name = c.ev.name;
    match name {
        "GetAuthorizationToken" => {
            j.kv_empty_obj("requestParameters");
            j.kv_null("responseElements");
        }
        "BatchGetImage" | "GetDownloadUrlForLayer" | "BatchCheckLayerAvailability" => {
            j.object("requestParameters", |j| {
                j.kv("registryId", c.ctx.account);
                j.kv_raw("repositoryName", &c.target.name);
                if name == "BatchGetImage" {
                    j.array("imageIds", |j| {
                        j.element(|j| j.kv("imageTag", ["latest", "v1.42.0", "main-3f9c2e1"][rng.usize(0..3)]));
                    });
                    j.array("acceptedMediaTypes", |j| {
                        j.str("application/vnd.docker.distribution.manifest.v2+json");
                        j.str("application/vnd.oci.image.manifest.v1+json");
                    });
                } else {
                    hex_id(j, rng, "layerDigest", "sha256:", 64);
                }
            });
            j.kv_null("responseElements");
            resource(x, Some(c.ctx.account), "AWS::ECR::Repository", &c.target.arn);
        }
        _ => generic::write(j, rng, c, x),
    }
}

#[cfg(test)]
mod tests {
    use crate::body::testing::{ACCOUNT, call};

    #[test]
    fn secret_reads_name_the_secret_by_arn_or_name() {
        for seed in 0..8 {
            let w = call("secretsmanager", "GetSecretValue", seed, false);
            let id = w.body["requestParameters"]["secretId"].as_str().expect("secretId").to_owned();
            assert!(id == w.arn() || id == w.name(), "{id}");
            assert!(w.body["responseElements"].is_null());
        }
    }

    #[test]
    fn quota_request_echoes_the_caller() {
        let w = call("servicequotas", "RequestServiceQuotaIncrease", 0, false);
        let quota = &w.body["responseElements"]["requestedQuota"];
        let requester: serde_json::Value =
            serde_json::from_str(quota["requester"].as_str().expect("requester")).expect("requester is JSON text");
        assert_eq!(requester["accountId"], ACCOUNT);
        assert_eq!(requester["callerArn"], "arn:aws:iam::111122223333:user/alice");
        assert_eq!(quota["quotaCode"], w.body["requestParameters"]["quotaCode"]);
    }

    #[test]
    fn image_pulls_name_and_list_the_repository() {
        let w = call("ecr", "BatchGetImage", 0, false);
        assert_eq!(w.body["requestParameters"]["repositoryName"], w.name());
        assert_eq!(w.body["requestParameters"]["registryId"], ACCOUNT);
        assert_eq!(w.resource("AWS::ECR::Repository").expect("repository")["ARN"], w.arn());
        let layer = call("ecr", "GetDownloadUrlForLayer", 0, false);
        let digest = layer.body["requestParameters"]["layerDigest"].as_str().unwrap();
        assert!(digest.starts_with("sha256:") && digest.len() == 7 + 64, "{digest}");
    }

    #[test]
    fn config_evaluations_return_no_failures() {
        let w = call("config", "PutEvaluations", 2, false);
        let evals = w.body["requestParameters"]["evaluations"].as_array().expect("evaluations");
        assert!(evals.iter().all(|e| e["complianceResourceId"].as_str().unwrap().starts_with("sg-0")));
        assert_eq!(w.body["responseElements"], serde_json::json!({"failedEvaluations": []}));
    }
}
