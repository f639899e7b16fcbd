//! CloudWatch Embedded Metric Format: one JSON line per invocation on stdout, which CloudWatch
//! Logs turns into metrics without any API call (and so without adding latency or IAM surface).

use serde_json::{Value, json};

/// What one invocation did, summed over its objects.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct InvocationMetrics {
    pub objects: u64,
    pub records_in: u64,
    pub rows_out: u64,
    pub records_quarantined: u64,
    pub records_filtered: u64,
    pub files_quarantined: u64,
    pub files_failed: u64,
    pub files_skipped: u64,
    pub bytes_in: u64,
    pub bytes_out: u64,
    pub latency_ms: u64,
}

impl InvocationMetrics {
    /// The EMF document for these metrics.
    pub fn emf(&self, namespace: &str, function: &str, timestamp_ms: i64) -> Value {
        let metrics: Vec<(&str, &str, u64)> = vec![
            ("Objects", "Count", self.objects),
            ("RecordsIn", "Count", self.records_in),
            ("RowsOut", "Count", self.rows_out),
            ("RecordsQuarantined", "Count", self.records_quarantined),
            ("RecordsFiltered", "Count", self.records_filtered),
            ("FilesQuarantined", "Count", self.files_quarantined),
            ("FilesFailed", "Count", self.files_failed),
            ("FilesSkipped", "Count", self.files_skipped),
            ("BytesIn", "Bytes", self.bytes_in),
            ("BytesOut", "Bytes", self.bytes_out),
            ("Latency", "Milliseconds", self.latency_ms),
        ];
        let mut doc = json!({
            "_aws": {
                "Timestamp": timestamp_ms,
                "CloudWatchMetrics": [{
                    "Namespace": namespace,
                    "Dimensions": [["FunctionName"]],
                    "Metrics": metrics.iter().map(|(n, u, _)| json!({"Name": n, "Unit": u})).collect::<Vec<_>>(),
                }],
            },
            "FunctionName": function,
        });
        for (name, _, value) in metrics {
            doc[name] = json!(value);
        }
        doc
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emf_document_declares_every_value_it_carries() {
        let m = InvocationMetrics {
            objects: 2,
            records_in: 10,
            rows_out: 9,
            records_quarantined: 1,
            latency_ms: 42,
            ..Default::default()
        };
        let doc = m.emf("parquetrail", "fn", 1_700_000_000_000);
        let declared = doc["_aws"]["CloudWatchMetrics"][0]["Metrics"].as_array().unwrap();
        assert_eq!(declared.len(), 11);
        for d in declared {
            let name = d["Name"].as_str().unwrap();
            assert!(doc[name].is_u64(), "{name} declared but missing");
        }
        assert_eq!(doc["RecordsIn"], 10);
        assert_eq!(doc["RowsOut"], 9);
        assert_eq!(doc["Latency"], 42);
        assert_eq!(doc["_aws"]["CloudWatchMetrics"][0]["Dimensions"], json!([["FunctionName"]]));
        assert_eq!(doc["FunctionName"], "fn");
    }
}
