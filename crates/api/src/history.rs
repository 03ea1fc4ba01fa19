//! What history keeps of a publish: one rule for the local broker's hook and for the AWS IoT
//! rule's function.

use iotchat_protocol::api::StoredMessage;
use iotchat_protocol::{IncomingPayload, MessageId, PayloadError, Topic, TopicError};

/// Why a publish is not kept in history. Both are delivered anyway (AWS IoT would), and
/// receivers drop what is not a chat message.
#[derive(Debug, thiserror::Error)]
pub enum NotKept {
    #[error("not a room topic: {0}")]
    Topic(#[from] TopicError),
    #[error("not a chat message: {0}")]
    Payload(#[from] PayloadError),
}

/// The history entry of a publish of `payload` on `topic` that arrived at `received_at` (ms
/// since 1970). A seed client's message without an id gets `new_id()`.
pub fn history_entry(
    topic: &str,
    payload: &[u8],
    received_at: u64,
    new_id: impl FnOnce() -> MessageId,
) -> Result<StoredMessage, NotKept> {
    let topic = Topic::parse(topic)?;
    let message = IncomingPayload::parse(payload)?.complete(received_at, new_id);
    Ok(StoredMessage {
        id: message.id,
        room: topic.room().clone(),
        sender: topic.sender().clone(),
        message: message.text,
        sent_at: message.sent_at_ms,
        received_at,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const TOPIC: &str = "room/public/general/us-east-1:7f86d9a8-b9f4-439e-bcf3-9756e4d2bbdf";

    #[test]
    fn chat_messages_are_kept_with_their_sender_and_room() {
        let payload = br#"{"message":"hi","id":"m-1","sentAt":5}"#;
        let entry = history_entry(TOPIC, payload, 9, || unreachable!("the id is given")).unwrap();
        assert_eq!(entry.sender.as_str(), "us-east-1:7f86d9a8-b9f4-439e-bcf3-9756e4d2bbdf");
        assert_eq!(entry.room.slug().as_str(), "general");
        assert_eq!((entry.id.as_str(), entry.sent_at, entry.received_at), ("m-1", 5, 9));
        let seed =
            history_entry(TOPIC, br#"{"message":"hi"}"#, 9, || MessageId::parse("new").unwrap())
                .unwrap();
        assert_eq!((seed.id.as_str(), seed.sent_at), ("new", 9), "a seed client's message");
    }

    #[test]
    fn other_publishes_are_not_kept() {
        let id = || MessageId::parse("x").unwrap();
        assert!(matches!(history_entry(TOPIC, b"not json", 1, id), Err(NotKept::Payload(_))));
        assert!(matches!(
            history_entry("room/public/general", b"{\"message\":\"hi\"}", 1, id),
            Err(NotKept::Topic(_))
        ));
    }
}
