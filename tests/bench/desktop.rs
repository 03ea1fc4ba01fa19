//! The desktop benchmark: start-up to interactive, memory at idle and room-switch time of the
//! real app, each beside the same figure for an empty Tauri 2 + Leptos window (the baseline,
//! `tests/baseline`), measured in one run on one headless desktop.
//!
//! Run it with `cargo xtask bench`, which builds both apps and writes the results to
//! `docs/benchmarks/desktop.md`. Everything talks to 127.0.0.1; every wait has a deadline.
//!
//! - **Start-up to interactive**: from asking tauri-driver for a session (which starts the app)
//!   to the first frame after the page shows what a person acts on: the baseline's button; the
//!   app's login form when signed out; the sidebar with all 20 followed rooms when signed in.
//!   WebDriver's own start is in both figures alike.
//! - **Memory**: total PSS of the app's process and everything it started (WebKit's web and
//!   network processes), 5 s after start-up (the app: with its 10,000-message room open).
//! - **Room switch**: in the page, from the click on a room in the sidebar to the first frame
//!   that shows that room's newest message; the baseline switches between two views.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, Result, bail};
use fantoccini::Locator;
use iotchat_client::protocol::{Profile, RoomName};
use iotchat_client::{Backend, Client, ClientConfig, MemoryStore};
use iotchat_tests::{Desktop, DesktopApp};

const PASSWORD: &str = "Correct-Horse-9";
const FOLLOWED_ROOMS: usize = 20;
const WRITERS: usize = 8;
const BIG_ROOM_MESSAGES: usize = 10_000;
const SMALL_ROOM_MESSAGES: usize = 50;
const BIG_LAST: &str = "the newest message in the big room";
const SMALL_LAST: &str = "the newest message in the small room";
/// How long an app is left alone before its memory is read.
const SETTLE: Duration = Duration::from_secs(5);
/// Room switches per launch (alternating between the big and the small room).
const SWITCHES: usize = 10;

struct Options {
    runs: usize,
    out: Option<PathBuf>,
}

fn options() -> Result<Options> {
    let mut options = Options { runs: 5, out: None };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--runs" => {
                let value = args.next().context("--runs needs a number")?;
                options.runs = value.parse().context("--runs needs a number")?;
                if !(1..=50).contains(&options.runs) {
                    bail!("--runs must be between 1 and 50");
                }
            }
            "--out" => options.out = Some(args.next().context("--out needs a path")?.into()),
            other => {
                bail!("unknown argument {other:?} (usage: desktop-bench [--runs N] [--out FILE])")
            }
        }
    }
    Ok(options)
}

