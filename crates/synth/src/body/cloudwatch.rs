//! CloudWatch Logs and CloudWatch metrics calls.

use crate::ids::push_hex;
use crate::json::Json;
use crate::time::push_date_path;

use super::{Call, Extra, generic, hex_id, java_date, response, uuid};

const INSIGHTS_QUERY: &str =
    "fields @timestamp, @message\\n| filter @message like /ERROR/\\n| sort @timestamp desc\\n| limit 20";

/// CloudWatch Logs bodies.
pub(super) fn write_logs(j: &mut Json, rng: &mut fastrand::Rng, c: &Call, x: &mut Extra) {
    let group = &c.target.name;
    let end = c.ctx.event_secs as u64;
    match c.ev.name {
        "CreateLogStream" => {
            j.object("requestParameters", |j| {
                j.kv_raw("logGroupName", group);
                j.kv_with("logStreamName", |b| {
                    push_date_path(b, c.ctx.event_secs);
                    b.push_str("/[$LATEST]");
                    push_hex(b, rng, 32);
                });
            });
            j.kv_null("responseElements");
        }
        "StartQuery" => {
            j.object("requestParameters", |j| {
                j.kv_raw("logGroupName", group);
                j.kv_u64("startTime", end - 86_400);
                j.kv_u64("endTime", end);
                j.kv_raw("queryString", INSIGHTS_QUERY);
            });
            response(j, c, |j| uuid(j, rng, "queryId"));
        }
        "FilterLogEvents" => {
            j.object("requestParameters", |j| {
                j.kv_raw("logGroupName", group);
                j.kv_u64("startTime", (end - 3_600) * 1000);
                j.kv_u64("endTime", end * 1000);
                j.kv_raw("filterPattern", "{ $.level = \\\"ERROR\\\" }");
                j.kv_bool("interleaved", true);
            });
            j.kv_null("responseElements");
        }
        _ => generic::write(j, rng, c, x),
    }
}

/// `"dimensions":[{"name":…,"value":…}]` with the value `value` writes.
fn dimension(j: &mut Json, name: &str, value: impl FnOnce(&mut Json)) {
    j.array("dimensions", |j| {
        j.element(|j| {
            j.kv("name", name);
            value(j);
        });
    });
}

/// CloudWatch metrics bodies.
pub(super) fn write_metrics(j: &mut Json, rng: &mut fastrand::Rng, c: &Call, x: &mut Extra) {
    match c.ev.name {
        "PutMetricData" => {
            j.object("requestParameters", |j| {
                j.kv("namespace", ["Orders/Api", "Payments", "ImageResizer"][rng.usize(0..3)]);
                let metrics: [(&str, &str, &str); 4] = [
                    ("Latency", "1.50", "Milliseconds"),
                    ("PayloadBytes", "1e3", "Bytes"),
                    ("ErrorRate", "2.5E-4", "Percent"),
                    ("Requests", "42", "Count"),
                ];
                j.array("metricData", |j| {
                    for (name, val, unit) in metrics.iter().take(rng.usize(1..5)) {
                        j.element(|j| {
                            j.kv("metricName", name);
                            dimension(j, "Stage", |j| j.kv("value", "prod"));
                            j.kv_num("value", val);
                            j.kv("unit", unit);
                        });
                    }
                });
            });
            j.kv_null("responseElements");
        }
        "GetMetricData" => {
            j.object("requestParameters", |j| {
                j.array("metricDataQueries", |j| {
                    j.element(|j| {
                        j.kv("id", "m1");
                        j.object("metricStat", |j| {
                            j.object("metric", |j| {
                                j.kv("namespace", "AWS/EC2");
                                j.kv("metricName", "CPUUtilization");
                                dimension(j, "InstanceId", |j| hex_id(j, rng, "value", "i-0", 16));
                            });
                            j.kv_u64("period", 300);
                            j.kv("stat", "Average");
                        });
                        j.kv_bool("returnData", true);
                    });
                });
                java_date(j, "startTime", c.ctx.event_secs - 10_800);
                java_date(j, "endTime", c.ctx.event_secs);
            });
            j.kv_null("responseElements");
        }
        _ => generic::write(j, rng, c, x),
    }
}

#[cfg(test)]
mod tests {
    use crate::body::testing::{EVENT_SECS, call, event_time, java_date};

    #[test]
    fn log_streams_are_named_by_date_in_their_group() {
        let w = call("logs", "CreateLogStream", 0, false);
        let req = &w.body["requestParameters"];
        assert_eq!(req["logGroupName"], w.name());
        let stream = req["logStreamName"].as_str().expect("logStreamName");
        assert!(stream.starts_with("2024/03/02/[$LATEST]"), "{stream}");
        assert_eq!(stream.len(), "2024/03/02/[$LATEST]".len() + 32);
    }

    #[test]
    fn queries_cover_the_day_before_the_call() {
        let w = call("logs", "StartQuery", 1, false);
        let req = &w.body["requestParameters"];
        assert_eq!(req["endTime"], EVENT_SECS);
        assert_eq!(req["startTime"], EVENT_SECS - 86_400);
        assert!(req["queryString"].as_str().unwrap().contains("\n| filter"));
        assert_eq!(w.body["responseElements"]["queryId"].as_str().unwrap().len(), 36);
        let filter = call("logs", "FilterLogEvents", 1, false);
        assert_eq!(filter.body["requestParameters"]["endTime"], EVENT_SECS * 1000);
    }

    #[test]
    fn metric_bodies_name_metrics_and_time_ranges() {
        // Through the dispatch, as the generator writes them (they once fell through to the
        // generic body: the catalog's namespace is "cloudwatch", the dispatch said "monitoring").
        let put = call("cloudwatch", "PutMetricData", 0, false);
        let data = put.body["requestParameters"]["metricData"].as_array().expect("metricData");
        assert!((1..5).contains(&data.len()));
        assert_eq!(data[0]["metricName"], "Latency");
        assert_eq!(data[0]["dimensions"][0], serde_json::json!({"name": "Stage", "value": "prod"}));
        let get = call("cloudwatch", "GetMetricData", 0, false);
        let req = &get.body["requestParameters"];
        assert_eq!(java_date(&req["endTime"]), event_time());
        assert_eq!(java_date(&req["startTime"]), event_time() - chrono::Duration::hours(3));
        let stat = &req["metricDataQueries"][0]["metricStat"];
        assert!(stat["metric"]["dimensions"][0]["value"].as_str().unwrap().starts_with("i-0"));
    }
}
