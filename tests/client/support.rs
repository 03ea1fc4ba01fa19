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
pub(crate) struct TestServer {
    dir: tempfile::TempDir,
    port: u16,
    credentials_ttl_secs: Option<u64>,
    tls: bool,
    /// The hosted UI's redirect ports: free ones per server, as tests run side by side.
    callback_ports: Vec<u16>,
    running: Option<RunningServer>,
    profile: iotchat_server::profile::Profile,
}

impl TestServer {
    pub(crate) async fn start() -> Self {
        Self::start_with(None, false).await
    }

    /// A server whose identity credentials last `ttl` seconds.
    pub(crate) async fn start_with_ttl(credentials_ttl_secs: Option<u64>) -> Self {
        Self::start_with(credentials_ttl_secs, false).await
    }

    /// A server speaking TLS with a self-signed certificate, as a team server does.
    pub(crate) async fn start_tls() -> Self {
        Self::start_with(None, true).await
    }

    async fn start_with(credentials_ttl_secs: Option<u64>, tls: bool) -> Self {
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
        let running =
            Self::serve(dir.path(), credentials_ttl_secs, tls, &callback_ports, listener).await;
        let profile = running.profile().clone();
        Self {
            dir,
            port,
            credentials_ttl_secs,
            tls,
            callback_ports,
            running: Some(running),
            profile,
        }
    }

    async fn serve(
        dir: &std::path::Path,
        ttl: Option<u64>,
        tls: bool,
        callback_ports: &[u16],
        listener: tokio::net::TcpListener,
    ) -> RunningServer {
        let mut config = Config::for_data_dir(dir).expect("config");
        config.callback_ports = callback_ports.to_vec();
        if let Some(ttl) = ttl {
            config.credentials_ttl_secs = ttl;
        }
        if tls {
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
        let running = Self::serve(
            self.dir.path(),
            self.credentials_ttl_secs,
            self.tls,
            &self.callback_ports,
            listener,
        )
        .await;
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
