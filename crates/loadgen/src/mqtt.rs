//! One MQTT connection of the generator (rumqttc over WebSocket), and what it saw.
//!
//! Every payload the generator publishes is a real chat payload (`{"message","id","sentAt"}`,
//! so iotchat-server stores it) whose text starts with `<publisher>:<sequence>:<µs since the
//! run began>:`. A receiver keeps which (publisher, sequence) pairs it got, to count loss and
//! duplicates, and the latency of each, all in the one process, so no clocks are compared.

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Result, anyhow, bail};
use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS, SubscribeReasonCode, Transport};
use tokio::sync::{oneshot, watch};

/// What every connection of one run shares.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) t0: Instant,
    /// Chat messages received, by every connection together.
    pub(crate) delivered: AtomicU64,
    /// A tag in every message id, so no two runs' ids meet.
    pub(crate) run: String,
}

impl Shared {
    pub(crate) fn new(run: String) -> Arc<Self> {
        Arc::new(Self { t0: Instant::now(), delivered: AtomicU64::new(0), run })
    }
}

/// What one connection saw, handed back when it stops.
#[derive(Debug, Default)]
pub(crate) struct Seen {
    /// `publisher << 32 | sequence` of each distinct message.
    pub(crate) distinct: HashSet<u64>,
    pub(crate) received: u64,
    pub(crate) latencies_us: Vec<u32>,
    /// Payloads that were not the generator's.
    pub(crate) foreign: u64,
    /// Why the connection ended before it was told to stop, if it did.
    pub(crate) error: Option<String>,
}

/// One open connection.
#[derive(Debug)]
pub(crate) struct Conn {
    pub(crate) client: AsyncClient,
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<Seen>,
}

/// How long a connection may take to be connected and subscribed.
const READY_WITHIN: Duration = Duration::from_secs(60);

impl Conn {
    /// Connects to `url` and subscribes to `filters`; returns once every subscription is
    /// granted.
    pub(crate) async fn open(
        url: &str,
        client_id: &str,
        filters: &[String],
        qos: QoS,
        shared: &Arc<Shared>,
    ) -> Result<Self> {
        let mut options = MqttOptions::new(client_id, url, 443);
        options
            .set_transport(Transport::Ws)
            .set_keep_alive(Duration::from_secs(60))
            .set_clean_session(true)
            .set_max_packet_size(140 * 1024, 140 * 1024)
            .set_inflight(100);
        let (client, mut events) = AsyncClient::new(options, 1024);
        // Without it, Nagle holds a small packet while an earlier one is unacknowledged: up to
        // the peer's delayed ACK (40 ms) on every delivery that follows another closely.
        let mut network = rumqttc::NetworkOptions::new();
        network.set_tcp_nodelay(true);
        events.set_network_options(network);
        for filter in filters {
            client.subscribe(filter, qos).await?;
        }
        let (ready_tx, ready_rx) = oneshot::channel::<Result<(), String>>();
        let (stop, mut stopped) = watch::channel(false);
        let shared = Arc::clone(shared);
        let mut waiting_acks = filters.len();
        let task = tokio::spawn(async move {
            let mut seen = Seen::default();
            let mut ready = Some(ready_tx);
            if waiting_acks == 0 {
                // Nothing to subscribe: ready once connected.
                waiting_acks = usize::MAX;
            }
            loop {
                tokio::select! {
                    _ = stopped.changed() => break,
                    event = events.poll() => match event {
                        Ok(Event::Incoming(Packet::ConnAck(_))) if waiting_acks == usize::MAX => {
                            if let Some(tx) = ready.take() { let _ = tx.send(Ok(())); }
                        }
                        Ok(Event::Incoming(Packet::SubAck(ack))) => {
                            if ack.return_codes.iter().any(|c| matches!(c, SubscribeReasonCode::Failure)) {
                                if let Some(tx) = ready.take() {
                                    let _ = tx.send(Err("a subscription was refused".into()));
                                }
                                break;
                            }
                            waiting_acks = waiting_acks.saturating_sub(1);
                            if waiting_acks == 0 && let Some(tx) = ready.take() {
                                let _ = tx.send(Ok(()));
                            }
                        }
                        Ok(Event::Incoming(Packet::Publish(publish))) => {
                            record(&shared, &mut seen, &publish.payload);
                        }
                        Ok(_) => {}
                        Err(error) => {
                            let error = error.to_string();
                            match ready.take() {
                                Some(tx) => { let _ = tx.send(Err(error)); }
                                None => seen.error = Some(error),
                            }
                            break;
                        }
                    }
                }
            }
            seen
        });
        match tokio::time::timeout(READY_WITHIN, ready_rx).await {
            Ok(Ok(Ok(()))) => Ok(Self { client, stop, task }),
            Ok(Ok(Err(error))) => bail!("{client_id}: {error}"),
            Ok(Err(_)) => bail!("{client_id}: the connection task ended"),
            Err(_) => bail!("{client_id}: not connected and subscribed within {READY_WITHIN:?}"),
        }
    }

