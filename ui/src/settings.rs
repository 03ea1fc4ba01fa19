//! Settings: notifications, tray, theme, the backend, and logging out. Each change is saved at
//! once; there is no Save button to forget.

use iotchat_protocol::desktop::{AppInfo, Settings, TeamServer, Theme, UpdateChannel, UpdateState};
use leptos::prelude::*;
use leptos::task::spawn_local;
use std::time::Duration;

use crate::ipc;
use crate::sidebar::log_out;
use crate::state::{AppState, use_state};
use crate::update;

/// Saves `next`; shows the shell's answer, or puts the old value back and says why.
fn save(state: AppState, next: Settings, error: RwSignal<Option<String>>) {
    let before = state.settings.get_untracked();
    state.settings.set(next.clone());
    error.set(None);
    spawn_local(async move {
        match ipc::settings_set(&next).await {
            Ok(saved) => state.settings.set(saved),
            Err(e) => {
                state.settings.set(before);
                error.set(Some(format!("Your change was not saved: {}", e.message)));
            }
        }
    });
}

fn theme_value(theme: Theme) -> &'static str {
    match theme {
        Theme::System => "system",
        Theme::Light => "light",
        Theme::Dark => "dark",
    }
}

#[allow(unreachable_pub)] // see lib.rs
#[component]
pub(crate) fn SettingsScreen() -> impl IntoView {
    let state = use_state();
    let error = RwSignal::new(None::<String>);
    let logging_out = RwSignal::new(false);
    let about = RwSignal::new(None::<Result<AppInfo, String>>);
    // What the team needs, while this computer hosts a server for it.
    let team = RwSignal::new(None::<Result<Option<TeamServer>, String>>);
    // Only a change of this setting asks again (not every other setting saved). While the
    // server restarts there is nothing to show yet: ask again shortly, for up to 30 s.
    let hosting = Memo::new(move |_| state.settings.with(|s| s.host_for_team));
    let asked = RwSignal::new(0u32);
    Effect::new(move |_| {
        let hosting = hosting.get();
        let attempt = asked.get();
        if attempt == 0 {
            team.set(None);
        }
        if hosting {
            spawn_local(async move {
                let answer = ipc::team_server().await.map_err(|e| e.message);
                let starting = matches!(answer, Ok(None));
                team.set(Some(answer));
                if starting && attempt < 60 && hosting {
                    set_timeout(move || asked.update(|n| *n += 1), Duration::from_millis(500));
                }
            });
        }
    });
    Effect::new(move |_| {
        hosting.track();
        asked.set(0);
    });
    spawn_local(async move {
        about.set(Some(ipc::app_info().await.map_err(|e| e.message)));
    });

    let toggle = move |testid: &'static str,
                       label: &'static str,
                       hint: &'static str,
                       get: fn(&Settings) -> bool,
                       put: fn(&mut Settings, bool)| {
        let hint_id = format!("{testid}-hint");
        view! {
            <div class="setting">
                <input
                    type="checkbox"
                    id=testid
                    data-testid=testid
                    aria-describedby=hint_id.clone()
                    prop:checked=move || state.settings.with(get)
                    on:change=move |ev| {
                        let mut next = state.settings.get_untracked();
                        put(&mut next, event_target_checked(&ev));
                        save(state, next, error);
                    }
                />
                <div class="setting-text">
                    <label for=testid>{label}</label>
                    <p class="hint" id=hint_id>{hint}</p>
                </div>
            </div>
        }
    };

    view! {
        <section class="page" data-testid="settings-screen" aria-labelledby="settings-title">
            <header class="page-head">
                <h1 id="settings-title">"Settings"</h1>
                <p class="muted">"Changes are saved as you make them."</p>
            </header>
            <div class="page-body settings">
                {move || error.get().map(|e| view! {
                    <p class="inline-error" role="alert" data-testid="settings-error">{e}</p>
                })}
                <fieldset class="group">
                    <legend>"Notifications"</legend>
                    {toggle(
                        "setting-notifications",
                        "Desktop notifications",
                        "For new messages in rooms you follow, when the room is not on screen.",
                        |s| s.notifications,
                        |s, v| s.notifications = v,
                    )}
                    {toggle(
                        "setting-previews",
                        "Show message text",
                        "Include the message in the notification; otherwise only who wrote where.",
                        |s| s.previews,
                        |s, v| s.previews = v,
                    )}
                    {toggle(
                        "setting-dnd",
                        "Do not disturb",
                        "No notifications at all until you turn this off. Unread counts still update.",
                        |s| s.do_not_disturb,
                        |s, v| s.do_not_disturb = v,
                    )}
                </fieldset>
                <fieldset class="group">
                    <legend>"Window"</legend>
                    {toggle(
                        "setting-close-to-tray",
                        "Close to the tray",
                        "Closing the window keeps IoT Chat running in the system tray.",
                        |s| s.close_to_tray,
                        |s, v| s.close_to_tray = v,
                    )}
                    <div class="setting">
                        <div class="setting-text">
                            <label for="setting-theme">"Theme"</label>
                            <p class="hint" id="setting-theme-hint">"System follows your desktop's light or dark mode."</p>
                        </div>
                        <select
                            id="setting-theme"
                            data-testid="setting-theme"
                            aria-describedby="setting-theme-hint"
                            on:change=move |ev| {
                                let theme = match event_target_value(&ev).as_str() {
                                    "light" => Theme::Light,
                                    "dark" => Theme::Dark,
                                    _ => Theme::System,
                                };
                                let mut next = state.settings.get_untracked();
                                next.theme = theme;
                                save(state, next, error);
                            }
                        >
                            {[(Theme::System, "System"), (Theme::Light, "Light"), (Theme::Dark, "Dark")]
                                .into_iter()
                                .map(|(theme, label)| view! {
                                    <option
                                        value=theme_value(theme)
                                        prop:selected=move || state.settings.with(|s| s.theme == theme)
                                    >
                                        {label}
                                    </option>
                                })
                                .collect_view()}
                        </select>
                    </div>
                </fieldset>
                <fieldset class="group">
                    <legend>"Start-up"</legend>
                    {toggle(
                        "setting-start-on-login",
                        "Start on login",
                        "Open IoT Chat when you log in to this computer.",
                        |s| s.start_on_login,
                        |s, v| s.start_on_login = v,
                    )}
                    <div class="setting" class:disabled=move || !state.settings.with(|s| s.start_on_login)>
                        <input
                            type="checkbox"
                            id="setting-start-hidden"
                            data-testid="setting-start-hidden"
                            aria-describedby="setting-start-hidden-hint"
                            prop:checked=move || state.settings.with(|s| s.start_hidden)
                            disabled=move || !state.settings.with(|s| s.start_on_login)
                            on:change=move |ev| {
                                let mut next = state.settings.get_untracked();
                                next.start_hidden = event_target_checked(&ev);
                                save(state, next, error);
                            }
                        />
                        <div class="setting-text">
                            <label for="setting-start-hidden">"Start hidden in the tray"</label>
                            <p class="hint" id="setting-start-hidden-hint">
                                "At login, only the tray icon appears; notifications still come."
                            </p>
                        </div>
                    </div>
                </fieldset>
                <fieldset class="group">
                    <legend>"Team"</legend>
                    {toggle(
                        "setting-host-team",
                        "Host a server for my team",
                        "This computer's server also serves your network, with TLS. The others choose \"A server\" and enter the address and CA certificate below.",
                        |s| s.host_for_team,
                        |s, v| s.host_for_team = v,
                    )}
                    {move || team.get().map(|team| match team {
                        Ok(Some(team)) => view! {
                            <div class="team-info" data-testid="team-info">
                                <p>"Address: " <code data-testid="team-address">{team.address}</code></p>
                                <p>"CA fingerprint (SHA-256): "
                                    <code class="fingerprint" data-testid="team-fingerprint">{team.ca_fingerprint}</code>
                                </p>
                                <details>
                                    <summary>"CA certificate"</summary>
                                    <textarea class="pem" readonly rows="6" data-testid="team-ca" aria-label="CA certificate">
                                        {team.ca_certificate}
                                    </textarea>
                                </details>
                                <p class="hint">"Read the fingerprint to the others so they can check it before they trust the certificate."</p>
                            </div>
                        }.into_any(),
                        Ok(None) => view! {
                            <p class="hint" data-testid="team-info">"The server is starting…"</p>
                        }.into_any(),
                        Err(e) => view! {
                            <p class="field-error" data-testid="team-info">{format!("The team server is not available: {e}")}</p>
                        }.into_any(),
                    })}
                </fieldset>
                <fieldset class="group">
                    <legend>"Updates"</legend>
                    <div class="setting">
                        <div class="setting-text">
                            <label for="setting-update-channel">"Update channel"</label>
                            <p class="hint" id="setting-update-channel-hint">
                                "Beta gets new versions a few weeks early. Switching back to Stable never installs an older version."
                            </p>
                        </div>
                        <select
                            id="setting-update-channel"
                            data-testid="setting-update-channel"
                            aria-describedby="setting-update-channel-hint"
                            on:change=move |ev| {
                                let channel = match event_target_value(&ev).as_str() {
                                    "beta" => UpdateChannel::Beta,
                                    _ => UpdateChannel::Stable,
                                };
                                let mut next = state.settings.get_untracked();
                                next.update_channel = channel;
                                save(state, next, error);
                            }
                        >
                            {[UpdateChannel::Stable, UpdateChannel::Beta]
                                .into_iter()
                                .map(|channel| view! {
                                    <option
                                        value=channel.as_str()
                                        prop:selected=move || state.settings.with(|s| s.update_channel == channel)
                                    >
                                        {channel.label()}
                                    </option>
                                })
                                .collect_view()}
                        </select>
                    </div>
                    <div class="setting">
                        <div class="setting-text">
                            <span class="label">"Version"</span>
                            <p class="hint" data-testid="update-status" aria-live="polite">
                                {move || state.update.with(|u| u.as_ref().map_or_else(
                                    || "The updater has not answered yet.".to_owned(),
                                    update::describe,
                                ))}
                            </p>
                        </div>
                        <button
                            class="button"
                            type="button"
                            data-testid="update-check"
                            disabled=move || state.update.with(|u| u.as_ref().is_some_and(|u| matches!(
                                u.state,
                                UpdateState::Checking | UpdateState::Downloading { .. } | UpdateState::Installing { .. }
                            )))
                            on:click=move |_| update::check()
                        >
                            "Check for updates…"
                        </button>
                    </div>
                </fieldset>
                <fieldset class="group">
                    <legend>"Account"</legend>
                    <div class="setting">
                        <div class="setting-text">
                            <span class="label">"Signed in as "
                                <strong>{move || state.account.with(|a| a.as_ref().map(|a| a.username.clone()))}</strong>
                            </span>
                            <p class="hint">
                                "Backend: "
                                <span data-testid="settings-backend">
                                    {move || state.backend.with(|b| b.as_ref().map_or_else(|| "unknown".to_owned(), |b| b.label.clone()))}
                                </span>
                            </p>
                            {move || state.backend.with(|b| b.as_ref().and_then(|b| b.problem.clone())).map(|p| view! {
                                <p class="field-error">{p}</p>
                            })}
                            {move || state.secret_store.get().map(|store| view! {
                                <p class="hint">{store.describe()}</p>
                            })}
                            <p class="hint">"To use another backend, log out and choose it on the login screen."</p>
                        </div>
                        <button
                            class="button danger"
                            type="button"
                            data-testid="settings-logout"
                            disabled=move || logging_out.get()
                            on:click=move |_| log_out(state, logging_out)
                        >
                            {move || if logging_out.get() { "Logging out…" } else { "Log out" }}
                        </button>
                    </div>
                </fieldset>
                {move || about.get().map(|info| view! {
                    <p class="about" data-testid="app-info">
                        {match info {
                            Ok(info) => format!(
                                "{} {} · Tauri {} · {}",
                                info.product_name, info.version, info.tauri_version, info.os
                            ),
                            Err(e) => format!("Version information is unavailable: {e}"),
                        }}
                    </p>
                })}
            </div>
        </section>
    }
}
