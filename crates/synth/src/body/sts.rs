//! STS calls: role assumption in all its forms, session and federation tokens.

use crate::identity::{Kind, PEOPLE, ROLES, RoleUse};
use crate::ids::{hash_str, mix2, push_b64, push_hex_from, push_upper, push_upper_from};
use crate::json::{Json, push_u64};

use super::{Call, Ctx, Extra, Target, arn, generic, java_date, resource, response};

/// STS bodies.
pub(super) fn write(j: &mut Json, rng: &mut fastrand::Rng, c: &Call, x: &mut Extra) {
    match c.ev.name {
        "AssumeRole" | "AssumeRoleWithWebIdentity" | "AssumeRoleWithSAML" => assume_role(j, rng, c, x),
        "GetCallerIdentity" => {
            j.kv_null("requestParameters");
            j.kv_null("responseElements");
        }
        "GetSessionToken" | "GetFederationToken" => {
            j.object("requestParameters", |j| {
                j.kv_u64("durationSeconds", if rng.bool() { 43_200 } else { 3_600 });
                if c.ev.name == "GetFederationToken" {
                    j.kv("name", PEOPLE[rng.usize(0..PEOPLE.len())].split('@').next().unwrap_or("user"));
                }
            });
            response(j, c, |j| credentials(j, rng, c.ctx, 43_200));
        }
        _ => generic::write(j, rng, c, x),
    }
}

/// Temporary credentials that expire `duration` seconds after the call.
fn credentials(j: &mut Json, rng: &mut fastrand::Rng, ctx: &Ctx, duration: i64) {
    j.object("credentials", |j| {
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
    });
}

fn assumed_role_user(j: &mut Json, t: &Target, session: &str) {
    let h = hash_str(&t.arn);
    j.object("assumedRoleUser", |j| {
        j.kv_with("assumedRoleId", |b| {
            b.push_str("AROA");
            push_upper_from(b, h, 17);
            b.push(':');
            b.push_str(session);
        });
        j.kv_with("arn", |b| {
            arn(b, "sts", "", &t.account, "assumed-role/", &t.name);
            b.push('/');
            b.push_str(session);
        });
    });
}

/// The session name callers of each kind use.
fn session_name(rng: &mut fastrand::Rng, c: &Call) -> String {
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
    session
}

fn assume_role(j: &mut Json, rng: &mut fastrand::Rng, c: &Call, x: &mut Extra) {
    let t = c.target;
    let name = c.ev.name;
    let session = session_name(rng, c);
    let duration = if rng.u8(0..4) == 0 { 43_200 } else { 3_600 };
    j.object("requestParameters", |j| {
        j.kv_raw("roleArn", &t.arn);
        j.kv("roleSessionName", &session);
        if name == "AssumeRoleWithSAML" {
            j.kv_with("principalArn", |b| arn(b, "iam", "", &t.account, "saml-provider/", "CorpIdP"));
        }
        j.kv_u64("durationSeconds", duration);
        if t.account != c.ctx.account && rng.bool() {
            j.kv("externalId", "HIDDEN_DUE_TO_SECURITY_REASONS");
        }
    });
    response(j, c, |j| {
        credentials(j, rng, c.ctx, duration as i64);
        if name == "AssumeRoleWithWebIdentity" {
            j.kv("subjectFromWebIdentityToken", "system:serviceaccount:kube-system:external-dns");
        }
        assumed_role_user(j, t, &session);
        match name {
            "AssumeRoleWithWebIdentity" => {
                j.kv_with("provider", |b| {
                    arn(b, "iam", "", &t.account, "oidc-provider/oidc.eks.", c.ctx.region);
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
    });
    if name == "AssumeRole" && rng.u8(0..8) == 0 {
        j.object("additionalEventData", |j| {
            j.kv("ExtendedRequestId", "MTpMYuW5DQvjMwgKo+ZVBSYZFlUVFt8UD6l+uykx9gFaGFGz4OLQ==");
        });
    }
    resource(x, Some(&t.account), "AWS::IAM::Role", &t.arn);
    // Cross-account role use is logged in both accounts with one sharedEventID.
    x.shared = t.account != c.ctx.account || c.caller.account != c.ctx.account;
}

#[cfg(test)]
mod tests {
    use chrono::Duration;

    use crate::body::testing::{ACCOUNT, REGION, call, call_where, event_time, java_date};

    #[test]
    fn assume_role_returns_credentials_expiring_after_the_call() {
        for seed in 0..20 {
            let w = call("sts", "AssumeRole", seed, false);
            let req = &w.body["requestParameters"];
            assert_eq!(req["roleArn"], w.arn());
            let duration = req["durationSeconds"].as_i64().expect("durationSeconds");
            assert!([3_600, 43_200].contains(&duration), "{duration}");
            let creds = &w.body["responseElements"]["credentials"];
            let expires = java_date(&creds["expiration"]);
            assert_eq!(expires, event_time() + Duration::seconds(duration), "seed {seed}");
            let key = creds["accessKeyId"].as_str().expect("accessKeyId");
            assert!(key.starts_with("ASIA") && key.len() == 20, "{key}");
            assert!(creds["sessionToken"].as_str().unwrap().len() > 300);
            // The assumed-role ARN is the role's, in the role's account, with the session name.
            let session = req["roleSessionName"].as_str().expect("roleSessionName");
            let user = &w.body["responseElements"]["assumedRoleUser"];
            let role_account = w.arn().split(':').nth(4).unwrap().to_owned();
            assert_eq!(user["arn"], format!("arn:aws:sts::{role_account}:assumed-role/{}/{session}", w.name()));
            assert!(user["assumedRoleId"].as_str().unwrap().ends_with(&format!(":{session}")));
            let role = w.resource("AWS::IAM::Role").expect("role resource");
            assert_eq!(role["ARN"], w.arn());
            assert_eq!(role["accountId"], role_account);
        }
    }

    #[test]
    fn cross_account_assume_role_is_shared() {
        let w = call_where("sts", "AssumeRole", false, |w| w.target.account != ACCOUNT);
        assert!(w.shared);
        assert!(w.arn().starts_with(&format!("arn:aws:iam::{}:role/", w.target.account)), "{}", w.arn());
        let local = call_where("sts", "AssumeRole", false, |w| w.target.account == ACCOUNT);
        assert!(!local.shared);
    }

    #[test]
    fn web_identity_names_the_cluster_provider() {
        let w = call("sts", "AssumeRoleWithWebIdentity", 4, false);
        let res = &w.body["responseElements"];
        let provider = res["provider"].as_str().expect("provider");
        assert!(provider.contains(&format!(":oidc-provider/oidc.eks.{REGION}.amazonaws.com/id/")), "{provider}");
        assert_eq!(res["audience"], "sts.amazonaws.com");
    }

    #[test]
    fn failed_assume_role_returns_nothing_but_names_the_role() {
        let w = call("sts", "AssumeRole", 7, true);
        assert!(w.body["responseElements"].is_null());
        assert_eq!(w.body["requestParameters"]["roleArn"], w.arn());
        let (code, msg) = w.error.expect("an error");
        assert!(["AccessDenied", "Throttling", "NotFound", "ValidationException"].contains(&code.as_str()), "{code}");
        assert!(!msg.is_empty());
    }
}
