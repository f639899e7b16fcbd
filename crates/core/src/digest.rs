//! CloudTrail digest files: the model, the string CloudTrail signs, signature verification and
//! the chain logic — all pure functions over bytes that were already fetched.
//!
//! Every hour CloudTrail delivers, per trail, account and region, a digest file
//! `AWSLogs/[o-id/]<acct>/CloudTrail-Digest/<region>/YYYY/MM/DD/<acct>_CloudTrail-Digest_<region>_<trail>_<home-region>_<YYYYMMDDTHHMMSSZ>.json.gz`
//! listing the SHA-256 of each log file it delivered in that hour (of the *inflated* bytes), the
//! hash and signature of the previous digest, and nothing else. The signature itself is not in the
//! file: it is the object's S3 metadata (`x-amz-meta-signature`, hex), an RSA PKCS#1 v1.5 /
//! SHA-256 signature over
//!
//! ```text
//! digestEndTime \n digestS3Bucket/digestS3Object \n hex(sha256(inflated digest)) \n previousDigestSignature-or-"null"
//! ```
//!
//! with the key pair of the trail's *home* region whose fingerprint the digest names. Since each
//! digest signs its predecessor's signature, and states its predecessor's hash, the digests form a
//! chain: checking the newest signature and walking back proves every older digest too — even one
//! whose metadata was lost (a local copy made with `aws s3 sync` has none), because its signature is
//! the `previousDigestSignature` its successor signed.
//!
//! [`verify_chain`] does what `aws cloudtrail validate-logs` does, over one chain's digests at
//! once: each digest's location, key and signature, each link, and where the chain breaks —
//! a digest that is referenced but absent ([`GapKind::MissingDigest`], deleted) or a chain that
//! restarts ([`GapKind::ChainRestarted`], logging or validation was off). Fetching, and hashing the
//! log files each valid digest lists, is left to the caller (`parquetrail-ingest`), so every rule
//! here is tested with bytes and no cloud.
//!
//! Keys come from CloudTrail's `ListPublicKeys` (DER; AWS documents PKCS#1 `RSAPublicKey` but its
//! own sample response mixes in `SubjectPublicKeyInfo`, so both are accepted — see
//! [`PublicKey::from_der`]).

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::io::{self, BufRead, BufReader, Read};

use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
use flate2::bufread::MultiGzDecoder;
use rsa::RsaPublicKey;
use rsa::pkcs1::DecodeRsaPublicKey;
use rsa::pkcs1v15::{Signature, VerifyingKey};
use rsa::pkcs8::DecodePublicKey;
use rsa::sha2::Sha256;
use rsa::signature::Verifier;
use serde::{Deserialize, Serialize};
use sha2::Digest as _;

/// The only signature algorithm CloudTrail uses (`digestSignatureAlgorithm`,
/// `x-amz-meta-signature-algorithm`).
pub const SIGNATURE_ALGORITHM: &str = "SHA256withRSA";

/// The keys `aws cloudtrail validate-logs` requires before it looks at a digest any further.
pub const REQUIRED_KEYS: [&str; 6] = [
    "digestPublicKeyFingerprint",
    "digestS3Bucket",
    "digestS3Object",
    "previousDigestSignature",
    "digestEndTime",
    "digestStartTime",
];

/// One digest file, field for field. Every field is optional here because the model must also
/// describe what a tampered or truncated digest says; [`Digest::parse`] enforces
/// [`REQUIRED_KEYS`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Digest {
    pub aws_account_id: Option<String>,
    pub digest_start_time: Option<String>,
    pub digest_end_time: Option<String>,
    pub digest_s3_bucket: Option<String>,
    pub digest_s3_object: Option<String>,
    pub digest_public_key_fingerprint: Option<String>,
    pub digest_signature_algorithm: Option<String>,
    pub newest_event_time: Option<String>,
    pub oldest_event_time: Option<String>,
    pub previous_digest_s3_bucket: Option<String>,
    pub previous_digest_s3_object: Option<String>,
    /// Hex SHA-256 of the previous digest's inflated bytes.
    pub previous_digest_hash_value: Option<String>,
    pub previous_digest_hash_algorithm: Option<String>,
    /// Hex signature of the previous digest (its `x-amz-meta-signature`).
    pub previous_digest_signature: Option<String>,
    #[serde(default)]
    pub log_files: Vec<LogFileEntry>,
}

/// One log file a digest signs.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LogFileEntry {
    pub s3_bucket: Option<String>,
    pub s3_object: Option<String>,
    /// Hex SHA-256 of the log file's inflated bytes.
    pub hash_value: Option<String>,
    pub hash_algorithm: Option<String>,
    pub newest_event_time: Option<String>,
    pub oldest_event_time: Option<String>,
}

/// Why a digest is not valid. The text is what an operator reads in the report.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DigestError {
    #[error("invalid format: {0}")]
    Format(String),
    #[error("has been moved from its original location (it says s3://{bucket}/{key})")]
    Moved { bucket: String, key: String },
    #[error("no signature (x-amz-meta-signature) and no valid successor that signed it")]
    NoSignature,
    #[error("unsupported signature algorithm {0:?}")]
    Algorithm(String),
    #[error("public key not found for fingerprint {0}")]
    UnknownKey(String),
    #[error("signature verification failed")]
    BadSignature,
    #[error("does not match the digest after it ({0})")]
    Link(String),
}

