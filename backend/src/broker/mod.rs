//! The embedded MQTT broker: rmqtt does routing, sessions and QoS; we own only who may connect,
//! the topic policy, and the history hook.
//!
//! Clients reach it as AWS IoT clients do, over a SigV4-presigned WebSocket at `/mqtt`. axum
//! verifies the URL, then [`bridge`] pipes the WebSocket's bytes to rmqtt's TCP listener on
//! loopback. That listener is reachable by every local process, so rmqtt takes nobody's word
//! for who is connecting: the bridge registers each connection (by its whole local address)
//! with a secret drawn for it, and rewrites the CONNECT's login to the verified identity and
//! that secret ([`connect`]); the authentication hook admits only a CONNECT that matches the
//! registration of the address it comes from.

mod bridge;
mod connect;
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

/// One bridge connection: who it is, the secret its CONNECT carries, and its publish budget.
struct Connection {
    identity: IdentityId,
    secret: Vec<u8>,
    publishes: Arc<governor::DefaultDirectRateLimiter>,
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection").field("identity", &self.identity).finish_non_exhaustive()
    }
}

/// Which identity each bridge connection carries, by the bridge's end of its TCP connection
/// to the broker (address and port: while the connection lives, no other socket has them).
#[derive(Debug, Default)]
pub(crate) struct Connections {
    by_addr: Mutex<HashMap<SocketAddr, Connection>>,
}

/// Why the broker refused a CONNECT.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub(crate) enum Refused {
    #[error("the connection did not come through the /mqtt bridge")]
    NotBridged,
    #[error("the CONNECT does not carry its bridge connection's login")]
    WrongLogin,
    #[error("the client id {client_id:?} does not start with {identity}-")]
    ForeignClientId { client_id: String, identity: IdentityId },
    #[error("the last-will message is refused: {0}")]
    Will(String),
}

impl Connections {
    /// Registers a bridge connection; its CONNECT must carry the login this returns.
    fn insert(&self, addr: SocketAddr, identity: IdentityId) -> connect::Login {
        use rand::RngCore as _;
        let mut secret = vec![0u8; 32];
        rand::rng().fill_bytes(&mut secret);
        let per_second = NonZeroU32::new(MAX_PUBLISHES_PER_SECOND).unwrap_or(NonZeroU32::MIN);
        let publishes =
            Arc::new(governor::RateLimiter::direct(governor::Quota::per_second(per_second)));
        let login = connect::Login { username: identity.to_string(), password: secret.clone() };
        if let Ok(mut map) = self.by_addr.lock() {
            map.insert(addr, Connection { identity, secret, publishes });
        }
        login
    }

    fn remove(&self, addr: SocketAddr) {
        if let Ok(mut map) = self.by_addr.lock() {
            map.remove(&addr);
        }
    }

    /// Checks a CONNECT: it must come from a registered bridge connection and carry exactly
    /// that connection's login. Returns who it is.
    pub(crate) fn admit(
        &self,
        addr: Option<SocketAddr>,
        username: Option<&str>,
        password: Option<&[u8]>,
    ) -> Result<IdentityId, Refused> {
        use subtle::ConstantTimeEq as _;
        let map = self.by_addr.lock().map_err(|_| Refused::NotBridged)?;
        let connection = addr.and_then(|addr| map.get(&addr)).ok_or(Refused::NotBridged)?;
        let user_matches = username == Some(connection.identity.as_str());
        let secret_matches =
            password.is_some_and(|given| bool::from(given.ct_eq(&connection.secret)));
        if user_matches && secret_matches {
            Ok(connection.identity.clone())
        } else {
            Err(Refused::WrongLogin)
        }
    }

    pub(crate) fn identity(&self, addr: Option<SocketAddr>) -> Option<IdentityId> {
        let addr = addr?;
        self.by_addr.lock().ok()?.get(&addr).map(|c| c.identity.clone())
    }

    /// Waits until the connection may publish again.
    pub(crate) async fn publish_budget(&self, addr: Option<SocketAddr>) {
        let limiter = addr.and_then(|addr| {
            let map = self.by_addr.lock().ok()?;
            map.get(&addr).map(|c| Arc::clone(&c.publishes))
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
                    Type::MessagePublish,
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
                    // rmqtt's default leaves Nagle on for its side of the bridge: a PUBLISH
                    // written while the previous one is unacknowledged waited for the bridge's
                    // delayed ACK (p50 29 ms in 50 quiet rooms; 0.4 ms with Mosquitto).
                    .nodelay(true)
                    // AWS IoT's limit per connection; the next one gets SUBACK 0x80.
                    .max_subscriptions(MAX_SUBSCRIPTIONS)
                    .min_keepalive(*KEEPALIVE_SECS.start())
                    .max_keepalive(*KEEPALIVE_SECS.end())
                    .allow_anonymous(false)
                    // AWS IoT's: client ids of at most 128 bytes, persistent sessions kept an
                    // hour, a CONNECT within seconds of the bridge's connection.
                    .max_clientid_len(128)
                    .session_expiry_interval(Duration::from_secs(3600))
                    .max_session_expiry_interval(Duration::from_secs(3600))
                    .handshake_timeout(Duration::from_secs(10))
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
