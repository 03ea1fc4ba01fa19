//! The runs: traffic through rooms (fan-out, many rooms, the highest zero-loss rate), a storm
//! of users from cold to subscribed, and idle connected users.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail};
use rumqttc::QoS;
use serde::Serialize;

use crate::brokers::{self, Running};
use crate::mqtt::{self, Conn, Shared};
use crate::users::{self, User};

/// How long after the last publish the receivers may take to get the rest.
const DRAIN: Duration = Duration::from_secs(5);
/// Connections opened at once while setting up a run.
const OPEN_AT_ONCE: usize = 64;
/// Publishes per second one connection may make on iotchat-server (AWS IoT's limit).
pub(crate) const PER_PUBLISHER: f64 = 100.0;

/// Traffic through rooms.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Traffic {
    pub(crate) rooms: usize,
    /// Connections subscribed to each room.
    pub(crate) members_per_room: usize,
    /// Connections publishing to each room; members themselves if `members_publish`.
    pub(crate) publishers_per_room: usize,
    pub(crate) members_publish: bool,
    /// Messages per second into each room, spread over its publishers.
    pub(crate) rate_per_room: f64,
    #[serde(skip)]
    pub(crate) qos: QoS,
    pub(crate) payload: usize,
    pub(crate) seconds: f64,
}

impl Traffic {
    /// Users the run needs.
    pub(crate) fn users(&self) -> usize {
        let per_room =
            self.members_per_room + if self.members_publish { 0 } else { self.publishers_per_room };
        self.rooms * per_room
    }

    /// Expected deliveries per second.
    pub(crate) fn target_deliveries(&self) -> f64 {
        self.rooms as f64 * self.rate_per_room * self.members_per_room as f64
    }
}

/// What a traffic run measured.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct TrafficResult {
    pub(crate) published: u64,
    /// Publishes per second the publishers managed.
    pub(crate) publish_rate: f64,
    pub(crate) expected: u64,
    pub(crate) delivered: u64,
    pub(crate) lost: u64,
    pub(crate) duplicates: u64,
    /// Messages a receiver got from a room it is not in.
    pub(crate) strays: u64,
    pub(crate) deliveries_per_s: f64,
    pub(crate) p50_ms: f64,
    pub(crate) p99_ms: f64,
    pub(crate) max_ms: f64,
    /// Server CPU over the publishing window and the drain, as % of one core.
    pub(crate) cpu_percent: f64,
    /// Server CPU per delivered message, µs.
    pub(crate) cpu_us_per_delivery: f64,
    pub(crate) rss_mib: f64,
    /// Connections that ended on their own during the run.
    pub(crate) dropped_connections: usize,
    /// Whether the publishers kept the rate and every message arrived exactly once.
    pub(crate) sustained: bool,
}

fn percentile(sorted: &[u32], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    f64::from(sorted[rank.min(sorted.len() - 1)]) / 1000.0
}

/// A tag unlike any earlier run's, for message ids.
fn run_tag() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!("t{nanos:x}")
}

fn room_slug(room: usize) -> String {
    format!("load-{room:03}")
}

/// Opens a connection for each `(user, filters)`, [`OPEN_AT_ONCE`] at a time, each subscribed
/// to its filters; in the order given.
async fn open_all(
    broker: &Running,
    shared: &Arc<Shared>,
    qos: QoS,
    plan: Vec<(&User, Vec<String>)>,
) -> Result<Vec<Conn>> {
    let mut conns = Vec::with_capacity(plan.len());
    for chunk in plan.chunks(OPEN_AT_ONCE) {
        let mut opening = Vec::with_capacity(chunk.len());
        for (user, filters) in chunk {
            let (url, client_id) = (user.url(broker)?, user.client_id.clone());
            let (shared, filters) = (Arc::clone(shared), filters.clone());
            opening.push(tokio::spawn(async move {
                Conn::open(&url, &client_id, &filters, qos, &shared).await
            }));
        }
        for task in opening {
            conns.push(task.await.context("opening a connection panicked")??);
        }
    }
    Ok(conns)
}

