//! "Start on login": an entry in the system's login items (an XDG autostart file on Linux, a
//! Launch Agent on macOS, the Run key on Windows) that starts this executable with
//! [`AUTOSTART_ARG`]. Whether the window opens then is the `start_hidden` setting, read at start.

use iotchat_client::protocol::{Code, ErrorBody};
use tauri::AppHandle;
use tauri_plugin_autostart::ManagerExt as _;

/// The argument the login entry passes, so the app knows it was started at login.
pub(crate) const AUTOSTART_ARG: &str = "--autostart";

pub(crate) fn plugin() -> tauri::plugin::TauriPlugin<tauri::Wry> {
    tauri_plugin_autostart::Builder::new().args([AUTOSTART_ARG]).app_name("IoT Chat").build()
}

/// Adds or removes the login entry.
pub(crate) fn set(app: &AppHandle, enabled: bool) -> Result<(), ErrorBody> {
    let manager = app.autolaunch();
    let result = if enabled { manager.enable() } else { manager.disable() };
    result.map_err(|e| {
        let action = if enabled { "add IoT Chat to" } else { "remove IoT Chat from" };
        ErrorBody::new(
            Code::Internal,
            format!("Cannot {action} the programs started at login: {e}"),
        )
    })
}

/// Whether the login entry exists (`None` when the system cannot say).
pub(crate) fn enabled(app: &AppHandle) -> Option<bool> {
    match app.autolaunch().is_enabled() {
        Ok(enabled) => Some(enabled),
        Err(e) => {
            tracing::warn!(%e, "cannot read the start-on-login state");
            None
        }
    }
}

/// This run was started by the login entry.
pub(crate) fn started_at_login() -> bool {
    std::env::args().skip(1).any(|arg| arg == AUTOSTART_ARG)
}
