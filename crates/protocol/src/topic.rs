//! The MQTT topic scheme: rooms live under `room/public/<slug>`; a message is published to
//! `room/public/<slug>/<identityId>` (the last level names the sender, and the broker's policy
//! guarantees nobody publishes under someone else's id); a room is followed through the filter
//! `room/public/<slug>/+`.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::identity::{IdentityId, IdentityIdError};
use crate::slug::{RoomSlug, SlugError};

/// Prefix of every public room.
pub const PUBLIC_ROOM_PREFIX: &str = "room/public/";
/// AWS IoT's limit on a topic's length in bytes.
pub const MAX_TOPIC_BYTES: usize = 256;
/// AWS IoT's limit on the number of levels (separated by `/`) in a topic.
pub const MAX_TOPIC_LEVELS: usize = 8;

/// Why a string is not a topic, room name or filter of ours.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TopicError {
    #[error("the topic is {len} bytes long; AWS IoT allows at most {MAX_TOPIC_BYTES}")]
    TooLong { len: usize },
    #[error("{0:?} is not a public room: expected room/public/<room>")]
    NotAPublicRoom(String),
    #[error("{0:?} is not a chat topic: expected room/public/<room>/<identity id>")]
    NotAChatTopic(String),
    #[error("{0:?} is not a room subscription: expected room/public/<room>/+")]
    NotARoomFilter(String),
    #[error("{topic:?} names an invalid room: {source}")]
    Room { topic: String, source: SlugError },
    #[error("{topic:?} names an invalid sender: {source}")]
    Sender { topic: String, source: IdentityIdError },
}

fn check_len(raw: &str) -> Result<(), TopicError> {
    if raw.len() > MAX_TOPIC_BYTES { Err(TopicError::TooLong { len: raw.len() }) } else { Ok(()) }
}

fn room_slug(topic: &str, slug: &str) -> Result<RoomSlug, TopicError> {
    RoomSlug::parse(slug).map_err(|source| TopicError::Room { topic: topic.to_owned(), source })
}

/// A public room's name, `room/public/<slug>`, as the seed's API and UI use it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct RoomName {
    slug: RoomSlug,
}

impl RoomName {
    pub fn new(slug: RoomSlug) -> Self {
        Self { slug }
    }

    /// Parses exactly `room/public/<slug>`.
    pub fn parse(raw: &str) -> Result<Self, TopicError> {
        check_len(raw)?;
        let slug = raw
            .strip_prefix(PUBLIC_ROOM_PREFIX)
            .ok_or_else(|| TopicError::NotAPublicRoom(raw.to_owned()))?;
        Ok(Self { slug: room_slug(raw, slug)? })
    }

    /// Accepts what a person types to name an existing room: a full room name or a bare slug.
    pub fn from_user_input(raw: &str) -> Result<Self, TopicError> {
        let raw = raw.trim();
        if raw.starts_with(PUBLIC_ROOM_PREFIX) {
            Self::parse(raw)
        } else {
            Ok(Self { slug: room_slug(raw, raw)? })
        }
    }

    pub fn slug(&self) -> &RoomSlug {
        &self.slug
    }

    /// The topic `identity` publishes this room's messages to.
    pub fn topic_for(&self, identity: IdentityId) -> Topic {
        Topic { room: self.clone(), sender: identity }
    }

    /// The filter that follows this room.
    pub fn filter(&self) -> TopicFilter {
        TopicFilter { room: self.clone() }
    }
}

impl fmt::Display for RoomName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{PUBLIC_ROOM_PREFIX}{}", self.slug)
    }
}

impl TryFrom<String> for RoomName {
    type Error = TopicError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl From<RoomName> for String {
    fn from(value: RoomName) -> Self {
        value.to_string()
    }
}

/// A concrete chat topic, `room/public/<slug>/<identityId>`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Topic {
    room: RoomName,
    sender: IdentityId,
}

impl Topic {
    pub fn new(room: RoomName, sender: IdentityId) -> Self {
        Self { room, sender }
    }

    /// Parses a topic a message arrived on; wildcards, extra or missing levels are refused.
    pub fn parse(raw: &str) -> Result<Self, TopicError> {
        check_len(raw)?;
        let not_chat = || TopicError::NotAChatTopic(raw.to_owned());
        let rest = raw.strip_prefix(PUBLIC_ROOM_PREFIX).ok_or_else(not_chat)?;
        let (slug, sender) = rest.split_once('/').ok_or_else(not_chat)?;
        if sender.contains('/') {
            return Err(not_chat());
        }
        let room = RoomName { slug: room_slug(raw, slug)? };
        let sender = IdentityId::parse(sender)
            .map_err(|source| TopicError::Sender { topic: raw.to_owned(), source })?;
        Ok(Self { room, sender })
    }

    pub fn room(&self) -> &RoomName {
        &self.room
    }

    pub fn sender(&self) -> &IdentityId {
        &self.sender
    }
}

impl fmt::Display for Topic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.room, self.sender)
    }
}

