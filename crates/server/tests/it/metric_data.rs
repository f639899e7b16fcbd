//! `ListInsightsMetricData` on the wire: a backend without metrics answers AWS's
//! `UnsupportedOperationException`; one with metrics gets validated queries, and its pages go out
//! with the series echoed, epoch-second timestamps and a NextToken sealed to the request.

use std::sync::Mutex;

use chrono::DateTime;
use parquetrail_server::{
    InsightType, LookupBackend, LookupPage, LookupQuery, MetricDataPage, MetricDataQuery, MetricDataType, ServerConfig,
    serve,
};
use serde_json::json;

use crate::support::{config, post, start};

const HEADERS: &[(&str, &str)] = &[
    ("Content-Type", "application/x-amz-json-1.1"),
    ("X-Amz-Target", "com.amazonaws.cloudtrail.v20131101.CloudTrail_20131101.ListInsightsMetricData"),
];

/// A series of one point per hour with value `hour`, paged by index; remembers what it was asked.
#[derive(Default)]
struct Hours {
    asked: Mutex<Vec<MetricDataQuery>>,
}

#[async_trait::async_trait]
impl LookupBackend for Hours {
    async fn lookup(&self, _query: LookupQuery) -> parquetrail_server::Result<LookupPage> {
        Ok(LookupPage::default())
    }

    async fn metric_data(&self, query: MetricDataQuery) -> parquetrail_server::Result<MetricDataPage> {
        self.asked.lock().unwrap().push(query.clone());
        let from: usize = query.cursor.as_deref().map_or(0, |c| c.parse().unwrap());
        let points: Vec<_> = (from..5)
            .take(query.max_results)
            .map(|h| (query.start + chrono::Duration::hours(h as i64), h as f64))
            .collect();
        let next = from + points.len();
        Ok(MetricDataPage { points, cursor: (next < 5).then(|| next.to_string()) })
    }
}

#[tokio::test]
async fn a_backend_without_metrics_answers_unsupported_operation() {
    let server = start(config()).await;
    let body = json!({"EventSource":"ec2.amazonaws.com","EventName":"RunInstances","InsightType":"ApiCallRateInsight"});
    let response = post(&server, HEADERS, body.to_string().as_bytes()).await;
    assert_eq!(
        (response.status, response.error_type().as_str()),
        (400, "UnsupportedOperationException"),
        "{response:?}"
    );
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn pages_echo_the_series_and_tokens_are_sealed_to_the_request() {
    let backend = std::sync::Arc::new(Hours::default());
    struct Shared(std::sync::Arc<Hours>);
    #[async_trait::async_trait]
    impl LookupBackend for Shared {
        async fn lookup(&self, q: LookupQuery) -> parquetrail_server::Result<LookupPage> {
            self.0.lookup(q).await
        }
        async fn metric_data(&self, q: MetricDataQuery) -> parquetrail_server::Result<MetricDataPage> {
            self.0.metric_data(q).await
        }
    }
    let server = serve(ServerConfig::default(), Shared(backend.clone())).await.unwrap();
    let request = json!({
        "EventSource": "iam.amazonaws.com", "EventName": "CreateUser", "InsightType": "ApiErrorRateInsight",
        "ErrorCode": "AccessDenied", "StartTime": 1_709_251_200, "EndTime": 1_709_337_600, "Period": 3600,
        "DataType": "FillWithZeros", "MaxResults": 2,
    });
    let mut values = Vec::new();
    let mut timestamps = Vec::new();
    let mut body = request.clone();
    for page in 1.. {
        let response = post(&server, HEADERS, body.to_string().as_bytes()).await;
        assert_eq!(response.status, 200, "{response:?}");
        let v = response.json();
        assert_eq!(
            (&v["EventSource"], &v["EventName"], &v["InsightType"], &v["ErrorCode"]),
            (&json!("iam.amazonaws.com"), &json!("CreateUser"), &json!("ApiErrorRateInsight"), &json!("AccessDenied"))
        );
        timestamps.extend(v["Timestamps"].as_array().unwrap().iter().map(|t| t.as_i64().expect("epoch seconds")));
        values.extend(v["Values"].as_array().unwrap().iter().map(|x| x.as_f64().unwrap()));
        match v["NextToken"].as_str() {
            Some(token) => body["NextToken"] = json!(token),
            None => {
                assert_eq!(page, 3);
                break;
            }
        }
        if page == 2 {
            // The same token with another period, or altered, is refused.
            let mut other = body.clone();
            other["Period"] = json!(300);
            let response = post(&server, HEADERS, other.to_string().as_bytes()).await;
            assert_eq!(response.error_type(), "InvalidParameterException", "{response:?}");
            let mut altered = body.clone();
            altered["NextToken"] = json!(format!("{}x", body["NextToken"].as_str().unwrap()));
            let response = post(&server, HEADERS, altered.to_string().as_bytes()).await;
            assert_eq!(response.error_type(), "InvalidParameterException", "{response:?}");
        }
    }
    assert_eq!(values, [0.0, 1.0, 2.0, 3.0, 4.0]);
    assert_eq!(timestamps, (0..5).map(|h| 1_709_251_200 + h * 3600).collect::<Vec<_>>());
    server.shutdown().await.unwrap();
    let asked = backend.asked.lock().unwrap().clone();
    let first = &asked[0];
    assert_eq!(
        (first.insight_type, first.error_code.as_deref(), first.period, first.data_type, first.max_results),
        (InsightType::ApiErrorRateInsight, Some("AccessDenied"), 3600, MetricDataType::FillWithZeros, 2)
    );
    assert_eq!(
        (first.start, first.end),
        (DateTime::from_timestamp(1_709_251_200, 0).unwrap(), DateTime::from_timestamp(1_709_337_600, 0).unwrap())
    );
    assert_eq!(first.region, None, "an unsigned request is not scoped");
    assert_eq!(asked.iter().map(|q| q.cursor.clone()).collect::<Vec<_>>(), [None, Some("2".into()), Some("4".into())]);
}
