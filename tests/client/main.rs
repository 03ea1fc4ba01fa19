//! The client core and the `iotchat` CLI against the real server on an ephemeral loopback port:
//! sessions in the real OS keychain (the kernel keyring on a headless Linux), chat, unread
//! counts, the outbox across outages, catch-up after restarts, credential renewal, logout.

mod chat;
mod cli;
mod faults;
mod oauth;
mod resilience;
mod session;
mod support;
