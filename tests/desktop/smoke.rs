use iotchat_tests::DesktopApp;

/// The window renders the Leptos UI, the UI reaches the Rust shell through a Tauri command, and
/// the protocol crate's slug rules run in the UI as wasm.
#[tokio::test(flavor = "multi_thread")]
async fn the_window_renders_the_shell_answer_and_live_slug_previews() -> anyhow::Result<()> {
    let app = DesktopApp::launch().await?;

    let info = app.testid("app-info").await?.text().await?;
    let expected = format!("IoT Chat {} · Tauri 2.", env!("CARGO_PKG_VERSION"));
    assert!(info.starts_with(&expected), "the about line comes from app_info: {info:?}");
    assert!(info.ends_with(std::env::consts::OS), "the shell reports the OS: {info:?}");

    let input = app.testid("room-name-input").await?;
    input.send_keys("Über Café 2020").await?;
    let room = app.wait_for_text("slug-preview-room", "room/public/uber-cafe-2020").await?;
    assert_eq!(room, "room/public/uber-cafe-2020", "non-ASCII names are transliterated");
    app.screenshot("welcome-slug-preview").await?;

    app.clear_field(&input).await?;
    input.send_keys("!!! ###").await?;
    let error = app.testid("slug-error").await?.text().await?;
    assert!(
        error.contains("no letters or digits"),
        "a name that slugs to nothing is explained: {error:?}"
    );

    app.clear_field(&input).await?;
    let hint = app.testid("slug-hint").await?.text().await?;
    assert_eq!(
        hint, "Names become topic-safe room addresses.",
        "an empty name shows the hint again"
    );

    app.close().await
}
