//! [`Client`]: one signed-in user on one backend — the session, the API, the MQTT link and the
//! chat state — behind methods named by domain and one stream of [`Event`]s.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use iotchat_protocol::api::{MAX_PAGE_SIZE, Room, StoredMessage};
use iotchat_protocol::auth::{email_is_plausible, password_problem, username_problem};
pub use iotchat_protocol::chat::{HistoryPage, RoomSummary};
use iotchat_protocol::{
    Code, IdentityId, IncomingPayload, MessageId, OutgoingPayload, RoomName, Topic,
};
use tokio::sync::{broadcast, mpsc};
use tokio::task::JoinHandle;

use crate::api::Api;
use crate::auth::{AwsCredentials, Cognito, now_ms};
use crate::backend::Backend;
use crate::error::{ClientError, Result};
use crate::events::{ConnectionState, Delivery, Event, TimelineMessage};
use crate::link::{self, LinkCommand, LinkEvent, LinkSettings};
use crate::secrets::{SecretStore, StoreKind};
use crate::session::{Account, Session};
use crate::state::{FollowedRoom, LocalState, OutboxEntry};

/// Subscriptions one MQTT connection may hold on AWS IoT, so rooms one user can follow.
pub const MAX_FOLLOWED_ROOMS: usize = 50;
/// Delivery attempts before a message is marked failed.
const MAX_ATTEMPTS: u32 = 5;
/// How far the server's clock may be behind ours when catch-up decides what predates a join.
const JOIN_CLOCK_MARGIN_MS: u64 = 10 * 60 * 1000;
/// Pages fetched per room when catching up after a reconnect.
const MAX_CATCH_UP_PAGES: usize = 20;

/// How to build a [`Client`].
#[derive(Debug, Clone)]
pub struct ClientConfig {
    pub backend: Backend,
    /// Where the client keeps its files (per backend and user below it).
    pub data_dir: PathBuf,
    pub secrets: Arc<dyn SecretStore>,
    /// Whether to hold an MQTT connection while signed in (commands that only read history
    /// do without).
    pub connect: bool,
    /// Distinguishes simultaneous processes of one installation in the MQTT client id (a
    /// second connection with the same id takes over the first).
    pub instance: Option<String>,
}

/// The IoT Chat client.
#[derive(Debug, Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    backend: Backend,
    cognito: Cognito,
    api: Api,
    /// `<data_dir>/<user pool id>`.
    dir: PathBuf,
    secrets: Arc<dyn SecretStore>,
    events: broadcast::Sender<Event>,
    client_tag: String,
    connect: bool,
    active: tokio::sync::Mutex<Option<Arc<Active>>>,
    connection: Mutex<ConnectionState>,
    /// Stops the sign-in waiting for the browser, if one is.
    provider_cancel: Mutex<Option<tokio::sync::oneshot::Sender<()>>>,
}

/// What exists while someone is signed in.
#[derive(Debug)]
struct Active {
    session: Arc<Session>,
    state: Arc<LocalState>,
    link: Option<mpsc::UnboundedSender<LinkCommand>>,
    tasks: Mutex<Vec<JoinHandle<()>>>,
    open_room: Mutex<Option<RoomName>>,
    authors: Mutex<HashMap<IdentityId, String>>,
}

const ACCOUNT_FILE: &str = "account.json";

fn io_error(what: &str, path: &std::path::Path, error: std::io::Error) -> ClientError {
    ClientError::internal(format!("Cannot {what} {}: {error}", path.display()))
}

impl Client {
    pub fn new(config: ClientConfig) -> Result<Self> {
        let dir = config.data_dir.join(&config.backend.profile.user_pool_id);
        std::fs::create_dir_all(&dir).map_err(|e| io_error("create", &dir, e))?;
        let install_id = install_id(&config.data_dir)?;
        let client_tag = match &config.instance {
            Some(instance) => format!("{install_id}-{instance}"),
            None => install_id,
        };
        let (events, _) = broadcast::channel(4096);
        Ok(Self {
            inner: Arc::new(Inner {
                cognito: Cognito::new(&config.backend)?,
                api: Api::new(&config.backend)?,
                backend: config.backend,
                dir,
                secrets: config.secrets,
                events,
                client_tag,
                connect: config.connect,
                active: tokio::sync::Mutex::new(None),
                connection: Mutex::new(ConnectionState::Offline),
                provider_cancel: Mutex::new(None),
            }),
        })
    }

