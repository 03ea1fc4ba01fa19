//! The project's commands. `cargo xtask run` starts the app; `cargo xtask test` runs every test.
//! Both first install what this machine lacks (and skip what it has), saying what they do.

mod setup;
mod sh;

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

use sh::{Cmd, step};

const USAGE: &str = "\
usage: cargo xtask <command>

commands:
  run      install what is missing, build the UI and the app, and open the app
  test     install what is missing, then run every check and test (what CI runs)
  setup    only install what is missing
  app      build the UI and the release app (what `run` starts), without running it
  icons    regenerate icons/ from icons/icon.svg (uses the Tauri CLI)
  bench    the desktop benchmark beside an empty Tauri + Leptos app [--runs N]; writes
           docs/benchmarks/desktop.md
";

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("run") => run(),
        Some("test") => test(),
        Some("setup") => setup::ensure(setup::Purpose::Test).map(|_| ()),
        Some("app") => setup::ensure(setup::Purpose::Run).and_then(|tools| {
            build_ui(&tools)?;
            let app = build_app()?;
            step(&format!("Built {}", app.display()));
            Ok(())
        }),
        Some("icons") => icons(),
        Some("bench") => bench(&args[1..]),
        Some("help" | "--help" | "-h") => {
            print!("{USAGE}");
            Ok(())
        }
        Some(other) => Err(anyhow::anyhow!("unknown command {other:?}\n\n{USAGE}")),
        None => Err(anyhow::anyhow!("no command given\n\n{USAGE}")),
    };
    if let Err(error) = result {
        eprintln!("\nxtask failed: {error:#}");
        std::process::exit(1);
    }
}

/// The workspace root.
fn root() -> PathBuf {
    // `cargo run` (the alias behind `cargo xtask`) sets it for this checkout. The compiled-in
    // value is only a fallback: cargo reuses a build of xtask made from another checkout that
    // shares the target directory, and that value names the other checkout.
    let dir = std::env::var_os("CARGO_MANIFEST_DIR")
        .map_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")), PathBuf::from);
    dir.parent().expect("xtask/ sits in the workspace").into()
}

/// Cargo's target directory for this workspace (honours `CARGO_TARGET_DIR`).
fn target_dir() -> Result<PathBuf> {
    let out = Cmd::new("cargo")
        .args(["metadata", "--format-version", "1", "--no-deps"])
        .dir(root())
        .output()?;
    let marker = "\"target_directory\":\"";
    let start = out.find(marker).context("cargo metadata has no target_directory")? + marker.len();
    let end = out[start..].find('"').context("cargo metadata is malformed")? + start;
    Ok(PathBuf::from(out[start..end].replace("\\\\", "\\")))
}

/// Builds the UI into a staging directory, then copies into `ui/dist` only what changed: trunk
/// rewrites every file, and a new modification time alone would make cargo rebuild the app.
fn build_ui(tools: &setup::Tools) -> Result<()> {
    // trunk runs offline (it must not fetch tools of its own), so cargo fetches the crates first.
    step("Fetching the crates the lock file names (cargo fetch)");
    Cmd::new("cargo").arg("fetch").dir(root()).run()?;
    step("Building the UI (Leptos → wasm, trunk)");
    let staging = target_dir()?.join("ui-dist-staging");
    Cmd::new("trunk")
        .args(["build", "--release", "--offline", "--dist"])
        .arg(&staging)
        .dir(root().join("ui"))
        .path_prepend(&tools.cargo_bin)
        .run()?;
    let changed = sync_dir(&staging, &root().join("ui").join("dist"))?;
    println!("    ui/dist: {changed} file(s) changed");
    Ok(())
}

/// Makes `to` hold exactly the files of `from` (flat directories), touching only files whose
/// content differs. Returns how many files were written or removed.
fn sync_dir(from: &Path, to: &Path) -> Result<usize> {
    std::fs::create_dir_all(to)?;
    let mut changed = 0;
    let mut wanted = std::collections::HashSet::new();
    for entry in std::fs::read_dir(from).with_context(|| format!("reading {}", from.display()))? {
        let entry = entry?;
        if !entry.file_type()?.is_file() {
            bail!("unexpected directory {} in the UI build", entry.path().display());
        }
        let name = entry.file_name();
        let content = std::fs::read(entry.path())?;
        let target = to.join(&name);
        if std::fs::read(&target).ok().as_deref() != Some(content.as_slice()) {
            std::fs::write(&target, content)?;
            changed += 1;
        }
        wanted.insert(name);
    }
    for entry in std::fs::read_dir(to)? {
        let entry = entry?;
        if !wanted.contains(&entry.file_name()) {
            std::fs::remove_file(entry.path())?;
            changed += 1;
        }
    }
    Ok(changed)
}

