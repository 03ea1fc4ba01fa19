//! Faults under a chatting client, and what it must make of them.
//!
//! - A TCP proxy between one client and the server cuts, stalls and throttles its
//!   connections: the client reconnects with backoff, its outbox drains, and nothing is lost
//!   or delivered twice.
//! - A day of AWS's clock compressed into seconds: credentials that expire every two seconds
//!   and WebSockets the server closes at their (shortened) maximum age; the conversation goes
//!   on without a gap.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use iotchat_client::{ConnectionState, Event};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

use crate::support::{Device, PASSWORD, TestServer, Tweaks, keychain, room};

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

    bob.receive_each_once(&general, COUNT).await;
    alice.outbox_drains().await;
    assert!(reconnects >= 1, "the cuts were noticed");
    assert!(proxy.accepted.load(Ordering::Relaxed) >= 3, "the client connected again");
    let history = bob.whole_history(&general).await;
    assert_eq!(history.len(), COUNT, "history holds each message exactly once");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_day_of_renewals_and_forced_reconnects_compressed_into_seconds_leaves_no_gap() {
    // On AWS: credentials for an hour, a WebSocket for 24 hours. Here: 2 s and 3 s.
    const COUNT: usize = 60;
    const EVERY: Duration = Duration::from_millis(250);
    let server = TestServer::start_with(Tweaks {
        credentials_ttl_secs: Some(2),
        max_connection_age_secs: Some(3),
        ..Tweaks::default()
    })
    .await;
    let mut alice = Device::signed_up(&server, "alice").await;
    let mut bob = Device::signed_up(&server, "bob").await;
    let general = room("general");
    alice.client.room_create("General").await.expect("create");
    bob.client.room_join(&general).await.expect("join");

    let sent_at: Arc<std::sync::Mutex<HashMap<String, tokio::time::Instant>>> = Arc::default();
    let receiver = {
        let sent_at = Arc::clone(&sent_at);
        let general = general.clone();
        tokio::spawn(async move {
            let mut slowest = Duration::ZERO;
            let mut got: HashMap<String, usize> = HashMap::new();
            while got.len() < COUNT {
                let text = bob
                    .expect(|e| match e {
                        Event::Message { message, .. } if message.room == general => {
                            Some(message.text.clone())
                        }
                        _ => None,
                    })
                    .await;
                let sent = sent_at.lock().expect("lock").get(&text).copied();
                if let Some(sent) = sent {
                    slowest = slowest.max(sent.elapsed());
                }
                *got.entry(text).or_default() += 1;
            }
            (bob, got, slowest)
        })
    };
    let mut reconnects = 0;
    for n in 0..COUNT {
        let text = format!("day {n}");
        sent_at.lock().expect("lock").insert(text.clone(), tokio::time::Instant::now());
        alice.client.message_send(&general, &text).await.expect("queued");
        tokio::time::sleep(EVERY).await;
        while let Ok(event) = alice.events.try_recv() {
            if matches!(
                event,
                Event::Connection { connection: ConnectionState::Reconnecting { .. } }
            ) {
                reconnects += 1;
            }
        }
    }
    let (bob, got, slowest) = tokio::time::timeout(Duration::from_secs(30), receiver)
        .await
        .expect("in time")
        .expect("bob");
    assert!(got.values().all(|&n| n == 1), "each message once: {got:?}");
    // 15 s of 3-second connections: the server closed Alice's about five times, and each time
    // she came back at once with a URL signed by credentials younger than 2 s.
    assert!(reconnects >= 3, "the server closed the connections at their age ({reconnects})");
    assert!(
        slowest < Duration::from_secs(4),
        "no message waited long: the slowest took {slowest:?}"
    );
    alice.outbox_drains().await;
    // The API, too, is called with renewed credentials.
    let history = bob.whole_history(&general).await;
    assert_eq!(history.len(), COUNT, "history holds each message exactly once");
}
