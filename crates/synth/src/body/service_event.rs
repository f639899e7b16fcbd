//! `AwsServiceEvent` records: the service acting on its own (key rotation, backups, shared
//! snapshot copies), with `serviceEventDetails` and no request or response.

use crate::json::Json;
use crate::names::TABLES;

use super::kms;
use super::{Call, Extra, arn, uuid};

/// Service-event bodies: null request and response, the event in `serviceEventDetails`, and
/// a `requestID` only half of the time.
pub(super) fn write(j: &mut Json, rng: &mut fastrand::Rng, c: &Call, x: &mut Extra) {
    j.kv_null("requestParameters");
    j.kv_null("responseElements");
    x.no_request_id = rng.bool();
    let (region, account) = (c.ctx.region, c.ctx.account);
    x.details.element(|d| match c.ev.name {
        "RotateKey" => d.kv_raw("keyId", &c.target.name),
        "BackupJobCompleted" => {
            uuid(d, rng, "backupJobId");
            d.kv("backupVaultName", "Default");
            d.kv_with("backupVaultArn", |b| arn(b, "backup", region, account, "backup-vault:", "Default"));
            d.kv_with("resourceArn", |b| {
                arn(b, "dynamodb", region, account, "table/", TABLES[rng.usize(0..TABLES.len())])
            });
            d.object("creationDate", |d| {
                d.kv_u64("seconds", c.ctx.event_secs as u64 - 600);
                d.kv_u64("nanos", rng.u64(0..1_000_000) * 1000);
            });
            d.kv("state", "COMPLETED");
            d.kv_u64("backupSizeInBytes", rng.u64(1_000..50_000_000_000));
            d.kv_num("percentDone", "100.0");
            d.kv("resourceType", "DynamoDB");
        }
        _ => {
            d.kv_raw("snapshotId", &c.target.name);
            d.kv("sourceAccountId", c.ctx.peers.first().map(String::as_str).unwrap_or(account));
        }
    });
    if c.ev.name == "RotateKey" {
        kms::key_resource(x, c);
    }
}

#[cfg(test)]
mod tests {
    use crate::body::testing::{ACCOUNT, EVENT_SECS, REGION, call};

    #[test]
    fn backup_job_completed_is_described_in_details_only() {
        let w = call("backup", "BackupJobCompleted", 0, false);
        assert!(w.body["requestParameters"].is_null());
        assert!(w.body["responseElements"].is_null());
        let d = w.details.as_ref().expect("serviceEventDetails");
        assert_eq!(d["state"], "COMPLETED");
        assert_eq!(d["backupVaultArn"], format!("arn:aws:backup:{REGION}:{ACCOUNT}:backup-vault:Default"));
        assert!(d["resourceArn"].as_str().unwrap().starts_with(&format!("arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/")));
        assert_eq!(d["creationDate"]["seconds"], EVENT_SECS - 600);
        assert!(w.resources.is_empty());
    }

    #[test]
    fn key_rotation_names_and_lists_the_key() {
        let w = call("kms", "RotateKey", 1, false);
        let d = w.details.as_ref().expect("serviceEventDetails");
        assert_eq!(d["keyId"], w.name());
        assert_eq!(w.resource("AWS::KMS::Key").expect("key resource")["ARN"], w.arn());
    }

    #[test]
    fn shared_snapshot_copy_names_the_source_account() {
        let w = call("ec2", "SharedSnapshotCopyInitiated", 2, false);
        let d = w.details.as_ref().expect("serviceEventDetails");
        assert_eq!(d["snapshotId"], w.name());
        assert_eq!(d["sourceAccountId"], "444455556666");
    }
}
