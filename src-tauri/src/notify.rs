//! Desktop notifications (notify-rust) for messages from others in followed rooms that are not
//! on screen. Clicking one (the `default` action, on Linux) brings the window up on that room.
//! Without a notification server, showing fails: that is logged, never fatal.

use iotchat_client::Client;
use iotchat_client::protocol::chat::TimelineMessage;
use iotchat_client::protocol::desktop::EVENT_OPEN_ROOM;
use tauri::{AppHandle, Emitter as _, Manager as _};

use crate::shell::{Shell, show_window};

/// Longest body shown; longer messages are cut with an ellipsis.
const PREVIEW_CHARS: usize = 200;

pub(crate) async fn maybe_notify(app: &AppHandle, client: &Client, message: &TimelineMessage) {
    if message.own {
        return;
    }
    let shell = app.state::<Shell>();
    let settings = shell.settings();
    if !settings.notifications || settings.do_not_disturb {
        return;
    }
    if shell.is_focused() && shell.shown_room().as_ref() == Some(&message.room) {
        return;
    }
    let Ok(followed) = client.followed().await else { return };
    let Some(room) = followed.into_iter().find(|f| f.name == message.room) else { return };
    if room.muted {
        return;
    }
    let summary = format!("{} in {}", message.author, room.display_name);
    let body = if settings.previews { preview(&message.text) } else { "New message".to_owned() };
    let app = app.clone();
    let room_name = message.room.clone();
    // Showing and waiting for a click block; a thread per notification, ended by its close.
    let spawned = std::thread::Builder::new().name("notification".into()).spawn(move || {
        show(&app, &summary, &body, room_name);
    });
    if let Err(e) = spawned {
        tracing::warn!(%e, "cannot start a notification thread");
    }
}

fn preview(text: &str) -> String {
    let mut preview: String = text.chars().take(PREVIEW_CHARS).collect();
    if text.chars().count() > PREVIEW_CHARS {
        preview.push('…');
    }
    preview
}

#[cfg(all(unix, not(target_os = "macos")))]
fn show(app: &AppHandle, summary: &str, body: &str, room: iotchat_client::protocol::RoomName) {
    let shown = notify_rust::Notification::new()
        .appname("IoT Chat")
        .summary(summary)
        .body(body)
        .action("default", "Open")
        .hint(notify_rust::Hint::Category("im.received".into()))
        .show();
    match shown {
        Ok(handle) => handle.wait_for_action(|action| {
            if action == "default" {
                show_window(app);
                let _ = app.emit(EVENT_OPEN_ROOM, room.to_string());
            }
        }),
        Err(e) => tracing::info!(%e, "no notification shown (is a notification server running?)"),
    }
}

#[cfg(not(all(unix, not(target_os = "macos"))))]
fn show(app: &AppHandle, summary: &str, body: &str, room: iotchat_client::protocol::RoomName) {
    // macOS and Windows report no clicks through notify-rust; the notification still shows.
    let _ = room;
    let mut notification = notify_rust::Notification::new();
    notification.appname("IoT Chat").summary(summary).body(body);
    // The installers give the Start-menu shortcut this AppUserModelID, which Windows shows the
    // app's name and icon for.
    #[cfg(windows)]
    notification.app_id(&app.config().identifier);
    #[cfg(not(windows))]
    let _ = app;
    if let Err(e) = notification.show() {
        tracing::info!(%e, "no notification shown");
    }
    let _ = (show_window, EVENT_OPEN_ROOM);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_previews_are_cut_on_a_character_boundary() {
        assert_eq!(preview("short"), "short");
        let long = "é".repeat(300);
        let cut = preview(&long);
        assert_eq!(cut.chars().count(), PREVIEW_CHARS + 1);
        assert!(cut.ends_with('…'));
    }
}
