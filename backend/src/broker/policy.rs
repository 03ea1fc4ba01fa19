//! The AWS IoT policy of DESIGN.md, enforced in rmqtt's hooks: connect only through a verified
//! bridge connection, with a client id that starts with the identity (`<identityId>-…`, the
//! static policy's `iot:Connect` resource) and a last will the identity could publish;
//! publish only to `room/public/<room>/<own identity>`, at QoS 0 or 1, not retained (else
//! disconnect, as AWS IoT does); subscribe only under `room/public/`, within AWS IoT's topic
//! limits (else SUBACK 0x80), granted at most QoS 1. Every accepted chat message is stored
//! before the broker acknowledges it, and a will that fires is stored before it is delivered.

use std::sync::Arc;

use iotchat_protocol::{IdentityId, MAX_PAYLOAD_BYTES, MessageId, Topic};
use rmqtt::codec::types::QoS;
use rmqtt::codec::v5::SubscribeAckReason;
use rmqtt::hook::{Handler, HookResult, Parameter, ReturnType};
use rmqtt::types::{AuthResult, LastWill, PublishAclResult, SubscribeAclResult};

use super::{Connections, Refused};
use crate::now_ms;
use crate::storage::Store;

/// What subscriptions may name.
const SUBSCRIBE_PREFIX: &str = "room/public/";
/// Where a will goes that could not be stored: outside `room/public/`, so nobody receives it.
const UNDELIVERABLE: &str = "$iotchat/undeliverable";
/// AWS IoT's limits on a topic or filter: bytes, and forward slashes.
const MAX_TOPIC_BYTES: usize = 256;
const MAX_TOPIC_SLASHES: usize = 7;

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

/// Why a publish (or a will) is refused, for the log.
fn publish_problem(
    identity: Option<&iotchat_protocol::IdentityId>,
    topic: &str,
    payload_len: usize,
    qos: QoS,
    retain: bool,
) -> Option<String> {
    let Some(identity) = identity else { return Some("unknown connection".into()) };
    if payload_len > MAX_PAYLOAD_BYTES {
        return Some(format!("payload of {payload_len} bytes is over {MAX_PAYLOAD_BYTES}"));
    }
    if qos == QoS::ExactlyOnce {
        return Some("QoS 2 is not supported (AWS IoT has QoS 0 and 1 only)".into());
    }
    if retain {
        return Some(
            "retained messages are not allowed (the policy grants no iot:RetainPublish)".into(),
        );
    }
    match Topic::parse(topic) {
        Err(e) => Some(e.to_string()),
        Ok(topic) if topic.sender() != identity => {
            Some(format!("{identity} may not publish as {}", topic.sender()))
        }
        Ok(_) => None,
    }
}

/// Why a subscription filter is refused, for the log.
fn filter_problem(filter: &str) -> Option<String> {
    if !filter.starts_with(SUBSCRIBE_PREFIX) {
        return Some(format!("only filters under {SUBSCRIBE_PREFIX} may be subscribed"));
    }
    if filter.len() > MAX_TOPIC_BYTES {
        return Some(format!("the filter is over {MAX_TOPIC_BYTES} bytes"));
    }
    if filter.matches('/').count() > MAX_TOPIC_SLASHES {
        return Some(format!("the filter has more than {MAX_TOPIC_SLASHES} slashes"));
    }
    None
}

/// Checks a CONNECT (after the bridge's login, which `connections` verifies): the client id
/// must be the identity's, and a will must be something the identity may publish.
fn connect_problem(
    connections: &Connections,
    info: &rmqtt::types::ConnectInfo,
) -> Result<IdentityId, Refused> {
    let username = info.username().map(|u| u.as_ref());
    let password = info.password().map(|p| p.as_ref());
    let identity = connections.admit(info.id().remote_addr, username, password)?;
    let client_id: &str = info.client_id().as_ref();
    if !client_id.starts_with(&format!("{identity}-")) {
        return Err(Refused::ForeignClientId { client_id: client_id.to_owned(), identity });
    }
    let will = info.last_will().map(|will| match will {
        LastWill::V3(w) => (w.topic.to_string(), w.message.len(), w.qos, w.retain),
        LastWill::V5(w) => (w.topic.to_string(), w.message.len(), w.qos, w.retain),
    });
    if let Some((topic, len, qos, retain)) = will
        && let Some(problem) = publish_problem(Some(&identity), &topic, len, qos, retain)
    {
        return Err(Refused::Will(format!("{topic}: {problem}")));
    }
    Ok(identity)
}

