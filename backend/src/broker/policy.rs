//! The AWS IoT policy of DESIGN.md, enforced in rmqtt's hooks: connect only through a verified
//! bridge connection; publish only to `room/public/<room>/<own identity>` (else disconnect, as
//! AWS IoT does); subscribe only under `room/public/` (else SUBACK 0x80). Every accepted chat
//! message is stored before the broker acknowledges it.

use std::sync::Arc;

use iotchat_protocol::api::StoredMessage;
use iotchat_protocol::{IncomingPayload, MAX_PAYLOAD_BYTES, MessageId, Topic};
use rmqtt::codec::v5::SubscribeAckReason;
use rmqtt::hook::{Handler, HookResult, Parameter, ReturnType};
use rmqtt::types::{AuthResult, PublishAclResult, SubscribeAclResult};

use super::Connections;
use crate::now_ms;
use crate::storage::Store;

/// What subscriptions may name.
const SUBSCRIBE_PREFIX: &str = "room/public/";

#[derive(Clone)]
pub(super) struct Hooks {
    connections: Arc<Connections>,
    store: Arc<dyn Store>,
}

impl Hooks {
    pub(super) fn new(connections: Arc<Connections>, store: Arc<dyn Store>) -> Self {
        Self { connections, store }
    }
}

/// Why a publish is refused, for the log.
fn publish_problem(
    identity: Option<&iotchat_protocol::IdentityId>,
    topic: &str,
    payload_len: usize,
) -> Option<String> {
    let Some(identity) = identity else { return Some("unknown connection".into()) };
    if payload_len > MAX_PAYLOAD_BYTES {
        return Some(format!("payload of {payload_len} bytes is over {MAX_PAYLOAD_BYTES}"));
    }
    match Topic::parse(topic) {
        Err(e) => Some(e.to_string()),
        Ok(topic) if topic.sender() != identity => {
            Some(format!("{identity} may not publish as {}", topic.sender()))
        }
        Ok(_) => None,
    }
}

#[async_trait::async_trait]
impl Handler for Hooks {
    async fn hook(&self, param: &Parameter, acc: Option<HookResult>) -> ReturnType {
        match param {
            Parameter::ClientAuthenticate(info) => {
                let known = self.connections.identity(info.id().remote_addr).is_some();
                let result =
                    if known { AuthResult::Allow(false, None) } else { AuthResult::NotAuthorized };
                (false, Some(HookResult::AuthResult(result)))
            }
            Parameter::MessagePublishCheckAcl(session, publish) => {
                let identity = self.connections.identity(session.id.remote_addr);
                let topic = publish.topic.to_string();
                if let Some(problem) =
                    publish_problem(identity.as_ref(), &topic, publish.payload.len())
                {
                    tracing::warn!(%topic, %problem, "publish refused; disconnecting the client");
                    let result = PublishAclResult::rejected(true, None);
                    return (false, Some(HookResult::PublishAclResult(result)));
                }
                self.connections.publish_budget(session.id.remote_addr).await;
                let result = match self.store_history(&topic, &publish.payload).await {
                    Ok(()) => PublishAclResult::allow(),
                    Err(error) => {
                        // Not stored means not acknowledged: the client will send it again.
                        tracing::error!(%error, "could not store a message; disconnecting");
                        PublishAclResult::rejected(true, None)
                    }
                };
                (false, Some(HookResult::PublishAclResult(result)))
            }
            Parameter::ClientSubscribeCheckAcl(_session, subscribe) => {
                let filter = subscribe.topic_filter.to_string();
                let result = if filter.starts_with(SUBSCRIBE_PREFIX) {
                    SubscribeAclResult::new_success(subscribe.opts.qos(), None)
                } else {
                    tracing::info!(%filter, "subscription refused");
                    SubscribeAclResult::new_failure(SubscribeAckReason::NotAuthorized)
                };
                (false, Some(HookResult::SubscribeAclResult(result)))
            }
            _ => (true, acc),
        }
    }
}

impl Hooks {
    /// Stores a chat message for history. Payloads that are not chat messages are delivered
    /// (AWS IoT would) but not stored; receivers drop them.
    async fn store_history(&self, topic: &str, payload: &[u8]) -> anyhow::Result<()> {
        let topic = Topic::parse(topic)?;
        let incoming = match IncomingPayload::parse(payload) {
            Ok(incoming) => incoming,
            Err(error) => {
                tracing::info!(%topic, %error, "not a chat message; delivered, not stored");
                return Ok(());
            }
        };
        let received_at = now_ms();
        let fallback = MessageId::parse(&uuid::Uuid::new_v4().to_string())?;
        let message = incoming.complete(received_at, || fallback);
        let stored = StoredMessage {
            id: message.id,
            room: topic.room().clone(),
            sender: topic.sender().clone(),
            message: message.text,
            sent_at: message.sent_at_ms,
            received_at,
        };
        self.store.message_insert(stored).await?;
        Ok(())
    }
}
