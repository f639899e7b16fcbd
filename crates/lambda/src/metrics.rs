//! CloudWatch Embedded Metric Format: one JSON line per invocation on stdout, which CloudWatch
//! Logs turns into metrics without any API call (and so without adding latency or IAM surface).

use parquetrail_core::convert::FileTotals;
use serde_json::{Value, json};

/// What one invocation did, summed over its objects.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct InvocationMetrics {
    pub files: FileTotals,
    pub latency_ms: u64,
}

impl InvocationMetrics {
    /// The EMF document for these metrics.
    pub fn emf(&self, namespace: &str, function: &str, timestamp_ms: i64) -> Value {
        let f = &self.files;
        let metrics: Vec<(&str, &str, u64)> = vec![
            ("Objects", "Count", f.files),
            ("RecordsIn", "Count", f.records),
            ("RowsOut", "Count", f.rows),
            ("RecordsQuarantined", "Count", f.quarantined),
            ("RecordsFiltered", "Count", f.filtered),
            ("FilesQuarantined", "Count", f.quarantined_files),
            // Not converted for an error (quarantined files are counted above).
            ("FilesFailed", "Count", f.failed - f.quarantined_files),
            ("FilesSkipped", "Count", f.skipped),
            ("BytesIn", "Bytes", f.bytes_in),
            ("BytesOut", "Bytes", f.bytes_out),
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
            files: FileTotals { files: 2, records: 10, rows: 9, quarantined: 1, ..Default::default() },
            latency_ms: 42,
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
