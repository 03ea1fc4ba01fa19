//! The window as a desktop app's window: closing it keeps the app in the tray, a second launch
//! brings the first back instead of starting another, and its place and size are remembered.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, Result, bail};
use fantoccini::Locator;
use iotchat_tests::{Desktop, DesktopApp, Rect, UI_TIMEOUT};

const PASSWORD: &str = "Correct-Horse-9";
const TITLE: &str = "IoT Chat";

/// Waits until the app has no process left.
async fn wait_exited(app: &DesktopApp) -> Result<()> {
    let deadline = tokio::time::Instant::now() + UI_TIMEOUT;
    while app.process_tree().is_ok() {
        if tokio::time::Instant::now() >= deadline {
            bail!("the app is still running {UI_TIMEOUT:?} after its window closed");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ok(())
}

/// Waits until the saved settings say `closeToTray: <on>`.
async fn wait_saved_close_to_tray(data_dir: &std::path::Path, on: bool) -> Result<()> {
    let path = data_dir.join("desktop.json");
    let deadline = tokio::time::Instant::now() + UI_TIMEOUT;
    loop {
        let saved: serde_json::Value = std::fs::read(&path)
            .ok()
            .and_then(|bytes| serde_json::from_slice(&bytes).ok())
            .unwrap_or_default();
        if saved.pointer("/settings/closeToTray") == Some(&serde_json::Value::Bool(on)) {
            return Ok(());
        }
        if tokio::time::Instant::now() >= deadline {
            bail!("{} does not say closeToTray: {on}: {saved}", path.display());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_window_closes_to_the_tray_comes_back_on_a_second_launch_and_keeps_its_place()
-> Result<()> {
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
    let app_bin = iotchat_tests::app_binary()?;
    let desktop = Desktop::start(|_| async { Ok(()) }).await?;
    let app = DesktopApp::open(Arc::clone(&desktop), &app_bin, &env).await?;
    app.testid("auth-screen").await?;
    let window = desktop.wait_for_window(TITLE, true).await?;
    app.click("go-register").await?;
    app.type_into("register-username", "carol").await?;
    app.type_into("register-email", "carol@example.com").await?;
    app.type_into("register-password", PASSWORD).await?;
    app.click("register-submit").await?;
    app.testid("main-screen").await?;

    // Close to the tray is off by default (many Linux desktops show no tray); turned on,
    // closing the window hides it and the app runs on.
    app.click("open-settings").await?;
    let close_to_tray = app.testid("setting-close-to-tray").await?;
    assert_eq!(close_to_tray.prop("checked").await?.as_deref(), Some("false"), "off by default");
    app.click("setting-close-to-tray").await?;
    wait_saved_close_to_tray(app_data.path(), true).await?;
    desktop.close_window(&window.id)?;
    desktop.wait_for_window(TITLE, false).await?;
    tokio::time::sleep(Duration::from_millis(500)).await;
    app.process_tree().context("the app keeps running in the tray")?;

    // Launching it again brings the running one back, and the second process ends.
    let mut second = desktop.command(&app_bin);
    second.envs(env.iter().map(|(k, v)| (*k, v.as_str())));
    let status = tokio::time::timeout(UI_TIMEOUT, tokio::process::Command::from(second).status())
        .await
        .context("the second launch did not end")??;
    assert!(status.success(), "the second launch ends quietly: {status}");
    desktop.wait_for_window(TITLE, true).await?;
    let shown = desktop.windows()?.into_iter().filter(|w| w.title == TITLE && w.shown).count();
    assert_eq!(shown, 1, "still one window");
    app.testid("settings-screen").await.context("the first app is still the one answering")?;

    // Turned off, closing quits.
    app.click("setting-close-to-tray").await?;
    wait_saved_close_to_tray(app_data.path(), false).await?;

    // Move and resize the window, then close it: the app quits, remembering where it was.
    let placed = Rect { x: 300, y: 200, width: 860, height: 560 };
    desktop.place_window(&window.id, placed)?;
    let deadline = tokio::time::Instant::now() + UI_TIMEOUT;
    while !desktop.window_rect(&window.id)?.near(&placed, 0) {
        if tokio::time::Instant::now() >= deadline {
            bail!("the window did not move to {placed:?}: {:?}", desktop.window_rect(&window.id)?);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // The app hears of the move before it is asked to close.
    tokio::time::sleep(Duration::from_millis(500)).await;
    desktop.close_window(&window.id)?;
    wait_exited(&app).await?;
    drop(app);

    // The next start: the same place and size, still signed in, the setting kept.
    let app = DesktopApp::open(Arc::clone(&desktop), &app_bin, &env).await?;
    app.testid("main-screen").await?;
    assert_eq!(app.wait_for_text("current-user", "carol").await?, "carol");
    let window = desktop.wait_for_window(TITLE, true).await?;
    let rect = desktop.window_rect(&window.id)?;
    assert!(rect.near(&placed, 40), "the window came back at {rect:?}, not near {placed:?}");
    app.click("open-settings").await?;
    let close_to_tray = app.client().find(Locator::Css("[data-testid=\"setting-close-to-tray\"]"));
    assert_eq!(close_to_tray.await?.prop("checked").await?.as_deref(), Some("false"));

    app.close().await?;
    server.stop().await?;
    Ok(())
}
