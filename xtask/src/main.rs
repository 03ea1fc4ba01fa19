//! The project's commands. `cargo xtask run` starts the app; `cargo xtask test` runs every test.
//! Both first install what this machine lacks (and skip what it has), saying what they do.

mod aws;
mod fuzz;
mod release;
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
  prepare  build what the tests run (UI, apps, bundles, server, CLI) and print the environment
           that runs one test by hand: `env $(cargo xtask prepare | tail -1) cargo test …`
  app      build the UI and the release app (what `run` starts), without running it
  release  <version> [--channel stable|beta] [--out DIR]: this platform's installers with the
           server inside, signed for the updater (TAURI_SIGNING_PRIVATE_KEY), and the channel's
           latest.json, in a folder ready to upload
  icons    regenerate icons/ from icons/icon.svg (uses the Tauri CLI)
  bench    the desktop benchmark beside an empty Tauri + Leptos app [--runs N]; writes
           docs/benchmarks/desktop.md
           server [--runs N] [--quick]: the server under load beside Mosquitto (the load
           generator, release builds); writes docs/benchmarks/server.md
  aws      deploy [--stack NAME] [--region R] [--arch arm64|x86_64] [--endpoint-url URL]:
           build the Lambda functions and deploy backend/infra/template.yaml, then print the
           app's profile (also written to target/aws/<stack>/profile.json);
           teardown [--stack NAME] [--region R] [--endpoint-url URL]: detach the IoT policy
           everywhere, delete the stack and its artefacts bucket. See docs/aws.md
  fuzz     [--seconds N] [TARGET…]: run each fuzz target (payload, names, profile, sigv4, jwt,
           cursor, cognito) for N seconds (60) with cargo fuzz on nightly; not part of `test`
";

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("run") => run(),
        Some("test") => test(),
        Some("setup") => setup::ensure(setup::Purpose::Test).map(|_| ()),
        Some("prepare") => setup::ensure(setup::Purpose::Test).and_then(|tools| {
            build_ui(&tools)?;
            let env = prepare_tests(&tools)?;
            let line: Vec<String> =
                env.iter().map(|(k, v)| format!("{k}={}", v.to_string_lossy())).collect();
            println!("{}", line.join(" "));
            Ok(())
        }),
        Some("app") => setup::ensure(setup::Purpose::Run).and_then(|tools| {
            build_ui(&tools)?;
            let app = build_app()?;
            step(&format!("Built {}", app.display()));
            Ok(())
        }),
        Some("icons") => icons(),
        Some("release") => setup::ensure(setup::Purpose::Run)
            .and_then(|tools| release::release(&tools, &args[1..])),
        Some("bench") => bench(&args[1..]),
        Some("aws") => aws::aws(&args[1..]),
        Some("fuzz") => fuzz::fuzz(&args[1..]),
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

/// Above this, `prune_target` removes what later builds left behind.
const TARGET_BUDGET: u64 = 50 << 30;

/// A target directory reused run after run (CI keeps one) fills the disk: every change of a
/// dependency's features or of a test's dependencies leaves the earlier artefacts behind, a few
/// hundred megabytes each. Over the budget, this removes incremental caches and, in each
/// `deps` directory, every artefact that a newer one of the same name has replaced. An
/// artefact removed by mistake is only built again (cargo rebuilds a unit whose output is
/// missing).
fn prune_target(target: &Path) -> Result<()> {
    fn size(path: &Path) -> u64 {
        let Ok(meta) = std::fs::symlink_metadata(path) else { return 0 };
        if !meta.is_dir() {
            return meta.len();
        }
        std::fs::read_dir(path)
            .map(|entries| entries.flatten().map(|e| size(&e.path())).sum())
            .unwrap_or(0)
    }
    let before = size(target);
    if before <= TARGET_BUDGET {
        return Ok(());
    }
    step(&format!(
        "Pruning the target directory ({} GiB, over {} GiB)",
        before >> 30,
        TARGET_BUDGET >> 30
    ));
    let profiles = std::fs::read_dir(target)?.flatten().flat_map(|triple| {
        // target/<profile> and target/<triple>/<profile>
        let nested = std::fs::read_dir(triple.path()).into_iter().flatten().flatten();
        std::iter::once(triple.path()).chain(nested.map(|e| e.path())).collect::<Vec<_>>()
    });
    for profile in profiles {
        let incremental = profile.join("incremental");
        if incremental.is_dir() {
            std::fs::remove_dir_all(&incremental)?;
        }
        let Ok(entries) = std::fs::read_dir(profile.join("deps")) else { continue };
        // `<name>-<16 hex digits>[.<ext>]` → the newest of each name and extension stays.
        let mut newest: std::collections::HashMap<
            (String, String),
            (std::time::SystemTime, PathBuf),
        > = std::collections::HashMap::new();
        let mut stale = Vec::new();
        for entry in entries.flatten() {
            let file = entry.file_name().to_string_lossy().into_owned();
            let (stem, ext) = file.split_once('.').unwrap_or((&file, ""));
            let Some((name, hash)) = stem.rsplit_once('-') else { continue };
            if hash.len() != 16 || !hash.bytes().all(|b| b.is_ascii_hexdigit()) {
                continue;
            }
            let Ok(modified) = entry.metadata().and_then(|m| m.modified()) else { continue };
            match newest.entry((name.to_owned(), ext.to_owned())) {
                std::collections::hash_map::Entry::Vacant(slot) => {
                    slot.insert((modified, entry.path()));
                }
                std::collections::hash_map::Entry::Occupied(mut slot) => {
                    if modified > slot.get().0 {
                        stale.push(slot.insert((modified, entry.path())).1);
                    } else {
                        stale.push(entry.path());
                    }
                }
            }
        }
        for path in stale {
            let _ = std::fs::remove_file(path);
        }
    }
    println!("    {} GiB → {} GiB", before >> 30, size(target) >> 30);
    Ok(())
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
    build_app_with(&[], None)
}

