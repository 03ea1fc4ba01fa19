//! The MQTT link: rumqttc over `ws://` or `wss://`, to a URL presigned with SigV4 (service
//! `iotdevicegateway`) on every connect with fresh credentials. It resubscribes to every
//! followed room on each CONNACK, publishes the outbox in order, reconnects with exponential
//! backoff and jitter, and reconnects on its own before AWS IoT's 24-hour limit.
//!
//! The outbox in the local database is the only record of what still has to be sent: after a
//! dropped connection rumqttc's own retransmission queue is cleared and the outbox is published
//! again (receivers and the server dedupe by message id).

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use iotchat_protocol::{MAX_PAYLOAD_BYTES, MessageId, OutgoingPayload, RoomName};
use rumqttc::{
    AsyncClient, Event as MqttEvent, EventLoop, MqttOptions, Outgoing, Packet, QoS, Transport,
};
use tokio::sync::mpsc;

use crate::auth::AwsCredentials;
use crate::error::{ClientError, Result};
use crate::events::ConnectionState;
use crate::session::Session;
use crate::state::LocalState;

/// AWS IoT closes WebSocket connections after 24 h; leave before that.
const MAX_CONNECTION_AGE: Duration = Duration::from_secs(23 * 60 * 60);
/// The keepalive (AWS IoT accepts 30–1200 s).
const KEEP_ALIVE: Duration = Duration::from_secs(30);
/// Publishes awaiting their PUBACK at once.
const MAX_IN_FLIGHT: usize = 64;
/// AWS IoT's limits per connection: 100 publishes and 512 KB a second. Beyond them it
/// throttles or drops; the link paces a long outbox instead.
const MAX_PUBLISHES_PER_SECOND: usize = 100;
const MAX_BYTES_PER_SECOND: usize = 512 * 1024;
/// Longest wait between reconnection attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// How long a presigned URL is valid (it is used at once).
const PRESIGN_VALIDITY: Duration = Duration::from_secs(300);

/// What the rest of the client asks of the link.
#[derive(Debug)]
pub(crate) enum LinkCommand {
    Subscribe(RoomName),
    Unsubscribe(RoomName),
    /// The outbox has something new.
    Flush,
    Stop,
}

/// What the link reports.
#[derive(Debug)]
pub(crate) enum LinkEvent {
    State(ConnectionState),
    /// Connected and resubscribed: time to fetch what was missed.
    Connected,
    Incoming {
        topic: String,
        payload: bytes::Bytes,
        received_at_ms: u64,
    },
    /// The broker acknowledged (and so stored) one of our messages.
    Delivered(MessageId),
    /// A connection ended while this message was unacknowledged.
    Unacknowledged(MessageId),
    /// Credentials could not be renewed because the session is over.
    SessionEnded(ClientError),
}

#[derive(Debug, Clone)]
pub(crate) struct LinkSettings {
    pub(crate) endpoint: String,
    pub(crate) region: String,
    pub(crate) client_id: String,
    /// TLS for `wss://` endpoints.
    pub(crate) tls: Arc<rustls::ClientConfig>,
}

