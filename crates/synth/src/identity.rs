//! `userIdentity` objects and the callers behind them.
//!
//! Every account gets the same cast of users and roles (names from fixed lists, ids hashed from
//! the account id), so a principal keeps its `principalId`, role id and session shape across a
//! tree, the way real trails look when grouped by `userIdentity.arn`.

use crate::ids::{hash_str, mix, mix2, push_hex_from, push_upper, push_upper_from, push_uuid_from};
use crate::json::Json;
use crate::time::push_iso;

/// The `userIdentity.type` values generated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    IamUser,
    AssumedRole,
    Root,
    AwsService,
    FederatedUser,
    IdentityCenterUser,
    WebIdentityUser,
    SamlUser,
    /// Unauthenticated callers (Cognito sign-in APIs): `{"type":"Unknown","principalId":"Anonymous"}`.
    Unknown,
}

/// The caller chosen for a record, before its identity is written.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Pick<'a> {
    pub kind: Kind,
    /// Account the caller belongs to (differs from the recipient for cross-account calls).
    pub account: &'a str,
    /// Service making the call on the caller's behalf.
    pub invoked_by: Option<&'static str>,
    /// Force a role (index into [`ROLES`]).
    pub role: Option<usize>,
    /// Force a console session on or off.
    pub console: Option<bool>,
}

/// What a role is used for; drives session names, source IPs and user agents.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RoleUse {
    /// Identity Center permission-set role used by a person.
    Sso,
    /// Lambda execution role.
    Lambda,
    /// EC2 instance profile role.
    Ec2,
    /// ECS task role.
    Ecs,
    /// EKS service account role (IRSA, web identity federation).
    Irsa,
    /// CI/CD deployment role.
    Ci,
    /// Role assumed from another account.
    CrossAccount,
    /// Service-linked role, calls carry `invokedBy`.
    ServiceLinked(&'static str),
    /// Federated person via SAML.
    Saml,
    /// Data-processing job role (Glue).
    Glue,
}

/// Role names and their use. `{sso}` roles get an account-specific hex suffix.
pub(crate) const ROLES: &[(&str, RoleUse)] = &[
    ("orders-api-lambda-role", RoleUse::Lambda),
    ("AWSReservedSSO_AdministratorAccess_", RoleUse::Sso),
    ("eks-node-group-role", RoleUse::Ec2),
    ("image-resizer-role", RoleUse::Lambda),
    ("ecsTaskExecutionRole", RoleUse::Ecs),
    ("karpenter-controller", RoleUse::Irsa),
    ("AWSReservedSSO_ReadOnlyAccess_", RoleUse::Sso),
    ("deploy-pipeline-role", RoleUse::Ci),
    ("billing-export-lambda", RoleUse::Lambda),
    ("AWSReservedSSO_PowerUserAccess_", RoleUse::Sso),
    ("external-dns", RoleUse::Irsa),
    ("glue-etl-job-role", RoleUse::Glue),
    ("Admin", RoleUse::Saml),
    ("batch-worker-instance-role", RoleUse::Ec2),
    ("cloudtrail-parquet-converter", RoleUse::Lambda),
    ("payments-service-task", RoleUse::Ecs),
    ("terraform-apply", RoleUse::Ci),
    ("OrganizationAccountAccessRole", RoleUse::CrossAccount),
    ("ReadOnly", RoleUse::Saml),
    ("security-audit", RoleUse::CrossAccount),
    ("AWSServiceRoleForConfig", RoleUse::ServiceLinked("config.amazonaws.com")),
    ("AWSServiceRoleForAutoScaling", RoleUse::ServiceLinked("autoscaling.amazonaws.com")),
    ("AWSServiceRoleForAmazonGuardDuty", RoleUse::ServiceLinked("guardduty.amazonaws.com")),
    ("AWSServiceRoleForECS", RoleUse::ServiceLinked("ecs.amazonaws.com")),
];

