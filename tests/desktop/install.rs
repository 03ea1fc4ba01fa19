//! The `.deb` as a user gets it: installed with dpkg, started from its installed path with no
//! server running, chatting on "This computer" through the server it carries, its tray and
//! start-on-login entries pointing at the installed binary, and removed cleanly.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, Result, bail};
use fantoccini::Locator;
use iotchat_tests::tray::TrayHost;
use iotchat_tests::{DesktopApp, UI_TIMEOUT};

const PASSWORD: &str = "Correct-Horse-9";
const INSTALLED_APP: &str = "/usr/bin/iotchat-desktop";
const INSTALLED_SERVER: &str = "/usr/bin/iotchat-server";
/// Where "This computer" listens.
const LOCAL: &str = "127.0.0.1:8787";
/// Where it listens while hosting for the team, in this test.
const TEAM_LISTEN: &str = "127.0.0.2:8787";

/// `dpkg` as root: directly when the test runs as root, else through `sudo -n`.
fn dpkg(args: &[&str]) -> Result<std::process::Output> {
    let mut command = if is_root() {
        std::process::Command::new("dpkg")
    } else {
        let mut sudo = std::process::Command::new("sudo");
        sudo.args(["-n", "dpkg"]);
        sudo
    };
    let out = command.args(args).output().context("running dpkg")?;
    if !out.status.success() {
        bail!(
            "dpkg {} failed ({}): {}{}",
            args.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(out)
}

/// Runs `command` as the user `nobody` (another user on this machine), in the background.
fn as_nobody(command: &[&str]) -> Result<std::process::Child> {
    let mut setpriv = if is_root() {
        std::process::Command::new("setpriv")
    } else {
        let mut sudo = std::process::Command::new("sudo");
        sudo.args(["-n", "setpriv"]);
        sudo
    };
    setpriv
        .args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
        .args(command)
        .spawn()
        .context("starting a program as nobody (setpriv, util-linux)")
}

fn is_root() -> bool {
    std::process::Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|out| String::from_utf8_lossy(&out.stdout).trim() == "0")
}

fn deb_field(deb: &Path, field: &str) -> Result<String> {
    let out = std::process::Command::new("dpkg-deb").arg("-f").arg(deb).arg(field).output()?;
    Ok(String::from_utf8(out.stdout)?.trim().to_owned())
}

/// Removes the package when the test ends, however it ends.
struct Installed(String);

impl Drop for Installed {
    fn drop(&mut self) {
        let _ = dpkg(&["-r", &self.0]);
    }
}

/// The processes running `exe`.
fn running(exe: &Path) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else { return Vec::new() };
    entries
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| std::fs::read_link(format!("/proc/{pid}/exe")).is_ok_and(|e| e == exe))
        .collect()
}