#[tokio::main(flavor = "multi_thread")]
async fn main() -> Result<()> {
    let options = options()?;
    let app_bin = iotchat_tests::app_binary()?;
    let baseline_bin = iotchat_tests::baseline_binary()?;

    let server_dir = tempfile::tempdir()?;
    let config = iotchat_server::config::Config::for_data_dir(server_dir.path())?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let server = iotchat_server::start(&config, listener).await?;
    let profile = server.profile().clone();
    let address = format!("http://{}", server.addr());

    let app_data = tempfile::tempdir()?;
    let populated = populate(&profile, app_data.path()).await?;

    let desktop = Desktop::start(|_| async { Ok(()) }).await?;
    let keychain = format!("iotchat-bench-{}", uuid::Uuid::new_v4());
    let signed_in_env = [
        ("IOTCHAT_SERVER", address.clone()),
        ("IOTCHAT_DATA_DIR", app_data.path().display().to_string()),
        ("IOTCHAT_KEYCHAIN_SERVICE", keychain.clone()),
    ];
    let empty_data = tempfile::tempdir()?;
    let signed_out_env = [
        ("IOTCHAT_SERVER", address.clone()),
        ("IOTCHAT_DATA_DIR", empty_data.path().display().to_string()),
        ("IOTCHAT_KEYCHAIN_SERVICE", format!("{keychain}-signed-out")),
    ];

    eprintln!("bench: first sign-in (catches up on {BIG_ROOM_MESSAGES} messages)");
    sign_in_once(&desktop, &app_bin, &signed_in_env, &populated).await?;

    let mut results = Results::default();
    for run in 1..=options.runs {
        eprintln!("bench: run {run} of {}: baseline", options.runs);
        let app = DesktopApp::open(Arc::clone(&desktop), &baseline_bin, &[]).await?;
        results
            .baseline
            .start_ms
            .push(wait_interactive(&app, "[data-testid=\"switch-view\"]", 1).await?);
        tokio::time::sleep(SETTLE).await;
        results.baseline.memory.push(memory(&app)?);
        for i in 0..SWITCHES {
            let want = if i % 2 == 0 { "Second view" } else { "First view" };
            let ms =
                switch(&app, "[data-testid=\"switch-view\"]", "view-title", want, None).await?;
            results.baseline.switch_ms.push(ms);
        }
        app.close().await?;

        eprintln!("bench: run {run}: the app, signed out");
        let app = DesktopApp::open(Arc::clone(&desktop), &app_bin, &signed_out_env).await?;
        results
            .signed_out_start_ms
            .push(wait_interactive(&app, "[data-testid=\"login-submit\"]", 1).await?);
        app.close().await?;

        eprintln!("bench: run {run}: the app, signed in");
        let app = DesktopApp::open(Arc::clone(&desktop), &app_bin, &signed_in_env).await?;
        let sidebar = "[data-testid^=\"sidebar-room-\"]";
        results.app.start_ms.push(wait_interactive(&app, sidebar, FOLLOWED_ROOMS).await?);
        let big = sidebar_room(&populated.big);
        let small = sidebar_room(&populated.small);
        switch(&app, &big, "room-title", "Room 01", Some(BIG_LAST)).await?;
        tokio::time::sleep(SETTLE).await;
        results.app.memory.push(memory(&app)?);
        for i in 0..SWITCHES {
            if i % 2 == 0 {
                results
                    .to_small_ms
                    .push(switch(&app, &small, "room-title", "Room 02", Some(SMALL_LAST)).await?);
            } else {
                results
                    .app
                    .switch_ms
                    .push(switch(&app, &big, "room-title", "Room 01", Some(BIG_LAST)).await?);
            }
        }
        app.close().await?;
    }

    let report = results.report(options.runs, &app_bin, &baseline_bin)?;
    println!("{report}");
    if let Some(out) = &options.out {
        if let Some(dir) = out.parent() {
            std::fs::create_dir_all(dir)?;
        }
        std::fs::write(out, &report).with_context(|| format!("writing {}", out.display()))?;
        eprintln!("bench: written to {}", out.display());
    }
    drop(desktop);
    server.stop().await?;
    Ok(())
}

struct Populated {
    big: RoomName,
    small: RoomName,
}

fn sidebar_room(room: &RoomName) -> String {
    format!("[data-testid=\"sidebar-room-{}\"]", room.slug().as_str())
}

fn headless(profile: &Profile, dir: &Path) -> Result<Client> {
    Ok(Client::new(ClientConfig {
        backend: Backend::new(profile.clone())?,
        data_dir: dir.to_owned(),
        secrets: Arc::new(MemoryStore::default()),
        connect: true,
        instance: None,
    })?)
}

