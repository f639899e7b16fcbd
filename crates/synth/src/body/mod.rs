//! `requestParameters`, `responseElements`, `additionalEventData` and `resources` bodies.
//!
//! The calls that dominate real trails (S3 and DynamoDB data events, KMS, STS, EC2, Lambda,
//! IAM, console sign-in) get hand-written bodies shaped like the real ones; every other call
//! gets a generic body derived from its verb and resource noun, which is how CloudTrail's
//! free-form bodies look in aggregate: small nested objects keyed by the resource.
//!
//! This module holds what every body shares (the call, its target, the fields bodies decide
//! for later in the record, resource entries, tags, errors) and dispatches each call to the
//! module of its service.

mod analytics;
mod cloudwatch;
mod dynamodb;
mod ec2;
mod generic;
mod iam;
mod kms;
mod lambda;
mod management;
mod s3;
mod service_event;
mod signin;
mod sns;
mod sqs;
mod ssm;
mod sts;
#[cfg(test)]
mod testing;

use crate::catalog::Service;
use crate::identity::{Caller, FUNCTIONS, ROLES, RoleUse};
use crate::ids::{mix2, push_b64, push_hex, push_hex_from, push_upper_from, push_uuid, push_uuid_from};
use crate::json::{Json, push_u64};
use crate::names::{self, EventInfo, QUEUES, TABLES, hot};
use crate::time::push_java_date;

/// Where and when a record happens.
#[derive(Debug)]
pub(crate) struct Ctx<'a> {
    pub account: &'a str,
    pub account_hash: u64,
    pub region: &'a str,
    pub event_secs: i64,
    /// Other accounts of the organisation (cross-account callers and roles).
    pub peers: &'a [String],
    /// Management account (Identity Center lives there).
    pub mgmt_account: &'a str,
}

/// The resource a call is about, as JSON string content (already escaped).
#[derive(Debug, Default)]
pub(crate) struct Target {
    /// Primary name or id.
    pub name: String,
    /// ARN of the resource.
    pub arn: String,
    /// S3 object key, when the call addresses an object.
    pub key: String,
    /// Account owning the resource.
    pub account: String,
    /// Pool index of the resource.
    pub k: usize,
}

/// Fields written later in the record that bodies decide.
#[derive(Debug, Default)]
pub(crate) struct Extra {
    /// Elements of `resources` (without brackets); omitted when empty.
    pub resources: Json,
    /// `serviceEventDetails` object, when non-empty.
    pub details: Json,
    /// Write a `sharedEventID`.
    pub shared: bool,
    /// Omit `requestID` (console sign-in, some service events).
    pub no_request_id: bool,
    /// S3-style request id (16 upper-case characters) instead of a GUID.
    pub s3_request_id: bool,
}

impl Extra {
    pub(crate) fn clear(&mut self) {
        self.resources.clear();
        self.details.clear();
        self.shared = false;
        self.no_request_id = false;
        self.s3_request_id = false;
    }
}

/// Everything a body needs to know about the call.
#[derive(Debug)]
pub(crate) struct Call<'a> {
    pub svc: &'static Service,
    pub ev: &'static EventInfo,
    pub ctx: &'a Ctx<'a>,
    pub caller: &'a Caller,
    pub target: &'a Target,
    pub error: bool,
}

