//! The rooms browser: every room, which ones are followed, and a form for a new one.

use iotchat_protocol::chat::RoomSummary;
use iotchat_protocol::{RoomName, RoomSlug};
use leptos::ev::SubmitEvent;
use leptos::prelude::*;
use leptos::task::spawn_local;

use crate::icons::{Icon, Svg};
use crate::ipc;
use crate::state::{AppState, use_state};

/// Joins `room` and opens it; a failure is shown on the room's row.
fn join(state: AppState, room: RoomName, busy: RwSignal<Option<RoomName>>, error: RowError) {
    if busy.get_untracked().is_some() {
        return;
    }
    busy.set(Some(room.clone()));
    error.set(None);
    spawn_local(async move {
        match ipc::room_join(&room).await {
            Ok(()) => {
                // The room view then opens as a followed room, with its name.
                state.reload_followed().await;
                state.rooms_epoch.update(|n| *n += 1);
                state.open_room(room);
            }
            Err(e) => error.set(Some((room, e.message))),
        }
        busy.set(None);
    });
}

type RowError = RwSignal<Option<(RoomName, String)>>;

#[allow(unreachable_pub)] // see lib.rs
#[component]
pub(crate) fn RoomsBrowser() -> impl IntoView {
    let state = use_state();
    let rooms = RwSignal::new(None::<Vec<RoomSummary>>);
    let load_error = RwSignal::new(None::<String>);
    let filter = RwSignal::new(String::new());
    let joining = RwSignal::new(None::<RoomName>);
    let row_error: RowError = RwSignal::new(None);

    // Again whenever something says the list changed (a followed event, a join, a new room).
    Effect::new(move |_| {
        state.rooms_epoch.track();
        spawn_local(async move {
            match ipc::rooms_list().await {
                Ok(mut list) => {
                    list.sort_by_cached_key(|r| {
                        (r.room.display_name.to_lowercase(), r.room.name.clone())
                    });
                    load_error.set(None);
                    rooms.set(Some(list));
                }
                Err(e) => load_error.set(Some(e.message)),
            }
        });
    });

    let shown = Memo::new(move |_| {
        let needle = filter.get().trim().to_lowercase();
        rooms.with(|rooms| {
            rooms.as_ref().map(|rooms| {
                rooms
                    .iter()
                    .filter(|r| {
                        needle.is_empty()
                            || r.room.display_name.to_lowercase().contains(&needle)
                            || r.room.name.slug().as_str().contains(&needle)
                    })
                    .map(|r| (r.room.name.clone(), r.room.display_name.clone()))
                    .collect::<Vec<_>>()
            })
        })
    });

    view! {
        <section class="page" data-testid="rooms-browser" aria-labelledby="browser-title">
            <header class="page-head">
                <h1 id="browser-title">"Browse rooms"</h1>
                <p class="muted">"Join a room to follow it: it appears on the left with its unread count."</p>
            </header>
            <div class="page-body">
                <NewRoomForm />
                <div class="list-head">
                    <h2 class="section-title">
                        {move || match rooms.with(|r| r.as_ref().map(Vec::len)) {
                            Some(1) => "1 room".to_owned(),
                            Some(n) => format!("{n} rooms"),
                            None => "All rooms".to_owned(),
                        }}
                    </h2>
                    <div class="search">
                        <Svg icon=Icon::Search />
                        <input
                            type="search"
                            aria-label="Filter rooms"
                            placeholder="Filter rooms"
                            data-testid="rooms-filter"
                            prop:value=filter
                            on:input=move |ev| filter.set(event_target_value(&ev))
                        />
                    </div>
                </div>
                {move || {
                    load_error
                        .get()
                        .map(|e| {
                            view! {
                                <div class="inline-error" role="alert">
                                    <span data-testid="rooms-error">{format!("Could not load the rooms: {e}")}</span>
                                    <button
                                        class="button"
                                        type="button"
                                        on:click=move |_| state.rooms_epoch.update(|n| *n += 1)
                                    >
                                        "Try again"
                                    </button>
                                </div>
                            }
                        })
                }}
                {move || {
                    // What to say instead of the list, when there is no list to show.
                    let filtering = !filter.with(|f| f.trim().is_empty());
                    match shown.with(|s| s.as_ref().map(Vec::is_empty)) {
                        None if load_error.with(Option::is_none) => Some(
                            view! { <p class="muted loading" role="status">"Loading rooms…"</p> }
                                .into_any(),
                        ),
                        Some(true) => Some(
                            view! {
                                <div class="empty-inline" data-testid="rooms-empty">
                                    {if filtering {
                                        "No room matches that filter."
                                    } else {
                                        "There are no rooms yet. Create the first one above."
                                    }}
                                </div>
                            }
                            .into_any(),
                        ),
                        _ => None,
                    }
                }}
                // Rows are keyed, so a refreshed list or a filter keeps the rows that stay.
                <Show when=move || shown.with(|s| s.as_ref().is_some_and(|l| !l.is_empty()))>
                    <ul class="room-rows">
                        <For
                            each=move || shown.get().unwrap_or_default()
                            key=|(name, display)| (name.clone(), display.clone())
                            children=move |(name, display)| {
                                view! { <RoomRow name display joining row_error /> }
                            }
                        />
                    </ul>
                </Show>
            </div>
        </section>
    }
}

