use std::sync::Arc;
use std::time::Duration;

use iotchat_client::protocol::RoomName;
use iotchat_client::{
    Backend, Client, ClientConfig, Event, MemoryStore, SecretStore, TimelineMessage,
    open_keychain_async,
};
use iotchat_server::RunningServer;
use iotchat_server::config::Config;
use tokio::sync::broadcast;

pub(crate) const PASSWORD: &str = "Correct-Horse-9";
/// How long a test waits for something that should happen.
pub(crate) const WAIT: Duration = Duration::from_secs(20);

/// The real server, on a port that stays the same across restarts.
/// What a test changes of the server's defaults.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Tweaks {
    /// Identity credentials last this many seconds.
    pub(crate) credentials_ttl_secs: Option<u64>,
    /// TLS with a self-signed certificate, as a team server does.
    pub(crate) tls: bool,
    /// The server closes each MQTT WebSocket after this many seconds.
    pub(crate) max_connection_age_secs: Option<u64>,
}

pub(crate) struct TestServer {
    dir: tempfile::TempDir,
    port: u16,
    tweaks: Tweaks,
    /// The hosted UI's redirect ports: free ones per server, as tests run side by side.
    callback_ports: Vec<u16>,
    running: Option<RunningServer>,
    profile: iotchat_server::profile::Profile,
}

impl TestServer {
    pub(crate) async fn start() -> Self {
        Self::start_with(Tweaks::default()).await
    }

    /// A server whose identity credentials last `ttl` seconds.
    pub(crate) async fn start_with_ttl(credentials_ttl_secs: Option<u64>) -> Self {
        Self::start_with(Tweaks { credentials_ttl_secs, ..Tweaks::default() }).await
    }

    /// A server speaking TLS with a self-signed certificate, as a team server does.
    pub(crate) async fn start_tls() -> Self {
        Self::start_with(Tweaks { tls: true, ..Tweaks::default() }).await
    }

    pub(crate) async fn start_with(tweaks: Tweaks) -> Self {
        // IOTCHAT_TEST_LOG=<filter> shows the client core's and the server's logs.
        if let Ok(filter) = std::env::var("IOTCHAT_TEST_LOG") {
            let _ = tracing_subscriber::fmt()
                .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
                .with_test_writer()
                .try_init();
        }
        let dir = tempfile::tempdir().expect("temp dir");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind loopback");
        let port = listener.local_addr().expect("address").port();
        let callback_ports: Vec<u16> =
            (0..3).map(|_| iotchat_tests::free_port().expect("a free loopback port")).collect();
        let running = Self::serve(dir.path(), tweaks, &callback_ports, listener).await;
        let profile = running.profile().clone();
        Self { dir, port, tweaks, callback_ports, running: Some(running), profile }
    }

    async fn serve(
        dir: &std::path::Path,
        tweaks: Tweaks,
        callback_ports: &[u16],
        listener: tokio::net::TcpListener,
    ) -> RunningServer {
        let mut config = Config::for_data_dir(dir).expect("config");
        config.callback_ports = callback_ports.to_vec();
        if let Some(ttl) = tweaks.credentials_ttl_secs {
            config.credentials_ttl_secs = ttl;
        }
        if let Some(age) = tweaks.max_connection_age_secs {
            config.max_connection_age_secs = age;
        }
        if tweaks.tls {
            config.tls = iotchat_server::config::Tls::SelfSigned;
        }
        iotchat_server::start(&config, listener).await.expect("server starts")
    }

    pub(crate) fn profile(&self) -> iotchat_server::profile::Profile {
        self.profile.clone()
    }

    pub(crate) fn data_dir(&self) -> &std::path::Path {
        self.dir.path()
    }

    pub(crate) async fn stop(&mut self) {
        if let Some(running) = self.running.take() {
            running.stop().await.expect("server stops");
        }
    }

    /// Starts the server again on the same port and data directory.
    pub(crate) async fn restart(&mut self) {
        self.stop().await;
        let mut attempts = 0;
        let listener = loop {
            match tokio::net::TcpListener::bind(("127.0.0.1", self.port)).await {
                Ok(listener) => break listener,
                Err(_) if attempts < 50 => {
                    attempts += 1;
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Err(error) => panic!("cannot bind port {} again: {error}", self.port),
            }
        };
        let running =
            Self::serve(self.dir.path(), self.tweaks, &self.callback_ports, listener).await;
        assert_eq!(running.profile(), &self.profile, "a restart keeps the profile");
        self.running = Some(running);
    }
}

/// A keychain service name of its own for each test (the kernel keyring is per user, shared).
pub(crate) fn keychain_service() -> String {
    format!("iotchat-test-{}", uuid::Uuid::new_v4())
}

/// The real platform keychain, under a fresh service name.
pub(crate) async fn keychain() -> Arc<dyn SecretStore> {
    let store = open_keychain_async(&keychain_service()).await;
    Arc::new(store.expect("a keychain: the kernel keyring at least"))
}

/// One person on one computer: a data directory, a secret store, and a client.
pub(crate) struct Device {
    pub(crate) client: Client,
    pub(crate) events: broadcast::Receiver<Event>,
    pub(crate) data: tempfile::TempDir,
    pub(crate) secrets: Arc<dyn SecretStore>,
    profile: iotchat_server::profile::Profile,
}

impl Device {
    pub(crate) fn new(
        profile: iotchat_server::profile::Profile,
        secrets: Arc<dyn SecretStore>,
    ) -> Self {
        let data = tempfile::tempdir().expect("temp dir");
        let client = client(&profile, data.path(), Arc::clone(&secrets));
        let events = client.events();
        Self { client, events, data, secrets, profile }
    }

