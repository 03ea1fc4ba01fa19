//! The history writer: the IoT topic rule on `room/public/+/+` invokes this function with
//! `SELECT encode(*, 'base64') AS payload, topic() AS topic, timestamp() AS receivedAt`, and
//! it keeps the message by the local broker's rule ([`iotchat_api::history_entry`]).
//!
//! AWS IoT acknowledged the publish before the rule ran, so unlike the local broker nothing
//! here can hold a PUBACK back; a failure is returned as an error, and the rule's error action
//! (and Lambda's asynchronous retries) keep the message from being lost silently.

use base64::Engine as _;
use iotchat_api::{ChatStore, NotKept};
use iotchat_protocol::MessageId;
use serde::{Deserialize, Serialize};

/// What the rule sends.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RuleEvent {
    pub topic: String,
    /// The MQTT payload, base64 (so that any payload reaches the function, JSON or not).
    pub payload: String,
    /// When AWS IoT received the message, ms since 1970.
    pub received_at: u64,
}

/// What became of one message (the function's result, visible in the logs).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase", tag = "outcome")]
pub enum Outcome {
    /// Stored under this id.
    Stored { id: String },
    /// The room already holds a message with this id (a resend).
    Duplicate { id: String },
    /// Not a chat message; delivered by AWS IoT, not kept.
    Skipped { reason: String },
}

/// Keeps one message.
pub async fn handle(store: &dyn ChatStore, event: RuleEvent) -> anyhow::Result<Outcome> {
    let payload = match base64::engine::general_purpose::STANDARD.decode(event.payload.as_bytes()) {
        Ok(payload) => payload,
        Err(error) => {
            return Ok(Outcome::Skipped { reason: format!("the payload is not base64: {error}") });
        }
    };
    let new_id = || MessageId::parse(&uuid::Uuid::new_v4().to_string());
    let fallback = new_id()?;
    let entry =
        match iotchat_api::history_entry(&event.topic, &payload, event.received_at, || fallback) {
            Ok(entry) => entry,
            Err(error @ (NotKept::Topic(_) | NotKept::Payload(_))) => {
                tracing::info!(topic = %event.topic, %error, "delivered, not stored");
                return Ok(Outcome::Skipped { reason: error.to_string() });
            }
        };
    let id = entry.id.to_string();
    if store.message_insert(entry).await? {
        Ok(Outcome::Stored { id })
    } else {
        Ok(Outcome::Duplicate { id })
    }
}