/// The URL to connect to, presigned as AWS IoT wants: SigV4 in the query, the session token
/// appended after signing.
pub(crate) fn presign(
    endpoint: &str,
    region: &str,
    credentials: &AwsCredentials,
) -> Result<String> {
    use aws_sigv4::http_request::{
        SessionTokenMode, SignableBody, SignableRequest, SignatureLocation, SigningSettings, sign,
    };
    let mut settings = SigningSettings::default();
    settings.signature_location = SignatureLocation::QueryParams;
    settings.expires_in = Some(PRESIGN_VALIDITY);
    settings.session_token_mode = SessionTokenMode::Exclude;
    let identity = credentials.for_signing().into();
    let params = aws_sigv4::sign::v4::SigningParams::builder()
        .identity(&identity)
        .region(region)
        .name("iotdevicegateway")
        .time(std::time::SystemTime::now())
        .settings(settings)
        .build()
        .map_err(|e| ClientError::internal(format!("presigning: {e}")))?
        .into();
    let signable =
        SignableRequest::new("GET", endpoint, std::iter::empty(), SignableBody::Bytes(&[]))
            .map_err(|e| ClientError::internal(format!("presigning {endpoint}: {e}")))?;
    let (instructions, _) = sign(signable, &params)
        .map_err(|e| ClientError::internal(format!("presigning {endpoint}: {e}")))?
        .into_parts();
    let mut request = http::Request::builder()
        .uri(endpoint)
        .body(())
        .map_err(|e| ClientError::internal(format!("presigning {endpoint}: {e}")))?;
    instructions.apply_to_request_http1x(&mut request);
    Ok(request.uri().to_string())
}

/// The delay before reconnection attempt `attempt` (1-based): doubling from 0.5 s up to 30 s,
/// with "equal jitter" so clients that dropped together do not return together.
pub(crate) fn backoff(attempt: u32) -> Duration {
    use rand::Rng as _;
    let ceiling = Duration::from_millis(500)
        .saturating_mul(1u32 << attempt.saturating_sub(1).min(10))
        .min(MAX_BACKOFF);
    let half = ceiling / 2;
    half + half.mul_f64(rand::rng().random::<f64>())
}

