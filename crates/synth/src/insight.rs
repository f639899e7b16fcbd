//! CloudTrail Insights records: a `Start` and a later `End` record sharing a `sharedEventID`.

use crate::ids::push_uuid_from;
use crate::json::Json;
use crate::time::push_iso;

/// An insight that has started and will end in a later delivery round.
#[derive(Debug, Clone)]
pub(crate) struct OpenInsight {
    pub account: usize,
    pub region: usize,
    pub shared_id: u128,
    pub start_secs: i64,
    pub end_round: u64,
    pub source: &'static str,
    pub name: &'static str,
    pub error_rate: bool,
    /// Baseline and insight averages as number lexemes.
    pub baseline: String,
    pub insight: String,
    pub arns: [String; 2],
}

fn number(v: f64) -> String {
    // Display never uses an exponent; trim to a realistic precision.
    let s = format!("{v:.10}");
    let s = s.trim_end_matches('0');
    s.strip_suffix('.').map(|t| format!("{t}.0")).unwrap_or_else(|| s.to_owned())
}

impl OpenInsight {
    /// Draws a new insight on `(account, region)`.
    pub(crate) fn new(
        rng: &mut fastrand::Rng,
        account: usize,
        account_id: &str,
        region: usize,
        start_secs: i64,
        end_round: u64,
    ) -> Self {
        const CALLS: &[(&str, &str)] = &[
            ("ec2.amazonaws.com", "RunInstances"),
            ("iam.amazonaws.com", "CreateAccessKey"),
            ("s3.amazonaws.com", "PutBucketPolicy"),
            ("kms.amazonaws.com", "ScheduleKeyDeletion"),
            ("ssm.amazonaws.com", "GetParameters"),
            ("sts.amazonaws.com", "AssumeRole"),
            ("ec2.amazonaws.com", "AuthorizeSecurityGroupIngress"),
        ];
        let (source, name) = CALLS[rng.usize(0..CALLS.len())];
        let error_rate = rng.u8(0..4) == 0;
        let (baseline, insight) = if error_rate {
            (rng.f64() * 0.05, 0.3 + rng.f64() * 0.6)
        } else {
            (rng.f64() * 0.01 + 0.00001, 2.0 + rng.f64() * 40.0)
        };
        OpenInsight {
            account,
            region,
            shared_id: rng.u128(..),
            start_secs,
            end_round,
            source,
            name,
            error_rate,
            baseline: number(baseline),
            insight: number(insight),
            arns: [
                format!("arn:aws:iam::{account_id}:user/ci-legacy"),
                format!("arn:aws:sts::{account_id}:assumed-role/deploy-pipeline-role/deploy-4242"),
            ],
        }
    }

    /// Appends the `Start` (or `End`, with the duration in minutes) record.
    pub(crate) fn write(
        &self,
        j: &mut Json,
        rng: &mut fastrand::Rng,
        account_id: &str,
        region: &str,
        end: Option<(i64, u64)>,
    ) {
        j.open();
        j.kv("eventVersion", "1.08");
        let t = end.map_or(self.start_secs, |(s, _)| s);
        j.kv_with("eventTime", |b| push_iso(b, t));
        j.kv("awsRegion", region);
        j.kv_with("eventID", |b| push_uuid_from(b, rng.u128(..)));
        j.kv("eventType", "AwsCloudTrailInsight");
        j.kv("recipientAccountId", account_id);
        j.kv_with("sharedEventID", |b| push_uuid_from(b, self.shared_id));
        j.obj("insightDetails");
        j.kv("state", if end.is_some() { "End" } else { "Start" });
        j.kv("eventSource", self.source);
        j.kv("eventName", self.name);
        j.kv("insightType", if self.error_rate { "ApiErrorRateInsight" } else { "ApiCallRateInsight" });
        if self.error_rate {
            j.kv("errorCode", "AccessDenied");
        }
        j.obj("insightContext");
        j.obj("statistics");
        j.obj("baseline");
        j.kv_num("average", &self.baseline);
        j.close();
        j.obj("insight");
        j.kv_num("average", &self.insight);
        j.close();
        if let Some((_, minutes)) = end {
            j.kv_u64("insightDuration", minutes);
            j.kv_u64("baselineDuration", 10_079);
        }
        j.close();
        j.arr("attributions");
        for attr in ["userIdentityArn", "userAgent", "errorCode"] {
            j.open();
            j.kv("attribute", attr);
            for side in ["insight", "baseline"] {
                j.arr(side);
                let avg = if side == "insight" { &self.insight } else { &self.baseline };
                match attr {
                    "userIdentityArn" => {
                        for arn in &self.arns {
                            j.open();
                            j.kv("value", arn);
                            j.kv_num("average", avg);
                            j.close();
                        }
                    }
                    "userAgent" => {
                        j.open();
                        j.kv(
                            "value",
                            "aws-cli/2.15.30 Python/3.11.8 Linux/6.1.79-99.167.amzn2023.x86_64 exe/x86_64.amzn.2023",
                        );
                        j.kv_num("average", avg);
                        j.close();
                    }
                    _ => {
                        j.open();
                        j.kv("value", if self.error_rate { "AccessDenied" } else { "null" });
                        j.kv_num("average", avg);
                        j.close();
                    }
                }
                j.close_arr();
            }
            j.close();
        }
        j.close_arr();
        j.close();
        j.close();
        j.kv("eventCategory", "Insight");
        j.close();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn number_lexemes() {
        assert_eq!(number(6.0), "6.0");
        assert_eq!(number(0.0000882145), "0.0000882145");
        assert_eq!(number(12.5), "12.5");
    }
}