    /// Stops the connection and returns what it saw.
    pub(crate) async fn close(self) -> Result<Seen> {
        let _ = self.stop.send(true);
        let seen = self.task.await.map_err(|e| anyhow!("a connection task failed: {e}"))?;
        Ok(seen)
    }
}

fn record(shared: &Shared, seen: &mut Seen, payload: &[u8]) {
    seen.received += 1;
    shared.delivered.fetch_add(1, Ordering::Relaxed);
    let Some((publisher, sequence, sent_us)) = parse(payload) else {
        seen.foreign += 1;
        return;
    };
    let now_us = shared.t0.elapsed().as_micros() as u64;
    seen.latencies_us.push(now_us.saturating_sub(sent_us).min(u64::from(u32::MAX)) as u32);
    seen.distinct.insert((u64::from(publisher) << 32) | u64::from(sequence));
}

const TEXT_START: &[u8] = b"{\"message\":\"";

/// `(publisher, sequence, µs)` from a payload [`payload`] made.
fn parse(payload: &[u8]) -> Option<(u32, u32, u64)> {
    parse_text(payload.strip_prefix(TEXT_START)?)
}

/// `(publisher, sequence, µs)` from the text of a message [`payload`] made.
pub(crate) fn parse_text(text: &[u8]) -> Option<(u32, u32, u64)> {
    let mut fields = text.splitn(4, |b| *b == b':');
    let mut number = || -> Option<u64> { std::str::from_utf8(fields.next()?).ok()?.parse().ok() };
    let publisher = u32::try_from(number()?).ok()?;
    let sequence = u32::try_from(number()?).ok()?;
    let sent_us = number()?;
    Some((publisher, sequence, sent_us))
}

/// A chat payload of exactly `size` bytes (or the smallest possible) for message `sequence`.
pub(crate) fn payload(shared: &Shared, publisher: u32, sequence: u32, size: usize) -> Vec<u8> {
    let sent_us = shared.t0.elapsed().as_micros();
    let sent_at_ms =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    let head = format!("{publisher}:{sequence}:{sent_us}:");
    let tail = format!(
        "\",\"id\":\"{}-{publisher}-{sequence}\",\"sentAt\":{}}}",
        shared.run,
        sent_at_ms.as_millis()
    );
    let fixed = TEXT_START.len() + head.len() + tail.len();
    let pad = size.saturating_sub(fixed).max(1);
    let mut out = Vec::with_capacity(fixed + pad);
    out.extend_from_slice(TEXT_START);
    out.extend_from_slice(head.as_bytes());
    out.resize(out.len() + pad, b'x');
    out.extend_from_slice(tail.as_bytes());
    out
}

/// What one publisher sends: to `topic`, `rate` messages/s for `duration`, each `size` bytes.
/// `phase` (0 to 1) delays the first publish by that part of a period, so that many
/// publishers at the same rate do not all send at the same instant.
#[derive(Debug, Clone)]
pub(crate) struct Stream {
    pub(crate) publisher: u32,
    pub(crate) topic: String,
    pub(crate) rate: f64,
    pub(crate) phase: f64,
    pub(crate) duration: Duration,
    pub(crate) qos: QoS,
    pub(crate) size: usize,
}

/// Publishes `stream`; returns how many messages it sent.
pub(crate) async fn publish_for(
    client: &AsyncClient,
    shared: &Shared,
    stream: Stream,
) -> Result<u32> {
    let Stream { publisher, topic, rate, phase, duration, qos, size } = stream;
    let period = Duration::from_secs_f64(1.0 / rate.max(0.001));
    let start = tokio::time::Instant::now() + period.mul_f64(phase.clamp(0.0, 1.0));
    let mut ticks = tokio::time::interval_at(start, period);
    // A publisher held up (by PUBACKs that wait) does not catch up in a burst: it sends less,
    // and the run shows it did not keep the rate.
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let end = start + duration;
    let mut sequence = 0u32;
    loop {
        let tick = ticks.tick().await;
        if tick >= end {
            break;
        }
        let body = payload(shared, publisher, sequence, size);
        client.publish(&topic, qos, false, body).await?;
        sequence += 1;
    }
    Ok(sequence)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payloads_parse_back_and_are_chat_messages_of_the_asked_size() {
        let shared = Shared::new("r1".into());
        let body = payload(&shared, 7, 42, 256);
        assert_eq!(body.len(), 256);
        let (publisher, sequence, _) = parse(&body).expect("parses");
        assert_eq!((publisher, sequence), (7, 42));
        let chat = iotchat_client::protocol::IncomingPayload::parse(&body).expect("a chat payload");
        assert_eq!(chat.id.expect("has an id").as_str(), "r1-7-42");
        assert!(parse(b"{\"message\":\"hello\"}").is_none());
        // Smaller than possible: the smallest payload, still valid.
        let small = payload(&shared, 1, 1, 8);
        assert!(iotchat_client::protocol::IncomingPayload::parse(&small).is_ok());
    }
}
