//! Table tests of the metrics, the model and the records, on series whose answer is known by
//! construction.

use super::detect::{Direction, InsightType, Model, detect};
use super::metrics::{MINUTE_MICROS, MetricRow, Metrics, MinuteCell, SeriesKey, TOP_VALUES, TopValues};
use super::record::insight_records;
use crate::record::Row;

const DAY: i64 = 1440;
/// 2024-01-01T00:00:00Z, a Monday.
const T0: i64 = 1_704_067_200_000_000;

fn minute(i: i64) -> i64 {
    T0 + i * MINUTE_MICROS
}

fn key(name: &str, error: Option<&str>, readonly: bool) -> SeriesKey {
    SeriesKey {
        account: "111122223333".into(),
        region: "us-east-1".into(),
        eventsource: "ec2.amazonaws.com".into(),
        eventname: name.into(),
        errorcode: error.map(str::to_string),
        readonly: Some(readonly),
        eventcategory: "Management".into(),
    }
}

/// Adds `count` events of `arn` to one minute of a series.
fn put(m: &mut Metrics, key: &SeriesKey, i: i64, arn: &str, count: u64) {
    if count == 0 {
        return;
    }
    let mut cell = MinuteCell { count, ..Default::default() };
    cell.identities.add(arn, count);
    cell.user_agents.add("aws-cli/2", count);
    m.add_metric(&MetricRow { key: key.clone(), minute: minute(i), cell });
}

/// A background over `days` days: `rate(i)` events per minute from a rotating set of roles.
fn background(m: &mut Metrics, key: &SeriesKey, days: i64, rate: impl Fn(i64) -> u64) {
    for i in 0..days * DAY {
        put(m, key, i, &format!("arn:aws:iam::111122223333:role/app{}", i % 7), rate(i));
    }
}

/// A deterministic, noisy rate around `mean` (a cheap hash, no RNG state).
fn noisy(i: i64, mean: u64) -> u64 {
    let h = (i as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15).rotate_left(17);
    mean.saturating_sub(1) + h % 3
}

#[test]
fn top_values_keep_heavy_hitters_and_conserve_counts() {
    let mut t = TopValues::default();
    for i in 0..TOP_VALUES {
        t.add(&format!("once{i}"), 1);
    }
    // A heavy hitter arriving when the tally is full stays, one-offs rotate through "other".
    for i in 0..50 {
        t.add("heavy", 1);
        t.add(&format!("late{i}"), 1);
    }
    assert_eq!(t.values.len(), TOP_VALUES);
    assert_eq!(t.total(), TOP_VALUES as u64 + 100);
    assert!(t.values.iter().any(|v| v.value == "heavy" && v.count == 50), "{t:?}");
    let mut merged = t.clone();
    merged.merge(&t);
    assert_eq!(merged.total(), 2 * t.total());
    assert_eq!(merged.values[0].value, "heavy");
    assert_eq!(merged.values[0].count, 100);
}

#[test]
fn series_keys_from_records() {
    type Want = Option<(&'static str, Option<bool>, Option<&'static str>)>;
    let cases: &[(&str, Want)] = &[
        (
            r#"{"eventTime":"2024-01-01T00:00:10Z","eventSource":"ec2.amazonaws.com","eventName":"RunInstances","awsRegion":"us-east-1","recipientAccountId":"1","readOnly":false,"eventCategory":"Management"}"#,
            Some(("Management", Some(false), None)),
        ),
        (
            r#"{"eventTime":"2024-01-01T00:00:10Z","eventSource":"s3.amazonaws.com","eventName":"GetObject","awsRegion":"us-east-1","recipientAccountId":"1","readOnly":true,"managementEvent":false,"errorCode":"AccessDenied"}"#,
            Some(("Data", Some(true), Some("AccessDenied"))),
        ),
        (
            // Before eventVersion 1.07: no category, a management event.
            r#"{"eventTime":"2014-01-01T00:00:10Z","eventSource":"iam.amazonaws.com","eventName":"CreateUser","awsRegion":"us-east-1","userIdentity":{"accountId":"2"}}"#,
            Some(("Management", None, None)),
        ),
        (
            r#"{"eventTime":"2024-01-01T00:00:10Z","eventType":"AwsCloudTrailInsight","awsRegion":"us-east-1","eventCategory":"Insight","insightDetails":{"state":"Start"}}"#,
            None,
        ),
    ];
    for (json, want) in cases {
        let row = Row::parse(json.as_bytes(), "k", 0).unwrap();
        let got = SeriesKey::of(&super::metrics::EventFields::of(&row));
        let got = got.as_ref().map(|k| (k.eventcategory.as_str(), k.readonly, k.errorcode.as_deref()));
        assert_eq!(got, *want, "{json}");
        let mut m = Metrics::default();
        assert_eq!(m.add_row(&row), want.is_some(), "{json}");
        if want.is_some() {
            let (_, minute, cell) = m.iter().next().unwrap();
            assert_eq!(minute % MINUTE_MICROS, 0);
            assert_eq!(cell.count, 1);
        }
    }
}