#[component]
fn RoomRow(
    name: RoomName,
    display: String,
    joining: RwSignal<Option<RoomName>>,
    row_error: RowError,
) -> impl IntoView {
    let state = use_state();
    let slug = name.slug().to_string();
    let followed = {
        let name = name.clone();
        Memo::new(move |_| state.followed_room(&name))
    };
    let is_followed = move || followed.with(Option::is_some);
    let unread = move || followed.with(|f| f.as_ref().map_or(0, |f| f.unread));
    let busy = {
        let name = name.clone();
        move || joining.with(|j| j.as_ref() == Some(&name))
    };
    let error = {
        let name = name.clone();
        move || row_error.with(|e| e.as_ref().filter(|(n, _)| *n == name).map(|(_, m)| m.clone()))
    };
    let title_id = format!("room-row-title-{slug}");
    let row_testid = format!("room-row-{slug}");
    let labelled_by = title_id.clone();
    let followed_testid = format!("followed-{slug}");

    view! {
        <li class="room-row" data-testid=row_testid aria-labelledby=labelled_by>
            <span class="room-row-icon" aria-hidden="true">
                <Svg icon=Icon::Hash />
            </span>
            <div class="room-row-main">
                <div class="room-row-title">
                    <span class="room-row-name" id=title_id>{display.clone()}</span>
                    {move || {
                        is_followed()
                            .then(|| {
                                view! {
                                    <span class="tag" data-testid=followed_testid.clone()>"Joined"</span>
                                }
                            })
                    }}
                    {move || {
                        let n = unread();
                        (n > 0)
                            .then(|| {
                                view! {
                                    <span class="badge" aria-label=format!("{n} unread")>{n}</span>
                                }
                            })
                    }}
                </div>
                <code class="room-address">{name.to_string()}</code>
                {move || error().map(|e| view! { <p class="field-error" role="alert">{e}</p> })}
            </div>
            {move || {
                let name = name.clone();
                let slug = slug.clone();
                let display = display.clone();
                if is_followed() {
                    view! {
                        <button
                            class="button"
                            type="button"
                            data-testid=format!("open-{slug}")
                            aria-label=format!("Open {display}")
                            on:click=move |_| state.open_room(name.clone())
                        >
                            "Open"
                        </button>
                    }
                    .into_any()
                } else {
                    view! {
                        <button
                            class="button primary"
                            type="button"
                            data-testid=format!("join-{slug}")
                            aria-label=format!("Join {display}")
                            disabled=busy.clone()
                            on:click=move |_| join(state, name.clone(), joining, row_error)
                        >
                            {
                                let busy = busy.clone();
                                move || if busy() { "Joining…" } else { "Join" }
                            }
                        </button>
                    }
                    .into_any()
                }
            }}
        </li>
    }
}