    /// Events from now on. A receiver that falls more than 4,096 events behind gets a
    /// `Lagged` error and should re-read the state it shows.
    pub fn events(&self) -> broadcast::Receiver<Event> {
        self.inner.events.subscribe()
    }

    pub fn backend(&self) -> &Backend {
        &self.inner.backend
    }

    /// Where the session's tokens are kept.
    pub fn secret_store_kind(&self) -> StoreKind {
        self.inner.secrets.kind()
    }

    pub fn connection(&self) -> ConnectionState {
        self.inner.connection.lock().map(|c| *c).unwrap_or(ConnectionState::Offline)
    }

    /// The signed-in account, if any.
    pub async fn account(&self) -> Option<Account> {
        self.inner.active.lock().await.as_ref().map(|a| a.session.account.clone())
    }

    async fn active(&self) -> Result<Arc<Active>> {
        self.inner.active.lock().await.clone().ok_or_else(ClientError::not_signed_in)
    }

    // ---- session ----

    /// Creates an account. Input is checked here first, with the server's rules, so mistakes
    /// are explained without a round trip.
    pub async fn register(&self, username: &str, email: &str, password: &str) -> Result<()> {
        if let Some(problem) = username_problem(username) {
            return Err(ClientError::invalid(problem.to_string()));
        }
        if !email_is_plausible(email) {
            return Err(ClientError::invalid(format!("{email:?} is not an email address.")));
        }
        if let Some(problem) = password_problem(password) {
            return Err(ClientError::new(Code::InvalidPassword, problem.cognito_message()));
        }
        self.inner.cognito.sign_up(username, email, password).await
    }

    /// Signs in, keeps the tokens in the secret store, and goes online.
    pub async fn login(&self, username: &str, password: &str) -> Result<Account> {
        if username.trim().is_empty() || password.is_empty() {
            return Err(ClientError::invalid("Enter your username and password."));
        }
        self.stop_active().await;
        let tokens = self.inner.cognito.sign_in(username.trim(), password).await?;
        self.finish_sign_in(username.trim(), tokens).await
    }

    /// The identity providers the server signs in with ("Continue with …"), from the profile.
    pub fn providers(&self) -> Vec<String> {
        self.inner
            .backend
            .profile
            .hosted_ui
            .as_ref()
            .map(|h| h.providers.clone())
            .unwrap_or_default()
    }

    /// Signs in through `provider` in the browser (the hosted UI, authorization code with
    /// PKCE, answered on a loopback port), then as after a password sign-in. Waits up to
    /// `timeout` for the browser; [`Client::cancel_provider_login`] stops the wait with
    /// [`Code::Cancelled`]. A new sign-in cancels one still waiting.
    pub async fn login_with_provider(
        &self,
        provider: &str,
        opener: &dyn crate::oauth::OpenUrl,
        timeout: std::time::Duration,
    ) -> Result<Account> {
        let (cancel, cancelled) = tokio::sync::oneshot::channel();
        if let Ok(mut slot) = self.inner.provider_cancel.lock()
            && let Some(earlier) = slot.replace(cancel)
        {
            let _ = earlier.send(());
        }
        let tokens =
            crate::oauth::sign_in(&self.inner.backend, provider, opener, cancelled, timeout).await;
        // This sign-in's sender (its receiver is gone now), unless a newer sign-in took over.
        if let Ok(mut slot) = self.inner.provider_cancel.lock()
            && slot.as_ref().is_some_and(|s| s.is_closed())
        {
            slot.take();
        }
        let tokens = tokens?;
        // The user pool names federated users (`Google_1098…`, lower-cased by some pools):
        // the name comes from the ID token, never made up here.
        let username = crate::auth::jwt_claim_str(tokens.id_token(), "cognito:username")
            .ok_or_else(|| ClientError::internal("The ID token names no cognito:username."))?;
        self.stop_active().await;
        self.finish_sign_in(&username, tokens).await
    }

    /// Stops a sign-in waiting for the browser; it ends with [`Code::Cancelled`].
    pub fn cancel_provider_login(&self) {
        if let Some(cancel) = self.inner.provider_cancel.lock().ok().and_then(|mut s| s.take()) {
            let _ = cancel.send(());
        }
    }

