//! Signed CloudTrail digest chains over synthetic (or any) log files, signed exactly as
//! CloudTrail signs them, with a committed test-only key ([`TestSigner`]).
//!
//! Each digest covers one hour of deliveries of one account and region: it lists the SHA-256 of
//! the inflated bytes of every log file whose file-name timestamp falls in its window, names its
//! predecessor's key, hash and signature, and is signed (RSA PKCS#1 v1.5, SHA-256) over
//! `digestEndTime\nbucket/key\nhex(sha256(inflated))\nprevious-signature-or-"null"`. The
//! signature goes where CloudTrail puts it — the object's `x-amz-meta-signature` — so callers
//! upload [`SignedDigest::gz`] with [`SignedDigest::metadata`].

use base64::Engine as _;
use chrono::{DateTime, Duration, NaiveDateTime, Utc};
use rsa::RsaPrivateKey;
use rsa::pkcs1v15::SigningKey;
use rsa::pkcs8::DecodePrivateKey;
use rsa::sha2::Sha256;
use rsa::signature::{SignatureEncoding, Signer};
use serde_json::{Value, json};
use sha2::Digest as _;

/// The committed test key (PKCS#8 DER), and its public half as PKCS#1 and SubjectPublicKeyInfo
/// DER, all made with openssl (see `fixtures/README.md`).
pub const TEST_PRIVATE_KEY_PKCS8_DER: &[u8] = include_bytes!("../fixtures/digest-signing-key.pk8.der");
pub const TEST_PUBLIC_KEY_PKCS1_DER: &[u8] = include_bytes!("../fixtures/digest-signing-key.pkcs1.der");
pub const TEST_PUBLIC_KEY_SPKI_DER: &[u8] = include_bytes!("../fixtures/digest-signing-key.spki.der");

/// Signs like CloudTrail's per-region key pair.
#[derive(Debug, Clone)]
pub struct TestSigner {
    key: SigningKey<Sha256>,
    /// The fingerprint digests name (`digestPublicKeyFingerprint`). CloudTrail's fingerprints
    /// are opaque 32-hex-digit names; this one is the first 16 bytes of SHA-256 of the PKCS#1
    /// public key.
    pub fingerprint: String,
}

impl Default for TestSigner {
    fn default() -> Self {
        TestSigner::fixture()
    }
}

impl TestSigner {
    /// The committed test key.
    pub fn fixture() -> TestSigner {
        let key = RsaPrivateKey::from_pkcs8_der(TEST_PRIVATE_KEY_PKCS8_DER).expect("the committed test key parses");
        let fingerprint = hex(&sha2::Sha256::digest(TEST_PUBLIC_KEY_PKCS1_DER)[..16]);
        TestSigner { key: SigningKey::new(key), fingerprint }
    }

    /// RSA PKCS#1 v1.5 signature of SHA-256(`message`).
    pub fn sign(&self, message: &[u8]) -> Vec<u8> {
        self.key.sign(message).to_vec()
    }

    /// The public key as `aws cloudtrail list-public-keys` prints it (`Value` is base64 DER),
    /// PKCS#1 or SubjectPublicKeyInfo: the `--public-keys` file of offline verification.
    pub fn public_keys_json(&self, spki: bool) -> String {
        let der = if spki { TEST_PUBLIC_KEY_SPKI_DER } else { TEST_PUBLIC_KEY_PKCS1_DER };
        json!({"PublicKeyList": [{
            "ValidityStartTime": "2014-01-01T00:00:00Z",
            "ValidityEndTime": "2100-01-01T00:00:00Z",
            "Value": base64::engine::general_purpose::STANDARD.encode(der),
            "Fingerprint": self.fingerprint,
        }]})
        .to_string()
    }
}

/// One chain to sign: a trail's digests for one account and region.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainSpec {
    /// The trail bucket (`digestS3Bucket`, `logFiles[].s3Bucket`).
    pub bucket: String,
    /// The trail prefix before `AWSLogs/`.
    pub prefix: Option<String>,
    pub org_id: Option<String>,
    pub account: String,
    pub region: String,
    pub trail: String,
    pub home_region: String,
    /// The first digest's `digestStartTime`; each digest covers the hour after the previous one.
    pub start: DateTime<Utc>,
    /// Digests in the chain.
    pub hours: usize,
}

/// One signed digest, ready to upload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedDigest {
    pub key: String,
    /// The digest JSON as signed (inflated).
    pub json: Vec<u8>,
    /// The gzip object to store.
    pub gz: Vec<u8>,
    /// Hex signature: the `x-amz-meta-signature` value.
    pub signature: String,
    /// Keys of the log files it lists.
    pub log_files: Vec<String>,
}

