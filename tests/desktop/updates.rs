//! The auto-updater end to end: two real builds of the app (`cargo xtask test` makes them:
//! version A, and version B signed with a throw-away key that both trust), a release server on
//! 127.0.0.1, and a scratch install of A that becomes B.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context as _, Result, bail};
use axum::extract::{Path as UrlPath, RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use fantoccini::Locator;
use iotchat_tests::{Desktop, DesktopApp, UI_TIMEOUT};

const PASSWORD: &str = "Correct-Horse-9";
/// What the stable channel offers: older than both builds, so never installed.
const STABLE_VERSION: &str = "0.9.0";
const NOTES: &str = "Rooms load twice as fast.\nA new update banner.";

fn build(var: &str) -> Result<PathBuf> {
    let path = std::env::var_os(var).map(PathBuf::from).with_context(|| {
        format!("{var} is not set: `cargo xtask test` builds the two versions this test needs")
    })?;
    if !path.is_file() {
        bail!("{} ({var}) does not exist: run `cargo xtask test`", path.display());
    }
    Ok(path)
}

/// What `<app> --version` says: "IoT Chat 1.2.3" → "1.2.3".
fn version_of(app: &Path) -> Result<String> {
    let out = std::process::Command::new(app).arg("--version").output()?;
    let text = String::from_utf8(out.stdout)?;
    text.strip_prefix("IoT Chat ")
        .map(|v| v.trim().to_owned())
        .with_context(|| format!("{} --version printed {text:?}", app.display()))
}

/// The release server: each channel's manifest, and B's package, which can be served tampered.
#[derive(Clone)]
struct Releases {
    manifests: Arc<Mutex<Vec<(String, serde_json::Value)>>>,
    package: Arc<Vec<u8>>,
    tampered: Arc<std::sync::atomic::AtomicBool>,
    /// Every request, as path and query.
    seen: Arc<Mutex<Vec<String>>>,
}

async fn manifest(
    State(releases): State<Releases>,
    UrlPath(channel): UrlPath<String>,
    RawQuery(query): RawQuery,
) -> Response {
    if let Ok(mut seen) = releases.seen.lock() {
        seen.push(format!("/{channel}/latest.json?{}", query.unwrap_or_default()));
    }
    let manifests = releases.manifests.lock().map(|m| m.clone()).unwrap_or_default();
    match manifests.into_iter().find(|(name, _)| *name == channel) {
        Some((_, manifest)) => axum::Json(manifest).into_response(),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

async fn package(State(releases): State<Releases>) -> Response {
    if let Ok(mut seen) = releases.seen.lock() {
        seen.push("/download/iotchat-desktop".to_owned());
    }
    let mut bytes = releases.package.as_ref().clone();
    if releases.tampered.load(std::sync::atomic::Ordering::SeqCst) {
        // One byte in the middle: still an executable, no longer what was signed.
        let middle = bytes.len() / 2;
        bytes[middle] ^= 0x5a;
    }
    bytes.into_response()
}

impl Releases {
    fn saw(&self, prefix: &str) -> bool {
        self.seen.lock().is_ok_and(|seen| seen.iter().any(|s| s.starts_with(prefix)))
    }

    async fn wait_for_request(&self, prefix: &str) -> Result<String> {
        let deadline = tokio::time::Instant::now() + UI_TIMEOUT;
        loop {
            if let Some(found) = self
                .seen
                .lock()
                .ok()
                .and_then(|seen| seen.iter().find(|s| s.starts_with(prefix)).cloned())
            {
                return Ok(found);
            }
            if tokio::time::Instant::now() >= deadline {
                let seen = self.seen.lock().map(|s| s.clone()).unwrap_or_default();
                bail!("no request for {prefix}; the release server saw {seen:?}");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

async fn wait_for_text_containing(app: &DesktopApp, id: &str, part: &str) -> Result<String> {
    let deadline = tokio::time::Instant::now() + UI_TIMEOUT;
    loop {
        let text = match app.testid(id).await {
            Ok(element) => element.text().await.unwrap_or_default(),
            Err(_) => String::new(),
        };
        if text.contains(part) {
            return Ok(text);
        }
        if tokio::time::Instant::now() >= deadline {
            bail!("{id} says {text:?}, not something with {part:?}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn shot(app: &DesktopApp, name: &str) -> Result<()> {
    let dir = iotchat_tests::workspace_root().join("docs").join("screenshots");
    app.screenshot_to(&dir, name).await?;
    Ok(())
}

async fn set_theme(app: &DesktopApp, theme: &str) -> Result<()> {
    app.testid("setting-theme").await?.select_by_value(theme).await?;
    tokio::time::sleep(Duration::from_millis(300)).await; // repainted
    Ok(())
}

/// The processes running `exe` (as `/proc/<pid>/exe` names it).
fn running(exe: &Path) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else { return Vec::new() };
    entries
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| std::fs::read_link(format!("/proc/{pid}/exe")).is_ok_and(|e| e == exe))
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn version_a_finds_b_on_its_channel_refuses_tampering_and_downgrades_and_becomes_b()
-> Result<()> {
    let (a, b) = (build("IOTCHAT_UPDATE_A_BIN")?, build("IOTCHAT_UPDATE_B_BIN")?);
    let (a_version, b_version) = (version_of(&a)?, version_of(&b)?);
    assert_eq!((a_version.as_str(), b_version.as_str()), ("1.0.0", "1.1.0-beta.1"));
    let signature = std::fs::read_to_string(format!("{}.sig", b.display()))
        .context("B's signature (made by cargo xtask test)")?;

    // A scratch install of A, in a folder of its own.
    let install = tempfile::tempdir()?;
    let exe = install.path().join("iotchat-desktop");
    std::fs::copy(&a, &exe)?;
    let a_bytes = std::fs::read(&a)?;
    let b_bytes = std::fs::read(&b)?;

    // The release server on 127.0.0.1.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}", listener.local_addr()?);
    let release = |version: &str| {
        serde_json::json!({
            "version": version,
            "notes": NOTES,
            "pub_date": "2026-12-01T12:00:00Z",
            "platforms": { "linux-x86_64": {
                "url": format!("{base}/download/iotchat-desktop"),
                "signature": signature.trim(),
            }},
        })
    };
    let releases = Releases {
        manifests: Arc::new(Mutex::new(vec![
            ("stable".to_owned(), release(STABLE_VERSION)),
            ("beta".to_owned(), release(&b_version)),
        ])),
        package: Arc::new(b_bytes.clone()),
        tampered: Arc::new(true.into()),
        seen: Arc::default(),
    };
    let router = axum::Router::new()
        .route("/{channel}/latest.json", axum::routing::get(manifest))
        .route("/download/iotchat-desktop", axum::routing::get(package))
        .with_state(releases.clone());
    tokio::spawn(async move { axum::serve(listener, router).await });

    let server_dir = tempfile::tempdir()?;
    let config = iotchat_server::config::Config::for_data_dir(server_dir.path())?;
    let server =
        iotchat_server::start(&config, tokio::net::TcpListener::bind("127.0.0.1:0").await?).await?;
    let app_data = tempfile::tempdir()?;
    let env = [
        ("IOTCHAT_SERVER", format!("http://{}", server.addr())),
        ("IOTCHAT_DATA_DIR", app_data.path().display().to_string()),
        ("IOTCHAT_KEYCHAIN_SERVICE", format!("iotchat-e2e-{}", uuid::Uuid::new_v4())),
        (
            "IOTCHAT_UPDATE_ENDPOINT",
            format!(
                "{base}/{{{{channel}}}}/latest.json?current={{{{current_version}}}}&target={{{{target}}}}&arch={{{{arch}}}}"
            ),
        ),
    ];
    let desktop = Desktop::start(|_| async { Ok(()) }).await?;
    let app = DesktopApp::open(Arc::clone(&desktop), &exe, &env).await?;

    // Chat is not held up by the updater.
    app.click("go-register").await?;
    app.type_into("register-username", "ursula").await?;
    app.type_into("register-email", "ursula@example.com").await?;
    app.type_into("register-password", PASSWORD).await?;
    app.click("register-submit").await?;
    app.testid("main-screen").await?;

    // At start A asks the stable channel, saying what it is.
    let asked = releases.wait_for_request("/stable/latest.json").await?;
    assert_eq!(asked, "/stable/latest.json?current=1.0.0&target=linux&arch=x86_64");
    app.click("open-settings").await?;
    // Stable's 0.9.0 is older than A: refused, and said so.
    let status = wait_for_text_containing(&app, "update-status", "newer than").await?;
    assert!(status.contains(STABLE_VERSION) && status.contains("does not go back"), "{status}");
    assert!(app.wait_gone("update-banner").await.is_ok(), "no banner for an automatic check");
    app.click("update-check").await?;
    let ahead =
        wait_for_text_containing(&app, "update-ahead", "will arrive when it overtakes").await?;
    assert!(ahead.contains("You have 1.0.0"), "{ahead}");
    app.click("update-later").await?;
    app.wait_gone("update-banner").await?;
    assert!(!releases.saw("/beta/"), "the beta channel is not asked while on stable");

    // Switching to beta asks the beta channel at once, and B is offered with its notes.
    app.testid("setting-update-channel").await?.select_by_value("beta").await?;
    let asked = releases.wait_for_request("/beta/latest.json").await?;
    assert!(asked.contains("current=1.0.0"), "{asked}");
    let offered = wait_for_text_containing(&app, "update-version", &b_version).await?;
    assert_eq!(offered, format!("IoT Chat {b_version} is available"));
    for theme in ["light", "dark"] {
        set_theme(&app, theme).await?;
        app.client()
            .execute(
                "document.querySelector('[data-testid=\"app-info\"]').scrollIntoView({block: 'end'})",
                vec![],
            )
            .await?;
        shot(&app, &format!("settings-updates-{theme}")).await?;
    }
    for theme in ["dark", "light"] {
        app.click("open-settings").await?;
        set_theme(&app, theme).await?;
        app.click("browse-rooms").await?;
        app.testid("update-banner").await?;
        if theme == "dark" {
            // The release notes, unfolded.
            app.client().find(Locator::Css(".update-notes summary")).await?.click().await?;
        }
        shot(&app, &format!("update-banner-{theme}")).await?;
    }

    // A package that does not match its signature is refused; A goes on as it was.
    app.click("update-install").await?;
    let error = wait_for_text_containing(&app, "update-error", "signature").await?;
    assert!(error.contains("was not installed"), "{error}");
    assert!(releases.saw("/download/iotchat-desktop"));
    assert!(std::fs::read(&exe)? == a_bytes, "the install is untouched");
    app.testid("main-screen").await?;

    // The genuine package: installed over the scratch install, and the app restarts into it.
    releases.tampered.store(false, std::sync::atomic::Ordering::SeqCst);
    let before: Vec<u32> = running(&exe);
    app.click("update-retry").await?;
    let deadline = tokio::time::Instant::now() + UI_TIMEOUT;
    while std::fs::read(&exe).map(|bytes| bytes != b_bytes).unwrap_or(true) {
        if tokio::time::Instant::now() >= deadline {
            bail!("{} is still not B after installing", exe.display());
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(version_of(&exe)?, b_version, "the installed app reports B's version");
    let restarted = loop {
        let now: Vec<u32> = running(&exe).into_iter().filter(|pid| !before.contains(pid)).collect();
        if let Some(pid) = now.first() {
            break *pid;
        }
        if tokio::time::Instant::now() >= deadline {
            bail!("the app did not restart into B (running before: {before:?})");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    drop(app); // the WebDriver session of A
    let _ = std::process::Command::new("kill").arg(restarted.to_string()).status();

    // B, started from the same install, is on beta (the setting was kept). Back on stable, the
    // older stable release is not offered: it will come once it overtakes B.
    let app = DesktopApp::open(Arc::clone(&desktop), &exe, &env).await?;
    app.testid("main-screen").await?;
    app.click("open-settings").await?;
    wait_for_text_containing(&app, "app-info", &format!("IoT Chat {b_version}")).await?;
    app.testid("setting-update-channel").await?.select_by_value("stable").await?;
    let status = wait_for_text_containing(&app, "update-status", "newer than").await?;
    assert!(
        status.contains(&format!("You have {b_version}")) && status.contains(STABLE_VERSION),
        "{status}"
    );
    app.close().await?;
    Ok(())
}