/// Chooses the target resource of a call.
pub(crate) fn pick_target(
    rng: &mut fastrand::Rng,
    ctx: &Ctx,
    svc: &Service,
    ev: &EventInfo,
    caller: &Caller,
    t: &mut Target,
) {
    t.name.clear();
    t.arn.clear();
    t.key.clear();
    t.account.clear();
    t.account.push_str(ctx.account);
    let region = if names::is_global(svc.ns) { "" } else { ctx.region };
    match svc.ns {
        "s3" => {
            t.k = hot(rng, names::BUCKETS.len());
            names::push_bucket(&mut t.name, ctx.account, t.k);
            t.arn.push_str("arn:aws:s3:::");
            t.arn.push_str(&t.name);
            names::push_object_key(&mut t.key, rng, t.k, ctx.event_secs);
        }
        "lambda" => {
            t.k = hot(rng, FUNCTIONS.len());
            t.name.push_str(FUNCTIONS[t.k]);
            arn(&mut t.arn, "lambda", region, ctx.account, "function:", &t.name);
        }
        "dynamodb" => {
            t.k = hot(rng, TABLES.len());
            t.name.push_str(TABLES[t.k]);
            arn(&mut t.arn, "dynamodb", region, ctx.account, "table/", &t.name);
        }
        "sqs" => {
            t.k = hot(rng, QUEUES.len());
            t.name.push_str(QUEUES[t.k]);
            arn(&mut t.arn, "sqs", region, ctx.account, "", &t.name);
        }
        "kms" => {
            t.k = hot(rng, 6);
            let h = mix2(ctx.account_hash ^ 0x4B45, t.k as u64);
            push_uuid_from(&mut t.name, (h as u128) << 64 | mix2(h, 1) as u128);
            arn(&mut t.arn, "kms", region, ctx.account, "key/", &t.name);
        }
        "sts" | "iam" if ev.noun.contains("Role") || svc.ns == "sts" => {
            t.k = hot(rng, ROLES.len());
            if svc.ns == "sts" {
                // Callers assume roles made for them: services their execution roles, web
                // identities their IRSA roles, people their SSO/SAML or cross-account roles.
                let want = |u: RoleUse| match (ev.name, caller.invoked_by) {
                    ("AssumeRoleWithWebIdentity", _) => u == RoleUse::Irsa,
                    ("AssumeRoleWithSAML", _) => u == RoleUse::Saml,
                    (_, Some("lambda.amazonaws.com")) => u == RoleUse::Lambda,
                    (_, Some("ecs-tasks.amazonaws.com")) => u == RoleUse::Ecs,
                    (_, Some("ec2.amazonaws.com")) => u == RoleUse::Ec2,
                    (_, Some("glue.amazonaws.com")) => u == RoleUse::Glue,
                    (_, Some(svc)) => u == RoleUse::ServiceLinked(svc),
                    _ => matches!(u, RoleUse::Ci | RoleUse::CrossAccount | RoleUse::Sso),
                };
                let fits: Vec<usize> = (0..ROLES.len()).filter(|&i| want(ROLES[i].1)).collect();
                if !fits.is_empty() {
                    t.k = fits[hot(rng, fits.len())];
                }
                if caller.invoked_by.is_none() && !ctx.peers.is_empty() && rng.u8(0..4) == 0 {
                    t.account.clear();
                    t.account.push_str(&ctx.peers[rng.usize(0..ctx.peers.len())]);
                    t.k = crate::identity::role("OrganizationAccountAccessRole");
                }
            }
            push_role(&mut t.name, ctx, t.k);
            arn(&mut t.arn, "iam", "", &t.account, "role/", &t.name);
        }
        "iam" if ev.noun.contains("User") || ev.noun.contains("AccessKey") => {
            t.k = hot(rng, crate::identity::USERS.len());
            t.name.push_str(crate::identity::USERS[t.k]);
            arn(&mut t.arn, "iam", "", ctx.account, "user/", &t.name);
        }
        "iam" if ev.noun.contains("Polic") => {
            t.k = hot(rng, 8);
            names::push_generic_name(&mut t.name, ctx.account_hash, "iam", "policy", t.k);
            arn(&mut t.arn, "iam", "", ctx.account, "policy/", &t.name);
        }
        "secretsmanager" => {
            t.k = hot(rng, 6);
            t.name.push_str(
                [
                    "prod/orders/db-credentials",
                    "prod/stripe/api-key",
                    "staging/orders/db-credentials",
                    "shared/datadog/api-key",
                    "prod/payments/signing-key",
                    "rds!cluster-7f1e",
                ][t.k],
            );
            arn(&mut t.arn, "secretsmanager", region, ctx.account, "secret:", &t.name);
            t.arn.push('-');
            push_upper_from(&mut t.arn, mix2(ctx.account_hash, t.k as u64), 6);
        }
        "logs" => {
            t.k = hot(rng, 12);
            if t.k < FUNCTIONS.len() {
                t.name.push_str("/aws/lambda/");
                t.name.push_str(FUNCTIONS[t.k]);
            } else {
                t.name.push_str(
                    ["/ecs/payments-service", "/aws/eks/prod/cluster", "/vpc/flow-logs", "aws-cloudtrail-logs"]
                        [t.k - FUNCTIONS.len()],
                );
            }
            arn(&mut t.arn, "logs", region, ctx.account, "log-group:", &t.name);
        }
        "ec2" => {
            t.k = hot(rng, 40);
            names::push_generic_id(&mut t.name, ctx.account_hash, "ec2", &ev.noun, t.k);
            let kind = match names::ec2_prefix(&ev.noun) {
                "i" => "instance/",
                "sg" => "security-group/",
                "vol" => "volume/",
                "snap" => "snapshot/",
                "vpc" => "vpc/",
                "subnet" => "subnet/",
                "ami" => "image/",
                "eni" => "network-interface/",
                _ => "resource/",
            };
            arn(&mut t.arn, "ec2", region, ctx.account, kind, &t.name);
        }
        "sns" => {
            t.k = hot(rng, 5);
            t.name.push_str(
                [
                    "orders-events",
                    "alerts-critical",
                    "budget-notifications",
                    "cloudtrail-delivery",
                    "deploy-notifications",
                ][t.k],
            );
            arn(&mut t.arn, "sns", region, ctx.account, "", &t.name);
        }
        ns => {
            t.k = hot(rng, 16);
            if svc.id_style == crate::catalog::IdStyle::Id {
                names::push_generic_id(&mut t.name, ctx.account_hash, ns, &ev.noun, t.k);
            } else {
                names::push_generic_name(&mut t.name, ctx.account_hash, ns, &ev.kebab, t.k);
            }
            arn(&mut t.arn, ns, region, ctx.account, &ev.kebab, "/");
            t.arn.push_str(&t.name);
        }
    }
}

