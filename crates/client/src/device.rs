//! What a bare MQTT device needs from a backend once it holds credentials: its IoT policy
//! attached, and a presigned WebSocket URL to connect to. For tools that speak MQTT
//! themselves (the load generator); the chat client does the same inside [`crate::Client`].

use crate::Backend;
use crate::auth::AwsCredentials;
use crate::error::Result;

/// Attaches the identity's IoT policy (`POST /api/policy/attach`); idempotent.
pub async fn attach_policy(backend: &Backend, credentials: &AwsCredentials) -> Result<()> {
    crate::api::Api::new(backend)?.policy_attach(credentials).await.map(|_| ())
}

/// The profile's MQTT endpoint, presigned with `credentials` (valid for a few minutes).
pub fn presigned_mqtt_url(backend: &Backend, credentials: &AwsCredentials) -> Result<String> {
    crate::link::presign(&backend.profile.iot_endpoint, &backend.profile.region, credentials)
}