/// Builds the release app with extra cargo `features` and, when given, a configuration merged
/// into tauri.conf.json (`TAURI_CONFIG`). Returns the binary, valid until the next build.
fn build_app_with(features: &[&str], tauri_config: Option<&str>) -> Result<PathBuf> {
    let mut all = vec!["custom-protocol"];
    all.extend_from_slice(features);
    let mut cmd = Cmd::new("cargo")
        .args(["build", "--release", "--package", "iotchat-desktop", "--features"])
        .arg(all.join(","))
        .dir(root());
    if let Some(config) = tauri_config {
        cmd = cmd.env("TAURI_CONFIG", config);
    }
    cmd.run()?;
    Ok(target_dir()?
        .join("release")
        .join(format!("iotchat-desktop{}", std::env::consts::EXE_SUFFIX)))
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
    // The app runs "This computer" itself, from the server beside it (as installed).
    step("Building iotchat-server, which the app starts for \"This computer\" (release)");
    Cmd::new("cargo")
        .args(["build", "--release", "--package", "iotchat-server"])
        .dir(root())
        .run()?;
    step("Starting IoT Chat (quit it to stop; the server it started stops with it)");
    Cmd::new(app).dir(root()).run()
}

fn test() -> Result<()> {
    let tools = setup::ensure(setup::Purpose::Test)?;
    let root = root();
    prune_target(&target_dir()?)?;

    step("Checking formatting (cargo fmt --check)");
    Cmd::new("cargo").args(["fmt", "--all", "--check"]).dir(&root).run()?;

    step("Linting the GitHub workflows (actionlint, with shellcheck on their scripts)");
    Cmd::new(tools.actionlint.as_deref().context("setup installs actionlint for tests")?)
        .args(["-shellcheck", "shellcheck"])
        .dir(&root)
        .run()?;

    step("Linting the AWS template (cfn-lint)");
    Cmd::new(tools.cfn_lint()?)
        .arg(root.join("backend").join("infra").join("template.yaml"))
        .dir(&root)
        .run()?;

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

    let env = prepare_tests(&tools)?;

    step(&format!(
        "Checking that the shell compiles for Windows (cargo check --target {})",
        setup::WINDOWS_TARGET
    ));
    Cmd::new("cargo")
        .args(["check", "--package", "iotchat-desktop", "--target", setup::WINDOWS_TARGET])
        .dir(&root)
        .run()?;
    println!(
        "    macOS is checked by the CI workflow on macOS: build scripts compile C and \
         Objective-C for it (objc2-exception-helper, SQLite, aws-lc), which needs a compiler \
         for Apple targets and the macOS SDK's headers, which no package registry carries"
    );

    step("Running every test (unit, integration, desktop end to end)");
    let mut test = Cmd::new("cargo")
        .args(["test", "--no-fail-fast"])
        .dir(&root)
        .path_prepend(&tools.cargo_bin);
    for (key, value) in &env {
        test = test.env(key, value);
    }
    test.run()?;

    step("All checks and tests passed");
    Ok(())
}

/// The version `app` reports (`--version` prints "IoT Chat 1.2.3").
fn app_version(app: &Path) -> Result<String> {
    let out = Cmd::new(app).arg("--version").output()?;
    out.split_whitespace()
        .last()
        .map(str::to_owned)
        .with_context(|| format!("{} --version printed {out:?}", app.display()))
}