/// The name of role `k`; Identity Center roles end in an account-specific suffix.
fn push_role(out: &mut String, ctx: &Ctx, k: usize) {
    let (name, use_) = ROLES[k];
    out.push_str(name);
    if use_ == RoleUse::Sso {
        push_hex_from(out, mix2(ctx.account_hash, k as u64), 16);
    }
}

/// `arn:aws:<ns>:<region>:<acct>:<kind><name>`.
fn arn(out: &mut String, ns: &str, region: &str, acct: &str, kind: &str, name: &str) {
    out.push_str("arn:aws:");
    out.push_str(ns);
    out.push(':');
    out.push_str(region);
    out.push(':');
    out.push_str(acct);
    out.push(':');
    out.push_str(kind);
    out.push_str(name);
}

/// Adds `{"accountId":…,"type":…,"ARN":…}` to `resources`.
fn resource(x: &mut Extra, account: Option<&str>, ty: &str, arn_escaped: &str) {
    x.resources.element(|r| {
        if let Some(a) = account {
            r.kv("accountId", a);
        }
        r.kv("type", ty);
        r.kv_raw("ARN", arn_escaped);
    });
}

/// `AWS::<Service>::<Noun>` style resource types.
fn push_resource_type(out: &mut String, ns: &str, noun: &str) {
    out.push_str("AWS::");
    match ns {
        "ec2" | "rds" | "ecs" | "ecr" | "eks" | "sns" | "sqs" | "kms" | "iam" | "acm" | "ssm" | "ram" => {
            out.push_str(&ns.to_ascii_uppercase())
        }
        "elasticloadbalancing" => out.push_str("ElasticLoadBalancingV2"),
        // CloudFormation's own spelling of the services whose namespace does not capitalise.
        "cloudwatch" => out.push_str("CloudWatch"),
        "cloudformation" => out.push_str("CloudFormation"),
        "cloudfront" => out.push_str("CloudFront"),
        "cloudtrail" => out.push_str("CloudTrail"),
        "states" => out.push_str("StepFunctions"),
        "dynamodb" => out.push_str("DynamoDB"),
        "secretsmanager" => out.push_str("SecretsManager"),
        "apigateway" => out.push_str("ApiGateway"),
        "autoscaling" => out.push_str("AutoScaling"),
        "codebuild" => out.push_str("CodeBuild"),
        "codepipeline" => out.push_str("CodePipeline"),
        "cognito-idp" => out.push_str("Cognito"),
        "elasticache" => out.push_str("ElastiCache"),
        "elasticfilesystem" => out.push_str("EFS"),
        "guardduty" => out.push_str("GuardDuty"),
        "securityhub" => out.push_str("SecurityHub"),
        "sagemaker" => out.push_str("SageMaker"),
        "servicequotas" => out.push_str("ServiceQuotas"),
        "identitystore" => out.push_str("IdentityStore"),
        "route53" => out.push_str("Route53"),
        "wafv2" => out.push_str("WAFv2"),
        "xray" => out.push_str("XRay"),
        "access-analyzer" => out.push_str("AccessAnalyzer"),
        "resource-explorer-2" => out.push_str("ResourceExplorer2"),
        "events" => out.push_str("Events"),
        "ce" => out.push_str("CE"),
        _ => {
            let mut first = true;
            for ch in ns.chars() {
                if ch == '-' {
                    first = true;
                    continue;
                }
                out.push(if first { ch.to_ascii_uppercase() } else { ch });
                first = false;
            }
        }
    }
    out.push_str("::");
    out.push_str(noun);
}