    /// After any sign-in: keep the tokens, record the username and attach the IoT policy (as
    /// the seed did), and go online.
    async fn finish_sign_in(&self, username: &str, tokens: crate::auth::Tokens) -> Result<Account> {
        let session = Session::begin(
            self.inner.cognito.clone(),
            Arc::clone(&self.inner.secrets),
            &self.inner.backend.profile.user_pool_id,
            username,
            tokens,
        )
        .await?;
        let account = session.account.clone();
        let session = Arc::new(session);
        let credentials = session.credentials().await?;
        self.inner.api.user_record(&credentials, &account.username).await?;
        self.inner.api.policy_attach(&credentials).await?;
        self.save_account(&account)?;
        self.activate(session).await?;
        Ok(account)
    }

    /// Resumes the session kept from an earlier run. `Ok(None)`: nobody is signed in here.
    /// Offline, the session resumes anyway and the link keeps trying.
    pub async fn restore(&self) -> Result<Option<Account>> {
        self.stop_active().await;
        let path = self.inner.dir.join(ACCOUNT_FILE);
        let account: Account = match std::fs::read(&path) {
            Ok(bytes) => match serde_json::from_slice(&bytes) {
                Ok(account) => account,
                Err(_) => return Ok(None),
            },
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io_error("read", &path, e)),
        };
        let resumed = Session::resume(
            self.inner.cognito.clone(),
            Arc::clone(&self.inner.secrets),
            &self.inner.backend.profile.user_pool_id,
            account,
        )
        .await?;
        let Some(session) = resumed else {
            let _ = std::fs::remove_file(&path);
            return Ok(None);
        };
        match session.credentials().await {
            Ok(_) => {}
            Err(e) if e.code == Code::Unavailable => {
                tracing::info!(%e, "resuming offline");
            }
            Err(e) => {
                if e.code == Code::SessionExpired {
                    let _ = session.forget().await;
                    let _ = std::fs::remove_file(&path);
                }
                return Err(e);
            }
        }
        let account = session.account.clone();
        self.activate(Arc::new(session)).await?;
        Ok(Some(account))
    }

    /// Signs out everywhere: revokes the tokens at the server, closes the connection, and
    /// removes the tokens from the secret store. Local state (followed rooms, unread counts)
    /// stays for the next sign-in.
    pub async fn logout(&self) -> Result<()> {
        let active = self.inner.active.lock().await.take();
        let _ = std::fs::remove_file(self.inner.dir.join(ACCOUNT_FILE));
        let Some(active) = active else { return Ok(()) };
        active.stop().await;
        let result = active.session.sign_out().await;
        self.set_connection(ConnectionState::Offline);
        result
    }

    /// Stops the connection and background work, keeping the session for the next start.
    pub async fn shutdown(&self) {
        self.stop_active().await;
    }

    async fn stop_active(&self) {
        if let Some(active) = self.inner.active.lock().await.take() {
            active.stop().await;
        }
    }

    fn save_account(&self, account: &Account) -> Result<()> {
        let path = self.inner.dir.join(ACCOUNT_FILE);
        let json =
            serde_json::to_vec_pretty(account).map_err(|e| ClientError::internal(e.to_string()))?;
        std::fs::write(&path, json).map_err(|e| io_error("write", &path, e))
    }

    async fn activate(&self, session: Arc<Session>) -> Result<()> {
        let file = format!("{}.sqlite3", session.account.username);
        let state = Arc::new(LocalState::open(&self.inner.dir.join(file))?);
        let (link_events_tx, link_events_rx) = mpsc::unbounded_channel();
        let (missed_tx, missed_rx) = mpsc::unbounded_channel();
        let mut tasks = Vec::new();
        let link_tx = if self.inner.connect {
            let (link_tx, link_rx) = mpsc::unbounded_channel();
            let settings = LinkSettings {
                endpoint: self.inner.backend.profile.iot_endpoint.clone(),
                region: self.inner.backend.profile.region.clone(),
                client_id: format!("{}-{}", session.account.identity_id, self.inner.client_tag),
                tls: Arc::clone(&self.inner.backend.tls),
            };
            tasks.push(tokio::spawn(link::run(
                settings,
                Arc::clone(&session),
                Arc::clone(&state),
                link_rx,
                link_events_tx,
            )));
            Some(link_tx)
        } else {
            None
        };
        let active = Arc::new(Active {
            session,
            state,
            link: link_tx,
            tasks: Mutex::new(Vec::new()),
            open_room: Mutex::new(None),
            authors: Mutex::new(HashMap::new()),
        });
        let chat = Chat { client: self.clone(), active: Arc::clone(&active), missed_tx };
        tasks.push(tokio::spawn(chat.run(link_events_rx, missed_rx)));
        if let Ok(mut slot) = active.tasks.lock() {
            *slot = tasks;
        }
        *self.inner.active.lock().await = Some(active);
        Ok(())
    }

    fn emit(&self, event: Event) {
        // No receiver is not an error: nobody is listening yet.
        let _ = self.inner.events.send(event);
    }

    fn set_connection(&self, state: ConnectionState) {
        if let Ok(mut current) = self.inner.connection.lock() {
            if *current == state {
                return;
            }
            *current = state;
        }
        self.emit(Event::Connection { connection: state });
    }

    /// Calls the API with the session's credentials, renewing them once if the server
    /// refuses them.
    async fn with_credentials<T, F, Fut>(&self, active: &Active, call: F) -> Result<T>
    where
        F: Fn(AwsCredentials) -> Fut,
        Fut: std::future::Future<Output = Result<T>>,
    {
        let credentials = active.session.credentials().await?;
        match call(credentials).await {
            Err(e) if e.code == Code::Unauthenticated => {
                let credentials = active.session.credentials_renewed().await?;
                call(credentials).await
            }
            other => other,
        }
    }

    // ---- people ----

    /// Everyone who has signed in to this backend (and so recorded a username).
    pub async fn users(&self) -> Result<Vec<iotchat_protocol::api::User>> {
        let active = self.active().await?;
        let api = &self.inner.api;
        let users = self.with_credentials(&active, |c| async move { api.users(&c).await }).await?;
        for user in &users {
            active.state.author_set(&user.identity_id, &user.username)?;
        }
        Ok(users)
    }

    /// The signed-in user as the server records them.
    pub async fn me(&self) -> Result<iotchat_protocol::api::User> {
        let active = self.active().await?;
        let api = &self.inner.api;
        self.with_credentials(&active, |c| async move { api.user_me(&c).await }).await
    }

    // ---- rooms ----

    /// Every room, with whether it is followed and its unread count.
    pub async fn rooms(&self) -> Result<Vec<RoomSummary>> {
        let active = self.active().await?;
        let api = &self.inner.api;
        let rooms = self.with_credentials(&active, |c| async move { api.rooms(&c).await }).await?;
        let followed: HashMap<RoomName, FollowedRoom> =
            active.state.followed()?.into_iter().map(|f| (f.name.clone(), f)).collect();
        Ok(rooms
            .into_iter()
            .map(|room| {
                let f = followed.get(&room.name);
                RoomSummary {
                    followed: f.is_some(),
                    unread: f.map_or(0, |f| f.unread),
                    muted: f.is_some_and(|f| f.muted),
                    room,
                }
            })
            .collect())
    }

    /// The followed rooms with their unread counts (local; works offline).
    pub async fn followed(&self) -> Result<Vec<FollowedRoom>> {
        self.active().await?.state.followed()
    }

    /// Creates a room from a display name and joins it.
    pub async fn room_create(&self, display_name: &str) -> Result<Room> {
        let active = self.active().await?;
        let api = &self.inner.api;
        let room = self
            .with_credentials(&active, |c| async move { api.room_create(&c, display_name).await })
            .await?;
        self.follow(&active, &room.name, &room.display_name).await?;
        Ok(room)
    }

    /// Follows an existing room: subscribes, and from now on counts its unread messages.
    pub async fn room_join(&self, room: &RoomName) -> Result<()> {
        let active = self.active().await?;
        let api = &self.inner.api;
        let rooms = self.with_credentials(&active, |c| async move { api.rooms(&c).await }).await?;
        let found = rooms.into_iter().find(|r| &r.name == room).ok_or_else(|| {
            ClientError::new(Code::NotFound, format!("There is no room {room}. Create it first."))
        })?;
        self.follow(&active, &found.name, &found.display_name).await
    }

    async fn follow(&self, active: &Active, room: &RoomName, display_name: &str) -> Result<()> {
        let followed = active.state.followed()?;
        if !followed.iter().any(|f| &f.name == room) && followed.len() >= MAX_FOLLOWED_ROOMS {
            return Err(ClientError::new(
                Code::InvalidInput,
                format!(
                    "You follow {MAX_FOLLOWED_ROOMS} rooms, the most one connection can; leave \
                     one first."
                ),
            ));
        }
        active.state.follow(room, display_name, now_ms())?;
        // What is already there is history, not unread.
        let api = &self.inner.api;
        match self
            .with_credentials(active, |c| async move {
                api.messages(&c, room, None, MAX_PAGE_SIZE).await
            })
            .await
        {
            Ok(page) => {
                for message in &page.messages {
                    active.state.mark_seen(room, &message.id, now_ms())?;
                }
            }
            Err(e) => tracing::info!(%e, %room, "joined without reading the latest history"),
        }
        active.send_link(LinkCommand::Subscribe(room.clone()));
        self.emit(Event::Followed);
        Ok(())
    }

    /// Stops following a room (unsubscribes; its unread count goes).
    pub async fn room_leave(&self, room: &RoomName) -> Result<()> {
        let active = self.active().await?;
        if !active.state.unfollow(room)? {
            return Err(ClientError::new(Code::NotFound, format!("You do not follow {room}.")));
        }
        active.send_link(LinkCommand::Unsubscribe(room.clone()));
        self.emit(Event::Followed);
        self.emit(Event::Unread {
            room: room.clone(),
            count: 0,
            total: total_unread(&active.state),
        });
        Ok(())
    }

    /// Mutes or unmutes a followed room's notifications.
    pub async fn room_mute(&self, room: &RoomName, muted: bool) -> Result<()> {
        let active = self.active().await?;
        if !active.state.set_muted(room, muted)? {
            return Err(ClientError::new(Code::NotFound, format!("You do not follow {room}.")));
        }
        self.emit(Event::Followed);
        Ok(())
    }

    /// Tells the client which room is on screen (`None`: none, or the window is not focused).
    /// Opening a room marks it read.
    pub async fn room_open(&self, room: Option<RoomName>) -> Result<()> {
        let active = self.active().await?;
        if let Ok(mut open) = active.open_room.lock() {
            open.clone_from(&room);
        }
        if let Some(room) = room
            && active.state.unread_reset(&room)?
        {
            self.emit(Event::Unread { room, count: 0, total: total_unread(&active.state) });
        }
        Ok(())
    }

    // ---- messages ----

    /// Queues a message: it is kept in the outbox (on disk) until the broker acknowledges it,
    /// across reconnects and restarts.
    pub async fn message_send(&self, room: &RoomName, text: &str) -> Result<TimelineMessage> {
        let active = self.active().await?;
        if active.state.followed_room(room)?.is_none() {
            return Err(ClientError::invalid(format!("Join {room} before writing in it.")));
        }
        let id = MessageId::parse(&uuid::Uuid::new_v4().to_string())
            .map_err(|e| ClientError::internal(e.to_string()))?;
        let sent_at_ms = now_ms();
        let text = text.trim_end().to_owned();
        OutgoingPayload { message: &text, id: &id, sent_at: sent_at_ms }.encode().map_err(|e| {
            match e {
                iotchat_protocol::PayloadError::TooLarge { .. } => {
                    ClientError::new(Code::PayloadTooLarge, e.to_string())
                }
                _ => ClientError::invalid(e.to_string()),
            }
        })?;
        let entry =
            OutboxEntry { id, room: room.clone(), text, sent_at_ms, attempts: 0, failed: None };
        active.state.outbox_push(&entry)?;
        let message = self.outbox_message(&active, entry);
        self.emit(Event::Message { message: message.clone(), missed: false });
        active.send_link(LinkCommand::Flush);
        Ok(message)
    }

    /// Puts a failed message back in the outbox.
    pub async fn message_retry(&self, id: &MessageId) -> Result<()> {
        let active = self.active().await?;
        if !active.state.outbox_retry(id)? {
            return Err(ClientError::new(
                Code::NotFound,
                "That message is not waiting for a retry.",
            ));
        }
        if let Some(entry) = active.state.outbox(false)?.into_iter().find(|e| &e.id == id) {
            self.emit(Event::Delivery {
                room: entry.room,
                id: id.clone(),
                delivery: Delivery::Pending,
            });
        }
        active.send_link(LinkCommand::Flush);
        Ok(())
    }

    /// Gives up on a message that has not been delivered (removes it from the outbox).
    pub async fn message_discard(&self, id: &MessageId) -> Result<()> {
        let active = self.active().await?;
        if !active.state.outbox_discard(id)? {
            return Err(ClientError::new(Code::NotFound, "That message is not in the outbox."));
        }
        Ok(())
    }

    /// Our messages not yet delivered (pending or failed), oldest first, in `room` or all.
    pub async fn outbox(&self, room: Option<&RoomName>) -> Result<Vec<TimelineMessage>> {
        let active = self.active().await?;
        Ok(active
            .state
            .outbox(false)?
            .into_iter()
            .filter(|e| room.is_none_or(|r| &e.room == r))
            .map(|e| self.outbox_message(&active, e))
            .collect())
    }

    fn outbox_message(&self, active: &Active, entry: OutboxEntry) -> TimelineMessage {
        TimelineMessage {
            id: entry.id,
            room: entry.room,
            sender: active.session.account.identity_id.clone(),
            author: active.session.account.username.clone(),
            text: entry.text,
            sent_at_ms: entry.sent_at_ms,
            own: true,
            delivery: match entry.failed {
                Some(reason) => Delivery::Failed { reason },
                None => Delivery::Pending,
            },
        }
    }

    /// One page of a room's history, newest first.
    pub async fn history(
        &self,
        room: &RoomName,
        before: Option<&str>,
        limit: u32,
    ) -> Result<HistoryPage> {
        let active = self.active().await?;
        let api = &self.inner.api;
        let page =
            self.with_credentials(&active, |c| async move {
                api.messages(&c, room, before, limit).await
            })
            .await?;
        let mut messages = Vec::with_capacity(page.messages.len());
        for stored in page.messages {
            active.state.mark_seen(room, &stored.id, now_ms())?;
            messages.push(self.timeline(&active, stored).await);
        }
        Ok(HistoryPage { messages, next_before: page.next_before })
    }

    async fn timeline(&self, active: &Active, stored: StoredMessage) -> TimelineMessage {
        let own = stored.sender == active.session.account.identity_id;
        TimelineMessage {
            author: self.author(active, &stored.sender).await,
            id: stored.id,
            room: stored.room,
            sender: stored.sender,
            text: stored.message,
            sent_at_ms: stored.sent_at,
            own,
            delivery: Delivery::Delivered,
        }
    }

    /// A sender's username: memory, then the local cache, then the API (remembered).
    async fn author(&self, active: &Active, identity: &IdentityId) -> String {
        if let Some(name) = active.authors.lock().ok().and_then(|a| a.get(identity).cloned()) {
            return name;
        }
        let cached = active.state.author(identity).ok().flatten();
        let name = match cached {
            Some(name) => Some(name),
            None => {
                let api = &self.inner.api;
                let fetched = self
                    .with_credentials(active, |c| async move { api.user_get(&c, identity).await })
                    .await;
                match fetched {
                    Ok(user) => {
                        let _ = active.state.author_set(identity, &user.username);
                        Some(user.username)
                    }
                    Err(e) => {
                        tracing::debug!(%e, %identity, "author name unknown for now");
                        None
                    }
                }
            }
        };
        match name {
            Some(name) => {
                if let Ok(mut authors) = active.authors.lock() {
                    authors.insert(identity.clone(), name.clone());
                }
                name
            }
            None => short_identity(identity),
        }
    }
}

