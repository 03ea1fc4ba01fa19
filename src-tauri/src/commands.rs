//! IPC commands, named `<domain>_<verb>`. Each returns `Result<_, ErrorBody>` so the UI always
//! receives the same `{code, message}` shape.

use iotchat_protocol::ErrorBody;
use iotchat_protocol::desktop::AppInfo;

/// What is running: product, version, Tauri version and OS.
#[tauri::command]
pub(crate) fn app_info(app: tauri::AppHandle) -> Result<AppInfo, ErrorBody> {
    let package = app.package_info();
    Ok(AppInfo {
        product_name: package.name.clone(),
        version: package.version.to_string(),
        tauri_version: tauri::VERSION.to_owned(),
        os: std::env::consts::OS.to_owned(),
    })
}