impl SignedDigest {
    /// The user metadata CloudTrail sets on a digest object.
    pub fn metadata(&self) -> [(&'static str, String); 2] {
        [("signature", self.signature.clone()), ("signature-algorithm", "SHA256withRSA".to_string())]
    }
}

/// A trail to verify: one account's log files in `us-east-1` under the prefix `ct`, delivered
/// every half hour in the `hours` after `start` (generated with `seed`), by key, and the chain of
/// digests of the trail `management_trail` in `bucket` that the test key signs over them.
pub fn signed_trail(
    bucket: &str,
    seed: u64,
    start: DateTime<Utc>,
    hours: usize,
) -> (std::collections::BTreeMap<String, Vec<u8>>, Vec<SignedDigest>) {
    let options = crate::TreeOptions {
        seed,
        target_json_bytes: u64::MAX,
        accounts: 1,
        regions: vec!["us-east-1".into()],
        insights: false,
        interval_minutes: 30,
        gzip_level: 1,
        start,
        prefix: Some("ct".into()),
        ..crate::TreeOptions::default()
    };
    let end = start + Duration::hours(hours as i64);
    let logs: std::collections::BTreeMap<String, Vec<u8>> = crate::generate_files(&options)
        .take_while(|f| delivery_time(&f.key).is_some_and(|t| t < end))
        .map(|f| (f.key, f.gz))
        .collect();
    let inflated: Vec<(String, Vec<u8>)> = logs
        .iter()
        .map(|(k, gz)| {
            let mut json = Vec::new();
            std::io::Read::read_to_end(&mut flate2::read::MultiGzDecoder::new(&gz[..]), &mut json)
                .expect("the generator writes valid gzip");
            (k.clone(), json)
        })
        .collect();
    let spec = ChainSpec {
        bucket: bucket.into(),
        prefix: Some("ct".into()),
        org_id: None,
        account: logs.keys().next().and_then(|k| k.split('/').nth(2)).unwrap_or_default().to_string(),
        region: "us-east-1".into(),
        trail: "management_trail".into(),
        home_region: "us-east-1".into(),
        start,
        hours,
    };
    let digests = sign_chain(&TestSigner::fixture(), &spec, &inflated);
    (logs, digests)
}

/// The delivery time in a CloudTrail log file name (`…_<YYYYMMDDTHHMMZ>_<rand>.json.gz`).
pub fn delivery_time(key: &str) -> Option<DateTime<Utc>> {
    let name = key.rsplit('/').next()?;
    let stamp = name.split('_').find(|p| p.len() == 14 && p.ends_with('Z') && p.as_bytes().get(8) == Some(&b'T'))?;
    NaiveDateTime::parse_from_str(stamp, "%Y%m%dT%H%MZ").ok().map(|t| t.and_utc())
}

impl ChainSpec {
    fn root(&self) -> String {
        let mut root = String::new();
        if let Some(p) = self.prefix.as_deref().map(|p| p.trim_matches('/')).filter(|p| !p.is_empty()) {
            root.push_str(p);
            root.push('/');
        }
        root.push_str("AWSLogs/");
        if let Some(org) = &self.org_id {
            root.push_str(org);
            root.push('/');
        }
        root.push_str(&self.account);
        root
    }

    /// The key CloudTrail gives the digest that ends at `end`.
    pub fn digest_key(&self, end: DateTime<Utc>) -> String {
        format!(
            "{}/CloudTrail-Digest/{}/{}/{}_CloudTrail-Digest_{}_{}_{}_{}.json.gz",
            self.root(),
            self.region,
            end.format("%Y/%m/%d"),
            self.account,
            self.region,
            self.trail,
            self.home_region,
            end.format("%Y%m%dT%H%M%SZ"),
        )
    }