/// Runs the link until [`LinkCommand::Stop`] (or the command channel closes).
pub(crate) async fn run(
    settings: LinkSettings,
    session: Arc<Session>,
    state: Arc<LocalState>,
    mut commands: mpsc::UnboundedReceiver<LinkCommand>,
    events: mpsc::UnboundedSender<LinkEvent>,
) {
    let credential_error: Arc<Mutex<Option<ClientError>>> = Arc::default();
    let mut options = MqttOptions::new(&settings.client_id, &settings.endpoint, 443);
    if settings.endpoint.starts_with("wss://") {
        options.set_transport(Transport::wss_with_config(rumqttc::TlsConfiguration::Rustls(
            Arc::clone(&settings.tls),
        )));
    } else {
        options.set_transport(Transport::Ws);
    }
    options
        .set_keep_alive(KEEP_ALIVE)
        .set_clean_session(true)
        .set_max_packet_size(MAX_PAYLOAD_BYTES + 1024, MAX_PAYLOAD_BYTES + 1024)
        .set_inflight(MAX_IN_FLIGHT as u16 + 16);
    {
        let session = Arc::clone(&session);
        let settings = settings.clone();
        let credential_error = Arc::clone(&credential_error);
        options.set_request_modifier(move |mut request: http::Request<()>| {
            let session = Arc::clone(&session);
            let settings = settings.clone();
            let credential_error = Arc::clone(&credential_error);
            async move {
                let url = match session.credentials().await {
                    Ok(c) => presign(&settings.endpoint, &settings.region, &c),
                    Err(e) => Err(e),
                };
                match url.and_then(|u| {
                    u.parse::<http::Uri>()
                        .map_err(|e| ClientError::internal(format!("presigned URL: {e}")))
                }) {
                    Ok(uri) => *request.uri_mut() = uri,
                    // The unsigned request is refused; the error says why.
                    Err(error) => {
                        if let Ok(mut slot) = credential_error.lock() {
                            *slot = Some(error);
                        }
                    }
                }
                request
            }
        });
    }
    let (client, mut mqtt) = AsyncClient::new(options, 256);
    // rumqttc leaves Nagle on: a message sent right after another (or a PUBACK after a
    // delivery) would wait for the server's delayed ACK, up to 40 ms.
    let mut network = rumqttc::NetworkOptions::new();
    network.set_tcp_nodelay(true);
    mqtt.set_network_options(network);
    let mut link = Link {
        client,
        state,
        events,
        in_flight: HashSet::new(),
        awaiting_pkid: VecDeque::new(),
        by_pkid: HashMap::new(),
        online: false,
        identity: session.account.identity_id.clone(),
        pacer: Pacer::default(),
        paced_until: None,
    };
    link.report(ConnectionState::Connecting);
    let mut attempt: u32 = 0;
    let mut renew_at = tokio::time::Instant::now() + MAX_CONNECTION_AGE;

    enum Step {
        Mqtt(std::result::Result<MqttEvent, rumqttc::ConnectionError>),
        Command(Option<LinkCommand>),
        Renew,
        Paced,
    }
    loop {
        let step = tokio::select! {
            event = mqtt.poll() => Step::Mqtt(event),
            command = commands.recv() => Step::Command(command),
            () = tokio::time::sleep_until(renew_at), if link.online => Step::Renew,
            () = sleep_until_some(link.paced_until), if link.online && link.paced_until.is_some() => Step::Paced,
        };
        match step {
            Step::Mqtt(Ok(event)) => {
                if link.on_event(event) {
                    attempt = 0;
                    renew_at = tokio::time::Instant::now() + MAX_CONNECTION_AGE;
                }
            }
            Step::Mqtt(Err(error)) => {
                link.on_disconnect(&mut mqtt);
                let credentials = credential_error.lock().ok().and_then(|mut slot| slot.take());
                if let Some(e) = &credentials
                    && e.code == iotchat_protocol::Code::SessionExpired
                {
                    tracing::info!(%e, "the session is over; the link stops");
                    link.report(ConnectionState::Offline);
                    let _ = link.events.send(LinkEvent::SessionEnded(e.clone()));
                    return;
                }
                attempt = attempt.saturating_add(1);
                let delay = backoff(attempt);
                tracing::info!(
                    error = %crate::backend::error_chain(&error),
                    credentials = ?credentials.map(|e| e.message),
                    attempt,
                    "MQTT connection lost; retrying in {delay:?}"
                );
                link.report(ConnectionState::Reconnecting {
                    in_secs: delay.as_secs_f64().ceil() as u64,
                    attempt,
                });
                let wake = tokio::time::Instant::now() + delay;
                loop {
                    tokio::select! {
                        () = tokio::time::sleep_until(wake) => break,
                        command = commands.recv() => match command {
                            // Followed rooms and the outbox are in the database: the next
                            // CONNACK picks them up.
                            Some(LinkCommand::Stop) | None => {
                                link.report(ConnectionState::Offline);
                                return;
                            }
                            Some(_) => {}
                        },
                    }
                }
                link.report(ConnectionState::Connecting);
            }
            Step::Command(Some(LinkCommand::Stop) | None) => {
                link.stop(&mut mqtt).await;
                return;
            }
            Step::Command(Some(command)) => link.on_command(command),
            Step::Paced => {
                link.paced_until = None;
                link.flush();
            }
            Step::Renew => {
                tracing::info!("reconnecting before the 24-hour connection limit");
                let _ = link.client.try_disconnect();
                attempt = 0;
            }
        }
    }
}

