//! The chat message payload: UTF-8 JSON `{"message": "<text>", "id": "<uuid>", "sentAt": <ms>}`.
//!
//! Seed clients send only `{"message"}`; that is accepted and completed by the receiver (receive
//! time, an id of its choosing). Unknown fields are ignored. Anything else that is malformed is a
//! typed error, never a panic.

use std::fmt;

use serde::{Deserialize, Serialize};

/// AWS IoT's limit on a message payload: 128 KB.
pub const MAX_PAYLOAD_BYTES: usize = 128 * 1024;
/// Longest message id we accept (a UUID is 36).
pub const MAX_MESSAGE_ID_LEN: usize = 64;

/// Why a payload was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PayloadError {
    #[error("the message is {len} bytes; the limit is {MAX_PAYLOAD_BYTES} bytes (128 KB)")]
    TooLarge { len: usize },
    #[error("the payload is not a JSON chat message: {0}")]
    Malformed(String),
    #[error("the message is empty")]
    EmptyMessage,
    #[error("the message id {0:?} is not 1–64 letters, digits, '-', '_', '.' or ':'")]
    BadId(String),
    #[error("sentAt must be a whole number of milliseconds since 1970, got {0}")]
    BadSentAt(String),
}

/// A message id, unique per message; receivers deduplicate on it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct MessageId(String);

impl MessageId {
    pub fn parse(raw: &str) -> Result<Self, PayloadError> {
        let ok = !raw.is_empty()
            && raw.len() <= MAX_MESSAGE_ID_LEN
            && raw.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.:".contains(&b));
        if ok { Ok(Self(raw.to_owned())) } else { Err(PayloadError::BadId(raw.to_owned())) }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for MessageId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for MessageId {
    type Error = PayloadError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl From<MessageId> for String {
    fn from(value: MessageId) -> Self {
        value.0
    }
}

/// What we publish. Built only through [`OutgoingPayload::encode`], which enforces the limits.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OutgoingPayload<'a> {
    pub message: &'a str,
    pub id: &'a MessageId,
    #[serde(rename = "sentAt")]
    pub sent_at: u64,
}

impl OutgoingPayload<'_> {
    /// Encodes the payload, refusing blank text and anything over [`MAX_PAYLOAD_BYTES`].
    pub fn encode(&self) -> Result<Vec<u8>, PayloadError> {
        if self.message.trim().is_empty() {
            return Err(PayloadError::EmptyMessage);
        }
        let bytes = serde_json::to_vec(self).map_err(|e| PayloadError::Malformed(e.to_string()))?;
        if bytes.len() > MAX_PAYLOAD_BYTES {
            return Err(PayloadError::TooLarge { len: bytes.len() });
        }
        Ok(bytes)
    }
}

/// A received payload, before the receiver fills what a seed client left out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IncomingPayload {
    pub message: String,
    pub id: Option<MessageId>,
    pub sent_at: Option<u64>,
}

#[derive(Deserialize)]
struct Wire {
    message: String,
    #[serde(default)]
    id: Option<String>,
    #[serde(default, rename = "sentAt")]
    sent_at: Option<serde_json::Number>,
}

impl IncomingPayload {
    pub fn parse(bytes: &[u8]) -> Result<Self, PayloadError> {
        if bytes.len() > MAX_PAYLOAD_BYTES {
            return Err(PayloadError::TooLarge { len: bytes.len() });
        }
        let wire: Wire =
            serde_json::from_slice(bytes).map_err(|e| PayloadError::Malformed(e.to_string()))?;
        if wire.message.trim().is_empty() {
            return Err(PayloadError::EmptyMessage);
        }
        let id = wire.id.as_deref().map(MessageId::parse).transpose()?;
        let sent_at = wire
            .sent_at
            .map(|n| n.as_u64().ok_or_else(|| PayloadError::BadSentAt(n.to_string())))
            .transpose()?;
        Ok(Self { message: wire.message, id, sent_at })
    }

    /// Completes a seed-style payload with the receiver's clock and an id of its choosing.
    pub fn complete(self, received_at_ms: u64, new_id: impl FnOnce() -> MessageId) -> ChatMessage {
        ChatMessage {
            id: self.id.unwrap_or_else(new_id),
            text: self.message,
            sent_at_ms: self.sent_at.unwrap_or(received_at_ms),
        }
    }
}

