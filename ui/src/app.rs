//! The root: start-up, the shell's events, the theme, and the choice between the auth screens
//! and the main layout.

use iotchat_protocol::chat::{ConnectionState, Event};
use iotchat_protocol::desktop::{
    EVENT_CLIENT, EVENT_OPEN_ROOM, EVENT_RESYNC, EVENT_SETTINGS, EVENT_SIGN_IN_URL, EVENT_UPDATE,
    Settings, Theme, UpdateStatus,
};
use iotchat_protocol::{ErrorBody, RoomName};
use leptos::prelude::*;
use leptos::task::spawn_local;
use std::time::Duration;

use crate::auth::AuthScreen;
use crate::icons::{Icon, Svg};
use crate::ipc;
use crate::room::RoomView;
use crate::rooms::RoomsBrowser;
use crate::settings::SettingsScreen;
use crate::sidebar::Sidebar;
use crate::state::{AppState, Phase, View, use_state};
use crate::time;
use crate::update::UpdateBanner;

/// The root component.
#[allow(unreachable_pub)] // see lib.rs
#[component]
pub fn App() -> impl IntoView {
    let state = AppState::new();
    provide_context(state);
    apply_theme(state);
    tell_shell_which_room_is_open(state);
    spawn_local(start(state));

    let phase = Memo::new(move |_| state.phase.get());
    move || match phase.get() {
        Phase::Starting => view! {
            <main class="centered" data-testid="starting-screen">
                <p class="muted" role="status">"Starting IoT Chat…"</p>
            </main>
        }
        .into_any(),
        Phase::Failed(message) => view! {
            <main class="centered" data-testid="start-failed">
                <section class="card" aria-labelledby="start-failed-title">
                    <h1 id="start-failed-title">"IoT Chat could not start"</h1>
                    <p class="error" role="alert">{message}</p>
                    <button
                        class="button primary"
                        type="button"
                        on:click=move |_| {
                            state.phase.set(Phase::Starting);
                            spawn_local(start(state));
                        }
                    >
                        "Try again"
                    </button>
                </section>
            </main>
        }
        .into_any(),
        Phase::SignedOut => view! { <AuthScreen /> }.into_any(),
        Phase::SignedIn => view! { <MainScreen /> }.into_any(),
    }
}

/// Listens first (so nothing is missed), then asks who is signed in.
async fn start(state: AppState) {
    static LISTENING: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
    let mut problems: Vec<ErrorBody> = Vec::new();
    // A retry after a failed start must not register the listeners twice (a listener that
    // could not be registered is reported below; registering it again would not help).
    if !LISTENING.swap(true, std::sync::atomic::Ordering::Relaxed) {
        let results =
            [
                ipc::listen(EVENT_CLIENT, move |event: Result<Event, ErrorBody>| match event {
                    Ok(event) => state.handle_event(event),
                    Err(e) => state.report("An update from the app was lost", &e),
                })
                .await,
                ipc::listen(EVENT_RESYNC, move |_: Result<(), ErrorBody>| state.resync()).await,
                ipc::listen(EVENT_OPEN_ROOM, move |room: Result<String, ErrorBody>| {
                    open_room_from_shell(state, room)
                })
                .await,
                ipc::listen(EVENT_SETTINGS, move |settings: Result<Settings, ErrorBody>| {
                    match settings {
                        Ok(settings) => state.settings.set(settings),
                        Err(e) => state.report("Changed settings could not be read", &e),
                    }
                })
                .await,
                ipc::listen(EVENT_SIGN_IN_URL, move |url: Result<String, ErrorBody>| {
                    state.sign_in_url.set(url.ok());
                })
                .await,
                ipc::listen(EVENT_UPDATE, move |status: Result<UpdateStatus, ErrorBody>| {
                    match status {
                        Ok(status) => state.update.set(Some(status)),
                        Err(e) => state.report("The updater's news could not be read", &e),
                    }
                })
                .await,
            ];
        problems.extend(results.into_iter().filter_map(Result::err));
    }
    let mark = state.connection_mark();
    match ipc::session_state().await {
        Ok(session) => state.apply_session(session, mark),
        Err(e) => {
            state.phase.set(Phase::Failed(e.message));
            return;
        }
    }
    state.load_settings();
    match ipc::update_status().await {
        // An event may have come first; it is as new or newer.
        Ok(status) => {
            if state.update.get_untracked().is_none() {
                state.update.set(Some(status));
            }
        }
        Err(e) => problems.push(e),
    }
    if let Some(problem) = problems.first() {
        state.report("Live updates are not working", problem);
    }
}

fn open_room_from_shell(state: AppState, room: Result<String, ErrorBody>) {
    let room = room.and_then(|raw| {
        RoomName::parse(&raw)
            .map_err(|e| ErrorBody::new(iotchat_protocol::Code::InvalidInput, e.to_string()))
    });
    match room {
        Ok(room) if state.phase.get_untracked() == Phase::SignedIn => state.open_room(room),
        Ok(_) => {} // signed out: the login screen stays; the room is there after logging in
        Err(e) => state.report("Could not open the room from the notification", &e),
    }
}

