//! The updater as the window shows it: a banner when a release is there (version, notes,
//! "Install and restart" or "Later"), the download's progress, and why a check or an install
//! failed. It never stands in the way of chatting.

use iotchat_protocol::desktop::{UpdateState, UpdateStatus};
use leptos::prelude::*;
use leptos::task::spawn_local;

use crate::icons::{Icon, Svg};
use crate::ipc;
use crate::state::use_state;

/// "Install and restart" (also "Try again" after a failed install).
pub(crate) fn install() {
    let state = use_state();
    spawn_local(async move {
        // Progress and failure arrive as update events; a refusal before starting does not.
        if let Err(e) = ipc::update_install().await
            && !matches!(
                state.update.with_untracked(|u| u.as_ref().map(|u| u.state.clone())),
                Some(UpdateState::Failed { .. })
            )
        {
            state.report("The update was not installed", &e);
        }
    });
}

fn dismiss() {
    let state = use_state();
    spawn_local(async move {
        if let Err(e) = ipc::update_dismiss().await {
            state.report("Could not put the update away", &e);
        }
    });
}

/// "Check for updates…".
pub(crate) fn check() {
    let state = use_state();
    spawn_local(async move {
        match ipc::update_check().await {
            Ok(status) => state.update.set(Some(status)),
            Err(e) => state.report("Could not check for updates", &e),
        }
    });
}

/// One line about where the updater is, for Settings.
pub(crate) fn describe(status: &UpdateStatus) -> String {
    let channel = status.channel.label();
    let current = &status.current_version;
    match &status.state {
        UpdateState::Idle => {
            format!("Version {current}. Not checked yet on the {channel} channel.")
        }
        UpdateState::Checking => format!("Checking the {channel} channel…"),
        UpdateState::UpToDate { .. } => {
            format!("Version {current} is the newest on the {channel} channel.")
        }
        UpdateState::Ahead { latest } => ahead(channel, current, latest),
        UpdateState::Available { version, .. } => {
            format!("Version {version} is available (you have {current}).")
        }
        UpdateState::Downloading { version, .. } => format!("Downloading version {version}…"),
        UpdateState::Installing { version } => format!("Installing version {version}…"),
        UpdateState::Failed { message, version: Some(version) } => {
            format!("Version {version} was not installed: {message}")
        }
        UpdateState::Failed { message, version: None } => {
            format!("The last check failed: {message}")
        }
    }
}

fn ahead(channel: &str, current: &str, latest: &str) -> String {
    format!(
        "You have {current}, newer than {channel}'s latest ({latest}). IoT Chat does not go \
         back a version: the {channel} build will arrive when it overtakes the installed one."
    )
}

fn percent(received: u64, total: Option<u64>) -> Option<u32> {
    let total = total.filter(|t| *t > 0)?;
    u32::try_from(received.saturating_mul(100) / total).ok().map(|p| p.min(100))
}

/// The banner above the views (and above the login card).
#[allow(unreachable_pub)] // see lib.rs
#[component]
pub(crate) fn UpdateBanner() -> impl IntoView {
    let state = use_state();
    move || {
        let status = state.update.get()?;
        let requested = status.requested;
        let current = status.current_version.clone();
        let channel = status.channel.label();
        let later = move |label: &'static str| {
            view! {
                <button class="button" type="button" data-testid="update-later" on:click=move |_| dismiss()>
                    {label}
                </button>
            }
        };
        let body = match status.state {
            UpdateState::Available { dismissed: true, .. } => return None,
            UpdateState::Available { version, notes, .. } => view! {
                <div class="update-text">
                    <strong data-testid="update-version">{format!("IoT Chat {version} is available")}</strong>
                    <span class="muted">{format!(" — you have {current}.")}</span>
                    {notes.map(|notes| view! {
                        <details class="update-notes">
                            <summary>"What's new"</summary>
                            <p data-testid="update-notes">{notes}</p>
                        </details>
                    })}
                </div>
                <div class="update-actions">
                    <button class="button primary" type="button" data-testid="update-install" on:click=move |_| install()>
                        "Install and restart"
                    </button>
                    {later("Later")}
                </div>
            }
            .into_any(),
            UpdateState::Downloading { version, received, total } => {
                let percent = percent(received, total);
                view! {
                    <div class="update-text">
                        <strong>{format!("Downloading IoT Chat {version}…")}</strong>
                        <span class="muted" data-testid="update-progress">
                            {match percent {
                                Some(p) => format!(" {p} %"),
                                None => format!(" {} KB", received / 1024),
                            }}
                        </span>
                        <progress
                            max="100"
                            value=percent.map(|p| p.to_string())
                            aria-label="Download progress"
                        ></progress>
                    </div>
                }
                .into_any()
            }
            UpdateState::Installing { version } => view! {
                <div class="update-text">
                    <strong>{format!("Installing IoT Chat {version}; it restarts in a moment…")}</strong>
                </div>
            }
            .into_any(),
            UpdateState::Failed { message, version: Some(version) } => view! {
                <div class="update-text">
                    <strong>{format!("IoT Chat {version} was not installed.")}</strong>
                    <span data-testid="update-error">{format!(" {message}")}</span>
                    <span class="muted">{format!(" You can go on using {current}.")}</span>
                </div>
                <div class="update-actions">
                    <button class="button" type="button" data-testid="update-retry" on:click=move |_| install()>
                        "Try again"
                    </button>
                    {later("Later")}
                </div>
            }
            .into_any(),
            // The outcome of a check only when someone asked for it.
            _ if !requested => return None,
            UpdateState::Checking | UpdateState::Idle => view! {
                <div class="update-text">
                    <strong>{format!("Checking for updates on the {channel} channel…")}</strong>
                </div>
            }
            .into_any(),
            UpdateState::UpToDate { .. } => view! {
                <div class="update-text" data-testid="update-uptodate">
                    {format!("IoT Chat {current} is up to date on the {channel} channel.")}
                </div>
                <div class="update-actions">{later("OK")}</div>
            }
            .into_any(),
            UpdateState::Ahead { latest } => view! {
                <div class="update-text" data-testid="update-ahead">
                    {ahead(channel, &current, &latest)}
                </div>
                <div class="update-actions">{later("OK")}</div>
            }
            .into_any(),
            UpdateState::Failed { message, version: None } => view! {
                <div class="update-text">
                    <strong>"Could not check for updates. "</strong>
                    <span data-testid="update-error">{message}</span>
                </div>
                <div class="update-actions">{later("OK")}</div>
            }
            .into_any(),
        };
        Some(view! {
            <div class="update-banner" data-testid="update-banner" role="status">
                <span class="update-icon" aria-hidden="true"><Svg icon=Icon::Download /></span>
                {body}
            </div>
        })
    }
}