fn build_app() -> Result<PathBuf> {
    step("Building the desktop app with the UI embedded (release)");
    Cmd::new("cargo")
        .args([
            "build",
            "--release",
            "--package",
            "iotchat-desktop",
            "--features",
            "custom-protocol",
        ])
        .dir(root())
        .run()?;
    Ok(target_dir()?
        .join("release")
        .join(format!("iotchat-desktop{}", std::env::consts::EXE_SUFFIX)))
}

/// Where `cargo xtask run` serves the local backend.
const LOCAL_SERVER: &str = "127.0.0.1:8787";

/// The local server started for `cargo xtask run`, stopped (SIGTERM, graceful) when dropped.
struct LocalServer(Option<std::process::Child>);

impl Drop for LocalServer {
    fn drop(&mut self) {
        if let Some(mut child) = self.0.take() {
            let _ = Cmd::new("kill").args(["-TERM", &child.id().to_string()]).succeeds();
            let _ = child.wait();
        }
    }
}

fn start_local_server() -> Result<LocalServer> {
    let addr: std::net::SocketAddr = LOCAL_SERVER.parse()?;
    if std::net::TcpStream::connect_timeout(&addr, std::time::Duration::from_millis(300)).is_ok() {
        println!("    something already listens on {LOCAL_SERVER}; using it as the local server");
        return Ok(LocalServer(None));
    }
    step("Building and starting iotchat-server, the local backend (release)");
    Cmd::new("cargo")
        .args(["build", "--release", "--package", "iotchat-server"])
        .dir(root())
        .run()?;
    let exe = target_dir()?
        .join("release")
        .join(format!("iotchat-server{}", std::env::consts::EXE_SUFFIX));
    let child = std::process::Command::new(&exe)
        .args(["serve", "--listen", LOCAL_SERVER])
        .spawn()
        .with_context(|| format!("starting {}", exe.display()))?;
    let server = LocalServer(Some(child));
    for _ in 0..100 {
        if std::net::TcpStream::connect_timeout(&addr, std::time::Duration::from_millis(100))
            .is_ok()
        {
            println!("    iotchat-server is serving on http://{LOCAL_SERVER}");
            return Ok(server);
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    bail!("iotchat-server did not start listening on {LOCAL_SERVER} within 10 s")
}

fn run() -> Result<()> {
    let tools = setup::ensure(setup::Purpose::Run)?;
    build_ui(&tools)?;
    let app = build_app()?;
    if cfg!(target_os = "linux")
        && std::env::var_os("DISPLAY").is_none()
        && std::env::var_os("WAYLAND_DISPLAY").is_none()
    {
        bail!(
            "the app is built ({}), but there is no display to open it on: run this from a \
             desktop session, or headless under `xvfb-run -a cargo xtask run`",
            app.display()
        );
    }
    let _server = start_local_server()?;
    step("Starting IoT Chat (close the window to stop; the local server stops with it)");
    Cmd::new(app).dir(root()).run()
}

fn test() -> Result<()> {
    let tools = setup::ensure(setup::Purpose::Test)?;
    let root = root();

    step("Checking formatting (cargo fmt --check)");
    Cmd::new("cargo").args(["fmt", "--all", "--check"]).dir(&root).run()?;

    build_ui(&tools)?;

    step("Linting the native crates (clippy -D warnings)");
    Cmd::new("cargo").args(["clippy", "--all-targets", "--", "-D", "warnings"]).dir(&root).run()?;

    step("Linting the UI for wasm32 (clippy -D warnings)");
    Cmd::new("cargo")
        .args(["clippy", "--package", "iotchat-ui", "--package", "iotchat-baseline-ui"])
        .args(["--target", "wasm32-unknown-unknown"])
        .args(["--", "-D", "warnings"])
        .dir(&root)
        .run()?;

    step("Checking that the protocol crate builds for wasm32-unknown-unknown");
    Cmd::new("cargo")
        .args(["build", "--package", "iotchat-protocol", "--target", "wasm32-unknown-unknown"])
        .dir(&root)
        .run()?;

    let app = build_app()?;

    step("Building iotchat-server and the iotchat CLI (tests run them as processes)");
    Cmd::new("cargo")
        .args(["build", "--package", "iotchat-server", "--package", "iotchat-client", "--bins"])
        .dir(&root)
        .run()?;
    let exe = |name: &str| -> Result<PathBuf> {
        Ok(target_dir()?.join("debug").join(format!("{name}{}", std::env::consts::EXE_SUFFIX)))
    };
    let server = exe("iotchat-server")?;

    step("Running every test (unit, integration, desktop end to end)");
    Cmd::new("cargo")
        .args(["test", "--no-fail-fast"])
        .dir(&root)
        .path_prepend(&tools.cargo_bin)
        .env("IOTCHAT_APP_BIN", &app)
        .env("IOTCHAT_SERVER_BIN", &server)
        .env("IOTCHAT_CLI_BIN", exe("iotchat")?)
        .env("IOTCHAT_PEERS_PYTHON", tools.peers_python.as_deref().unwrap_or(Path::new("python3")))
        .env("IOTCHAT_SCREENSHOT_DIR", target_dir()?.join("screenshots"))
        .run()?;

    step("All checks and tests passed");
    Ok(())
}

fn bench(args: &[String]) -> Result<()> {
    let runs = match args {
        [] => "5".to_owned(),
        [flag, n] if flag == "--runs" && n.parse::<u8>().is_ok() => n.clone(),
        _ => bail!("usage: cargo xtask bench [--runs N]"),
    };
    let tools = setup::ensure(setup::Purpose::Test)?;
    let root = root();
    build_ui(&tools)?;
    let app = build_app()?;

    step("Building the baseline: an empty Tauri 2 window with an empty Leptos page (release)");
    Cmd::new("trunk")
        .args(["build", "--release", "--offline"])
        .dir(root.join("tests").join("baseline").join("ui"))
        .path_prepend(&tools.cargo_bin)
        .run()?;
    Cmd::new("cargo")
        .args(["clippy", "--package", "iotchat-baseline", "--", "-D", "warnings"])
        .dir(&root)
        .run()?;
    Cmd::new("cargo")
        .args(["build", "--release", "--package", "iotchat-baseline"])
        .dir(&root)
        .run()?;
    let baseline = target_dir()?
        .join("release")
        .join(format!("iotchat-baseline{}", std::env::consts::EXE_SUFFIX));

    step("Running the desktop benchmark (about 3 minutes)");
    Cmd::new("cargo")
        .args(["run", "--package", "iotchat-tests", "--example", "desktop-bench", "--"])
        .args(["--runs", &runs, "--out"])
        .arg(root.join("docs").join("benchmarks").join("desktop.md"))
        .dir(&root)
        .path_prepend(&tools.cargo_bin)
        .env("IOTCHAT_APP_BIN", &app)
        .env("IOTCHAT_BASELINE_BIN", &baseline)
        .run()
}

fn icons() -> Result<()> {
    let tools = setup::ensure(setup::Purpose::Run)?;
    let root = root();
    let png = target_dir()?.join("icon-source.png");
    step("Rendering icons/icon.svg to a 1024 px PNG (ImageMagick)");
    Cmd::new("convert")
        .args(["-background", "none", "-density", "300"])
        .arg(root.join("icons/icon.svg"))
        .args(["-resize", "1024x1024"])
        .arg(&png)
        .run()
        .context("ImageMagick's convert is needed: apt-get install imagemagick")?;
    step("Generating the platform icons (tauri icon)");
    let out = tempdir_in(&target_dir()?)?;
    Cmd::new(&tools.tauri_cli).arg("icon").arg(&png).arg("-o").arg(&out).run()?;
    for name in [
        "32x32.png",
        "64x64.png",
        "128x128.png",
        "128x128@2x.png",
        "icon.png",
        "icon.icns",
        "icon.ico",
    ] {
        std::fs::copy(out.join(name), root.join("icons").join(name))
            .with_context(|| format!("copying {name}"))?;
    }
    std::fs::remove_dir_all(&out)?;
    step("Tray icons: the app icon, and the same with an unread dot");
    let icons = root.join("icons");
    std::fs::copy(icons.join("64x64.png"), icons.join("tray.png"))?;
    Cmd::new("convert")
        .arg(icons.join("64x64.png"))
        .args(["-fill", "#e5484d", "-stroke", "white", "-strokewidth", "3"])
        .args(["-draw", "circle 48,16 48,4"])
        .arg(icons.join("tray-unread.png"))
        .run()?;
    Ok(())
}

fn tempdir_in(parent: &Path) -> Result<PathBuf> {
    let dir = parent.join(format!("xtask-icons-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}
