//! One room: its header (name, mute, leave), the timeline, and the composer.

use iotchat_protocol::RoomName;
use iotchat_protocol::chat::ConnectionState;
use leptos::ev::KeyboardEvent;
use leptos::prelude::*;
use leptos::task::spawn_local;

use crate::history::Timeline;
use crate::icons::{Icon, Svg};
use crate::ipc;
use crate::state::{AppState, View, use_state};
use crate::timeline::{TimelineView, add_own, load_first_page};

/// Lines the composer grows to before it scrolls.
const COMPOSER_MAX_ROWS: usize = 8;

#[allow(unreachable_pub)] // see lib.rs
#[component]
pub(crate) fn RoomView(room: RoomName) -> impl IntoView {
    let state = use_state();
    // Read before the shell hears the room is open and resets the count.
    let unread_at_open = state
        .followed
        .with_untracked(|rooms| rooms.iter().find(|r| r.name == room).map_or(0, |r| r.unread));
    state.timeline.set(Some(Timeline::new(room.clone())));
    spawn_local(load_first_page(state, room.clone()));
    {
        let room = room.clone();
        // Only this room's timeline: the next room's view may already have replaced it.
        on_cleanup(move || {
            state.timeline.maybe_update(|t| {
                let ours = t.as_ref().is_some_and(|t| t.room == room);
                if ours {
                    *t = None;
                }
                ours
            });
        });
    }

    let followed = {
        let room = room.clone();
        Memo::new(move |_| state.followed_room(&room))
    };
    // A room opened from a notification may not be followed; its name comes from the list.
    let listed_name = RwSignal::new(None::<String>);
    if followed.with_untracked(Option::is_none) {
        let room = room.clone();
        spawn_local(async move {
            match ipc::rooms_list().await {
                Ok(list) => listed_name.set(
                    list.into_iter().find(|r| r.room.name == room).map(|r| r.room.display_name),
                ),
                Err(e) => state.report("Could not look up the room", &e),
            }
        });
    }
    let display = {
        let slug = room.slug().to_string();
        Memo::new(move |_| {
            followed
                .with(|f| f.as_ref().map(|f| f.display_name.clone()))
                .or_else(|| listed_name.get())
                .unwrap_or_else(|| slug.clone())
        })
    };
    let to_bottom = RwSignal::new(0_u64);

    view! {
        <section class="room" data-testid="room-view" aria-labelledby="room-title">
            <header class="room-head">
                <div class="room-head-text">
                    <h1 id="room-title" data-testid="room-title">{move || display.get()}</h1>
                    <code class="room-address" data-testid="room-name">{room.to_string()}</code>
                </div>
                <RoomActions room=room.clone() followed />
            </header>
            <TimelineView room=room.clone() display unread_at_open to_bottom />
            <Composer room display to_bottom />
        </section>
    }
}

/// Mute and leave for a followed room; join for one that is not.
#[component]
fn RoomActions(
    room: RoomName,
    followed: Memo<Option<iotchat_protocol::chat::FollowedRoom>>,
) -> impl IntoView {
    let state = use_state();
    let busy = RwSignal::new(false);
    let muted = move || followed.with(|f| f.as_ref().is_some_and(|f| f.muted));

    let toggle_mute = {
        let room = room.clone();
        move |_| {
            if busy.get_untracked() {
                return;
            }
            let room = room.clone();
            let muted = !muted();
            busy.set(true);
            set_muted(state, &room, muted);
            spawn_local(async move {
                let result = ipc::room_mute(&room, muted).await;
                busy.set(false);
                if let Err(e) = result {
                    set_muted(state, &room, !muted);
                    state.report(
                        if muted { "Could not mute the room" } else { "Could not unmute the room" },
                        &e,
                    );
                }
            });
        }
    };
    let leave = {
        let room = room.clone();
        move |_| {
            if busy.get_untracked() {
                return;
            }
            let room = room.clone();
            busy.set(true);
            spawn_local(async move {
                let result = ipc::room_leave(&room).await;
                busy.set(false);
                match result {
                    Ok(()) => {
                        state.refresh_followed();
                        state.rooms_epoch.update(|n| *n += 1);
                        state.view.set(View::Browser);
                    }
                    Err(e) => state.report("Could not leave the room", &e),
                }
            });
        }
    };
    let join = move |_| {
        if busy.get_untracked() {
            return;
        }
        let room = room.clone();
        busy.set(true);
        spawn_local(async move {
            let result = ipc::room_join(&room).await;
            busy.set(false);
            match result {
                Ok(()) => {
                    state.refresh_followed();
                    state.rooms_epoch.update(|n| *n += 1);
                }
                Err(e) => state.report("Could not join the room", &e),
            }
        });
    };

    move || {
        if followed.with(Option::is_some) {
            view! {
                <div class="room-actions">
                    <button
                        class="icon-button"
                        class:active=muted
                        type="button"
                        data-testid="room-mute"
                        aria-label="Mute notifications"
                        aria-pressed=move || muted().to_string()
                        title=move || {
                            if muted() {
                                "Muted: no notifications from this room. Click to unmute."
                            } else {
                                "Mute notifications from this room"
                            }
                        }
                        disabled=move || busy.get()
                        on:click=toggle_mute.clone()
                    >
                        {move || {
                            if muted() {
                                view! { <Svg icon=Icon::BellOff /> }
                            } else {
                                view! { <Svg icon=Icon::Bell /> }
                            }
                        }}
                    </button>
                    <button
                        class="button"
                        type="button"
                        data-testid="room-leave"
                        disabled=move || busy.get()
                        on:click=leave.clone()
                    >
                        "Leave"
                    </button>
                </div>
            }
            .into_any()
        } else {
            view! {
                <div class="room-actions">
                    <span class="muted small">"You are not in this room"</span>
                    <button
                        class="button primary"
                        type="button"
                        data-testid="room-join"
                        disabled=move || busy.get()
                        on:click=join.clone()
                    >
                        "Join"
                    </button>
                </div>
            }
            .into_any()
        }
    }
}

