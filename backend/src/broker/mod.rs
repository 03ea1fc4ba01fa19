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
use std::num::{NonZeroU16, NonZeroU32};
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

/// Publishes one connection may make per second (AWS IoT's limit). A faster client is slowed
/// down: its acknowledgements wait, nothing is dropped.
pub(crate) const MAX_PUBLISHES_PER_SECOND: u32 = 100;

/// Keepalive bounds (AWS IoT's): shorter requests are raised, longer ones lowered, and 0
/// ("never") means the longest.
pub(crate) const KEEPALIVE_SECS: std::ops::RangeInclusive<u16> = 30..=1200;

/// One bridge connection: who it is, and its publish budget.
#[derive(Debug)]
struct Connection {
    identity: IdentityId,
    publishes: Arc<governor::DefaultDirectRateLimiter>,
}

/// Which identity each bridge connection (by its local port) carries.
#[derive(Debug, Default)]
pub(crate) struct Connections {
    by_port: Mutex<HashMap<u16, Connection>>,
}

impl Connections {
    fn insert(&self, port: u16, identity: IdentityId) {
        let per_second = NonZeroU32::new(MAX_PUBLISHES_PER_SECOND).unwrap_or(NonZeroU32::MIN);
        let publishes =
            Arc::new(governor::RateLimiter::direct(governor::Quota::per_second(per_second)));
        if let Ok(mut map) = self.by_port.lock() {
            map.insert(port, Connection { identity, publishes });
        }
    }

    fn remove(&self, port: u16) {
        if let Ok(mut map) = self.by_port.lock() {
            map.remove(&port);
        }
    }

    pub(crate) fn identity(&self, addr: Option<SocketAddr>) -> Option<IdentityId> {
        let port = addr?.port();
        self.by_port.lock().ok()?.get(&port).map(|c| c.identity.clone())
    }

    /// Waits until the connection may publish again.
    pub(crate) async fn publish_budget(&self, addr: Option<SocketAddr>) {
        let limiter = addr.and_then(|addr| {
            let map = self.by_port.lock().ok()?;
            map.get(&addr.port()).map(|c| Arc::clone(&c.publishes))
        });
        if let Some(limiter) = limiter {
            limiter.until_ready().await;
        }
    }
}

/// rmqtt's keepalive handling, with AWS IoT's bounds instead of refusing MQTT 3 clients whose
/// keepalive is outside them.
struct KeepaliveFitters;

impl rmqtt::fitter::FitterManager for KeepaliveFitters {
    fn create(
        &self,
        conn_info: Arc<rmqtt::types::ConnectInfo>,
        id: rmqtt::types::Id,
        cfg: rmqtt::types::ListenerConfig,
    ) -> rmqtt::types::FitterType {
        Arc::new(KeepaliveFitter(rmqtt::fitter::DefaultFitter::new(conn_info, id, cfg)))
    }
}

struct KeepaliveFitter(rmqtt::fitter::DefaultFitter);

#[async_trait::async_trait]
impl rmqtt::fitter::Fitter for KeepaliveFitter {
    fn keep_alive(&self, keep_alive: &mut u16) -> rmqtt::Result<u16> {
        *keep_alive = match *keep_alive {
            0 => *KEEPALIVE_SECS.end(),
            secs => secs.clamp(*KEEPALIVE_SECS.start(), *KEEPALIVE_SECS.end()),
        };
        self.0.keep_alive(keep_alive)
    }
    fn max_mqueue_len(&self) -> usize {
        self.0.max_mqueue_len()
    }
    fn mqueue_rate_limit(&self) -> (NonZeroU32, Duration) {
        self.0.mqueue_rate_limit()
    }
    fn max_inflight(&self) -> NonZeroU16 {
        self.0.max_inflight()
    }
    fn session_expiry_interval(&self, d: Option<&rmqtt::types::Disconnect>) -> Duration {
        self.0.session_expiry_interval(d)
    }
    fn message_expiry_interval(&self, publish: &rmqtt::codec::types::Publish) -> Duration {
        self.0.message_expiry_interval(publish)
    }
    fn max_client_topic_aliases(&self) -> u16 {
        self.0.max_client_topic_aliases()
    }
    fn max_server_topic_aliases(&self) -> u16 {
        self.0.max_server_topic_aliases()
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
                *scx.extends.fitter_mgr.write().await = Box::new(KeepaliveFitters);
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
                    .min_keepalive(*KEEPALIVE_SECS.start())
                    .max_keepalive(*KEEPALIVE_SECS.end())
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
