//! S3 bucket and object calls (mostly data events).

use crate::ids::{push_b64, push_hex, push_uuid_from};
use crate::json::Json;

use super::{Call, Extra, arn, java_date, resource, response, tags};

/// S3 bodies: the request as S3 logs it (sub-resources as empty keys, `Host`), the transfer
/// in `additionalEventData`, and the object and bucket as resources.
pub(super) fn write(j: &mut Json, rng: &mut fastrand::Rng, c: &Call, x: &mut Extra) {
    let name = c.ev.name;
    let t = c.target;
    x.s3_request_id = true;
    let object = c.ev.data && name != "ListObjects";
    let vhost = rng.u8(0..4) != 0;
    j.object("requestParameters", |j| {
        if name == "ListBuckets" {
            j.kv_with("Host", |b| host(b, c, false));
        } else {
            bucket_request(j, rng, c, object);
            j.kv_with("Host", |b| host(b, c, vhost));
            if object {
                j.kv_raw("key", &t.key);
                object_request(j, rng, c);
            }
        }
    });
    let writes_object =
        matches!(name, "PutObject" | "CopyObject" | "UploadPart" | "CompleteMultipartUpload" | "CreateMultipartUpload");
    if writes_object {
        response(j, c, |j| {
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
                j.object("copyObjectResult", |j| {
                    j.kv_with("ETag", |b| push_hex(b, rng, 32));
                    java_date(j, "lastModified", c.ctx.event_secs);
                });
            }
        });
    } else {
        j.kv_null("responseElements");
    }
    // additionalEventData: transfer sizes are plain integers, sometimes large.
    let size = {
        let u = rng.f64().max(1e-12);
        (200.0 * u.powf(-1.3)).min(5e9) as u64
    };
    j.object("additionalEventData", |j| {
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
    });
    if object {
        x.resources.element(|r| {
            r.kv("type", "AWS::S3::Object");
            r.kv_with("ARN", |b| {
                b.push_str(&t.arn);
                b.push('/');
                b.push_str(&t.key);
            });
        });
    }
    if name != "ListBuckets" {
        resource(x, Some(c.ctx.account), "AWS::S3::Bucket", &t.arn);
    }
}

/// `s3.<region>.amazonaws.com`, after `<bucket>.` for virtual-hosted requests.
fn host(b: &mut String, c: &Call, virtual_host: bool) {
    if virtual_host {
        b.push_str(&c.target.name);
        b.push('.');
    }
    b.push_str("s3.");
    b.push_str(c.ctx.region);
    b.push_str(".amazonaws.com");
}

/// The request members before `Host`: the bucket, and what a bucket-level call sends.
fn bucket_request(j: &mut Json, rng: &mut fastrand::Rng, c: &Call, object: bool) {
    let name = c.ev.name;
    let t = c.target;
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
            j.object("bucketPolicy", |j| {
                j.kv("Version", "2012-10-17");
                j.array("Statement", |j| {
                    j.element(|j| {
                        j.kv("Sid", "DenyInsecureTransport");
                        j.kv("Effect", "Deny");
                        j.kv("Principal", "*");
                        j.kv("Action", "s3:*");
                        j.array("Resource", |j| {
                            j.raw_str(&t.arn);
                            j.str_with(|b| {
                                b.push_str(&t.arn);
                                b.push_str("/*");
                            });
                        });
                        j.object("Condition", |j| j.object("Bool", |j| j.kv("aws:SecureTransport", "false")));
                    });
                });
            });
            j.kv_raw("bucketName", &t.name);
            j.kv("policy", "");
        }
        "CreateBucket" => {
            j.object("CreateBucketConfiguration", |j| j.kv("LocationConstraint", c.ctx.region));
            j.kv_raw("bucketName", &t.name);
        }
        "PutBucketTagging" => {
            j.object("Tagging", |j| j.object("TagSet", |j| tags(j, rng, "Tag", "Key", "Value")));
            j.kv_raw("bucketName", &t.name);
            j.kv("tagging", "");
        }
        _ => {
            j.kv_raw("bucketName", &t.name);
            if object {
                return;
            }
            // Sub-resource queries are logged as keys with empty values.
            let sub = name.strip_prefix("GetBucket").or_else(|| name.strip_prefix("DeleteBucket")).unwrap_or("");
            if !sub.is_empty() {
                j.key(&sub.to_ascii_lowercase());
                j.str("");
            }
        }
    }
}