/// What `detect` should find in one constructed series.
struct Case {
    name: &'static str,
    days: i64,
    rate: fn(i64) -> u64,
    /// (start minute, length, count per minute) of an injected change (count replaces the rate).
    inject: Option<(i64, i64, u64)>,
    want: Option<Direction>,
}

fn weekday_office_hours(i: i64) -> u64 {
    let day = i.div_euclid(DAY);
    let hour = i.rem_euclid(DAY) / 60;
    // T0 is a Monday: days 5, 6, 12, 13 … are the weekend.
    if day % 7 >= 5 || !(8..18).contains(&hour) { 0 } else { noisy(i, 12) }
}

#[test]
fn detection_table() {
    let cases = [
        Case { name: "flat, no change", days: 10, rate: |i| noisy(i, 2), inject: None, want: None },
        Case {
            name: "burst on a flat background",
            days: 10,
            rate: |i| noisy(i, 2),
            inject: Some((8 * DAY + 600, 10, 60)),
            want: Some(Direction::Above),
        },
        Case {
            name: "burst on a silent API",
            days: 10,
            rate: |_| 0,
            inject: Some((9 * DAY + 61, 3, 40)),
            want: Some(Direction::Above),
        },
        Case {
            name: "drop to zero",
            days: 10,
            rate: |i| noisy(i, 20),
            inject: Some((8 * DAY + 300, 30, 0)),
            want: Some(Direction::Below),
        },
        Case { name: "daily and weekly cycles alone", days: 15, rate: weekday_office_hours, inject: None, want: None },
        Case {
            name: "burst at night on an office-hours API",
            days: 15,
            rate: weekday_office_hours,
            inject: Some((9 * DAY + 120, 5, 30)),
            want: Some(Direction::Above),
        },
        Case {
            name: "outage in office hours",
            days: 15,
            rate: weekday_office_hours,
            inject: Some((10 * DAY + 600, 20, 0)),
            want: Some(Direction::Below),
        },
        Case { name: "burst too small to matter", days: 10, rate: |_| 0, inject: Some((9 * DAY, 1, 5)), want: None },
        Case {
            name: "burst before a baseline exists",
            days: 10,
            rate: |i| noisy(i, 2),
            inject: Some((3 * DAY, 10, 60)),
            want: None,
        },
    ];
    for case in cases {
        let mut m = Metrics::default();
        let k = key("RunInstances", None, false);
        let inject = case.inject;
        let rate = case.rate;
        let in_episode = |i: i64| inject.is_some_and(|(s, len, _)| (s..s + len).contains(&i));
        background(&mut m, &k, case.days, |i| if in_episode(i) { 0 } else { rate(i) });
        // Other activity of the account and Region: what tells the archive's history.
        background(&mut m, &key("DescribeInstances", None, true), case.days, |i| noisy(i, 2));
        if let Some((s, len, count)) = inject {
            for i in s..s + len {
                put(&mut m, &k, i, "arn:aws:iam::111122223333:user/intruder", count);
            }
        }
        let episodes = detect(&m, &Model::default(), T0, minute(case.days * DAY));
        match (case.want, inject) {
            (None, _) => assert!(episodes.is_empty(), "{}: {episodes:#?}", case.name),
            (Some(direction), Some((s, len, _))) => {
                assert_eq!(episodes.len(), 1, "{}: {episodes:#?}", case.name);
                let e = &episodes[0];
                assert_eq!(e.direction, direction, "{}", case.name);
                assert_eq!(e.key.insight_type, InsightType::ApiCallRateInsight, "{}", case.name);
                assert_eq!(e.start, minute(s), "{}: start", case.name);
                assert_eq!(e.end, Some(minute(s + len)), "{}: end", case.name);
                assert!(e.baseline_minutes >= 7 * DAY, "{}", case.name);
                if direction == Direction::Above {
                    assert_eq!(e.user_arns.insight[0].0, "arn:aws:iam::111122223333:user/intruder", "{}", case.name);
                    assert!(e.insight_average > e.baseline_average, "{}", case.name);
                } else {
                    assert!(e.insight_average < e.baseline_average, "{}", case.name);
                }
            }
            (Some(_), None) => unreachable!(),
        }
    }
}

