//! KMS calls: cryptographic operations on behalf of services, grants.

use crate::identity::FUNCTIONS;
use crate::ids::{push_hex, push_upper_from, push_uuid};
use crate::json::Json;
use crate::names::{self, TABLES};

use super::{Call, Extra, generic, resource};

/// KMS bodies; every single-key call lists its key as a resource.
pub(super) fn write(j: &mut Json, rng: &mut fastrand::Rng, c: &Call, x: &mut Extra) {
    let ev = c.ev;
    match ev.name {
        "Decrypt" | "Encrypt" | "GenerateDataKey" | "ReEncrypt" => kms_crypto(j, rng, c, x),
        "CreateGrant" => {
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
            key_resource(x, c);
        }
        _ => {
            generic::write(j, rng, c, x);
            if !ev.plural {
                key_resource(x, c);
            }
        }
    }
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
    key_resource(x, c);
}

/// Lists the call's key in `resources`.
pub(super) fn key_resource(x: &mut Extra, c: &Call) {
    resource(x, Some(c.ctx.account), "AWS::KMS::Key", &c.target.arn);
}
