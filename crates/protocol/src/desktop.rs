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
/// The address of a sign-in opened in the browser (a `String`), so the app can show it when no
/// browser opens.
pub const EVENT_SIGN_IN_URL: &str = "app://sign-in-url";

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
    /// The identity providers it signs in with ("Continue with …"), from its profile.
    #[serde(default)]
    pub providers: Vec<String>,
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
    /// Which releases the updater offers.
    pub update_channel: UpdateChannel,
    /// Start IoT Chat when the user logs in to the computer.
    pub start_on_login: bool,
    /// When started at login, stay in the tray instead of opening the window.
    pub start_hidden: bool,
    /// "This computer" serves the team too: on a network address, with TLS.
    pub host_for_team: bool,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            notifications: true,
            previews: true,
            do_not_disturb: false,
            close_to_tray: false,
            theme: Theme::System,
            update_channel: UpdateChannel::Stable,
            start_on_login: false,
            start_hidden: false,
            host_for_team: false,
        }
    }
}

/// The Tauri event carrying a new [`UpdateStatus`].
pub const EVENT_UPDATE: &str = "app://update";

/// A stream of releases the updater follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum UpdateChannel {
    /// Finished releases.
    #[default]
    Stable,
    /// Release candidates, a few weeks ahead of stable.
    Beta,
}

impl UpdateChannel {
    /// The name in manifest URLs (`{{channel}}`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Stable => "stable",
            Self::Beta => "beta",
        }
    }

    /// The name people read.
    pub fn label(self) -> &'static str {
        match self {
            Self::Stable => "Stable",
            Self::Beta => "Beta",
        }
    }
}

/// What the updater knows and does; answer of `update_status`, and the payload of
/// [`EVENT_UPDATE`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UpdateStatus {
    /// The channel the state below is about.
    pub channel: UpdateChannel,
    /// The version running now.
    pub current_version: String,
    pub state: UpdateState,
    /// When the last check ended, in ms since the Unix epoch.
    pub checked_at_ms: Option<u64>,
    /// A person asked for this check (tray menu, Settings): its outcome is shown even when it
    /// is "nothing new".
    pub requested: bool,
}

/// Where the updater is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", tag = "kind")]
pub enum UpdateState {
    /// No check has run yet.
    Idle,
    Checking,
    /// Nothing newer on the channel; `latest` is the channel's newest version when it said so.
    #[serde(rename_all = "camelCase")]
    UpToDate {
        latest: Option<String>,
    },
    /// The channel's newest release is older than the installed version (a beta user on the
    /// stable channel): it is not installed, since that would be a downgrade.
    #[serde(rename_all = "camelCase")]
    Ahead {
        latest: String,
    },
    /// A newer release, signed, waiting for the user.
    #[serde(rename_all = "camelCase")]
    Available {
        version: String,
        notes: Option<String>,
        /// RFC 3339, as the manifest gives it.
        date: Option<String>,
        /// The user chose "Later" for this version.
        dismissed: bool,
    },
    #[serde(rename_all = "camelCase")]
    Downloading {
        version: String,
        received: u64,
        total: Option<u64>,
    },
    /// Verified and being put in place; the app restarts next.
    #[serde(rename_all = "camelCase")]
    Installing {
        version: String,
    },
    /// A check, download or install failed; `version` is set when an update was under way.
    #[serde(rename_all = "camelCase")]
    Failed {
        message: String,
        version: Option<String>,
    },
}

/// A server this app hosts for a team: what the others need to connect. Answer of
/// `team_server` (`None` while not hosting).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TeamServer {
    /// What the others enter as the server's address (`https://host:port`).
    pub address: String,
    /// SHA-256 of the CA certificate (DER), colon-separated hex, to compare before trusting it.
    pub ca_fingerprint: String,
    /// The CA certificate (PEM) the others paste when they choose this server.
    pub ca_certificate: String,
}