/// The reader follows 20 rooms (its state is written where the app will find it); eight
/// writers put 10,000 messages into the first room and 50 into the second.
async fn populate(profile: &Profile, app_data: &Path) -> Result<Populated> {
    eprintln!("bench: {FOLLOWED_ROOMS} rooms, {BIG_ROOM_MESSAGES} messages in one");
    let reader = headless(profile, app_data)?;
    reader.register("reader", "reader@example.com", PASSWORD).await?;
    reader.login("reader", PASSWORD).await?;
    let mut rooms = Vec::new();
    for i in 1..=FOLLOWED_ROOMS {
        rooms.push(reader.room_create(&format!("Room {i:02}")).await?.name);
    }
    // The session ends; the followed rooms stay in the app's data directory.
    reader.logout().await?;
    let (big, small) = (rooms[0].clone(), rooms[1].clone());

    let mut writers = Vec::new();
    let mut dirs = Vec::new();
    for w in 0..WRITERS {
        let dir = tempfile::tempdir()?;
        let writer = headless(profile, dir.path())?;
        writer.register(&format!("writer{w}"), &format!("writer{w}@example.com"), PASSWORD).await?;
        writer.login(&format!("writer{w}"), PASSWORD).await?;
        writer.room_join(&big).await?;
        writer.room_join(&small).await?;
        writers.push(writer);
        dirs.push(dir);
    }
    // The broker takes 100 publishes a second per connection, as AWS IoT does: the writers
    // share the work.
    let per_writer = BIG_ROOM_MESSAGES / WRITERS;
    let mut tasks = tokio::task::JoinSet::new();
    for (w, writer) in writers.iter().enumerate() {
        let writer = writer.clone();
        let big = big.clone();
        let count = if w == 0 { per_writer - 1 } else { per_writer };
        tasks.spawn(async move {
            for i in 0..count {
                writer.message_send(&big, &format!("message {i} from writer {w}: the quick brown fox jumps over the lazy dog")).await?;
            }
            drain(&writer).await
        });
    }
    while let Some(done) = tasks.join_next().await {
        done??;
    }
    let first = &writers[0];
    for i in 1..SMALL_ROOM_MESSAGES {
        first.message_send(&small, &format!("small room message {i}")).await?;
    }
    first.message_send(&small, SMALL_LAST).await?;
    first.message_send(&big, BIG_LAST).await?;
    drain(first).await?;
    for writer in &writers {
        writer.shutdown().await;
    }
    Ok(Populated { big, small })
}

