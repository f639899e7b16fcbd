//! `requestParameters`, `responseElements`, `additionalEventData` and `resources` bodies.
//!
//! The calls that dominate real trails (S3 and DynamoDB data events, KMS, STS, EC2, Lambda,
//! IAM, console sign-in) get hand-written bodies shaped like the real ones; every other call
//! gets a generic body derived from its verb and resource noun, which is how CloudTrail's
//! free-form bodies look in aggregate: small nested objects keyed by the resource.

use crate::catalog::Service;
use crate::identity::{Caller, FUNCTIONS, Kind, PEOPLE, ROLES, RoleUse};
use crate::ids::{
    hash_str, mix, mix2, push_b64, push_hex, push_hex_from, push_upper, push_upper_from, push_uuid, push_uuid_from,
};
use crate::json::{Json, push_u64};
use crate::names::{self, EventInfo, QUEUES, TABLES, hot};
use crate::time::{push_iso, push_java_date};

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
            arn(&mut t.arn, "iam", "", &t.account.clone(), "role/", &t.name);
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
            t.arn.push_str("arn:aws:");
            t.arn.push_str(ns);
            t.arn.push(':');
            t.arn.push_str(region);
            t.arn.push(':');
            t.arn.push_str(ctx.account);
            t.arn.push(':');
            t.arn.push_str(&ev.kebab);
            t.arn.push('/');
            t.arn.push_str(&t.name);
        }
    }
}

fn push_role(out: &mut String, ctx: &Ctx, k: usize) {
    let (name, use_) = ROLES[k];
    out.push_str(name);
    if use_ == RoleUse::Sso {
        push_hex_from(out, mix2(ctx.account_hash, k as u64), 16);
    }
}

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
    let r = &mut x.resources;
    r.open();
    if let Some(a) = account {
        r.kv("accountId", a);
    }
    r.kv("type", ty);
    r.kv_raw("ARN", arn_escaped);
    r.close();
}

