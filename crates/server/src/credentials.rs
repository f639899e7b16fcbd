//! The access keys a server accepts, and the file they are read from.

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;

use crate::{Error, Result};

/// Access key ID → secret access key. Requests signed with any of these keys are accepted.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct CredentialStore {
    keys: BTreeMap<String, String>,
}

impl CredentialStore {
    /// Reads a credentials file (format: [`CredentialStore::parse`]).
    pub fn from_file(path: &Path) -> Result<CredentialStore> {
        let text = std::fs::read_to_string(path)
            .map_err(|source| Error::CredentialsFile { path: path.to_path_buf(), source })?;
        CredentialStore::parse(&text, &path.display().to_string())
    }

    /// Parses credentials text; `origin` names it in errors (a file path).
    ///
    /// One key per line: the access key ID, then whitespace, then the secret access key. Blank
    /// lines and lines starting with `#` are ignored. An access key ID is letters, digits and `_`
    /// (as AWS's), each at most once; a secret is any text without whitespace. At least one key.
    ///
    /// ```text
    /// # parquetrail serve --credentials FILE
    /// AKIAIOSFODNN7EXAMPLE  wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY
    /// ```
    pub fn parse(text: &str, origin: &str) -> Result<CredentialStore> {
        let fail = |line: usize, reason: String| Error::Credentials {
            origin: origin.to_string(),
            reason: if line == 0 { reason } else { format!("line {line}: {reason}") },
        };
        let mut store = CredentialStore::default();
        for (index, line) in text.lines().enumerate() {
            let n = index + 1;
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let fields: Vec<&str> = line.split_whitespace().collect();
            let [id, secret] = fields[..] else {
                return Err(fail(
                    n,
                    format!(
                        "expected two fields, ACCESS_KEY_ID and SECRET_ACCESS_KEY separated by spaces, found {}",
                        fields.len()
                    ),
                ));
            };
            if !id.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                return Err(fail(n, format!("access key ID {id:?} may hold only letters, digits and '_'")));
            }
            if store.keys.insert(id.to_string(), secret.to_string()).is_some() {
                return Err(fail(n, format!("access key ID {id} is listed twice")));
            }
        }
        if store.keys.is_empty() {
            return Err(fail(0, "no credentials: expected lines of ACCESS_KEY_ID SECRET_ACCESS_KEY".into()));
        }
        Ok(store)
    }

    /// Adds or replaces one key.
    pub fn insert(&mut self, access_key_id: impl Into<String>, secret_access_key: impl Into<String>) {
        self.keys.insert(access_key_id.into(), secret_access_key.into());
    }

    /// The secret of `access_key_id`.
    pub(crate) fn secret(&self, access_key_id: &str) -> Option<&str> {
        self.keys.get(access_key_id).map(String::as_str)
    }

    /// How many keys are accepted.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Whether no key is accepted.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }
}

/// Lists access key IDs only: secrets never reach a log.
impl fmt::Debug for CredentialStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CredentialStore").field("access_key_ids", &self.keys.keys().collect::<Vec<_>>()).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_documented_format() {
        let store = CredentialStore::parse("# comment\n\n  AKID1 secret/one \nAKID_2\tsecret+two\n", "creds").unwrap();
        assert_eq!(store.len(), 2);
        assert_eq!(store.secret("AKID1"), Some("secret/one"));
        assert_eq!(store.secret("AKID_2"), Some("secret+two"));
        assert_eq!(store.secret("akid1"), None);
        assert!(!format!("{store:?}").contains("secret"), "{store:?}");
    }

    #[test]
    fn errors_name_the_line() {
        let cases = [
            ("AKID1\n", "creds: line 1: expected two fields"),
            ("AKID1 a\nAKID2 b c\n", "creds: line 2: expected two fields"),
            ("AK-ID s\n", "creds: line 1: access key ID \"AK-ID\""),
            ("AKID s\n# x\nAKID t\n", "creds: line 3: access key ID AKID is listed twice"),
            ("# only a comment\n", "creds: no credentials"),
            ("", "creds: no credentials"),
        ];
        for (text, expected) in cases {
            let error = CredentialStore::parse(text, "creds").unwrap_err().to_string();
            assert!(error.starts_with(expected), "{text:?}: {error}");
        }
    }
}