#[test]
fn error_rates_are_per_code_and_include_reads() {
    let mut m = Metrics::default();
    let ok = key("DescribeInstances", None, true);
    let denied = key("DescribeInstances", Some("AccessDenied"), true);
    let throttled = key("DescribeInstances", Some("Throttling"), true);
    background(&mut m, &ok, 10, |i| noisy(i, 30));
    background(&mut m, &throttled, 10, |i| u64::from(i % 10 == 0));
    let start = 8 * DAY + 777;
    for i in start..start + 15 {
        put(&mut m, &denied, i, "arn:aws:sts::111122223333:assumed-role/scanner/x", 25);
    }
    let episodes = detect(&m, &Model::default(), T0, minute(10 * DAY));
    // Reads make no call-rate Insight; the AccessDenied spike is one error-rate Insight.
    assert_eq!(episodes.len(), 1, "{episodes:#?}");
    let e = &episodes[0];
    assert_eq!(e.key.insight_type, InsightType::ApiErrorRateInsight);
    assert_eq!(e.key.errorcode.as_deref(), Some("AccessDenied"));
    assert_eq!(e.start, minute(start));
    assert_eq!(e.error_codes.insight, vec![("AccessDenied".to_string(), 25.0)]);
    assert_eq!(e.user_arns.insight[0].0, "arn:aws:sts::111122223333:assumed-role/scanner/x");
}

#[test]
fn since_until_and_open_episodes() {
    let mut m = Metrics::default();
    let k = key("CreateTags", None, false);
    background(&mut m, &k, 9, |i| noisy(i, 2));
    // A burst still going on when the data ends.
    let start = 9 * DAY - 4;
    for i in start..9 * DAY {
        put(&mut m, &k, i, "arn:aws:iam::111122223333:user/bulk", 50);
    }
    let all = detect(&m, &Model::default(), T0, minute(9 * DAY));
    assert_eq!(all.len(), 1, "{all:#?}");
    assert_eq!(all[0].end, None, "open at the end of the data");
    let records = insight_records(&all[0]);
    assert_eq!(records.len(), 1, "only Start while open");
    // Outside [since, until) nothing is reported.
    assert!(detect(&m, &Model::default(), minute(9 * DAY - 3), minute(9 * DAY)).is_empty());
    assert!(detect(&m, &Model::default(), T0, minute(8 * DAY)).is_empty());
    // More data closes it under the same sharedEventID.
    for i in 9 * DAY..9 * DAY + 60 {
        put(&mut m, &k, i, "arn:aws:iam::111122223333:role/app", noisy(i, 2));
    }
    let closed = detect(&m, &Model::default(), T0, minute(10 * DAY));
    assert_eq!(closed.len(), 1);
    assert_eq!(closed[0].end, Some(minute(9 * DAY)));
    let again = insight_records(&closed[0]);
    assert_eq!(again.len(), 2);
    let (before, after): (serde_json::Value, serde_json::Value) =
        (serde_json::from_str(&records[0]).unwrap(), serde_json::from_str(&again[0]).unwrap());
    assert_eq!(before["eventID"], after["eventID"], "late data updates the episode, same IDs");
    let v: Vec<serde_json::Value> = again.iter().map(|r| serde_json::from_str(r).unwrap()).collect();
    assert_eq!(v[0]["sharedEventID"], v[1]["sharedEventID"]);
    assert_ne!(v[0]["eventID"], v[1]["eventID"]);
}

