//! Fixtures: a moto-backed world with a trail bucket of CloudTrail objects and an archive bucket.

use std::collections::BTreeMap;
use std::io::Write;

use aws_sdk_s3::Client;
use aws_sdk_s3::primitives::ByteStream;
use parquetrail_lambda::config::Config;
use parquetrail_lambda::handler::App;
use parquetrail_testkit::MotoServer;
use serde_json::{Value, json};

pub const TRAIL: &str = "trail-bucket";
pub const ARCHIVE: &str = "archive-bucket";

pub struct World {
    pub moto: MotoServer,
    pub client: Client,
}

/// Hand-written objects the tests announce (written by us, not copied from anywhere).
pub mod keys {
    pub const GOOD: &str = "AWSLogs/o-exampleorg1/111122223333/CloudTrail/us-east-1/2024/03/01/111122223333_CloudTrail_us-east-1_20240301T0005Z_AbCdEfGhIjKlMnOp.json.gz";
    pub const SPACED: &str = "trail prefix/AWSLogs/111122223333/CloudTrail/eu-west-1/2024/03/01/111122223333_CloudTrail_eu-west-1_20240301T2355Z_Plus+Sign%Pct.json.gz";
    pub const SECOND: &str = "AWSLogs/o-exampleorg1/444455556666/CloudTrail/us-west-2/2024/03/02/444455556666_CloudTrail_us-west-2_20240302T0100Z_QrStUvWxYz012345.json.gz";
    pub const CORRUPT: &str = "AWSLogs/111122223333/CloudTrail/us-east-1/2024/03/01/111122223333_CloudTrail_us-east-1_20240301T0010Z_CorruptGzip00000.json.gz";
    pub const BAD_JSON: &str = "AWSLogs/111122223333/CloudTrail/us-east-1/2024/03/01/111122223333_CloudTrail_us-east-1_20240301T0015Z_BrokenJson000000.json.gz";
    pub const DIGEST: &str = "AWSLogs/111122223333/CloudTrail-Digest/us-east-1/2024/03/01/111122223333_CloudTrail-Digest_us-east-1_trail_us-east-1_20240301T010000Z.json.gz";
    pub const MISSING: &str = "AWSLogs/111122223333/CloudTrail/us-east-1/2024/03/01/111122223333_CloudTrail_us-east-1_20240301T0020Z_NeverUploaded000.json.gz";
}

pub fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

pub fn gunzip(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    std::io::Read::read_to_end(&mut flate2::read::MultiGzDecoder::new(data), &mut out).unwrap();
    out
}

pub fn sha256_hex(data: &[u8]) -> String {
    use sha2::Digest as _;
    sha2::Sha256::digest(data).iter().map(|b| format!("{b:02x}")).collect()
}

/// A log file of `n` records around `time`, for `account`/`region`, one of them unplaceable.
pub fn log_file(account: &str, region: &str, time: &str, n: usize) -> Vec<u8> {
    let mut records: Vec<Value> = (0..n)
        .map(|i| {
            json!({
                "eventVersion": "1.09",
                "userIdentity": {"type": "IAMUser", "accountId": account, "arn": format!("arn:aws:iam::{account}:user/u{i}")},
                "eventTime": time, "eventSource": "iam.amazonaws.com", "eventName": format!("Op{i}"),
                "awsRegion": region, "sourceIPAddress": "192.0.2.1", "requestParameters": {"n": i},
                "responseElements": null, "eventID": format!("{account}-{region}-{i}"),
                "recipientAccountId": account, "eventCategory": "Management", "readOnly": false
            })
        })
        .collect();
    records.push(json!({"eventName": "NoEventTime", "recipientAccountId": account}));
    serde_json::to_vec(&json!({ "Records": records })).unwrap()
}