/// Runs `traffic` on `broker` with `users` (at least [`Traffic::users`] of them).
pub(crate) async fn traffic(
    broker: &mut Running,
    users: &[User],
    traffic: &Traffic,
) -> Result<TrafficResult> {
    if users.len() < traffic.users() {
        bail!("the run needs {} users, {} are ready", traffic.users(), users.len());
    }
    let shared = Shared::new(run_tag());
    // Lay the users out: room r's members, then its publishers (if they are not members).
    let mut members: Vec<(usize, &User)> = Vec::new();
    let mut publishers: Vec<(usize, &User, bool)> = Vec::new();
    let mut next = users.iter();
    for room in 0..traffic.rooms {
        let room_members: Vec<&User> = next.by_ref().take(traffic.members_per_room).collect();
        if traffic.members_publish {
            for (i, user) in room_members.iter().enumerate() {
                members.push((room, user));
                if i < traffic.publishers_per_room {
                    publishers.push((room, user, true));
                }
            }
        } else {
            members.extend(room_members.iter().map(|u| (room, *u)));
            for user in next.by_ref().take(traffic.publishers_per_room) {
                publishers.push((room, user, false));
            }
        }
    }
    // Open the members (subscribed to their room) and the publishers that are not members.
    let mut to_open: Vec<(usize, &User, Vec<String>)> = members
        .iter()
        .map(|(room, user)| (*room, *user, vec![format!("room/public/{}/+", room_slug(*room))]))
        .collect();
    to_open.extend(
        publishers
            .iter()
            .filter(|(_, _, member)| !member)
            .map(|(room, user, _)| (*room, *user, Vec::new())),
    );
    let keys: Vec<(usize, usize)> =
        to_open.iter().map(|(room, user, _)| (*room, user.index)).collect();
    let plan = to_open.into_iter().map(|(_, user, filters)| (user, filters)).collect();
    let opened = open_all(broker, &shared, traffic.qos, plan).await?;
    let conns: Vec<(usize, usize, Conn)> =
        keys.into_iter().zip(opened).map(|((room, index), conn)| (room, index, conn)).collect();
    broker.check_alive()?;

    // Publish.
    let before = brokers::sample(broker.pid())?;
    let started = Instant::now();
    let duration = Duration::from_secs_f64(traffic.seconds);
    let rate_each = traffic.rate_per_room / traffic.publishers_per_room as f64;
    let mut sending = Vec::with_capacity(publishers.len());
    for (number, (room, user, _)) in publishers.iter().enumerate() {
        let client = conns
            .iter()
            .find(|(_, index, _)| *index == user.index)
            .map(|(_, _, c)| c.client.clone())
            .context("a publisher has no connection")?;
        let topic = format!("room/public/{}/{}", room_slug(*room), user.sender);
        let shared = Arc::clone(&shared);
        let (qos, size) = (traffic.qos, traffic.payload);
        let publisher = u32::try_from(number)?;
        let phase = (number as f64 / publishers.len() as f64, rate_each);
        sending.push((
            *room,
            publisher,
            tokio::spawn(async move {
                let stream = mqtt::Stream {
                    publisher,
                    topic,
                    rate: phase.1,
                    phase: phase.0,
                    duration,
                    qos,
                    size,
                };
                mqtt::publish_for(&client, &shared, stream).await
            }),
        ));
    }
    // (room, publisher, sent)
    let mut sent: Vec<(usize, u32, u32)> = Vec::with_capacity(sending.len());
    for (room, publisher, task) in sending {
        sent.push((room, publisher, task.await.context("a publisher panicked")??));
    }
    let published: u64 = sent.iter().map(|(_, _, n)| u64::from(*n)).sum();
    let expected: u64 = members
        .iter()
        .map(|(room, _)| {
            sent.iter().filter(|(r, _, _)| r == room).map(|(_, _, n)| u64::from(*n)).sum::<u64>()
        })
        .sum();
    let drain_until = Instant::now() + DRAIN;
    while shared.delivered.load(std::sync::atomic::Ordering::Relaxed) < expected
        && Instant::now() < drain_until
    {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let busy = started.elapsed();
    let after = brokers::sample(broker.pid())?;
    broker.check_alive()?;

    // Count.
    let (mut delivered, mut received, mut strays, mut dropped) = (0u64, 0u64, 0u64, 0usize);
    let mut latencies: Vec<u32> = Vec::new();
    for (room, _, conn) in conns {
        let seen = conn.close().await?;
        if seen.error.is_some() {
            dropped += 1;
        }
        received += seen.received;
        let mine = |key: &u64| {
            let publisher = (key >> 32) as u32;
            let sequence = (key & 0xffff_ffff) as u32;
            sent.iter().any(|(r, p, n)| *r == room && *p == publisher && sequence < *n)
        };
        let in_room = seen.distinct.iter().filter(|k| mine(k)).count() as u64;
        strays += seen.distinct.len() as u64 - in_room;
        delivered += in_room;
        latencies.extend(seen.latencies_us);
    }
    latencies.sort_unstable();
    let lost = expected.saturating_sub(delivered);
    let duplicates = received.saturating_sub(delivered + strays);
    // Each publisher publishes for exactly `seconds`, from its own phase.
    let publish_rate = published as f64 / traffic.seconds;
    let target = traffic.rate_per_room * traffic.rooms as f64;
    let cpu = after.cpu_s - before.cpu_s;
    Ok(TrafficResult {
        published,
        publish_rate,
        expected,
        delivered,
        lost,
        duplicates,
        strays,
        deliveries_per_s: delivered as f64 / traffic.seconds,
        p50_ms: percentile(&latencies, 50.0),
        p99_ms: percentile(&latencies, 99.0),
        max_ms: latencies.last().map_or(0.0, |v| f64::from(*v) / 1000.0),
        cpu_percent: 100.0 * cpu / busy.as_secs_f64(),
        cpu_us_per_delivery: if delivered == 0 { 0.0 } else { cpu * 1e6 / delivered as f64 },
        rss_mib: after.rss_mib,
        dropped_connections: dropped,
        sustained: lost == 0
            && duplicates == 0
            && strays == 0
            && dropped == 0
            && publish_rate >= 0.97 * target,
    })
}

/// A storm: `count` users from cold (signed up, not signed in) to subscribed, all at once.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct StormResult {
    pub(crate) users: usize,
    pub(crate) seconds: f64,
    pub(crate) users_per_s: f64,
    /// Time from a user's start to its SUBACK.
    pub(crate) p50_ms: f64,
    pub(crate) p99_ms: f64,
    pub(crate) max_ms: f64,
    /// Busy answers the users retried (a password hasher queue that was full).
    pub(crate) busy_retries: u64,
    pub(crate) cpu_percent: f64,
    pub(crate) rss_mib: f64,
}