#[test]
fn records_have_cloudtrail_shape() {
    let mut m = Metrics::default();
    let k = key("RunInstances", None, false);
    background(&mut m, &k, 9, |i| noisy(i, 2));
    let start = 8 * DAY + 100;
    for i in start..start + 4 {
        put(&mut m, &k, i, "arn:aws:iam::111122223333:user/intruder", 40);
    }
    let episodes = detect(&m, &Model::default(), T0, minute(9 * DAY));
    assert_eq!(episodes.len(), 1, "{episodes:#?}");
    let records = insight_records(&episodes[0]);
    assert_eq!(records, insight_records(&episodes[0]), "reruns give the same bytes");
    let start_rec: serde_json::Value = serde_json::from_str(&records[0]).unwrap();
    let end_rec: serde_json::Value = serde_json::from_str(&records[1]).unwrap();
    assert_eq!(start_rec["eventTime"], "2024-01-09T01:40:00Z");
    assert_eq!(end_rec["eventTime"], "2024-01-09T01:44:00Z");
    assert_eq!(start_rec["eventType"], "AwsCloudTrailInsight");
    assert_eq!(start_rec["eventCategory"], "Insight");
    assert_eq!(start_rec["recipientAccountId"], "111122223333");
    assert!(start_rec.get("userIdentity").is_none());
    let d = &end_rec["insightDetails"];
    assert_eq!(d["state"], "End");
    assert_eq!(d["insightType"], "ApiCallRateInsight");
    assert!(d.get("errorCode").is_none());
    let stats = &d["insightContext"]["statistics"];
    assert_eq!(stats["insightDuration"], 4);
    assert_eq!(stats["baselineDuration"], 7 * DAY, "the baseline is the 7 days before the start");
    let intruder = stats["insight"]["average"].as_f64().unwrap();
    assert!(intruder >= 40.0, "{stats}");
    let attrs = d["insightContext"]["attributions"].as_array().unwrap();
    let names: Vec<&str> = attrs.iter().map(|a| a["attribute"].as_str().unwrap()).collect();
    assert_eq!(names, ["userIdentityArn", "userAgent", "errorCode"]);
    assert_eq!(attrs[0]["insight"][0]["value"], "arn:aws:iam::111122223333:user/intruder");
    assert_eq!(attrs[2]["insight"][0]["value"], "null");
    let id = start_rec["sharedEventID"].as_str().unwrap();
    assert_eq!(id.len(), 36);
    assert_eq!(id.as_bytes()[14], b'8', "version-8 UUID shape: {id}");
}

#[test]
fn metrics_from_events_files_and_back() {
    use crate::convert::{Options, convert};
    use crate::sink::MemorySink;
    // Two minutes of RunInstances by two identities, one failed call, one read, one Insight record.
    let records = [
        r#"{"eventVersion":"1.08","eventTime":"2024-01-01T10:00:05Z","eventSource":"ec2.amazonaws.com","eventName":"RunInstances","awsRegion":"us-east-1","recipientAccountId":"111122223333","readOnly":false,"eventCategory":"Management","userIdentity":{"arn":"arn:aws:iam::111122223333:user/a"},"userAgent":"cli"}"#,
        r#"{"eventVersion":"1.08","eventTime":"2024-01-01T10:00:59Z","eventSource":"ec2.amazonaws.com","eventName":"RunInstances","awsRegion":"us-east-1","recipientAccountId":"111122223333","readOnly":false,"eventCategory":"Management","userIdentity":{"arn":"arn:aws:iam::111122223333:user/a"},"userAgent":"cli"}"#,
        r#"{"eventVersion":"1.08","eventTime":"2024-01-01T10:01:00Z","eventSource":"ec2.amazonaws.com","eventName":"RunInstances","awsRegion":"us-east-1","recipientAccountId":"111122223333","readOnly":false,"eventCategory":"Management","userIdentity":{"arn":"arn:aws:iam::111122223333:user/b"},"errorCode":"Client.UnauthorizedOperation"}"#,
        r#"{"eventVersion":"1.08","eventTime":"2024-01-01T10:01:30Z","eventSource":"ec2.amazonaws.com","eventName":"DescribeInstances","awsRegion":"us-east-1","recipientAccountId":"111122223333","readOnly":true,"eventCategory":"Management"}"#,
    ];
    let json = format!("{{\"Records\":[{}]}}", records.join(","));
    let sink = MemorySink::default();
    let key = "AWSLogs/111122223333/CloudTrail/us-east-1/2024/01/01/f.json.gz";
    convert(key, json.as_bytes(), &sink, &Options::default()).unwrap();
    let mut from_parquet = Metrics::default();
    let mut counted = 0;
    for path in sink.paths() {
        let bytes = bytes::Bytes::from(sink.get(&path).unwrap());
        counted += super::table::add_events_file(bytes, &path, &mut from_parquet).unwrap();
    }
    let mut from_rows = Metrics::default();
    for (i, r) in records.iter().enumerate() {
        from_rows.add_row(&Row::parse(r.as_bytes(), key, i).unwrap());
    }
    assert_eq!(counted, 4);
    assert_eq!(from_parquet.rows(), from_rows.rows(), "the projected read counts like the rows");
    let cells: Vec<(String, Option<String>, i64, u64)> = from_rows
        .iter()
        .map(|(k, m, c)| (k.eventname.clone(), k.errorcode.clone(), (m - T0) / MINUTE_MICROS, c.count))
        .collect();
    let minute_10h = 600;
    assert_eq!(
        cells,
        [
            ("DescribeInstances".into(), None, minute_10h + 1, 1),
            ("RunInstances".into(), None, minute_10h, 2),
            ("RunInstances".into(), Some("Client.UnauthorizedOperation".into()), minute_10h + 1, 1),
        ]
    );
    let encoded = super::table::encode_metrics(&from_rows.rows(), &[("source", "test")]).unwrap();
    let mut back = Metrics::default();
    assert_eq!(super::table::decode_metrics(bytes::Bytes::from(encoded), "m", &mut back).unwrap(), 3);
    assert_eq!(back.rows(), from_rows.rows());
}

