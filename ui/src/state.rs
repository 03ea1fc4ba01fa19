//! What the whole UI shares: the session, the followed rooms, the open view, and the open room's
//! timeline. One copy lives in the Leptos context; the shell's events update it in one place.

use iotchat_protocol::chat::{Account, ConnectionState, Event, FollowedRoom, StoreKind};
use iotchat_protocol::desktop::{BackendInfo, SessionState, Settings, UpdateStatus};
use iotchat_protocol::{ErrorBody, RoomName};
use leptos::prelude::*;
use leptos::task::spawn_local;

use crate::history::Timeline;
use crate::ipc;
use crate::time;

/// Which screen the window shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Phase {
    /// Asking the shell who is signed in.
    Starting,
    /// The shell did not answer; the message says why.
    Failed(String),
    SignedOut,
    SignedIn,
}

/// What the main area shows while signed in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum View {
    /// Nothing chosen yet: say what to do next.
    Home,
    Browser,
    Room(RoomName),
    Settings,
}

/// The shared state. Every field is a signal, so copies are cheap and all point to one store.
#[derive(Debug, Clone, Copy)]
pub(crate) struct AppState {
    pub(crate) phase: RwSignal<Phase>,
    pub(crate) account: RwSignal<Option<Account>>,
    pub(crate) backend: RwSignal<Option<BackendInfo>>,
    pub(crate) secret_store: RwSignal<Option<StoreKind>>,
    pub(crate) connection: RwSignal<ConnectionState>,
    /// When the next reconnect attempt is due, on the page's clock, for the countdown.
    pub(crate) reconnect_due_ms: RwSignal<f64>,
    /// What the shell wants the user to know about the session (it ended, it will not last).
    pub(crate) notice: RwSignal<Option<String>>,
    pub(crate) settings: RwSignal<Settings>,
    /// What the updater knows (`None` until the shell answered).
    pub(crate) update: RwSignal<Option<UpdateStatus>>,
    pub(crate) followed: RwSignal<Vec<FollowedRoom>>,
    /// False until the first answer of `rooms_followed`.
    pub(crate) followed_loaded: RwSignal<bool>,
    pub(crate) total_unread: RwSignal<u32>,
    /// Connection events received so far: an answer that left the shell before the newest of
    /// them must not overwrite the state it reported.
    connection_events: StoredValue<u64>,
    pub(crate) view: RwSignal<View>,
    /// The open room's messages; events for other rooms do not touch it.
    pub(crate) timeline: RwSignal<Option<Timeline>>,
    /// Bumped when the list of rooms may have changed, so the browser fetches it again.
    pub(crate) rooms_epoch: RwSignal<u64>,
    /// A failure with no better place to be shown; the main view shows it until dismissed.
    pub(crate) error: RwSignal<Option<String>>,
    /// The address of the sign-in open in the browser, to copy when no browser opened.
    pub(crate) sign_in_url: RwSignal<Option<String>>,
}

/// The state from the context (provided by the root component).
pub(crate) fn use_state() -> AppState {
    expect_context::<AppState>()
}

impl AppState {
    pub(crate) fn new() -> Self {
        Self {
            phase: RwSignal::new(Phase::Starting),
            account: RwSignal::new(None),
            backend: RwSignal::new(None),
            secret_store: RwSignal::new(None),
            connection: RwSignal::new(ConnectionState::Offline),
            reconnect_due_ms: RwSignal::new(0.0),
            notice: RwSignal::new(None),
            settings: RwSignal::new(Settings::default()),
            update: RwSignal::new(None),
            followed: RwSignal::new(Vec::new()),
            followed_loaded: RwSignal::new(false),
            total_unread: RwSignal::new(0),
            connection_events: StoredValue::new(0),
            view: RwSignal::new(View::Home),
            timeline: RwSignal::new(None),
            rooms_epoch: RwSignal::new(0),
            error: RwSignal::new(None),
            sign_in_url: RwSignal::new(None),
        }
    }

    /// Shows `error` in the main view, saying what was being done.
    pub(crate) fn report(self, doing: &str, error: &ErrorBody) {
        self.error.set(Some(format!("{doing}: {}", error.message)));
    }

    /// Takes in what `session_state` answered.
    /// Where the connection events stand; pass it to [`Self::apply_session`] with the answer
    /// of a `session_state` asked for after taking it.
    pub(crate) fn connection_mark(self) -> u64 {
        self.connection_events.get_value()
    }

    pub(crate) fn apply_session(self, session: SessionState, mark: u64) {
        self.apply_session_details(&session, mark);
        match session.account {
            Some(account) => self.signed_in(account),
            None => {
                self.account.set(None);
                self.phase.set(Phase::SignedOut);
            }
        }
    }

    /// Everything in a `session_state` answer but who is signed in.
    pub(crate) fn apply_session_details(self, session: &SessionState, mark: u64) {
        self.backend.set(Some(session.backend.clone()));
        self.secret_store.set(Some(session.secret_store));
        // An event that arrived meanwhile is newer than this answer.
        if self.connection_events.get_value() == mark {
            self.set_connection(session.connection);
        }
        self.notice.set(session.notice.clone());
    }

    pub(crate) fn signed_in(self, account: Account) {
        self.account.set(Some(account));
        self.error.set(None);
        self.view.set(View::Home);
        self.phase.set(Phase::SignedIn);
        self.refresh_followed();
    }