/// `user-7f86d9a8` for `us-east-1:7f86d9a8-…`, while the name is unknown.
fn short_identity(identity: &IdentityId) -> String {
    let id = identity.as_str().split_once(':').map_or(identity.as_str(), |(_, id)| id);
    format!("user-{}", id.get(..8).unwrap_or(id))
}

fn total_unread(state: &LocalState) -> u32 {
    state.followed().map(|rooms| rooms.iter().map(|r| r.unread).sum()).unwrap_or(0)
}

/// The installation's id (random, kept in the data directory).
fn install_id(data_dir: &std::path::Path) -> Result<String> {
    let path = data_dir.join("install-id");
    if let Ok(id) = std::fs::read_to_string(&path) {
        let id = id.trim();
        if !id.is_empty() && id.len() <= 32 && id.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return Ok(id.to_owned());
        }
    }
    let id = uuid::Uuid::new_v4().simple().to_string()[..12].to_owned();
    std::fs::create_dir_all(data_dir).map_err(|e| io_error("create", data_dir, e))?;
    std::fs::write(&path, &id).map_err(|e| io_error("write", &path, e))?;
    Ok(id)
}

impl Active {
    fn send_link(&self, command: LinkCommand) {
        if let Some(link) = &self.link {
            let _ = link.send(command);
        }
    }