async fn wait_until(what: &str, mut done: impl FnMut() -> bool) -> Result<()> {
    let deadline = tokio::time::Instant::now() + UI_TIMEOUT;
    while !done() {
        if tokio::time::Instant::now() >= deadline {
            bail!("timed out waiting until {what}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ok(())
}

/// A message of ours with this text, delivered, in the open room.
async fn wait_for_delivered(app: &DesktopApp, text: &str) -> Result<()> {
    wait_for_message(app, text, true).await
}

/// SHA-256 of a PEM certificate's DER, as the app shows it.
fn fingerprint(pem: &str) -> Result<String> {
    use base64::Engine as _;
    let body: String = pem.lines().filter(|line| !line.starts_with("-----")).collect();
    let der = base64::engine::general_purpose::STANDARD.decode(body.trim())?;
    let out = std::process::Command::new("sha256sum")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut child| {
            use std::io::Write as _;
            child.stdin.take().map(|mut stdin| stdin.write_all(&der)).transpose()?;
            child.wait_with_output()
        })?;
    let hex = String::from_utf8(out.stdout)?;
    let hex = hex.split_whitespace().next().context("sha256sum printed nothing")?;
    Ok(hex
        .to_uppercase()
        .as_bytes()
        .chunks(2)
        .map(|pair| String::from_utf8_lossy(pair).into_owned())
        .collect::<Vec<_>>()
        .join(":"))
}

/// A delivered message with this text in the open room, ours (`own`) or someone else's.
async fn wait_for_message(app: &DesktopApp, text: &str, own: bool) -> Result<()> {
    let selector = format!("[data-testid=\"message\"][data-own=\"{own}\"]");
    let deadline = tokio::time::Instant::now() + UI_TIMEOUT;
    loop {
        for message in app.client().find_all(Locator::Css(&selector)).await.unwrap_or_default() {
            let Ok(body) = message.find(Locator::Css("[data-testid=\"message-text\"]")).await
            else {
                continue;
            };
            if body.text().await.unwrap_or_default() == text
                && message.attr("data-state").await.ok().flatten().as_deref() == Some("delivered")
            {
                return Ok(());
            }
        }
        if tokio::time::Instant::now() >= deadline {
            bail!("{text:?} was not delivered");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_deb_installs_chats_on_this_computer_with_its_own_server_and_removes_cleanly()
-> Result<()> {
    let deb = PathBuf::from(std::env::var_os("IOTCHAT_DEB").context(
        "IOTCHAT_DEB is not set: `cargo xtask test` builds the .deb this test installs",
    )?);
    if std::net::TcpStream::connect(LOCAL).is_ok() {
        bail!("something already listens on {LOCAL}: stop it, this test needs the address free");
    }

    // What the package declares.
    let package = deb_field(&deb, "Package")?;
    let depends = deb_field(&deb, "Depends")?;
    for needed in ["libwebkit2gtk-4.1-0", "libayatana-appindicator3-1"] {
        assert!(depends.contains(needed), "Depends: {depends}");
    }

    dpkg(&["-i", &deb.display().to_string()])?;
    let installed = Installed(package.clone());
    assert!(Path::new(INSTALLED_APP).is_file() && Path::new(INSTALLED_SERVER).is_file());
    let listing = String::from_utf8(dpkg(&["-L", &package])?.stdout)?;
    let desktop_file = listing
        .lines()
        .find(|line| line.starts_with("/usr/share/applications/") && line.ends_with(".desktop"))
        .context("the package has no .desktop file")?;
    let entry = std::fs::read_to_string(desktop_file)?;
    for line in ["Exec=iotchat-desktop", "X-GNOME-UsesNotifications=true", "Name=IoT Chat"] {
        assert!(entry.lines().any(|l| l == line), "{desktop_file} lacks {line}:\n{entry}");
    }
    for size in ["16x16", "24x24", "32x32", "48x48", "64x64", "128x128", "256x256", "512x512"] {
        assert!(
            listing
                .lines()
                .any(|l| l.starts_with(&format!("/usr/share/icons/hicolor/{size}/apps/"))),
            "no {size} icon in:\n{listing}"
        );
    }

    // Started from where it is installed, with nothing listening on "This computer".
    let data = tempfile::tempdir()?;
    let env = [
        ("IOTCHAT_DATA_DIR", data.path().display().to_string()),
        ("IOTCHAT_KEYCHAIN_SERVICE", format!("iotchat-e2e-{}", uuid::Uuid::new_v4())),
        // Hosting for the team, on a loopback address of its own (tests stay on loopback).
        ("IOTCHAT_TEAM_LISTEN", TEAM_LISTEN.to_owned()),
        ("IOTCHAT_TEAM_HOST", "127.0.0.2".to_owned()),
    ];
    let slot = Arc::new(tokio::sync::Mutex::new(None::<TrayHost>));
    let filled = Arc::clone(&slot);
    let desktop = iotchat_tests::Desktop::start(|bus| async move {
        *filled.lock().await = Some(TrayHost::start(&bus).await?);
        Ok(())
    })
    .await?;
    let tray = slot.lock().await.take().context("the test tray")?;
    // Another user's program on "This computer"'s address is not trusted with a password.
    let mut squatter = as_nobody(&[
        // The system's Python: nobody can read a Python installed under root's home.
        "/usr/bin/python3",
        "-c",
        "import socket, time\ns = socket.socket()\ns.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\ns.bind(('127.0.0.1', 8787))\ns.listen()\ntime.sleep(120)",
    ])?;
    wait_until("the other user's listener is up", || std::net::TcpStream::connect(LOCAL).is_ok())
        .await?;
    let app = DesktopApp::open(Arc::clone(&desktop), Path::new(INSTALLED_APP), &env).await?;
    let refusal = app.testid("backend-problem").await?.text().await?;
    assert!(refusal.contains("Another user's program (uid 65534)"), "{refusal}");
    assert!(running(Path::new(INSTALLED_SERVER)).is_empty(), "no server of ours was needed yet");
    let _ = squatter.kill();
    let _ = squatter.wait();
    wait_until("the address is free", || std::net::TcpStream::connect(LOCAL).is_err()).await?;

    app.click("go-register").await?;
    app.type_into("register-username", "ingrid").await?;
    app.type_into("register-email", "ingrid@example.com").await?;
    app.type_into("register-password", PASSWORD).await?;
    app.click("register-submit").await?;
    app.testid("main-screen").await?;
    // The server is the installed one, started by the app, with its data in the app's folder.
    let servers = running(Path::new(INSTALLED_SERVER));
    assert_eq!(servers.len(), 1, "one bundled server runs: {servers:?}");
    assert!(data.path().join("server").join("profile.json").is_file());
    app.click("browse-rooms").await?;
    app.type_into("new-room-name", "Lobby").await?;
    app.click("new-room-submit").await?;
    assert_eq!(app.wait_for_text("room-title", "Lobby").await?, "Lobby");
    app.type_into("composer-input", "Installed and chatting").await?;
    app.click("composer-send").await?;
    wait_for_delivered(&app, "Installed and chatting").await?;

    // Hosting for the team: the server moves to a TLS address the others can use, shows its CA
    // fingerprint, and the app's own session carries on through it.
    app.click("open-settings").await?;
    app.click("setting-host-team").await?;
    let address = app.wait_for_text("team-address", "https://127.0.0.2:8787").await?;
    assert_eq!(address, "https://127.0.0.2:8787");
    let profile = iotchat_client::protocol::Profile::from_json(&std::fs::read(
        data.path().join("server").join("profile.json"),
    )?)?;
    let ca = profile.ca_certificate.as_deref().context("the team server's profile has its CA")?;
    assert_eq!(app.testid("team-fingerprint").await?.text().await?, fingerprint(ca)?);
    for theme in ["light", "dark"] {
        app.testid("setting-theme").await?.select_by_value(theme).await?;
        app.testid("team-address").await?;
        app.client()
            .execute(
                "document.querySelector('[data-testid=\"team-info\"]').scrollIntoView({block: 'center'})",
                vec![],
            )
            .await?;
        tokio::time::sleep(Duration::from_millis(300)).await;
        let dir = iotchat_tests::workspace_root().join("docs").join("screenshots");
        app.screenshot_to(&dir, &format!("settings-team-{theme}")).await?;
    }
    let teammate_dir = tempfile::tempdir()?;
    let teammate = iotchat_client::Client::new(iotchat_client::ClientConfig {
        backend: iotchat_client::Backend::fetch(&address, Some(ca)).await?,
        data_dir: teammate_dir.path().to_owned(),
        secrets: Arc::new(iotchat_client::MemoryStore::default()),
        connect: true,
        instance: None,
    })?;
    teammate.register("tomas", "tomas@example.com", PASSWORD).await?;
    teammate.login("tomas", PASSWORD).await?;
    let lobby = iotchat_client::protocol::RoomName::from_user_input("lobby")?;
    teammate.room_join(&lobby).await?;
    teammate.message_send(&lobby, "Hello from the team").await?;
    app.click("sidebar-room-lobby").await?;
    wait_for_message(&app, "Hello from the team", false).await?;
    app.type_into("composer-input", "Hosting works").await?;
    app.click("composer-send").await?;
    wait_for_message(&app, "Hosting works", true).await?;
    // Back to this computer only.
    app.click("open-settings").await?;
    app.click("setting-host-team").await?;
    app.wait_gone("team-info").await?;
    wait_until("the team address is closed", || std::net::TcpStream::connect(TEAM_LISTEN).is_err())
        .await?;
    app.click("sidebar-room-lobby").await?;
    app.type_into("composer-input", "Back home").await?;
    app.click("composer-send").await?;
    wait_for_message(&app, "Back home", true).await?;
    teammate.shutdown().await;

    // The tray icon belongs to the installed binary.
    let item = tray.item().await?;
    let owner = tray.owner_pid(&item).await?;
    assert_eq!(std::fs::read_link(format!("/proc/{owner}/exe"))?, Path::new(INSTALLED_APP));

    // Start on login: an autostart entry that runs the installed binary; off removes it.
    app.click("open-settings").await?;
    app.click("setting-start-on-login").await?;
    // auto-launch writes to ~/.config/autostart (it does not read XDG_CONFIG_HOME).
    let autostart = desktop.home().join(".config").join("autostart");
    wait_until("the autostart entry exists", || {
        std::fs::read_dir(&autostart).is_ok_and(|mut d| d.next().is_some())
    })
    .await?;
    let entry = std::fs::read_dir(&autostart)?.next().context("an autostart entry")??.path();
    let text = std::fs::read_to_string(&entry)?;
    assert!(
        text.lines().any(|l| l.starts_with("Exec=")
            && l.contains(INSTALLED_APP)
            && l.contains("--autostart")),
        "{}:\n{text}",
        entry.display()
    );

    // Quit from the tray: the bundled server stops with the app.
    app.click("setting-start-hidden").await?;
    tokio::time::sleep(Duration::from_millis(500)).await; // saved through the shell
    tray.click(&item, "Quit").await?;
    wait_until("the app and its server have stopped", || {
        running(Path::new(INSTALLED_APP)).is_empty()
            && running(Path::new(INSTALLED_SERVER)).is_empty()
    })
    .await?;
    drop(app);

    // Started at login with "start hidden": only the tray icon; "Open IoT Chat" shows it.
    let app = DesktopApp::open_with_args(
        Arc::clone(&desktop),
        Path::new(INSTALLED_APP),
        &env,
        &["--autostart"],
    )
    .await?;
    let item = tray.item_after(&item).await?;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let shown: Vec<_> =
        desktop.windows()?.into_iter().filter(|w| w.title == "IoT Chat" && w.shown).collect();
    assert!(shown.is_empty(), "the window stays hidden: {shown:?}");
    tray.click(&item, "Open IoT Chat").await?;
    desktop.wait_for_window("IoT Chat", true).await?;
    // Turning start-on-login off removes the entry.
    app.click("open-settings").await?;
    app.click("setting-start-on-login").await?;
    wait_until("the autostart entry is gone", || !entry.exists()).await?;
    tray.click(&item, "Quit").await?;
    wait_until("the app and its server have stopped", || {
        running(Path::new(INSTALLED_APP)).is_empty()
            && running(Path::new(INSTALLED_SERVER)).is_empty()
    })
    .await?;
    drop(app);

    // Removed cleanly: the files are gone and dpkg no longer knows the package.
    drop(installed);
    for path in [INSTALLED_APP, INSTALLED_SERVER, desktop_file] {
        assert!(!Path::new(path).exists(), "{path} is left after dpkg -r");
    }
    let status =
        std::process::Command::new("dpkg-query").args(["-W", "-f=${Status}", &package]).output()?;
    let status = String::from_utf8_lossy(&status.stdout);
    assert!(!status.contains("install ok installed"), "{package}: {status}");
    Ok(())
}
