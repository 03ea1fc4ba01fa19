//! Support for the cross-crate tests: the real desktop app in its own headless session.
//!
//! [`DesktopApp::launch`] starts a private X server (Xvfb), a private D-Bus session bus,
//! `tauri-driver` (which starts WebKitWebDriver, which starts the app) on loopback ports of its
//! own, and a WebDriver client. Everything runs with a throw-away HOME, so tests never touch the
//! user's data, and everything is stopped when the value is dropped.

pub mod browser;
pub mod notifications;
mod process;
pub mod tray;

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use fantoccini::elements::Element;
use fantoccini::{Client, ClientBuilder, Locator};

use process::{Background, free_loopback_port, wait_for_port};

/// A loopback port nobody listens on right now.
pub fn free_port() -> Result<u16> {
    free_loopback_port()
}

/// How long an element may take to appear before a test fails.
pub const UI_TIMEOUT: Duration = Duration::from_secs(30);

/// The workspace root (the directory holding `tauri.conf.json`).
pub fn workspace_root() -> PathBuf {
    manifest_dir().parent().expect("tests/ sits in the workspace").into()
}

/// The `tests/` directory of the checkout being tested. Cargo sets `CARGO_MANIFEST_DIR` when it
/// runs a test; the compiled-in value is a fallback, as a binary cargo reused from another
/// checkout sharing the target directory would name that checkout.
pub fn manifest_dir() -> PathBuf {
    std::env::var_os("CARGO_MANIFEST_DIR")
        .map_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")), PathBuf::from)
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

/// The benchmarks' baseline, an empty Tauri + Leptos app: `IOTCHAT_BASELINE_BIN`, or the
/// release build in the target dir (`cargo xtask bench` builds it).
pub fn baseline_binary() -> Result<PathBuf> {
    let path = match std::env::var_os("IOTCHAT_BASELINE_BIN") {
        Some(path) => PathBuf::from(path),
        None => target_dir()?.join("release").join("iotchat-baseline"),
    };
    if !path.is_file() {
        bail!("the baseline app is not built at {}: run `cargo xtask bench`", path.display());
    }
    Ok(path)
}

/// A debug-built executable of the workspace: `$env`, or `<target>/debug/<name>`.
fn debug_binary(env: &str, name: &str, package: &str) -> Result<PathBuf> {
    let path = match std::env::var_os(env) {
        Some(path) => PathBuf::from(path),
        None => target_dir()?.join("debug").join(format!("{name}{}", std::env::consts::EXE_SUFFIX)),
    };
    if !path.is_file() {
        bail!(
            "{name} is not built at {}: run `cargo xtask test` (or `cargo build -p {package}`) \
             first",
            path.display()
        );
    }
    Ok(path)
}

/// The `iotchat-server` executable: `IOTCHAT_SERVER_BIN`, or the debug build in the target dir.
pub fn server_binary() -> Result<PathBuf> {
    debug_binary("IOTCHAT_SERVER_BIN", "iotchat-server", "iotchat-server")
}

/// The `iotchat` CLI executable: `IOTCHAT_CLI_BIN`, or the debug build in the target dir.
pub fn cli_binary() -> Result<PathBuf> {
    debug_binary("IOTCHAT_CLI_BIN", "iotchat", "iotchat-client")
}

/// The load generator: `IOTCHAT_LOADGEN_BIN`, or the debug build in the target dir.
pub fn loadgen_binary() -> Result<PathBuf> {
    debug_binary("IOTCHAT_LOADGEN_BIN", "iotchat-loadgen", "iotchat-loadgen")
}

/// A Lambda function binary (`iotchat-lambda-api`, `-ingest`, `-presignup`): in
/// `IOTCHAT_LAMBDA_BIN_DIR` (set by `cargo xtask test`), or the debug build in the target dir.
pub fn lambda_binary(name: &str) -> Result<PathBuf> {
    let dir = match std::env::var_os("IOTCHAT_LAMBDA_BIN_DIR") {
        Some(dir) => PathBuf::from(dir),
        None => target_dir()?.join("debug"),
    };
    let path = dir.join(format!("{name}{}", std::env::consts::EXE_SUFFIX));
    if !path.is_file() {
        bail!(
            "{name} is not built at {}: run `cargo xtask test` (or `cargo build -p \
             iotchat-lambda`) first",
            path.display()
        );
    }
    Ok(path)
}

/// The `iotchat-infra` executable: `IOTCHAT_INFRA_BIN`, or the debug build in the target dir.
pub fn infra_binary() -> Result<PathBuf> {
    debug_binary("IOTCHAT_INFRA_BIN", "iotchat-infra", "iotchat-infra")
}

/// The Python that `cargo xtask test` prepares with the peers we did not write (boto3,
/// paho-mqtt, moto, cfn-lint): `IOTCHAT_PEERS_PYTHON`.
pub fn peers_python() -> Result<PathBuf> {
    std::env::var_os("IOTCHAT_PEERS_PYTHON").map(PathBuf::from).context(
        "IOTCHAT_PEERS_PYTHON names a Python with boto3, paho-mqtt and moto[server]: run \
         `cargo xtask test`, which prepares one",
    )
}

/// A private headless desktop: an X server (Xvfb), a D-Bus session bus and a throw-away HOME.
/// Apps opened in it with [`DesktopApp::open`] share them, so a second launch finds the data,
/// settings and window state the first one left.
#[derive(Debug)]
pub struct Desktop {
    display: String,
    bus_address: String,
    // Field order is drop order: the bus, then the X server, then the files.
    _dbus: Background,
    _xvfb: Background,
    home: tempfile::TempDir,
}

impl Desktop {
    /// Starts the X server and the bus; `before_app` runs once the bus is up (to own names on
    /// it, such as a notification server).
    pub async fn start<F, Fut>(before_app: F) -> Result<std::sync::Arc<Self>>
    where
        F: FnOnce(String) -> Fut,
        Fut: std::future::Future<Output = Result<()>>,
    {
        let home = tempfile::tempdir().context("creating a throw-away HOME")?;
        let runtime_dir = home.path().join("run");
        std::fs::create_dir_all(&runtime_dir)?;
        set_private(&runtime_dir)?;
        let (xvfb, display) = Background::xvfb().await?;
        let (dbus, bus_address) = Background::dbus_session().await?;
        before_app(bus_address.clone()).await?;
        Ok(std::sync::Arc::new(Self { display, bus_address, _dbus: dbus, _xvfb: xvfb, home }))
    }

    /// The D-Bus session bus address.
    pub fn bus_address(&self) -> &str {
        &self.bus_address
    }

    /// The throw-away HOME.
    pub fn home(&self) -> &Path {
        self.home.path()
    }

    /// `program`, set up to run on this desktop: its display, bus and HOME.
    pub fn command(&self, program: impl AsRef<std::ffi::OsStr>) -> std::process::Command {
        let home = self.home.path();
        let mut command = std::process::Command::new(program);
        command
            .env("DISPLAY", format!(":{}", self.display))
            .env("DBUS_SESSION_BUS_ADDRESS", &self.bus_address)
            // Without it WebKitGTK can paint an empty window under Xvfb.
            .env("WEBKIT_DISABLE_COMPOSITING_MODE", "1")
            .env("HOME", home)
            .env("XDG_CONFIG_HOME", home.join("config"))
            .env("XDG_DATA_HOME", home.join("data"))
            .env("XDG_CACHE_HOME", home.join("cache"))
            .env("XDG_RUNTIME_DIR", home.join("run"))
            .env_remove("WAYLAND_DISPLAY");
        command
    }

    /// The X windows on this display: id, title and whether it is shown (mapped).
    pub fn windows(&self) -> Result<Vec<XWindow>> {
        let out = std::process::Command::new("xwininfo")
            .args(["-root", "-children", "-display", &format!(":{}", self.display)])
            .output()
            .context("xwininfo (x11-utils) lists the windows")?;
        let text = String::from_utf8_lossy(&out.stdout);
        let mut windows = Vec::new();
        for line in text.lines() {
            let line = line.trim_start();
            let Some((id, rest)) = line.split_once(' ') else { continue };
            let Some(title) = rest.strip_prefix('"') else { continue };
            let Some(end) = title.find('"') else { continue };
            let info = std::process::Command::new("xwininfo")
                .args(["-id", id, "-display", &format!(":{}", self.display)])
                .output()
                .context("xwininfo describes a window")?;
            let shown = String::from_utf8_lossy(&info.stdout).contains("Map State: IsViewable");
            windows.push(XWindow { id: id.to_owned(), title: title[..end].to_owned(), shown });
        }
        Ok(windows)
    }

    /// Asks the window `id` to close, as a window manager does when its close button is
    /// clicked (a `WM_DELETE_WINDOW` message).
    pub fn close_window(&self, id: &str) -> Result<()> {
        use x11rb::connection::Connection as _;
        use x11rb::protocol::xproto::{ClientMessageEvent, ConnectionExt as _, EventMask};
        let window = x_window(id)?;
        let conn = self.x11()?;
        let atom = |name: &str| -> Result<u32> {
            Ok(conn.intern_atom(false, name.as_bytes())?.reply()?.atom)
        };
        let (protocols, delete) = (atom("WM_PROTOCOLS")?, atom("WM_DELETE_WINDOW")?);
        let event = ClientMessageEvent::new(32, window, protocols, [delete, 0, 0, 0, 0]);
        conn.send_event(false, window, EventMask::NO_EVENT, event)?;
        conn.flush()?;
        // A round trip, so the message is on the server before this returns.
        conn.get_input_focus()?.reply()?;
        Ok(())
    }

    /// Moves and resizes the window `id`, as a person does through the window manager.
    pub fn place_window(&self, id: &str, rect: Rect) -> Result<()> {
        use x11rb::connection::Connection as _;
        use x11rb::protocol::xproto::{ConfigureWindowAux, ConnectionExt as _};
        let conn = self.x11()?;
        let aux =
            ConfigureWindowAux::new().x(rect.x).y(rect.y).width(rect.width).height(rect.height);
        conn.configure_window(x_window(id)?, &aux)?;
        conn.flush()?;
        conn.get_input_focus()?.reply()?;
        Ok(())
    }

    /// Where the window `id` is and how big it is.
    pub fn window_rect(&self, id: &str) -> Result<Rect> {
        use x11rb::protocol::xproto::ConnectionExt as _;
        let conn = self.x11()?;
        let g = conn.get_geometry(x_window(id)?)?.reply()?;
        Ok(Rect {
            x: i32::from(g.x),
            y: i32::from(g.y),
            width: u32::from(g.width),
            height: u32::from(g.height),
        })
    }

    fn x11(&self) -> Result<x11rb::rust_connection::RustConnection> {
        let (conn, _) = x11rb::connect(Some(&format!(":{}", self.display)))
            .context("connecting to the X server")?;
        Ok(conn)
    }

    /// Waits until a window titled `title` is shown (`true`) or hidden (`false`), and returns
    /// it.
    pub async fn wait_for_window(&self, title: &str, shown: bool) -> Result<XWindow> {
        let deadline = tokio::time::Instant::now() + UI_TIMEOUT;
        loop {
            let windows = self.windows()?;
            if let Some(window) = windows.iter().find(|w| w.title == title && w.shown == shown) {
                return Ok(window.clone());
            }
            if tokio::time::Instant::now() >= deadline {
                let state = if shown { "shown" } else { "hidden" };
                bail!("no {state} window titled {title:?}; windows: {windows:?}");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The native titles of the X windows on this display (what a window manager shows).
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
}

/// A window's place on screen, in pixels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rect {
    pub x: i32,
    pub y: i32,
    pub width: u32,
    pub height: u32,
}

impl Rect {
    /// Whether `other` is this rectangle give or take `slack` pixels on every side (window
    /// frames and rounding differ between what is saved and what the X server reports).
    pub fn near(&self, other: &Rect, slack: u32) -> bool {
        let slack_i = i64::from(slack);
        (i64::from(self.x) - i64::from(other.x)).abs() <= slack_i
            && (i64::from(self.y) - i64::from(other.y)).abs() <= slack_i
            && self.width.abs_diff(other.width) <= slack
            && self.height.abs_diff(other.height) <= slack
    }
}

fn x_window(id: &str) -> Result<u32> {
    u32::from_str_radix(id.trim_start_matches("0x"), 16)
        .with_context(|| format!("{id:?} is not an X window id"))
}

/// A top-level X window.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct XWindow {
    pub id: String,
    pub title: String,
    /// Mapped and viewable: on screen, not hidden (to the tray, say).
    pub shown: bool,
}

/// The real app window, driven through WebDriver.
#[derive(Debug)]
pub struct DesktopApp {
    client: Client,
    app: PathBuf,
    /// When the session was asked for (which starts the app), in ms since the Unix epoch.
    opened_at_ms: f64,
    // Dropped after the client: tauri-driver (and the app under it), then the desktop.
    driver: Background,
    desktop: std::sync::Arc<Desktop>,
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
        let desktop = Desktop::start(before_app).await?;
        Self::open(desktop, &app_binary()?, env).await
    }

    /// Starts `app` on `desktop` through tauri-driver, with extra environment, and waits until
    /// WebDriver is attached to it.
    pub async fn open(
        desktop: std::sync::Arc<Desktop>,
        app: &Path,
        env: &[(&str, String)],
    ) -> Result<Self> {
        Self::open_with_args(desktop, app, env, &[]).await
    }

    /// [`DesktopApp::open`], with command-line arguments for the app.
    pub async fn open_with_args(
        desktop: std::sync::Arc<Desktop>,
        app: &Path,
        env: &[(&str, String)],
        args: &[&str],
    ) -> Result<Self> {
        let port = free_loopback_port()?;
        let native_port = free_loopback_port()?;
        let mut command = desktop.command("tauri-driver");
        for (key, value) in env {
            command.env(key, value);
        }
        command.arg("--port").arg(port.to_string());
        command.arg("--native-port").arg(native_port.to_string());
        let driver =
            Background::spawn(&mut command, "tauri-driver (cargo xtask test installs it)")?;
        wait_for_port(port, Duration::from_secs(20)).await.context("tauri-driver did not start")?;
        // tauri-driver listens before the WebKitWebDriver it started does, and a session asked
        // for in between fails ("connection refused" behind its proxy).
        wait_for_port(native_port, Duration::from_secs(20))
            .await
            .context("WebKitWebDriver (started by tauri-driver) did not start")?;

        let mut caps = serde_json::Map::new();
        caps.insert("browserName".into(), "wry".into());
        caps.insert(
            "tauri:options".into(),
            serde_json::json!({ "application": app.to_string_lossy(), "args": args }),
        );
        // Several rustls crypto back ends are compiled in; pick one (a second call is a no-op).
        let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
        let mut builder = ClientBuilder::rustls().context("setting up the WebDriver client")?;
        let opened_at_ms =
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?.as_secs_f64()
                * 1000.0;
        let client = builder
            .capabilities(caps)
            .connect(&format!("http://127.0.0.1:{port}"))
            .await
            .with_context(|| format!("starting {} through tauri-driver", app.display()))?;
        Ok(Self { client, app: app.to_owned(), opened_at_ms, driver, desktop })
    }

    /// When the WebDriver session was asked for, which starts the app (ms since the Unix epoch,
    /// comparable with the page's `Date.now()`).
    pub fn opened_at_ms(&self) -> f64 {
        self.opened_at_ms
    }

    /// The desktop the app runs on.
    pub fn desktop(&self) -> &std::sync::Arc<Desktop> {
        &self.desktop
    }

    /// The app's process and every process it started (WebKit's web and network processes),
    /// found through `/proc`.
    pub fn process_tree(&self) -> Result<Vec<u32>> {
        let app = std::fs::canonicalize(&self.app)?;
        let group = self.driver.id();
        let mut parents = Vec::new();
        let mut root = None;
        for entry in std::fs::read_dir("/proc")? {
            let Ok(pid) = entry?.file_name().to_string_lossy().parse::<u32>() else { continue };
            let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else { continue };
            // Fields after the command name, which is in parentheses and may hold spaces.
            let Some(after) = stat.rfind(')').map(|i| &stat[i + 2..]) else { continue };
            let fields: Vec<&str> = after.split_whitespace().collect();
            let (Some(ppid), Some(pgid)) = (
                fields.get(1).and_then(|f| f.parse::<u32>().ok()),
                fields.get(2).and_then(|f| f.parse::<u32>().ok()),
            ) else {
                continue;
            };
            parents.push((pid, ppid));
            let exe = std::fs::read_link(format!("/proc/{pid}/exe")).ok();
            if exe.as_deref() == Some(app.as_path()) && pgid == group {
                root = Some(pid);
            }
        }
        let root = root.with_context(|| format!("no running process of {}", app.display()))?;
        let mut tree = vec![root];
        let mut i = 0;
        while i < tree.len() {
            let parent = tree[i];
            tree.extend(parents.iter().filter(|(_, ppid)| *ppid == parent).map(|(pid, _)| *pid));
            i += 1;
        }
        Ok(tree)
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    /// The D-Bus session bus the app is on.
    pub fn bus_address(&self) -> &str {
        self.desktop.bus_address()
    }

    /// The native titles of the X windows on the app's display (what a window manager shows).
    pub fn window_titles(&self) -> Result<Vec<String>> {
        self.desktop.window_titles()
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
            match self.client.find_all(Locator::Css(&css)).await {
                Ok(found) if found.is_empty() => return Ok(()),
                Ok(_) => {}
                // Caught mid-render (often the element going away): look again.
                Err(e) if is_stale(&e) => {}
                Err(e) => return Err(e.into()),
            }
            if tokio::time::Instant::now() >= deadline {
                bail!("{id} is still shown");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Waits for the element with `data-testid="<id>"`.
    pub async fn testid(&self, id: &str) -> Result<Element> {
        let css = format!("[data-testid=\"{id}\"]");
        let deadline = tokio::time::Instant::now() + UI_TIMEOUT;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            match self.client.wait().at_most(left).for_element(Locator::Css(&css)).await {
                Ok(element) => return Ok(element),
                // The page re-rendered while the element was being found: find it again.
                Err(e) if is_stale(&e) && !left.is_zero() => {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                Err(e) => {
                    return Err(e).with_context(|| {
                        format!("no element with data-testid={id:?} within {UI_TIMEOUT:?}")
                    });
                }
            }
        }
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

    /// Clicks the element `id` (waiting for it to appear, and for the click to be done).
    pub async fn click(&self, id: &str) -> Result<()> {
        let deadline = tokio::time::Instant::now() + UI_TIMEOUT;
        loop {
            let element = self.testid(id).await?;
            let clicked = tokio::time::timeout(UI_TIMEOUT, element.click())
                .await
                .with_context(|| format!("clicking {id} did not return"))?;
            match clicked {
                Ok(_) => return Ok(()),
                // Re-rendered between finding and clicking: the new one is what a person sees.
                Err(e)
                    if e.is_stale_element_reference() && tokio::time::Instant::now() < deadline => {
                }
                Err(e) => return Err(e).with_context(|| format!("clicking {id}")),
            }
        }
    }

    /// Types `keys` into the element `id` as they are (without clearing it first).
    pub async fn send_keys(&self, id: &str, keys: &str) -> Result<()> {
        let deadline = tokio::time::Instant::now() + UI_TIMEOUT;
        loop {
            match self.testid(id).await?.send_keys(keys).await {
                Ok(()) => return Ok(()),
                // Re-rendered between finding and typing: type into the new one.
                Err(e)
                    if e.is_stale_element_reference() && tokio::time::Instant::now() < deadline => {
                }
                Err(e) => return Err(e).with_context(|| format!("typing into {id}")),
            }
        }
    }

    /// Replaces the text of the field `id` with `text`, typed.
    pub async fn type_into(&self, id: &str, text: &str) -> Result<()> {
        let deadline = tokio::time::Instant::now() + UI_TIMEOUT;
        loop {
            let field = self.testid(id).await?;
            let typed = match self.clear_field(&field).await {
                Ok(()) => field.send_keys(text).await.map_err(anyhow::Error::from),
                Err(e) => Err(e),
            };
            match typed {
                Ok(()) => return Ok(()),
                // Re-rendered while typing: type it all again into the new field.
                Err(e)
                    if e.downcast_ref::<fantoccini::error::CmdError>().is_some_and(is_stale)
                        && tokio::time::Instant::now() < deadline => {}
                Err(e) => return Err(e).with_context(|| format!("typing into {id}")),
            }
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
        let window = self.desktop.window_id("IoT Chat")?;
        let display = format!(":{}", self.desktop.display);
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

    /// Ends the WebDriver session, which closes the app, then stops the headless session.
    pub async fn close(self) -> Result<()> {
        self.client.close().await.context("closing the app")?;
        Ok(())
    }
}

/// The page re-rendered the element a command was about. WebKitWebDriver reports this while
/// finding an element ("Stale element found when trying to create the node handle") with a
/// status other than `stale element reference`, so the message is checked too.
fn is_stale(error: &fantoccini::error::CmdError) -> bool {
    error.is_stale_element_reference() || error.to_string().contains("Stale element")
}

fn set_private(dir: &Path) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
    Ok(())
}