/// Index of a role in [`ROLES`] by name (panics on a typo, caught by tests).
pub(crate) fn role(name: &str) -> usize {
    ROLES.iter().position(|(n, _)| *n == name).unwrap_or_else(|| panic!("unknown role {name}"))
}

/// IAM user names (humans and long-lived automation keys).
pub(crate) const USERS: &[&str] = &[
    "alice",
    "ci-legacy",
    "bob",
    "terraform",
    "carol.nguyen",
    "backup-agent",
    "dave",
    "jenkins",
    "erin.obrien",
    "monitoring",
    "frank",
    "grafana-reader",
    "heidi",
    "svc-etl",
    "ivan",
    "judy",
    "mallory",
    "datadog-integration",
    "oscar",
    "peggy",
];

/// People (e-mail style), used for SSO sessions, SAML users and Identity Center users.
pub(crate) const PEOPLE: &[&str] = &[
    "jane.doe@example.com",
    "li.wei@example.com",
    "maria.garcia@example.com",
    "olu.adeyemi@example.com",
    "sven.larsson@example.com",
    "anika.sharma@example.com",
    "tom.becker@example.com",
    "yuki.tanaka@example.com",
    "chloe.martin@example.com",
    "diego.fernandez@example.com",
    "fatima.zahra@example.com",
    "noah.smith@example.com",
];

/// Lambda function names (shared with the Lambda catalog entries).
pub(crate) const FUNCTIONS: &[&str] = &[
    "orders-api",
    "image-resizer",
    "billing-export",
    "cloudtrail-parquet-converter",
    "auth-token-refresh",
    "slack-notifier",
    "nightly-report",
    "webhook-ingest",
];

/// Services that call other services on a principal's behalf (`invokedBy`).
pub(crate) const INVOKERS: &[&str] = &[
    "s3.amazonaws.com",
    "secretsmanager.amazonaws.com",
    "cloudformation.amazonaws.com",
    "lambda.amazonaws.com",
    "ec2.amazonaws.com",
    "athena.amazonaws.com",
    "dynamodb.amazonaws.com",
    "logs.amazonaws.com",
];

/// Who made a call, as later fields (source IP, user agent, error messages) need to know it.
#[derive(Debug)]
pub(crate) struct Caller {
    pub kind: Kind,
    /// `userIdentity.arn` (empty for AWSService).
    pub arn: String,
    /// The account the caller belongs to.
    pub account: String,
    /// `invokedBy`, when a service made the call.
    pub invoked_by: Option<&'static str>,
    /// The role's use, for assumed roles.
    pub role_use: Option<RoleUse>,
    /// Console session (sessionCredentialFromConsole / browser user agent).
    pub console: bool,
    /// Index into [`USERS`], [`ROLES`] or [`PEOPLE`] (stable per principal).
    pub index: usize,
}

/// Per-record inputs to identity generation.
#[derive(Debug)]
pub(crate) struct Who<'a> {
    pub account: &'a str,
    pub account_hash: u64,
    pub event_secs: i64,
    pub region: &'a str,
    /// Management account for Identity Center ARNs.
    pub mgmt_account: &'a str,
    /// Emit an unknown nested field in `sessionContext`.
    pub future_field: bool,
}

/// A front-loaded index in `0..n`: index 0 about 20% of the time for n = 24.
fn front(rng: &mut fastrand::Rng, n: usize) -> usize {
    let u = rng.f64();
    ((u * u) * n as f64) as usize
}

/// Picks a caller kind for an ordinary call.
pub(crate) fn pick_kind(rng: &mut fastrand::Rng) -> Kind {
    match rng.u32(0..1000) {
        0..=599 => Kind::AssumedRole,
        600..=779 => Kind::IamUser,
        780..=889 => Kind::AwsService,
        890..=929 => Kind::IdentityCenterUser,
        930..=954 => Kind::FederatedUser,
        955..=974 => Kind::Root,
        975..=987 => Kind::SamlUser,
        _ => Kind::WebIdentityUser,
    }
}