pub(crate) async fn storm(broker: &mut Running, count: usize, rooms: usize) -> Result<StormResult> {
    let shared = Shared::new("storm".into());
    let cognito = users::cognito(broker)?;
    let retries = Arc::new(users::Retries::default());
    let before = brokers::sample(broker.pid())?;
    let started = Instant::now();
    let ws_url = broker.ws_url.clone();
    let mut tasks = Vec::with_capacity(count);
    for index in 0..count {
        let cognito = cognito.clone();
        let retries = Arc::clone(&retries);
        let shared = Arc::clone(&shared);
        let ws_url = ws_url.clone();
        tasks.push(tokio::spawn(async move {
            let begun = Instant::now();
            let (url, client_id) = match cognito {
                Some((backend, cognito)) => {
                    let user = users::sign_in(&backend, &cognito, index, &retries).await?;
                    let url = iotchat_client::device::presigned_mqtt_url(
                        &backend,
                        user_credentials(&user)?,
                    )
                    .map_err(|e| anyhow::anyhow!(e.message))?;
                    (url, user.client_id)
                }
                None => (ws_url, User::anonymous(index).client_id),
            };
            let filter = format!("room/public/{}/+", room_slug(index % rooms.max(1)));
            let conn = Conn::open(&url, &client_id, &[filter], QoS::AtLeastOnce, &shared).await?;
            anyhow::Ok((begun.elapsed(), conn))
        }));
    }
    let mut times = Vec::with_capacity(count);
    let mut conns = Vec::with_capacity(count);
    for task in tasks {
        let (took, conn) = task.await.context("a storm user panicked")??;
        times.push(u32::try_from(took.as_micros()).unwrap_or(u32::MAX));
        conns.push(conn);
    }
    let seconds = started.elapsed().as_secs_f64();
    let after = brokers::sample(broker.pid())?;
    broker.check_alive()?;
    for conn in conns {
        conn.close().await?;
    }
    times.sort_unstable();
    Ok(StormResult {
        users: count,
        seconds,
        users_per_s: count as f64 / seconds,
        p50_ms: percentile(&times, 50.0),
        p99_ms: percentile(&times, 99.0),
        max_ms: times.last().map_or(0.0, |v| f64::from(*v) / 1000.0),
        busy_retries: retries.get(),
        cpu_percent: 100.0 * (after.cpu_s - before.cpu_s) / seconds,
        rss_mib: after.rss_mib,
    })
}

