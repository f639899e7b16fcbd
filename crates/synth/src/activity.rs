//! Activity with known anomalies, for testing Insights: a realistic background of API calls
//! (daily and weekly cycles, round-the-clock automation, bursty services, many identities) over
//! N days, with injected episodes — call-rate bursts, error spikes, drops to zero — of known
//! start, length and size, and the list of them.
//!
//! Each account and Region gets the same catalogue of APIs; episode `k` of an account and Region
//! starts on day `baseline_days + k` (so every episode has a full baseline and episodes never
//! overlap), at a time of day and with a size drawn from the seed.

use std::io::Write;
use std::path::Path;

use chrono::{DateTime, Duration, Utc};
use flate2::Compression;
use flate2::write::GzEncoder;
use serde_json::json;

/// What to generate.
#[derive(Debug, Clone, PartialEq)]
pub struct ActivityOptions {
    pub seed: u64,
    /// Midnight UTC of the first day.
    pub start: DateTime<Utc>,
    pub days: u32,
    pub accounts: usize,
    pub regions: Vec<String>,
    /// Episodes injected per account and Region (0: background only). They start on day
    /// `first_episode_day` and follow one a day.
    pub episodes: usize,
    /// The day (from 0) of the first episode: at least 7 so that it has a baseline.
    pub first_episode_day: u32,
    /// Scales every background rate (1.0: about 14,000 events a day per account and Region).
    pub scale: f64,
}

impl Default for ActivityOptions {
    fn default() -> Self {
        ActivityOptions {
            seed: 1,
            start: DateTime::from_timestamp(1_709_251_200, 0).expect("2024-03-01"),
            days: 14,
            accounts: 1,
            regions: vec!["us-east-1".to_string()],
            episodes: 3,
            first_episode_day: 8,
            scale: 1.0,
        }
    }
}

/// One injected anomaly, as the generator made it.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InjectedEpisode {
    /// `call-rate-burst`, `error-spike` or `drop-to-zero`.
    pub kind: String,
    /// The Insight that should report it: `ApiCallRateInsight` or `ApiErrorRateInsight`.
    pub insight_type: String,
    pub account: String,
    pub region: String,
    pub event_source: String,
    pub event_name: String,
    pub error_code: Option<String>,
    /// First minute, RFC 3339.
    pub start: String,
    pub minutes: u32,
    /// Events per minute during the episode (0 for a drop).
    pub per_minute: u32,
    /// Who made the injected calls (none for a drop).
    pub identity: Option<String>,
}

/// What [`write_activity`] wrote.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ActivitySummary {
    pub files: usize,
    pub records: u64,
    pub episodes: Vec<InjectedEpisode>,
}

#[derive(Clone, Copy)]
enum Profile {
    /// Weekdays 08:00-18:00 UTC; a trickle at night and on weekends.
    Office,
    /// Round the clock (agents, pipelines).
    Constant,
    /// Round the clock, with the rate multiplied by a random factor (0.2-3) every 15 minutes.
    Bursty,
}