/// The request members after `key` that object-level calls send.
fn object_request(j: &mut Json, rng: &mut fastrand::Rng, c: &Call) {
    match c.ev.name {
        "UploadPart" => {
            j.kv_u64("partNumber", rng.u64(1..200));
            j.kv_with("uploadId", |b| push_b64(b, rng, 64));
        }
        "CompleteMultipartUpload" => j.kv_with("uploadId", |b| push_b64(b, rng, 64)),
        "CopyObject" => {
            j.kv_with("x-amz-copy-source", |b| {
                b.push_str(&c.target.name);
                b.push_str("/staging/");
                push_hex(b, rng, 12);
            });
        }
        "PutObject" if rng.u8(0..3) == 0 => {
            j.kv("x-amz-server-side-encryption", "aws:kms");
            j.kv_with("x-amz-server-side-encryption-aws-kms-key-id", |b| {
                arn(b, "kms", c.ctx.region, c.ctx.account, "key/", "");
                push_uuid_from(b, c.ctx.account_hash as u128);
            });
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use crate::body::testing::{ACCOUNT, REGION, call, call_where};

    #[test]
    fn get_object_names_bucket_and_key_and_lists_object_and_bucket() {
        for seed in 0..20 {
            let w = call("s3", "GetObject", seed, false);
            let (bucket, key) = (w.name(), w.key());
            let req = &w.body["requestParameters"];
            assert_eq!(req["bucketName"], bucket, "seed {seed}");
            assert_eq!(req["key"], key, "seed {seed}");
            let host = req["Host"].as_str().expect("Host");
            assert!(host.ends_with(&format!("s3.{REGION}.amazonaws.com")), "{host}");
            assert!(w.body["responseElements"].is_null());
            assert!(w.body["additionalEventData"]["bytesTransferredOut"].as_u64().unwrap() > 0);
            assert_eq!(w.body["additionalEventData"]["bytesTransferredIn"], 0);
            let object = w.resource("AWS::S3::Object").expect("object resource");
            assert_eq!(object["ARN"], format!("arn:aws:s3:::{bucket}/{key}"));
            assert!(object.get("accountId").is_none(), "objects carry no accountId: {object}");
            let b = w.resource("AWS::S3::Bucket").expect("bucket resource");
            assert_eq!(b["ARN"], format!("arn:aws:s3:::{bucket}"));
            assert_eq!(b["accountId"], ACCOUNT);
            assert!(w.s3_request_id);
        }
    }

    #[test]
    fn failed_get_object_transfers_nothing() {
        let w = call("s3", "GetObject", 3, true);
        assert_eq!(w.body["additionalEventData"]["bytesTransferredOut"], 0);
        assert!(w.body["responseElements"].is_null());
    }

    #[test]
    fn put_object_reports_encryption_and_uploaded_bytes() {
        let w = call("s3", "PutObject", 5, false);
        let sse = w.body["responseElements"]["x-amz-server-side-encryption"].as_str().expect("encryption");
        assert!(["AES256", "aws:kms"].contains(&sse), "{sse}");
        assert!(w.body["additionalEventData"]["bytesTransferredIn"].as_u64().unwrap() > 0);
        let kms = call_where("s3", "PutObject", false, |w| {
            w.body["requestParameters"].get("x-amz-server-side-encryption-aws-kms-key-id").is_some()
        });
        let key = kms.body["requestParameters"]["x-amz-server-side-encryption-aws-kms-key-id"].as_str().unwrap();
        assert!(key.starts_with(&format!("arn:aws:kms:{REGION}:{ACCOUNT}:key/")), "{key}");
    }

    #[test]
    fn list_buckets_has_no_bucket_and_no_resources() {
        let w = call("s3", "ListBuckets", 1, false);
        assert_eq!(w.body["requestParameters"], serde_json::json!({"Host": format!("s3.{REGION}.amazonaws.com")}));
        assert!(w.resources.is_empty(), "{:?}", w.resources);
    }

    #[test]
    fn bucket_sub_resources_are_empty_keys() {
        let w = call("s3", "GetBucketAcl", 2, false);
        assert_eq!(w.body["requestParameters"]["acl"], "");
        assert_eq!(w.body["requestParameters"]["bucketName"], w.name());
        assert!(w.resource("AWS::S3::Object").is_none());
    }
}
