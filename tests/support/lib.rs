//! Support for the cross-crate tests: the real desktop app in its own headless session.
//!
//! [`DesktopApp::launch`] starts a private X server (Xvfb), a private D-Bus session bus,
//! `tauri-driver` (which starts WebKitWebDriver, which starts the app) on loopback ports of its
//! own, and a WebDriver client. Everything runs with a throw-away HOME, so tests never touch the
//! user's data, and everything is stopped when the value is dropped.

pub mod notifications;
mod process;

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use fantoccini::elements::Element;
use fantoccini::{Client, ClientBuilder, Locator};

use process::{Background, free_loopback_port, wait_for_port};

/// How long an element may take to appear before a test fails.
pub const UI_TIMEOUT: Duration = Duration::from_secs(30);

/// The workspace root (the directory holding `tauri.conf.json`).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("tests/ sits in the workspace").into()
}

/// Cargo's target directory, as seen from the running test binary (`<target>/<profile>/deps/`).
pub fn target_dir() -> Result<PathBuf> {
    if let Some(dir) = std::env::var_os("CARGO_TARGET_DIR") {
        return Ok(PathBuf::from(dir));
    }
    let exe = std::env::current_exe().context("locating the test binary")?;
    exe.ancestors()
        .nth(3)
        .map(Path::to_path_buf)
        .context("the test binary is not inside a cargo target directory")
}

/// The desktop binary under test: `IOTCHAT_APP_BIN`, or the release build in the target dir.
pub fn app_binary() -> Result<PathBuf> {
    let path = match std::env::var_os("IOTCHAT_APP_BIN") {
        Some(path) => PathBuf::from(path),
        None => target_dir()?.join("release").join("iotchat-desktop"),
    };
    if !path.is_file() {
        bail!(
            "the desktop app is not built at {}: run `cargo xtask test`, which builds the UI and \
             the app with the UI embedded before running the tests",
            path.display()
        );
    }
    Ok(path)
}

/// The `iotchat-server` executable: `IOTCHAT_SERVER_BIN`, or the debug build in the target dir.
pub fn server_binary() -> Result<PathBuf> {
    let path = match std::env::var_os("IOTCHAT_SERVER_BIN") {
        Some(path) => PathBuf::from(path),
        None => target_dir()?.join("debug").join("iotchat-server"),
    };
    if !path.is_file() {
        bail!(
            "iotchat-server is not built at {}: run `cargo xtask test` (or `cargo build -p \
             iotchat-server`) first",
            path.display()
        );
    }
    Ok(path)
}

/// The `iotchat` CLI executable: `IOTCHAT_CLI_BIN`, or the debug build in the target dir.
pub fn cli_binary() -> Result<PathBuf> {
    let path = match std::env::var_os("IOTCHAT_CLI_BIN") {
        Some(path) => PathBuf::from(path),
        None => target_dir()?.join("debug").join("iotchat"),
    };
    if !path.is_file() {
        bail!(
            "iotchat is not built at {}: run `cargo xtask test` (or `cargo build -p \
             iotchat-client`) first",
            path.display()
        );
    }
    Ok(path)
}

/// The real app window, driven through WebDriver.
#[derive(Debug)]
pub struct DesktopApp {
    client: Client,
    display: String,
    bus_address: String,
    // Dropped after the client: the processes the session runs on.
    _session: HeadlessSession,
}

#[derive(Debug)]
struct HeadlessSession {
    // Field order is drop order: driver (and the app under it) first, the X server last.
    _driver: Background,
    _dbus: Background,
    _xvfb: Background,
    _home: tempfile::TempDir,
}

impl DesktopApp {
    /// Starts the app in a fresh headless session and waits until WebDriver is attached to it.
    pub async fn launch() -> Result<Self> {
        Self::launch_with(&[], |_| async { Ok(()) }).await
    }

