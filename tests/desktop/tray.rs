//! The tray, as a desktop panel shows it: the icon gains a dot while something is unread and
//! loses it once read; its menu turns do-not-disturb on, brings a hidden window back, and quits.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, Result, bail};
use iotchat_client::protocol::RoomName;
use iotchat_client::{Backend, Client, ClientConfig, MemoryStore};
use iotchat_tests::tray::TrayHost;
use iotchat_tests::{DesktopApp, UI_TIMEOUT};

const PASSWORD: &str = "Correct-Horse-9";

/// Waits until the checkbox `id` is `checked`.
async fn wait_checked(app: &DesktopApp, id: &str, checked: bool) -> Result<()> {
    let deadline = tokio::time::Instant::now() + UI_TIMEOUT;
    loop {
        let now = app.testid(id).await?.prop("checked").await?;
        if now.as_deref() == Some(if checked { "true" } else { "false" }) {
            return Ok(());
        }
        if tokio::time::Instant::now() >= deadline {
            bail!("{id} is checked: {now:?}, not {checked}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_tray_icon_shows_unread_and_its_menu_sets_do_not_disturb_opens_and_quits() -> Result<()>
{
    let server_dir = tempfile::tempdir()?;
    let config = iotchat_server::config::Config::for_data_dir(server_dir.path())?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let server = iotchat_server::start(&config, listener).await?;
    let app_data = tempfile::tempdir()?;
    let env = [
        ("IOTCHAT_SERVER", format!("http://{}", server.addr())),
        ("IOTCHAT_DATA_DIR", app_data.path().display().to_string()),
        ("IOTCHAT_KEYCHAIN_SERVICE", format!("iotchat-e2e-{}", uuid::Uuid::new_v4())),
    ];
    let slot = Arc::new(tokio::sync::Mutex::new(None::<TrayHost>));
    let filled = Arc::clone(&slot);
    let app = DesktopApp::launch_with(&env, |bus| async move {
        *filled.lock().await = Some(TrayHost::start(&bus).await?);
        Ok(())
    })
    .await?;
    let tray = slot.lock().await.take().context("the test tray")?;

    let item = tray.item().await?;
    assert_eq!(
        tray.menu_labels(&item).await?,
        ["Open IoT Chat", "Do not disturb", "Check for updates…", "Quit"]
    );
    let idle = tray.icon(&item).await?;

    app.click("go-register").await?;
    app.type_into("register-username", "dora").await?;
    app.type_into("register-email", "dora@example.com").await?;
    app.type_into("register-password", PASSWORD).await?;
    app.click("register-submit").await?;
    app.testid("main-screen").await?;
    for name in ["Random", "General"] {
        app.click("browse-rooms").await?;
        app.type_into("new-room-name", name).await?;
        app.click("new-room-submit").await?;
        // The new room opens once it exists.
        assert_eq!(app.wait_for_text("room-title", name).await?, name);
    }
    app.click("sidebar-room-general").await?;
    assert_eq!(app.wait_for_text("room-title", "General").await?, "General");

    // A message in a room that is not on screen: the icon gains its dot.
    let eve_data = tempfile::tempdir()?;
    let eve = Client::new(ClientConfig {
        backend: Backend::new(server.profile().clone())?,
        data_dir: eve_data.path().to_owned(),
        secrets: Arc::new(MemoryStore::default()),
        connect: true,
        instance: None,
    })?;
    eve.register("eve", "eve@example.com", PASSWORD).await?;
    eve.login("eve", PASSWORD).await?;
    let random = RoomName::from_user_input("random")?;
    eve.room_join(&random).await?;
    eve.message_send(&random, "psst").await?;
    app.wait_for_attr("sidebar-room-random", "data-unread", "1").await?;
    let unread = tray.wait_icon_change(&item, &idle).await?;

    // Reading it takes the dot away again.
    app.click("sidebar-room-random").await?;
    app.wait_gone("unread-random").await?;
    let read = tray.wait_icon_change(&item, &unread).await?;
    assert_eq!(read, idle, "the icon without the dot, as at the start");

    // Do not disturb from the tray: the settings screen shows it on.
    tray.click(&item, "Do not disturb").await?;
    app.click("open-settings").await?;
    wait_checked(&app, "setting-dnd", true).await?;

    // "Open IoT Chat" brings back a window closed to the tray.
    app.click("setting-close-to-tray").await?;
    wait_checked(&app, "setting-close-to-tray", true).await?;
    tokio::time::sleep(Duration::from_millis(500)).await; // saved through the shell
    let desktop = Arc::clone(app.desktop());
    let window = desktop.wait_for_window("IoT Chat", true).await?;
    desktop.close_window(&window.id)?;
    desktop.wait_for_window("IoT Chat", false).await?;
    tray.click(&item, "Open IoT Chat").await?;
    desktop.wait_for_window("IoT Chat", true).await?;

    // Quit ends the app.
    tray.click(&item, "Quit").await?;
    let deadline = tokio::time::Instant::now() + UI_TIMEOUT;
    while app.process_tree().is_ok() {
        if tokio::time::Instant::now() >= deadline {
            bail!("the app still runs after Quit");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    drop(app);
    eve.shutdown().await;
    server.stop().await?;
    Ok(())
}
