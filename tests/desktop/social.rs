//! Signing in through an identity provider in the real app: "Continue with Test IdP" opens the
//! system browser (here `$BROWSER`, a script that writes the address down, as the standard
//! convention lets any user choose their browser), the test plays the person at the browser,
//! and the app carries on signed in as the federated user.

use std::path::Path;

use anyhow::{Result, bail};
use fantoccini::key::Key;
use iotchat_tests::DesktopApp;
use iotchat_tests::browser::{Act, play_browser};

async fn shot(app: &DesktopApp, name: &str) -> Result<()> {
    let dir = iotchat_tests::workspace_root().join("docs").join("screenshots");
    app.screenshot_to(&dir, name).await?;
    Ok(())
}

/// The `n`th address (counting from 1) the app asked the browser to open.
async fn opened(log: &Path, n: usize) -> Result<String> {
    let deadline = tokio::time::Instant::now() + iotchat_tests::UI_TIMEOUT;
    loop {
        let text = std::fs::read_to_string(log).unwrap_or_default();
        if let Some(url) = text.lines().nth(n - 1) {
            return Ok(url.to_owned());
        }
        if tokio::time::Instant::now() >= deadline {
            bail!("the app opened {} addresses in the browser, not {n}", text.lines().count());
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

/// Starts a sign-in, checks the waiting card (and its screenshot), and cancels it.
async fn start_and_cancel(app: &DesktopApp, log: &Path, n: usize, theme: &str) -> Result<()> {
    app.click("provider-TestIdP").await?;
    app.testid("provider-waiting").await?;
    let url = opened(log, n).await?;
    // The address is shown too, for when no browser opens.
    let shown = app.testid("sign-in-url").await?.prop("value").await?.unwrap_or_default();
    assert_eq!(shown, url, "the waiting card shows the address the browser got");
    shot(app, &format!("login-waiting-{theme}")).await?;
    app.click("provider-cancel").await?;
    app.testid("login-form").await?;
    app.wait_gone("provider-waiting").await?;
    app.wait_gone("app-error").await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn a_person_signs_in_with_the_test_provider_chats_and_logs_out() -> Result<()> {
    let server_dir = tempfile::tempdir()?;
    let mut config = iotchat_server::config::Config::for_data_dir(server_dir.path())?;
    config.callback_ports = vec![iotchat_tests::free_port()?, iotchat_tests::free_port()?];
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let server = iotchat_server::start(&config, listener).await?;
    let app_data = tempfile::tempdir()?;
    let browser_dir = tempfile::tempdir()?;
    let log = browser_dir.path().join("opened.txt");
    let browser = browser_dir.path().join("browser.sh");
    std::fs::write(&browser, "#!/bin/sh\nprintf '%s\\n' \"$1\" >> \"$BROWSER_LOG\"\n")?;
    std::fs::set_permissions(&browser, std::os::unix::fs::PermissionsExt::from_mode(0o755))?;
    let env = [
        ("IOTCHAT_SERVER", format!("http://{}", server.addr())),
        ("IOTCHAT_DATA_DIR", app_data.path().display().to_string()),
        ("IOTCHAT_KEYCHAIN_SERVICE", format!("iotchat-e2e-{}", uuid::Uuid::new_v4())),
        ("BROWSER", browser.display().to_string()),
        ("BROWSER_LOG", log.display().to_string()),
    ];
    let app = DesktopApp::launch_with(&env, |_| async { Ok(()) }).await?;

    // The login card offers the server's provider, on both forms.
    app.testid("auth-screen").await?;
    app.testid("provider-TestIdP").await?;
    assert_eq!(
        app.wait_for_text("provider-TestIdP", "Continue with Test IdP").await?,
        "Continue with Test IdP"
    );
    shot(&app, "login-providers-light").await?;
    app.click("go-register").await?;
    app.testid("register-form").await?;
    app.testid("provider-TestIdP").await?;
    app.click("go-login").await?;

    // Waiting for the browser, then changing one's mind.
    start_and_cancel(&app, &log, 1, "light").await?;

    // This time the person signs in at the provider.
    app.click("provider-TestIdP").await?;
    let url = opened(&log, 2).await?;
    let page = play_browser(&url, Act::Allow { subject: "carol".into() }).await?;
    assert!(page.contains("You can close this tab and return to IoT Chat"), "{page}");
    app.testid("main-screen").await?;
    assert_eq!(app.wait_for_text("current-user", "TestIdP_carol").await?, "TestIdP_carol");
    app.wait_for_attr("connection-status", "data-state", "online").await?;

    // A federated user chats like anyone else.
    app.click("browse-rooms").await?;
    app.type_into("new-room-name", "Social").await?;
    app.click("new-room-submit").await?;
    assert_eq!(app.wait_for_text("room-title", "Social").await?, "Social");
    app.type_into("composer-input", "Hello through the test provider").await?;
    app.send_keys("composer-input", &Key::Enter.to_string()).await?;
    app.wait_for_attr("message", "data-state", "delivered").await?;

    // Dark theme, log out, and the same card in the dark.
    app.click("open-settings").await?;
    app.testid("setting-theme").await?.select_by_value("dark").await?;
    app.click("logout").await?;
    app.testid("auth-screen").await?;
    app.testid("provider-TestIdP").await?;
    shot(&app, "login-providers-dark").await?;
    start_and_cancel(&app, &log, 3, "dark").await?;

    app.close().await?;
    server.stop().await?;
    Ok(())
}