fn push_role_name(out: &mut String, w: &Who, idx: usize) {
    let (name, use_) = ROLES[idx];
    out.push_str(name);
    if use_ == RoleUse::Sso {
        push_hex_from(out, mix2(w.account_hash, idx as u64), 16);
    }
}

fn push_role_path(out: &mut String, idx: usize) {
    match ROLES[idx].1 {
        RoleUse::ServiceLinked(svc) => {
            out.push_str("aws-service-role/");
            out.push_str(svc);
            out.push('/');
        }
        RoleUse::Sso => out.push_str("aws-reserved/sso.amazonaws.com/"),
        _ => {}
    }
}

/// Writes the session name for role `idx`, deterministic per account and hour.
fn push_session_name(out: &mut String, w: &Who, idx: usize) {
    let h = mix2(w.account_hash ^ 0x5E55, (idx as u64) << 32 | (w.event_secs / 3600) as u64);
    match ROLES[idx].1 {
        RoleUse::Sso | RoleUse::Saml => out.push_str(PEOPLE[(h % PEOPLE.len() as u64) as usize]),
        RoleUse::Lambda => {
            let role = ROLES[idx].0;
            out.push_str(
                role.strip_suffix("-lambda-role")
                    .or_else(|| role.strip_suffix("-role"))
                    .or_else(|| role.strip_suffix("-lambda"))
                    .unwrap_or(role),
            );
        }
        RoleUse::Ec2 => {
            out.push_str("i-0");
            push_hex_from(out, h, 16);
        }
        RoleUse::Ecs => {
            push_hex_from(out, h, 16);
            push_hex_from(out, mix(h), 16);
        }
        RoleUse::Irsa => {
            out.push_str("eks-prod-");
            out.push_str(ROLES[idx].0);
            out.push('-');
            crate::json::push_u64(out, (w.event_secs.div_euclid(3600) * 3600) as u64 - h % 3000);
        }
        RoleUse::Ci => {
            out.push_str("deploy-");
            crate::json::push_u64(out, 4000 + h % 900);
        }
        RoleUse::CrossAccount => out.push_str(USERS[(h % 4) as usize]),
        RoleUse::ServiceLinked(svc) => {
            let short = svc.split('.').next().unwrap_or(svc);
            out.push_str(short);
            out.push_str("-session");
        }
        RoleUse::Glue => out.push_str("GlueJobRunnerSession"),
    }
}

fn push_access_key(out: &mut String, temp: bool, seed: u64, event_secs: i64) {
    out.push_str(if temp { "ASIA" } else { "AKIA" });
    // Temporary keys rotate hourly; long-term keys are stable.
    let bucket = if temp { (event_secs / 3600) as u64 } else { 0 };
    push_upper_from(out, mix2(seed, bucket), 16);
}

fn write_attributes(j: &mut Json, w: &Who, seed: u64, mfa: Option<bool>) {
    j.obj("attributes");
    // Sessions are refreshed hourly: one creationDate per principal and hour.
    let hour = w.event_secs.div_euclid(3600);
    let created = hour * 3600 - 1 - (mix(seed ^ hour as u64) % 3000) as i64;
    j.kv_with("creationDate", |b| push_iso(b, created));
    if let Some(m) = mfa {
        j.kv("mfaAuthenticated", if m { "true" } else { "false" });
    }
    j.close();
}

fn write_future_field(j: &mut Json, w: &Who) {
    if w.future_field {
        j.obj("futureField");
        j.kv("policyContext", "v2");
        j.kv_u64("hops", 2);
        j.close();
    }
}

