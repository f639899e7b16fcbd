//! `NextToken`: the backend's cursor, sealed to the query it belongs to.
//!
//! A token is `base64url(version ‖ HMAC-SHA-256(key, fingerprint ‖ cursor) ‖ cursor)`, where the
//! fingerprint is a SHA-256 of every query parameter except `MaxResults` and `NextToken` (a client
//! may change its page size between pages, as the AWS CLI's `--page-size` allows), including the
//! Region scope. So a token is valid only with the parameters that produced it, and only on a
//! server holding the key; anything else is `InvalidNextTokenException`. The cursor is signed, not
//! encrypted: backends must not put secrets in it.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

use crate::backend::{EventCategory, LookupQuery};
use crate::fault::Fault;

const VERSION: u8 = 1;
const MAC_LEN: usize = 32;

/// The key that seals tokens. Random per server start unless one is configured.
#[derive(Clone)]
pub struct TokenKey([u8; 32]);

impl TokenKey {
    /// A key from the operating system's random source.
    pub fn random() -> TokenKey {
        let mut key = [0; 32];
        // Without a random source there is no safe key; this only fails on exotic platforms.
        getrandom::fill(&mut key).expect("the operating system's random source is available");
        TokenKey(key)
    }

    /// A fixed key, so tokens stay valid across restarts or across servers behind one address.
    pub fn from_bytes(key: [u8; 32]) -> TokenKey {
        TokenKey(key)
    }

    fn mac(&self, fingerprint: &[u8; 32], cursor: &[u8]) -> Hmac<Sha256> {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.0).expect("HMAC takes a key of any length");
        mac.update(fingerprint);
        mac.update(cursor);
        mac
    }

    /// Seals `cursor` to `query`.
    pub(crate) fn seal(&self, query: &LookupQuery, cursor: &str) -> String {
        self.seal_to(&fingerprint(query), cursor)
    }

    /// The cursor sealed in `token`, if it was sealed by this key for this query.
    pub(crate) fn open(&self, query: &LookupQuery, token: &str) -> Result<String, Fault> {
        self.open_from(&fingerprint(query), token)
    }

    /// Seals `cursor` to a request's `fingerprint` (a SHA-256 of the parameters that define its
    /// answer, every one but `MaxResults` and `NextToken`).
    pub(crate) fn seal_to(&self, fingerprint: &[u8; 32], cursor: &str) -> String {
        let tag = self.mac(fingerprint, cursor.as_bytes()).finalize().into_bytes();
        let mut raw = Vec::with_capacity(1 + MAC_LEN + cursor.len());
        raw.push(VERSION);
        raw.extend_from_slice(&tag);
        raw.extend_from_slice(cursor.as_bytes());
        URL_SAFE_NO_PAD.encode(raw)
    }

    /// The cursor sealed in `token`, if it was sealed by this key to `fingerprint`.
    pub(crate) fn open_from(&self, fingerprint: &[u8; 32], token: &str) -> Result<String, Fault> {
        let invalid = || {
            Fault::invalid_next_token(
                "NextToken is not valid here: it was not issued by this server, was altered, or was issued for \
                 different request parameters (only MaxResults may change between pages)",
            )
        };
        let raw = URL_SAFE_NO_PAD.decode(token).map_err(|_| invalid())?;
        if raw.len() < 1 + MAC_LEN || raw[0] != VERSION {
            return Err(invalid());
        }
        let (tag, cursor) = raw[1..].split_at(MAC_LEN);
        // `verify_slice` compares in constant time.
        self.mac(fingerprint, cursor).verify_slice(tag).map_err(|_| invalid())?;
        String::from_utf8(cursor.to_vec()).map_err(|_| invalid())
    }
}

impl std::fmt::Debug for TokenKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TokenKey(<redacted>)")
    }
}

/// SHA-256 over an unambiguous encoding (every variable part length-prefixed) of the parameters
/// that define a lookup's result set. Attributes are sorted: their order does not change the answer.
fn fingerprint(query: &LookupQuery) -> [u8; 32] {
    fn field(hash: &mut Sha256, bytes: &[u8]) {
        hash.update((bytes.len() as u64).to_be_bytes());
        hash.update(bytes);
    }
    fn time(hash: &mut Sha256, time: Option<chrono::DateTime<chrono::Utc>>) {
        match time {
            None => hash.update([0]),
            Some(t) => {
                hash.update([1]);
                hash.update(t.timestamp().to_be_bytes());
                hash.update(t.timestamp_subsec_nanos().to_be_bytes());
            }
        }
    }
    let mut hash = Sha256::new();
    hash.update(b"parquetrail LookupEvents v1");
    let mut attributes: Vec<_> = query.attributes.iter().collect();
    attributes.sort();
    hash.update((attributes.len() as u64).to_be_bytes());
    for attribute in attributes {
        field(&mut hash, attribute.key.as_str().as_bytes());
        field(&mut hash, attribute.value.as_bytes());
    }
    time(&mut hash, query.start);
    time(&mut hash, query.end);
    hash.update([match query.category {
        EventCategory::Events => 0,
        EventCategory::Insights => 1,
    }]);
    match &query.region {
        None => hash.update([0]),
        Some(region) => {
            hash.update([1]);
            field(&mut hash, region.as_bytes());
        }
    }
    hash.finalize().into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::{AttributeKey, LookupAttribute};

    fn query() -> LookupQuery {
        LookupQuery {
            attributes: vec![LookupAttribute { key: AttributeKey::EventName, value: "RunInstances".into() }],
            start: chrono::DateTime::from_timestamp(1_700_000_000, 0),
            end: None,
            category: EventCategory::Events,
            region: Some("us-east-1".into()),
            max_results: 50,
            cursor: None,
        }
    }

    #[test]
    fn a_token_opens_only_for_its_query_and_key() {
        let key = TokenKey::random();
        let token = key.seal(&query(), "cursor:42");
        assert_eq!(key.open(&query(), &token).unwrap(), "cursor:42");
        // Page size and cursor are not part of the fingerprint.
        let resized = LookupQuery { max_results: 5, cursor: Some("x".into()), ..query() };
        assert_eq!(key.open(&resized, &token).unwrap(), "cursor:42");

        let changes: [(&str, LookupQuery); 6] = [
            (
                "value",
                LookupQuery {
                    attributes: vec![LookupAttribute { value: "Other".into(), ..query().attributes[0].clone() }],
                    ..query()
                },
            ),
            ("no attributes", LookupQuery { attributes: vec![], ..query() }),
            ("start", LookupQuery { start: None, ..query() }),
            ("end", LookupQuery { end: query().start, ..query() }),
            ("category", LookupQuery { category: EventCategory::Insights, ..query() }),
            ("region", LookupQuery { region: Some("eu-west-1".into()), ..query() }),
        ];
        for (what, changed) in changes {
            let fault = key.open(&changed, &token).unwrap_err();
            assert_eq!(fault.code(), "InvalidNextTokenException", "{what}");
        }
        assert!(TokenKey::random().open(&query(), &token).is_err(), "another server's key");
    }

    #[test]
    fn tampered_tokens_are_refused() {
        let key = TokenKey::from_bytes([7; 32]);
        let token = key.seal(&query(), "12");
        let mut raw = URL_SAFE_NO_PAD.decode(&token).unwrap();
        *raw.last_mut().unwrap() ^= 1;
        for bad in [URL_SAFE_NO_PAD.encode(&raw), String::new(), "!!".into(), "AQ".into(), format!("{token}A")] {
            assert!(key.open(&query(), &bad).is_err(), "{bad:?}");
        }
    }
}