/// `data-theme` on `<html>` picks the palette; without it the CSS follows the system.
fn apply_theme(state: AppState) {
    Effect::new(move |_| {
        let theme = state.settings.with(|s| s.theme);
        let Some(root) = document().document_element() else { return };
        let result = match theme {
            Theme::System => root.remove_attribute("data-theme"),
            Theme::Light => root.set_attribute("data-theme", "light"),
            Theme::Dark => root.set_attribute("data-theme", "dark"),
        };
        if result.is_err() {
            state.error.set(Some("The colour theme could not be applied.".to_owned()));
        }
    });
}

/// The shell counts unread messages and decides on notifications, so it must know which room
/// is on screen.
fn tell_shell_which_room_is_open(state: AppState) {
    let open = Memo::new(move |_| match state.view.get() {
        View::Room(room) => Some(room),
        _ => None,
    });
    Effect::new(move |previous: Option<Option<RoomName>>| {
        let room = open.get();
        let first_run = previous.is_none();
        if !first_run && state.phase.get_untracked() == Phase::SignedIn {
            let room = room.clone();
            spawn_local(async move {
                if let Err(e) = ipc::room_open(room.as_ref()).await {
                    state.report("Could not mark the room as read", &e);
                }
            });
        }
        room
    });
}

/// Sidebar on the left, the chosen view on the right.
#[component]
fn MainScreen() -> impl IntoView {
    let state = use_state();
    let view = Memo::new(move |_| state.view.get());
    view! {
        <div class="app" data-testid="main-screen">
            <Sidebar />
            <main class="main">
                <ConnectionBanner />
                <UpdateBanner />
                <Notice />
                <ErrorBar />
                <div class="view">
                    {move || match view.get() {
                        View::Home => view! { <Home /> }.into_any(),
                        View::Browser => view! { <RoomsBrowser /> }.into_any(),
                        View::Room(room) => view! { <RoomView room=room /> }.into_any(),
                        View::Settings => view! { <SettingsScreen /> }.into_any(),
                    }}
                </div>
            </main>
        </div>
    }
}

/// Nothing open yet: say what to do next.
#[component]
fn Home() -> impl IntoView {
    let state = use_state();
    let has_rooms = move || state.followed.with(|r| !r.is_empty());
    let name = move || state.account.with(|a| a.as_ref().map(|a| a.username.clone()));
    view! {
        <section class="empty-state" data-testid="home">
            <div class="empty-icon" aria-hidden="true">
                <Svg icon=Icon::Hash />
            </div>
            <h1>
                {move || match name() {
                    Some(name) => format!("Welcome, {name}"),
                    None => "Welcome".to_owned(),
                }}
            </h1>
            <p class="muted">
                {move || {
                    if has_rooms() {
                        "Pick a room on the left, or browse rooms to find more."
                    } else {
                        "Browse rooms or create one to start chatting."
                    }
                }}
            </p>
            <button
                class="button primary"
                type="button"
                data-testid="home-browse"
                on:click=move |_| state.view.set(View::Browser)
            >
                "Browse rooms"
            </button>
        </section>
    }
}

/// Shown above every view while the connection is not up: sending still works (it queues).
#[component]
fn ConnectionBanner() -> impl IntoView {
    let state = use_state();
    let now = RwSignal::new(time::now_ms());
    // The countdown only needs whole seconds.
    if let Ok(handle) =
        set_interval_with_handle(move || now.set(time::now_ms()), Duration::from_millis(500))
    {
        on_cleanup(move || handle.clear());
    }
    let text = move || match state.connection.get() {
        ConnectionState::Online => None,
        ConnectionState::Connecting => Some("Connecting…".to_owned()),
        ConnectionState::Reconnecting { .. } => {
            let left = ((state.reconnect_due_ms.get() - now.get()) / 1000.0).ceil().max(0.0);
            Some(if left >= 1.0 {
                format!("Reconnecting in {left} s")
            } else {
                "Reconnecting…".to_owned()
            })
        }
        ConnectionState::Offline => {
            Some("Offline — messages will be sent when the connection returns".to_owned())
        }
    };
    move || {
        text().map(|text| {
            let tag = crate::state::connection_tag(state.connection.get());
            view! {
                <div class="banner" data-testid="connection-banner" data-state=tag role="status">
                    <span class="dot" aria-hidden="true"></span>
                    {text}
                </div>
            }
        })
    }
}

/// The session notice (for instance: it will not survive a reboot), until dismissed.
#[component]
fn Notice() -> impl IntoView {
    let state = use_state();
    move || {
        state.notice.get().map(|notice| {
            view! {
                <div class="notice" role="status">
                    <span data-testid="session-notice">{notice}</span>
                    <button
                        class="icon-button"
                        type="button"
                        aria-label="Dismiss"
                        on:click=move |_| state.notice.set(None)
                    >
                        <Svg icon=Icon::Close />
                    </button>
                </div>
            }
        })
    }
}

/// A failure with no better place, until dismissed.
#[component]
fn ErrorBar() -> impl IntoView {
    let state = use_state();
    move || {
        state.error.get().map(|error| {
            view! {
                <div class="error-bar" role="alert">
                    <Svg icon=Icon::Alert />
                    <span data-testid="app-error">{error}</span>
                    <button
                        class="icon-button"
                        type="button"
                        aria-label="Dismiss"
                        data-testid="app-error-dismiss"
                        on:click=move |_| state.error.set(None)
                    >
                        <Svg icon=Icon::Close />
                    </button>
                </div>
            }
        })
    }
}
