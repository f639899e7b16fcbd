//! Hand-written bodies of single calls of services otherwise covered by the generic body:
//! Secrets Manager, Config, Auto Scaling, Service Quotas, CloudTrail and ECR.

use crate::ids::{push_b64, push_hex};
use crate::json::Json;

use super::{Call, Extra, generic, java_date, resource};

/// Secrets Manager bodies.
pub(super) fn write_secrets_manager(j: &mut Json, rng: &mut fastrand::Rng, c: &Call, x: &mut Extra) {
    let ev = c.ev;
    match ev.name {
        "GetSecretValue" | "DescribeSecret" => {
            j.obj("requestParameters");
            j.kv_raw("secretId", if rng.bool() { &c.target.arn } else { &c.target.name });
            j.close();
            j.kv_null("responseElements");
        }
        _ => generic::write(j, rng, c, x),
    }
}

/// AWS Config bodies.
pub(super) fn write_config(j: &mut Json, rng: &mut fastrand::Rng, c: &Call, x: &mut Extra) {
    let ev = c.ev;
    match ev.name {
        "PutEvaluations" => {
            j.obj("requestParameters");
            j.arr("evaluations");
            for _ in 0..rng.usize(1..4) {
                j.open();
                j.kv("complianceResourceType", "AWS::EC2::SecurityGroup");
                j.kv_with("complianceResourceId", |b| {
                    b.push_str("sg-0");
                    push_hex(b, rng, 16);
                });
                j.kv("complianceType", if rng.u8(0..5) == 0 { "NON_COMPLIANT" } else { "COMPLIANT" });
                java_date(j, "orderingTimestamp", c.ctx.event_secs - 60);
                j.close();
            }
            j.close_arr();
            j.kv_with("resultToken", |b| push_b64(b, rng, 400));
            j.kv_bool("testMode", false);
            j.close();
            if c.error {
                j.kv_null("responseElements");
            } else {
                j.obj("responseElements");
                j.arr("failedEvaluations");
                j.close_arr();
                j.close();
            }
        }
        _ => generic::write(j, rng, c, x),
    }
}

/// Auto Scaling bodies.
pub(super) fn write_autoscaling(j: &mut Json, rng: &mut fastrand::Rng, c: &Call, x: &mut Extra) {
    let ev = c.ev;
    match ev.name {
        "PutScalingPolicy" => {
            j.obj("requestParameters");
            j.kv_raw("autoScalingGroupName", &c.target.name);
            j.kv("policyName", "cpu-target-tracking");
            j.kv("policyType", "TargetTrackingScaling");
            j.obj("targetTrackingConfiguration");
            j.obj("predefinedMetricSpecification");
            j.kv("predefinedMetricType", "ASGAverageCPUUtilization");
            j.close();
            j.kv_num("targetValue", "70.50");
            j.kv_bool("disableScaleIn", false);
            j.close();
            j.close();
            j.kv_null("responseElements");
        }
        "SetDesiredCapacity" => {
            j.obj("requestParameters");
            j.kv_raw("autoScalingGroupName", &c.target.name);
            j.kv_u64("desiredCapacity", rng.u64(0..12));
            j.kv_bool("honorCooldown", false);
            j.close();
            j.kv_null("responseElements");
        }
        _ => generic::write(j, rng, c, x),
    }
}

/// Service Quotas bodies.
pub(super) fn write_service_quotas(j: &mut Json, rng: &mut fastrand::Rng, c: &Call, x: &mut Extra) {
    let ev = c.ev;
    match ev.name {
        "RequestServiceQuotaIncrease" => {
            j.obj("requestParameters");
            j.kv("serviceCode", "ec2");
            j.kv("quotaCode", "L-1216C47A");
            j.kv_num("desiredValue", "1e3");
            j.close();
            if c.error {
                j.kv_null("responseElements");
            } else {
                j.obj("responseElements");
                j.obj("requestedQuota");
                j.kv_with("id", |b| push_hex(b, rng, 32));
                j.kv("serviceCode", "ec2");
                j.kv("quotaCode", "L-1216C47A");
                j.kv_num("desiredValue", "1000.0");
                j.kv("status", "PENDING");
                java_date(j, "created", c.ctx.event_secs);
                j.kv_with("requester", |b| {
                    b.push_str("{\\\"accountId\\\":\\\"");
                    b.push_str(c.ctx.account);
                    b.push_str("\\\",\\\"callerArn\\\":\\\"");
                    b.push_str(&c.caller.arn);
                    b.push_str("\\\"}");
                });
                j.kv_bool("globalQuota", false);
                j.kv("unit", "None");
                j.close();
                j.close();
            }
        }
        _ => generic::write(j, rng, c, x),
    }
}

/// CloudTrail bodies.
pub(super) fn write_cloudtrail(j: &mut Json, rng: &mut fastrand::Rng, c: &Call, x: &mut Extra) {
    let ev = c.ev;
    match ev.name {
        "LookupEvents" => {
            j.obj("requestParameters");
            j.arr("lookupAttributes");
            j.open();
            j.kv("attributeKey", "EventName");
            j.kv("attributeValue", ["ConsoleLogin", "CreateAccessKey", "StopLogging", "DeleteTrail"][rng.usize(0..4)]);
            j.close();
            j.close_arr();
            java_date(j, "startTime", c.ctx.event_secs - 7 * 86_400);
            java_date(j, "endTime", c.ctx.event_secs);
            j.kv_u64("maxResults", 50);
            j.close();
            j.kv_null("responseElements");
        }
        _ => generic::write(j, rng, c, x),
    }
}

/// ECR bodies.
pub(super) fn write_ecr(j: &mut Json, rng: &mut fastrand::Rng, c: &Call, x: &mut Extra) {
    let ev = c.ev;
    match ev.name {
        "GetAuthorizationToken" => {
            j.obj("requestParameters");
            j.close();
            j.kv_null("responseElements");
        }
        "BatchGetImage" | "GetDownloadUrlForLayer" | "BatchCheckLayerAvailability" => {
            j.obj("requestParameters");
            j.kv("registryId", c.ctx.account);
            j.kv_raw("repositoryName", &c.target.name);
            if ev.name == "BatchGetImage" {
                j.arr("imageIds");
                j.open();
                j.kv("imageTag", ["latest", "v1.42.0", "main-3f9c2e1"][rng.usize(0..3)]);
                j.close();
                j.close_arr();
                j.arr("acceptedMediaTypes");
                j.str("application/vnd.docker.distribution.manifest.v2+json");
                j.str("application/vnd.oci.image.manifest.v1+json");
                j.close_arr();
            } else {
                j.kv_with("layerDigest", |b| {
                    b.push_str("sha256:");
                    push_hex(b, rng, 64);
                });
            }
            j.close();
            j.kv_null("responseElements");
            resource(x, Some(c.ctx.account), "AWS::ECR::Repository", &c.target.arn);
        }
        _ => generic::write(j, rng, c, x),
    }
}