    async fn stop(&self) {
        self.send_link(LinkCommand::Stop);
        let tasks = self.tasks.lock().map(|mut t| std::mem::take(&mut *t)).unwrap_or_default();
        for task in tasks {
            let abort = task.abort_handle();
            if tokio::time::timeout(Duration::from_secs(2), task).await.is_err() {
                abort.abort();
            }
        }
    }

    fn is_open(&self, room: &RoomName) -> bool {
        self.open_room.lock().is_ok_and(|open| open.as_ref() == Some(room))
    }
}

/// The task that turns what the link delivers into chat state and events, one at a time, in
/// order.
struct Chat {
    client: Client,
    active: Arc<Active>,
    missed_tx: mpsc::UnboundedSender<(RoomName, Vec<StoredMessage>)>,
}

impl Chat {
    async fn run(
        self,
        mut link: mpsc::UnboundedReceiver<LinkEvent>,
        mut missed: mpsc::UnboundedReceiver<(RoomName, Vec<StoredMessage>)>,
    ) {
        loop {
            tokio::select! {
                event = link.recv() => match event {
                    Some(event) => self.on_link(event).await,
                    None => {
                        // The link has stopped; still take in what catch-up is delivering.
                        while let Some((room, messages)) = missed.recv().await {
                            self.on_missed(&room, messages).await;
                        }
                        return;
                    }
                },
                Some((room, messages)) = missed.recv() => self.on_missed(&room, messages).await,
            }
        }
    }

