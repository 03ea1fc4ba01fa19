//! Room display names and the topic-safe slugs made from them.
//!
//! Unlike the seed (which silently dropped `0` and `-` and mangled non-ASCII), a display name is
//! transliterated to ASCII, lower-cased, every run of other characters becomes one `-`, and the
//! result is trimmed and capped so the whole topic stays inside AWS IoT's limits.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Longest slug we create. With the `room/public/` prefix, a `/` and the longest Cognito
/// identity id (55), a topic is at most 132 bytes: well inside AWS IoT's 256-byte limit.
pub const MAX_SLUG_LEN: usize = 64;

/// Longest display name a person may give a room, in characters.
pub const MAX_DISPLAY_NAME_CHARS: usize = 100;

/// Why a display name or slug was refused. Every message reads well in the UI as is.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SlugError {
    #[error("Give the room a name.")]
    EmptyName,
    #[error("Room names can be at most {MAX_DISPLAY_NAME_CHARS} characters ({chars} given).")]
    NameTooLong { chars: usize },
    #[error("Room names cannot contain control characters such as line breaks or tabs.")]
    ControlCharacter,
    #[error("The name {0:?} has no letters or digits to build a room address from.")]
    NothingToSlug(String),
    #[error(
        "{0:?} is not a room slug: use lowercase letters, digits and single dashes, at most {MAX_SLUG_LEN} characters."
    )]
    InvalidSlug(String),
}

/// A room's human name, as typed, trimmed and checked.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct RoomDisplayName(String);