    /// [`DesktopApp::launch`] with extra environment for the app, and `before_app` run once the
    /// session bus is up (to own names on it, such as a notification server).
    pub async fn launch_with<F, Fut>(env: &[(&str, String)], before_app: F) -> Result<Self>
    where
        F: FnOnce(String) -> Fut,
        Fut: std::future::Future<Output = Result<()>>,
    {
        let app = app_binary()?;
        let home = tempfile::tempdir().context("creating a throw-away HOME")?;
        let runtime_dir = home.path().join("run");
        std::fs::create_dir_all(&runtime_dir)?;
        set_private(&runtime_dir)?;

        let (xvfb, display) = Background::xvfb().await?;
        let (dbus, bus_address) = Background::dbus_session().await?;
        before_app(bus_address.clone()).await?;

        let port = free_loopback_port()?;
        let native_port = free_loopback_port()?;
        let mut command = std::process::Command::new("tauri-driver");
        for (key, value) in env {
            command.env(key, value);
        }
        let driver = Background::spawn(
            command
                .arg("--port")
                .arg(port.to_string())
                .arg("--native-port")
                .arg(native_port.to_string())
                .env("DISPLAY", format!(":{display}"))
                .env("DBUS_SESSION_BUS_ADDRESS", &bus_address)
                // Without it WebKitGTK can paint an empty window under Xvfb.
                .env("WEBKIT_DISABLE_COMPOSITING_MODE", "1")
                .env("HOME", home.path())
                .env("XDG_CONFIG_HOME", home.path().join("config"))
                .env("XDG_DATA_HOME", home.path().join("data"))
                .env("XDG_CACHE_HOME", home.path().join("cache"))
                .env("XDG_RUNTIME_DIR", &runtime_dir)
                .env_remove("WAYLAND_DISPLAY"),
            "tauri-driver (cargo xtask test installs it)",
        )?;
        wait_for_port(port, Duration::from_secs(20)).await.context("tauri-driver did not start")?;

        let mut caps = serde_json::Map::new();
        caps.insert("browserName".into(), "wry".into());
        caps.insert(
            "tauri:options".into(),
            serde_json::json!({ "application": app.to_string_lossy() }),
        );
        // Several rustls crypto back ends are compiled in; pick one (a second call is a no-op).
        let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
        let client = ClientBuilder::rustls()
            .context("setting up the WebDriver client")?
            .capabilities(caps)
            .connect(&format!("http://127.0.0.1:{port}"))
            .await
            .context("starting the app through tauri-driver")?;

        Ok(Self {
            client,
            display,
            bus_address,
            _session: HeadlessSession { _driver: driver, _dbus: dbus, _xvfb: xvfb, _home: home },
        })
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    /// The D-Bus session bus the app is on.
    pub fn bus_address(&self) -> &str {
        &self.bus_address
    }

    /// The native titles of the X windows on the app's display (what a window manager shows).
    pub fn window_titles(&self) -> Result<Vec<String>> {
        let out = std::process::Command::new("xwininfo")
            .args(["-root", "-tree", "-display", &format!(":{}", self.display)])
            .output()
            .context("xwininfo (x11-utils) lists the windows")?;
        let text = String::from_utf8_lossy(&out.stdout);
        Ok(text
            .lines()
            .filter_map(|line| {
                let start = line.find('"')? + 1;
                let end = start + line[start..].find('"')?;
                Some(line[start..end].to_owned())
            })
            .collect())
    }

    /// Waits until some window's title is `expected`.
    pub async fn wait_for_window_title(&self, expected: &str) -> Result<()> {
        let deadline = tokio::time::Instant::now() + UI_TIMEOUT;
        loop {
            let titles = self.window_titles()?;
            if titles.iter().any(|t| t == expected) {
                return Ok(());
            }
            if tokio::time::Instant::now() >= deadline {
                bail!("no window titled {expected:?}; titles: {titles:?}");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Waits until the element `id` exists and its attribute `name` is `expected`.
    pub async fn wait_for_attr(&self, id: &str, name: &str, expected: &str) -> Result<()> {
        let deadline = tokio::time::Instant::now() + UI_TIMEOUT;
        loop {
            let value = match self.testid(id).await {
                Ok(element) => element.attr(name).await.ok().flatten(),
                Err(_) => None,
            };
            if value.as_deref() == Some(expected) {
                return Ok(());
            }
            if tokio::time::Instant::now() >= deadline {
                bail!("{id}[{name}] is {value:?}, not {expected:?}");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Waits until no element has `data-testid="<id>"`.
    pub async fn wait_gone(&self, id: &str) -> Result<()> {
        let deadline = tokio::time::Instant::now() + UI_TIMEOUT;
        let css = format!("[data-testid=\"{id}\"]");
        loop {
            let found = self.client.find_all(Locator::Css(&css)).await?;
            if found.is_empty() {
                return Ok(());
            }
            if tokio::time::Instant::now() >= deadline {
                bail!("{id} is still shown");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Waits for the element with `data-testid="<id>"`.
    pub async fn testid(&self, id: &str) -> Result<Element> {
        self.client
            .wait()
            .at_most(UI_TIMEOUT)
            .for_element(Locator::Css(&format!("[data-testid=\"{id}\"]")))
            .await
            .with_context(|| format!("no element with data-testid={id:?} within {UI_TIMEOUT:?}"))
    }

    /// Waits until the element `id` shows exactly `expected` and returns the last text seen.
    pub async fn wait_for_text(&self, id: &str, expected: &str) -> Result<String> {
        let deadline = tokio::time::Instant::now() + UI_TIMEOUT;
        loop {
            let text = match self.testid(id).await {
                Ok(element) => element.text().await.unwrap_or_default(),
                Err(_) => String::new(),
            };
            if text == expected || tokio::time::Instant::now() >= deadline {
                return Ok(text);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Empties a text field the way a person does (select all, delete), so the page sees the
    /// `input` events that WebDriver's own "clear" does not send.
    pub async fn clear_field(&self, field: &Element) -> Result<()> {
        use fantoccini::key::Key;
        let keys: String = [Key::Control.into(), 'a', Key::Null.into(), Key::Backspace.into()]
            .into_iter()
            .collect();
        field.send_keys(&keys).await.context("clearing a text field")?;
        Ok(())
    }

    /// Saves a screenshot of the window as `<name>.png` in `IOTCHAT_SCREENSHOT_DIR` (or
    /// `<target>/screenshots`), and returns its path.
    pub async fn screenshot(&self, name: &str) -> Result<PathBuf> {
        let dir = match std::env::var_os("IOTCHAT_SCREENSHOT_DIR") {
            Some(dir) => PathBuf::from(dir),
            None => target_dir()?.join("screenshots"),
        };
        self.screenshot_to(&dir, name).await
    }

    /// Saves a screenshot of the app's window as `<dir>/<name>.png`, taken from the X server
    /// (what a person would see; WebKitWebDriver's own screenshots hang now and then).
    pub async fn screenshot_to(&self, dir: &Path, name: &str) -> Result<PathBuf> {
        std::fs::create_dir_all(dir)?;
        let path = dir.join(format!("{name}.png"));
        let window = self.window_id("IoT Chat")?;
        let display = format!(":{}", self.display);
        let mut command = tokio::process::Command::new("import");
        command.args(["-display", &display, "-window"]);
        command.arg(window.as_deref().unwrap_or("root")).arg(&path).kill_on_drop(true);
        let status = tokio::time::timeout(UI_TIMEOUT, command.status())
            .await
            .with_context(|| format!("the screenshot {name} took over {UI_TIMEOUT:?}"))?
            .context("ImageMagick's import takes the screenshots")?;
        if !status.success() {
            bail!("import failed taking the screenshot {name}: {status}");
        }
        Ok(path)
    }

    /// The X id of the first window whose title starts with `prefix`.
    fn window_id(&self, prefix: &str) -> Result<Option<String>> {
        let out = std::process::Command::new("xwininfo")
            .args(["-root", "-tree", "-display", &format!(":{}", self.display)])
            .output()
            .context("xwininfo (x11-utils) lists the windows")?;
        let text = String::from_utf8_lossy(&out.stdout);
        Ok(text.lines().find_map(|line| {
            let line = line.trim_start();
            let (id, rest) = line.split_once(' ')?;
            let title = rest.strip_prefix('"')?;
            title.starts_with(prefix).then(|| id.to_owned())
        }))
    }

    /// Ends the WebDriver session, which closes the app, then stops the headless session.
    pub async fn close(self) -> Result<()> {
        self.client.close().await.context("closing the app")?;
        Ok(())
    }
}

fn set_private(dir: &Path) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
    Ok(())
}
