//! IAM calls: roles, policies, users and access keys.

use crate::ids::push_upper;
use crate::json::{Json, push_u64};

use super::{Call, Extra, generic, java_date, resource, response, tags};

/// The JSON-string-encoded policy documents IAM logs (escapes: `\"`, `\n`).
const TRUST_POLICY: &str = "{\\n  \\\"Version\\\": \\\"2012-10-17\\\",\\n  \\\"Statement\\\": [\\n    {\\n      \\\"Effect\\\": \\\"Allow\\\",\\n      \\\"Principal\\\": {\\n        \\\"Service\\\": \\\"lambda.amazonaws.com\\\"\\n      },\\n      \\\"Action\\\": \\\"sts:AssumeRole\\\"\\n    }\\n  ]\\n}";
const PERMISSION_POLICY: &str = "{\\\"Version\\\":\\\"2012-10-17\\\",\\\"Statement\\\":[{\\\"Sid\\\":\\\"ReadOrders\\\",\\\"Effect\\\":\\\"Allow\\\",\\\"Action\\\":[\\\"dynamodb:GetItem\\\",\\\"dynamodb:Query\\\"],\\\"Resource\\\":\\\"*\\\",\\\"Condition\\\":{\\\"StringEquals\\\":{\\\"aws:RequestedRegion\\\":[\\\"us-east-1\\\",\\\"eu-west-1\\\"]}}}]}";
/// The URL-encoded form IAM returns in `responseElements`.
const TRUST_POLICY_URLENC: &str = "%7B%22Version%22%3A%222012-10-17%22%2C%22Statement%22%3A%5B%7B%22Effect%22%3A%22Allow%22%2C%22Principal%22%3A%7B%22Service%22%3A%22lambda.amazonaws.com%22%7D%2C%22Action%22%3A%22sts%3AAssumeRole%22%7D%5D%7D";