const TAG_KEYS: &[(&str, &[&str])] = &[
    ("Environment", &["prod", "staging", "dev"]),
    ("Owner", &["platform-team", "data-eng", "payments", "security"]),
    ("CostCenter", &["1234", "5678", "9012"]),
    ("ManagedBy", &["terraform", "cloudformation", "cdk"]),
    ("Name", &["web", "batch-worker", "orders-api", "bastion"]),
];

/// `"key":[{"<k>":…,"<v>":…},…]`: one to five tags, in the member names the service uses.
fn tags(j: &mut Json, rng: &mut fastrand::Rng, key: &str, k: &str, v: &str) {
    j.array(key, |j| {
        let n = rng.usize(1..=TAG_KEYS.len());
        let start = rng.usize(0..TAG_KEYS.len());
        for i in 0..n {
            let (tk, vals) = TAG_KEYS[(start + i) % TAG_KEYS.len()];
            j.element(|j| {
                j.kv(k, tk);
                j.kv(v, vals[rng.usize(0..vals.len())]);
            });
        }
    });
}

/// `"k":"Mar 1, 2024, 12:00:00 AM"`, the date format of Java SDK-based services.
fn java_date(j: &mut Json, k: &str, secs: i64) {
    j.kv_with(k, |b| push_java_date(b, secs));
}

/// `"k":"<prefix><n random hex digits>"`: the shape of most resource ids (`i-0…`, `sg-0…`).
fn hex_id(j: &mut Json, rng: &mut fastrand::Rng, k: &str, prefix: &str, n: usize) {
    j.kv_with(k, |b| {
        b.push_str(prefix);
        push_hex(b, rng, n);
    });
}

/// `"k":"<random UUID>"`.
fn uuid(j: &mut Json, rng: &mut fastrand::Rng, k: &str) {
    j.kv_with(k, |b| push_uuid(b, rng));
}

/// `responseElements`: `null` when the call failed, else the object `f` writes.
fn response(j: &mut Json, c: &Call, f: impl FnOnce(&mut Json)) {
    if c.error {
        j.kv_null("responseElements");
    } else {
        j.object("responseElements", f);
    }
}

/// `10.0.<a>.<b>` from the two low bytes of `ip`.
fn push_private_ip(out: &mut String, ip: u32) {
    out.push_str("10.0.");
    push_u64(out, (ip & 0xFF) as u64);
    out.push('.');
    push_u64(out, (ip >> 8 & 0xFF) as u64);
}

/// `ip-10-0-<a>-<b>.ec2.internal`, the host name of [`push_private_ip`]'s address.
fn push_private_dns(out: &mut String, ip: u32) {
    out.push_str("ip-10-0-");
    push_u64(out, (ip & 0xFF) as u64);
    out.push('-');
    push_u64(out, (ip >> 8 & 0xFF) as u64);
    out.push_str(".ec2.internal");
}