struct Api {
    source: &'static str,
    name: &'static str,
    read_only: bool,
    profile: Profile,
    /// Events per minute at the profile's peak, before `scale`.
    peak: f64,
    /// Background share of failed calls, and their code.
    errors: Option<(&'static str, f64)>,
}

const APIS: &[Api] = &[
    Api {
        source: "ec2.amazonaws.com",
        name: "RunInstances",
        read_only: false,
        profile: Profile::Office,
        peak: 1.5,
        errors: None,
    },
    Api {
        source: "ec2.amazonaws.com",
        name: "CreateTags",
        read_only: false,
        profile: Profile::Office,
        peak: 2.0,
        errors: None,
    },
    Api {
        source: "iam.amazonaws.com",
        name: "CreateAccessKey",
        read_only: false,
        profile: Profile::Office,
        peak: 0.02,
        errors: None,
    },
    Api {
        source: "lambda.amazonaws.com",
        name: "UpdateFunctionCode20150331v2",
        read_only: false,
        profile: Profile::Office,
        peak: 0.3,
        errors: None,
    },
    Api {
        source: "ssm.amazonaws.com",
        name: "UpdateInstanceInformation",
        read_only: false,
        profile: Profile::Constant,
        peak: 6.0,
        errors: None,
    },
    Api {
        source: "autoscaling.amazonaws.com",
        name: "CompleteLifecycleAction",
        read_only: false,
        profile: Profile::Bursty,
        peak: 0.5,
        errors: None,
    },
    Api {
        source: "s3.amazonaws.com",
        name: "GetBucketPolicy",
        read_only: true,
        profile: Profile::Office,
        peak: 0.8,
        errors: Some(("AccessDenied", 0.05)),
    },
    Api {
        source: "ec2.amazonaws.com",
        name: "DescribeInstances",
        read_only: true,
        profile: Profile::Constant,
        peak: 1.0,
        errors: Some(("Client.UnauthorizedOperation", 0.02)),
    },
    Api {
        source: "dynamodb.amazonaws.com",
        name: "DescribeTable",
        read_only: true,
        profile: Profile::Bursty,
        peak: 0.8,
        errors: Some(("ThrottlingException", 0.03)),
    },
];

const AGENTS: &[&str] = &[
    "aws-cli/2.15.30 Python/3.11.8 Linux/6.1 exe/x86_64.amzn.2023",
    "Boto3/1.34.69 md/Botocore#1.34.69 ua/2.0 os/linux#6.1 md/arch#x86_64 lang/python#3.12.2",
    "aws-sdk-go-v2/1.26.0 os/linux lang/go#1.22.1 md/GOOS#linux md/GOARCH#amd64",
    "console.amazonaws.com",
    "terraform/1.7.5 aws-sdk-go-v2/1.25.3",
];

/// A Poisson draw (Knuth for small means, a rounded normal for large ones).
fn poisson(rng: &mut fastrand::Rng, mean: f64) -> u32 {
    if mean <= 0.0 {
        return 0;
    }
    if mean > 30.0 {
        let (u1, u2) = (rng.f64().max(1e-12), rng.f64());
        let z = (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos();
        return (mean + z * mean.sqrt()).round().max(0.0) as u32;
    }
    let limit = (-mean).exp();
    let (mut k, mut p) = (0, 1.0);
    loop {
        p *= rng.f64();
        if p <= limit {
            return k;
        }
        k += 1;
    }
}

fn rate(api: &Api, t: DateTime<Utc>, block_factor: f64) -> f64 {
    use chrono::{Datelike, Timelike};
    match api.profile {
        Profile::Office => {
            let weekend = t.weekday().num_days_from_monday() >= 5;
            if weekend {
                api.peak * 0.03
            } else if (8..18).contains(&t.hour()) {
                api.peak
            } else {
                api.peak * 0.05
            }
        }
        Profile::Constant => api.peak,
        Profile::Bursty => api.peak * block_factor,
    }
}

struct Plan {
    episode: InjectedEpisode,
    start_minute: i64,
}

/// Generates the tree under `dir` (CloudTrail's layout, one file per account, Region and hour)
/// and returns what was injected.
pub fn write_activity(dir: &Path, opts: &ActivityOptions) -> std::io::Result<ActivitySummary> {
    let mut rng = fastrand::Rng::with_seed(opts.seed);
    let accounts: Vec<String> =
        (0..opts.accounts).map(|_| format!("{:012}", 100_000_000_000 + rng.u64(..899_999_999_999))).collect();
    let mut summary = ActivitySummary::default();
    let minutes = i64::from(opts.days) * 1440;
    for account in &accounts {
        let identities: Vec<String> = (0..60)
            .map(|i| match i % 3 {
                0 => format!("arn:aws:sts::{account}:assumed-role/app-{}/i-{:08x}", i / 3, rng.u32(..)),
                1 => format!("arn:aws:iam::{account}:user/dev-{}", i / 3),
                _ => format!("arn:aws:sts::{account}:assumed-role/ci-deploy/run-{}", i / 3),
            })
            .collect();
        for region in &opts.regions {
            let plans = plan_episodes(&mut rng, opts, account, region);
            summary.episodes.extend(plans.iter().map(|p| p.episode.clone()));
            let mut block_factors: Vec<f64> = Vec::new();
            for hour in 0..minutes / 60 {
                let mut records: Vec<(i64, String)> = Vec::new();
                for m in hour * 60..hour * 60 + 60 {
                    if m % 15 == 0 || block_factors.is_empty() {
                        block_factors = APIS.iter().map(|_| 0.2 + rng.f64() * 2.8).collect();
                    }
                    let t = opts.start + Duration::minutes(m);
                    for (a, api) in APIS.iter().enumerate() {
                        let dropped = plans.iter().any(|p| {
                            p.episode.kind == "drop-to-zero"
                                && p.episode.event_name == api.name
                                && (p.start_minute..p.start_minute + i64::from(p.episode.minutes)).contains(&m)
                        });
                        if dropped {
                            continue;
                        }
                        let n = poisson(&mut rng, rate(api, t, block_factors[a]) * opts.scale);
                        for _ in 0..n {
                            // Heavy users first: a skewed pick over the identities.
                            let who = &identities[((rng.f64().powi(3)) * identities.len() as f64) as usize];
                            let error = api.errors.filter(|(_, share)| rng.f64() < *share).map(|(c, _)| c);
                            let agent = AGENTS[rng.usize(..AGENTS.len())];
                            records.push(record(
                                &mut rng,
                                account,
                                region,
                                api.source,
                                api.name,
                                api.read_only,
                                t,
                                who,
                                agent,
                                error,
                            ));
                        }
                    }
                    for p in plans.iter().filter(|p| p.episode.kind != "drop-to-zero") {
                        let e = &p.episode;
                        if !(p.start_minute..p.start_minute + i64::from(e.minutes)).contains(&m) {
                            continue;
                        }
                        let read_only = APIS.iter().find(|a| a.name == e.event_name).is_some_and(|a| a.read_only);
                        let who = e.identity.as_deref().unwrap_or("null");
                        for _ in 0..e.per_minute {
                            records.push(record(
                                &mut rng,
                                account,
                                region,
                                &e.event_source,
                                &e.event_name,
                                read_only,
                                t,
                                who,
                                "python-requests/2.31.0",
                                e.error_code.as_deref(),
                            ));
                        }
                    }
                }
                if records.is_empty() {
                    continue;
                }
                records.sort_by_key(|(ts, _)| *ts);
                let delivered = opts.start + Duration::minutes(hour * 60 + 60);
                let suffix: String = (0..16).map(|_| rng.alphanumeric()).collect();
                let key = format!(
                    "AWSLogs/{account}/CloudTrail/{region}/{}/{account}_CloudTrail_{region}_{}_{suffix}.json.gz",
                    delivered.format("%Y/%m/%d"),
                    delivered.format("%Y%m%dT%H%MZ"),
                );
                let body: Vec<&str> = records.iter().map(|(_, r)| r.as_str()).collect();
                let json = format!("{{\"Records\":[{}]}}", body.join(","));
                let path = dir.join(&key);
                std::fs::create_dir_all(path.parent().expect("key has a directory"))?;
                let mut gz = GzEncoder::new(Vec::new(), Compression::fast());
                gz.write_all(json.as_bytes())?;
                std::fs::write(&path, gz.finish()?)?;
                summary.files += 1;
                summary.records += records.len() as u64;
            }
        }
    }
    Ok(summary)
}

fn plan_episodes(rng: &mut fastrand::Rng, opts: &ActivityOptions, account: &str, region: &str) -> Vec<Plan> {
    let mut out = Vec::new();
    for k in 0..opts.episodes {
        let day = i64::from(opts.first_episode_day) + k as i64;
        if day >= i64::from(opts.days) {
            break;
        }
        // Leave the last hour of the data free, so the episode has ended before the data does.
        let minute_of_day = rng.i64(60..1440 - 120);
        let start_minute = day * 1440 + minute_of_day;
        let start = (opts.start + Duration::minutes(start_minute)).to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        let identity = Some(format!("arn:aws:iam::{account}:user/injected-{k}"));
        let episode = match k % 3 {
            0 => {
                let targets = [
                    ("ec2.amazonaws.com", "RunInstances"),
                    ("iam.amazonaws.com", "CreateAccessKey"),
                    ("lambda.amazonaws.com", "UpdateFunctionCode20150331v2"),
                ];
                let (source, name) = targets[rng.usize(..targets.len())];
                InjectedEpisode {
                    kind: "call-rate-burst".into(),
                    insight_type: "ApiCallRateInsight".into(),
                    account: account.into(),
                    region: region.into(),
                    event_source: source.into(),
                    event_name: name.into(),
                    error_code: None,
                    start,
                    minutes: rng.u32(5..=30),
                    per_minute: rng.u32(20..=60),
                    identity,
                }
            }
            1 => InjectedEpisode {
                kind: "error-spike".into(),
                insight_type: "ApiErrorRateInsight".into(),
                account: account.into(),
                region: region.into(),
                event_source: "s3.amazonaws.com".into(),
                event_name: "GetBucketPolicy".into(),
                error_code: Some("AccessDenied".into()),
                start,
                minutes: rng.u32(5..=20),
                per_minute: rng.u32(15..=40),
                identity,
            },
            _ => InjectedEpisode {
                kind: "drop-to-zero".into(),
                insight_type: "ApiCallRateInsight".into(),
                account: account.into(),
                region: region.into(),
                event_source: "ssm.amazonaws.com".into(),
                event_name: "UpdateInstanceInformation".into(),
                error_code: None,
                start,
                minutes: rng.u32(20..=60),
                per_minute: 0,
                identity: None,
            },
        };
        out.push(Plan { episode, start_minute });
    }
    out
}

#[allow(clippy::too_many_arguments)]
fn record(
    rng: &mut fastrand::Rng,
    account: &str,
    region: &str,
    source: &str,
    name: &str,
    read_only: bool,
    minute: DateTime<Utc>,
    arn: &str,
    agent: &str,
    error: Option<&str>,
) -> (i64, String) {
    let t = minute + Duration::milliseconds(rng.i64(0..60_000));
    let t = DateTime::from_timestamp(t.timestamp(), 0).expect("in range");
    let mut r = json!({
        "eventVersion": "1.09",
        "userIdentity": {"type": if arn.contains(":user/") { "IAMUser" } else { "AssumedRole" }, "arn": arn, "accountId": account},
        "eventTime": t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        "eventSource": source,
        "eventName": name,
        "awsRegion": region,
        "sourceIPAddress": format!("10.{}.{}.{}", rng.u8(..), rng.u8(..), rng.u8(1..255)),
        "userAgent": agent,
        "requestParameters": null,
        "responseElements": null,
        "requestID": format!("{:032x}", rng.u128(..)),
        "eventID": format!("{:08x}-{:04x}-4{:03x}-8{:03x}-{:012x}", rng.u32(..), rng.u16(..), rng.u16(..0x1000), rng.u16(..0x1000), rng.u64(..1 << 48)),
        "readOnly": read_only,
        "eventType": "AwsApiCall",
        "managementEvent": true,
        "recipientAccountId": account,
        "eventCategory": "Management",
    });
    if let Some(code) = error {
        r["errorCode"] = json!(code);
        r["errorMessage"] = json!(format!("User: {arn} is not authorized to perform: {name}"));
    }
    (t.timestamp(), r.to_string())
}
