//! What the client tells its front ends: the shared vocabulary of [`iotchat_protocol::chat`].

pub use iotchat_protocol::chat::{ConnectionState, Delivery, Event, TimelineMessage};