impl Digest {
    /// Parses an inflated digest, requiring [`REQUIRED_KEYS`] (`previousDigestSignature` may be
    /// `null`, but must be there).
    pub fn parse(inflated: &[u8]) -> Result<Digest, DigestError> {
        let value: serde_json::Value =
            serde_json::from_slice(inflated).map_err(|e| DigestError::Format(format!("not JSON: {e}")))?;
        let object = value.as_object().ok_or_else(|| DigestError::Format("not a JSON object".into()))?;
        if let Some(missing) = REQUIRED_KEYS.iter().find(|k| !object.contains_key(**k)) {
            return Err(DigestError::Format(format!("no {missing}")));
        }
        serde_json::from_value(value).map_err(|e| DigestError::Format(e.to_string()))
    }

    /// `digestEndTime`, parsed.
    pub fn end_time(&self) -> Option<DateTime<Utc>> {
        parse_time(self.digest_end_time.as_deref()?)
    }

    /// `digestStartTime`, parsed.
    pub fn start_time(&self) -> Option<DateTime<Utc>> {
        parse_time(self.digest_start_time.as_deref()?)
    }
}

/// An RFC 3339 time as CloudTrail writes it (`2015-08-17T15:01:31Z`).
pub fn parse_time(text: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(text).ok().map(|t| t.with_timezone(&Utc))
}

/// The exact string CloudTrail signs for a digest (step 3 of the CLI's validation).
pub fn signing_string(digest: &Digest, inflated: &[u8]) -> String {
    format!(
        "{}\n{}/{}\n{}\n{}",
        digest.digest_end_time.as_deref().unwrap_or_default(),
        digest.digest_s3_bucket.as_deref().unwrap_or_default(),
        digest.digest_s3_object.as_deref().unwrap_or_default(),
        hex(&sha256(inflated)),
        // `null` when there is no previous digest, to match CloudTrail's Java implementation.
        digest.previous_digest_signature.as_deref().unwrap_or("null"),
    )
}

/// SHA-256 of bytes.
pub fn sha256(bytes: &[u8]) -> [u8; 32] {
    sha2::Sha256::digest(bytes).into()
}

/// Lower-case hex.
pub fn hex(bytes: &[u8]) -> String {
    use fmt::Write as _;
    bytes.iter().fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

/// Decodes hex (either case); `None` if it is not hex.
pub fn unhex(text: &str) -> Option<Vec<u8>> {
    let text = text.trim();
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len()).step_by(2).map(|i| text.get(i..i + 2).and_then(|pair| u8::from_str_radix(pair, 16).ok())).collect()
}

/// The largest digest file read, in inflated bytes. A real digest lists the log files of one hour
/// of one account and Region — at most a few thousand, well under a megabyte — so anything near
/// this is not a digest but a decompression bomb, refused before it can exhaust memory.
pub const MAX_DIGEST_BYTES: u64 = 32 << 20;

/// Inflates a digest file: gzip (every member) when it starts with the gzip magic, the bytes as
/// they are otherwise (a local copy someone already gunzipped). More than `limit` inflated bytes
/// is an [`io::ErrorKind::InvalidData`] error (permanent: the same bytes never get smaller),
/// reported without holding more than the limit.
pub fn inflate(reader: impl Read, limit: u64) -> io::Result<Vec<u8>> {
    let mut out = Vec::new();
    inflated_reader(reader)?.take(limit.saturating_add(1)).read_to_end(&mut out)?;
    if out.len() as u64 > limit {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("more than {limit} bytes once inflated, far more than any digest file: not read further"),
        ));
    }
    Ok(out)
}

/// SHA-256 of the inflated bytes of a stream, without holding them: what a digest's
/// `logFiles[].hashValue` states (and what the converter records as `FileReport::sha256`).
pub fn inflated_sha256(reader: impl Read) -> io::Result<[u8; 32]> {
    let mut inflated = inflated_reader(reader)?;
    let mut hasher = sha2::Sha256::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = inflated.read(&mut buf)?;
        if n == 0 {
            return Ok(hasher.finalize().into());
        }
        hasher.update(&buf[..n]);
    }
}

fn inflated_reader<'r>(reader: impl Read + 'r) -> io::Result<Box<dyn Read + 'r>> {
    let mut buffered = BufReader::new(reader);
    let gzip = buffered.fill_buf()?.starts_with(&[0x1f, 0x8b]);
    Ok(if gzip { Box::new(MultiGzDecoder::new(buffered)) } else { Box::new(buffered) })
}

/// An RSA public key that verifies digest signatures.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicKey(RsaPublicKey);