fn user_credentials(user: &User) -> Result<&iotchat_client::auth::AwsCredentials> {
    user.credentials().context("a signed-in user without credentials")
}

/// `count` users connected and subscribed, then left idle.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct IdleResult {
    pub(crate) users: usize,
    /// Server memory before anyone connected, and with everyone connected and idle.
    pub(crate) rss_before_mib: f64,
    pub(crate) rss_mib: f64,
    pub(crate) kib_per_user: f64,
    /// Server CPU while they idle.
    pub(crate) idle_cpu_percent: f64,
}

pub(crate) async fn idle(
    broker: &mut Running,
    users: &[User],
    rooms: usize,
    seconds: f64,
) -> Result<IdleResult> {
    let shared = Shared::new("idle".into());
    let before = brokers::sample(broker.pid())?;
    let plan = users
        .iter()
        .map(|user| (user, vec![format!("room/public/{}/+", room_slug(user.index % rooms.max(1)))]))
        .collect();
    let conns = open_all(broker, &shared, QoS::AtLeastOnce, plan).await?;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let settled = brokers::sample(broker.pid())?;
    tokio::time::sleep(Duration::from_secs_f64(seconds)).await;
    let after = brokers::sample(broker.pid())?;
    broker.check_alive()?;
    let mut dropped = 0;
    for conn in conns {
        if conn.close().await?.error.is_some() {
            dropped += 1;
        }
    }
    if dropped > 0 {
        bail!("{dropped} idle connections were dropped");
    }
    Ok(IdleResult {
        users: users.len(),
        rss_before_mib: before.rss_mib,
        rss_mib: after.rss_mib,
        kib_per_user: (after.rss_mib - before.rss_mib) * 1024.0 / users.len().max(1) as f64,
        idle_cpu_percent: 100.0 * (after.cpu_s - settled.cpu_s) / seconds,
    })
}

/// The chat client core under a stream of messages, beside a bare MQTT subscriber.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct IngestResult {
    /// Messages per second into the room.
    pub(crate) rate: f64,
    pub(crate) published: u64,
    /// Messages the client core turned into chat state and events (parsed, deduplicated,
    /// author resolved, unread counted, stored).
    pub(crate) client_messages: u64,
    pub(crate) client_per_s: f64,
    pub(crate) client_p50_ms: f64,
    pub(crate) client_p99_ms: f64,
    /// The same stream as a bare rumqttc subscriber gets it: the ceiling.
    pub(crate) bare_messages: u64,
    pub(crate) bare_p50_ms: f64,
    pub(crate) bare_p99_ms: f64,
    /// Events the reader missed because it fell behind the client's event channel.
    pub(crate) lagged_events: u64,
    pub(crate) kept_up: bool,
}