/// Waits until the broker has acknowledged everything the client queued.
async fn drain(client: &Client) -> Result<()> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(300);
    while !client.outbox(None).await?.is_empty() {
        if tokio::time::Instant::now() >= deadline {
            bail!("the outbox did not empty within 5 minutes");
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    Ok(())
}

/// The first launch: sign in through the form, let the app catch up, and read the big room.
/// Later launches resume this session from the keychain.
async fn sign_in_once(
    desktop: &Arc<Desktop>,
    app_bin: &Path,
    env: &[(&str, String)],
    populated: &Populated,
) -> Result<()> {
    let app = DesktopApp::open(Arc::clone(desktop), app_bin, env).await?;
    app.testid("login-username").await?.send_keys("reader").await?;
    app.testid("login-password").await?.send_keys(PASSWORD).await?;
    app.testid("login-submit").await?.click().await?;
    app.testid("main-screen").await?;
    let big = sidebar_room(&populated.big);
    // Catch-up counts the messages that came while the reader was away (as far back as the
    // client core walks history); wait until the count holds still.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
    let (mut last, mut still_since) = (String::new(), tokio::time::Instant::now());
    loop {
        let unread = match app.client().find(Locator::Css(&big)).await {
            Ok(room) => room.attr("data-unread").await?.unwrap_or_default(),
            Err(_) => String::new(),
        };
        if unread != last {
            (last, still_since) = (unread, tokio::time::Instant::now());
        } else if !matches!(last.as_str(), "" | "0")
            && still_since.elapsed() > Duration::from_secs(3)
        {
            eprintln!("bench: {last} unread in the big room after catch-up");
            break;
        }
        if tokio::time::Instant::now() >= deadline {
            bail!("the big room's unread count did not settle within 2 minutes (last: {last:?})");
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    switch(&app, &big, "room-title", "Room 01", Some(BIG_LAST)).await?;
    app.wait_gone(&format!("unread-{}", populated.big.slug().as_str())).await?;
    app.close().await?;
    Ok(())
}

/// Milliseconds from asking for the session (which starts the app) until the first frame after
/// `count` elements match `css`. Call it right after [`DesktopApp::open`].
async fn wait_interactive(app: &DesktopApp, css: &str, count: usize) -> Result<f64> {
    const SCRIPT: &str = r#"
        const [css, count, done] = arguments;
        let finished = false;
        const finish = (value) => { if (!finished) { finished = true; done(value); } };
        const ready = () => document.querySelectorAll(css).length >= count;
        const frame = () => requestAnimationFrame(() => finish(Date.now()));
        if (ready()) { frame(); return; }
        const observer = new MutationObserver(() => {
            if (ready()) { observer.disconnect(); frame(); }
        });
        observer.observe(document.documentElement, { childList: true, subtree: true, attributes: true });
        setTimeout(() => { observer.disconnect(); finish(-1); }, 25000);
    "#;
    let ready = app
        .client()
        .execute_async(SCRIPT, vec![css.into(), count.into()])
        .await
        .context("waiting in the page for it to become interactive")?;
    let ready = ready.as_f64().context("the page answered no time")?;
    if ready < 0.0 {
        bail!("{css} did not appear {count} time(s) within 25 s");
    }
    Ok(ready - app.opened_at_ms())
}

/// Clicks `click_css` in the page and returns the milliseconds until the first frame in which
/// `title_id` shows `title` and, when given, a message shows `text`.
async fn switch(
    app: &DesktopApp,
    click_css: &str,
    title_id: &str,
    title: &str,
    text: Option<&str>,
) -> Result<f64> {
    const SCRIPT: &str = r#"
        const [clickCss, titleId, title, text, done] = arguments;
        let finished = false;
        const finish = (value) => { if (!finished) { finished = true; done(value); } };
        const ready = () => {
            const shown = document.querySelector(`[data-testid="${titleId}"]`);
            if (!shown || shown.textContent.trim() !== title) return false;
            if (text === null) return true;
            for (const m of document.querySelectorAll('[data-testid="message-text"]')) {
                if (m.textContent === text) return true;
            }
            return false;
        };
        const target = document.querySelector(clickCss);
        if (!target) { finish(-2); return; }
        const start = performance.now();
        const frame = () => requestAnimationFrame(() => finish(performance.now() - start));
        const observer = new MutationObserver(() => {
            if (ready()) { observer.disconnect(); frame(); }
        });
        observer.observe(document.documentElement, { childList: true, subtree: true, characterData: true, attributes: true });
        target.click();
        if (ready()) { observer.disconnect(); frame(); }
        setTimeout(() => { observer.disconnect(); finish(-1); }, 20000);
    "#;
    let text = text.map_or(serde_json::Value::Null, Into::into);
    let ms = app
        .client()
        .execute_async(SCRIPT, vec![click_css.into(), title_id.into(), title.into(), text])
        .await
        .with_context(|| format!("switching to {title}"))?;
    let ms = ms.as_f64().context("the page answered no time")?;
    if ms == -2.0 {
        bail!("nothing to click: {click_css}");
    }
    if ms < 0.0 {
        bail!("{title} was not shown within 20 s of the click");
    }
    Ok(ms)
}

/// Total PSS, in KiB, of the app's process tree, by process name; read three times a second
/// apart, the median kept.
fn memory(app: &DesktopApp) -> Result<Memory> {
    let mut samples = Vec::new();
    for i in 0..3 {
        if i > 0 {
            std::thread::sleep(Duration::from_secs(1));
        }
        let mut by_name: Vec<(String, u64)> = Vec::new();
        for pid in app.process_tree()? {
            let Ok(rollup) = std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup")) else {
                continue; // gone meanwhile
            };
            let pss = rollup
                .lines()
                .find_map(|l| l.strip_prefix("Pss:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
                .unwrap_or(0);
            // The program's file name (`comm` is cut at 15 characters).
            let name = std::fs::read_link(format!("/proc/{pid}/exe"))
                .ok()
                .and_then(|exe| exe.file_name().map(|n| n.to_string_lossy().into_owned()))
                .unwrap_or_else(|| "?".into());
            match by_name.iter_mut().find(|(n, _)| *n == name) {
                Some((_, total)) => *total += pss,
                None => by_name.push((name, pss)),
            }
        }
        samples.push(Memory { by_name });
    }
    samples.sort_by_key(Memory::total);
    Ok(samples.swap_remove(1))
}

#[derive(Debug, Clone, Default)]
struct Memory {
    by_name: Vec<(String, u64)>,
}

impl Memory {
    fn total(&self) -> u64 {
        self.by_name.iter().map(|(_, kib)| kib).sum()
    }
}

#[derive(Debug, Default)]
struct Figures {
    start_ms: Vec<f64>,
    memory: Vec<Memory>,
    switch_ms: Vec<f64>,
}

#[derive(Debug, Default)]
struct Results {
    baseline: Figures,
    app: Figures,
    signed_out_start_ms: Vec<f64>,
    to_small_ms: Vec<f64>,
}

fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let n = sorted.len();
    if n == 0 {
        return f64::NAN;
    }
    if n % 2 == 1 { sorted[n / 2] } else { (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0 }
}

fn percentile(values: &[f64], p: f64) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn spread(values: &[f64]) -> String {
    let min = values.iter().copied().fold(f64::INFINITY, f64::min);
    let max = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    format!("{:.0} ms ({min:.0}–{max:.0})", median(values))
}

fn mib(kib: f64) -> String {
    format!("{:.0} MiB", kib / 1024.0)
}

impl Results {
    fn report(&self, runs: usize, app_bin: &Path, baseline_bin: &Path) -> Result<String> {
        let mem = |f: &Figures| f.memory.iter().map(|m| m.total() as f64).collect::<Vec<_>>();
        let (base_mem, app_mem) = (median(&mem(&self.baseline)), median(&mem(&self.app)));
        let base_start = median(&self.baseline.start_ms);
        let ratio = |x: f64, base: f64| format!("{:.2}×", x / base);
        let size = |p: &Path| -> Result<String> {
            Ok(format!("{:.1} MiB", std::fs::metadata(p)?.len() as f64 / 1_048_576.0))
        };
        let breakdown = |f: &Figures| -> String {
            let Some(m) =
                f.memory.iter().min_by_key(|m| (m.total() as f64 - median(&mem(f))).abs() as u64)
            else {
                return String::new();
            };
            let mut parts: Vec<_> = m.by_name.clone();
            parts.sort_by_key(|(_, kib)| std::cmp::Reverse(*kib));
            parts
                .iter()
                .map(|(n, kib)| format!("{n} {}", mib(*kib as f64)))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let base_switch = median(&self.baseline.switch_ms);
        let mut out = String::new();
        use std::fmt::Write as _;
        writeln!(out, "# Desktop benchmark: IoT Chat beside an empty Tauri + Leptos window")?;
        writeln!(out)?;
        writeln!(out, "Produced by `cargo xtask bench` ({}); do not edit by hand.", date()?)?;
        writeln!(out)?;
        writeln!(
            out,
            "| Figure | Baseline: empty Tauri 2 + Leptos | IoT Chat | IoT Chat ÷ baseline |"
        )?;
        writeln!(out, "|---|---|---|---|")?;
        writeln!(
            out,
            "| Start-up to interactive, signed out (login form); median (min–max) of {runs} | {} | {} | {} |",
            spread(&self.baseline.start_ms),
            spread(&self.signed_out_start_ms),
            ratio(median(&self.signed_out_start_ms), base_start),
        )?;
        writeln!(
            out,
            "| Start-up to interactive, signed in ({FOLLOWED_ROOMS} rooms in the sidebar); median (min–max) of {runs} | {} | {} | {} |",
            spread(&self.baseline.start_ms),
            spread(&self.app.start_ms),
            ratio(median(&self.app.start_ms), base_start),
        )?;
        writeln!(
            out,
            "| Memory at idle, total PSS of the app and its WebKit processes; median of {runs} | {} | {} (the {BIG_ROOM_MESSAGES}-message room open) | {} |",
            mib(base_mem),
            mib(app_mem),
            ratio(app_mem, base_mem),
        )?;
        writeln!(
            out,
            "| Switch (click → first frame showing it); median, p90 of {} | view switch: {:.1} ms, {:.1} ms | to the {BIG_ROOM_MESSAGES}-message room: {:.1} ms, {:.1} ms | {} |",
            self.baseline.switch_ms.len(),
            base_switch,
            percentile(&self.baseline.switch_ms, 90.0),
            median(&self.app.switch_ms),
            percentile(&self.app.switch_ms, 90.0),
            ratio(median(&self.app.switch_ms), base_switch),
        )?;
        writeln!(
            out,
            "| | | to a {SMALL_ROOM_MESSAGES}-message room: {:.1} ms, {:.1} ms | {} |",
            median(&self.to_small_ms),
            percentile(&self.to_small_ms, 90.0),
            ratio(median(&self.to_small_ms), base_switch),
        )?;
        writeln!(out)?;
        writeln!(out, "Memory by process (the run nearest the median):")?;
        writeln!(out)?;
        writeln!(out, "- baseline: {}", breakdown(&self.baseline))?;
        writeln!(out, "- IoT Chat: {}", breakdown(&self.app))?;
        writeln!(out)?;
        writeln!(
            out,
            "Binaries (release): IoT Chat {}, baseline {}.",
            size(app_bin)?,
            size(baseline_bin)?
        )?;
        writeln!(out)?;
        writeln!(out, "Every sample, in ms:")?;
        writeln!(out)?;
        let list = |v: &[f64]| v.iter().map(|x| format!("{x:.0}")).collect::<Vec<_>>().join(", ");
        writeln!(out, "- start-up, baseline: {}", list(&self.baseline.start_ms))?;
        writeln!(out, "- start-up, signed out: {}", list(&self.signed_out_start_ms))?;
        writeln!(out, "- start-up, signed in: {}", list(&self.app.start_ms))?;
        writeln!(out, "- switch, baseline: {}", list(&self.baseline.switch_ms))?;
        writeln!(out, "- switch, to the big room: {}", list(&self.app.switch_ms))?;
        writeln!(out, "- switch, to the small room: {}", list(&self.to_small_ms))?;
        writeln!(out)?;
        writeln!(out, "## Machine")?;
        writeln!(out)?;
        for line in machine() {
            writeln!(out, "- {line}")?;
        }
        Ok(out)
    }
}

fn date() -> Result<String> {
    let out = std::process::Command::new("date").args(["-u", "+%Y-%m-%d %H:%M UTC"]).output()?;
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

fn machine() -> Vec<String> {
    let read = |path: &str| std::fs::read_to_string(path).unwrap_or_default();
    let cpuinfo = read("/proc/cpuinfo");
    let cpu = cpuinfo
        .lines()
        .find_map(|l| {
            l.strip_prefix("model name")
                .and_then(|r| r.split_once(':'))
                .map(|(_, v)| v.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let memory = read("/proc/meminfo")
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:").map(|v| v.trim().to_owned()))
        .unwrap_or_default();
    let command = |program: &str, args: &[&str]| {
        std::process::Command::new(program)
            .args(args)
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
            .unwrap_or_default()
    };
    vec![
        format!("CPU: {cpu}, {cores} cores available"),
        format!("Memory: {memory}"),
        format!("Kernel: {}", command("uname", &["-sr"])),
        format!(
            "WebKitGTK: {}",
            command("dpkg-query", &["-W", "-f", "${Version}", "libwebkit2gtk-4.1-0"])
        ),
        "Display: Xvfb 1280×800×24, no compositing (WEBKIT_DISABLE_COMPOSITING_MODE=1), no window manager".into(),
        "Server: iotchat-server in the benchmark's process, on 127.0.0.1".into(),
    ]
}