/// Writes `requestParameters`, `responseElements` and `additionalEventData`, and fills `x`.
pub(crate) fn write(j: &mut Json, rng: &mut fastrand::Rng, c: &Call, x: &mut Extra) {
    if c.ev.service_event {
        return service_event::write(j, rng, c, x);
    }
    match c.svc.ns {
        "s3" => s3::write(j, rng, c, x),
        "ec2" => ec2::write(j, rng, c, x),
        "kms" => kms::write(j, rng, c, x),
        "sts" => sts::write(j, rng, c, x),
        "lambda" => lambda::write(j, rng, c, x),
        "dynamodb" if c.ev.data => dynamodb::write_item(j, rng, c, x),
        "signin" => signin::write(j, rng, c, x),
        "iam" => iam::write(j, rng, c, x),
        "logs" => cloudwatch::write_logs(j, rng, c, x),
        "cloudwatch" => cloudwatch::write_metrics(j, rng, c, x),
        "sqs" if c.ev.data => sqs::write_message(j, rng, c, x),
        "sns" => sns::write(j, rng, c, x),
        "ssm" => ssm::write(j, rng, c, x),
        "secretsmanager" => management::write_secrets_manager(j, rng, c, x),
        "config" => management::write_config(j, rng, c, x),
        "autoscaling" => management::write_autoscaling(j, rng, c, x),
        "servicequotas" => management::write_service_quotas(j, rng, c, x),
        "cloudtrail" => management::write_cloudtrail(j, rng, c, x),
        "ecr" => management::write_ecr(j, rng, c, x),
        "athena" => analytics::write_athena(j, rng, c, x),
        "glue" => analytics::write_glue(j, rng, c, x),
        _ => generic::write(j, rng, c, x),
    }
}

/// Picks the caller-visible error for a failed call: `(errorCode, errorMessage)` where the
/// message is JSON string content (escaped).
pub(crate) fn error(rng: &mut fastrand::Rng, c: &Call, out_code: &mut String, out_msg: &mut String) {
    let ns = c.svc.ns;
    let action = c.ev.name.trim_end_matches(|ch: char| ch.is_ascii_digit() || ch == 'v');
    let query = matches!(
        ns,
        "iam"
            | "sts"
            | "cloudformation"
            | "autoscaling"
            | "elasticloadbalancing"
            | "rds"
            | "sns"
            | "sqs"
            | "elasticache"
            | "redshift"
    );
    let roll = if c.caller.arn.is_empty() { 60 } else { rng.u8(0..100) };
    if roll < 55 {
        match ns {
            "s3" => {
                out_code.push_str("AccessDenied");
                out_msg.push_str("Access Denied");
            }
            _ => {
                if ns == "ec2" {
                    out_code.push_str("Client.UnauthorizedOperation");
                    out_msg.push_str("You are not authorized to perform this operation. ");
                } else {
                    out_code.push_str(if query { "AccessDenied" } else { "AccessDeniedException" });
                }
                out_msg.push_str("User: ");
                out_msg.push_str(&c.caller.arn);
                out_msg.push_str(" is not authorized to perform: ");
                out_msg.push_str(ns);
                out_msg.push(':');
                out_msg.push_str(action);
                out_msg.push_str(" on resource: ");
                out_msg.push_str(&c.target.arn);
                if rng.u8(0..3) == 0 {
                    out_msg.push_str(" with an explicit deny in a service control policy");
                } else {
                    out_msg.push_str(" because no identity-based policy allows the ");
                    out_msg.push_str(ns);
                    out_msg.push(':');
                    out_msg.push_str(action);
                    out_msg.push_str(" action");
                }
                if ns == "ec2" {
                    out_msg.push_str(". Encoded authorization failure message: ");
                    let n = 120 + rng.usize(0..300);
                    push_b64(out_msg, rng, n);
                }
            }
        }
    } else if roll < 75 {
        match ns {
            "ec2" => {
                out_code.push_str("Client.RequestLimitExceeded");
                out_msg.push_str("Request limit exceeded.");
            }
            "s3" => {
                out_code.push_str("SlowDown");
                out_msg.push_str("Please reduce your request rate.");
            }
            _ => {
                out_code.push_str(if query { "Throttling" } else { "ThrottlingException" });
                out_msg.push_str("Rate exceeded");
            }
        }
    } else if roll < 92 {
        match ns {
            "s3" => {
                if c.ev.data {
                    out_code.push_str("NoSuchKey");
                    out_msg.push_str("The specified key does not exist.");
                } else {
                    out_code.push_str("NoSuchBucketPolicy");
                    out_msg.push_str("The bucket policy does not exist");
                }
            }
            "iam" => {
                out_code.push_str("NoSuchEntityException");
                out_msg.push_str("The ");
                out_msg.push_str(if c.target.arn.contains(":user/") { "user" } else { "role" });
                out_msg.push_str(" with name ");
                out_msg.push_str(&c.target.name);
                out_msg.push_str(" cannot be found.");
            }
            "ec2" => {
                let p = names::ec2_prefix(&c.ev.noun);
                out_code.push_str(match p {
                    "sg" => "Client.InvalidGroup.NotFound",
                    "vol" => "Client.InvalidVolume.NotFound",
                    _ => "Client.InvalidInstanceID.NotFound",
                });
                out_msg.push_str(match p {
                    "sg" => "The security group '",
                    "vol" => "The volume '",
                    _ => "The instance ID '",
                });
                out_msg.push_str(&c.target.name);
                out_msg.push_str("' does not exist");
            }
            "lambda" => {
                out_code.push_str("ResourceNotFoundException");
                out_msg.push_str("Function not found: ");
                out_msg.push_str(&c.target.arn);
            }
            "secretsmanager" => {
                out_code.push_str("ResourceNotFoundException");
                out_msg.push_str("Secrets Manager can't find the specified secret.");
            }
            "dynamodb" => {
                out_code.push_str("ResourceNotFoundException");
                out_msg.push_str("Requested resource not found");
            }
            _ => {
                out_code.push_str(if query { "NotFound" } else { "ResourceNotFoundException" });
                out_msg.push_str(&c.ev.noun);
                out_msg.push_str(" '");
                out_msg.push_str(&c.target.name);
                out_msg.push_str("' not found");
            }
        }
    } else if ns == "dynamodb" && c.ev.data {
        out_code.push_str("ConditionalCheckFailedException");
        out_msg.push_str("The conditional request failed");
    } else {
        out_code.push_str("ValidationException");
        out_msg.push_str("1 validation error detected: Value '");
        push_u64(out_msg, 1000 + rng.u64(0..9000));
        out_msg.push_str(
            "' at 'maxResults' failed to satisfy constraint: Member must have value less than or equal to 1000",
        );
    }
}