    /// A registered, logged-in user with the real keychain.
    pub(crate) async fn signed_up(server: &TestServer, username: &str) -> Self {
        let device = Self::new(server.profile(), keychain().await);
        device
            .client
            .register(username, &format!("{username}@example.com"), PASSWORD)
            .await
            .expect("register");
        device.client.login(username, PASSWORD).await.expect("log in");
        device.online().await;
        device
    }

    /// The app restarting on this computer: a new client on the same data and keychain.
    pub(crate) async fn restart(&mut self) {
        self.client.shutdown().await;
        self.client = client(&self.profile, self.data.path(), Arc::clone(&self.secrets));
        self.events = self.client.events();
    }

    /// Waits until the MQTT link is up.
    pub(crate) async fn online(&self) {
        let deadline = tokio::time::Instant::now() + WAIT;
        while self.client.connection() != iotchat_client::ConnectionState::Online {
            assert!(tokio::time::Instant::now() < deadline, "the client goes online");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Waits for an event `want` accepts, skipping others.
    pub(crate) async fn expect<T>(&mut self, mut want: impl FnMut(&Event) -> Option<T>) -> T {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let event = tokio::time::timeout_at(deadline, self.events.recv())
                .await
                .expect("the expected event arrives in time")
                .expect("the event stream stays open");
            if let Some(found) = want(&event) {
                return found;
            }
        }
    }

    /// Waits for the next `count` messages in `room` from others (or all, with `own`).
    pub(crate) async fn messages(&mut self, room: &RoomName, count: usize) -> Vec<TimelineMessage> {
        let mut found = Vec::new();
        while found.len() < count {
            let message = self
                .expect(|e| match e {
                    Event::Message { message, .. } if &message.room == room && !message.own => {
                        Some(message.clone())
                    }
                    _ => None,
                })
                .await;
            found.push(message);
        }
        found
    }

    /// Receives `count` distinct messages in `room`, then asserts that none came twice and
    /// that no further message arrives for a second. Returns their texts.
    pub(crate) async fn receive_each_once(&mut self, room: &RoomName, count: usize) -> Vec<String> {
        let mut counts: std::collections::HashMap<String, usize> = Default::default();
        while counts.len() < count {
            let text = self
                .expect(|e| match e {
                    Event::Message { message, .. } if &message.room == room => {
                        Some(message.text.clone())
                    }
                    _ => None,
                })
                .await;
            *counts.entry(text).or_default() += 1;
        }
        self.expect_none(Duration::from_secs(1), |e| matches!(e, Event::Message { .. })).await;
        assert!(counts.values().all(|&n| n == 1), "each message once: {counts:?}");
        counts.into_keys().collect()
    }

    /// Waits until every message this device sent is acknowledged (its outbox is empty).
    pub(crate) async fn outbox_drains(&self) {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let outbox = self.client.outbox(None).await.expect("the outbox");
            if outbox.is_empty() {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "everything is acknowledged in time; still in the outbox: {outbox:?}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Every message of `room`'s history, newest first, page after page.
    pub(crate) async fn whole_history(&self, room: &RoomName) -> Vec<TimelineMessage> {
        let mut all = Vec::new();
        let mut before = None;
        loop {
            let page = self.client.history(room, before.as_deref(), 200).await.expect("history");
            all.extend(page.messages);
            match page.next_before {
                Some(next) => before = Some(next),
                None => return all,
            }
        }
    }

    /// No event `unwanted` accepts arrives within `quiet`.
    pub(crate) async fn expect_none(
        &mut self,
        quiet: Duration,
        mut unwanted: impl FnMut(&Event) -> bool,
    ) {
        let deadline = tokio::time::Instant::now() + quiet;
        while let Ok(event) = tokio::time::timeout_at(deadline, self.events.recv()).await {
            let event = event.expect("the event stream stays open");
            assert!(!unwanted(&event), "unexpected event {event:?}");
        }
    }
}

pub(crate) fn client(
    profile: &iotchat_server::profile::Profile,
    data_dir: &std::path::Path,
    secrets: Arc<dyn SecretStore>,
) -> Client {
    let backend = Backend::new(profile.clone()).expect("backend");
    Client::new(ClientConfig {
        backend,
        data_dir: data_dir.to_owned(),
        secrets,
        connect: true,
        instance: None,
    })
    .expect("client")
}

pub(crate) fn memory() -> Arc<MemoryStore> {
    Arc::new(MemoryStore::default())
}

pub(crate) fn room(slug: &str) -> RoomName {
    RoomName::from_user_input(slug).expect("a room name")
}
