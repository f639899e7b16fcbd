//! CloudWatch Logs and CloudWatch metrics calls.

use crate::ids::{push_hex, push_uuid};
use crate::json::Json;

use super::{Call, Extra, generic, java_date};

/// CloudWatch Logs bodies.
pub(super) fn write_logs(j: &mut Json, rng: &mut fastrand::Rng, c: &Call, x: &mut Extra) {
    let ev = c.ev;
    match ev.name {
        "CreateLogStream" => {
            j.obj("requestParameters");
            j.kv_raw("logGroupName", &c.target.name);
            j.kv_with("logStreamName", |b| {
                crate::time::push_date_path(b, c.ctx.event_secs);
                b.push_str("/[$LATEST]");
                push_hex(b, rng, 32);
            });
            j.close();
            j.kv_null("responseElements");
        }
        "FilterLogEvents" | "StartQuery" => {
            j.obj("requestParameters");
            j.kv_raw("logGroupName", &c.target.name);
            let end = c.ctx.event_secs as u64;
            if ev.name == "StartQuery" {
                j.kv_u64("startTime", end - 86_400);
                j.kv_u64("endTime", end);
                j.kv_raw("queryString", "fields @timestamp, @message\\n| filter @message like /ERROR/\\n| sort @timestamp desc\\n| limit 20");
                j.close();
                if c.error {
                    j.kv_null("responseElements");
                } else {
                    j.obj("responseElements");
                    j.kv_with("queryId", |b| push_uuid(b, rng));
                    j.close();
                }
            } else {
                j.kv_u64("startTime", (end - 3_600) * 1000);
                j.kv_u64("endTime", end * 1000);
                j.kv_raw("filterPattern", "{ $.level = \\\"ERROR\\\" }");
                j.kv_bool("interleaved", true);
                j.close();
                j.kv_null("responseElements");
            }
        }
        _ => generic::write(j, rng, c, x),
    }
}

/// CloudWatch metrics bodies.
pub(super) fn write_metrics(j: &mut Json, rng: &mut fastrand::Rng, c: &Call, x: &mut Extra) {
    let ev = c.ev;
    match ev.name {
        "PutMetricData" => {
            j.obj("requestParameters");
            j.kv("namespace", ["Orders/Api", "Payments", "ImageResizer"][rng.usize(0..3)]);
            j.arr("metricData");
            let metrics: [(&str, &str, &str); 4] = [
                ("Latency", "1.50", "Milliseconds"),
                ("PayloadBytes", "1e3", "Bytes"),
                ("ErrorRate", "2.5E-4", "Percent"),
                ("Requests", "42", "Count"),
            ];
            for (name, val, unit) in metrics.iter().take(rng.usize(1..5)) {
                j.open();
                j.kv("metricName", name);
                j.arr("dimensions");
                j.open();
                j.kv("name", "Stage");
                j.kv("value", "prod");
                j.close();
                j.close_arr();
                j.kv_num("value", val);
                j.kv("unit", unit);
                j.close();
            }
            j.close_arr();
            j.close();
            j.kv_null("responseElements");
        }
        "GetMetricData" => {
            j.obj("requestParameters");
            j.arr("metricDataQueries");
            j.open();
            j.kv("id", "m1");
            j.obj("metricStat");
            j.obj("metric");
            j.kv("namespace", "AWS/EC2");
            j.kv("metricName", "CPUUtilization");
            j.arr("dimensions");
            j.open();
            j.kv("name", "InstanceId");
            j.kv_with("value", |b| {
                b.push_str("i-0");
                push_hex(b, rng, 16);
            });
            j.close();
            j.close_arr();
            j.close();
            j.kv_u64("period", 300);
            j.kv("stat", "Average");
            j.close();
            j.kv_bool("returnData", true);
            j.close();
            j.close_arr();
            java_date(j, "startTime", c.ctx.event_secs - 10_800);
            java_date(j, "endTime", c.ctx.event_secs);
            j.close();
            j.kv_null("responseElements");
        }
        _ => generic::write(j, rng, c, x),
    }
}
