//! The whole journey of a new user in the real app, against the real server, with a headless
//! client in another account on the other side and a notification server on the session bus.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context as _, Result};
use fantoccini::Locator;
use fantoccini::key::Key;
use iotchat_client::protocol::RoomName;
use iotchat_client::{Backend, Client, ClientConfig, MemoryStore};
use iotchat_tests::DesktopApp;
use iotchat_tests::notifications::NotificationServer;

const PASSWORD: &str = "Correct-Horse-9";
/// How long a notification that should not come is given to come anyway.
const QUIET: std::time::Duration = std::time::Duration::from_millis(1500);

/// Where the README's screenshots are written.
fn docs_screenshots() -> PathBuf {
    iotchat_tests::workspace_root().join("docs").join("screenshots")
}

async fn shot(app: &DesktopApp, name: &str) -> Result<()> {
    eprintln!("journey: screenshot {name}");
    app.screenshot_to(&docs_screenshots(), name).await?;
    Ok(())
}

async fn type_into(app: &DesktopApp, id: &str, text: &str) -> Result<()> {
    app.type_into(id, text).await
}

async fn click(app: &DesktopApp, id: &str) -> Result<()> {
    eprintln!("journey: click {id}");
    app.click(id).await
}

async fn set_theme(app: &DesktopApp, theme: &str) -> Result<()> {
    click(app, "open-settings").await?;
    let select = app.testid("setting-theme").await?;
    select.select_by_value(theme).await.context("choosing a theme")?;
    Ok(())
}

