//! Types the desktop shell and the Leptos UI exchange over Tauri's IPC.

use serde::{Deserialize, Serialize};

/// Answer of the `app_info` command: what is running, for the about line and bug reports.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AppInfo {
    pub product_name: String,
    pub version: String,
    pub tauri_version: String,
    /// `linux`, `macos` or `windows`.
    pub os: String,
}

/// The Tauri event every client [`Event`](crate::chat::Event) is forwarded on, as is.
pub const EVENT_CLIENT: &str = "client://event";
/// The Tauri event telling the UI that client events were lost on the way (a burst, such as a
/// catch-up of thousands of messages, outran the window): what it shows must be fetched again.
/// No payload.
pub const EVENT_RESYNC: &str = "client://resync";
/// The Tauri event asking the UI to show a room (a notification was clicked); payload: the
/// room's name.
pub const EVENT_OPEN_ROOM: &str = "app://open-room";
/// The Tauri event carrying new [`Settings`] (changed from the tray menu, say).
pub const EVENT_SETTINGS: &str = "app://settings";

/// Where the backend is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", tag = "kind")]
pub enum BackendChoice {
    /// The local server on this computer (`http://127.0.0.1:8787`), the default.
    Local,
    /// A server's address; its profile is fetched from `<address>/profile.json`. A server with
    /// a self-signed certificate needs the CA certificate its operator hands out.
    #[serde(rename_all = "camelCase")]
    Server { address: String, ca_certificate: Option<String> },
    /// A profile document: ours, or the seed's `config.json` (an AWS deployment).
    #[serde(rename_all = "camelCase")]
    Profile { json: String },
}

/// The backend as the UI shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BackendInfo {
    pub choice: BackendChoice,
    /// "this computer", a host name, or "AWS (eu-west-1)".
    pub label: String,
    /// Set when the chosen backend cannot be used (unreachable, bad profile): say why.
    pub problem: Option<String>,
}

/// Answer of `session_state`: what the UI needs to pick a screen.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SessionState {
    pub account: Option<crate::chat::Account>,
    pub backend: BackendInfo,
    pub connection: crate::chat::ConnectionState,
    pub secret_store: crate::chat::StoreKind,
    /// Something the user should know about the session (it ended, it will not survive a
    /// reboot, …).
    pub notice: Option<String>,
}

/// Colour theme.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Theme {
    #[default]
    System,
    Light,
    Dark,
}

/// The user's settings, kept by the shell.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Settings {
    pub notifications: bool,
    /// Show the message text in notifications.
    pub previews: bool,
    pub do_not_disturb: bool,
    /// Closing the window hides it to the tray instead of quitting.
    pub close_to_tray: bool,
    pub theme: Theme,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            notifications: true,
            previews: true,
            do_not_disturb: false,
            close_to_tray: false,
            theme: Theme::System,
        }
    }
}