/// IAM bodies; every single-resource write lists its role, user or policy.
pub(super) fn write(j: &mut Json, rng: &mut fastrand::Rng, c: &Call, x: &mut Extra) {
    let t = c.target;
    let name = c.ev.name;
    let created = c.ctx.event_secs;
    match name {
        "CreateRole" => {
            j.object("requestParameters", |j| {
                j.kv_raw("roleName", &t.name);
                j.kv_raw("description", "Execution role for \\\"orders-api\\\"\\nOwner: platform-team");
                j.kv_raw("assumeRolePolicyDocument", TRUST_POLICY);
                j.kv_u64("maxSessionDuration", 3600);
                tags(j, rng, "tags", "key", "value");
            });
            new_entity(j, rng, c, ["role", "roleName", "roleId", "AROA"], |j| {
                j.kv_raw("assumeRolePolicyDocument", TRUST_POLICY_URLENC);
                j.kv_u64("maxSessionDuration", 3600);
            });
        }
        "AttachRolePolicy" | "DetachRolePolicy" | "AttachUserPolicy" => {
            j.object("requestParameters", |j| {
                j.kv_raw(if name == "AttachUserPolicy" { "userName" } else { "roleName" }, &t.name);
                j.kv(
                    "policyArn",
                    [
                        "arn:aws:iam::aws:policy/ReadOnlyAccess",
                        "arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole",
                        "arn:aws:iam::aws:policy/AmazonS3FullAccess",
                        "arn:aws:iam::aws:policy/AdministratorAccess",
                    ][rng.usize(0..4)],
                );
            });
            j.kv_null("responseElements");
        }
        "PutRolePolicy" | "CreatePolicy" | "CreatePolicyVersion" => {
            j.object("requestParameters", |j| {
                match name {
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
            });
            match name {
                "CreatePolicy" => response(j, c, |j| {
                    j.object("policy", |j| {
                        j.kv_raw("policyName", &t.name);
                        upper_id(j, rng, "policyId", "ANPA", 17);
                        j.kv_raw("arn", &t.arn);
                        j.kv("path", "/");
                        j.kv("defaultVersionId", "v1");
                        j.kv_u64("attachmentCount", 0);
                        j.kv_u64("permissionsBoundaryUsageCount", 0);
                        j.kv_bool("isAttachable", true);
                        java_date(j, "createDate", created);
                        java_date(j, "updateDate", created);
                    });
                }),
                "CreatePolicyVersion" => response(j, c, |j| {
                    j.object("policyVersion", |j| {
                        j.kv_with("versionId", |b| {
                            b.push('v');
                            push_u64(b, rng.u64(2..6));
                        });
                        j.kv_bool("isDefaultVersion", true);
                        java_date(j, "createDate", created);
                    });
                }),
                _ => j.kv_null("responseElements"),
            }
        }
        "CreateAccessKey" | "UpdateAccessKey" | "DeleteAccessKey" => {
            j.object("requestParameters", |j| {
                j.kv_raw("userName", &t.name);
                if name != "CreateAccessKey" {
                    upper_id(j, rng, "accessKeyId", "AKIA", 16);
                }
                if name == "UpdateAccessKey" {
                    j.kv("status", "Inactive");
                }
            });
            if name == "CreateAccessKey" {
                response(j, c, |j| {
                    j.object("accessKey", |j| {
                        upper_id(j, rng, "accessKeyId", "AKIA", 16);
                        j.kv("status", "Active");
                        j.kv_raw("userName", &t.name);
                        java_date(j, "createDate", created);
                    });
                });
            } else {
                j.kv_null("responseElements");
            }
        }
        "CreateUser" => {
            j.object("requestParameters", |j| {
                j.kv_raw("userName", &t.name);
                tags(j, rng, "tags", "key", "value");
            });
            new_entity(j, rng, c, ["user", "userName", "userId", "AIDA"], |_| {});
        }
        "PassRole" => {
            j.object("requestParameters", |j| j.kv_raw("roleArn", &t.arn));
            j.kv_null("responseElements");
        }
        _ => generic::write(j, rng, c, x),
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

/// `"k":"<prefix><n random upper-case characters>"`, IAM's unique ids (`AROA…`, `AKIA…`).
fn upper_id(j: &mut Json, rng: &mut fastrand::Rng, k: &str, prefix: &str, n: usize) {
    j.kv_with(k, |b| {
        b.push_str(prefix);
        push_upper(b, rng, n);
    });
}

/// The `role` or `user` IAM returns when it creates one: `[object, name key, id key, id
/// prefix]` name the members; `rest` writes the members after `createDate`.
fn new_entity(j: &mut Json, rng: &mut fastrand::Rng, c: &Call, names: [&str; 4], rest: impl FnOnce(&mut Json)) {
    let [object, name, id, prefix] = names;
    response(j, c, |j| {
        j.object(object, |j| {
            j.kv("path", "/");
            j.kv_raw(name, &c.target.name);
            upper_id(j, rng, id, prefix, 17);
            j.kv_raw("arn", &c.target.arn);
            java_date(j, "createDate", c.ctx.event_secs);
            rest(j);
        });
    });
}

#[cfg(test)]
mod tests {
    use crate::body::testing::{ACCOUNT, call, event_time, java_date};

    #[test]
    fn create_role_returns_the_role_and_lists_it() {
        let w = call("iam", "CreateRole", 0, false);
        assert_eq!(w.arn(), format!("arn:aws:iam::{ACCOUNT}:role/{}", w.name()));
        assert_eq!(w.body["requestParameters"]["roleName"], w.name());
        let doc = w.body["requestParameters"]["assumeRolePolicyDocument"].as_str().expect("policy document");
        let doc: serde_json::Value = serde_json::from_str(doc).expect("the policy document is JSON text");
        assert_eq!(doc["Statement"][0]["Action"], "sts:AssumeRole");
        let role = &w.body["responseElements"]["role"];
        assert_eq!(role["arn"], w.arn());
        assert_eq!(role["roleName"], w.name());
        assert!(role["roleId"].as_str().unwrap().starts_with("AROA"));
        assert_eq!(java_date(&role["createDate"]), event_time());
        assert_eq!(w.resource("AWS::IAM::Role").expect("role resource")["ARN"], w.arn());
    }

    #[test]
    fn user_calls_list_the_user() {
        let w = call("iam", "CreateUser", 1, false);
        assert_eq!(w.arn(), format!("arn:aws:iam::{ACCOUNT}:user/{}", w.name()));
        assert_eq!(w.body["responseElements"]["user"]["userName"], w.name());
        assert!(w.body["responseElements"]["user"]["userId"].as_str().unwrap().starts_with("AIDA"));
        assert_eq!(w.resource("AWS::IAM::User").expect("user resource")["ARN"], w.arn());
        let key = call("iam", "CreateAccessKey", 1, false);
        let created = &key.body["responseElements"]["accessKey"];
        assert_eq!(created["userName"], key.name());
        assert_eq!(created["status"], "Active");
        assert!(created["accessKeyId"].as_str().unwrap().starts_with("AKIA"));
        assert!(call("iam", "CreateAccessKey", 1, true).body["responseElements"].is_null());
    }

    #[test]
    fn policy_documents_are_json_text() {
        let w = call("iam", "CreatePolicy", 2, false);
        let doc = w.body["requestParameters"]["policyDocument"].as_str().expect("policyDocument");
        let doc: serde_json::Value = serde_json::from_str(doc).expect("the policy document is JSON text");
        assert_eq!(doc["Version"], "2012-10-17");
        assert_eq!(w.body["responseElements"]["policy"]["arn"], w.arn());
        assert_eq!(w.resource("AWS::IAM::Policy").expect("policy resource")["ARN"], w.arn());
    }

    #[test]
    fn reads_list_nothing() {
        let w = call("iam", "GetRole", 0, false);
        assert!(w.resources.is_empty(), "{:?}", w.resources);
    }
}