/// Writes `"userIdentity":{…}` for the picked caller and returns what later fields need.
pub(crate) fn write(j: &mut Json, rng: &mut fastrand::Rng, w: &Who, pick: &Pick) -> Caller {
    let kind = pick.kind;
    let invoked_by = pick.invoked_by;
    let acct = pick.account;
    let acct_hash = if acct == w.account { w.account_hash } else { hash_str(acct) };
    let mut caller = Caller {
        kind,
        arn: String::new(),
        account: acct.to_owned(),
        invoked_by,
        role_use: None,
        console: false,
        index: 0,
    };
    j.obj("userIdentity");
    match kind {
        Kind::IamUser => {
            // Humans are the first few users and log in through the console now and then.
            let mut idx = front(rng, USERS.len());
            if pick.console == Some(true) {
                // Even users are people; odd ones are automation keys.
                idx &= !1;
            }
            let name = USERS[idx];
            let seed = mix2(acct_hash, 0xA1DA_0000 + idx as u64);
            let human = idx.is_multiple_of(2);
            caller.console = pick.console.unwrap_or(human && rng.u8(0..4) == 0 && invoked_by.is_none());
            caller.index = idx;
            j.kv("type", "IAMUser");
            j.kv_with("principalId", |b| {
                b.push_str("AIDA");
                push_upper_from(b, seed, 17);
            });
            caller.arn = format!("arn:aws:iam::{acct}:user/{name}");
            j.kv("arn", &caller.arn);
            j.kv("accountId", acct);
            j.kv_with("accessKeyId", |b| push_access_key(b, caller.console, seed, w.event_secs));
            j.kv("userName", name);
            if caller.console {
                j.obj("sessionContext");
                j.kv_empty_obj("sessionIssuer");
                j.kv_empty_obj("webIdFederationData");
                write_attributes(j, w, seed, Some(rng.u8(0..5) != 0));
                write_future_field(j, w);
                j.close();
            }
            if let Some(s) = invoked_by {
                j.kv("invokedBy", s);
            }
        }
        Kind::AssumedRole => {
            let idx = if let Some(r) = pick.role {
                r
            } else if let Some(svc) = invoked_by.filter(|_| rng.bool()) {
                ROLES.iter().position(|(_, u)| *u == RoleUse::ServiceLinked(svc)).unwrap_or(0)
            } else {
                // Front-loaded: a few workload roles make most calls, as in real accounts.
                front(rng, ROLES.len())
            };
            write_assumed_role(j, rng, w, acct, acct_hash, idx, &mut caller);
            if let Some(c) = pick.console {
                caller.console = c;
            }
        }
        Kind::Root => {
            let seed = mix2(acct_hash, 0x2007);
            caller.console = pick.console.unwrap_or(rng.u8(0..3) == 0);
            caller.arn = format!("arn:aws:iam::{acct}:root");
            j.kv("type", "Root");
            j.kv("principalId", acct);
            j.kv("arn", &caller.arn);
            j.kv("accountId", acct);
            let assumed_root = !caller.console && rng.u8(0..4) == 0;
            match rng.u8(0..10) {
                // Console sign-in without MFA: no session context at all, empty access key.
                0 | 1 => j.kv("accessKeyId", ""),
                _ => {
                    j.kv_with("accessKeyId", |b| push_access_key(b, true, seed, w.event_secs));
                    j.obj("sessionContext");
                    j.kv_empty_obj("sessionIssuer");
                    j.kv_empty_obj("webIdFederationData");
                    write_attributes(j, w, seed, Some(rng.u8(0..3) != 0));
                    if assumed_root {
                        j.kv("assumedRoot", "true");
                    }
                    write_future_field(j, w);
                    j.close();
                }
            }
            if assumed_root {
                j.obj("inScopeOf");
                j.kv("issuerType", "AWS::Organizations::Account");
                j.kv("credentialsIssuedTo", &caller.arn);
                j.close();
            }
        }
        Kind::AwsService => {
            let svc = invoked_by.unwrap_or(INVOKERS[rng.usize(0..INVOKERS.len())]);
            caller.invoked_by = Some(svc);
            j.kv("type", "AWSService");
            j.kv("invokedBy", svc);
        }
        Kind::FederatedUser => {
            let idx = rng.usize(0..4);
            let user = USERS[idx * 2 + 1];
            let seed = mix2(acct_hash, 0xFED0 + idx as u64);
            let person = PEOPLE[idx];
            let local = person.split('@').next().unwrap_or(person);
            caller.arn = format!("arn:aws:sts::{acct}:federated-user/{local}");
            j.kv("type", "FederatedUser");
            j.kv_with("principalId", |b| {
                b.push_str(acct);
                b.push(':');
                b.push_str(local);
            });
            j.kv("arn", &caller.arn);
            j.kv("accountId", acct);
            j.kv_with("accessKeyId", |b| push_access_key(b, true, seed, w.event_secs));
            j.obj("sessionContext");
            j.obj("sessionIssuer");
            j.kv("type", "IAMUser");
            j.kv_with("principalId", |b| {
                b.push_str("AIDA");
                push_upper_from(b, mix2(acct_hash, 0xA1DA_0000 + (idx * 2 + 1) as u64), 17);
            });
            j.kv_with("arn", |b| {
                b.push_str("arn:aws:iam::");
                b.push_str(acct);
                b.push_str(":user/");
                b.push_str(user);
            });
            j.kv("accountId", acct);
            j.kv("userName", user);
            j.close();
            j.kv_empty_obj("webIdFederationData");
            write_attributes(j, w, seed, Some(false));
            write_future_field(j, w);
            j.close();
        }
        Kind::IdentityCenterUser => {
            let idx = rng.usize(0..PEOPLE.len());
            let seed = mix2(hash_str(w.mgmt_account), 0x1DC0 + idx as u64);
            caller.index = idx;
            j.kv("type", "IdentityCenterUser");
            j.kv("accountId", acct);
            j.obj("onBehalfOf");
            j.kv_with("userId", |b| push_uuid_from(b, (seed as u128) << 64 | mix(seed) as u128));
            j.kv_with("identityStoreArn", |b| {
                b.push_str("arn:aws:identitystore::");
                b.push_str(w.mgmt_account);
                b.push_str(":identitystore/d-");
                push_hex_from(b, mix(hash_str(w.mgmt_account)), 10);
            });
            j.close();
            j.kv_with("credentialId", |b| {
                push_upper_from(b, mix2(seed, (w.event_secs / 28_800) as u64), 24);
                b.push('_');
                push_upper(b, rng, 20);
            });
        }
        Kind::WebIdentityUser => {
            let seed = mix2(acct_hash, 0x3EB0);
            let sub = mix2(seed, rng.u64(0..50));
            j.kv("type", "WebIdentityUser");
            j.kv_with("principalId", |b| {
                b.push_str("cognito-identity.amazonaws.com:");
                b.push_str(w.region);
                b.push(':');
                push_uuid_from(b, (seed as u128) << 64 | sub as u128);
            });
            j.kv_with("userName", |b| {
                b.push_str(w.region);
                b.push(':');
                push_uuid_from(b, (sub as u128) << 64 | seed as u128);
            });
            j.kv("identityProvider", "cognito-identity.amazonaws.com");
        }
        Kind::SamlUser => {
            let idx = rng.usize(0..PEOPLE.len());
            let seed = mix2(acct_hash, 0x5A31);
            caller.index = idx;
            j.kv("type", "SAMLUser");
            j.kv_with("principalId", |b| {
                push_upper_from(b, seed, 27);
                b.push_str("=:");
                b.push_str(PEOPLE[idx]);
            });
            j.kv("userName", PEOPLE[idx]);
            j.kv_with("identityProvider", |b| {
                push_upper_from(b, seed, 27);
                b.push('=');
            });
        }
        Kind::Unknown => {
            j.kv("type", "Unknown");
            j.kv("principalId", "Anonymous");
        }
    }
    j.close();
    caller
}

