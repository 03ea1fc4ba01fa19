//! A TCP proxy between one client and the server that cuts, stalls and throttles its
//! connections: the client reconnects with backoff, its outbox drains, and nothing is lost or
//! delivered twice.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use iotchat_client::{ConnectionState, Event};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

use crate::support::{Device, PASSWORD, TestServer, WAIT, keychain, room};

/// What the proxy does to the bytes it forwards.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Pass,
    /// Holds every byte (the connections stay open, as on a dead Wi-Fi).
    Stall,
    /// At most this many bytes a second each way, per connection.
    Throttle(u32),
}

/// A loopback TCP proxy to `upstream`. Dropping it stops it.
struct FaultProxy {
    addr: std::net::SocketAddr,
    mode: watch::Sender<Mode>,
    /// Bumped to cut every open connection.
    cuts: watch::Sender<u64>,
    accepted: Arc<AtomicU64>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl FaultProxy {
    async fn start(upstream: std::net::SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("a loopback port");
        let addr = listener.local_addr().expect("its address");
        let (mode, _) = watch::channel(Mode::Pass);
        let (cuts, _) = watch::channel(0u64);
        let accepted = Arc::new(AtomicU64::new(0));
        let (mode_rx, cuts_rx, count) = (mode.subscribe(), cuts.subscribe(), Arc::clone(&accepted));
        let task = tokio::spawn(async move {
            while let Ok((inbound, _)) = listener.accept().await {
                count.fetch_add(1, Ordering::Relaxed);
                let Ok(outbound) = TcpStream::connect(upstream).await else { continue };
                let (mode, mut cut) = (mode_rx.clone(), cuts_rx.clone());
                cut.mark_unchanged();
                tokio::spawn(async move {
                    let (in_read, in_write) = inbound.into_split();
                    let (out_read, out_write) = outbound.into_split();
                    tokio::select! {
                        () = pump(in_read, out_write, mode.clone()) => {}
                        () = pump(out_read, in_write, mode) => {}
                        _ = cut.changed() => {}
                    }
                    // Dropping both halves of both sockets closes the connection.
                });
            }
        });
        Self { addr, mode, cuts, accepted, task }
    }

    fn set(&self, mode: Mode) {
        self.mode.send_replace(mode);
    }

    fn cut(&self) {
        self.cuts.send_modify(|n| *n += 1);
    }
}

async fn pump(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    mut mode: watch::Receiver<Mode>,
) {
    let mut buffer = vec![0u8; 16 * 1024];
    loop {
        let limit = match *mode.borrow() {
            Mode::Throttle(per_second) => (per_second as usize / 10).clamp(1, buffer.len()),
            _ => buffer.len(),
        };
        let n = match from.read(&mut buffer[..limit]).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        loop {
            let current = *mode.borrow_and_update();
            match current {
                Mode::Stall => {
                    if mode.changed().await.is_err() {
                        return;
                    }
                }
                Mode::Throttle(_) => {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    break;
                }
                Mode::Pass => break,
            }
        }
        if to.write_all(&buffer[..n]).await.is_err() {
            return;
        }
    }
}

/// The server's profile with every URL sent through `proxy` instead.
fn through(server: &TestServer, proxy: &FaultProxy) -> iotchat_server::profile::Profile {
    let profile = server.profile();
    let direct = profile.api_url.trim_start_matches("http://").split('/').next().unwrap_or("");
    let json = serde_json::to_string(&profile).expect("a profile serializes");
    let json = json.replace(direct, &proxy.addr.to_string());
    iotchat_server::profile::Profile::from_json(json.as_bytes()).expect("the proxied profile")
}

#[tokio::test(flavor = "multi_thread")]
async fn cut_stalled_and_throttled_connections_lose_and_duplicate_nothing() {
    const COUNT: usize = 40;
    let server = TestServer::start().await;
    let upstream = server
        .profile()
        .api_url
        .trim_start_matches("http://")
        .split('/')
        .next()
        .and_then(|a| a.parse().ok())
        .expect("the server's address");
    let proxy = FaultProxy::start(upstream).await;
    let mut alice = Device::new(through(&server, &proxy), keychain().await);
    alice.client.register("alice", "alice@example.com", PASSWORD).await.expect("register");
    alice.client.login("alice", PASSWORD).await.expect("log in through the proxy");
    alice.online().await;
    let mut bob = Device::signed_up(&server, "bob").await;
    let general = room("general");
    alice.client.room_create("General").await.expect("create");
    bob.client.room_join(&general).await.expect("join");

    let mut reconnects = 0;
    for n in 0..COUNT {
        alice.client.message_send(&general, &format!("fault {n}")).await.expect("queued");
        match n {
            // The connection drops: the client notices, backs off and comes back.
            8 => proxy.cut(),
            // The network goes silent without closing anything.
            16 => proxy.set(Mode::Stall),
            22 => {
                tokio::time::sleep(Duration::from_secs(2)).await;
                proxy.set(Mode::Pass);
            }
            // A very slow link, then a cut on top of it.
            28 => proxy.set(Mode::Throttle(2_000)),
            34 => {
                proxy.cut();
                proxy.set(Mode::Pass);
            }
            _ => {}
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        while let Ok(event) = alice.events.try_recv() {
            if matches!(
                event,
                Event::Connection { connection: ConnectionState::Reconnecting { .. } }
            ) {
                reconnects += 1;
            }
        }
    }

    let mut counts: HashMap<String, usize> = HashMap::new();
    while counts.len() < COUNT {
        let text = bob
            .expect(|e| match e {
                Event::Message { message, .. } if message.room == general => {
                    Some(message.text.clone())
                }
                _ => None,
            })
            .await;
        *counts.entry(text).or_default() += 1;
    }
    bob.expect_none(Duration::from_secs(1), |e| matches!(e, Event::Message { .. })).await;
    assert!(counts.values().all(|&n| n == 1), "each message once: {counts:?}");
    let deadline = tokio::time::Instant::now() + WAIT;
    while !alice.client.outbox(None).await.expect("the outbox").is_empty() {
        assert!(tokio::time::Instant::now() < deadline, "the outbox drains");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(reconnects >= 1, "the cuts were noticed");
    assert!(proxy.accepted.load(Ordering::Relaxed) >= 3, "the client connected again");
    let history = bob.client.history(&general, None, 200).await.expect("history");
    assert_eq!(history.messages.len(), COUNT, "history holds each message exactly once");
}