/// A chat message as the rest of the system sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ChatMessage {
    pub id: MessageId,
    pub text: String,
    pub sent_at_ms: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    const UUID: &str = "3f1c2b9e-8a7d-4e5f-9b0a-1c2d3e4f5a6b";

    fn id() -> MessageId {
        MessageId::parse(UUID).unwrap()
    }

    #[test]
    fn encodes_the_wire_shape() {
        let id = id();
        let bytes = OutgoingPayload { message: "hi <b>", id: &id, sent_at: 1_700_000_000_000 }
            .encode()
            .unwrap();
        let v: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"message": "hi <b>", "id": UUID, "sentAt": 1_700_000_000_000u64})
        );
    }

    #[test]
    fn round_trips() {
        let id = id();
        let bytes = OutgoingPayload { message: "Grüße 👋", id: &id, sent_at: 42 }.encode().unwrap();
        let msg = IncomingPayload::parse(&bytes).unwrap().complete(99, || unreachable!());
        assert_eq!(msg, ChatMessage { id, text: "Grüße 👋".into(), sent_at_ms: 42 });
    }

    #[test]
    fn accepts_the_seed_message_only_form() {
        let p = IncomingPayload::parse(br#"{"message":"hello from the seed"}"#).unwrap();
        assert_eq!(p.id, None);
        assert_eq!(p.sent_at, None);
        let msg = p.complete(1234, id);
        assert_eq!(msg.sent_at_ms, 1234, "receive time stands in for sentAt");
        assert_eq!(msg.id, id(), "the receiver's id is used");
    }

    #[test]
    fn ignores_unknown_fields_and_null_optionals() {
        let p = IncomingPayload::parse(
            br#"{"message":"x","id":null,"sentAt":null,"avatar":"y","nested":{"a":[1]}}"#,
        )
        .unwrap();
        assert_eq!((p.message.as_str(), p.id, p.sent_at), ("x", None, None));
    }

    #[test]
    fn malformed_payloads_are_typed_errors() {
        type Expect = fn(&PayloadError) -> bool;
        let cases: &[(&[u8], Expect)] = &[
            (b"", |e| matches!(e, PayloadError::Malformed(_))),
            (b"not json", |e| matches!(e, PayloadError::Malformed(_))),
            (b"[1,2]", |e| matches!(e, PayloadError::Malformed(_))),
            (b"{}", |e| matches!(e, PayloadError::Malformed(_))),
            (br#"{"message":42}"#, |e| matches!(e, PayloadError::Malformed(_))),
            (br#"{"message":"a""#, |e| matches!(e, PayloadError::Malformed(_))),
            (b"\xff\xfe{\"message\":\"a\"}", |e| matches!(e, PayloadError::Malformed(_))),
            (br#"{"message":"   "}"#, |e| *e == PayloadError::EmptyMessage),
            (br#"{"message":"a","id":""}"#, |e| matches!(e, PayloadError::BadId(_))),
            (br#"{"message":"a","id":"a/b"}"#, |e| matches!(e, PayloadError::BadId(_))),
            (br#"{"message":"a","id":7}"#, |e| matches!(e, PayloadError::Malformed(_))),
            (br#"{"message":"a","sentAt":-1}"#, |e| matches!(e, PayloadError::BadSentAt(_))),
            (br#"{"message":"a","sentAt":1.5}"#, |e| matches!(e, PayloadError::BadSentAt(_))),
            (br#"{"message":"a","sentAt":"now"}"#, |e| matches!(e, PayloadError::Malformed(_))),
        ];
        for (bytes, expected) in cases {
            let err = IncomingPayload::parse(bytes).unwrap_err();
            assert!(expected(&err), "{:?} gave {err:?}", String::from_utf8_lossy(bytes));
        }
    }

    #[test]
    fn enforces_the_128_kb_limit_both_ways() {
        let id = id();
        let overhead = OutgoingPayload { message: "", id: &id, sent_at: 1 };
        let overhead = serde_json::to_vec(&overhead).unwrap().len();
        let fits = "a".repeat(MAX_PAYLOAD_BYTES - overhead);
        let bytes = OutgoingPayload { message: &fits, id: &id, sent_at: 1 }.encode().unwrap();
        assert_eq!(bytes.len(), MAX_PAYLOAD_BYTES, "exactly 128 KB is allowed");
        assert!(IncomingPayload::parse(&bytes).is_ok());

        let over = "a".repeat(MAX_PAYLOAD_BYTES - overhead + 1);
        let err = OutgoingPayload { message: &over, id: &id, sent_at: 1 }.encode().unwrap_err();
        assert_eq!(err, PayloadError::TooLarge { len: MAX_PAYLOAD_BYTES + 1 });
        let mut big = bytes.clone();
        big.push(b' ');
        assert_eq!(
            IncomingPayload::parse(&big),
            Err(PayloadError::TooLarge { len: MAX_PAYLOAD_BYTES + 1 })
        );
    }

    #[test]
    fn escaping_counts_towards_the_limit() {
        let id = id();
        // Each quote becomes two bytes on the wire.
        let quotes = "\"".repeat(MAX_PAYLOAD_BYTES / 2 + 1);
        let err = OutgoingPayload { message: &quotes, id: &id, sent_at: 1 }.encode().unwrap_err();
        assert!(matches!(err, PayloadError::TooLarge { .. }), "{err:?}");
    }

    #[test]
    fn blank_messages_are_not_sent() {
        let id = id();
        let err = OutgoingPayload { message: " \n\t", id: &id, sent_at: 1 }.encode().unwrap_err();
        assert_eq!(err, PayloadError::EmptyMessage);
    }
}