/// Sleeps until `at` (never called without one).
async fn sleep_until_some(at: Option<tokio::time::Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

struct Link {
    client: AsyncClient,
    state: Arc<LocalState>,
    events: mpsc::UnboundedSender<LinkEvent>,
    /// Published, not yet acknowledged.
    in_flight: HashSet<MessageId>,
    /// Published, waiting for rumqttc to say which packet id it got (in publish order).
    awaiting_pkid: VecDeque<MessageId>,
    by_pkid: HashMap<u16, MessageId>,
    online: bool,
    identity: iotchat_protocol::IdentityId,
    pacer: Pacer,
    /// When the pacer lets the outbox go on, if it held it back.
    paced_until: Option<tokio::time::Instant>,
}

/// A one-second sliding window over what this connection published.
#[derive(Debug, Default)]
struct Pacer {
    sent: VecDeque<(tokio::time::Instant, usize)>,
    bytes: usize,
}

impl Pacer {
    /// Records a publish of `bytes` at `now` if the window has room; otherwise says when it
    /// will. A publish larger than the byte budget goes alone into an empty window.
    fn admit(
        &mut self,
        now: tokio::time::Instant,
        bytes: usize,
    ) -> std::result::Result<(), tokio::time::Instant> {
        let window = Duration::from_secs(1);
        while let Some(&(at, size)) = self.sent.front() {
            if now.duration_since(at) < window {
                break;
            }
            self.sent.pop_front();
            self.bytes -= size;
        }
        let full = self.sent.len() >= MAX_PUBLISHES_PER_SECOND
            || (!self.sent.is_empty() && self.bytes + bytes > MAX_BYTES_PER_SECOND);
        if full {
            let oldest = self.sent.front().map_or(now, |&(at, _)| at);
            return Err(oldest + window);
        }
        self.sent.push_back((now, bytes));
        self.bytes += bytes;
        Ok(())
    }
}

impl Link {
    fn report(&self, state: ConnectionState) {
        let _ = self.events.send(LinkEvent::State(state));
    }

    /// Handles one MQTT event; true on a new connection.
    fn on_event(&mut self, event: MqttEvent) -> bool {
        match event {
            MqttEvent::Incoming(Packet::ConnAck(_)) => {
                self.online = true;
                self.resubscribe();
                self.flush();
                self.report(ConnectionState::Online);
                let _ = self.events.send(LinkEvent::Connected);
                return true;
            }
            MqttEvent::Incoming(Packet::Publish(publish)) => {
                let _ = self.events.send(LinkEvent::Incoming {
                    topic: publish.topic,
                    payload: publish.payload,
                    received_at_ms: crate::auth::now_ms(),
                });
            }
            MqttEvent::Incoming(Packet::PubAck(ack)) => {
                if let Some(id) = self.by_pkid.remove(&ack.pkid) {
                    self.in_flight.remove(&id);
                    let _ = self.events.send(LinkEvent::Delivered(id));
                    self.flush();
                }
            }
            MqttEvent::Incoming(Packet::SubAck(ack))
                if ack.return_codes.contains(&rumqttc::SubscribeReasonCode::Failure) =>
            {
                tracing::warn!(pkid = ack.pkid, "the broker refused a subscription");
            }
            MqttEvent::Outgoing(Outgoing::Publish(pkid)) => {
                if let Some(id) = self.awaiting_pkid.pop_front() {
                    self.by_pkid.insert(pkid, id);
                }
            }
            _ => {}
        }
        false
    }

    fn on_disconnect(&mut self, mqtt: &mut EventLoop) {
        self.online = false;
        // A new connection has a budget of its own.
        self.pacer = Pacer::default();
        self.paced_until = None;
        // rumqttc would retransmit these itself; the outbox does that, once, in order.
        mqtt.pending.clear();
        mqtt.state.collision = None;
        // Events rumqttc read from the dropped connection but has not handed out yet would come
        // after the next CONNACK: a stale "published as pkid N" would pair the wrong message
        // with a packet id, and a stale PUBACK could mark a message of the new connection as
        // delivered. Only messages from others are kept (catch-up would bring them anyway).
        mqtt.state.events.retain(|event| matches!(event, MqttEvent::Incoming(Packet::Publish(_))));
        self.awaiting_pkid.clear();
        self.by_pkid.clear();
        for id in self.in_flight.drain() {
            let _ = self.events.send(LinkEvent::Unacknowledged(id));
        }
    }

    fn on_command(&mut self, command: LinkCommand) {
        if !self.online {
            // Picked up from the database on the next CONNACK.
            return;
        }
        match command {
            LinkCommand::Subscribe(room) => {
                let _ = self.client.try_subscribe(room.filter().to_string(), QoS::AtLeastOnce);
            }
            LinkCommand::Unsubscribe(room) => {
                let _ = self.client.try_unsubscribe(room.filter().to_string());
            }
            LinkCommand::Flush => self.flush(),
            LinkCommand::Stop => {}
        }
    }

    fn resubscribe(&self) {
        match self.state.followed() {
            Ok(rooms) => {
                for room in rooms {
                    let _ =
                        self.client.try_subscribe(room.name.filter().to_string(), QoS::AtLeastOnce);
                }
            }
            Err(error) => tracing::error!(%error, "cannot read the followed rooms"),
        }
    }

    /// Publishes outbox entries not yet in flight, in order, up to the in-flight limit and
    /// within AWS IoT's rate per connection (the rest when the pacer allows).
    fn flush(&mut self) {
        if !self.online || self.paced_until.is_some() {
            return;
        }
        let entries = match self.state.outbox(true) {
            Ok(entries) => entries,
            Err(error) => {
                tracing::error!(%error, "cannot read the outbox");
                return;
            }
        };
        for entry in entries {
            if self.in_flight.len() >= MAX_IN_FLIGHT {
                break;
            }
            if self.in_flight.contains(&entry.id) {
                continue;
            }
            let payload =
                OutgoingPayload { message: &entry.text, id: &entry.id, sent_at: entry.sent_at_ms }
                    .encode();
            let payload = match payload {
                Ok(payload) => payload,
                Err(error) => {
                    // Checked when queued; only a corrupt database gets here.
                    tracing::error!(%error, id = %entry.id.as_str(), "an outbox entry cannot be sent");
                    continue;
                }
            };
            let topic = entry.room.topic_for(self.identity.clone()).to_string();
            if let Err(until) =
                self.pacer.admit(tokio::time::Instant::now(), topic.len() + payload.len())
            {
                tracing::debug!(?until, "pacing the outbox to AWS IoT's rate per connection");
                self.paced_until = Some(until);
                break;
            }
            if self.client.try_publish(topic, QoS::AtLeastOnce, false, payload).is_err() {
                break;
            }
            self.in_flight.insert(entry.id.clone());
            self.awaiting_pkid.push_back(entry.id);
        }
    }

    async fn stop(&mut self, mqtt: &mut EventLoop) {
        if self.online {
            let _ = self.client.try_disconnect();
            // Let the DISCONNECT go out, briefly.
            let _ = tokio::time::timeout(Duration::from_millis(500), async {
                while let Ok(event) = mqtt.poll().await {
                    if matches!(event, MqttEvent::Outgoing(Outgoing::Disconnect)) {
                        break;
                    }
                }
            })
            .await;
        }
        self.online = false;
        self.report(ConnectionState::Offline);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pacer_keeps_a_connection_within_aws_iots_rates() {
        let start = tokio::time::Instant::now();
        let mut pacer = Pacer::default();
        for n in 0..MAX_PUBLISHES_PER_SECOND {
            let at = start + Duration::from_millis(n as u64);
            assert_eq!(pacer.admit(at, 100), Ok(()), "publish {n} within the rate");
        }
        let late = start + Duration::from_millis(500);
        assert_eq!(pacer.admit(late, 100), Err(start + Duration::from_secs(1)), "the 101st waits");
        assert_eq!(pacer.admit(start + Duration::from_secs(1), 100), Ok(()), "the oldest left");

        let mut pacer = Pacer::default();
        let big = 128 * 1024;
        for n in 0..4 {
            assert_eq!(pacer.admit(start, big), Ok(()), "128 KB message {n}");
        }
        assert!(pacer.admit(start, 1).is_err(), "512 KB in this second already");
        assert_eq!(pacer.admit(start + Duration::from_secs(1), big), Ok(()));

        let mut pacer = Pacer::default();
        assert_eq!(pacer.admit(start, 600 * 1024), Ok(()), "too big for a budget: goes alone");
        assert!(pacer.admit(start, 1).is_err());
    }
}