#[async_trait::async_trait]
impl Handler for Hooks {
    async fn hook(&self, param: &Parameter, acc: Option<HookResult>) -> ReturnType {
        match param {
            Parameter::ClientAuthenticate(info) => {
                let result = match connect_problem(&self.connections, info) {
                    Ok(_) => AuthResult::Allow(false, None),
                    Err(refused) => {
                        let client_id: &str = info.client_id().as_ref();
                        tracing::warn!(%refused, client_id, "MQTT connection refused");
                        AuthResult::NotAuthorized
                    }
                };
                (false, Some(HookResult::AuthResult(result)))
            }
            Parameter::MessagePublishCheckAcl(session, publish) => {
                let identity = self.connections.identity(session.id.remote_addr);
                let topic = publish.topic.to_string();
                let problem = publish_problem(
                    identity.as_ref(),
                    &topic,
                    publish.payload.len(),
                    publish.qos,
                    publish.retain,
                );
                if let Some(problem) = problem {
                    tracing::warn!(%topic, %problem, "publish refused; disconnecting the client");
                    let result = PublishAclResult::rejected(true, None);
                    return (false, Some(HookResult::PublishAclResult(result)));
                }
                self.connections.publish_budget(session.id.remote_addr).await;
                let result = match self.store_history(&topic, &publish.payload).await {
                    Ok(()) => PublishAclResult::allow(),
                    Err(error) => {
                        // Not stored means not acknowledged: the client will send it again.
                        tracing::error!(
                            %error,
                            "could not store a message (is the disk full or read-only?): \
                             refused without a PUBACK, disconnecting its sender"
                        );
                        PublishAclResult::rejected(true, None)
                    }
                };
                (false, Some(HookResult::PublishAclResult(result)))
            }
            // A will fires without the publish ACL; it was checked at CONNECT, so it only
            // needs to reach history like any message of its sender.
            Parameter::MessagePublish(_session, from, publish)
                if matches!(from.typ(), rmqtt::types::FromType::LastWill) =>
            {
                let topic = publish.topic.to_string();
                match self.store_history(&topic, &publish.payload).await {
                    Ok(()) => (true, acc),
                    Err(error) => {
                        // A will cannot be dropped here, only changed: send it where no
                        // subscription can reach, so nothing is delivered that is not stored.
                        tracing::error!(%topic, %error, "could not store a last-will message");
                        let mut undeliverable = (*publish).clone();
                        undeliverable.topic = UNDELIVERABLE.into();
                        (false, Some(HookResult::Publish(undeliverable)))
                    }
                }
            }
            Parameter::ClientSubscribeCheckAcl(_session, subscribe) => {
                let filter = subscribe.topic_filter.to_string();
                let result = match filter_problem(&filter) {
                    // AWS IoT grants QoS 2 requests at QoS 1.
                    None => SubscribeAclResult::new_success(
                        subscribe.opts.qos().min(QoS::AtLeastOnce),
                        None,
                    ),
                    Some(problem) => {
                        tracing::info!(%filter, %problem, "subscription refused");
                        SubscribeAclResult::new_failure(SubscribeAckReason::NotAuthorized)
                    }
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
        let new_id = || MessageId::parse(&uuid::Uuid::new_v4().to_string());
        let fallback = new_id()?;
        let stored = match iotchat_api::history_entry(topic, payload, now_ms(), || fallback) {
            Ok(stored) => stored,
            Err(iotchat_api::NotKept::Topic(error)) => return Err(error.into()),
            Err(error @ iotchat_api::NotKept::Payload(_)) => {
                tracing::info!(%topic, %error, "delivered, not stored");
                return Ok(());
            }
        };
        self.store.message_insert(stored).await?;
        Ok(())
    }
}