#[cfg(test)]
mod tests {
    use super::testing::{ACCOUNT, Written, call, call_as, iam_user};
    use crate::catalog::SERVICES;
    use crate::identity::Kind;

    #[test]
    fn resource_types_are_spelled_as_cloudformation_spells_them() {
        let ty = |ns: &str, noun: &str| {
            let mut out = String::new();
            super::push_resource_type(&mut out, ns, noun);
            out
        };
        assert_eq!(ty("cloudformation", "Stack"), "AWS::CloudFormation::Stack");
        assert_eq!(ty("states", "StateMachine"), "AWS::StepFunctions::StateMachine");
        assert_eq!(ty("dynamodb", "Table"), "AWS::DynamoDB::Table");
        assert_eq!(ty("ec2", "Instance"), "AWS::EC2::Instance");
        // Namespaces CloudFormation merely capitalises take the generic rule.
        assert_eq!(ty("kinesis", "Stream"), "AWS::Kinesis::Stream");
        assert_eq!(ty("organizations", "Account"), "AWS::Organizations::Account");
    }

    fn errors(ns: &str, name: &str) -> Vec<(String, String, Written)> {
        (0..60)
            .map(|seed| {
                let w = call(ns, name, seed, true);
                let (code, msg) = w.error.clone().expect("a failed call has an error");
                (code, msg, w)
            })
            .collect()
    }

    #[test]
    fn every_catalog_entry_writes_request_and_response() {
        for (si, svc) in SERVICES.iter().enumerate() {
            for name in svc.events {
                for failed in [false, true] {
                    let w = call(svc.ns, name, si as u64, failed);
                    let body = w.body.as_object().expect("an object");
                    let keys: Vec<&str> = body.keys().map(String::as_str).collect();
                    assert!(keys.contains(&"requestParameters"), "{}:{name}: {keys:?}", svc.ns);
                    assert!(keys.contains(&"responseElements"), "{}:{name}: {keys:?}", svc.ns);
                    assert!(
                        keys.iter()
                            .all(|k| ["requestParameters", "responseElements", "additionalEventData"].contains(k)),
                        "{}:{name}: {keys:?}",
                        svc.ns
                    );
                }
            }
        }
    }