impl RoomDisplayName {
    pub fn parse(raw: &str) -> Result<Self, SlugError> {
        let name = raw.trim();
        if name.is_empty() {
            return Err(SlugError::EmptyName);
        }
        if name.chars().any(char::is_control) {
            return Err(SlugError::ControlCharacter);
        }
        let chars = name.chars().count();
        if chars > MAX_DISPLAY_NAME_CHARS {
            return Err(SlugError::NameTooLong { chars });
        }
        Ok(Self(name.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The slug this name is created under.
    pub fn slug(&self) -> Result<RoomSlug, SlugError> {
        RoomSlug::from_display_name(&self.0)
    }
}

impl fmt::Display for RoomDisplayName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for RoomDisplayName {
    type Error = SlugError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl From<RoomDisplayName> for String {
    fn from(value: RoomDisplayName) -> Self {
        value.0
    }
}

/// A topic-safe room slug: `[a-z0-9]+(-[a-z0-9]+)*`, at most [`MAX_SLUG_LEN`] bytes.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct RoomSlug(String);

impl RoomSlug {
    /// Builds the slug for a display name (which is validated first).
    pub fn from_display_name(raw: &str) -> Result<Self, SlugError> {
        let name = RoomDisplayName::parse(raw)?;
        let ascii = deunicode::deunicode(name.as_str());
        let mut slug = String::with_capacity(ascii.len().min(MAX_SLUG_LEN));
        let mut pending_dash = false;
        for c in ascii.chars() {
            if c.is_ascii_alphanumeric() {
                if pending_dash && !slug.is_empty() {
                    slug.push('-');
                }
                pending_dash = false;
                slug.push(c.to_ascii_lowercase());
            } else if c == '\'' || c == '`' {
                // "Bob's room" reads better as bobs-room than bob-s-room.
            } else {
                pending_dash = true;
            }
        }
        if slug.len() > MAX_SLUG_LEN {
            slug.truncate(MAX_SLUG_LEN);
            let kept = slug.trim_end_matches('-').len();
            slug.truncate(kept);
        }
        if slug.is_empty() {
            return Err(SlugError::NothingToSlug(name.0));
        }
        Ok(Self(slug))
    }

    /// Accepts a slug exactly as it appears in a topic; nothing is rewritten.
    pub fn parse(raw: &str) -> Result<Self, SlugError> {
        let well_formed = !raw.is_empty()
            && raw.len() <= MAX_SLUG_LEN
            && raw.split('-').all(|part| {
                !part.is_empty()
                    && part.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
            });
        if well_formed {
            Ok(Self(raw.to_owned()))
        } else {
            Err(SlugError::InvalidSlug(raw.to_owned()))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for RoomSlug {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for RoomSlug {
    type Err = SlugError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl TryFrom<String> for RoomSlug {
    type Error = SlugError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl From<RoomSlug> for String {
    fn from(value: RoomSlug) -> Self {
        value.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn slug(name: &str) -> String {
        RoomSlug::from_display_name(name).unwrap().to_string()
    }

    #[test]
    fn the_seed_test_case_still_holds() {
        assert_eq!(slug("Name/ with $ special Characters! 3"), "name-with-special-characters-3");
    }

    #[test]
    fn transliterates_non_ascii_and_keeps_digits() {
        assert_eq!(slug("Über Café 2020"), "uber-cafe-2020");
        assert_eq!(slug("Straße 10"), "strasse-10");
        assert_eq!(slug("Ωmega Σquad"), "omega-squad");
        assert_eq!(slug("Москва"), "moskva");
        assert_eq!(slug("北京"), "bei-jing");
        assert_eq!(slug("0-day"), "0-day", "the seed dropped 0 and -; we keep both");
        assert_eq!(slug("Room 101"), "room-101");
    }

    #[test]
    fn collapses_separators_and_trims() {
        assert_eq!(slug("  --Hello,   World!!--  "), "hello-world");
        assert_eq!(slug("a___b...c"), "a-b-c");
        assert_eq!(slug("Bob's room"), "bobs-room");
        assert_eq!(slug("Bob’s room"), "bobs-room");
    }

    #[test]
    fn mqtt_wildcards_and_levels_never_reach_the_slug() {
        for name in ["a/b", "a+b", "a#b", "+", "#/+/#", "room/public/x/+"] {
            match RoomSlug::from_display_name(name) {
                Ok(s) => assert!(
                    !s.as_str().contains(['/', '+', '#']),
                    "{name:?} produced {s:?} which holds an MQTT separator or wildcard"
                ),
                Err(e) => assert!(matches!(e, SlugError::NothingToSlug(_)), "{name:?}: {e}"),
            }
        }
        assert_eq!(slug("a/b+c#d"), "a-b-c-d");
    }

    #[test]
    fn names_that_slug_to_nothing_are_rejected() {
        for name in ["!!!", "$$$ ---", "/+#", "…"] {
            assert!(
                matches!(RoomSlug::from_display_name(name), Err(SlugError::NothingToSlug(_))),
                "{name:?} has no letters or digits"
            );
        }
        assert_eq!(RoomSlug::from_display_name("   "), Err(SlugError::EmptyName));
        assert_eq!(RoomSlug::from_display_name(""), Err(SlugError::EmptyName));
    }

    #[test]
    fn control_characters_are_rejected() {
        assert_eq!(RoomSlug::from_display_name("a\nb"), Err(SlugError::ControlCharacter));
        assert_eq!(RoomSlug::from_display_name("a\u{0}b"), Err(SlugError::ControlCharacter));
    }

    #[test]
    fn long_names_are_capped_without_a_trailing_dash() {
        let name = "word ".repeat(20); // 100 chars, the display-name maximum
        let s = slug(&name);
        assert!(s.len() <= MAX_SLUG_LEN, "{} bytes", s.len());
        assert!(!s.ends_with('-'));
        assert!(RoomSlug::parse(&s).is_ok(), "a capped slug is still canonical");
        let exact = "a".repeat(MAX_SLUG_LEN + 10);
        assert_eq!(slug(&exact).len(), MAX_SLUG_LEN);
    }

    #[test]
    fn over_long_display_names_are_rejected() {
        let name = "x".repeat(MAX_DISPLAY_NAME_CHARS + 1);
        assert_eq!(
            RoomSlug::from_display_name(&name),
            Err(SlugError::NameTooLong { chars: MAX_DISPLAY_NAME_CHARS + 1 })
        );
        // Characters, not bytes: 100 two-byte letters are fine.
        assert!(RoomDisplayName::parse(&"é".repeat(MAX_DISPLAY_NAME_CHARS)).is_ok());
    }

    #[test]
    fn any_input_gives_a_canonical_slug_or_an_error() {
        let samples = [
            "Robert'); DROP TABLE rooms;--",
            "<script>alert(1)</script>",
            "🎉 party 🎉",
            "\u{202e}evil",
            "a\u{301}b",
            "ﬁ ligature",
            "123",
        ];
        for name in samples {
            if let Ok(s) = RoomSlug::from_display_name(name) {
                assert_eq!(RoomSlug::parse(s.as_str()).as_ref(), Ok(&s), "{name:?}");
            }
        }
        assert_eq!(slug("Robert'); DROP TABLE rooms;--"), "robert-drop-table-rooms");
        assert_eq!(slug("<script>alert(1)</script>"), "script-alert-1-script");
    }

    #[test]
    fn parse_accepts_only_canonical_slugs() {
        assert!(RoomSlug::parse("uber-cafe-2020").is_ok());
        for bad in ["", "Upper", "-lead", "trail-", "dou--ble", "sp ace", "a/b", "a+b", "a#b", "é"]
        {
            assert!(RoomSlug::parse(bad).is_err(), "{bad:?} must not parse");
        }
        assert!(RoomSlug::parse(&"a".repeat(MAX_SLUG_LEN + 1)).is_err());
    }

    #[test]
    fn display_names_are_trimmed_and_serde_checked() {
        let name = RoomDisplayName::parse("  Über Café  ").unwrap();
        assert_eq!(name.as_str(), "Über Café");
        assert_eq!(name.slug().unwrap().as_str(), "uber-cafe");
        assert!(serde_json::from_str::<RoomDisplayName>("\"   \"").is_err());
        assert!(serde_json::from_str::<RoomSlug>("\"Not A Slug\"").is_err());
    }
}