/// Why public keys could not be read.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// The bytes are neither encoding of an RSA public key.
    #[error("not a PKCS#1 or SubjectPublicKeyInfo RSA public key: {0}")]
    Der(rsa::pkcs8::spki::Error),
    /// The text is not what `aws cloudtrail list-public-keys` prints.
    #[error("expected the JSON of `aws cloudtrail list-public-keys`: {0}")]
    List(#[source] serde_json::Error),
    #[error("key {fingerprint}: Value is not base64: {source}")]
    Base64 {
        fingerprint: String,
        #[source]
        source: base64::DecodeError,
    },
    /// One listed key is not a key.
    #[error("key {fingerprint}: {source}")]
    Listed {
        fingerprint: String,
        #[source]
        source: Box<KeyError>,
    },
}

impl PublicKey {
    /// Reads a DER public key: PKCS#1 `RSAPublicKey` (what the API reference says `Value` is) or
    /// X.509 `SubjectPublicKeyInfo` (what part of AWS's own sample response is). Both are tried
    /// because AWS warns that the encoding "is subject to change".
    pub fn from_der(der: &[u8]) -> Result<PublicKey, KeyError> {
        RsaPublicKey::from_pkcs1_der(der)
            .or_else(|_| RsaPublicKey::from_public_key_der(der))
            .map(PublicKey)
            .map_err(KeyError::Der)
    }

    /// Whether `signature` is this key's RSA PKCS#1 v1.5 signature of SHA-256(`message`).
    pub fn verify(&self, message: &[u8], signature: &[u8]) -> bool {
        let Ok(signature) = Signature::try_from(signature) else { return false };
        VerifyingKey::<Sha256>::new(self.0.clone()).verify(message, &signature).is_ok()
    }
}

/// The public keys to verify with, by fingerprint (`digestPublicKeyFingerprint`).
#[derive(Debug, Clone, Default)]
pub struct PublicKeys {
    by_fingerprint: BTreeMap<String, PublicKey>,
}

impl PublicKeys {
    pub fn insert(&mut self, fingerprint: &str, key: PublicKey) {
        self.by_fingerprint.insert(fingerprint.trim().to_ascii_lowercase(), key);
    }

    /// Adds every key of `other`.
    pub fn extend(&mut self, other: PublicKeys) {
        self.by_fingerprint.extend(other.by_fingerprint);
    }

    pub fn get(&self, fingerprint: &str) -> Option<&PublicKey> {
        self.by_fingerprint.get(&fingerprint.trim().to_ascii_lowercase())
    }

    pub fn len(&self) -> usize {
        self.by_fingerprint.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_fingerprint.is_empty()
    }

    /// Reads what `aws cloudtrail list-public-keys` prints — `{"PublicKeyList": [{"Fingerprint":
    /// "…", "Value": "<base64 DER>", …}]}` — or a JSON array of such objects (one per home
    /// region), so keys saved ahead of time allow offline verification.
    pub fn from_list_json(text: &[u8]) -> Result<PublicKeys, KeyError> {
        use base64::Engine as _;
        #[derive(Deserialize)]
        #[serde(rename_all = "PascalCase")]
        struct Listed {
            fingerprint: String,
            value: String,
        }
        #[derive(Deserialize)]
        #[serde(rename_all = "PascalCase")]
        struct List {
            public_key_list: Vec<Listed>,
        }
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum File {
            One(List),
            Many(Vec<List>),
        }
        let file: File = serde_json::from_slice(text).map_err(KeyError::List)?;
        let lists = match file {
            File::One(list) => vec![list],
            File::Many(lists) => lists,
        };
        let mut keys = PublicKeys::default();
        for listed in lists.into_iter().flat_map(|l| l.public_key_list) {
            let fingerprint = &listed.fingerprint;
            let der = base64::engine::general_purpose::STANDARD
                .decode(listed.value.trim())
                .map_err(|source| KeyError::Base64 { fingerprint: fingerprint.clone(), source })?;
            let key = PublicKey::from_der(&der)
                .map_err(|e| KeyError::Listed { fingerprint: fingerprint.clone(), source: Box::new(e) })?;
            keys.insert(&listed.fingerprint, key);
        }
        Ok(keys)
    }
}

/// What a digest's key says: which chain it belongs to and when it was delivered.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct DigestKey {
    /// The chain: one per trail, account and source region.
    pub chain: ChainId,
    /// The timestamp in the file name (≈ `digestEndTime`).
    pub time: NaiveDateTime,
}

/// One digest chain: a trail's digests for one account and one source region.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct ChainId {
    pub org_id: Option<String>,
    pub account: String,
    /// The region whose logs the chain signs.
    pub region: String,
    pub trail: String,
    /// The trail's home region: where its signing keys live.
    pub home_region: String,
}

impl fmt::Display for ChainId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(org) = &self.org_id {
            write!(f, "{org}/")?;
        }
        write!(f, "{}/{}/{} (home {})", self.account, self.region, self.trail, self.home_region)
    }
}

