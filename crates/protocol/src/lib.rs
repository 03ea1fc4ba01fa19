//! The vocabulary every IoT Chat component shares: the MQTT topic scheme, room slugs, the chat
//! payload, the HTTP API's request and response types, the shell–UI types, and the one error
//! shape.
//!
//! This crate is wasm-clean: it has no I/O, no clock and no randomness, so the Leptos UI, the
//! client core, the server and the Lambda handlers can all depend on it. Callers pass in the
//! time and fresh ids where a rule needs them.

pub mod api;
pub mod auth;
pub mod chat;
pub mod desktop;
pub mod error;
pub mod identity;
pub mod payload;
pub mod profile;
pub mod slug;
pub mod topic;

pub use error::{Code, ErrorBody};
pub use identity::{IdentityId, IdentityIdError};
pub use payload::{
    ChatMessage, IncomingPayload, MAX_PAYLOAD_BYTES, MessageId, OutgoingPayload, PayloadError,
};
pub use profile::{HostedUi, Profile, ProfileError, loopback_redirect_uri};
pub use slug::{RoomDisplayName, RoomSlug, SlugError};
pub use topic::{RoomName, Topic, TopicError, TopicFilter};
