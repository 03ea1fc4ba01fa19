//! The real `iotchat-server` on an ephemeral loopback port, driven by clients we did not write:
//! the AWS SDK for Rust's Cognito clients.

mod api;
mod cognito;
mod durability;
mod hosted_ui;
mod limits;
mod loadgen;
mod mqtt;
mod peers;
mod policy;
mod secrets;
mod support;
mod tls;