impl DigestKey {
    /// Parses `…/<acct>_CloudTrail-Digest_<region>_<trail>_<home-region>_<YYYYMMDDTHHMMSSZ>.json.gz`.
    /// Trail names may contain `_`; regions never do, so the name is split from both ends.
    pub fn parse(key: &str) -> Option<DigestKey> {
        let parsed = crate::object_key::ObjectKey::parse(key);
        let name = parsed.file_name.strip_suffix(".json.gz").or_else(|| parsed.file_name.strip_suffix(".json"))?;
        let (rest, stamp) = name.rsplit_once('_')?;
        let (rest, home_region) = rest.rsplit_once('_')?;
        let (account, rest) = rest.split_once("_CloudTrail-Digest_")?;
        let (region, trail) = rest.split_once('_')?;
        let time = NaiveDateTime::parse_from_str(stamp, "%Y%m%dT%H%M%SZ").ok()?;
        if account.is_empty() || region.is_empty() || trail.is_empty() || home_region.is_empty() {
            return None;
        }
        Some(DigestKey {
            chain: ChainId {
                org_id: parsed.org_id.map(str::to_string),
                account: account.to_string(),
                region: region.to_string(),
                trail: trail.to_string(),
                home_region: home_region.to_string(),
            },
            time,
        })
    }
}

/// A digest object as fetched: where from, its S3 metadata signature, and its inflated bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchedDigest {
    /// The bucket it was read from (`None` for a local copy, where only the key is checked).
    pub bucket: Option<String>,
    pub key: String,
    /// `x-amz-meta-signature` (hex), if the object had it.
    pub signature: Option<String>,
    /// `x-amz-meta-signature-algorithm`, if the object had it.
    pub signature_algorithm: Option<String>,
    /// The inflated bytes, or why they could not be had (corrupt gzip).
    pub inflated: Result<Vec<u8>, String>,
}

/// The verdict on one digest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DigestVerdict {
    pub bucket: Option<String>,
    pub key: String,
    pub valid: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub start_time: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub end_time: Option<String>,
    /// The log files it signs (trusted only when `valid`).
    #[serde(skip)]
    pub log_files: Vec<LogFileEntry>,
    /// The parsed digest (absent when it could not be parsed).
    #[serde(skip)]
    pub digest: Option<Digest>,
    /// The signature it was verified with: its metadata, or its successor's word for it.
    #[serde(skip)]
    pub signature: Option<String>,
    /// Hex SHA-256 of its inflated bytes.
    #[serde(skip)]
    pub sha256: Option<String>,
}

/// How a chain breaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum GapKind {
    /// A digest names its predecessor, which is not there: it was deleted (or moved). The log
    /// files it signed are not proven by anything.
    MissingDigest,
    /// A starting digest (no predecessor) follows older digests: CloudTrail stopped logging or
    /// log file validation was off in between, and nothing was signed for that time.
    ChainRestarted,
    /// A digest's predecessor is neither present nor older than the range, nor a starting
    /// digest: the chain does not link up (a forked chain, or one that moved buckets).
    Unlinked,
}

/// A break in a chain, between a newer and an older digest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Gap {
    pub kind: GapKind,
    /// The digest after the gap (whose predecessor is missing, or that starts a new chain).
    pub newer: String,
    /// The next older digest found, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub older: Option<String>,
    /// The digest `newer` names as its predecessor, for [`GapKind::MissingDigest`].
    #[serde(skip_serializing_if = "Option::is_none")]
    pub missing: Option<String>,
    /// The time not covered: from the older digest's `digestEndTime` (when known)…
    #[serde(skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    /// …to the newer digest's `digestStartTime`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub to: Option<String>,
}

/// The verdict on one chain's digests.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ChainReport {
    /// Newest first.
    pub digests: Vec<DigestVerdict>,
    pub gaps: Vec<Gap>,
}

