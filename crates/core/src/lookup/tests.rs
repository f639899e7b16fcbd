use chrono::TimeZone;

use super::*;
use crate::convert::{Options, convert};
use crate::encode::WriterSettings;
use crate::sink::MemorySink;

fn row(json: &str) -> Row<'_> {
    Row::parse(json.as_bytes(), "AWSLogs/k.json.gz", 0).unwrap()
}

fn with_identity(identity: &str) -> String {
    format!(
        r#"{{"eventVersion":"1.11","eventTime":"2024-03-01T12:00:00Z","eventName":"X","userIdentity":{identity},"requestParameters":null,"responseElements":null}}"#
    )
}

/// `userIdentity` of every type, with the Username docs/LOOKUP.md gives it.
const IDENTITIES: &[(&str, Option<&str>)] = &[
    (
        r#"{"type":"AssumedRole","principalId":"AROAX:alice-session","arn":"arn:aws:sts::123456789012:assumed-role/Admin/alice-session","userName":"ignored"}"#,
        Some("alice-session"),
    ),
    // A role path never shows in an assumed-role ARN; the session is still the last segment.
    (r#"{"type":"AssumedRole","principalId":"AROAX:i-0abc","arn":""}"#, Some("i-0abc")),
    (r#"{"type":"Root","principalId":"123456789012","arn":"arn:aws:iam::123456789012:root"}"#, Some("root")),
    (r#"{"type":"IAMUser","arn":"arn:aws:iam::123456789012:user/dev/bob","userName":"bob"}"#, Some("bob")),
    (r#"{"type":"IAMUser","arn":"arn:aws:iam::123456789012:user/dev/bob"}"#, Some("bob")),
    (
        r#"{"type":"FederatedUser","principalId":"123456789012:carol","arn":"arn:aws:sts::123456789012:federated-user/carol","sessionContext":{"sessionIssuer":{"userName":"broker"}}}"#,
        Some("carol"),
    ),
    (r#"{"type":"AWSService","invokedBy":"ec2.amazonaws.com"}"#, Some("ec2.amazonaws.com")),
    (r#"{"type":"AWSAccount","principalId":"AIDAX","accountId":"111122223333"}"#, Some("111122223333")),
    (r#"{"type":"AWSAccount","principalId":"AIDAX"}"#, Some("AIDAX")),
    (r#"{"type":"IdentityCenterUser","accountId":"1","onBehalfOf":{"userId":"uid-1"}}"#, Some("uid-1")),
    (r#"{"type":"IdentityCenterUser","userName":"dana","onBehalfOf":{"userId":"uid-1"}}"#, Some("dana")),
    (
        r#"{"type":"SAMLUser","principalId":"ABC=:erin@example.com","userName":"erin@example.com"}"#,
        Some("erin@example.com"),
    ),
    (
        r#"{"type":"WebIdentityUser","principalId":"cognito-identity.amazonaws.com:us-east-1:abc","userName":"us-east-1:abc"}"#,
        Some("us-east-1:abc"),
    ),
    (r#"{"type":"Role","arn":"arn:aws:iam::1:role/path/Worker"}"#, Some("Worker")),
    (r#"{"type":"Unknown","principalId":"Anonymous"}"#, Some("Anonymous")),
    (r#"{"type":"Directory","principalId":"d-1:frank"}"#, Some("frank")),
    (r#"{"type":"SomethingNew","arn":"arn:aws:x::1:thing/zed"}"#, Some("zed")),
    (r#"{"type":"IAMUser","userName":""}"#, None),
    (r#"{"type":"AWSService"}"#, None),
];

#[test]
fn username_for_every_identity_type() {
    for (identity, want) in IDENTITIES {
        let json = with_identity(identity);
        assert_eq!(username(&row(&json)).as_deref(), *want, "userIdentity: {identity}");
    }
    let insight = r#"{"eventVersion":"1.07","eventTime":"2024-03-01T12:00:00Z","eventType":"AwsCloudTrailInsight"}"#;
    assert_eq!(username(&row(insight)), None, "no userIdentity, no Username");
}

/// `(ResourceType, ResourceName)` pairs.
type Pairs<'a> = Vec<(Option<&'a str>, Option<&'a str>)>;

#[test]
fn resources_come_from_the_record_with_the_arn_as_name() {
    let cases: &[(&str, Pairs<'_>)] = &[
        (r#""resources":[]"#, vec![]),
        (
            r#""resources":[{"ARN":"arn:aws:s3:::b","accountId":"1","type":"AWS::S3::Bucket"},{"ARN":"arn:aws:s3:::b/k","type":"AWS::S3::Object"}]"#,
            vec![
                (Some("AWS::S3::Bucket"), Some("arn:aws:s3:::b")),
                (Some("AWS::S3::Object"), Some("arn:aws:s3:::b/k")),
            ],
        ),
        (
            r#""resources":[{"ARNPrefix":"arn:aws:s3:::b/pre","type":"AWS::S3::Object"}]"#,
            vec![(Some("AWS::S3::Object"), Some("arn:aws:s3:::b/pre"))],
        ),
        (r#""resources":[{"accountId":"1"},{"type":"AWS::KMS::Key"}]"#, vec![(Some("AWS::KMS::Key"), None)]),
        (r#""resources":[null]"#, vec![]),
        (r#""x":1"#, vec![]),
    ];
    for (field, want) in cases {
        let json = format!(r#"{{"eventTime":"2024-03-01T12:00:00Z",{field}}}"#);
        let got = resources(&row(&json));
        let got: Pairs<'_> = got.iter().map(|r| (r.resource_type.as_deref(), r.resource_name.as_deref())).collect();
        assert_eq!(&got, want, "{field}");
    }
}

#[test]
fn attribute_keys_parse_with_cloudtrail_spelling_only() {
    for key in AttributeKey::ALL {
        assert_eq!(key.as_str().parse::<AttributeKey>(), Ok(key), "{key}");
        let (k, v) = parse_attribute(&format!("{key}=a=b")).unwrap();
        assert_eq!((k, v.as_str()), (key, "a=b"), "the value may hold '='");
    }
    for bad in ["UserName=x", "username=x", "EventID=x", "Nope=x"] {
        let e = parse_attribute(bad).unwrap_err();
        assert!(matches!(e, LookupError::InvalidLookupAttributes(_)), "{bad}");
        assert!(e.to_string().contains("EventId, EventName, ReadOnly, Username"), "{bad}: {e}");
        assert_eq!(e.aws_type(), "InvalidLookupAttributesException");
    }
    assert!(parse_attribute("EventName").unwrap_err().to_string().contains("KEY=VALUE"));
    assert!(parse_attribute("EventName=").is_err(), "empty value");
    assert!(parse_attribute(&format!("EventName={}", "x".repeat(2001))).is_err(), "value over 2000 chars");
    assert!(parse_attribute(&format!("EventName={}", "é".repeat(2000))).is_ok(), "characters, not bytes");
    assert_eq!(AttributeKey::ALL.iter().filter(|k| k.is_cloudtrail()).count(), 8);
}

#[test]
fn times_parse_as_dates_rfc3339_and_relative() {
    let now = Utc.with_ymd_and_hms(2024, 3, 10, 12, 0, 0).unwrap();
    let at = |s: &str| DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc);
    let cases: &[(&str, Bound, DateTime<Utc>)] = &[
        ("now", Bound::End, now),
        ("2024-03-01", Bound::Start, at("2024-03-01T00:00:00Z")),
        ("2024-03-01", Bound::End, at("2024-03-01T23:59:59.999999Z")),
        ("2024-03-01T12:30:00Z", Bound::Start, at("2024-03-01T12:30:00Z")),
        ("2024-03-01T14:30:00+02:00", Bound::End, at("2024-03-01T12:30:00Z")),
        ("2024-03-01T12:30:00.25Z", Bound::End, at("2024-03-01T12:30:00.25Z")),
        ("90d", Bound::Start, at("2023-12-11T12:00:00Z")),
        ("12h", Bound::Start, at("2024-03-10T00:00:00Z")),
        ("30m", Bound::End, at("2024-03-10T11:30:00Z")),
        ("45s", Bound::End, at("2024-03-10T11:59:15Z")),
        ("0d", Bound::End, now),
    ];
    for (text, bound, want) in cases {
        assert_eq!(parse_time(text, now, *bound), Ok(*want), "{text} as {bound:?}");
    }
    for bad in ["", "yesterday", "90", "d", "-5d", "5y", "2024-13-01", "2024-03-01 12:00", "99999999999999d"] {
        let e = parse_time(bad, now, Bound::Start).unwrap_err();
        assert!(e.to_string().contains("90d"), "{bad:?}: {e}");
    }
}

const A: &str = r#"{"eventVersion":"1.11","userIdentity":{"type":"IAMUser","arn":"arn:aws:iam::111122223333:user/bob","accountId":"111122223333","accessKeyId":"AKIAA","userName":"bob"},"eventTime":"2024-03-01T12:00:00Z","eventSource":"s3.amazonaws.com","eventName":"CreateBucket","awsRegion":"us-east-1","sourceIPAddress":"1.2.3.4","errorCode":"AccessDenied","requestParameters":null,"responseElements":null,"eventID":"e-1","readOnly":false,"resources":[{"ARN":"arn:aws:s3:::b","type":"AWS::S3::Bucket"}],"eventType":"AwsApiCall","managementEvent":true,"recipientAccountId":"111122223333","eventCategory":"Management"}"#;

#[test]
fn every_attribute_key_matches_its_field_exactly() {
    let r = row(A);
    let hits = [
        (AttributeKey::EventId, "e-1"),
        (AttributeKey::EventName, "CreateBucket"),
        (AttributeKey::ReadOnly, "false"),
        (AttributeKey::Username, "bob"),
        (AttributeKey::ResourceType, "AWS::S3::Bucket"),
        (AttributeKey::ResourceName, "arn:aws:s3:::b"),
        (AttributeKey::EventSource, "s3.amazonaws.com"),
        (AttributeKey::AccessKeyId, "AKIAA"),
        (AttributeKey::AccountId, "111122223333"),
        (AttributeKey::AwsRegion, "us-east-1"),
        (AttributeKey::SourceIpAddress, "1.2.3.4"),
        (AttributeKey::ErrorCode, "AccessDenied"),
    ];
    assert_eq!(hits.len(), AttributeKey::ALL.len(), "every key is tested");
    let start = Utc.with_ymd_and_hms(2024, 3, 1, 0, 0, 0).unwrap();
    let end = Utc.with_ymd_and_hms(2024, 3, 1, 12, 0, 0).unwrap();
    for (key, value) in hits {
        let mut q = LookupQuery::new(start, end);
        q.attributes.push((key, value.to_string()));
        assert!(q.matches(&r), "{key}={value}");
        q.attributes[0].1 = value.to_lowercase().replace('e', "E") + "x";
        assert!(!q.matches(&r), "{key} compares exactly: {}", q.attributes[0].1);
    }
    // Time bounds are inclusive, to the microsecond.
    let mut q = LookupQuery::new(end, end);
    assert!(q.matches(&r));
    q.start = end + TimeDelta::microseconds(1);
    q.end = q.start;
    assert!(!q.matches(&r));
    q = LookupQuery::new(start, end - TimeDelta::microseconds(1));
    assert!(!q.matches(&r));
    // Accounts and regions.
    q = LookupQuery::new(start, end);
    q.accounts = vec!["999999999999".into(), "111122223333".into()];
    q.regions = vec!["us-east-1".into()];
    assert!(q.matches(&r));
    q.regions = vec!["eu-west-1".into()];
    assert!(!q.matches(&r));
}

#[test]
fn data_events_are_left_out_unless_asked_for() {
    let data = A.replace(r#""eventCategory":"Management""#, r#""eventCategory":"Data""#);
    let old_data = A
        .replace(r#","eventCategory":"Management""#, "")
        .replace(r#""managementEvent":true"#, r#""managementEvent":false"#);
    let old_management = A.replace(r#","eventCategory":"Management""#, "");
    let cases = [(A, false), (data.as_str(), true), (old_data.as_str(), true), (old_management.as_str(), false)];
    let t = Utc.with_ymd_and_hms(2024, 3, 1, 12, 0, 0).unwrap();
    for (json, is_data) in cases {
        let r = row(json);
        assert_eq!(is_data_event(&r), is_data, "{json}");
        let mut q = LookupQuery::new(t, t);
        assert_eq!(q.matches(&r), !is_data, "default excludes data events: {json}");
        q.include_data_events = true;
        assert!(q.matches(&r), "{json}");
    }
}

#[test]
fn lookup_event_has_cloudtrails_shape_and_the_exported_record() {
    let r = row(A);
    let event = lookup_event(&r);
    let json = serde_json::to_value(&event).unwrap();
    assert_eq!(json["EventId"], "e-1");
    assert_eq!(json["ReadOnly"], "false", "a string, as CloudTrail sends it");
    assert_eq!(json["EventTime"], 1709294400, "epoch seconds");
    assert_eq!(json["Username"], "bob");
    assert_eq!(json["AccessKeyId"], "AKIAA");
    assert_eq!(json["EventSource"], "s3.amazonaws.com");
    assert_eq!(
        json["Resources"],
        serde_json::json!([{"ResourceType":"AWS::S3::Bucket","ResourceName":"arn:aws:s3:::b"}])
    );
    assert_eq!(json["CloudTrailEvent"].as_str().unwrap(), r.to_json(), "exactly what export writes");
    let back: serde_json::Value = serde_json::from_str(json["CloudTrailEvent"].as_str().unwrap()).unwrap();
    assert_eq!(back, serde_json::from_str::<serde_json::Value>(A).unwrap());
    // Fractional seconds stay, absent fields are left out.
    let odd = row(r#"{"eventTime":"2024-03-01T12:00:00.5Z"}"#);
    let json = serde_json::to_value(lookup_event(&odd)).unwrap();
    assert_eq!(json["EventTime"], 1709294400.5);
    assert!(json.get("EventId").is_none() && json.get("Username").is_none(), "{json}");
}

#[test]
fn order_is_newest_first_with_a_total_tie_break_and_cursors_page_without_gaps() {
    let mut texts = Vec::new();
    for (i, (t, id)) in [("12:00:00", "b"), ("12:00:01", "a"), ("12:00:00", "a"), ("12:00:00", "a"), ("11:59:59", "z")]
        .iter()
        .enumerate()
    {
        texts.push((format!(r#"{{"eventTime":"2024-03-01T{t}Z","eventID":"{id}"}}"#), i));
    }
    let rows: Vec<Row<'_>> = texts.iter().map(|(j, i)| Row::parse(j.as_bytes(), "k", *i).unwrap()).collect();
    let (all, next) = page(rows.clone(), 10);
    assert!(next.is_none());
    let order: Vec<(String, i32)> =
        all.iter().map(|r| (r.eventid.as_deref().unwrap().to_string(), r.source_index)).collect();
    assert_eq!(order, [("a".into(), 1), ("a".into(), 2), ("a".into(), 3), ("b".into(), 0), ("z".into(), 4)]);
    // Page by two through the cursor, as a reader would: filter, then page.
    for size in 1..=5 {
        let mut seen = Vec::new();
        let mut cursor: Option<Cursor> = None;
        loop {
            let past: Vec<Row<'_>> =
                rows.iter().filter(|r| cursor.as_ref().is_none_or(|c| c.is_before(r))).cloned().collect();
            let (got, next) = page(past, size);
            assert!(got.len() <= size);
            seen.extend(got.iter().map(|r| (r.eventid.as_deref().unwrap().to_string(), r.source_index)));
            match next {
                // Through its string form, as a NextToken carries it.
                Some(c) => cursor = Some(Cursor::decode(&c.encode()).unwrap()),
                None => break,
            }
        }
        assert_eq!(seen, order, "page size {size}");
    }
    assert!(matches!(Cursor::decode("not a token"), Err(LookupError::InvalidNextToken(_))));
    assert!(matches!(Cursor::decode("W10"), Err(LookupError::InvalidNextToken(_))), "[] is no cursor");
}

#[test]
fn fingerprint_binds_every_parameter_but_the_page_size() {
    let t = Utc.with_ymd_and_hms(2024, 3, 1, 0, 0, 0).unwrap();
    let mut base = LookupQuery::new(t, t + TimeDelta::days(1));
    base.attributes = vec![(AttributeKey::EventName, "A".into()), (AttributeKey::Username, "u".into())];
    base.accounts = vec!["1".into(), "2".into()];
    let fp = base.fingerprint();
    let mut same = base.clone();
    same.max_results = 7;
    same.attributes.reverse();
    same.accounts.reverse();
    assert_eq!(same.fingerprint(), fp, "page size and list order do not count");
    type Change = Box<dyn Fn(&mut LookupQuery)>;
    let changes: Vec<(&str, Change)> = vec![
        ("value", Box::new(|q| q.attributes[0].1 = "B".into())),
        ("key", Box::new(|q| q.attributes[0].0 = AttributeKey::EventSource)),
        ("start", Box::new(|q| q.start += TimeDelta::microseconds(1))),
        ("end", Box::new(|q| q.end -= TimeDelta::seconds(1))),
        ("accounts", Box::new(|q| q.accounts.pop().map(drop).unwrap_or(()))),
        ("regions", Box::new(|q| q.regions.push("us-east-1".into()))),
        ("insights", Box::new(|q| q.insights = true)),
        ("data", Box::new(|q| q.include_data_events = true)),
        // A value holding what would be a separator cannot impersonate two values.
        (
            "joined",
            Box::new(|q| {
                q.attributes = vec![(AttributeKey::EventName, "A\",\"Username\",\"u".into())];
            }),
        ),
    ];
    for (what, change) in changes {
        let mut q = base.clone();
        change(&mut q);
        assert_ne!(q.fingerprint(), fp, "{what}");
    }
}

#[test]
fn validation_names_cloudtrails_error_classes() {
    let t = Utc.with_ymd_and_hms(2024, 3, 1, 0, 0, 0).unwrap();
    let mut q = LookupQuery::new(t, t - TimeDelta::seconds(1));
    assert_eq!(q.validate().unwrap_err().aws_type(), "InvalidTimeRangeException");
    q = LookupQuery::new(t, t);
    assert!(q.validate().is_ok(), "start == end is a valid (one-instant) range");
    q.max_results = 0;
    assert_eq!(q.validate().unwrap_err().aws_type(), "InvalidMaxResultsException");
    q.max_results = 1;
    q.insights = true;
    q.attributes = vec![(AttributeKey::EventName, "x".into())];
    assert!(q.validate().is_ok());
    q.attributes = vec![(AttributeKey::Username, "x".into())];
    assert_eq!(q.validate().unwrap_err().aws_type(), "InvalidLookupAttributesException");
}

#[test]
fn athena_sql_names_the_ddl_tables_and_quotes_values() {
    let t = Utc.with_ymd_and_hms(2024, 3, 1, 0, 0, 0).unwrap();
    let mut q = LookupQuery::new(t, t + TimeDelta::days(2));
    q.attributes =
        vec![(AttributeKey::Username, "o'brien".into()), (AttributeKey::ResourceType, "AWS::S3::Bucket".into())];
    q.accounts = vec!["111122223333".into()];
    let sql = q.athena_sql("cloudtrail", "org_");
    for needle in [
        "FROM \"cloudtrail\".\"org_events\"",
        "\"date\" BETWEEN '2024-03-01' AND '2024-03-03'",
        "= 'o''brien'",
        "any_match(resources, r -> r.type = 'AWS::S3::Bucket')",
        "account IN ('111122223333')",
        "NOT (coalesce(eventcategory NOT IN",
        "ORDER BY eventtime_ts DESC, eventid, source_key, source_index",
        "LIMIT 50;",
    ] {
        assert!(sql.contains(needle), "{needle:?} in\n{sql}");
    }
    // Every column the SQL names is one of the schema's (or a partition column).
    let schema = crate::schema::schema();
    for column in [
        "eventtime_ts",
        "eventid",
        "eventname",
        "readonly",
        "useridentity",
        "eventsource",
        "resources",
        "awsregion",
        "sourceipaddress",
        "errorcode",
        "eventcategory",
        "managementevent",
        "source_key",
        "source_index",
    ] {
        assert!(schema.field_with_name(column).is_ok(), "{column}");
        assert!(sql.contains(column), "{column}");
    }
    q.insights = true;
    assert!(q.athena_sql("db", "").contains("FROM \"db\".\"insights\""));
}

/// A small trail through the real converter: three row groups of known time ranges.
fn parquet_of(records: &[String], row_group_rows: usize) -> Vec<u8> {
    let json = format!(r#"{{"Records":[{}]}}"#, records.join(","));
    let sink = MemorySink::default();
    let options =
        Options { writer: WriterSettings { row_group_rows, ..WriterSettings::default() }, ..Options::default() };
    let key = "AWSLogs/111122223333/CloudTrail/us-east-1/2024/03/01/111122223333_CloudTrail_us-east-1_20240301T0000Z_abc.json.gz";
    convert(key, json.as_bytes(), &sink, &options).unwrap();
    let files = sink.files();
    assert_eq!(files.len(), 1, "{:?}", files.keys());
    files.into_values().next().unwrap()
}

#[test]
fn read_hits_skips_row_groups_outside_the_range_and_past_the_cursor() {
    let records: Vec<String> = (0..30)
        .map(|i| {
            A.replace("2024-03-01T12:00:00Z", &format!("2024-03-01T{:02}:00:00Z", i % 24 / 8 * 8 + i % 8))
                .replace("\"e-1\"", &format!("\"e-{i:02}\""))
        })
        .collect();
    let file = bytes::Bytes::from(parquet_of(&records, 10));
    let t = |h: u32| Utc.with_ymd_and_hms(2024, 3, 1, h, 0, 0).unwrap();
    let q = LookupQuery::new(t(0), t(23));
    let all = read_hits(file.clone(), "f", &q, None).unwrap();
    assert_eq!(all.rows.len(), 30);
    assert_eq!(all.row_groups, 3);
    assert_eq!(all.row_groups_read, 3);
    // Records are in file order, and the first ten are 00-07 h; a window of 20:00-23:00 needs
    // only the row groups whose statistics reach it.
    let want: usize = records.iter().filter(|r| row(r).eventtime_ts.unwrap() >= t(20).timestamp_micros()).count();
    let late = read_hits(file.clone(), "f", &LookupQuery::new(t(20), t(23)), None).unwrap();
    assert_eq!(late.rows.len(), want);
    assert!(late.row_groups_read < 3, "{late:?}");
    // Past a cursor at 06:00 only older rows are hits, and groups wholly newer are skipped.
    let cursor = Cursor(Position {
        time_us: t(6).timestamp_micros(),
        event_id: "e-06".into(),
        source_key: String::new(),
        source_index: 0,
    });
    let older = read_hits(file.clone(), "f", &q, Some(&cursor)).unwrap();
    for r in &older.rows {
        assert!(cursor.is_before(r), "{:?}", r.eventid);
        assert!(r.eventtime_ts.unwrap() <= t(6).timestamp_micros());
    }
    let expected = records.iter().filter(|j| cursor.is_before(&row(j))).count();
    assert_eq!(older.rows.len(), expected);
    assert!(expected > 0 && expected < 30);
    // A window after every row group's newest row reads nothing.
    let after = LookupQuery::new(t(23) + TimeDelta::minutes(30), t(23) + TimeDelta::minutes(40));
    let none = read_hits(file, "f", &after, None).unwrap();
    assert_eq!((none.rows.len(), none.row_groups_read), (0, 0));
}

#[test]
fn next_tokens_are_bound_to_their_parameters() {
    let t = Utc.with_ymd_and_hms(2024, 3, 1, 0, 0, 0).unwrap();
    let q = LookupQuery::new(t, t + TimeDelta::days(1));
    let cursor = Cursor(Position { time_us: 5, event_id: "e.1".into(), source_key: "a/b.c".into(), source_index: 3 });
    let token = next_token(&q, &cursor);
    assert_eq!(parse_next_token(&q, &token), Ok(cursor.clone()));
    let mut bigger = q.clone();
    bigger.max_results = 10;
    assert_eq!(parse_next_token(&bigger, &token), Ok(cursor), "page size may change");
    let mut other = q.clone();
    other.attributes.push((AttributeKey::EventName, "X".into()));
    for (query, token) in [(&other, token.as_str()), (&q, "garbage"), (&q, ""), (&q, "ab.cd")] {
        let e = parse_next_token(query, token).unwrap_err();
        assert_eq!(e.aws_type(), "InvalidNextTokenException", "{token:?}");
    }
}

#[test]
fn csv_cells_that_a_spreadsheet_would_run_are_defused() {
    let cases = [
        ("=HYPERLINK(\"x\")", "'=HYPERLINK(\"x\")"),
        ("+1", "'+1"),
        ("-2+3", "'-2+3"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\tcmd", "'\tcmd"),
        ("\rcmd", "'\rcmd"),
        ("ConsoleLogin", "ConsoleLogin"),
        ("a=b", "a=b"),
        ("", ""),
        ("arn:aws:s3:::b", "arn:aws:s3:::b"),
    ];
    for (cell, want) in cases {
        assert_eq!(csv_safe(cell), want, "{cell:?}");
    }
}

#[test]
fn insights_are_found_by_the_api_they_are_about() {
    let json = r#"{"eventVersion":"1.07","eventTime":"2024-03-01T12:00:00Z","awsRegion":"us-east-1","eventID":"i-1","eventType":"AwsCloudTrailInsight","recipientAccountId":"111122223333","insightDetails":{"state":"Start","eventSource":"ec2.amazonaws.com","eventName":"RunInstances","insightType":"ApiCallRateInsight"},"eventCategory":"Insight"}"#;
    let r = row(json);
    let t = Utc.with_ymd_and_hms(2024, 3, 1, 12, 0, 0).unwrap();
    let mut q = LookupQuery::new(t, t);
    q.insights = true;
    q.attributes =
        vec![(AttributeKey::EventName, "RunInstances".into()), (AttributeKey::EventSource, "ec2.amazonaws.com".into())];
    assert!(q.matches(&r));
    q.attributes[0].1 = "StopInstances".into();
    assert!(!q.matches(&r));
    let event = lookup_event(&r);
    assert_eq!(
        (event.event_name.as_deref(), event.event_source.as_deref()),
        (Some("RunInstances"), Some("ec2.amazonaws.com"))
    );
}

#[test]
fn a_sparse_file_of_the_tail_and_the_planned_row_groups_gives_the_same_hits() {
    let records: Vec<String> = (0..30)
        .map(|i| {
            A.replace("2024-03-01T12:00:00Z", &format!("2024-03-01T{:02}:00:00Z", i % 24))
                .replace("\"e-1\"", &format!("\"e-{i:02}\""))
        })
        .collect();
    let file = bytes::Bytes::from(parquet_of(&records, 10));
    let len = file.len() as u64;
    let t = |h: u32| Utc.with_ymd_and_hms(2024, 3, 1, h, 0, 0).unwrap();
    for (from, to) in [(0, 23), (0, 5), (10, 19), (22, 23)] {
        let q = LookupQuery::new(t(from), t(to));
        let whole = read_hits(file.clone(), "f", &q, None).unwrap();
        // A tail too short for the footer asks for more.
        let metadata = match parse_footer(&file.slice(file.len() - 8..), len, "f").unwrap() {
            Footer::NeedTail(n) => {
                assert!(n > 8 && n < len, "{n}");
                match parse_footer(&file.slice((len - n) as usize..), len, "f").unwrap() {
                    Footer::Parsed(m) => m,
                    Footer::NeedTail(n) => panic!("still short: {n}"),
                }
            }
            Footer::Parsed(_) => panic!("8 bytes hold no footer"),
        };
        let groups = plan_row_groups(metadata.metadata(), "f", &q, None).unwrap();
        let mut sparse = SparseFile::new(len);
        let mut fetched = 0;
        for &g in &groups {
            let r = row_group_bytes(metadata.metadata(), g);
            fetched += r.end - r.start;
            sparse.insert(r.start, file.slice(r.start as usize..r.end as usize));
        }
        assert!(groups.len() == 3 || fetched < len, "fewer bytes than the file when groups are skipped");
        let hits = decode_hits(sparse, metadata, groups, "f", &q, None).unwrap();
        let ids =
            |h: &FileHits<'_>| h.rows.iter().map(|r| r.eventid.as_deref().unwrap().to_string()).collect::<Vec<_>>();
        assert_eq!(ids(&hits), ids(&whole), "{from}-{to} h");
        assert_eq!(hits.row_groups_read, whole.row_groups_read);
    }
    // Bytes never fetched are an error, not a wrong answer.
    let sparse = SparseFile::new(len);
    assert!(read_hits(sparse, "f", &LookupQuery::new(t(0), t(23)), None).is_err());
}

#[test]
fn sparse_files_fetch_only_what_they_lack_and_join_parts() {
    use parquet::file::reader::ChunkReader as _;
    let data: Vec<u8> = (0..100u8).collect();
    let mut sparse = SparseFile::new(100);
    // The tail: bytes 60..100.
    sparse.insert(60, bytes::Bytes::from(data[60..].to_vec()));
    assert_eq!(sparse.missing(70..80), None, "inside the tail");
    assert_eq!(sparse.missing(40..90), Some(40..60), "cut short where the tail begins");
    assert_eq!(sparse.missing(10..20), Some(10..20));
    assert_eq!(sparse.missing(50..60), Some(50..60));
    sparse.insert(40, bytes::Bytes::from(data[40..60].to_vec()));
    // A chunk spanning the two parts reads as one.
    assert_eq!(&sparse.get_bytes(50, 30).unwrap()[..], &data[50..80]);
    assert!(sparse.get_bytes(30, 20).is_err(), "bytes 30..40 were never fetched");
    // A stream across the seam (how the parquet crate reads a page header) runs on into the
    // next part instead of ending at the first one's end: a header cut by the seam once failed
    // a lookup with "failed to fill whole buffer".
    let mut streamed = Vec::new();
    std::io::Read::read_to_end(&mut sparse.get_read(50).unwrap(), &mut streamed).unwrap();
    assert_eq!(streamed, &data[50..]);
    sparse.insert(0, bytes::Bytes::from(data[..20].to_vec()));
    let mut streamed = Vec::new();
    std::io::Read::read_to_end(&mut sparse.get_read(5).unwrap(), &mut streamed).unwrap();
    assert_eq!(streamed, &data[5..20], "a stream stops at a gap");
}

#[test]
fn hits_are_placed_at_their_rows_across_the_slices_rows_are_decoded_in() {
    // One row group of 700 rows: more than two slices of DESERIALIZE_ROWS, the last one short.
    // Hits on both sides of each slice boundary must come back at their own row indices.
    let records: Vec<String> = (0..700)
        .map(|i| A.replace("\"e-1\"", &format!("\"e-{i:03}\"")).replace("\"AKIAA\"", &format!("\"AKIA{i:03}\"")))
        .collect();
    let file = bytes::Bytes::from(parquet_of(&records, 1000));
    let len = file.len() as u64;
    let Footer::Parsed(metadata) = parse_footer(&file, len, "f").unwrap() else { panic!("whole file given") };
    assert_eq!(metadata.metadata().num_row_groups(), 1);
    let t = |h: u32| Utc.with_ymd_and_hms(2024, 3, 1, h, 0, 0).unwrap();
    for row in [0usize, 255, 256, 511, 512, 699] {
        let mut q = LookupQuery::new(t(0), t(23));
        q.attributes.push((AttributeKey::AccessKeyId, format!("AKIA{row:03}")));
        let selection = select_hits(file.clone(), metadata.clone(), vec![0], "f", &q, None).unwrap();
        assert_eq!(selection.groups, vec![(0, vec![row])], "access key of row {row}");
    }
}

/// Phase one decodes only the leaves of `userIdentity` that a rule reads (`filter_columns`). With
/// only those, each rule must find exactly the rows it finds in whole records: every identity type
/// by Username, and by access key and account.
#[test]
fn phase_one_reads_only_the_identity_fields_a_rule_needs_and_finds_what_whole_records_give() {
    let records: Vec<String> = IDENTITIES
        .iter()
        .enumerate()
        .map(|(i, (identity, _))| {
            let with_key = identity.replacen('{', &format!(r#"{{"accessKeyId":"AKIA{i:02}","#), 1);
            let with_key = with_key.replace(",}", "}");
            with_identity(&with_key).replacen('{', &format!(r#"{{"eventID":"e-{i:02}","recipientAccountId":"1","#), 1)
        })
        .collect();
    let file = bytes::Bytes::from(parquet_of(&records, 100));
    let metadata = ArrowReaderMetadata::load(&file, Default::default()).unwrap();
    let t = |h: u32| Utc.with_ymd_and_hms(2024, 3, 1, h, 0, 0).unwrap();
    let leaves_of = |q: &LookupQuery| -> Vec<String> {
        let schema = metadata.metadata().file_metadata().schema_descr();
        filter_leaves(metadata.metadata(), q, None)
            .iter()
            .enumerate()
            .filter(|(_, w)| **w)
            .map(|(i, _)| schema.column(i).path().string())
            .filter(|p| p.starts_with("useridentity."))
            .collect()
    };
    let hits = |q: &LookupQuery| -> Vec<String> {
        let selection = select_hits(file.clone(), metadata.clone(), vec![0], "f", q, None).unwrap();
        let rows = selection.groups.iter().flat_map(|(_, rows)| rows);
        rows.map(|&r| row(&records[r]).eventid.unwrap().into_owned()).collect()
    };
    let whole = |q: &LookupQuery| -> Vec<String> {
        records.iter().filter(|r| q.matches(&row(r))).map(|r| row(r).eventid.unwrap().into_owned()).collect()
    };
    let names: std::collections::BTreeSet<&str> = IDENTITIES.iter().filter_map(|(_, u)| *u).collect();
    for name in names {
        let mut q = LookupQuery::new(t(0), t(23));
        q.attributes.push((AttributeKey::Username, name.to_string()));
        assert!(!whole(&q).is_empty(), "{name}");
        assert_eq!(hits(&q), whole(&q), "Username={name}");
        assert!(!leaves_of(&q).iter().any(|l| l.starts_with("useridentity.sessioncontext")), "{:?}", leaves_of(&q));
    }
    let mut q = LookupQuery::new(t(0), t(23));
    q.attributes.push((AttributeKey::AccessKeyId, "AKIA03".into()));
    assert_eq!(leaves_of(&q), ["useridentity.accesskeyid"]);
    assert_eq!(hits(&q), ["e-03"]);
    // The account: `recipientAccountId`, else `userIdentity.accountId`.
    let mut q = LookupQuery::new(t(0), t(23));
    q.attributes.push((AttributeKey::AccountId, "1".into()));
    assert_eq!(leaves_of(&q), ["useridentity.accountid"]);
    assert_eq!(hits(&q), whole(&q));
    assert_eq!(hits(&q).len(), records.len());
}

/// Hits merged from row groups read out of order keep each row's time; trimming to a page keeps
/// the newest `max_results + 1` hits and every hit tied in time with the oldest of them, and drops
/// row groups left without hits.
#[test]
fn a_selection_keeps_only_the_hits_that_can_be_on_the_page() {
    let part = |group: usize, rows: Vec<usize>, times: Vec<i64>| Selection {
        groups: vec![(group, rows)],
        times,
        row_groups: 3,
        row_groups_read: 1,
    };
    let mut selection = part(2, vec![0, 5], vec![50, 40]);
    selection.merge(part(0, vec![1, 2, 3], vec![10, 30, 20]));
    selection.merge(part(1, vec![7], vec![30]));
    assert_eq!(selection.groups, vec![(0, vec![1, 2, 3]), (1, vec![7]), (2, vec![0, 5])]);
    assert_eq!(selection.times, vec![10, 30, 20, 30, 50, 40]);
    assert_eq!((selection.row_groups, selection.row_groups_read), (3, 3));

    let mut page = selection.clone();
    page.keep_newest(5);
    assert_eq!(page.groups, selection.groups, "six hits are a page of five and one more");

    // A page of two needs three hits: 50, 40 and the two tied at 30.
    let mut page = selection.clone();
    page.keep_newest(2);
    assert_eq!(page.groups, vec![(0, vec![2]), (1, vec![7]), (2, vec![0, 5])]);
    assert_eq!(page.times, vec![30, 30, 50, 40]);

    let mut page = selection;
    page.keep_newest(0);
    assert_eq!(page.groups, vec![(2, vec![0])]);
    assert_eq!(page.times, vec![50]);
}

/// Ranges are sorted, merged where they overlap or lie within the gap, kept apart beyond it;
/// empty ones are dropped.
#[test]
fn nearby_ranges_are_fetched_together() {
    assert_eq!(coalesce(vec![], 10), vec![]);
    assert_eq!(coalesce(vec![30..40, 0..10, 5..8, 15..20, 20..20], 5), vec![0..20, 30..40]);
    assert_eq!(coalesce(vec![0..10, 16..20], 5), vec![0..10, 16..20], "a gap of 6 is over 5");
    assert_eq!(coalesce(vec![0..10, 15..20], 5), vec![0..20], "a gap of 5 is not");
    assert_eq!(coalesce(vec![0..10, 12..20], 0), vec![0..10, 12..20], "no gap: only touching or overlapping");
    assert_eq!(coalesce(vec![0..10, 10..20, 2..4], 0), vec![0..20]);
}

/// Phase one turns into structs only the rows its columns say can match. For every attribute
/// key, over rows that differ in most fields (one without an identity, one without an event
/// name, some without an error code), the hits are those whole records give; and for the keys compared on
/// one column the candidates are exactly the hits, so the shortcut is taken, not skipped.
#[test]
fn phase_one_checks_whole_only_the_rows_its_columns_allow() {
    let records: Vec<String> = (0..40)
        .map(|i| {
            let mut r = A
                .replace("\"e-1\"", &format!("\"e-{i:02}\""))
                .replace("\"AKIAA\"", &format!("\"AKIA{}\"", i % 3))
                .replace("\"bob\"", &format!("\"user{}\"", i % 4))
                .replace("user/bob", &format!("user/user{}", i % 4))
                .replace("CreateBucket", &format!("Op{}", i % 5))
                .replace("s3.amazonaws.com", &format!("svc{}.amazonaws.com", i % 2))
                .replace("1.2.3.4", &format!("10.0.0.{}", i % 6))
                .replace("12:00:00", &format!("12:{i:02}:00"));
            if i % 7 == 0 {
                r = r.replace(r#""errorCode":"AccessDenied","#, "");
            }
            if i % 3 == 0 {
                r = r.replace(r#""readOnly":false"#, r#""readOnly":true"#);
            }
            if i == 11 {
                r = r.replace(r#""eventName":"Op1","#, "");
            }
            if i == 13 {
                let start = r.find(r#""userIdentity""#).unwrap();
                let end = r.find(r#""eventTime""#).unwrap();
                r.replace_range(start..end, "");
            }
            r
        })
        .collect();
    let file = bytes::Bytes::from(parquet_of(&records, 1000));
    let metadata = ArrowReaderMetadata::load(&file, Default::default()).unwrap();
    let t = |h: u32, m: u32| Utc.with_ymd_and_hms(2024, 3, 1, h, m, 0).unwrap();
    let cases = [
        (AttributeKey::EventId, "e-07", true),
        (AttributeKey::EventName, "Op1", false),
        (AttributeKey::EventSource, "svc1.amazonaws.com", true),
        (AttributeKey::ReadOnly, "true", true),
        (AttributeKey::AwsRegion, "us-east-1", true),
        (AttributeKey::SourceIpAddress, "10.0.0.5", true),
        (AttributeKey::ErrorCode, "AccessDenied", true),
        (AttributeKey::AccessKeyId, "AKIA2", true),
        (AttributeKey::Username, "user3", false),
        (AttributeKey::AccountId, "111122223333", false),
        (AttributeKey::ResourceName, "arn:aws:s3:::b", false),
        (AttributeKey::ResourceType, "AWS::S3::Bucket", false),
    ];
    for (key, value, one_column) in cases {
        let mut q = LookupQuery::new(t(12, 5), t(12, 30));
        q.attributes.push((key, value.to_string()));
        let want: Vec<usize> = (0..records.len()).filter(|&i| q.matches(&row(&records[i]))).collect();
        assert!(!want.is_empty() && want.len() < records.len(), "{key}: {} hits", want.len());
        let selection = select_hits(file.clone(), metadata.clone(), vec![0], "f", &q, None).unwrap();
        let got: Vec<usize> = selection.groups.iter().flat_map(|(_, rows)| rows.iter().copied()).collect();
        assert_eq!(got, want, "{key}={value}");

        let leaves = filter_leaves(metadata.metadata(), &q, None);
        let mask = ProjectionMask::leaves(
            metadata.metadata().file_metadata().schema_descr(),
            leaves.iter().enumerate().filter(|(_, w)| **w).map(|(i, _)| i),
        );
        let batch = ParquetRecordBatchReaderBuilder::new_with_metadata(file.clone(), metadata.clone())
            .with_projection(mask)
            .build()
            .unwrap()
            .next()
            .unwrap()
            .unwrap();
        let candidates = candidate_rows(&batch, &q, None).expect("the archive's column types");
        let kept: Vec<usize> = (0..records.len()).filter(|&i| candidates[i]).collect();
        assert!(want.iter().all(|i| candidates[*i]), "{key}: a hit is never left out");
        if one_column {
            assert_eq!(kept, want, "{key}: decided by its column");
        } else {
            assert!(kept.len() >= want.len() && kept.len() < records.len() || key == AttributeKey::EventName);
        }
    }
    // An event name is also read from an Insights record's details: a row without one stays a
    // candidate.
    let mut q = LookupQuery::new(t(12, 0), t(12, 59));
    q.attributes.push((AttributeKey::EventName, "Op1".into()));
    let selection = select_hits(file.clone(), metadata.clone(), vec![0], "f", &q, None).unwrap();
    let got: Vec<usize> = selection.groups.iter().flat_map(|(_, rows)| rows.iter().copied()).collect();
    assert_eq!(got, (0..40).filter(|i| i % 5 == 1 && *i != 11).collect::<Vec<_>>());
}

/// Phase two shares the top-level columns out among threads: each column in exactly one share,
/// shares of about equal work, and the same rows whatever the number of threads.
#[test]
fn phase_two_decodes_the_same_rows_on_any_number_of_threads() {
    let records: Vec<String> = (0..300)
        .map(|i| {
            let r = A
                .replace("\"e-1\"", &format!("\"e-{i:03}\""))
                .replace("12:00:00Z", &format!("12:{:02}:{:02}Z", i / 60, i % 60));
            // Some rows with a request, some with an error message: columns of unequal work.
            if i % 3 == 0 {
                r.replace(
                    r#""requestParameters":null"#,
                    &format!(r#""requestParameters":{{"bucketName":"b-{i}","n":{i}}}"#),
                )
            } else {
                r
            }
        })
        .collect();
    let file = bytes::Bytes::from(parquet_of(&records, 64));
    let metadata = ArrowReaderMetadata::load(&file, Default::default()).unwrap();
    let md = metadata.metadata();
    assert!(md.num_row_groups() > 1);
    let roots = md.file_metadata().schema_descr().root_schema().get_fields().len();
    for threads in [1, 2, 3, 4, roots + 5] {
        let shares = share_roots(md, &[0, 2], threads);
        assert_eq!(shares.len(), threads.min(roots), "{threads} threads");
        let mut all: Vec<usize> = shares.iter().flatten().copied().collect();
        all.sort_unstable();
        assert_eq!(all, (0..roots).collect::<Vec<_>>(), "{threads} threads: every column once");
    }
    let t = |h: u32, m: u32| Utc.with_ymd_and_hms(2024, 3, 1, h, m, 0).unwrap();
    let mut q = LookupQuery::new(t(12, 0), t(12, 59));
    q.attributes.push((AttributeKey::EventName, "CreateBucket".into()));
    let groups = (0..md.num_row_groups()).collect();
    let mut selection = select_hits(file.clone(), metadata.clone(), groups, "f", &q, None).unwrap();
    selection.keep_newest(40);
    // The newest 41 records (one a second, oldest first in `records`).
    let mut want: Vec<String> = records
        .iter()
        .filter(|r| q.matches(&row(r)))
        .rev()
        .take(41)
        .map(|r| row(r).eventid.unwrap().into_owned())
        .collect();
    want.sort();
    for threads in [1, 2, 3, 8] {
        let hits = decode_selected_on(file.clone(), metadata.clone(), &selection, "f", &q, threads).unwrap();
        let mut got: Vec<String> = hits.rows.iter().map(|r| r.eventid.clone().unwrap().into_owned()).collect();
        got.sort();
        assert_eq!(got, want, "{threads} threads");
        for r in &hits.rows {
            let id = r.eventid.as_deref().unwrap();
            let original = records.iter().find(|j| j.contains(&format!("\"eventID\":\"{id}\""))).unwrap();
            assert_eq!(r.requestparameters, row(original).requestparameters, "{threads} threads, {id}");
            assert_eq!(r.eventtime, row(original).eventtime, "{threads} threads, {id}");
        }
    }
}