fn write_assumed_role(
    j: &mut Json,
    rng: &mut fastrand::Rng,
    w: &Who,
    acct: &str,
    acct_hash: u64,
    idx: usize,
    caller: &mut Caller,
) {
    let use_ = ROLES[idx].1;
    let role_seed = mix2(acct_hash, 0xA20A_0000 + idx as u64);
    let mut role = String::with_capacity(48);
    push_role_name(&mut role, w, idx);
    let mut session = String::with_capacity(40);
    push_session_name(&mut session, w, idx);
    caller.role_use = Some(use_);
    caller.index = idx;
    if let RoleUse::ServiceLinked(svc) = use_ {
        caller.invoked_by = Some(svc);
    }
    caller.console = matches!(use_, RoleUse::Sso | RoleUse::Saml) && rng.u8(0..3) == 0;
    caller.arn = format!("arn:aws:sts::{acct}:assumed-role/{role}/{session}");

    j.kv("type", "AssumedRole");
    j.kv_with("principalId", |b| {
        b.push_str("AROA");
        push_upper_from(b, role_seed, 17);
        b.push(':');
        b.push_str(&session);
    });
    j.kv("arn", &caller.arn);
    j.kv("accountId", acct);
    j.kv_with("accessKeyId", |b| push_access_key(b, true, mix2(role_seed, hash_str(&session)), w.event_secs));
    j.obj("sessionContext");
    j.obj("sessionIssuer");
    j.kv("type", "Role");
    j.kv_with("principalId", |b| {
        b.push_str("AROA");
        push_upper_from(b, role_seed, 17);
    });
    j.kv_with("arn", |b| {
        b.push_str("arn:aws:iam::");
        b.push_str(acct);
        b.push_str(":role/");
        push_role_path(b, idx);
        b.push_str(&role);
    });
    j.kv("accountId", acct);
    j.kv("userName", &role);
    j.close();
    j.obj("webIdFederationData");
    if use_ == RoleUse::Irsa {
        j.kv_with("federatedProvider", |b| {
            b.push_str("arn:aws:iam::");
            b.push_str(acct);
            b.push_str(":oidc-provider/oidc.eks.");
            b.push_str(w.region);
            b.push_str(".amazonaws.com/id/");
            push_upper_from(b, acct_hash ^ 0x0D1C, 32);
        });
        j.kv_empty_obj("attributes");
    }
    j.close();
    let mfa = matches!(use_, RoleUse::Sso | RoleUse::Saml | RoleUse::CrossAccount) && !idx.is_multiple_of(3);
    write_attributes(j, w, role_seed ^ hash_str(&session), Some(mfa));
    match use_ {
        RoleUse::Ci if rng.bool() => j.kv("sourceIdentity", "deployer@example.com"),
        RoleUse::Sso if rng.u8(0..6) == 0 => j.kv_with("sourceIdentity", |b| b.push_str(session.as_str())),
        RoleUse::Ec2 => j.kv("ec2RoleDelivery", "2.0"),
        _ => {}
    }
    write_future_field(j, w);
    j.close();
    if let Some(svc) = caller.invoked_by {
        j.kv("invokedBy", svc);
    }
    if use_ == RoleUse::Lambda && rng.u8(0..3) == 0 {
        j.obj("inScopeOf");
        j.kv_with("sourceArn", |b| {
            b.push_str("arn:aws:lambda:");
            b.push_str(w.region);
            b.push(':');
            b.push_str(acct);
            b.push_str(":function:");
            b.push_str(&session);
        });
        j.kv("sourceAccount", acct);
        j.kv("issuerType", "AWS::Lambda::Function");
        j.kv_with("credentialsIssuedTo", |b| {
            b.push_str("arn:aws:iam::");
            b.push_str(acct);
            b.push_str(":role/");
            b.push_str(&role);
        });
        j.close();
    }
}