/// Starts moto (or says NOT RUN and returns None) and fills the trail bucket.
pub async fn world(test: &str) -> Option<World> {
    let moto = MotoServer::start(test)?;
    let client = moto.client().await;
    for bucket in [TRAIL, ARCHIVE] {
        moto.create_bucket(bucket).await;
    }
    let put = |key: &str, body: Vec<u8>| client.put_object().bucket(TRAIL).key(key).body(ByteStream::from(body)).send();
    put(keys::GOOD, gzip(&log_file("111122223333", "us-east-1", "2024-03-01T00:01:00Z", 20))).await.unwrap();
    // Records before and after midnight: one file, two partitions.
    let mut midnight: Value =
        serde_json::from_slice(&log_file("111122223333", "eu-west-1", "2024-03-01T23:59:00Z", 5)).unwrap();
    midnight["Records"][0]["eventTime"] = json!("2024-03-02T00:00:30Z");
    put(keys::SPACED, gzip(&serde_json::to_vec(&midnight).unwrap())).await.unwrap();
    put(keys::SECOND, gzip(&log_file("444455556666", "us-west-2", "2024-03-02T00:55:00Z", 7))).await.unwrap();
    let mut corrupt = gzip(&log_file("111122223333", "us-east-1", "2024-03-01T00:05:00Z", 50));
    corrupt.truncate(corrupt.len() / 2);
    put(keys::CORRUPT, corrupt).await.unwrap();
    put(keys::BAD_JSON, gzip(br#"{"Records":[{"eventTime":"2024-03-01T00:00:00Z"} {"x":1}]}"#)).await.unwrap();
    let digest = br#"{"awsAccountId":"111122223333","digestStartTime":"2024-03-01T00:00:00Z","digestEndTime":"2024-03-01T01:00:00Z","digestS3Bucket":"trail-bucket","digestS3Object":"x","digestPublicKeyFingerprint":"ab","digestSignatureAlgorithm":"SHA256withRSA","previousDigestSignature":null,"logFiles":[]}"#;
    put(keys::DIGEST, gzip(digest)).await.unwrap();
    Some(World { moto, client })
}

/// The handler's App, configured as a deployment would be, its S3 client `client` (a proxy's, a
/// frozen endpoint's).
pub fn app_with(client: aws_sdk_s3::Client, extra: &[(&str, &str)]) -> App {
    let mut vars = vec![("PARQUETRAIL_DESTINATION".to_string(), format!("s3://{ARCHIVE}/cloudtrail"))];
    vars.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    App::new(Config::from_vars(vars).unwrap(), client, "parquetrail-test")
}

impl World {
    /// The handler's App, configured as a deployment would be (plus the endpoint of this world).
    pub async fn app(&self, extra: &[(&str, &str)]) -> App {
        app_with(self.client.clone(), extra)
    }

    /// Every object of a bucket with its bytes.
    pub async fn objects(&self, bucket: &str) -> BTreeMap<String, Vec<u8>> {
        let mut out = BTreeMap::new();
        let listed = self.client.list_objects_v2().bucket(bucket).send().await.unwrap();
        for o in listed.contents() {
            let key = o.key().unwrap().to_string();
            let body =
                self.client.get_object().bucket(bucket).key(&key).send().await.unwrap().body.collect().await.unwrap();
            out.insert(key, body.into_bytes().to_vec());
        }
        out
    }

    /// Rows of every Parquet object of the archive, by (source key, index).
    pub async fn rows(&self) -> BTreeMap<(String, i32), String> {
        let mut rows = BTreeMap::new();
        for (key, bytes) in self.objects(ARCHIVE).await {
            // Event rows only: a `digests` file holds one row per digest, not records.
            if key.ends_with(".parquet") && !key.contains("/digests/") {
                for row in parquetrail_core::archive::read_rows(bytes::Bytes::from(bytes), Some(&key)).unwrap() {
                    let id = (row.source_key.to_string(), row.source_index);
                    assert!(rows.insert(id.clone(), key.clone()).is_none(), "duplicate row {id:?}");
                }
            }
        }
        rows
    }
}

/// The record quarantine lines of the archive (under the test deployment's `cloudtrail/` prefix)
/// whose object names contain `stem`.
pub fn quarantined_records(archive: &BTreeMap<String, Vec<u8>>, stem: &str) -> Vec<Value> {
    archive
        .iter()
        .filter(|(k, _)| k.starts_with("cloudtrail/quarantine/records/") && k.contains(stem))
        .flat_map(|(_, v)| {
            String::from_utf8_lossy(v).lines().map(|l| serde_json::from_str(l).unwrap()).collect::<Vec<_>>()
        })
        .collect()
}

/// The form-URL encoding S3 uses for keys in event notifications.
pub fn form_encode(key: &str) -> String {
    let mut out = String::new();
    for b in key.bytes() {
        match b {
            b' ' => out.push('+'),
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'/' | b'*' => out.push(b as char),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

pub fn s3_event(bucket: &str, keys: &[&str]) -> Value {
    let records: Vec<Value> = keys
        .iter()
        .map(|k| {
            json!({
                "eventVersion": "2.1", "eventSource": "aws:s3", "awsRegion": "us-east-1",
                "eventTime": "2024-03-01T00:06:00.000Z", "eventName": "ObjectCreated:Put",
                "userIdentity": {"principalId": "AWS:cloudtrail"}, "requestParameters": {"sourceIPAddress": "192.0.2.9"},
                "responseElements": {"x-amz-request-id": "R", "x-amz-id-2": "I"},
                "s3": {"s3SchemaVersion": "1.0", "configurationId": "parquetrail",
                       "bucket": {"name": bucket, "ownerIdentity": {"principalId": "O"}, "arn": format!("arn:aws:s3:::{bucket}")},
                       "object": {"key": form_encode(k), "size": 100, "eTag": "e", "sequencer": "0055AED6DCD90281E5"}}
            })
        })
        .collect();
    json!({ "Records": records })
}

pub fn sqs_event(bodies: &[(&str, String)]) -> Value {
    let records: Vec<Value> = bodies
        .iter()
        .map(|(id, body)| {
            json!({
                "messageId": id, "receiptHandle": "h", "body": body,
                "attributes": {"ApproximateReceiveCount": "1", "SentTimestamp": "1709251560000"},
                "messageAttributes": {}, "md5OfBody": "x", "eventSource": "aws:sqs",
                "eventSourceARN": "arn:aws:sqs:us-east-1:111122223333:parquetrail", "awsRegion": "us-east-1"
            })
        })
        .collect();
    json!({ "Records": records })
}

pub fn sns_envelope(message: &Value) -> String {
    json!({
        "Type": "Notification", "MessageId": "m", "TopicArn": "arn:aws:sns:us-east-1:111122223333:trail",
        "Message": message.to_string(), "Timestamp": "2024-03-01T00:06:00.000Z", "SignatureVersion": "1"
    })
    .to_string()
}
