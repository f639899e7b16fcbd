//! `AwsServiceEvent` records: the service acting on its own (key rotation, backups, shared
//! snapshot copies), with `serviceEventDetails` and no request or response.

use crate::ids::push_uuid;
use crate::json::Json;
use crate::names::TABLES;

use super::kms;
use super::{Call, Extra, arn};

/// Service-event bodies: null request and response, the event in `serviceEventDetails`, and
/// a `requestID` only half of the time.
pub(super) fn write(j: &mut Json, rng: &mut fastrand::Rng, c: &Call, x: &mut Extra) {
    j.kv_null("requestParameters");
    j.kv_null("responseElements");
    x.no_request_id = rng.bool();
    let d = &mut x.details;
    d.open();
    match c.ev.name {
        "RotateKey" => {
            d.kv_raw("keyId", &c.target.name);
            kms::key_resource(x, c);
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
