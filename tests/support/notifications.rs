//! A notification server for tests: owns `org.freedesktop.Notifications` on a private session
//! bus and records every `Notify` call, as a desktop's notification daemon would receive it.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};

use anyhow::{Context as _, Result};
use zbus::object_server::SignalEmitter;

/// One notification as the app sent it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notice {
    pub id: u32,
    pub app_name: String,
    pub summary: String,
    pub body: String,
    pub actions: Vec<String>,
}

#[derive(Debug, Default)]
struct Server {
    next_id: AtomicU32,
    received: Arc<Mutex<Vec<Notice>>>,
}

#[zbus::interface(name = "org.freedesktop.Notifications")]
impl Server {
    #[allow(clippy::too_many_arguments, reason = "the D-Bus method's signature")]
    fn notify(
        &self,
        app_name: String,
        _replaces_id: u32,
        _app_icon: String,
        summary: String,
        body: String,
        actions: Vec<String>,
        _hints: HashMap<String, zbus::zvariant::OwnedValue>,
        _expire_timeout: i32,
    ) -> u32 {
        let id = self.next_id.fetch_add(1, Ordering::SeqCst) + 1;
        if let Ok(mut received) = self.received.lock() {
            received.push(Notice { id, app_name, summary, body, actions });
        }
        id
    }

    fn get_capabilities(&self) -> Vec<String> {
        vec!["body".into(), "actions".into()]
    }

    fn get_server_information(&self) -> (String, String, String, String) {
        ("iotchat-tests".into(), "iotchat".into(), "1".into(), "1.2".into())
    }

    fn close_notification(&self, _id: u32) {}

    #[zbus(signal)]
    async fn action_invoked(
        emitter: &SignalEmitter<'_>,
        id: u32,
        action_key: &str,
    ) -> zbus::Result<()>;
}

/// The running test server.
#[derive(Debug)]
pub struct NotificationServer {
    connection: zbus::Connection,
    received: Arc<Mutex<Vec<Notice>>>,
}

const PATH: &str = "/org/freedesktop/Notifications";

impl NotificationServer {
    /// Serves on the bus at `address` until dropped.
    pub async fn start(address: &str) -> Result<Self> {
        let server = Server::default();
        let received = Arc::clone(&server.received);
        let connection = zbus::connection::Builder::address(address)?
            .name("org.freedesktop.Notifications")?
            .serve_at(PATH, server)?
            .build()
            .await
            .context("owning org.freedesktop.Notifications on the test bus")?;
        Ok(Self { connection, received })
    }

    /// Every notification received so far.
    pub fn received(&self) -> Vec<Notice> {
        self.received.lock().map(|r| r.clone()).unwrap_or_default()
    }

    /// Waits until at least `count` notifications have arrived.
    pub async fn wait_for(&self, count: usize) -> Result<Vec<Notice>> {
        let deadline = tokio::time::Instant::now() + crate::UI_TIMEOUT;
        loop {
            let received = self.received();
            if received.len() >= count {
                return Ok(received);
            }
            if tokio::time::Instant::now() >= deadline {
                anyhow::bail!(
                    "{} notifications arrived, not {count}: {received:?}",
                    received.len()
                );
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
    }

    /// Clicks a notification, as a person clicking its body does (the `default` action).
    pub async fn click(&self, id: u32) -> Result<()> {
        let emitter = SignalEmitter::new(&self.connection, PATH)?;
        Server::action_invoked(&emitter, id, "default").await?;
        Ok(())
    }
}