    /// After logging in: the connection state and notices come with the session.
    pub(crate) fn logged_in(self, account: Account) {
        self.notice.set(None);
        self.signed_in(account);
        let mark = self.connection_mark();
        spawn_local(async move {
            match ipc::session_state().await {
                Ok(session) => self.apply_session_details(&session, mark),
                Err(e) => self.report("Could not read the session", &e),
            }
        });
    }

    /// Back to the login screen; `notice` says why when it was not the user's choice.
    pub(crate) fn signed_out(self, notice: Option<String>) {
        self.phase.set(Phase::SignedOut);
        self.account.set(None);
        self.view.set(View::Home);
        self.timeline.set(None);
        self.followed.set(Vec::new());
        self.followed_loaded.set(false);
        self.total_unread.set(0);
        self.error.set(None);
        self.set_connection(ConnectionState::Offline);
        if notice.is_some() {
            self.notice.set(notice);
        }
    }

    pub(crate) fn set_connection(self, connection: ConnectionState) {
        if let ConnectionState::Reconnecting { in_secs, .. } = connection {
            self.reconnect_due_ms.set(time::now_ms() + in_secs as f64 * 1000.0);
        }
        self.connection.set(connection);
    }

    pub(crate) fn load_settings(self) {
        spawn_local(async move {
            match ipc::settings_get().await {
                Ok(settings) => self.settings.set(settings),
                Err(e) => self.report("Could not load your settings", &e),
            }
        });
    }

    /// Events were lost on the way from the shell: fetch the rooms, their unread counts and the
    /// open room's newest messages again.
    pub(crate) fn resync(self) {
        if self.account.get_untracked().is_none() {
            return;
        }
        self.refresh_followed();
        self.rooms_epoch.update(|n| *n += 1);
        let open = self.timeline.with_untracked(|t| t.as_ref().map(|t| t.room.clone()));
        if let Some(room) = open {
            self.timeline.set(Some(Timeline::new(room.clone())));
            spawn_local(crate::timeline::load_first_page(self, room));
        }
    }

    /// Fetches the followed rooms again (after a join, leave, mute, or a `followed` event).
    pub(crate) fn refresh_followed(self) {
        spawn_local(self.reload_followed());
    }

    /// [`Self::refresh_followed`], for callers that must see the new list before going on.
    pub(crate) async fn reload_followed(self) {
        match ipc::rooms_followed().await {
            Ok(rooms) => self.set_followed(rooms),
            Err(e) => self.report("Could not load your rooms", &e),
        }
    }

    fn set_followed(self, mut rooms: Vec<FollowedRoom>) {
        if self.account.get_untracked().is_none() {
            return; // an answer that arrived after logging out
        }
        rooms.sort_by_cached_key(|r| (r.display_name.to_lowercase(), r.name.clone()));
        self.total_unread.set(rooms.iter().map(|r| r.unread).sum());
        self.followed.set(rooms);
        self.followed_loaded.set(true);
    }

    /// The followed room named `room`, if the user follows it.
    pub(crate) fn followed_room(self, room: &RoomName) -> Option<FollowedRoom> {
        self.followed.with(|rooms| rooms.iter().find(|r| &r.name == room).cloned())
    }

    pub(crate) fn open_room(self, room: RoomName) {
        self.view.set(View::Room(room));
    }

    /// One event from the client core, forwarded by the shell.
    pub(crate) fn handle_event(self, event: Event) {
        match event {
            Event::Connection { connection } => {
                self.connection_events.update_value(|n| *n += 1);
                self.set_connection(connection);
            }
            Event::Message { message, missed } => {
                self.timeline.maybe_update(|timeline| match timeline {
                    Some(t) if t.room == message.room => {
                        t.receive(message, missed);
                        true
                    }
                    _ => false,
                });
            }
            Event::Delivery { room, id, delivery } => {
                self.timeline.maybe_update(|timeline| match timeline {
                    Some(t) if t.room == room => t.set_delivery(&id, delivery),
                    _ => false,
                });
            }
            Event::Unread { room, count, total } => {
                let mut known = false;
                self.followed.maybe_update(|rooms| {
                    match rooms.iter_mut().find(|r| r.name == room) {
                        Some(r) => {
                            known = true;
                            let changed = r.unread != count;
                            r.unread = count;
                            changed
                        }
                        None => false,
                    }
                });
                self.total_unread.set(total);
                if !known && self.account.get_untracked().is_some() {
                    self.refresh_followed();
                }
            }
            Event::Followed => {
                if self.account.get_untracked().is_some() {
                    self.refresh_followed();
                    self.rooms_epoch.update(|n| *n += 1);
                }
            }
            Event::SessionEnded { reason } => self.signed_out(Some(reason)),
        }
    }
}

/// `Online`, `Connecting…`: for the sidebar.
pub(crate) fn connection_label(connection: ConnectionState) -> &'static str {
    match connection {
        ConnectionState::Offline => "Offline",
        ConnectionState::Connecting => "Connecting…",
        ConnectionState::Online => "Online",
        ConnectionState::Reconnecting { .. } => "Reconnecting…",
    }
}

/// The `data-state` of the connection indicator.
pub(crate) fn connection_tag(connection: ConnectionState) -> &'static str {
    match connection {
        ConnectionState::Offline => "offline",
        ConnectionState::Connecting => "connecting",
        ConnectionState::Online => "online",
        ConnectionState::Reconnecting { .. } => "reconnecting",
    }
}
