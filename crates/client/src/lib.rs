//! The headless IoT Chat client: everything the desktop app does, without a window.
//!
//! It is filled in by the client-core issue (session, keychain, SigV4 API client, MQTT link,
//! chat state, outbox, events). It depends on the protocol crate only, never on Tauri.

pub use iotchat_protocol as protocol;
