//! The IoT Chat user interface. Screens only: every action goes through a Tauri command of the
//! desktop shell, and every rule comes from the protocol crate (compiled to wasm here too).

mod ipc;

use iotchat_protocol::desktop::AppInfo;
use iotchat_protocol::{ErrorBody, RoomName, RoomSlug};
use leptos::prelude::*;
use leptos::task::spawn_local;

/// The root component.
#[component]
pub fn App() -> impl IntoView {
    view! { <Welcome /> }
}

/// The first screen: what is running, and a taste of room naming.
#[component]
fn Welcome() -> impl IntoView {
    let info = RwSignal::new(None::<Result<AppInfo, ErrorBody>>);
    spawn_local(async move {
        info.set(Some(ipc::invoke::<AppInfo>("app_info", &ipc::NoArgs {}).await));
    });

    view! {
        <main class="centered" data-testid="welcome-screen">
            <section class="card" aria-labelledby="welcome-title">
                <img class="logo" src="/128x128@2x.png" alt="" width="64" height="64" />
                <h1 id="welcome-title">"IoT Chat"</h1>
                <p class="muted">"Chat over MQTT — on this computer, on your own server, or on AWS."</p>
                {move || match info.get() {
                    None => view! { <p class="muted" data-testid="app-info-loading">"Starting…"</p> }.into_any(),
                    Some(Ok(info)) => view! {
                        <p class="about" data-testid="app-info">
                            {format!("{} {} · Tauri {} · {}", info.product_name, info.version, info.tauri_version, info.os)}
                        </p>
                    }.into_any(),
                    Some(Err(error)) => view! {
                        <p class="error" role="alert" data-testid="app-info-error">{error.message}</p>
                    }.into_any(),
                }}
                <SlugPreview />
            </section>
        </main>
    }
}

/// A display name, and the room address it would be created under, as you type.
#[component]
fn SlugPreview() -> impl IntoView {
    let (name, set_name) = signal(String::new());
    let preview = move || {
        let name = name.get();
        if name.trim().is_empty() {
            return None;
        }
        Some(RoomSlug::from_display_name(&name).map(RoomName::new))
    };

    view! {
        <div class="field">
            <label for="room-name">"Try a room name"</label>
            <input
                id="room-name"
                data-testid="room-name-input"
                type="text"
                autocomplete="off"
                spellcheck="false"
                placeholder="Über Café 2020"
                prop:value=name
                on:input=move |ev| set_name.set(event_target_value(&ev))
            />
            <p class="hint" aria-live="polite">
                {move || match preview() {
                    None => view! {
                        <span data-testid="slug-hint">"Names become topic-safe room addresses."</span>
                    }.into_any(),
                    Some(Ok(room)) => view! {
                        <span data-testid="slug-preview">
                            "will be created as " <code data-testid="slug-preview-room">{room.to_string()}</code>
                        </span>
                    }.into_any(),
                    Some(Err(error)) => view! {
                        <span class="error" data-testid="slug-error">{error.to_string()}</span>
                    }.into_any(),
                }}
            </p>
        </div>
    }
}
