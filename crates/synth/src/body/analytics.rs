//! Athena and Glue Data Catalog calls.

use crate::json::{Json, push_padded, push_u64};
use crate::time::civil;

use super::{Call, Extra, generic, response, uuid};

const ATHENA_QUERY: &str = "SELECT eventname, count(*) AS n\\nFROM cloudtrail_logs\\nWHERE \\\"date\\\" = '2024/03/01'\\nGROUP BY 1 ORDER BY 2 DESC LIMIT 10";

/// Athena bodies.
pub(super) fn write_athena(j: &mut Json, rng: &mut fastrand::Rng, c: &Call, x: &mut Extra) {
    match c.ev.name {
        "StartQueryExecution" => {
            j.object("requestParameters", |j| {
                uuid(j, rng, "clientRequestToken");
                j.kv_raw("queryString", ATHENA_QUERY);
                j.object("queryExecutionContext", |j| j.kv("database", "security"));
                j.object("resultConfiguration", |j| {
                    j.kv_with("outputLocation", |b| {
                        b.push_str("s3://athena-results-");
                        b.push_str(c.ctx.account);
                        b.push('/');
                    });
                });
                j.kv("workGroup", "primary");
            });
            response(j, c, |j| uuid(j, rng, "queryExecutionId"));
        }
        _ => generic::write(j, rng, c, x),
    }
}

/// Glue bodies.
pub(super) fn write_glue(j: &mut Json, rng: &mut fastrand::Rng, c: &Call, x: &mut Extra) {
    match c.ev.name {
        "BatchCreatePartition" => {
            j.object("requestParameters", |j| {
                j.kv("databaseName", "security");
                j.kv("tableName", "cloudtrail_logs");
                j.array("partitionInputList", |j| {
                    for d in 0..rng.u64(1..4) {
                        let cv = civil(c.ctx.event_secs - (d as i64) * 86_400);
                        j.element(|j| {
                            j.array("values", |j| {
                                j.str_with(|b| push_u64(b, cv.year as u64));
                                j.str_with(|b| push_padded(b, cv.month as u64, 2));
                                j.str_with(|b| push_padded(b, cv.day as u64, 2));
                            });
                            j.object("storageDescriptor", |j| {
                                j.kv_with("location", |b| {
                                    b.push_str("s3://data-lake-raw-");
                                    b.push_str(c.ctx.account);
                                    b.push_str("/cloudtrail/year=");
                                    push_u64(b, cv.year as u64);
                                });
                                j.kv("inputFormat", "org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat");
                                j.kv("outputFormat", "org.apache.hadoop.hive.ql.io.parquet.MapredParquetOutputFormat");
                                j.object("serdeInfo", |j| {
                                    j.kv(
                                        "serializationLibrary",
                                        "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe",
                                    );
                                });
                            });
                        });
                    }
                });
            });
            j.kv_null("responseElements");
        }
        _ => generic::write(j, rng, c, x),
    }
}

#[cfg(test)]
mod tests {
    use crate::body::testing::{ACCOUNT, call};

    #[test]
    fn athena_writes_results_to_the_account_bucket() {
        let w = call("athena", "StartQueryExecution", 0, false);
        let req = &w.body["requestParameters"];
        assert_eq!(req["resultConfiguration"]["outputLocation"], format!("s3://athena-results-{ACCOUNT}/"));
        assert!(req["queryString"].as_str().unwrap().contains("\"date\" = '2024/03/01'"));
        assert_eq!(w.body["responseElements"]["queryExecutionId"].as_str().unwrap().len(), 36);
    }

    #[test]
    fn glue_partitions_count_back_from_the_event_day() {
        let w = call("glue", "BatchCreatePartition", 3, false);
        let parts = w.body["requestParameters"]["partitionInputList"].as_array().expect("partitions");
        assert!((1..4).contains(&parts.len()));
        let days = ["02", "01", "29"];
        let months = ["03", "03", "02"];
        for (i, p) in parts.iter().enumerate() {
            assert_eq!(p["values"], serde_json::json!(["2024", months[i], days[i]]), "partition {i}");
        }
    }
}
