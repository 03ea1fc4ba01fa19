//! What the client tells its front ends (the desktop shell, the CLI): one typed event enum.

use iotchat_protocol::{IdentityId, MessageId, RoomName};
use serde::{Deserialize, Serialize};

/// The MQTT connection as a person should see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", tag = "state")]
pub enum ConnectionState {
    /// Not signed in, or signed out.
    Offline,
    Connecting,
    Online,
    /// The connection dropped; the next attempt is in `in_secs` seconds.
    #[serde(rename_all = "camelCase")]
    Reconnecting {
        in_secs: u64,
        attempt: u32,
    },
}

/// Where a message stands, from its sender's side.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", tag = "state")]
pub enum Delivery {
    /// Accepted by the broker (and so stored in history).
    Delivered,
    /// Waiting in the outbox for a connection.
    Pending,
    /// Given up on after repeated refusals; can be retried.
    Failed { reason: String },
}

/// A message as a timeline shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TimelineMessage {
    pub id: MessageId,
    pub room: RoomName,
    pub sender: IdentityId,
    /// The sender's username, or a short form of the identity id while unknown.
    pub author: String,
    pub text: String,
    /// The sender's clock, ms since 1970.
    pub sent_at_ms: u64,
    /// True for the signed-in user's own messages.
    pub own: bool,
    pub delivery: Delivery,
}

/// Everything that changes what a front end shows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", tag = "type")]
pub enum Event {
    /// The connection changed state.
    Connection { connection: ConnectionState },
    /// A message appeared in a followed room (live, caught up after a reconnect, or one of
    /// ours entering the outbox). `missed` is true for messages fetched after a reconnect.
    #[serde(rename_all = "camelCase")]
    Message { message: TimelineMessage, missed: bool },
    /// One of our messages changed delivery state.
    #[serde(rename_all = "camelCase")]
    Delivery { room: RoomName, id: MessageId, delivery: Delivery },
    /// A followed room's unread count changed; `total` is the sum over followed rooms.
    Unread { room: RoomName, count: u32, total: u32 },
    /// The followed rooms changed (joined, left, muted).
    Followed,
    /// The session ended by itself (the refresh token was revoked or expired): log in again.
    SessionEnded { reason: String },
}
