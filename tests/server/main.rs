//! The real `iotchat-server` on an ephemeral loopback port, driven by clients we did not write:
//! the AWS SDK for Rust's Cognito clients.

mod api;
mod cognito;
mod durability;
mod mqtt;
mod peers;
mod support;
mod tls;
