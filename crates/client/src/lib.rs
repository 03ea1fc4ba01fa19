//! The headless IoT Chat client: everything the desktop app does, without a window.
//!
//! [`Client`] signs in through Cognito (the AWS SDK), keeps the tokens in the OS keychain
//! ([`secrets`]), calls the SigV4-signed API, holds the MQTT link (rumqttc over a presigned
//! WebSocket), and keeps the chat state: followed rooms, unread counts, the outbox, dedupe and
//! catch-up after reconnects. Front ends read [`Event`]s. It never depends on Tauri.

mod api;
pub mod auth;
pub mod backend;
mod client;
pub mod device;
pub mod error;
pub mod events;
mod link;
pub mod oauth;
pub mod secrets;
mod session;
mod state;

pub use backend::{Backend, LOCAL_SERVER};
pub use client::{Client, ClientConfig, HistoryPage, MAX_FOLLOWED_ROOMS, RoomSummary};
pub use error::{ClientError, Result};
pub use events::{ConnectionState, Delivery, Event, TimelineMessage};
pub use iotchat_protocol as protocol;
pub use oauth::{OpenUrl, SystemBrowser};
pub use secrets::{
    KeychainStore, MemoryStore, SecretStore, StoreKind, open_keychain, open_keychain_async,
};
pub use session::Account;
pub use state::FollowedRoom;

/// The platform's data directory for the client (`~/.local/share/iotchat` on Linux).
pub fn default_data_dir() -> std::path::PathBuf {
    dirs::data_dir().unwrap_or_else(|| std::path::PathBuf::from(".")).join("iotchat")
}