/// Builds everything the tests run as programs, and returns the environment that tells the
/// tests where it is.
fn prepare_tests(tools: &setup::Tools) -> Result<Vec<(&'static str, std::ffi::OsString)>> {
    // The builds for the updater test first: each leaves its binary where the next one goes.
    let updates = release::update_test_builds(tools)?;
    let app = build_app()?;
    step("Building the .deb and .rpm that the install test installs");
    let bundles = release::bundle(tools, &app, &app_version(&app)?, false)?;
    let deb = bundles
        .iter()
        .find(|b| b.path.extension().is_some_and(|e| e == "deb"))
        .context("the bundler made no .deb")?;

    step(
        "Building iotchat-server, the iotchat CLI, the load generator, the Lambda functions and \
         iotchat-infra (tests run them as processes)",
    );
    Cmd::new("cargo")
        .args(["build", "--package", "iotchat-server", "--package", "iotchat-client"])
        .args(["--package", "iotchat-loadgen"])
        .args(["--package", "iotchat-lambda", "--package", "iotchat-infra", "--bins"])
        .dir(root())
        .run()?;
    let exe = |name: &str| -> Result<PathBuf> {
        Ok(target_dir()?.join("debug").join(format!("{name}{}", std::env::consts::EXE_SUFFIX)))
    };
    let python = tools.peers_python.clone().unwrap_or_else(|| PathBuf::from("python3"));
    Ok(vec![
        ("IOTCHAT_APP_BIN", app.into()),
        ("IOTCHAT_SERVER_BIN", exe("iotchat-server")?.into()),
        ("IOTCHAT_CLI_BIN", exe("iotchat")?.into()),
        ("IOTCHAT_LOADGEN_BIN", exe("iotchat-loadgen")?.into()),
        ("IOTCHAT_PEERS_PYTHON", python.into()),
        ("IOTCHAT_SCREENSHOT_DIR", target_dir()?.join("screenshots").into()),
        ("IOTCHAT_UPDATE_A_BIN", updates.a.into()),
        ("IOTCHAT_UPDATE_B_BIN", updates.b.into()),
        ("IOTCHAT_DEB", deb.path.clone().into()),
        ("IOTCHAT_LAMBDA_BIN_DIR", target_dir()?.join("debug").into()),
        ("IOTCHAT_INFRA_BIN", exe("iotchat-infra")?.into()),
    ])
}

fn bench(args: &[String]) -> Result<()> {
    if args.first().is_some_and(|a| a == "server") {
        return bench_server(&args[1..]);
    }
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

/// `cargo xtask bench server`: the release server and load generator, then the whole suite
/// against Mosquitto, written to docs/benchmarks/server.md (or `--out`).
fn bench_server(args: &[String]) -> Result<()> {
    let usage = "usage: cargo xtask bench server [--runs N] [--quick] [--out FILE]";
    let root = root();
    let mut runs = "3".to_owned();
    let mut quick = false;
    let mut out = root.join("docs").join("benchmarks").join("server.md");
    let mut rest = args.iter();
    while let Some(arg) = rest.next() {
        match arg.as_str() {
            "--runs" => match rest.next() {
                Some(n) if n.parse::<u8>().is_ok_and(|n| (1..=9).contains(&n)) => runs = n.clone(),
                _ => bail!("--runs takes 1 to 9\n{usage}"),
            },
            "--quick" => quick = true,
            "--out" => out = rest.next().map(PathBuf::from).with_context(|| usage.to_owned())?,
            other => bail!("unknown argument {other}\n{usage}"),
        }
    }
    setup::ensure(setup::Purpose::Test)?;
    step("Building iotchat-server and iotchat-loadgen (release)");
    Cmd::new("cargo")
        .args(["build", "--release", "--package", "iotchat-server", "--package", "iotchat-loadgen"])
        .dir(&root)
        .run()?;
    let release = target_dir()?.join("release");
    let exe = |name: &str| release.join(format!("{name}{}", std::env::consts::EXE_SUFFIX));
    step(&format!(
        "Running the server benchmark against Mosquitto ({})",
        if quick { "quick: about a minute" } else { "about 10 minutes" }
    ));
    let mut cmd = Cmd::new(exe("iotchat-loadgen"))
        .arg("--server-bin")
        .arg(exe("iotchat-server"))
        .args(["suite", "--runs", &runs, "--out"])
        .arg(&out)
        .dir(&root);
    if quick {
        cmd = cmd.arg("--quick");
    }
    cmd.run()
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