/// `AWS::<Service>::<Noun>` style resource types.
fn push_resource_type(out: &mut String, ns: &str, noun: &str) {
    out.push_str("AWS::");
    match ns {
        "ec2" | "rds" | "ecs" | "ecr" | "eks" | "sns" | "sqs" | "kms" | "iam" | "acm" | "ssm" | "ram" => {
            out.push_str(&ns.to_ascii_uppercase())
        }
        "elasticloadbalancing" => out.push_str("ElasticLoadBalancingV2"),
        "monitoring" | "cloudwatch" => out.push_str("CloudWatch"),
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

fn tags(j: &mut Json, rng: &mut fastrand::Rng, key: &str, k: &str, v: &str) {
    j.arr(key);
    let n = rng.usize(1..=TAG_KEYS.len());
    let start = rng.usize(0..TAG_KEYS.len());
    for i in 0..n {
        let (tk, vals) = TAG_KEYS[(start + i) % TAG_KEYS.len()];
        j.open();
        j.kv(k, tk);
        j.kv(v, vals[rng.usize(0..vals.len())]);
        j.close();
    }
    j.close_arr();
}

fn ec2_tags(j: &mut Json, rng: &mut fastrand::Rng) {
    j.obj("tagSet");
    tags(j, rng, "items", "key", "value");
    j.close();
}

fn java_date(j: &mut Json, k: &str, secs: i64) {
    j.kv_with(k, |b| push_java_date(b, secs));
}

fn credentials(j: &mut Json, rng: &mut fastrand::Rng, ctx: &Ctx, duration: i64) {
    j.obj("credentials");
    j.kv_with("accessKeyId", |b| {
        b.push_str("ASIA");
        push_upper(b, rng, 16);
    });
    j.kv_with("sessionToken", |b| {
        b.push_str("IQoJb3JpZ2luX2VjE");
        let n = 300 + rng.usize(0..500);
        push_b64(b, rng, n);
    });
    java_date(j, "expiration", ctx.event_secs + duration);
    j.close();
}

fn assumed_role_user(j: &mut Json, t: &Target, session: &str) {
    let h = hash_str(&t.arn);
    j.obj("assumedRoleUser");
    j.kv_with("assumedRoleId", |b| {
        b.push_str("AROA");
        push_upper_from(b, h, 17);
        b.push(':');
        b.push_str(session);
    });
    j.kv_with("arn", |b| {
        b.push_str("arn:aws:sts::");
        b.push_str(&t.account);
        b.push_str(":assumed-role/");
        b.push_str(&t.name);
        b.push('/');
        b.push_str(session);
    });
    j.close();
}

/// The JSON-string-encoded policy documents IAM logs (escapes: `\"`, `\n`).
const TRUST_POLICY: &str = "{\\n  \\\"Version\\\": \\\"2012-10-17\\\",\\n  \\\"Statement\\\": [\\n    {\\n      \\\"Effect\\\": \\\"Allow\\\",\\n      \\\"Principal\\\": {\\n        \\\"Service\\\": \\\"lambda.amazonaws.com\\\"\\n      },\\n      \\\"Action\\\": \\\"sts:AssumeRole\\\"\\n    }\\n  ]\\n}";
const PERMISSION_POLICY: &str = "{\\\"Version\\\":\\\"2012-10-17\\\",\\\"Statement\\\":[{\\\"Sid\\\":\\\"ReadOrders\\\",\\\"Effect\\\":\\\"Allow\\\",\\\"Action\\\":[\\\"dynamodb:GetItem\\\",\\\"dynamodb:Query\\\"],\\\"Resource\\\":\\\"*\\\",\\\"Condition\\\":{\\\"StringEquals\\\":{\\\"aws:RequestedRegion\\\":[\\\"us-east-1\\\",\\\"eu-west-1\\\"]}}}]}";
/// The URL-encoded form IAM returns in `responseElements`.
const TRUST_POLICY_URLENC: &str = "%7B%22Version%22%3A%222012-10-17%22%2C%22Statement%22%3A%5B%7B%22Effect%22%3A%22Allow%22%2C%22Principal%22%3A%7B%22Service%22%3A%22lambda.amazonaws.com%22%7D%2C%22Action%22%3A%22sts%3AAssumeRole%22%7D%5D%7D";

/// Writes `requestParameters`, `responseElements` and `additionalEventData`, and fills `x`.
pub(crate) fn write(j: &mut Json, rng: &mut fastrand::Rng, c: &Call, x: &mut Extra) {
    let ev = c.ev;
    match (c.svc.ns, ev.name) {
        ("s3", _) => s3(j, rng, c, x),
        ("ec2", "DescribeInstances") => {
            j.obj("requestParameters");
            j.obj("instancesSet");
            if rng.bool() {
                j.arr("items");
                for _ in 0..rng.usize(1..4) {
                    j.open();
                    j.kv_raw("instanceId", &c.target.name);
                    j.close();
                }
                j.close_arr();
            }
            j.close();
            j.obj("filterSet");
            if rng.bool() {
                j.arr("items");
                j.open();
                j.kv("name", "tag:Name");
                j.obj("valueSet");
                j.arr("items");
                j.open();
                j.kv("value", ["web-*", "batch-worker", "bastion"][rng.usize(0..3)]);
                j.close();
                j.close_arr();
                j.close();
                j.close();
                j.open();
                j.kv("name", "instance-state-name");
                j.obj("valueSet");
                j.arr("items");
                j.open();
                j.kv("value", "running");
                j.close();
                j.close_arr();
                j.close();
                j.close();
                j.close_arr();
            }
            j.close();
            j.close();
            j.kv_null("responseElements");
        }
        ("ec2", "RunInstances") => run_instances(j, rng, c, x),
        ("ec2", "AuthorizeSecurityGroupIngress" | "RevokeSecurityGroupIngress") => {
            let port = [443u64, 22, 5432, 8080, 3389][rng.usize(0..5)];
            j.obj("requestParameters");
            j.kv_raw("groupId", &c.target.name);
            j.obj("ipPermissions");
            j.arr("items");
            j.open();
            j.kv("ipProtocol", "tcp");
            j.kv_u64("fromPort", port);
            j.kv_u64("toPort", port);
            j.kv_empty_obj("groups");
            j.obj("ipRanges");
            j.arr("items");
            j.open();
            j.kv("cidrIp", if port == 443 { "0.0.0.0/0" } else { "10.0.0.0/8" });
            j.kv_raw("description", "Allow \\\"internal\\\" traffic\\n(ticket SEC-1142)");
            j.close();
            j.close_arr();
            j.close();
            j.kv_empty_obj("ipv6Ranges");
            j.kv_empty_obj("prefixListIds");
            j.close();
            j.close_arr();
            j.close();
            j.close();
            if c.error {
                j.kv_null("responseElements");
            } else {
                j.obj("responseElements");
                j.kv_with("requestId", |b| push_uuid(b, rng));
                j.kv_bool("_return", true);
                j.obj("securityGroupRuleSet");
                j.arr("items");
                j.open();
                j.kv("groupOwnerId", c.ctx.account);
                j.kv_raw("groupId", &c.target.name);
                j.kv_with("securityGroupRuleId", |b| {
                    b.push_str("sgr-0");
                    push_hex(b, rng, 16);
                });
                j.kv_bool("isEgress", false);
                j.kv("ipProtocol", "tcp");
                j.kv_u64("fromPort", port);
                j.kv_u64("toPort", port);
                j.kv("cidrIpv4", if port == 443 { "0.0.0.0/0" } else { "10.0.0.0/8" });
                j.close();
                j.close_arr();
                j.close();
                j.close();
            }
        }
        ("ec2", "CreateTags") => {
            j.obj("requestParameters");
            j.obj("resourcesSet");
            j.arr("items");
            j.open();
            j.kv_raw("resourceId", &c.target.name);
            j.close();
            j.close_arr();
            j.close();
            ec2_tags(j, rng);
            j.close();
            ec2_return(j, rng, c);
        }
        ("ec2", "DescribeSpotPriceHistory") => {
            j.obj("requestParameters");
            j.kv_u64("startTime", (c.ctx.event_secs as u64 - 3600) * 1000);
            j.obj("instanceTypeSet");
            j.arr("items");
            for t in ["c7g.xlarge", "m7g.large", "r6i.2xlarge"].iter().take(rng.usize(1..4)) {
                j.open();
                j.kv("instanceType", t);
                j.close();
            }
            j.close_arr();
            j.close();
            j.obj("productDescriptionSet");
            j.arr("items");
            j.open();
            j.kv("productDescription", "Linux/UNIX");
            j.close();
            j.close_arr();
            j.close();
            j.close();
            j.kv_null("responseElements");
        }
        ("ec2", "StartInstances" | "StopInstances" | "TerminateInstances") => {
            j.obj("requestParameters");
            j.obj("instancesSet");
            j.arr("items");
            j.open();
            j.kv_raw("instanceId", &c.target.name);
            j.close();
            j.close_arr();
            j.close();
            if ev.name == "StopInstances" {
                j.kv_bool("force", false);
            }
            j.close();
            if c.error {
                j.kv_null("responseElements");
            } else {
                let (cur, code, prev, pcode) = match ev.name {
                    "StartInstances" => ("pending", 0, "stopped", 80),
                    "StopInstances" => ("stopping", 64, "running", 16),
                    _ => ("shutting-down", 32, "running", 16),
                };
                j.obj("responseElements");
                j.kv_with("requestId", |b| push_uuid(b, rng));
                j.obj("instancesSet");
                j.arr("items");
                j.open();
                j.kv_raw("instanceId", &c.target.name);
                j.obj("currentState");
                j.kv_u64("code", code);
                j.kv("name", cur);
                j.close();
                j.obj("previousState");
                j.kv_u64("code", pcode);
                j.kv("name", prev);
                j.close();
                j.close();
                j.close_arr();
                j.close();
                j.close();
            }
        }
        ("kms", "Decrypt" | "Encrypt" | "GenerateDataKey" | "ReEncrypt") => kms_crypto(j, rng, c, x),
        ("kms", "CreateGrant") => {
            j.obj("requestParameters");
            j.kv_raw("keyId", &c.target.arn);
            j.kv_with("granteePrincipal", |b| {
                b.push_str("arn:aws:iam::");
                b.push_str(c.ctx.account);
                b.push_str(":role/aws-service-role/autoscaling.amazonaws.com/AWSServiceRoleForAutoScaling");
            });
            j.arr("operations");
            for o in [
                "Decrypt",
                "Encrypt",
                "GenerateDataKeyWithoutPlaintext",
                "ReEncryptFrom",
                "ReEncryptTo",
                "CreateGrant",
                "DescribeKey",
            ] {
                j.str(o);
            }
            j.close_arr();
            j.obj("constraints");
            j.obj("encryptionContextSubset");
            j.kv_with("aws:ebs:id", |b| {
                b.push_str("vol-0");
                push_hex(b, rng, 16);
            });
            j.close();
            j.close();
            j.close();
            if c.error {
                j.kv_null("responseElements");
            } else {
                j.obj("responseElements");
                j.kv_with("grantId", |b| push_hex(b, rng, 64));
                j.kv_raw("keyId", &c.target.arn);
                j.close();
            }
            kms_key_resource(x, c);
        }
        ("kms", "RotateKey") | ("backup", "BackupJobCompleted") | ("ec2", "SharedSnapshotCopyInitiated") => {
            service_event(j, rng, c, x)
        }
        ("kms", _) => {
            generic(j, rng, c, x);
            if !ev.plural {
                kms_key_resource(x, c);
            }
        }
        ("sts", "AssumeRole" | "AssumeRoleWithWebIdentity" | "AssumeRoleWithSAML") => assume_role(j, rng, c, x),
        ("sts", "GetCallerIdentity") => {
            j.kv_null("requestParameters");
            j.kv_null("responseElements");
        }
        ("sts", "GetSessionToken" | "GetFederationToken") => {
            j.obj("requestParameters");
            j.kv_u64("durationSeconds", if rng.bool() { 43_200 } else { 3_600 });
            if ev.name == "GetFederationToken" {
                j.kv("name", PEOPLE[rng.usize(0..PEOPLE.len())].split('@').next().unwrap_or("user"));
            }
            j.close();
            if c.error {
                j.kv_null("responseElements");
            } else {
                j.obj("responseElements");
                credentials(j, rng, c.ctx, 43_200);
                j.close();
            }
        }
        ("lambda", "Invoke") => {
            j.obj("requestParameters");
            j.kv_raw("functionName", &c.target.arn);
            match rng.u8(0..4) {
                0 => j.kv("invocationType", "Event"),
                1 => j.kv_with("sourceArn", |b| {
                    b.push_str("arn:aws:sqs:");
                    b.push_str(c.ctx.region);
                    b.push(':');
                    b.push_str(c.ctx.account);
                    b.push(':');
                    b.push_str(QUEUES[rng.usize(0..QUEUES.len())]);
                }),
                _ => {}
            }
            j.close();
            j.kv_null("responseElements");
            j.obj("additionalEventData");
            j.kv_with("functionVersion", |b| {
                b.push_str(&c.target.arn);
                b.push_str(":$LATEST");
            });
            j.close();
            resource(x, Some(c.ctx.account), "AWS::Lambda::Function", &c.target.arn);
        }
        (
            "lambda",
            "CreateFunction20150331"
            | "UpdateFunctionCode20150331v2"
            | "UpdateFunctionConfiguration20150331v2"
            | "GetFunction"
            | "GetFunctionConfiguration",
        ) => lambda_function(j, rng, c),
        ("dynamodb", _) if ev.data => dynamodb_item(j, rng, c, x),
        ("signin", _) => signin(j, rng, c, x),
        ("iam", _) => iam(j, rng, c, x),
        ("logs", "CreateLogStream") => {
            j.obj("requestParameters");
            j.kv_raw("logGroupName", &c.target.name);
            j.kv_with("logStreamName", |b| {
                crate::time::push_date_path(b, c.ctx.event_secs);
                b.push_str("/[$LATEST]");
                push_hex(b, rng, 32);
            });
            j.close();
            j.kv_null("responseElements");
        }
        ("logs", "FilterLogEvents" | "StartQuery") => {
            j.obj("requestParameters");
            j.kv_raw("logGroupName", &c.target.name);
            let end = c.ctx.event_secs as u64;
            if ev.name == "StartQuery" {
                j.kv_u64("startTime", end - 86_400);
                j.kv_u64("endTime", end);
                j.kv_raw("queryString", "fields @timestamp, @message\\n| filter @message like /ERROR/\\n| sort @timestamp desc\\n| limit 20");
                j.close();
                if c.error {
                    j.kv_null("responseElements");
                } else {
                    j.obj("responseElements");
                    j.kv_with("queryId", |b| push_uuid(b, rng));
                    j.close();
                }
            } else {
                j.kv_u64("startTime", (end - 3_600) * 1000);
                j.kv_u64("endTime", end * 1000);
                j.kv_raw("filterPattern", "{ $.level = \\\"ERROR\\\" }");
                j.kv_bool("interleaved", true);
                j.close();
                j.kv_null("responseElements");
            }
        }
        ("monitoring", "PutMetricData") => {
            j.obj("requestParameters");
            j.kv("namespace", ["Orders/Api", "Payments", "ImageResizer"][rng.usize(0..3)]);
            j.arr("metricData");
            let metrics: [(&str, &str, &str); 4] = [
                ("Latency", "1.50", "Milliseconds"),
                ("PayloadBytes", "1e3", "Bytes"),
                ("ErrorRate", "2.5E-4", "Percent"),
                ("Requests", "42", "Count"),
            ];
            for (name, val, unit) in metrics.iter().take(rng.usize(1..5)) {
                j.open();
                j.kv("metricName", name);
                j.arr("dimensions");
                j.open();
                j.kv("name", "Stage");
                j.kv("value", "prod");
                j.close();
                j.close_arr();
                j.kv_num("value", val);
                j.kv("unit", unit);
                j.close();
            }
            j.close_arr();
            j.close();
            j.kv_null("responseElements");
        }
        ("monitoring", "GetMetricData") => {
            j.obj("requestParameters");
            j.arr("metricDataQueries");
            j.open();
            j.kv("id", "m1");
            j.obj("metricStat");
            j.obj("metric");
            j.kv("namespace", "AWS/EC2");
            j.kv("metricName", "CPUUtilization");
            j.arr("dimensions");
            j.open();
            j.kv("name", "InstanceId");
            j.kv_with("value", |b| {
                b.push_str("i-0");
                push_hex(b, rng, 16);
            });
            j.close();
            j.close_arr();
            j.close();
            j.kv_u64("period", 300);
            j.kv("stat", "Average");
            j.close();
            j.kv_bool("returnData", true);
            j.close();
            j.close_arr();
            java_date(j, "startTime", c.ctx.event_secs - 10_800);
            java_date(j, "endTime", c.ctx.event_secs);
            j.close();
            j.kv_null("responseElements");
        }
        ("sqs", _) if ev.data => sqs(j, rng, c, x),
        ("sns", "Publish") => {
            j.obj("requestParameters");
            j.kv_raw("topicArn", &c.target.arn);
            j.kv("message", "HIDDEN_DUE_TO_SECURITY_REASONS");
            if rng.u8(0..3) == 0 {
                j.kv_raw("subject", "Order #1042 shipped \\u2013 caf\\u00e9 \u{2615}");
            }
            j.close();
            if c.error {
                j.kv_null("responseElements");
            } else {
                j.obj("responseElements");
                j.kv_with("messageId", |b| push_uuid(b, rng));
                j.close();
            }
            resource(x, Some(c.ctx.account), "AWS::SNS::Topic", &c.target.arn);
        }
        ("ssm", "GetParameter" | "GetParameters" | "GetParametersByPath") => {
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
        ("ssm", "UpdateInstanceInformation") => {
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
        ("ssm", "PutParameter") => {
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
        ("ssm", "SendCommand") => {
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
        ("secretsmanager", "GetSecretValue" | "DescribeSecret") => {
            j.obj("requestParameters");
            j.kv_raw("secretId", if rng.bool() { &c.target.arn } else { &c.target.name });
            j.close();
            j.kv_null("responseElements");
        }
        ("config", "PutEvaluations") => {
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
        ("autoscaling", "PutScalingPolicy") => {
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
        ("autoscaling", "SetDesiredCapacity") => {
            j.obj("requestParameters");
            j.kv_raw("autoScalingGroupName", &c.target.name);
            j.kv_u64("desiredCapacity", rng.u64(0..12));
            j.kv_bool("honorCooldown", false);
            j.close();
            j.kv_null("responseElements");
        }
        ("servicequotas", "RequestServiceQuotaIncrease") => {
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
        ("athena", "StartQueryExecution") => {
            j.obj("requestParameters");
            j.kv_with("clientRequestToken", |b| push_uuid(b, rng));
            j.kv_raw("queryString", "SELECT eventname, count(*) AS n\\nFROM cloudtrail_logs\\nWHERE \\\"date\\\" = '2024/03/01'\\nGROUP BY 1 ORDER BY 2 DESC LIMIT 10");
            j.obj("queryExecutionContext");
            j.kv("database", "security");
            j.close();
            j.obj("resultConfiguration");
            j.kv_with("outputLocation", |b| {
                b.push_str("s3://athena-results-");
                b.push_str(c.ctx.account);
                b.push('/');
            });
            j.close();
            j.kv("workGroup", "primary");
            j.close();
            if c.error {
                j.kv_null("responseElements");
            } else {
                j.obj("responseElements");
                j.kv_with("queryExecutionId", |b| push_uuid(b, rng));
                j.close();
            }
        }
        ("glue", "BatchCreatePartition") => {
            j.obj("requestParameters");
            j.kv("databaseName", "security");
            j.kv("tableName", "cloudtrail_logs");
            j.arr("partitionInputList");
            for d in 0..rng.u64(1..4) {
                let cv = crate::time::civil(c.ctx.event_secs - (d as i64) * 86_400);
                j.open();
                j.arr("values");
                j.str_with(|b| push_u64(b, cv.year as u64));
                j.str_with(|b| crate::json::push_padded(b, cv.month as u64, 2));
                j.str_with(|b| crate::json::push_padded(b, cv.day as u64, 2));
                j.close_arr();
                j.obj("storageDescriptor");
                j.kv_with("location", |b| {
                    b.push_str("s3://data-lake-raw-");
                    b.push_str(c.ctx.account);
                    b.push_str("/cloudtrail/year=");
                    push_u64(b, cv.year as u64);
                });
                j.kv("inputFormat", "org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat");
                j.kv("outputFormat", "org.apache.hadoop.hive.ql.io.parquet.MapredParquetOutputFormat");
                j.obj("serdeInfo");
                j.kv("serializationLibrary", "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe");
                j.close();
                j.close();
                j.close();
            }
            j.close_arr();
            j.close();
            j.kv_null("responseElements");
        }
        ("cloudtrail", "LookupEvents") => {
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
        ("ecr", "GetAuthorizationToken") => {
            j.obj("requestParameters");
            j.close();
            j.kv_null("responseElements");
        }
        ("ecr", "BatchGetImage" | "GetDownloadUrlForLayer" | "BatchCheckLayerAvailability") => {
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
        _ => generic(j, rng, c, x),
    }
}

fn ec2_return(j: &mut Json, rng: &mut fastrand::Rng, c: &Call) {
    if c.error {
        j.kv_null("responseElements");
    } else {
        j.obj("responseElements");
        j.kv_with("requestId", |b| push_uuid(b, rng));
        j.kv_bool("_return", true);
        j.close();
    }
}

fn s3_host(b: &mut String, c: &Call, virtual_host: bool) {
    if virtual_host {
        b.push_str(&c.target.name);
        b.push('.');
    }
    b.push_str("s3.");
    b.push_str(c.ctx.region);
    b.push_str(".amazonaws.com");
}

fn s3(j: &mut Json, rng: &mut fastrand::Rng, c: &Call, x: &mut Extra) {
    let name = c.ev.name;
    let t = c.target;
    x.s3_request_id = true;
    let object = c.ev.data && name != "ListObjects";
    let vhost = rng.u8(0..4) != 0;
    if name == "ListBuckets" {
        j.obj("requestParameters");
        j.kv_with("Host", |b| {
            b.push_str("s3.");
            b.push_str(c.ctx.region);
            b.push_str(".amazonaws.com");
        });
        j.close();
    } else {
        j.obj("requestParameters");
        match name {
            "ListObjects" => {
                j.kv("list-type", "2");
                j.kv_raw("bucketName", &t.name);
                j.kv("encoding-type", "url");
                j.kv("max-keys", "1000");
                j.kv("prefix", ["raw/events/", "uploads/", "", "daily/"][rng.usize(0..4)]);
                j.kv("delimiter", "/");
            }
            "PutBucketPolicy" => {
                j.obj("bucketPolicy");
                j.kv("Version", "2012-10-17");
                j.arr("Statement");
                j.open();
                j.kv("Sid", "DenyInsecureTransport");
                j.kv("Effect", "Deny");
                j.kv("Principal", "*");
                j.kv("Action", "s3:*");
                j.arr("Resource");
                j.raw_str(&t.arn);
                j.str_with(|b| {
                    b.push_str(&t.arn);
                    b.push_str("/*");
                });
                j.close_arr();
                j.obj("Condition");
                j.obj("Bool");
                j.kv("aws:SecureTransport", "false");
                j.close();
                j.close();
                j.close();
                j.close_arr();
                j.close();
                j.kv_raw("bucketName", &t.name);
                j.kv("policy", "");
            }
            "CreateBucket" => {
                j.obj("CreateBucketConfiguration");
                j.kv("LocationConstraint", c.ctx.region);
                j.close();
                j.kv_raw("bucketName", &t.name);
            }
            "PutBucketTagging" => {
                j.obj("Tagging");
                j.obj("TagSet");
                tags(j, rng, "Tag", "Key", "Value");
                j.close();
                j.close();
                j.kv_raw("bucketName", &t.name);
                j.kv("tagging", "");
            }
            _ if object => {
                j.kv_raw("bucketName", &t.name);
            }
            _ => {
                j.kv_raw("bucketName", &t.name);
                // Sub-resource queries are logged as keys with empty values.
                let sub = name.strip_prefix("GetBucket").or_else(|| name.strip_prefix("DeleteBucket")).unwrap_or("");
                if !sub.is_empty() {
                    j.key(&sub.to_ascii_lowercase());
                    j.str("");
                }
            }
        }
        j.kv_with("Host", |b| s3_host(b, c, vhost));
        if object {
            j.kv_raw("key", &t.key);
            match name {
                "UploadPart" => {
                    j.kv_u64("partNumber", rng.u64(1..200));
                    j.kv_with("uploadId", |b| push_b64(b, rng, 64));
                }
                "CompleteMultipartUpload" => {
                    j.kv_with("uploadId", |b| push_b64(b, rng, 64));
                }
                "CopyObject" => {
                    j.kv_with("x-amz-copy-source", |b| {
                        b.push_str(&t.name);
                        b.push_str("/staging/");
                        push_hex(b, rng, 12);
                    });
                }
                "PutObject" if rng.u8(0..3) == 0 => {
                    j.kv("x-amz-server-side-encryption", "aws:kms");
                    j.kv_with("x-amz-server-side-encryption-aws-kms-key-id", |b| {
                        b.push_str("arn:aws:kms:");
                        b.push_str(c.ctx.region);
                        b.push(':');
                        b.push_str(c.ctx.account);
                        b.push_str(":key/");
                        push_uuid_from(b, c.ctx.account_hash as u128);
                    });
                }
                _ => {}
            }
        }
        j.close();
    }
    let writes_object =
        matches!(name, "PutObject" | "CopyObject" | "UploadPart" | "CompleteMultipartUpload" | "CreateMultipartUpload");
    if c.error || !writes_object {
        j.kv_null("responseElements");
    } else {
        j.obj("responseElements");
        if name == "CreateMultipartUpload" {
            j.kv_raw("bucketName", &t.name);
            j.kv_raw("key", &t.key);
            j.kv_with("uploadId", |b| push_b64(b, rng, 64));
        }
        j.kv("x-amz-server-side-encryption", if rng.u8(0..3) == 0 { "aws:kms" } else { "AES256" });
        if rng.bool() {
            j.kv_with("x-amz-version-id", |b| push_b64(b, rng, 32));
        }
        if name == "CopyObject" {
            j.obj("copyObjectResult");
            j.kv_with("ETag", |b| push_hex(b, rng, 32));
            java_date(j, "lastModified", c.ctx.event_secs);
            j.close();
        }
        j.close();
    }
    // additionalEventData: transfer sizes are plain integers, sometimes large.
    let size = {
        let u = rng.f64().max(1e-12);
        (200.0 * u.powf(-1.3)).min(5e9) as u64
    };
    j.obj("additionalEventData");
    j.kv("SignatureVersion", "SigV4");
    let tls13 = rng.u8(0..10) < 7;
    j.kv("CipherSuite", if tls13 { "TLS_AES_128_GCM_SHA256" } else { "ECDHE-RSA-AES128-GCM-SHA256" });
    let up = matches!(name, "PutObject" | "UploadPart" | "CopyObject");
    j.kv_u64("bytesTransferredIn", if up { size } else { 0 });
    if c.caller.invoked_by.is_none() {
        j.kv("AuthenticationMethod", if rng.u8(0..10) == 0 { "QueryString" } else { "AuthHeader" });
    }
    j.kv_with("x-amz-id-2", |b| push_b64(b, rng, 76));
    let down = matches!(name, "GetObject" | "ListObjects") && !c.error;
    j.kv_u64("bytesTransferredOut", if down { size } else { 0 });
    j.close();
    if object {
        x.resources.open();
        x.resources.kv("type", "AWS::S3::Object");
        x.resources.kv_with("ARN", |b| {
            b.push_str(&t.arn);
            b.push('/');
            b.push_str(&t.key);
        });
        x.resources.close();
    }
    if name != "ListBuckets" {
        resource(x, Some(c.ctx.account), "AWS::S3::Bucket", &t.arn);
    }
}

fn run_instances(j: &mut Json, rng: &mut fastrand::Rng, c: &Call, x: &mut Extra) {
    let count = if rng.u8(0..5) == 0 { rng.u64(2..6) } else { 1 };
    let itype = ["m7g.large", "c7g.xlarge", "t3.micro", "r6i.2xlarge", "g5.xlarge"][rng.usize(0..5)];
    let az = (b'a' + rng.u8(0..3)) as char;
    let ami_seed = mix2(c.ctx.account_hash, 0xA31);
    j.obj("requestParameters");
    j.obj("instancesSet");
    j.arr("items");
    j.open();
    j.kv_with("imageId", |b| {
        b.push_str("ami-0");
        push_hex_from(b, ami_seed, 16);
    });
    j.kv_u64("minCount", count);
    j.kv_u64("maxCount", count);
    j.close();
    j.close_arr();
    j.close();
    j.kv("instanceType", itype);
    j.kv_empty_obj("blockDeviceMapping");
    j.obj("monitoring");
    j.kv_bool("enabled", false);
    j.close();
    j.kv_bool("disableApiTermination", false);
    j.kv_bool("disableApiStop", false);
    j.kv_with("clientToken", |b| push_uuid(b, rng));
    j.obj("tagSpecificationSet");
    j.arr("items");
    j.open();
    j.kv("resourceType", "instance");
    tags(j, rng, "tags", "key", "value");
    j.close();
    j.close_arr();
    j.close();
    j.obj("launchTemplate");
    j.kv_with("launchTemplateId", |b| {
        b.push_str("lt-0");
        push_hex_from(b, mix(ami_seed), 16);
    });
    j.kv("version", "$Latest");
    j.close();
    j.close();
    if c.error {
        j.kv_null("responseElements");
        return;
    }
    let vpc = mix2(c.ctx.account_hash, 0x7BC);
    j.obj("responseElements");
    j.kv_with("requestId", |b| push_uuid(b, rng));
    j.kv_with("reservationId", |b| {
        b.push_str("r-0");
        push_hex(b, rng, 16);
    });
    j.kv("ownerId", c.ctx.account);
    j.kv_empty_obj("groupSet");
    j.obj("instancesSet");
    j.arr("items");
    for i in 0..count {
        let mut id = String::with_capacity(19);
        id.push_str("i-0");
        push_hex(&mut id, rng, 16);
        let ip = rng.u32(..);
        j.open();
        j.kv("instanceId", &id);
        j.kv_with("imageId", |b| {
            b.push_str("ami-0");
            push_hex_from(b, ami_seed, 16);
        });
        j.kv("currentInstanceBootMode", "uefi");
        j.obj("instanceState");
        j.kv_u64("code", 0);
        j.kv("name", "pending");
        j.close();
        j.kv_with("privateDnsName", |b| {
            b.push_str("ip-10-0-");
            push_u64(b, (ip & 0xFF) as u64);
            b.push('-');
            push_u64(b, (ip >> 8 & 0xFF) as u64);
            b.push_str(".ec2.internal");
        });
        j.kv_u64("amiLaunchIndex", i);
        j.kv_empty_obj("productCodes");
        j.kv("instanceType", itype);
        j.kv_u64("launchTime", c.ctx.event_secs as u64 * 1000);
        j.obj("placement");
        j.kv_with("availabilityZone", |b| {
            b.push_str(c.ctx.region);
            b.push(az);
        });
        j.kv("tenancy", "default");
        j.close();
        j.obj("monitoring");
        j.kv("state", "disabled");
        j.close();
        j.kv_with("subnetId", |b| {
            b.push_str("subnet-0");
            push_hex_from(b, mix(vpc ^ az as u64), 16);
        });
        j.kv_with("vpcId", |b| {
            b.push_str("vpc-0");
            push_hex_from(b, vpc, 16);
        });
        j.kv_with("privateIpAddress", |b| {
            b.push_str("10.0.");
            push_u64(b, (ip & 0xFF) as u64);
            b.push('.');
            push_u64(b, (ip >> 8 & 0xFF) as u64);
        });
        j.obj("stateReason");
        j.kv("code", "pending");
        j.kv("message", "pending");
        j.close();
        j.kv("architecture", if itype.contains('g') && !itype.starts_with('g') { "arm64" } else { "x86_64" });
        j.kv("rootDeviceType", "ebs");
        j.kv("rootDeviceName", "/dev/xvda");
        j.kv_empty_obj("blockDeviceMapping");
        j.kv("virtualizationType", "hvm");
        j.kv("hypervisor", "xen");
        ec2_tags(j, rng);
        j.obj("groupSet");
        j.arr("items");
        j.open();
        j.kv_with("groupId", |b| {
            b.push_str("sg-0");
            push_hex_from(b, mix(vpc ^ 0x56), 16);
        });
        j.kv("groupName", "default");
        j.close();
        j.close_arr();
        j.close();
        j.kv_bool("sourceDestCheck", true);
        j.obj("networkInterfaceSet");
        j.arr("items");
        j.open();
        j.kv_with("networkInterfaceId", |b| {
            b.push_str("eni-0");
            push_hex(b, rng, 16);
        });
        j.kv("status", "in-use");
        j.kv("ownerId", c.ctx.account);
        j.kv("interfaceType", "interface");
        j.kv_bool("sourceDestCheck", true);
        j.obj("attachment");
        j.kv_with("attachmentId", |b| {
            b.push_str("eni-attach-0");
            push_hex(b, rng, 16);
        });
        j.kv_u64("deviceIndex", 0);
        j.kv_u64("networkCardIndex", 0);
        j.kv("status", "attaching");
        j.kv_u64("attachTime", c.ctx.event_secs as u64 * 1000);
        j.kv_bool("deleteOnTermination", true);
        j.close();
        j.close();
        j.close_arr();
        j.close();
        j.kv_bool("ebsOptimized", true);
        j.kv_bool("enaSupport", true);
        j.obj("cpuOptions");
        j.kv_u64("coreCount", 2);
        j.kv_u64("threadsPerCore", 1);
        j.close();
        j.obj("capacityReservationSpecification");
        j.kv("capacityReservationPreference", "open");
        j.close();
        j.obj("enclaveOptions");
        j.kv_bool("enabled", false);
        j.close();
        j.obj("metadataOptions");
        j.kv("state", "pending");
        j.kv("httpTokens", "required");
        j.kv_u64("httpPutResponseHopLimit", 2);
        j.kv("httpEndpoint", "enabled");
        j.kv("httpProtocolIpv4", "enabled");
        j.kv("httpProtocolIpv6", "disabled");
        j.kv("instanceMetadataTags", "disabled");
        j.close();
        j.obj("maintenanceOptions");
        j.kv("autoRecovery", "default");
        j.close();
        j.close();
        x.resources.open();
        x.resources.kv("accountId", c.ctx.account);
        x.resources.kv("type", "AWS::EC2::Instance");
        x.resources.kv_with("ARN", |b| arn(b, "ec2", c.ctx.region, c.ctx.account, "instance/", &id));
        x.resources.close();
    }
    j.close_arr();
    j.close();
    j.close();
}

fn kms_crypto(j: &mut Json, rng: &mut fastrand::Rng, c: &Call, x: &mut Extra) {
    j.obj("requestParameters");
    let by = c.caller.invoked_by.unwrap_or("");
    j.obj("encryptionContext");
    match by {
        "s3.amazonaws.com" | "" if rng.bool() || by == "s3.amazonaws.com" => {
            j.kv_with("aws:s3:arn", |b| {
                b.push_str("arn:aws:s3:::");
                names::push_bucket(b, c.ctx.account, rng.usize(0..4));
                if rng.bool() {
                    b.push_str("/uploads/");
                    push_uuid(b, rng);
                }
            });
        }
        "secretsmanager.amazonaws.com" => {
            j.kv_with("SecretARN", |b| {
                b.push_str("arn:aws:secretsmanager:");
                b.push_str(c.ctx.region);
                b.push(':');
                b.push_str(c.ctx.account);
                b.push_str(":secret:prod/orders/db-credentials-");
                push_upper_from(b, c.ctx.account_hash, 6);
            });
            j.kv_with("SecretVersionId", |b| push_uuid(b, rng));
        }
        "dynamodb.amazonaws.com" => {
            j.kv("aws:dynamodb:tableName", TABLES[rng.usize(0..TABLES.len())]);
            j.kv("aws:dynamodb:subscriberId", c.ctx.account);
        }
        "logs.amazonaws.com" => {
            j.kv_with("aws:logs:arn", |b| {
                b.push_str("arn:aws:logs:");
                b.push_str(c.ctx.region);
                b.push(':');
                b.push_str(c.ctx.account);
                b.push_str(":log-group:/aws/lambda/");
                b.push_str(FUNCTIONS[rng.usize(0..FUNCTIONS.len())]);
            });
        }
        _ => {
            j.kv_with("aws:lambda:FunctionArn", |b| {
                b.push_str("arn:aws:lambda:");
                b.push_str(c.ctx.region);
                b.push(':');
                b.push_str(c.ctx.account);
                b.push_str(":function:");
                b.push_str(FUNCTIONS[rng.usize(0..FUNCTIONS.len())]);
            });
        }
    }
    j.close();
    if c.ev.name != "Decrypt" || rng.bool() {
        j.kv_raw("keyId", &c.target.arn);
    }
    j.kv("encryptionAlgorithm", "SYMMETRIC_DEFAULT");
    if c.ev.name == "GenerateDataKey" {
        j.kv("keySpec", "AES_256");
    }
    j.close();
    j.kv_null("responseElements");
    kms_key_resource(x, c);
}

fn kms_key_resource(x: &mut Extra, c: &Call) {
    resource(x, Some(c.ctx.account), "AWS::KMS::Key", &c.target.arn);
}

fn service_event(j: &mut Json, rng: &mut fastrand::Rng, c: &Call, x: &mut Extra) {
    j.kv_null("requestParameters");
    j.kv_null("responseElements");
    x.no_request_id = rng.bool();
    let d = &mut x.details;
    d.open();
    match c.ev.name {
        "RotateKey" => {
            d.kv_raw("keyId", &c.target.name);
            kms_key_resource(x, c);
        }
        "BackupJobCompleted" => {
            d.kv_with("backupJobId", |b| push_uuid(b, rng));
            d.kv("backupVaultName", "Default");
            d.kv_with("backupVaultArn", |b| arn(b, "backup", c.ctx.region, c.ctx.account, "backup-vault:", "Default"));
            d.kv_with("resourceArn", |b| {
                b.push_str("arn:aws:dynamodb:");
                b.push_str(c.ctx.region);
                b.push(':');
                b.push_str(c.ctx.account);
                b.push_str(":table/");
                b.push_str(TABLES[rng.usize(0..TABLES.len())]);
            });
            d.obj("creationDate");
            d.kv_u64("seconds", c.ctx.event_secs as u64 - 600);
            d.kv_u64("nanos", rng.u64(0..1_000_000) * 1000);
            d.close();
            d.kv("state", "COMPLETED");
            d.kv_u64("backupSizeInBytes", rng.u64(1_000..50_000_000_000));
            d.kv_num("percentDone", "100.0");
            d.kv("resourceType", "DynamoDB");
            x.details.close();
            return;
        }
        _ => {
            d.kv_raw("snapshotId", &c.target.name);
            d.kv("sourceAccountId", c.ctx.peers.first().map(String::as_str).unwrap_or(c.ctx.account));
        }
    }
    x.details.close();
}

fn assume_role(j: &mut Json, rng: &mut fastrand::Rng, c: &Call, x: &mut Extra) {
    let t = c.target;
    let mut session = String::with_capacity(40);
    match c.ev.name {
        "AssumeRoleWithWebIdentity" => {
            session.push_str("botocore-session-");
            push_u64(&mut session, c.ctx.event_secs as u64);
        }
        "AssumeRoleWithSAML" => session.push_str(PEOPLE[rng.usize(0..PEOPLE.len())]),
        _ => match c.caller.kind {
            Kind::AwsService => match ROLES[t.k].1 {
                RoleUse::Lambda => {
                    let role = ROLES[t.k].0;
                    session.push_str(role.strip_suffix("-role").unwrap_or(role));
                }
                RoleUse::Ec2 => {
                    session.push_str("i-0");
                    push_hex_from(&mut session, mix2(c.ctx.account_hash, t.k as u64), 16);
                }
                RoleUse::Ecs => push_hex_from(&mut session, mix2(c.ctx.account_hash, rng.u64(0..8)), 16),
                RoleUse::Glue => session.push_str("GlueJobRunnerSession"),
                _ => session.push_str("AWSConfig-Describe"),
            },
            _ => {
                session.push_str(["terraform", "audit", "AWSCLI-Session", "deploy"][rng.usize(0..4)]);
                if rng.bool() {
                    session.push('-');
                    push_u64(&mut session, c.ctx.event_secs as u64);
                }
            }
        },
    }
    let duration = if rng.u8(0..4) == 0 { 43_200 } else { 3_600 };
    j.obj("requestParameters");
    j.kv_raw("roleArn", &t.arn);
    j.kv("roleSessionName", &session);
    if c.ev.name == "AssumeRoleWithSAML" {
        j.kv_with("principalArn", |b| {
            b.push_str("arn:aws:iam::");
            b.push_str(&t.account);
            b.push_str(":saml-provider/CorpIdP");
        });
    }
    j.kv_u64("durationSeconds", duration);
    if t.account != c.ctx.account && rng.bool() {
        j.kv("externalId", "HIDDEN_DUE_TO_SECURITY_REASONS");
    }
    j.close();
    if c.error {
        j.kv_null("responseElements");
    } else {
        j.obj("responseElements");
        credentials(j, rng, c.ctx, duration as i64);
        if c.ev.name == "AssumeRoleWithWebIdentity" {
            j.kv("subjectFromWebIdentityToken", "system:serviceaccount:kube-system:external-dns");
        }
        assumed_role_user(j, t, &session);
        match c.ev.name {
            "AssumeRoleWithWebIdentity" => {
                j.kv_with("provider", |b| {
                    b.push_str("arn:aws:iam::");
                    b.push_str(&t.account);
                    b.push_str(":oidc-provider/oidc.eks.");
                    b.push_str(c.ctx.region);
                    b.push_str(".amazonaws.com/id/");
                    push_upper_from(b, c.ctx.account_hash ^ 0x0D1C, 32);
                });
                j.kv("audience", "sts.amazonaws.com");
            }
            "AssumeRoleWithSAML" => {
                j.kv("subjectType", "persistent");
                j.kv("issuer", "urn:example:corp-idp");
                j.kv("audience", "urn:amazon:webservices");
                j.kv_with("nameQualifier", |b| push_b64(b, rng, 28));
            }
            _ => {
                if rng.u8(0..5) == 0 {
                    j.kv_u64("packedPolicySize", rng.u64(3..40));
                }
            }
        }
        j.close();
    }
    if c.ev.name == "AssumeRole" && rng.u8(0..8) == 0 {
        j.obj("additionalEventData");
        j.kv("ExtendedRequestId", "MTpMYuW5DQvjMwgKo+ZVBSYZFlUVFt8UD6l+uykx9gFaGFGz4OLQ==");
        j.close();
    }
    resource(x, Some(&t.account), "AWS::IAM::Role", &t.arn);
    // Cross-account role use is logged in both accounts with one sharedEventID.
    x.shared = t.account != c.ctx.account || c.caller.account != c.ctx.account;
}

fn lambda_function(j: &mut Json, rng: &mut fastrand::Rng, c: &Call) {
    let t = c.target;
    let read = c.ev.read_only;
    let runtime = ["python3.12", "nodejs20.x", "java21", "provided.al2023"][t.k % 4];
    let memory = [128u64, 256, 512, 1024, 1769, 3008][t.k % 6];
    j.obj("requestParameters");
    j.kv_raw("functionName", &t.name);
    if !read {
        match c.ev.name {
            "UpdateFunctionCode20150331v2" => {
                j.kv_with("s3Bucket", |b| names::push_bucket(b, c.ctx.account, 5));
                j.kv_with("s3Key", |b| {
                    b.push_str("lambda/");
                    b.push_str(&t.name);
                    b.push('/');
                    push_hex(b, rng, 12);
                    b.push_str(".zip");
                });
                j.kv_bool("publish", false);
            }
            _ => {
                j.kv("runtime", runtime);
                j.kv("handler", "app.handler");
                j.kv_raw("description", "Handles \\\"orders\\\" \\u2192 fulfilment (ticket #2231)");
                j.kv_u64("timeout", 30);
                j.kv_u64("memorySize", memory);
                j.obj("environment");
                j.kv_empty_obj("variables");
                j.close();
            }
        }
    }
    j.close();
    if read || c.error {
        j.kv_null("responseElements");
        return;
    }
    j.obj("responseElements");
    j.kv_raw("functionName", &t.name);
    j.kv_raw("functionArn", &t.arn);
    j.kv("runtime", runtime);
    j.kv_with("role", |b| {
        b.push_str("arn:aws:iam::");
        b.push_str(c.ctx.account);
        b.push_str(":role/");
        b.push_str(&t.name);
        b.push_str("-role");
    });
    j.kv("handler", "app.handler");
    j.kv_u64("codeSize", rng.u64(1_000..60_000_000));
    j.kv_raw("description", "Handles \\\"orders\\\" \\u2192 fulfilment (ticket #2231)");
    j.kv_u64("timeout", 30);
    j.kv_u64("memorySize", memory);
    j.kv_with("lastModified", |b| {
        let mut iso = String::with_capacity(20);
        push_iso(&mut iso, c.ctx.event_secs);
        b.push_str(&iso[..19]);
        b.push('.');
        crate::json::push_padded(b, rng.u64(0..1000), 3);
        b.push_str("+0000");
    });
    j.kv_with("codeSha256", |b| {
        push_b64(b, rng, 43);
        b.push('=');
    });
    j.kv("version", "$LATEST");
    j.obj("tracingConfig");
    j.kv("mode", "PassThrough");
    j.close();
    j.kv_with("revisionId", |b| push_uuid(b, rng));
    j.kv("state", "Active");
    j.kv("lastUpdateStatus", "InProgress");
    j.kv("lastUpdateStatusReason", "The function is being created.");
    j.kv("lastUpdateStatusReasonCode", "Creating");
    j.kv("packageType", "Zip");
    j.arr("architectures");
    j.str(if t.k.is_multiple_of(2) { "arm64" } else { "x86_64" });
    j.close_arr();
    j.obj("ephemeralStorage");
    j.kv_u64("size", 512);
    j.close();
    j.obj("snapStart");
    j.kv("applyOn", "None");
    j.kv("optimizationStatus", "Off");
    j.close();
    j.obj("loggingConfig");
    j.kv("logFormat", "Text");
    j.kv_with("logGroup", |b| {
        b.push_str("/aws/lambda/");
        b.push_str(&t.name);
    });
    j.close();
    j.close();
}

fn dynamodb_item(j: &mut Json, rng: &mut fastrand::Rng, c: &Call, x: &mut Extra) {
    let t = c.target;
    let key = |j: &mut Json, rng: &mut fastrand::Rng| {
        j.obj("key");
        j.kv_with("pk", |b| {
            b.push_str(["ORDER#", "USER#", "SESSION#", "TENANT#"][t.k % 4]);
            push_u64(b, rng.u64(1000..99_999));
        });
        if t.k.is_multiple_of(2) {
            j.kv("sk", ["META", "ITEM#0001", "STATUS", "PROFILE"][rng.usize(0..4)]);
        }
        j.close();
    };
    j.obj("requestParameters");
    match c.ev.name {
        "BatchGetItem" | "BatchWriteItem" => {
            j.obj("requestItems");
            j.key(&t.name);
            j.open();
            j.arr("keys");
            for _ in 0..rng.usize(1..6) {
                j.open();
                key(j, rng);
                j.close();
            }
            j.close_arr();
            j.close();
            j.close();
        }
        "Query" => {
            j.kv_raw("tableName", &t.name);
            if rng.bool() {
                j.kv("indexName", "gsi1");
            }
            j.kv("keyConditionExpression", "#pk = :pk AND begins_with(#sk, :sk)");
            j.obj("expressionAttributeNames");
            j.kv("#pk", "pk");
            j.kv("#sk", "sk");
            j.close();
            j.kv_u64("limit", [25u64, 50, 100, 1000][rng.usize(0..4)]);
            j.kv_bool("scanIndexForward", false);
        }
        "Scan" => {
            j.kv_raw("tableName", &t.name);
            j.kv_u64("limit", 1000);
            j.kv("filterExpression", "attribute_exists(expiresAt) AND expiresAt < :now");
        }
        name => {
            j.kv_raw("tableName", &t.name);
            key(j, rng);
            match name {
                "PutItem" => j.kv("conditionExpression", "attribute_not_exists(pk)"),
                "UpdateItem" => {
                    j.kv("updateExpression", "SET #s = :s, updatedAt = :u ADD version :one");
                    j.kv("returnValues", "ALL_NEW");
                }
                "GetItem" => j.kv_bool("consistentRead", rng.bool()),
                _ => {}
            }
        }
    }
    j.close();
    j.kv_null("responseElements");
    resource(x, Some(c.ctx.account), "AWS::DynamoDB::Table", &t.arn);
}

fn sqs(j: &mut Json, rng: &mut fastrand::Rng, c: &Call, x: &mut Extra) {
    let t = c.target;
    j.obj("requestParameters");
    j.kv_with("queueUrl", |b| {
        b.push_str("https://sqs.");
        b.push_str(c.ctx.region);
        b.push_str(".amazonaws.com/");
        b.push_str(c.ctx.account);
        b.push('/');
        b.push_str(&t.name);
    });
    match c.ev.name {
        "ReceiveMessage" => {
            j.kv_u64("maxNumberOfMessages", 10);
            j.kv_u64("waitTimeSeconds", 20);
            j.kv_u64("visibilityTimeout", 30);
            j.arr("attributeNames");
            j.str("All");
            j.close_arr();
        }
        "SendMessage" => {
            j.kv("messageBody", "HIDDEN_DUE_TO_SECURITY_REASONS");
            if rng.bool() {
                j.obj("messageAttributes");
                j.obj("traceparent");
                j.kv("dataType", "String");
                j.kv_with("stringValue", |b| {
                    b.push_str("00-");
                    push_hex(b, rng, 32);
                    b.push('-');
                    push_hex(b, rng, 16);
                    b.push_str("-01");
                });
                j.close();
                j.close();
            }
        }
        "SendMessageBatch" => {
            j.arr("entries");
            for i in 0..rng.u64(2..11) {
                j.open();
                j.kv_with("id", |b| push_u64(b, i));
                j.kv("messageBody", "HIDDEN_DUE_TO_SECURITY_REASONS");
                j.close();
            }
            j.close_arr();
        }
        "ChangeMessageVisibility" => {
            j.kv_with("receiptHandle", |b| push_b64(b, rng, 180));
            j.kv_u64("visibilityTimeout", rng.u64(0..900));
        }
        _ => j.kv_with("receiptHandle", |b| push_b64(b, rng, 180)),
    }
    j.close();
    if c.ev.name == "SendMessage" && !c.error {
        j.obj("responseElements");
        j.kv_with("mD5OfMessageBody", |b| push_hex(b, rng, 32));
        j.kv_with("messageId", |b| push_uuid(b, rng));
        j.close();
    } else {
        j.kv_null("responseElements");
    }
    resource(x, Some(c.ctx.account), "AWS::SQS::Queue", &t.arn);
}

fn signin(j: &mut Json, rng: &mut fastrand::Rng, c: &Call, x: &mut Extra) {
    x.no_request_id = true;
    let name = c.ev.name;
    j.kv_null("requestParameters");
    j.obj("responseElements");
    j.kv(name, if c.error { "Failure" } else { "Success" });
    j.close();
    j.obj("additionalEventData");
    match name {
        "ConsoleLogin" => {
            j.kv_with("LoginTo", |b| {
                b.push_str(
                    "https://console.aws.amazon.com/console/home?hashArgs=%23&isauthcode=true&state=hashArgsFromTB_",
                );
                b.push_str(c.ctx.region);
                b.push('_');
                push_hex(b, rng, 16);
            });
            j.kv("MobileVersion", "No");
            let mfa = c.caller.kind != Kind::Root || rng.bool();
            if mfa && !c.error && c.caller.kind == Kind::IamUser {
                j.kv_with("MFAIdentifier", |b| {
                    b.push_str(&c.caller.arn.replace(":user/", ":mfa/"));
                });
            }
            j.kv("MFAUsed", if mfa && !c.error { "Yes" } else { "No" });
        }
        "CheckMfa" => j.kv("MfaType", if rng.bool() { "Virtual MFA" } else { "FIDO2 Security Key" }),
        "SwitchRole" => {
            j.kv_with("SwitchFrom", |b| b.push_str(&c.caller.arn));
            j.kv("RedirectTo", "https://console.aws.amazon.com/s3/home");
        }
        _ => {
            j.kv("MobileVersion", "No");
        }
    }
    j.close();
}

fn iam(j: &mut Json, rng: &mut fastrand::Rng, c: &Call, x: &mut Extra) {
    let t = c.target;
    let ok = !c.error;
    match c.ev.name {
        "CreateRole" => {
            j.obj("requestParameters");
            j.kv_raw("roleName", &t.name);
            j.kv_raw("description", "Execution role for \\\"orders-api\\\"\\nOwner: platform-team");
            j.kv_raw("assumeRolePolicyDocument", TRUST_POLICY);
            j.kv_u64("maxSessionDuration", 3600);
            tags(j, rng, "tags", "key", "value");
            j.close();
            if ok {
                j.obj("responseElements");
                j.obj("role");
                j.kv("path", "/");
                j.kv_raw("roleName", &t.name);
                j.kv_with("roleId", |b| {
                    b.push_str("AROA");
                    push_upper(b, rng, 17);
                });
                j.kv_raw("arn", &t.arn);
                java_date(j, "createDate", c.ctx.event_secs);
                j.kv_raw("assumeRolePolicyDocument", TRUST_POLICY_URLENC);
                j.kv_u64("maxSessionDuration", 3600);
                j.close();
                j.close();
            } else {
                j.kv_null("responseElements");
            }
        }
        "AttachRolePolicy" | "DetachRolePolicy" | "AttachUserPolicy" => {
            j.obj("requestParameters");
            j.kv_raw(if c.ev.name == "AttachUserPolicy" { "userName" } else { "roleName" }, &t.name);
            j.kv(
                "policyArn",
                [
                    "arn:aws:iam::aws:policy/ReadOnlyAccess",
                    "arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole",
                    "arn:aws:iam::aws:policy/AmazonS3FullAccess",
                    "arn:aws:iam::aws:policy/AdministratorAccess",
                ][rng.usize(0..4)],
            );
            j.close();
            j.kv_null("responseElements");
        }
        "PutRolePolicy" | "CreatePolicy" | "CreatePolicyVersion" => {
            j.obj("requestParameters");
            match c.ev.name {
                "PutRolePolicy" => {
                    j.kv_raw("roleName", &t.name);
                    j.kv("policyName", "inline-orders-read");
                }
                "CreatePolicy" => {
                    j.kv_raw("policyName", &t.name);
                    j.kv("description", "Least-privilege read access to orders tables");
                }
                _ => {
                    j.kv_raw("policyArn", &t.arn);
                    j.kv_bool("setAsDefault", true);
                }
            }
            j.kv_raw("policyDocument", PERMISSION_POLICY);
            j.close();
            if ok && c.ev.name == "CreatePolicy" {
                j.obj("responseElements");
                j.obj("policy");
                j.kv_raw("policyName", &t.name);
                j.kv_with("policyId", |b| {
                    b.push_str("ANPA");
                    push_upper(b, rng, 17);
                });
                j.kv_raw("arn", &t.arn);
                j.kv("path", "/");
                j.kv("defaultVersionId", "v1");
                j.kv_u64("attachmentCount", 0);
                j.kv_u64("permissionsBoundaryUsageCount", 0);
                j.kv_bool("isAttachable", true);
                java_date(j, "createDate", c.ctx.event_secs);
                java_date(j, "updateDate", c.ctx.event_secs);
                j.close();
                j.close();
            } else if ok && c.ev.name == "CreatePolicyVersion" {
                j.obj("responseElements");
                j.obj("policyVersion");
                j.kv_with("versionId", |b| {
                    b.push('v');
                    push_u64(b, rng.u64(2..6));
                });
                j.kv_bool("isDefaultVersion", true);
                java_date(j, "createDate", c.ctx.event_secs);
                j.close();
                j.close();
            } else {
                j.kv_null("responseElements");
            }
        }
        "CreateAccessKey" | "UpdateAccessKey" | "DeleteAccessKey" => {
            j.obj("requestParameters");
            j.kv_raw("userName", &t.name);
            if c.ev.name != "CreateAccessKey" {
                j.kv_with("accessKeyId", |b| {
                    b.push_str("AKIA");
                    push_upper(b, rng, 16);
                });
            }
            if c.ev.name == "UpdateAccessKey" {
                j.kv("status", "Inactive");
            }
            j.close();
            if ok && c.ev.name == "CreateAccessKey" {
                j.obj("responseElements");
                j.obj("accessKey");
                j.kv_with("accessKeyId", |b| {
                    b.push_str("AKIA");
                    push_upper(b, rng, 16);
                });
                j.kv("status", "Active");
                j.kv_raw("userName", &t.name);
                java_date(j, "createDate", c.ctx.event_secs);
                j.close();
                j.close();
            } else {
                j.kv_null("responseElements");
            }
        }
        "CreateUser" => {
            j.obj("requestParameters");
            j.kv_raw("userName", &t.name);
            tags(j, rng, "tags", "key", "value");
            j.close();
            if ok {
                j.obj("responseElements");
                j.obj("user");
                j.kv("path", "/");
                j.kv_raw("userName", &t.name);
                j.kv_with("userId", |b| {
                    b.push_str("AIDA");
                    push_upper(b, rng, 17);
                });
                j.kv_raw("arn", &t.arn);
                java_date(j, "createDate", c.ctx.event_secs);
                j.close();
                j.close();
            } else {
                j.kv_null("responseElements");
            }
        }
        "PassRole" => {
            j.obj("requestParameters");
            j.kv_raw("roleArn", &t.arn);
            j.close();
            j.kv_null("responseElements");
        }
        _ => generic(j, rng, c, x),
    }
    if !c.ev.plural && !c.ev.read_only {
        let ty = if t.arn.contains(":user/") {
            "AWS::IAM::User"
        } else if t.arn.contains(":policy/") {
            "AWS::IAM::Policy"
        } else {
            "AWS::IAM::Role"
        };
        if x.resources.buf.is_empty() {
            resource(x, Some(c.ctx.account), ty, &t.arn);
        }
    }
}

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
fn generic(j: &mut Json, rng: &mut fastrand::Rng, c: &Call, x: &mut Extra) {
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