    /// Whether a log file key belongs to this chain's account and region.
    pub fn owns(&self, key: &str) -> bool {
        key.contains(&format!("{}/CloudTrail/{}/", self.root(), self.region))
    }
}

/// Signs a chain over `logs` (`(key, inflated bytes)`; those outside the spec's account, region
/// or hours are ignored). The first digest is a starting digest (no predecessor).
pub fn sign_chain(signer: &TestSigner, spec: &ChainSpec, logs: &[(String, Vec<u8>)]) -> Vec<SignedDigest> {
    let mut out: Vec<SignedDigest> = Vec::with_capacity(spec.hours);
    for hour in 0..spec.hours {
        let start = spec.start + Duration::hours(hour as i64);
        let end = start + Duration::hours(1);
        let mut files: Vec<(&String, &Vec<u8>)> = logs
            .iter()
            .filter(|(key, _)| spec.owns(key))
            .filter(|(key, _)| delivery_time(key).is_some_and(|t| t >= start && t < end))
            .map(|(k, v)| (k, v))
            .collect();
        files.sort();
        let key = spec.digest_key(end);
        let time = |t: DateTime<Utc>| t.format("%Y-%m-%dT%H:%M:%SZ").to_string();
        let previous = out.last();
        let digest = json!({
            "awsAccountId": spec.account,
            "digestStartTime": time(start),
            "digestEndTime": time(end),
            "digestS3Bucket": spec.bucket,
            "digestS3Object": key,
            "digestPublicKeyFingerprint": signer.fingerprint,
            "digestSignatureAlgorithm": "SHA256withRSA",
            "newestEventTime": if files.is_empty() { Value::Null } else { time(end - Duration::minutes(1)).into() },
            "oldestEventTime": if files.is_empty() { Value::Null } else { time(start).into() },
            "previousDigestS3Bucket": previous.map(|_| spec.bucket.clone()),
            "previousDigestS3Object": previous.map(|p| p.key.clone()),
            "previousDigestHashValue": previous.map(|p| hex(&sha2::Sha256::digest(&p.json))),
            "previousDigestHashAlgorithm": previous.map(|_| "SHA-256"),
            "previousDigestSignature": previous.map(|p| p.signature.clone()),
            "logFiles": files.iter().map(|(k, bytes)| json!({
                "s3Bucket": spec.bucket,
                "s3Object": k,
                "hashValue": hex(&sha2::Sha256::digest(bytes)),
                "hashAlgorithm": "SHA-256",
                "newestEventTime": time(end - Duration::minutes(1)),
                "oldestEventTime": time(start),
            })).collect::<Vec<_>>(),
        });
        let json = digest.to_string().into_bytes();
        let signature = hex(&signer.sign(signing_string(&digest, &json).as_bytes()));
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        std::io::Write::write_all(&mut gz, &json).expect("in memory");
        out.push(SignedDigest {
            key,
            json,
            gz: gz.finish().expect("in memory"),
            signature,
            log_files: files.iter().map(|(k, _)| k.to_string()).collect(),
        });
    }
    out
}

/// CloudTrail's string to sign (written independently of `parquetrail_core::digest`, so each
/// checks the other).
fn signing_string(digest: &Value, json: &[u8]) -> String {
    let field = |name: &str| digest[name].as_str().unwrap_or("null").to_string();
    format!(
        "{}\n{}/{}\n{}\n{}",
        field("digestEndTime"),
        field("digestS3Bucket"),
        field("digestS3Object"),
        hex(&sha2::Sha256::digest(json)),
        field("previousDigestSignature")
    )
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn chains_link_and_cover_their_hours() {
        let spec = ChainSpec {
            bucket: "trail".into(),
            prefix: Some("p".into()),
            org_id: None,
            account: "111122223333".into(),
            region: "us-east-1".into(),
            trail: "t".into(),
            home_region: "us-east-1".into(),
            start: Utc.with_ymd_and_hms(2024, 3, 1, 0, 0, 0).unwrap(),
            hours: 3,
        };
        let log = |hhmm: &str| {
            format!(
                "p/AWSLogs/111122223333/CloudTrail/us-east-1/2024/03/01/111122223333_CloudTrail_us-east-1_20240301T{hhmm}Z_abc.json.gz"
            )
        };
        let logs = vec![(log("0005"), b"a".to_vec()), (log("0110"), b"b".to_vec()), (log("0400"), b"c".to_vec())];
        let chain = sign_chain(&TestSigner::fixture(), &spec, &logs);
        assert_eq!(chain.len(), 3);
        assert_eq!(chain[0].log_files, [log("0005")]);
        assert_eq!(chain[1].log_files, [log("0110")]);
        assert!(chain[2].log_files.is_empty());
        assert!(chain[2].key.ends_with("_CloudTrail-Digest_us-east-1_t_us-east-1_20240301T030000Z.json.gz"));
        let second: Value = serde_json::from_slice(&chain[1].json).unwrap();
        assert_eq!(second["previousDigestS3Object"], chain[0].key.as_str());
        assert_eq!(second["previousDigestSignature"], chain[0].signature.as_str());
        assert_eq!(chain[0].signature.len(), 512, "2048-bit signature, hex");
        assert_eq!(delivery_time(&log("0110")), Some(Utc.with_ymd_and_hms(2024, 3, 1, 1, 10, 0).unwrap()));
    }
}
