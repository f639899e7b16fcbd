//! Athena and Glue Data Catalog calls.

use crate::ids::push_uuid;
use crate::json::{Json, push_u64};

use super::{Call, Extra, generic};

/// Athena bodies.
pub(super) fn write_athena(j: &mut Json, rng: &mut fastrand::Rng, c: &Call, x: &mut Extra) {
    let ev = c.ev;
    match ev.name {
        "StartQueryExecution" => {
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
        _ => generic::write(j, rng, c, x),
    }
}

/// Glue bodies.
pub(super) fn write_glue(j: &mut Json, rng: &mut fastrand::Rng, c: &Call, x: &mut Extra) {
    let ev = c.ev;
    match ev.name {
        "BatchCreatePartition" => {
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
        _ => generic::write(j, rng, c, x),
    }
}
