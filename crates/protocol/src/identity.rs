//! Cognito identity ids, the last level of every chat topic.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Longest identity id Cognito issues (`IdentityId` in the Cognito Identity API: 1–55 chars).
pub const MAX_IDENTITY_ID_LEN: usize = 55;

/// A Cognito identity id such as `us-east-1:7f86d9a8-b9f4-439e-bcf3-9756e4d2bbdf`.
///
/// The shape is Cognito's own pattern, `[\w-]+:[0-9a-f-]+`: a region-like prefix, a colon, and a
/// lowercase hexadecimal id with dashes. It can never contain `/`, `+` or `#`, so it is always a
/// safe single MQTT topic level.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct IdentityId(String);

/// Why a string is not an identity id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdentityIdError {
    #[error("the identity id is empty")]
    Empty,
    #[error(
        "the identity id is {len} characters long; Cognito ids have at most {MAX_IDENTITY_ID_LEN}"
    )]
    TooLong { len: usize },
    #[error(
        "the identity id {0:?} is not of the form <region>:<hex id>, like us-east-1:7f86d9a8-b9f4-439e-bcf3-9756e4d2bbdf"
    )]
    Malformed(String),
}

impl IdentityId {
    /// Validates `raw` against Cognito's identity id pattern.
    pub fn parse(raw: &str) -> Result<Self, IdentityIdError> {
        if raw.is_empty() {
            return Err(IdentityIdError::Empty);
        }
        if raw.len() > MAX_IDENTITY_ID_LEN {
            return Err(IdentityIdError::TooLong { len: raw.chars().count() });
        }
        let malformed = || IdentityIdError::Malformed(raw.to_owned());
        let (prefix, id) = raw.split_once(':').ok_or_else(malformed)?;
        let prefix_ok = !prefix.is_empty()
            && prefix.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
        let id_ok = !id.is_empty()
            && id.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b) || b == b'-');
        if prefix_ok && id_ok { Ok(Self(raw.to_owned())) } else { Err(malformed()) }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for IdentityId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for IdentityId {
    type Err = IdentityIdError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl TryFrom<String> for IdentityId {
    type Error = IdentityIdError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl From<IdentityId> for String {
    fn from(value: IdentityId) -> Self {
        value.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_cognito_shaped_ids() {
        let id = IdentityId::parse("us-east-1:7f86d9a8-b9f4-439e-bcf3-9756e4d2bbdf").unwrap();
        assert_eq!(id.as_str(), "us-east-1:7f86d9a8-b9f4-439e-bcf3-9756e4d2bbdf");
        assert_eq!(id.to_string(), id.as_str());
    }

    #[test]
    fn rejects_wildcards_separators_and_uppercase_hex() {
        for bad in [
            "us-east-1:abc/def",
            "us-east-1:+",
            "us-east-1:#",
            "+:abc",
            "us-east-1:ABCDEF",
            "us east 1:abc",
            "no-colon",
            ":abc",
            "us-east-1:",
            "üs-east-1:abc",
        ] {
            assert!(
                matches!(IdentityId::parse(bad), Err(IdentityIdError::Malformed(_))),
                "{bad:?} must be rejected as malformed"
            );
        }
        assert_eq!(IdentityId::parse(""), Err(IdentityIdError::Empty));
    }

    #[test]
    fn rejects_ids_longer_than_cognito_allows() {
        let long = format!("us-east-1:{}", "a".repeat(50));
        assert!(matches!(IdentityId::parse(&long), Err(IdentityIdError::TooLong { len: 60 })));
        let max = format!("us-east-1:{}", "a".repeat(MAX_IDENTITY_ID_LEN - 10));
        assert!(IdentityId::parse(&max).is_ok(), "exactly {MAX_IDENTITY_ID_LEN} chars is allowed");
    }

    #[test]
    fn serde_validates_on_the_way_in() {
        let ok: IdentityId = serde_json::from_str("\"eu-west-1:0a-1b\"").unwrap();
        assert_eq!(ok.as_str(), "eu-west-1:0a-1b");
        assert!(serde_json::from_str::<IdentityId>("\"room/public/x\"").is_err());
        assert_eq!(serde_json::to_string(&ok).unwrap(), "\"eu-west-1:0a-1b\"");
    }
}
