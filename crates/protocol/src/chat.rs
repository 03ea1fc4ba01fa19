//! The chat client's vocabulary, shared by the client core, the desktop shell and the UI: the
//! events the core emits and the views of rooms, messages and the session it answers with.

use serde::{Deserialize, Serialize};

use crate::api::Room;
use crate::{IdentityId, MessageId, RoomName};

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

/// Who is signed in. Not secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Account {
    pub username: String,
    pub identity_id: IdentityId,
}

/// A room the user follows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FollowedRoom {
    pub name: RoomName,
    pub display_name: String,
    /// When the user joined, ms since 1970 (older history is not "missed").
    pub joined_at_ms: u64,
    pub unread: u32,
    pub muted: bool,
}

/// A room as the rooms list shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RoomSummary {
    #[serde(flatten)]
    pub room: Room,
    pub followed: bool,
    pub unread: u32,
    pub muted: bool,
}

/// One page of history, newest first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HistoryPage {
    pub messages: Vec<TimelineMessage>,
    /// Pass back as `before` for the next older page; `None` at the beginning of the room.
    pub next_before: Option<String>,
}

/// Which secure store holds the session's tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum StoreKind {
    MacosKeychain,
    WindowsCredentialManager,
    SecretService,
    /// Linux's kernel keyring: secure, but emptied at reboot.
    KernelKeyring,
    /// No keychain: the session ends when the app does.
    Memory,
    /// keyring-core's mock store (tests).
    Mock,
}

impl StoreKind {
    /// Whether a session kept here survives a reboot.
    pub fn survives_reboot(self) -> bool {
        matches!(self, Self::MacosKeychain | Self::WindowsCredentialManager | Self::SecretService)
    }

    /// A sentence for people about where the session is kept.
    pub fn describe(self) -> &'static str {
        match self {
            Self::MacosKeychain => "Your session is kept in the macOS Keychain.",
            Self::WindowsCredentialManager => {
                "Your session is kept in the Windows Credential Manager."
            }
            Self::SecretService => {
                "Your session is kept in your desktop's keyring (Secret Service)."
            }
            Self::KernelKeyring => {
                "No desktop keyring is running, so your session is kept in the kernel keyring: \
                 you will need to log in again after a reboot."
            }
            Self::Memory => {
                "No keychain is available, so your session is kept in memory only: you will \
                 need to log in again when the app restarts."
            }
            Self::Mock => "Your session is kept in a test store.",
        }
    }
}