/// Verifies one chain's digests (as listed and fetched for a range) against `keys`.
///
/// `window_start`: the time from which digests were listed. A predecessor named with an older
/// timestamp lies outside what was listed, so the chain simply continues before the range; a
/// predecessor inside the window that is not among `digests` was deleted. `None`: everything
/// was listed.
///
/// The walk follows the CLI: newest first, each digest checked on its own (location, format,
/// key, signature), then linked to the predecessor it names — whose inflated bytes must hash to
/// the `previousDigestHashValue`, and whose signature must be the `previousDigestSignature`, that
/// the newer, valid digest signed. An invalid digest vouches for nothing: its log files are not
/// trusted and its predecessor is checked on its own.
pub fn verify_chain(
    digests: Vec<FetchedDigest>,
    keys: &PublicKeys,
    window_start: Option<NaiveDateTime>,
) -> ChainReport {
    let mut digests = digests;
    let time_of = |key: &str| DigestKey::parse(key).map(|k| k.time);
    // Newest first; the key breaks ties so the order is total.
    digests.sort_by(|a, b| (time_of(&b.key), &b.key).cmp(&(time_of(&a.key), &a.key)));
    let index: HashMap<String, usize> = digests.iter().enumerate().map(|(i, d)| (d.key.clone(), i)).collect();
    let mut verdicts: Vec<Option<DigestVerdict>> = vec![None; digests.len()];
    // Segments of linked digests, newest first within and across.
    let mut segments: Vec<Vec<usize>> = Vec::new();
    for first in 0..digests.len() {
        if verdicts[first].is_some() {
            continue;
        }
        let mut segment = vec![first];
        let mut verdict = check(&digests[first], keys, None);
        loop {
            let at = *segment.last().expect("non-empty");
            let next = match (&verdict.valid, verdict.digest.as_ref()) {
                (true, Some(d)) => predecessor(d, &digests[at]).and_then(|key| index.get(key).copied()),
                _ => None,
            }
            .filter(|&i| verdicts[i].is_none() && i > at);
            let link = next.map(|_| verdict.clone());
            verdicts[at] = Some(verdict);
            let Some(older) = next else { break };
            verdict = check(&digests[older], keys, link.as_ref());
            segment.push(older);
        }
        segments.push(segment);
    }
    let verdicts: Vec<DigestVerdict> = verdicts.into_iter().map(|v| v.expect("every digest visited")).collect();
    let mut gaps = Vec::new();
    for (n, segment) in segments.iter().enumerate() {
        let last = &verdicts[*segment.last().expect("non-empty")];
        let next_older = segments.get(n + 1).map(|s| &verdicts[s[0]]);
        let Some(digest) = last.digest.as_ref().filter(|_| last.valid) else {
            continue; // an invalid digest is the finding; it vouches for no predecessor
        };
        let gap = |kind, missing: Option<&str>| Gap {
            kind,
            newer: last.key.clone(),
            older: next_older.map(|v| v.key.clone()),
            missing: missing.map(str::to_string),
            from: next_older.and_then(|v| v.end_time.clone()),
            to: last.start_time.clone(),
        };
        match predecessor(digest, &digests[*segment.last().expect("non-empty")]) {
            None if digest.previous_digest_s3_object.is_none() => {
                if next_older.is_some() {
                    gaps.push(gap(GapKind::ChainRestarted, None));
                }
            }
            None => gaps.push(gap(GapKind::Unlinked, digest.previous_digest_s3_object.as_deref())),
            Some(missing) => {
                let before_window = match (window_start, time_of(missing)) {
                    (Some(start), Some(t)) => t < start,
                    _ => false,
                };
                if index.contains_key(missing) {
                    gaps.push(gap(GapKind::Unlinked, Some(missing)));
                } else if !before_window {
                    gaps.push(gap(GapKind::MissingDigest, Some(missing)));
                } else if next_older.is_some() {
                    gaps.push(gap(GapKind::Unlinked, Some(missing)));
                }
            }
        }
    }
    ChainReport { digests: verdicts, gaps }
}

/// The predecessor key a digest names, when it names one in the bucket it was read from.
fn predecessor<'d>(digest: &'d Digest, fetched: &FetchedDigest) -> Option<&'d str> {
    let key = digest.previous_digest_s3_object.as_deref()?;
    let same_bucket = match (&fetched.bucket, &digest.previous_digest_s3_bucket) {
        (Some(b), Some(p)) => b == p,
        _ => true,
    };
    // A local copy has the keys relative to its root: match the part from AWSLogs/ on.
    let local = fetched.bucket.is_none();
    same_bucket.then(|| if local { strip_to_layout(key, &fetched.key) } else { key })
}

/// For a local copy, maps a key as CloudTrail wrote it (with the trail prefix) onto the local
/// layout (relative to the copied root), by the part both share.
fn strip_to_layout<'k>(key: &'k str, local_like: &str) -> &'k str {
    let source = crate::object_key::ObjectKey::parse(key);
    let local = crate::object_key::ObjectKey::parse(local_like);
    match (source.prefix, local.prefix) {
        (Some(p), None) => &key[p.len() + 1..],
        _ => key,
    }
}

/// Checks one digest on its own and, when `newer` is its valid successor, the link between them.
fn check(fetched: &FetchedDigest, keys: &PublicKeys, newer: Option<&DigestVerdict>) -> DigestVerdict {
    let mut verdict = DigestVerdict {
        bucket: fetched.bucket.clone(),
        key: fetched.key.clone(),
        valid: false,
        reason: None,
        start_time: None,
        end_time: None,
        log_files: Vec::new(),
        digest: None,
        signature: fetched.signature.clone(),
        sha256: None,
    };
    let result = (|| {
        let inflated = fetched.inflated.as_ref().map_err(|e| DigestError::Format(e.clone()))?;
        verdict.sha256 = Some(hex(&sha256(inflated)));
        let digest = Digest::parse(inflated)?;
        verdict.start_time.clone_from(&digest.digest_start_time);
        verdict.end_time.clone_from(&digest.digest_end_time);
        verdict.digest = Some(digest.clone());
        let (bucket, key) =
            (digest.digest_s3_bucket.clone().unwrap_or_default(), digest.digest_s3_object.clone().unwrap_or_default());
        let here = match &fetched.bucket {
            Some(b) => *b == bucket && key == fetched.key,
            None => key == fetched.key || key.ends_with(&format!("/{}", fetched.key)),
        };
        if !here {
            return Err(DigestError::Moved { bucket, key });
        }
        for algorithm in [&fetched.signature_algorithm, &digest.digest_signature_algorithm].into_iter().flatten() {
            if algorithm != SIGNATURE_ALGORITHM {
                return Err(DigestError::Algorithm(algorithm.clone()));
            }
        }
        // What the valid successor signed about this digest binds it as firmly as its own
        // signature, and is all there is when the metadata is gone.
        let vouched = newer.and_then(|n| n.digest.as_ref()).filter(|_| newer.is_some_and(|n| n.valid));
        if let Some(successor) = vouched {
            let stated = successor.previous_digest_hash_value.as_deref().unwrap_or_default();
            if !stated.eq_ignore_ascii_case(verdict.sha256.as_deref().unwrap_or_default()) {
                return Err(DigestError::Link("its SHA-256 is not the previousDigestHashValue".into()));
            }
            let signed = successor.previous_digest_signature.clone();
            match (&fetched.signature, &signed) {
                (Some(own), Some(signed)) if !own.eq_ignore_ascii_case(signed) => {
                    return Err(DigestError::Link("its signature is not the previousDigestSignature".into()));
                }
                (None, Some(_)) => verdict.signature = signed,
                _ => {}
            }
        }
        let signature = verdict.signature.as_deref().ok_or(DigestError::NoSignature)?;
        let fingerprint = digest.digest_public_key_fingerprint.as_deref().unwrap_or_default();
        let key = keys.get(fingerprint).ok_or_else(|| DigestError::UnknownKey(fingerprint.to_string()))?;
        let signature = unhex(signature).ok_or(DigestError::BadSignature)?;
        if !key.verify(signing_string(&digest, inflated).as_bytes(), &signature) {
            return Err(DigestError::BadSignature);
        }
        verdict.log_files = digest.log_files;
        Ok(())
    })();
    match result {
        Ok(()) => verdict.valid = true,
        Err(e) => verdict.reason = Some(e.to_string()),
    }
    verdict
}