#[test]
fn metric_data_periods_and_fill() {
    use super::series::{MetricQuery, metric_data};
    let mut m = Metrics::default();
    let write = key("RunInstances", None, false);
    let failed = key("RunInstances", Some("AccessDenied"), false);
    let read = key("RunInstances", None, true);
    // Minutes 0, 1, 7 and 65 (writes; minute 7 failed), and reads that must not count.
    put(&mut m, &write, 0, "a", 2);
    put(&mut m, &write, 1, "a", 3);
    put(&mut m, &failed, 7, "b", 4);
    put(&mut m, &write, 65, "a", 1);
    put(&mut m, &read, 2, "c", 100);
    let q = |period: u32, fill: bool, insight_type: InsightType, start: i64, end: i64| MetricQuery {
        insight_type,
        eventsource: "ec2.amazonaws.com".into(),
        eventname: "RunInstances".into(),
        errorcode: None,
        start: minute(start),
        end: minute(end),
        period,
        fill_with_zeros: fill,
    };
    let at = |points: Vec<(i64, f64)>| -> Vec<(i64, f64)> {
        points.into_iter().map(|(t, v)| ((t - T0) / MINUTE_MICROS, v)).collect()
    };
    type Case = (&'static str, MetricQuery, Vec<(i64, f64)>);
    let cases: Vec<Case> = vec![
        (
            "minutes, non-zero",
            q(60, false, InsightType::ApiCallRateInsight, 0, 120),
            vec![(0, 2.0), (1, 3.0), (7, 4.0), (65, 1.0)],
        ),
        ("5 minutes", q(300, false, InsightType::ApiCallRateInsight, 0, 120), vec![(0, 5.0), (5, 4.0), (65, 1.0)]),
        ("hours", q(3600, false, InsightType::ApiCallRateInsight, 0, 120), vec![(0, 9.0), (60, 1.0)]),
        (
            "5 minutes with zeros",
            q(300, true, InsightType::ApiCallRateInsight, 0, 20),
            vec![(0, 5.0), (5, 4.0), (10, 0.0), (15, 0.0)],
        ),
        ("end is exclusive", q(60, false, InsightType::ApiCallRateInsight, 0, 7), vec![(0, 2.0), (1, 3.0)]),
        ("start is inclusive", q(60, false, InsightType::ApiCallRateInsight, 7, 66), vec![(7, 4.0), (65, 1.0)]),
        (
            "a period starting before start is left out",
            q(300, false, InsightType::ApiCallRateInsight, 1, 20),
            vec![(5, 4.0)],
        ),
        ("errors, reads and writes", q(60, false, InsightType::ApiErrorRateInsight, 0, 120), vec![(7, 4.0)]),
    ];
    for (name, query, want) in cases {
        query.validate().unwrap();
        assert_eq!(at(metric_data(&m, &query)), want, "{name}");
    }
    let mut bad = q(120, false, InsightType::ApiCallRateInsight, 0, 1);
    assert!(bad.validate().unwrap_err().to_string().contains("Period"));
    bad.period = 60;
    bad.end = bad.start;
    assert!(bad.validate().is_err());
}