    #[test]
    fn access_denied_names_caller_action_and_resource() {
        let caller = iam_user();
        for (ns, name, action, code) in [
            ("lambda", "CreateFunction20150331", "lambda:CreateFunction", "AccessDeniedException"),
            ("dynamodb", "GetItem", "dynamodb:GetItem", "AccessDeniedException"),
            ("iam", "CreateRole", "iam:CreateRole", "AccessDenied"),
            ("sqs", "SendMessage", "sqs:SendMessage", "AccessDenied"),
            ("ec2", "RunInstances", "ec2:RunInstances", "Client.UnauthorizedOperation"),
        ] {
            let denied: Vec<_> = errors(ns, name).into_iter().filter(|(c, ..)| c == code).collect();
            assert!(!denied.is_empty(), "{ns}:{name} is sometimes denied");
            for (_, msg, w) in denied {
                let want =
                    format!("User: {} is not authorized to perform: {action} on resource: {}", caller.arn, w.arn());
                assert!(msg.contains(&want), "{msg}\nwant: {want}");
            }
        }
    }

    #[test]
    fn error_codes_follow_the_service_protocol() {
        let cases: [(&str, &str, &[&str]); 5] = [
            ("s3", "GetObject", &["AccessDenied", "SlowDown", "NoSuchKey", "ValidationException"]),
            ("s3", "GetBucketAcl", &["AccessDenied", "SlowDown", "NoSuchBucketPolicy", "ValidationException"]),
            (
                "dynamodb",
                "PutItem",
                &[
                    "AccessDeniedException",
                    "ThrottlingException",
                    "ResourceNotFoundException",
                    "ConditionalCheckFailedException",
                ],
            ),
            ("iam", "GetRole", &["AccessDenied", "Throttling", "NoSuchEntityException", "ValidationException"]),
            (
                "ec2",
                "StopInstances",
                &[
                    "Client.UnauthorizedOperation",
                    "Client.RequestLimitExceeded",
                    "Client.InvalidInstanceID.NotFound",
                    "ValidationException",
                ],
            ),
        ];
        for (ns, name, codes) in cases {
            for (code, msg, w) in errors(ns, name) {
                assert!(codes.contains(&code.as_str()), "{ns}:{name}: {code}");
                assert!(!msg.is_empty(), "{ns}:{name}: {code} without a message");
                match code.as_str() {
                    "AccessDenied" if ns == "s3" => assert_eq!(msg, "Access Denied"),
                    "NoSuchEntityException" => assert!(msg.contains(&format!(" {} ", w.name())), "{msg}"),
                    "Client.InvalidInstanceID.NotFound" => assert!(msg.contains(&w.name()), "{msg}"),
                    _ => {}
                }
            }
        }
    }

    #[test]
    fn services_calling_on_their_own_are_only_throttled() {
        let mut service = iam_user();
        service.kind = Kind::AwsService;
        service.arn.clear();
        service.invoked_by = Some("lambda.amazonaws.com");
        for seed in 0..20 {
            let w = call_as("kms", "Decrypt", seed, true, &service);
            let (code, msg) = w.error.expect("an error");
            assert_eq!((code.as_str(), msg.as_str()), ("ThrottlingException", "Rate exceeded"));
        }
    }

    #[test]
    fn targets_belong_to_the_recipient_account_and_region() {
        for seed in 0..10 {
            let s3 = call("s3", "PutObject", seed, false);
            assert_eq!(s3.arn(), format!("arn:aws:s3:::{}", s3.name()));
            assert!(s3.name().ends_with(ACCOUNT), "bucket names end in the account: {}", s3.name());
            assert!(!s3.key().is_empty());
            // IAM is global: no region in its ARNs.
            let iam = call("iam", "CreateUser", seed, false);
            assert_eq!(iam.arn(), format!("arn:aws:iam::{ACCOUNT}:user/{}", iam.name()));
            let table = call("dynamodb", "GetItem", seed, false);
            assert_eq!(table.arn(), format!("arn:aws:dynamodb:eu-central-1:{ACCOUNT}:table/{}", table.name()));
        }
    }
}