/// The subscription filter for one room, `room/public/<slug>/+`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TopicFilter {
    room: RoomName,
}

impl TopicFilter {
    pub fn parse(raw: &str) -> Result<Self, TopicError> {
        check_len(raw)?;
        let not_filter = || TopicError::NotARoomFilter(raw.to_owned());
        let slug = raw
            .strip_prefix(PUBLIC_ROOM_PREFIX)
            .and_then(|rest| rest.strip_suffix("/+"))
            .ok_or_else(not_filter)?;
        Ok(Self { room: RoomName { slug: room_slug(raw, slug)? } })
    }

    pub fn room(&self) -> &RoomName {
        &self.room
    }
}

impl fmt::Display for TopicFilter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/+", self.room)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::MAX_IDENTITY_ID_LEN;
    use crate::slug::MAX_SLUG_LEN;

    const ALICE: &str = "us-east-1:7f86d9a8-b9f4-439e-bcf3-9756e4d2bbdf";

    fn room(slug: &str) -> RoomName {
        RoomName::new(RoomSlug::parse(slug).unwrap())
    }

    #[test]
    fn builds_and_parses_chat_topics() {
        let topic = room("uber-cafe-2020").topic_for(IdentityId::parse(ALICE).unwrap());
        let text = topic.to_string();
        assert_eq!(text, format!("room/public/uber-cafe-2020/{ALICE}"));
        let back = Topic::parse(&text).unwrap();
        assert_eq!(back, topic);
        assert_eq!(back.room().slug().as_str(), "uber-cafe-2020");
        assert_eq!(back.sender().as_str(), ALICE);
    }

    #[test]
    fn builds_and_parses_room_filters() {
        let filter = room("general").filter();
        assert_eq!(filter.to_string(), "room/public/general/+");
        assert_eq!(TopicFilter::parse("room/public/general/+").unwrap(), filter);
    }

    #[test]
    fn rejects_topics_outside_the_scheme() {
        for bad in [
            "",
            "room/public",
            "room/public/",
            "room/public/general",
            "room/public/general/",
            "room/private/general/us-east-1:ab",
            "Room/public/general/us-east-1:ab",
            "/room/public/general/us-east-1:ab",
            "room/public/general/us-east-1:ab/extra",
            "room//public/general/us-east-1:ab",
        ] {
            assert!(Topic::parse(bad).is_err(), "{bad:?} must not parse as a chat topic");
        }
    }

    #[test]
    fn rejects_wildcards_in_topics() {
        for bad in [
            "room/public/+/us-east-1:ab",
            "room/public/general/+",
            "room/public/general/#",
            "room/public/#",
            "#",
            "room/public/gen+eral/us-east-1:ab",
        ] {
            assert!(Topic::parse(bad).is_err(), "{bad:?} holds a wildcard");
        }
        let err = Topic::parse("room/public/general/+").unwrap_err();
        assert!(matches!(err, TopicError::Sender { .. }), "{err:?}");
        let err = Topic::parse("room/public/+/us-east-1:ab").unwrap_err();
        assert!(matches!(err, TopicError::Room { .. }), "{err:?}");
    }

    #[test]
    fn rejects_filters_other_than_one_room() {
        for bad in [
            "#",
            "room/#",
            "room/public/#",
            "room/public/+/+",
            "room/public/general/#",
            "room/public/general",
            "room/private/general/+",
            "room/public/Gen/+",
        ] {
            assert!(TopicFilter::parse(bad).is_err(), "{bad:?} is not a one-room filter");
        }
    }

    #[test]
    fn room_names_accept_full_names_or_bare_slugs_from_people() {
        assert_eq!(RoomName::from_user_input("general").unwrap(), room("general"));
        assert_eq!(RoomName::from_user_input(" room/public/general ").unwrap(), room("general"));
        assert!(RoomName::from_user_input("General Chat").is_err());
        assert!(RoomName::from_user_input("room/public/a/b").is_err());
        assert!(RoomName::parse("general").is_err(), "strict parse wants the prefix");
        let json = serde_json::to_string(&room("general")).unwrap();
        assert_eq!(json, "\"room/public/general\"");
        assert_eq!(serde_json::from_str::<RoomName>(&json).unwrap(), room("general"));
    }

    #[test]
    fn the_longest_topic_fits_aws_iot_limits() {
        let longest_id = format!("us-east-1:{}", "b".repeat(MAX_IDENTITY_ID_LEN - 10));
        let topic = format!("{PUBLIC_ROOM_PREFIX}{}/{longest_id}", "a".repeat(MAX_SLUG_LEN));
        assert!(topic.len() <= MAX_TOPIC_BYTES, "{} bytes", topic.len());
        assert!(topic.split('/').count() <= MAX_TOPIC_LEVELS);
        assert!(Topic::parse(&topic).is_ok());
    }

    #[test]
    fn over_long_input_is_refused_before_parsing() {
        let huge = format!("room/public/{}/us-east-1:ab", "a".repeat(300));
        assert_eq!(Topic::parse(&huge), Err(TopicError::TooLong { len: huge.len() }));
    }
}
