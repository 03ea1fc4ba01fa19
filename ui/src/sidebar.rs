//! The left column: who and how connected, the way to other rooms, and the followed rooms.

use iotchat_protocol::RoomName;
use leptos::prelude::*;
use leptos::task::spawn_local;

use crate::icons::{Icon, Svg};
use crate::ipc;
use crate::people::Avatar;
use crate::state::{AppState, View, connection_label, connection_tag, use_state};

/// Logs out, then shows the login screen; a failure is shown and nothing changes.
pub(crate) fn log_out(state: AppState, busy: RwSignal<bool>) {
    if busy.get_untracked() {
        return;
    }
    busy.set(true);
    spawn_local(async move {
        let result = ipc::session_logout().await;
        busy.set(false);
        let Err(e) = result else {
            state.signed_out(None);
            return;
        };
        // A logout can fail half-way (the server unreachable) yet end the local session: ask.
        match ipc::session_state().await {
            Ok(session) if session.account.is_none() => {
                state.signed_out(Some(format!(
                    "You are logged out on this computer, but: {}",
                    e.message
                )));
            }
            _ => state.report("Could not log out", &e),
        }
    });
}

#[allow(unreachable_pub)] // see lib.rs
#[component]
pub(crate) fn Sidebar() -> impl IntoView {
    let state = use_state();
    let logging_out = RwSignal::new(false);
    let connection = move || state.connection.get();
    let names = Memo::new(move |_| {
        state.followed.with(|rooms| rooms.iter().map(|r| r.name.clone()).collect::<Vec<_>>())
    });
    let total = move || state.total_unread.get();

    view! {
        <nav class="sidebar" data-testid="sidebar" aria-label="Rooms and account">
            <div class="brand">
                <img src="/128x128@2x.png" alt="" width="24" height="24" />
                <span>"IoT Chat"</span>
            </div>
            <div class="me">
                {move || {
                    state
                        .account
                        .get()
                        .map(|a| view! { <Avatar name=a.username.clone() identity=a.identity_id small=true /> })
                }}
                <div class="me-text">
                    <span class="me-name" data-testid="current-user">
                        {move || state.account.with(|a| a.as_ref().map(|a| a.username.clone()))}
                    </span>
                    <span
                        class="connection"
                        data-testid="connection-status"
                        data-state=move || connection_tag(connection())
                        role="status"
                    >
                        <span class="dot" aria-hidden="true"></span>
                        {move || connection_label(connection())}
                    </span>
                </div>
                <button
                    class="icon-button"
                    type="button"
                    data-testid="open-settings"
                    aria-label="Settings"
                    title="Settings"
                    aria-current=move || (state.view.get() == View::Settings).then_some("page")
                    on:click=move |_| state.view.set(View::Settings)
                >
                    <Svg icon=Icon::Settings />
                </button>
                <button
                    class="icon-button"
                    type="button"
                    data-testid="logout"
                    aria-label="Log out"
                    title="Log out"
                    disabled=move || logging_out.get()
                    on:click=move |_| log_out(state, logging_out)
                >
                    <Svg icon=Icon::LogOut />
                </button>
            </div>
            <button
                class="nav-item"
                type="button"
                data-testid="browse-rooms"
                aria-current=move || (state.view.get() == View::Browser).then_some("page")
                on:click=move |_| state.view.set(View::Browser)
            >
                <Svg icon=Icon::Search />
                <span>"Browse rooms"</span>
            </button>
            <div class="rooms-head">
                <h2 id="rooms-heading">"Rooms"</h2>
                <span
                    class="total-unread"
                    class:zero=move || total() == 0
                    data-testid="total-unread"
                    aria-label=move || format!("{} unread in all rooms", total())
                >
                    {move || badge(total())}
                </span>
            </div>
            <ul class="room-list" aria-labelledby="rooms-heading">
                <For each=move || names.get() key=|name| name.clone() let:name>
                    <RoomItem name />
                </For>
            </ul>
            {move || {
                (state.followed_loaded.get() && names.with(Vec::is_empty))
                    .then(|| {
                        view! {
                            <p class="sidebar-empty">
                                "You are not in any room yet. "
                                <button
                                    class="link"
                                    type="button"
                                    on:click=move |_| state.view.set(View::Browser)
                                >
                                    "Browse rooms"
                                </button>
                                " to join one, or create your own."
                            </p>
                        }
                    })
            }}
        </nav>
    }
}

/// One followed room; reads its own entry so a new unread count does not rebuild the list.
#[component]
fn RoomItem(name: RoomName) -> impl IntoView {
    let state = use_state();
    let slug = name.slug().to_string();
    let room = {
        let name = name.clone();
        Memo::new(move |_| state.followed_room(&name))
    };
    let unread = move || room.with(|r| r.as_ref().map_or(0, |r| r.unread));
    let muted = move || room.with(|r| r.as_ref().is_some_and(|r| r.muted));
    let display = {
        let slug = slug.clone();
        move || room.with(|r| r.as_ref().map_or_else(|| slug.clone(), |r| r.display_name.clone()))
    };
    let current = {
        let name = name.clone();
        move || matches!(state.view.get(), View::Room(ref open) if *open == name)
    };
    let label = {
        let display = display.clone();
        move || {
            let mut label = display();
            if muted() {
                label.push_str(", muted");
            }
            match unread() {
                0 => {}
                1 => label.push_str(", 1 unread message"),
                n => label.push_str(&format!(", {n} unread messages")),
            }
            label
        }
    };
    let badge_id = format!("unread-{slug}");
    let is_current = current.clone();
    let has_unread = move || unread() > 0;
    let open = {
        let name = name.clone();
        move |_| state.open_room(name.clone())
    };
    let testid = format!("sidebar-room-{slug}");
    let address = name.to_string();

    view! {
        <li>
            <button
                class="room-item"
                class:unread=has_unread
                class:current=is_current
                type="button"
                data-testid=testid
                data-unread=move || unread().to_string()
                aria-current=move || current().then_some("page")
                aria-label=label
                title=address
                on:click=open
            >
                <Svg icon=Icon::Hash />
                <span class="room-item-name">{display}</span>
                {move || muted().then(|| view! { <span class="muted-mark"><Svg icon=Icon::BellOff /></span> })}
                {move || {
                    let n = unread();
                    (n > 0).then(|| view! { <span class="badge" data-testid=badge_id.clone()>{badge(n)}</span> })
                }}
            </button>
        </li>
    }
}

/// A badge stays narrow: past 999 it says "999+" (the exact count is in the label). Counts
/// after a long absence are lower bounds anyway: catch-up reads a bounded part of history.
pub(crate) fn badge(n: u32) -> String {
    if n > 999 { "999+".to_owned() } else { n.to_string() }
}
