//! KMS calls: cryptographic operations on behalf of services, grants.

use crate::identity::FUNCTIONS;
use crate::ids::{push_hex, push_upper_from, push_uuid};
use crate::json::Json;
use crate::names::{self, TABLES};

use super::{Call, Extra, arn, generic, hex_id, resource, response, uuid};

/// KMS bodies; every single-key call lists its key as a resource.
pub(super) fn write(j: &mut Json, rng: &mut fastrand::Rng, c: &Call, x: &mut Extra) {
    let key = &c.target.arn;
    match c.ev.name {
        "Decrypt" | "Encrypt" | "GenerateDataKey" | "ReEncrypt" => crypto(j, rng, c),
        "CreateGrant" => {
            j.object("requestParameters", |j| {
                j.kv_raw("keyId", key);
                let service_role = "role/aws-service-role/autoscaling.amazonaws.com/";
                j.kv_with("granteePrincipal", |b| {
                    arn(b, "iam", "", c.ctx.account, service_role, "AWSServiceRoleForAutoScaling")
                });
                j.array("operations", |j| {
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
                });
                j.object("constraints", |j| {
                    j.object("encryptionContextSubset", |j| hex_id(j, rng, "aws:ebs:id", "vol-0", 16));
                });
            });
            response(j, c, |j| {
                j.kv_with("grantId", |b| push_hex(b, rng, 64));
                j.kv_raw("keyId", key);
            });
        }
        _ => {
            generic::write(j, rng, c, x);
            if c.ev.plural {
                return;
            }
        }
    }
    key_resource(x, c);
}

/// A cryptographic operation, with the encryption context of the service that asked for it.
fn crypto(j: &mut Json, rng: &mut fastrand::Rng, c: &Call) {
    let (region, account) = (c.ctx.region, c.ctx.account);
    let by = c.caller.invoked_by.unwrap_or("");
    j.object("requestParameters", |j| {
        j.object("encryptionContext", |j| match by {
            "s3.amazonaws.com" | "" if rng.bool() || by == "s3.amazonaws.com" => {
                j.kv_with("aws:s3:arn", |b| {
                    b.push_str("arn:aws:s3:::");
                    names::push_bucket(b, account, rng.usize(0..4));
                    if rng.bool() {
                        b.push_str("/uploads/");
                        push_uuid(b, rng);
                    }
                });
            }
            "secretsmanager.amazonaws.com" => {
                j.kv_with("SecretARN", |b| {
                    arn(b, "secretsmanager", region, account, "secret:", "prod/orders/db-credentials-");
                    push_upper_from(b, c.ctx.account_hash, 6);
                });
                uuid(j, rng, "SecretVersionId");
            }
            "dynamodb.amazonaws.com" => {
                j.kv("aws:dynamodb:tableName", TABLES[rng.usize(0..TABLES.len())]);
                j.kv("aws:dynamodb:subscriberId", account);
            }
            "logs.amazonaws.com" => {
                let function = FUNCTIONS[rng.usize(0..FUNCTIONS.len())];
                j.kv_with("aws:logs:arn", |b| arn(b, "logs", region, account, "log-group:/aws/lambda/", function));
            }
            _ => {
                let function = FUNCTIONS[rng.usize(0..FUNCTIONS.len())];
                j.kv_with("aws:lambda:FunctionArn", |b| arn(b, "lambda", region, account, "function:", function));
            }
        });
        if c.ev.name != "Decrypt" || rng.bool() {
            j.kv_raw("keyId", &c.target.arn);
        }
        j.kv("encryptionAlgorithm", "SYMMETRIC_DEFAULT");
        if c.ev.name == "GenerateDataKey" {
            j.kv("keySpec", "AES_256");
        }
    });
    j.kv_null("responseElements");
}

/// Lists the call's key in `resources`.
pub(super) fn key_resource(x: &mut Extra, c: &Call) {
    resource(x, Some(c.ctx.account), "AWS::KMS::Key", &c.target.arn);
}

#[cfg(test)]
mod tests {
    use crate::body::testing::{ACCOUNT, REGION, call};

    #[test]
    fn decrypt_lists_the_key() {
        for seed in 0..10 {
            let w = call("kms", "Decrypt", seed, false);
            assert!(w.arn().starts_with(&format!("arn:aws:kms:{REGION}:{ACCOUNT}:key/")), "{}", w.arn());
            let key = w.resource("AWS::KMS::Key").expect("key resource");
            assert_eq!(key["ARN"], w.arn());
            assert_eq!(key["accountId"], ACCOUNT);
            let req = &w.body["requestParameters"];
            assert_eq!(req["encryptionAlgorithm"], "SYMMETRIC_DEFAULT");
            assert!(req["encryptionContext"].as_object().is_some_and(|o| !o.is_empty()), "{req}");
            assert!(w.body["responseElements"].is_null());
        }
    }

    #[test]
    fn create_grant_names_key_and_grantee() {
        let w = call("kms", "CreateGrant", 1, false);
        let req = &w.body["requestParameters"];
        assert_eq!(req["keyId"], w.arn());
        assert!(req["granteePrincipal"].as_str().unwrap().starts_with(&format!("arn:aws:iam::{ACCOUNT}:role/")));
        assert!(req["operations"].as_array().unwrap().contains(&"Decrypt".into()));
        assert_eq!(w.body["responseElements"]["keyId"], w.arn());
        assert_eq!(w.body["responseElements"]["grantId"].as_str().unwrap().len(), 64);
        let failed = call("kms", "CreateGrant", 1, true);
        assert!(failed.body["responseElements"].is_null());
        assert!(failed.resource("AWS::KMS::Key").is_some(), "failed calls still name their key");
    }

    #[test]
    fn listing_keys_names_no_key() {
        let w = call("kms", "ListKeys", 0, false);
        assert!(w.resource("AWS::KMS::Key").is_none(), "{:?}", w.resources);
    }
}