/// A display name, the room address it will get (live, as typed), and the server's verdict.
#[component]
fn NewRoomForm() -> impl IntoView {
    let state = use_state();
    let name = RwSignal::new(String::new());
    let server_error = RwSignal::new(None::<String>);
    let busy = RwSignal::new(false);
    let input = NodeRef::<leptos::html::Input>::new();

    let preview = Memo::new(move |_| {
        name.with(|name| {
            if name.trim().is_empty() {
                None
            } else {
                Some(
                    RoomSlug::from_display_name(name).map(RoomName::new).map_err(|e| e.to_string()),
                )
            }
        })
    });

    let submit = move |ev: SubmitEvent| {
        ev.prevent_default();
        if busy.get_untracked() {
            return;
        }
        let display = name.get_untracked().trim().to_owned();
        if let Err(e) = RoomSlug::from_display_name(&display) {
            // The live preview already says why, except for an empty name.
            if preview.with_untracked(Option::is_none) {
                server_error.set(Some(e.to_string()));
            }
            if let Some(input) = input.get_untracked() {
                let _ = input.focus();
            }
            return;
        }
        server_error.set(None);
        busy.set(true);
        spawn_local(async move {
            match ipc::room_create(&display).await {
                Ok(room) => {
                    name.set(String::new());
                    state.reload_followed().await;
                    state.rooms_epoch.update(|n| *n += 1);
                    state.open_room(room.name);
                }
                Err(e) => server_error.set(Some(e.message)),
            }
            busy.set(false);
        });
    };

    view! {
        <form class="new-room" novalidate on:submit=submit aria-labelledby="new-room-title">
            <h2 id="new-room-title" class="section-title">"New room"</h2>
            <label for="new-room-name" class="sr-only">"Room name"</label>
            <div class="inline-field">
                <input
                    id="new-room-name"
                    data-testid="new-room-name"
                    type="text"
                    autocomplete="off"
                    spellcheck="false"
                    placeholder="Room name, like Über Café 2020"
                    node_ref=input
                    prop:value=name
                    on:input=move |ev| {
                        name.set(event_target_value(&ev));
                        server_error.set(None);
                    }
                    aria-invalid=move || {
                        (server_error.with(Option::is_some)
                            || preview.with(|p| matches!(p, Some(Err(_)))))
                            .then_some("true")
                    }
                    aria-describedby="new-room-preview new-room-error"
                />
                <button
                    class="button primary"
                    type="submit"
                    data-testid="new-room-submit"
                    disabled=move || busy.get()
                >
                    <Svg icon=Icon::Plus />
                    {move || if busy.get() { "Creating…" } else { "Create room" }}
                </button>
            </div>
            <p class="hint" id="new-room-preview" aria-live="polite">
                {move || match preview.get() {
                    None => view! {
                        <span data-testid="slug-hint">
                            "The name becomes the room's address, made of letters, digits and dashes."
                        </span>
                    }
                    .into_any(),
                    Some(Ok(room)) => view! {
                        <span data-testid="slug-preview">
                            "will be created as "
                            <code data-testid="slug-preview-room">{room.to_string()}</code>
                        </span>
                    }
                    .into_any(),
                    Some(Err(error)) => view! {
                        <span class="error" data-testid="slug-error">{error}</span>
                    }
                    .into_any(),
                }}
            </p>
            <div id="new-room-error">
                {move || {
                    server_error
                        .get()
                        .map(|e| view! { <p class="field-error" role="alert" data-testid="new-room-error">{e}</p> })
                }}
            </div>
        </form>
    }
}