    async fn on_link(&self, event: LinkEvent) {
        match event {
            LinkEvent::State(state) => self.client.set_connection(state),
            LinkEvent::Connected => {
                let catch_up = CatchUp {
                    client: self.client.clone(),
                    active: Arc::clone(&self.active),
                    tx: self.missed_tx.clone(),
                };
                tokio::spawn(catch_up.run());
            }
            LinkEvent::Incoming { topic, payload, received_at_ms } => {
                let topic = match Topic::parse(&topic) {
                    Ok(topic) => topic,
                    Err(error) => {
                        tracing::info!(%error, "a message on an unexpected topic was dropped");
                        return;
                    }
                };
                let incoming = match IncomingPayload::parse(&payload) {
                    Ok(incoming) => incoming,
                    Err(error) => {
                        tracing::info!(%error, %topic, "a malformed message was dropped");
                        return;
                    }
                };
                let fallback = || {
                    MessageId::parse(&uuid::Uuid::new_v4().to_string())
                        .unwrap_or_else(|_| unreachable_id())
                };
                let message = incoming.complete(received_at_ms, fallback);
                let stored = StoredMessage {
                    id: message.id,
                    room: topic.room().clone(),
                    sender: topic.sender().clone(),
                    message: message.text,
                    sent_at: message.sent_at_ms,
                    received_at: received_at_ms,
                };
                self.ingest(stored, false).await;
            }
            LinkEvent::Delivered(id) => match self.active.state.outbox_delivered(&id) {
                Ok(Some(room)) => {
                    let _ = self.active.state.mark_seen(&room, &id, now_ms());
                    self.client.emit(Event::Delivery { room, id, delivery: Delivery::Delivered });
                }
                Ok(None) => {}
                Err(error) => tracing::error!(%error, "cannot update the outbox"),
            },
            LinkEvent::Unacknowledged(id) => {
                let reason = "The server refused this message several times.";
                match self.active.state.outbox_attempt_failed(&id, MAX_ATTEMPTS, reason) {
                    Ok(true) => {
                        if let Ok(entries) = self.active.state.outbox(false)
                            && let Some(entry) = entries.into_iter().find(|e| e.id == id)
                        {
                            self.client.emit(Event::Delivery {
                                room: entry.room,
                                id,
                                delivery: Delivery::Failed { reason: reason.to_owned() },
                            });
                        }
                    }
                    Ok(false) => {}
                    Err(error) => tracing::error!(%error, "cannot update the outbox"),
                }
            }
            LinkEvent::SessionEnded(error) => {
                self.client.emit(Event::SessionEnded { reason: error.message });
            }
        }
    }