/// Shows the new mute state at once; the shell's `followed` event confirms it.
fn set_muted(state: AppState, room: &RoomName, muted: bool) {
    state.followed.maybe_update(|rooms| match rooms.iter_mut().find(|r| &r.name == room) {
        Some(r) if r.muted != muted => {
            r.muted = muted;
            true
        }
        _ => false,
    });
}

/// The message box, pinned under the timeline. Enter sends, Shift+Enter starts a new line.
/// Offline, it still sends: the outbox delivers when the connection returns.
#[component]
fn Composer(room: RoomName, display: Memo<String>, to_bottom: RwSignal<u64>) -> impl IntoView {
    let state = use_state();
    let text = RwSignal::new(String::new());
    let error = RwSignal::new(None::<String>);
    let input = NodeRef::<leptos::html::Textarea>::new();
    let offline = move || state.connection.get() != ConnectionState::Online;

    // Typing can start as soon as the room is open.
    request_animation_frame(move || {
        if let Some(input) = input.try_get_untracked().flatten() {
            let _ = input.focus();
        }
    });

    let send = move || {
        let typed = text.get_untracked();
        let body = typed.trim_start_matches(['\n', '\r']).trim_end().to_owned();
        if body.trim().is_empty() {
            return;
        }
        text.set(String::new());
        error.set(None);
        let room = room.clone();
        spawn_local(async move {
            match ipc::message_send(&room, &body).await {
                Ok(message) => {
                    add_own(state, message);
                    to_bottom.update(|n| *n += 1);
                }
                Err(e) => {
                    error.set(Some(e.message));
                    // Give the text back unless something new was typed meanwhile.
                    if text.try_with_untracked(String::is_empty).unwrap_or(false) {
                        text.set(typed);
                    }
                }
            }
        });
    };
    let on_keydown = {
        let send = send.clone();
        move |ev: KeyboardEvent| {
            if ev.key() == "Enter" && !ev.shift_key() && !ev.is_composing() {
                ev.prevent_default();
                send();
            }
        }
    };
    let rows = move || text.with(|t| t.split('\n').count().clamp(1, COMPOSER_MAX_ROWS)).to_string();
    let placeholder = move || {
        if offline() {
            "Offline — your message will be sent when the connection returns".to_owned()
        } else {
            format!("Message {}", display.get())
        }
    };

    view! {
        <form
            class="composer"
            class:offline=offline
            on:submit=move |ev| {
                ev.prevent_default();
                send();
            }
        >
            <div class="composer-box">
                <textarea
                    data-testid="composer-input"
                    node_ref=input
                    rows=rows
                    aria-label=move || format!("Message {}", display.get())
                    aria-describedby="composer-error"
                    placeholder=placeholder
                    prop:value=text
                    on:input=move |ev| {
                        text.set(event_target_value(&ev));
                        error.set(None);
                    }
                    on:keydown=on_keydown
                ></textarea>
                <button
                    class="send"
                    type="submit"
                    data-testid="composer-send"
                    aria-label="Send message"
                    title="Send (Enter)"
                    disabled=move || text.with(|t| t.trim().is_empty())
                >
                    <Svg icon=Icon::Send />
                </button>
            </div>
            <div id="composer-error" class="composer-foot">
                {move || {
                    error
                        .get()
                        .map(|e| {
                            view! {
                                <p class="field-error" role="alert" data-testid="composer-error">
                                    {format!("Not sent: {e}")}
                                </p>
                            }
                        })
                }}
                {move || {
                    error.with(Option::is_none).then(|| view! {
                        <p class="hint">
                            <kbd>"Enter"</kbd> " to send · " <kbd>"Shift"</kbd> "+" <kbd>"Enter"</kbd> " for a new line"
                        </p>
                    })
                }}
            </div>
        </form>
    }
}
