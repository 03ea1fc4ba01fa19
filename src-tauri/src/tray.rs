//! The system tray and the window title. Linux trays show neither tooltips nor clicks, so the
//! unread state is in the icon image (a dot) and the title carries the count.

use std::sync::atomic::{AtomicU32, Ordering};

use iotchat_client::Client;
use iotchat_client::protocol::desktop::Settings;
use tauri::image::Image;
use tauri::menu::{CheckMenuItem, Menu, MenuItem, PredefinedMenuItem};
use tauri::tray::TrayIconBuilder;
use tauri::{AppHandle, Manager as _, Wry};

use crate::shell::{Shell, show_window};
use crate::updates::Updates;

const TRAY_ID: &str = "main";
const ICON: &[u8] = include_bytes!("../../icons/tray.png");
const ICON_UNREAD: &[u8] = include_bytes!("../../icons/tray-unread.png");

/// The tray menu's stateful item.
pub(crate) struct TrayMenu {
    dnd: CheckMenuItem<Wry>,
}

pub(crate) fn build(app: &AppHandle) -> tauri::Result<()> {
    let settings = app.state::<Shell>().settings();
    let open = MenuItem::with_id(app, "open", "Open IoT Chat", true, None::<&str>)?;
    let dnd = CheckMenuItem::with_id(
        app,
        "dnd",
        "Do not disturb",
        true,
        settings.do_not_disturb,
        None::<&str>,
    )?;
    let updates =
        MenuItem::with_id(app, "check-updates", "Check for updates…", true, None::<&str>)?;
    let quit = MenuItem::with_id(app, "quit", "Quit", true, None::<&str>)?;
    let separator = PredefinedMenuItem::separator(app)?;
    let menu = Menu::with_items(app, &[&open, &dnd, &updates, &separator, &quit])?;
    app.manage(TrayMenu { dnd });
    TrayIconBuilder::with_id(TRAY_ID)
        .icon(Image::from_bytes(ICON)?)
        .tooltip("IoT Chat")
        .menu(&menu)
        .on_menu_event(|app, event| match event.id.as_ref() {
            "open" => show_window(app),
            "dnd" => {
                let shell = app.state::<Shell>();
                let mut settings = shell.settings();
                settings.do_not_disturb = !settings.do_not_disturb;
                if let Err(e) = shell.set_settings(settings) {
                    tracing::warn!(message = %e.message, "cannot save do-not-disturb");
                }
            }
            "check-updates" => {
                // The answer shows in the window's banner.
                show_window(app);
                let app = app.clone();
                tauri::async_runtime::spawn(async move {
                    app.state::<Updates>().check(&app, true).await;
                });
            }
            "quit" => app.exit(0),
            _ => {}
        })
        .build(app)?;
    Ok(())
}

/// Keeps the tray's check mark in step with the settings.
pub(crate) fn settings_changed(app: &AppHandle, settings: &Settings) {
    if let Some(menu) = app.try_state::<TrayMenu>() {
        let _ = menu.dnd.set_checked(settings.do_not_disturb);
    }
}

/// Shows `total` unread messages in the title and the tray icon.
pub(crate) fn show_unread(app: &AppHandle, total: u32) {
    // Bursts (a catch-up) report thousands of totals: change the title and icon only when
    // what they show changes.
    let previous = match app.try_state::<UnreadShown>() {
        Some(shown) => shown.0.swap(total, Ordering::Relaxed),
        None => NOTHING_SHOWN,
    };
    if previous == total {
        return;
    }
    if let Some(window) = app.get_webview_window("main") {
        let title = if total == 0 { "IoT Chat".to_owned() } else { format!("IoT Chat ({total})") };
        let _ = window.set_title(&title);
    }
    if previous != NOTHING_SHOWN && (previous == 0) == (total == 0) {
        return; // the icon shows only whether anything is unread
    }
    if let Some(tray) = app.tray_by_id(TRAY_ID) {
        let bytes = if total == 0 { ICON } else { ICON_UNREAD };
        match Image::from_bytes(bytes) {
            Ok(icon) => {
                let _ = tray.set_icon(Some(icon));
            }
            Err(e) => tracing::warn!(%e, "tray icon"),
        }
    }
}

const NOTHING_SHOWN: u32 = u32::MAX;

/// The unread total the title and the tray icon show now.
#[derive(Debug)]
pub(crate) struct UnreadShown(AtomicU32);

impl Default for UnreadShown {
    fn default() -> Self {
        Self(AtomicU32::new(NOTHING_SHOWN))
    }
}

/// Recomputes the total from the followed rooms.
pub(crate) async fn refresh_unread(app: &AppHandle, client: &Client) {
    let total = match client.followed().await {
        Ok(rooms) => rooms.iter().map(|r| r.unread).sum(),
        Err(_) => 0,
    };
    show_unread(app, total);
}