/// Streams `rate` messages/s for `seconds` into one room that a real [`iotchat_client::Client`]
/// follows (as the app does) and a bare MQTT subscriber also reads. iotchat-server only.
pub(crate) async fn ingest(
    broker: &mut Running,
    users: &[User],
    rate: f64,
    seconds: f64,
) -> Result<IngestResult> {
    use iotchat_client::protocol::chat::Event;
    let backend = broker.backend.clone().context("client ingest needs iotchat-server")?;
    let publishers = (rate / PER_PUBLISHER).ceil() as usize;
    if users.len() < publishers + 1 {
        bail!("client ingest at {rate} msg/s needs {} users", publishers + 1);
    }
    let shared = Shared::new(run_tag());
    let data = tempfile::tempdir()?;
    let client = iotchat_client::Client::new(iotchat_client::ClientConfig {
        backend,
        data_dir: data.path().to_owned(),
        secrets: Arc::new(iotchat_client::MemoryStore::default()),
        connect: true,
        instance: None,
    })
    .map_err(|e| anyhow::anyhow!(e.message))?;
    let name = format!("reader{}", &shared.run[shared.run.len().saturating_sub(6)..]);
    client
        .register(&name, &format!("{name}@example.com"), "Load-test-passw0rd")
        .await
        .map_err(|e| anyhow::anyhow!("registering the reader: {}", e.message))?;
    client.login(&name, "Load-test-passw0rd").await.map_err(|e| anyhow::anyhow!(e.message))?;
    let room = client
        .room_create(&format!("Ingest {}", shared.run))
        .await
        .map_err(|e| anyhow::anyhow!("creating the room: {}", e.message))?;
    let slug = room.name.slug().as_str().to_owned();
    let deadline = Instant::now() + Duration::from_secs(30);
    while client.connection() != iotchat_client::ConnectionState::Online {
        if Instant::now() > deadline {
            bail!("the client did not come online");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Subscribed once the client's link has resubscribed its rooms; a moment to be sure.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let bare = Conn::open(
        &users[0].url(broker)?,
        &users[0].client_id,
        &[format!("room/public/{slug}/+")],
        QoS::AtLeastOnce,
        &shared,
    )
    .await?;
    let senders = &users[1..=publishers];
    let plan = senders.iter().map(|user| (user, Vec::new())).collect();
    let opened = open_all(broker, &shared, QoS::AtLeastOnce, plan).await?;
    let sending_conns: Vec<(&User, Conn)> = senders.iter().zip(opened).collect();

    // Read the client's events as the shell does, off the publishing path.
    let mut events = client.events();
    let reader = {
        let shared = Arc::clone(&shared);
        let room = room.name.clone();
        tokio::spawn(async move {
            let (mut latencies, mut lagged) = (Vec::<u32>::new(), 0u64);
            let mut seen = std::collections::HashSet::new();
            loop {
                match tokio::time::timeout(Duration::from_secs(3), events.recv()).await {
                    Ok(Ok(Event::Message { message, .. })) if message.room == room => {
                        if let Some((p, s, sent_us)) = mqtt::parse_text(message.text.as_bytes()) {
                            let now_us = shared.t0.elapsed().as_micros() as u64;
                            latencies.push(
                                u32::try_from(now_us.saturating_sub(sent_us)).unwrap_or(u32::MAX),
                            );
                            seen.insert((u64::from(p) << 32) | u64::from(s));
                        }
                    }
                    Ok(Ok(_)) => {}
                    Ok(Err(tokio::sync::broadcast::error::RecvError::Lagged(n))) => lagged += n,
                    Ok(Err(_)) | Err(_) => break,
                }
            }
            (seen.len() as u64, latencies, lagged)
        })
    };
    let started = Instant::now();
    let duration = Duration::from_secs_f64(seconds);
    let each = rate / publishers as f64;
    let mut sending = Vec::new();
    for (number, (user, conn)) in sending_conns.iter().enumerate() {
        let client = conn.client.clone();
        let topic = format!("room/public/{slug}/{}", user.sender);
        let shared = Arc::clone(&shared);
        let publisher = u32::try_from(number)?;
        let phase = number as f64 / publishers as f64;
        sending.push(tokio::spawn(async move {
            let stream = mqtt::Stream {
                publisher,
                topic,
                rate: each,
                phase,
                duration,
                qos: QoS::AtLeastOnce,
                size: 64,
            };
            mqtt::publish_for(&client, &shared, stream).await
        }));
    }
    let mut published = 0u64;
    for task in sending {
        published += u64::from(task.await.context("a publisher panicked")??);
    }
    let window = started.elapsed().as_secs_f64();
    let (client_messages, mut client_latencies, lagged) =
        reader.await.context("the event reader panicked")?;
    let bare_seen = bare.close().await?;
    for (_, conn) in sending_conns {
        conn.close().await?;
    }
    client.shutdown().await;
    broker.check_alive()?;
    client_latencies.sort_unstable();
    let mut bare_latencies = bare_seen.latencies_us;
    bare_latencies.sort_unstable();
    let client_p99 = percentile(&client_latencies, 99.0);
    Ok(IngestResult {
        rate,
        published,
        client_messages,
        client_per_s: client_messages as f64 / window,
        client_p50_ms: percentile(&client_latencies, 50.0),
        client_p99_ms: client_p99,
        bare_messages: bare_seen.distinct.len() as u64,
        bare_p50_ms: percentile(&bare_latencies, 50.0),
        bare_p99_ms: percentile(&bare_latencies, 99.0),
        lagged_events: lagged,
        kept_up: client_messages == published && lagged == 0 && client_p99 < 1000.0,
    })
}