    async fn on_missed(&self, room: &RoomName, messages: Vec<StoredMessage>) {
        for message in messages {
            if &message.room == room {
                self.ingest(message, true).await;
            }
        }
    }

    /// Takes in one message: once per id, in followed rooms only; counts it unread unless it is
    /// ours or its room is on screen.
    async fn ingest(&self, message: StoredMessage, missed: bool) {
        let state = &self.active.state;
        match state.followed_room(&message.room) {
            Ok(Some(_)) => {}
            Ok(None) => return,
            Err(error) => {
                tracing::error!(%error, "cannot read the followed rooms");
                return;
            }
        }
        let room = message.room.clone();
        let own = message.sender == self.active.session.account.identity_id;
        let count_unread = !own && !self.active.is_open(&room);
        let unread = match state.arrive(&room, &message.id, now_ms(), count_unread) {
            Ok(Some(unread)) => unread,
            Ok(None) => return,
            Err(error) => {
                tracing::error!(%error, "cannot record a message as seen");
                return;
            }
        };
        let timeline = self.client.timeline(&self.active, message).await;
        self.client.emit(Event::Message { message: timeline, missed });
        if let Some(count) = unread {
            let total = total_unread(state);
            self.client.emit(Event::Unread { room, count, total });
        }
    }
}