/// A message in the open room's timeline with this text, once it is in the given state.
async fn wait_for_message(app: &DesktopApp, text: &str, own: bool, state: &str) -> Result<()> {
    let deadline = tokio::time::Instant::now() + iotchat_tests::UI_TIMEOUT;
    loop {
        // The timeline re-renders rows (a delivery, the window sliding): an element found a
        // moment ago can be gone, which is not a failure, only a reason to look again.
        let found = app.client().find_all(Locator::Css("[data-testid=\"message\"]")).await;
        for message in found.unwrap_or_default() {
            let body = message.find(Locator::Css("[data-testid=\"message-text\"]")).await.ok();
            let shown = match body {
                Some(body) => body.text().await.unwrap_or_default(),
                None => continue,
            };
            let own_attr = message.attr("data-own").await.ok().flatten();
            let state_attr = message.attr("data-state").await.ok().flatten();
            if shown == text
                && own_attr.as_deref() == Some(if own { "true" } else { "false" })
                && state_attr.as_deref() == Some(state)
            {
                return Ok(());
            }
        }
        if tokio::time::Instant::now() >= deadline {
            anyhow::bail!("no {state} message {text:?} (own: {own}) in the timeline");
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_new_user_registers_chats_sees_badges_and_notifications_and_logs_out() -> Result<()> {
    // The real server, on loopback.
    let server_dir = tempfile::tempdir()?;
    let config = iotchat_server::config::Config::for_data_dir(server_dir.path())?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let server = iotchat_server::start(&config, listener).await?;
    let profile = server.profile().clone();
    let address = format!("http://{}", server.addr());
    let app_data = tempfile::tempdir()?;
    let keychain_service = format!("iotchat-e2e-{}", uuid::Uuid::new_v4());

    let notifications = Arc::new(tokio::sync::Mutex::new(None::<NotificationServer>));
    let slot = Arc::clone(&notifications);
    let env = [
        ("IOTCHAT_SERVER", address.clone()),
        ("IOTCHAT_DATA_DIR", app_data.path().display().to_string()),
        ("IOTCHAT_KEYCHAIN_SERVICE", keychain_service.clone()),
    ];
    let app = DesktopApp::launch_with(&env, |bus| async move {
        *slot.lock().await = Some(NotificationServer::start(&bus).await?);
        Ok(())
    })
    .await?;
    let notifications = notifications.lock().await.take().context("the notification server")?;

    // Register (which signs in).
    app.testid("auth-screen").await?;
    shot(&app, "login-light").await?;
    click(&app, "go-register").await?;
    type_into(&app, "register-username", "alice").await?;
    type_into(&app, "register-email", "alice@example.com").await?;
    type_into(&app, "register-password", PASSWORD).await?;
    shot(&app, "register-light").await?;
    click(&app, "register-submit").await?;
    app.testid("main-screen").await?;
    assert_eq!(app.wait_for_text("current-user", "alice").await?, "alice");
    app.wait_for_attr("connection-status", "data-state", "online").await?;

    // Create two rooms; the slug preview runs as you type.
    click(&app, "browse-rooms").await?;
    app.testid("rooms-browser").await?;
    type_into(&app, "new-room-name", "Random").await?;
    click(&app, "new-room-submit").await?;
    // A new room opens once it exists, and joins the sidebar.
    assert_eq!(app.wait_for_text("room-title", "Random").await?, "Random");
    app.testid("sidebar-room-random").await?;
    click(&app, "browse-rooms").await?;
    type_into(&app, "new-room-name", "General").await?;
    assert_eq!(
        app.wait_for_text("slug-preview-room", "room/public/general").await?,
        "room/public/general"
    );
    click(&app, "new-room-submit").await?;
    assert_eq!(app.wait_for_text("room-title", "General").await?, "General");
    app.testid("sidebar-room-general").await?;

    // Send a message: Enter sends.
    app.type_into("composer-input", "Hello from the app").await?;
    app.send_keys("composer-input", &Key::Enter.to_string()).await?;
    wait_for_message(&app, "Hello from the app", true, "delivered").await?;

    // Someone else, headless, in the same rooms.
    let bob_data = tempfile::tempdir()?;
    let bob = Client::new(ClientConfig {
        backend: Backend::new(profile.clone())?,
        data_dir: bob_data.path().to_owned(),
        secrets: Arc::new(MemoryStore::default()),
        connect: true,
        instance: None,
    })?;
    bob.register("bob", "bob@example.com", PASSWORD).await?;
    bob.login("bob", PASSWORD).await?;
    let (general, random) =
        (RoomName::from_user_input("general")?, RoomName::from_user_input("random")?);
    bob.room_join(&general).await?;
    bob.room_join(&random).await?;

    bob.message_send(&general, "Hi Alice <script>alert(1)</script>").await?;
    wait_for_message(&app, "Hi Alice <script>alert(1)</script>", false, "delivered").await?;
    shot(&app, "room-light").await?;

    bob.message_send(&random, "first in random").await?;
    bob.message_send(&random, "second in random").await?;
    app.wait_for_attr("sidebar-room-random", "data-unread", "2").await?;
    assert_eq!(app.wait_for_text("unread-random", "2").await?, "2");
    app.wait_for_window_title("IoT Chat (2)").await?;
    let received = notifications.wait_for(2).await?;
    assert_eq!(received.len(), 2, "one notification per message in the other room: {received:?}");
    for (notice, body) in received.iter().zip(["first in random", "second in random"]) {
        assert_eq!(notice.summary, "bob in Random");
        assert_eq!(notice.body, body);
        assert_eq!(notice.app_name, "IoT Chat");
        assert!(notice.actions.contains(&"default".to_owned()), "clickable: {notice:?}");
    }
    assert!(
        !notifications
            .received()
            .iter()
            .any(|n| n.body.contains("Hi Alice") || n.body.contains("Hello from")),
        "no notification for the open room or for one's own messages"
    );

    // Clicking the notification opens the room, which reads it.
    eprintln!("journey: clicking the notification");
    notifications.click(received[0].id).await?;
    assert_eq!(app.wait_for_text("room-title", "Random").await?, "Random");
    eprintln!("journey: the room opened from the notification");
    app.wait_gone("unread-random").await?;
    app.wait_for_window_title("IoT Chat").await?;
    eprintln!("journey: read");

    // A muted room stays silent (its unread count still grows).
    click(&app, "room-mute").await?;
    app.wait_for_attr("room-mute", "aria-pressed", "true").await?;
    click(&app, "sidebar-room-general").await?;
    bob.message_send(&random, "while muted").await?;
    app.wait_for_attr("sidebar-room-random", "data-unread", "1").await?;
    tokio::time::sleep(QUIET).await;
    assert_eq!(notifications.received().len(), 2, "a muted room does not notify");

    // Do not disturb silences everything; turned off, notifications come back.
    click(&app, "open-settings").await?;
    click(&app, "setting-dnd").await?;
    tokio::time::sleep(QUIET).await; // the setting is saved through the shell
    bob.message_send(&general, "during do not disturb").await?;
    app.wait_for_attr("sidebar-room-general", "data-unread", "1").await?;
    tokio::time::sleep(QUIET).await;
    assert_eq!(notifications.received().len(), 2, "do not disturb means no notification");
    click(&app, "setting-dnd").await?;
    tokio::time::sleep(QUIET).await;
    bob.message_send(&general, "after do not disturb").await?;
    let received = notifications.wait_for(3).await?;
    assert_eq!(
        (received[2].summary.as_str(), received[2].body.as_str()),
        ("bob in General", "after do not disturb"),
        "with the room off screen, its messages notify again"
    );

    // Without previews, a notification says who wrote where, not what.
    click(&app, "setting-previews").await?;
    tokio::time::sleep(QUIET).await;
    bob.message_send(&general, "a private matter").await?;
    let received = notifications.wait_for(4).await?;
    assert_eq!(
        (received[3].summary.as_str(), received[3].body.as_str()),
        ("bob in General", "New message"),
        "previews off keeps the text out of the notification"
    );

    click(&app, "browse-rooms").await?;
    app.testid("rooms-browser").await?;
    shot(&app, "rooms-light").await?;
    click(&app, "open-settings").await?;
    app.testid("settings-screen").await?;
    shot(&app, "settings-light").await?;

    // The same screens in the dark theme.
    set_theme(&app, "dark").await?;
    shot(&app, "settings-dark").await?;
    click(&app, "browse-rooms").await?;
    app.testid("rooms-browser").await?;
    shot(&app, "rooms-dark").await?;
    click(&app, "sidebar-room-general").await?;
    wait_for_message(&app, "Hello from the app", true, "delivered").await?;
    shot(&app, "room-dark").await?;

    // Logging out returns to the login screen and leaves no token in the keychain.
    // The app keeps its session in the kernel keyring here (the test bus has no Secret
    // Service). Its keys are readable only by the session that made them, but every process of
    // the user can list them: /proc/keys shows whether they exist.
    let tokens_in_keyring = || -> Result<Vec<String>> {
        let keys = std::fs::read_to_string("/proc/keys").context("listing the kernel's keys")?;
        Ok(keys
            .lines()
            .filter(|line| line.contains(&format!("@{keychain_service}")))
            .filter_map(|line| line.split_whitespace().nth(8).map(str::to_owned))
            .collect())
    };
    let before = tokens_in_keyring()?;
    for name in ["id", "access", "refresh"] {
        let wanted = format!("keyring:{}/alice/{name}@{keychain_service}:", profile.user_pool_id);
        assert!(before.contains(&wanted), "the {name} token is in the keyring: {before:?}");
    }
    click(&app, "logout").await?;
    app.testid("auth-screen").await?;
    shot(&app, "login-dark").await?;
    click(&app, "go-register").await?;
    app.testid("register-form").await?;
    shot(&app, "register-dark").await?;
    let deadline = tokio::time::Instant::now() + iotchat_tests::UI_TIMEOUT;
    while !tokens_in_keyring()?.is_empty() {
        // Revoked keys leave /proc/keys when the kernel's collector runs.
        assert!(
            tokio::time::Instant::now() < deadline,
            "no token is left after logout: {:?}",
            tokens_in_keyring()?
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }

    app.close().await?;
    bob.shutdown().await;
    server.stop().await?;
    Ok(())
}
