//! The embedded MQTT broker: rmqtt does routing, sessions and QoS; we own only who may connect,
//! the topic policy, and the history hook.
//!
//! Clients reach it as AWS IoT clients do, over a SigV4-presigned WebSocket at `/mqtt`. axum
//! verifies the URL, then [`bridge`] pipes the WebSocket's bytes to rmqtt's TCP listener on
//! loopback. rmqtt learns who is connecting from the bridge's local port, which the bridge
//! registers before it forwards a byte (no MQTT parsing on our side).

mod bridge;
mod policy;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::num::NonZeroU16;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context as _;
use iotchat_protocol::{IdentityId, MAX_PAYLOAD_BYTES};
use rmqtt::context::ServerContext;
use rmqtt::hook::Type;
use rmqtt::net::Builder;
use rmqtt::server::MqttServer;

pub(crate) use bridge::upgrade;

use crate::storage::Store;

/// Subscriptions one connection may hold (AWS IoT's limit).
pub(crate) const MAX_SUBSCRIPTIONS: usize = 50;

/// Which identity each bridge connection (by its local port) carries.
#[derive(Debug, Default)]
pub(crate) struct Connections {
    by_port: Mutex<HashMap<u16, IdentityId>>,
}

impl Connections {
    fn insert(&self, port: u16, identity: IdentityId) {
        if let Ok(mut map) = self.by_port.lock() {
            map.insert(port, identity);
        }
    }

    fn remove(&self, port: u16) {
        if let Ok(mut map) = self.by_port.lock() {
            map.remove(&port);
        }
    }

    pub(crate) fn identity(&self, addr: Option<SocketAddr>) -> Option<IdentityId> {
        let port = addr?.port();
        self.by_port.lock().ok()?.get(&port).cloned()
    }
}

/// The running broker, on a runtime of its own so it can be stopped completely.
pub(crate) struct Broker {
    addr: SocketAddr,
    pub(crate) connections: Arc<Connections>,
    runtime: Option<tokio::runtime::Runtime>,
}

impl std::fmt::Debug for Broker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Broker").field("addr", &self.addr).finish_non_exhaustive()
    }
}

impl Broker {
    /// Starts rmqtt on `127.0.0.1:<ephemeral>` with our hooks.
    pub(crate) async fn start(store: Arc<dyn Store>) -> anyhow::Result<Self> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("broker")
            .enable_all()
            .build()
            .context("starting the broker's runtime")?;
        let connections = Arc::new(Connections::default());
        let hooks = policy::Hooks::new(Arc::clone(&connections), store);
        let addr = runtime
            .spawn(async move {
                // The default refuses CONNECTs while the CPU is busy: flaky on small machines.
                let scx = ServerContext::new().busy_check_enable(false).build().await;
                let register = scx.extends.hook_mgr().register();
                for typ in [
                    Type::ClientAuthenticate,
                    Type::MessagePublishCheckAcl,
                    Type::ClientSubscribeCheckAcl,
                ] {
                    register.add(typ, Box::new(hooks.clone())).await;
                }
                register.start().await;
                let listener = Builder::new()
                    .name("bridge")
                    .laddr(([127, 0, 0, 1], 0).into())
                    // Our limit is on the payload; leave room for the topic and the header.
                    .max_packet_size((MAX_PAYLOAD_BYTES + 1024) as u32)
                    .max_qos_allowed(rmqtt::codec::types::QoS::AtLeastOnce)
                    // The default (1,000) silently drops messages in a burst.
                    .max_mqueue_len(100_000)
                    .max_inflight(NonZeroU16::new(100).unwrap_or(NonZeroU16::MIN))
                    .send_timeout(Duration::ZERO)
                    // AWS IoT's limit per connection; the next one gets SUBACK 0x80.
                    .max_subscriptions(MAX_SUBSCRIPTIONS)
                    .allow_anonymous(false)
                    .bind()?;
                let addr = listener.local_addr()?;
                let server = MqttServer::new(scx).listener_by_id(listener.tcp()?, 1).build();
                tokio::spawn(async move {
                    if let Err(error) = server.run().await {
                        tracing::error!(%error, "the MQTT broker stopped");
                    }
                });
                anyhow::Ok(addr)
            })
            .await
            .context("the broker's start-up task failed")??;
        tracing::info!(%addr, "MQTT broker listening on loopback for the /mqtt bridge");
        Ok(Self { addr, connections, runtime: Some(runtime) })
    }

    pub(crate) fn addr(&self) -> SocketAddr {
        self.addr
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        // Dropping a runtime inside async code panics; this stops its tasks without waiting.
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}