/// The time window of delivery dates `start..=end` as digest key times: digests are listed from
/// `start` 00:00, and up to an hour past `end + 1` 00:00 so the digest signing the last
/// deliveries of `end` is included.
pub fn key_window(start: Option<NaiveDate>, end: Option<NaiveDate>) -> (Option<NaiveDateTime>, Option<NaiveDateTime>) {
    let from = start.and_then(|d| d.and_hms_opt(0, 0, 0));
    let to = end.and_then(|d| d.succ_opt()).and_then(|d| d.and_hms_opt(1, 0, 0));
    (from, to)
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXAMPLE: &str = r#"{"awsAccountId":"111122223333","digestStartTime":"2015-08-17T14:01:31Z","digestEndTime":"2015-08-17T15:01:31Z","digestS3Bucket":"b","digestS3Object":"AWSLogs/111122223333/CloudTrail-Digest/us-east-2/2015/08/17/111122223333_CloudTrail-Digest_us-east-2_my_trail_us-east-2_20150817T150131Z.json.gz","digestPublicKeyFingerprint":"31e8b5433410dfb61a9dc45cc65b22ff","digestSignatureAlgorithm":"SHA256withRSA","newestEventTime":null,"oldestEventTime":null,"previousDigestS3Bucket":null,"previousDigestS3Object":null,"previousDigestHashValue":null,"previousDigestHashAlgorithm":null,"previousDigestSignature":null,"logFiles":[]}"#;

    #[test]
    fn parses_requires_keys_and_builds_the_signing_string() {
        let d = Digest::parse(EXAMPLE.as_bytes()).unwrap();
        assert_eq!(d.aws_account_id.as_deref(), Some("111122223333"));
        let want = format!(
            "2015-08-17T15:01:31Z\nb/{}\n{}\nnull",
            d.digest_s3_object.as_deref().unwrap(),
            hex(&sha256(EXAMPLE.as_bytes()))
        );
        assert_eq!(signing_string(&d, EXAMPLE.as_bytes()), want);
        let with_previous = Digest { previous_digest_signature: Some("ab12".into()), ..d.clone() };
        assert!(signing_string(&with_previous, b"x").ends_with("\nab12"));
        for key in REQUIRED_KEYS {
            let mut v: serde_json::Value = serde_json::from_str(EXAMPLE).unwrap();
            v.as_object_mut().unwrap().remove(key);
            let err = Digest::parse(v.to_string().as_bytes()).unwrap_err();
            assert_eq!(err, DigestError::Format(format!("no {key}")), "{key}");
        }
        assert!(matches!(Digest::parse(b"[1]"), Err(DigestError::Format(_))));
    }

    #[test]
    fn parses_digest_keys() {
        let cases = [
            (
                "p/AWSLogs/o-abc/111122223333/CloudTrail-Digest/eu-west-1/2024/03/01/111122223333_CloudTrail-Digest_eu-west-1_org_trail_us-east-1_20240301T010203Z.json.gz",
                Some((Some("o-abc"), "111122223333", "eu-west-1", "org_trail", "us-east-1", "2024-03-01T01:02:03")),
            ),
            (
                "AWSLogs/1/CloudTrail-Digest/r/2024/03/01/1_CloudTrail-Digest_r_t_h_20240301T000000Z.json.gz",
                Some((None, "1", "r", "t", "h", "2024-03-01T00:00:00")),
            ),
            ("AWSLogs/1/CloudTrail/r/2024/03/01/1_CloudTrail_r_20240301T0000Z_abc.json.gz", None),
            ("AWSLogs/1/CloudTrail-Digest/r/2024/03/01/1_CloudTrail-Digest_r_t_h_bogus.json.gz", None),
        ];
        for (key, want) in cases {
            let got = DigestKey::parse(key).map(|k| {
                (
                    k.chain.org_id.clone(),
                    k.chain.account.clone(),
                    k.chain.region.clone(),
                    k.chain.trail.clone(),
                    k.chain.home_region.clone(),
                    k.time.format("%Y-%m-%dT%H:%M:%S").to_string(),
                )
            });
            let want = want.map(|(o, a, r, t, h, time)| {
                (o.map(String::from), a.into(), r.into(), t.into(), h.into(), time.to_string())
            });
            assert_eq!(got, want, "{key}");
        }
    }

    #[test]
    fn hex_and_inflation() {
        assert_eq!(unhex("00ff10"), Some(vec![0, 255, 16]));
        assert_eq!(unhex("0g"), None);
        assert_eq!(unhex("abc"), None);
        assert_eq!(hex(&[0, 255, 16]), "00ff10");
        let mut gz = Vec::new();
        for part in [&b"hello "[..], b"world"] {
            use std::io::Write as _;
            let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            e.write_all(part).unwrap();
            gz.extend(e.finish().unwrap());
        }
        assert_eq!(inflate(&gz[..], MAX_DIGEST_BYTES).unwrap(), b"hello world");
        assert_eq!(inflated_sha256(&gz[..]).unwrap(), sha256(b"hello world"));
        assert_eq!(inflated_sha256(&b"plain"[..]).unwrap(), sha256(b"plain"));
    }

    #[test]
    fn key_window_spans_the_range_and_the_next_hour() {
        let d = |s: &str| NaiveDate::parse_from_str(s, "%Y-%m-%d").ok();
        let (from, to) = key_window(d("2024-03-01"), d("2024-03-02"));
        assert_eq!(from.unwrap().to_string(), "2024-03-01 00:00:00");
        assert_eq!(to.unwrap().to_string(), "2024-03-03 01:00:00");
        assert_eq!(key_window(None, None), (None, None));
    }

    mod signed {
        use super::super::*;
        use chrono::TimeZone;
        use parquetrail_synth::digest::{
            ChainSpec, SignedDigest, TEST_PUBLIC_KEY_PKCS1_DER, TEST_PUBLIC_KEY_SPKI_DER, TestSigner, sign_chain,
        };

        fn spec(start_hour: u32, hours: usize) -> ChainSpec {
            ChainSpec {
                bucket: "trail".into(),
                prefix: None,
                org_id: None,
                account: "111122223333".into(),
                region: "us-east-1".into(),
                trail: "main".into(),
                home_region: "us-east-1".into(),
                start: Utc.with_ymd_and_hms(2024, 3, 1, start_hour, 0, 0).unwrap(),
                hours,
            }
        }

        fn keys() -> PublicKeys {
            PublicKeys::from_list_json(TestSigner::fixture().public_keys_json(false).as_bytes()).unwrap()
        }

        fn fetched(d: &SignedDigest) -> FetchedDigest {
            FetchedDigest {
                bucket: Some("trail".into()),
                key: d.key.clone(),
                signature: Some(d.signature.clone()),
                signature_algorithm: Some("SHA256withRSA".into()),
                inflated: Ok(d.json.clone()),
            }
        }

        fn chain(hours: usize) -> Vec<FetchedDigest> {
            let logs = vec![(
                "AWSLogs/111122223333/CloudTrail/us-east-1/2024/03/01/111122223333_CloudTrail_us-east-1_20240301T0005Z_a.json.gz"
                    .to_string(),
                b"{}".to_vec(),
            )];
            sign_chain(&TestSigner::fixture(), &spec(0, hours), &logs).iter().map(fetched).collect()
        }

        type Outcome = (Vec<(usize, String)>, Vec<(GapKind, usize, Option<usize>)>);

        /// (key index in the chain, reason) of every invalid digest, and the gaps as
        /// (kind, newer, missing) by index; keys are named by their position, oldest 0.
        fn outcome(report: &ChainReport, all: &[FetchedDigest]) -> Outcome {
            let pos = |k: &str| all.iter().position(|d| d.key == k).unwrap();
            let invalid =
                report.digests.iter().filter(|v| !v.valid).map(|v| (pos(&v.key), v.reason.clone().unwrap())).collect();
            let gaps = report.gaps.iter().map(|g| (g.kind, pos(&g.newer), g.missing.as_deref().map(pos))).collect();
            (invalid, gaps)
        }

        #[test]
        fn signatures_verify_with_pkcs1_and_spki_keys_and_fail_when_broken() {
            let signer = TestSigner::fixture();
            let message = b"2024-03-01T01:00:00Z\nb/k\nabc\nnull";
            let signature = signer.sign(message);
            for der in [TEST_PUBLIC_KEY_PKCS1_DER, TEST_PUBLIC_KEY_SPKI_DER] {
                let key = PublicKey::from_der(der).unwrap();
                assert!(key.verify(message, &signature));
                assert!(!key.verify(b"another message", &signature));
                let mut flipped = signature.clone();
                flipped[10] ^= 1;
                assert!(!key.verify(message, &flipped));
                assert!(!key.verify(message, &signature[1..]));
            }
            assert!(PublicKey::from_der(b"not a key").is_err());
            for spki in [false, true] {
                let keys = PublicKeys::from_list_json(signer.public_keys_json(spki).as_bytes()).unwrap();
                assert_eq!(keys.len(), 1);
                assert!(keys.get(&signer.fingerprint.to_uppercase()).is_some());
            }
            let two = format!("[{},{}]", signer.public_keys_json(false), signer.public_keys_json(true));
            assert_eq!(PublicKeys::from_list_json(two.as_bytes()).unwrap().len(), 1);
            assert!(PublicKeys::from_list_json(br#"{"PublicKeyList":[{"Fingerprint":"x","Value":"!!"}]}"#).is_err());
        }

        #[test]
        fn an_untouched_chain_verifies() {
            let all = chain(4);
            let report = verify_chain(all.clone(), &keys(), None);
            assert_eq!(outcome(&report, &all), (vec![], vec![]));
            assert_eq!(report.digests.len(), 4);
            assert!(report.digests[0].key > report.digests[3].key, "newest first");
            assert_eq!(report.digests[3].log_files.len(), 1, "the first hour's log file is signed");
        }

        #[test]
        fn each_tampering_is_reported_precisely() {
            let all = chain(4);
            let keys = keys();
            let run = |digests: Vec<FetchedDigest>, window| {
                let report = verify_chain(digests, &keys, window);
                outcome(&report, &all)
            };
            // Metadata lost (a local copy): each digest is vouched for by its valid successor…
            let mut no_meta = all.clone();
            for d in &mut no_meta[..3] {
                d.signature = None;
            }
            assert_eq!(run(no_meta.clone(), None), (vec![], vec![]));
            // …so without the newest one's signature nothing can be proven.
            no_meta[3].signature = None;
            let (invalid, gaps) = run(no_meta, None);
            assert_eq!((invalid.len(), &invalid[0], gaps), (4, &(3, DigestError::NoSignature.to_string()), vec![]));
            // A broken signature: that digest only.
            let mut broken = all.clone();
            broken[2].signature = Some(broken[2].signature.clone().unwrap().replace('a', "b").replace('0', "1"));
            let (invalid, gaps) = run(broken, None);
            assert_eq!(invalid.len(), 1);
            assert_eq!(invalid[0].0, 2);
            assert!(invalid[0].1.contains("signature"), "{invalid:?}");
            assert_eq!(gaps, vec![]);
            // A modified digest: the successor's hash of it no longer matches.
            let mut modified = all.clone();
            modified[1].inflated = Ok(String::from_utf8(all[1].inflated.clone().unwrap())
                .unwrap()
                .replace("SHA-256", "SHA-257")
                .into_bytes());
            let (invalid, gaps) = run(modified, None);
            assert_eq!((invalid.len(), invalid[0].0, gaps), (1, 1, vec![]));
            // A deleted digest: a gap naming it, between its neighbours.
            let mut deleted = all.clone();
            deleted.remove(2);
            assert_eq!(run(deleted, None), (vec![], vec![(GapKind::MissingDigest, 3, Some(2))]));
            // The oldest listed digest's predecessor is before the listing window: no gap.
            let tail = all[1..].to_vec();
            let window = DigestKey::parse(&all[1].key).map(|k| k.time - chrono::Duration::minutes(30));
            assert_eq!(run(tail.clone(), window), (vec![], vec![]));
            assert_eq!(run(tail, None), (vec![], vec![(GapKind::MissingDigest, 1, Some(0))]));
            // A digest served from another key than its own.
            let mut moved = all.clone();
            moved[0].key = moved[0].key.replace("main", "other");
            let report = verify_chain(moved, &keys, None);
            let invalid: Vec<&DigestVerdict> = report.digests.iter().filter(|v| !v.valid).collect();
            assert!(invalid.len() == 1 && invalid[0].reason.as_deref().unwrap().contains("moved"), "{invalid:?}");
            // An unknown fingerprint.
            let report = verify_chain(all.clone(), &PublicKeys::default(), None);
            assert!(
                report.digests.iter().all(|v| v.reason.as_deref().is_some_and(|r| r.contains("public key not found")))
            );
        }

        #[test]
        fn a_restarted_chain_is_a_gap() {
            let signer = TestSigner::fixture();
            let mut digests: Vec<FetchedDigest> = sign_chain(&signer, &spec(0, 2), &[]).iter().map(fetched).collect();
            digests.extend(sign_chain(&signer, &spec(5, 2), &[]).iter().map(fetched));
            let report = verify_chain(digests.clone(), &keys(), None);
            assert_eq!(outcome(&report, &digests), (vec![], vec![(GapKind::ChainRestarted, 2, None)]));
            let gap = &report.gaps[0];
            assert_eq!(
                (gap.from.as_deref(), gap.to.as_deref()),
                (Some("2024-03-01T02:00:00Z"), Some("2024-03-01T05:00:00Z"))
            );
            assert_eq!(gap.older.as_deref(), Some(digests[1].key.as_str()));
        }
    }
}
