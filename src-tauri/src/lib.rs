//! The IoT Chat desktop shell. It owns the window, the IPC commands and (with later issues) the
//! client core, tray, notifications and updater. No chat logic lives here: commands delegate.

mod commands;

/// Builds and runs the app until its last window closes.
pub fn run() {
    let context = tauri::generate_context!("../tauri.conf.json");
    let result = tauri::Builder::default()
        .invoke_handler(tauri::generate_handler![commands::app_info])
        .run(context);
    if let Err(error) = result {
        eprintln!("IoT Chat could not start: {error}");
        std::process::exit(1);
    }
}
