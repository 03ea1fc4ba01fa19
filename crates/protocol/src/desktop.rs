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
