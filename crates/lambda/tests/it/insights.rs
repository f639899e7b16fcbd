//! Scheduled Insights (`{"parquetrail":"insights"}`) against real S3 (moto), through the handler:
//! generated activity with one injected burst is converted, the run finds the burst and writes its
//! records; a rerun rebuilds and writes nothing; a run without time builds nothing, detects
//! nothing, and says what remains.

use std::time::SystemTime;

use aws_sdk_s3::primitives::ByteStream;
use parquetrail_lambda::handler::{handle, handle_with_deadline};
use parquetrail_synth::activity::{ActivityOptions, write_activity};
use serde_json::json;

use crate::support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scheduled_insights_find_an_injected_burst_and_resume() {
    let test = "scheduled_insights_find_an_injected_burst_and_resume";
    let Some(w) = world(test).await else { return };
    // Nine days ending at today's midnight, the burst on the last of them (yesterday).
    let today = chrono::Utc::now().date_naive();
    let start = (today - chrono::Days::new(9)).and_hms_opt(0, 0, 0).unwrap().and_utc();
    let dir = tempfile::tempdir().unwrap();
    let options = ActivityOptions { seed: 3, start, days: 9, episodes: 1, scale: 0.3, ..ActivityOptions::default() };
    let generated = write_activity(dir.path(), &options).unwrap();
    let burst = &generated.episodes[0];
    assert_eq!(burst.kind, "call-rate-burst");
    let mut keys = Vec::new();
    for (key, path) in parquetrail_testkit::gz_files(dir.path()) {
        let body = std::fs::read(path).unwrap();
        w.client.put_object().bucket(TRAIL).key(&key).body(ByteStream::from(body)).send().await.unwrap();
        keys.push(key);
    }
    let key_refs: Vec<&str> = keys.iter().map(String::as_str).collect();
    let app = w.app(&[]).await;
    handle(&app, s3_event(TRAIL, &key_refs)).await.unwrap();

    // Out of time: nothing built, nothing detected, everything left for the next run.
    let starved =
        handle_with_deadline(&app, json!({"parquetrail": "insights", "since": "2d"}), Some(SystemTime::now()))
            .await
            .unwrap();
    assert_eq!(starved["rebuilt"], 0, "{starved}");
    assert_eq!(starved["episodes"], 0, "{starved}");
    assert!(starved["remaining"].as_u64().unwrap() > 0, "{starved}");

    let first = handle(&app, json!({"parquetrail": "insights", "since": "2d"})).await.unwrap();
    assert_eq!(first["remaining"], 0, "{first}");
    assert!(first["rebuilt"].as_u64().unwrap() >= 9, "{first}");
    assert!(first["episodes"].as_u64().unwrap() >= 1, "{first}");
    // The burst's records are in the archive's insights dataset, attributed to its identity.
    let objects = w.objects(ARCHIVE).await;
    let computed: Vec<&String> =
        objects.keys().filter(|k| k.contains("/insights/") && k.contains("/computed-")).collect();
    assert!(!computed.is_empty(), "{:?}", objects.keys().collect::<Vec<_>>());
    let mut starts = Vec::new();
    for key in &computed {
        let bytes = bytes::Bytes::from(objects[*key].clone());
        for row in parquetrail_core::archive::read_rows(bytes, Some(key)).unwrap() {
            assert!(row.source_key.starts_with("parquetrail-insights/"), "{}", row.source_key);
            let details: serde_json::Value = serde_json::from_str(row.insightdetails.as_deref().unwrap()).unwrap();
            if details["state"] == "Start" {
                starts.push((row.eventtime.unwrap().into_owned(), details));
            }
        }
    }
    let found = starts.iter().find(|(time, d)| {
        d["eventName"] == burst.event_name.as_str()
            && (time.parse::<chrono::DateTime<chrono::Utc>>().unwrap()
                - burst.start.parse::<chrono::DateTime<chrono::Utc>>().unwrap())
            .num_seconds()
            .abs()
                <= 300
    });
    let (_, details) = found.unwrap_or_else(|| panic!("{burst:?} not in {starts:?}"));
    let arns = &details["insightContext"]["attributions"][0]["insight"];
    assert_eq!(arns[0]["value"].as_str(), burst.identity.as_deref(), "{details}");

    // A rerun: every partition's metrics are up to date, and the records are the same.
    let again = handle(&app, json!({"parquetrail": "insights", "since": "2d"})).await.unwrap();
    assert_eq!(again["rebuilt"], 0, "{again}");
    assert_eq!(again["partitions_written"], 0, "{again}");
    assert_eq!(again["episodes"], first["episodes"], "{again}");
}