/// A fixed, valid id for the impossible case that a fresh UUID does not parse.
fn unreachable_id() -> MessageId {
    #[allow(clippy::unwrap_used, reason = "a constant UUID always parses")]
    MessageId::parse("00000000-0000-4000-8000-000000000000").unwrap()
}

/// Fetches, for every followed room, what arrived while the link was down.
struct CatchUp {
    client: Client,
    active: Arc<Active>,
    tx: mpsc::UnboundedSender<(RoomName, Vec<StoredMessage>)>,
}

impl CatchUp {
    async fn run(self) {
        let rooms = match self.active.state.followed() {
            Ok(rooms) => rooms,
            Err(error) => {
                tracing::error!(%error, "catch-up cannot read the followed rooms");
                return;
            }
        };
        for room in rooms {
            match self.missed_in(&room).await {
                Ok(missed) if !missed.is_empty() => {
                    tracing::info!(room = %room.name, count = missed.len(), "caught up");
                    let _ = self.tx.send((room.name, missed));
                }
                Ok(_) => {}
                Err(error) => tracing::info!(%error, room = %room.name, "catch-up failed"),
            }
        }
    }

    /// Walks history newest first, collecting unseen messages, and stops at the first seen
    /// message older than an unseen one (the far side of the gap), at a page with nothing
    /// unseen, or at messages from before the room was joined.
    async fn missed_in(&self, room: &FollowedRoom) -> Result<Vec<StoredMessage>> {
        let api = &self.client.inner.api;
        let mut missed = Vec::new();
        let mut before: Option<String> = None;
        for _ in 0..MAX_CATCH_UP_PAGES {
            let cursor = before.as_deref();
            let name = &room.name;
            let page = self
                .client
                .with_credentials(&self.active, |c| async move {
                    api.messages(&c, name, cursor, MAX_PAGE_SIZE).await
                })
                .await?;
            let mut unseen_in_page = false;
            // Clocks differ between client and server; what was there at joining is marked
            // seen anyway, so a generous margin costs nothing.
            let joined = room.joined_at_ms.saturating_sub(JOIN_CLOCK_MARGIN_MS);
            for message in page.messages {
                if message.received_at < joined {
                    return Ok(oldest_first(missed));
                }
                if self.active.state.is_seen(&room.name, &message.id)? {
                    if !missed.is_empty() {
                        return Ok(oldest_first(missed));
                    }
                } else {
                    unseen_in_page = true;
                    missed.push(message);
                }
            }
            match page.next_before {
                Some(next) if unseen_in_page => before = Some(next),
                _ => break,
            }
        }
        Ok(oldest_first(missed))
    }
}

fn oldest_first(mut newest_first: Vec<StoredMessage>) -> Vec<StoredMessage> {
    newest_first.reverse();
    newest_first
}
