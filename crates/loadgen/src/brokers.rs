//! The brokers under load, each a process of its own on 127.0.0.1 (so its CPU and memory can
//! be read from `/proc`): `iotchat-server serve` on a data directory, or Mosquitto with a
//! websockets listener and no authentication, as the baseline.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::{Context as _, Result, bail};
use iotchat_client::Backend;

/// Which broker a run drives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Kind {
    /// `iotchat-server`: Cognito sign-in, SigV4-presigned WebSocket, topic policy, history.
    Iotchat,
    /// Mosquitto 2: a websockets listener, anonymous, nothing stored.
    Mosquitto,
}

impl Kind {
    pub(crate) fn label(self) -> &'static str {
        match self {
            Kind::Iotchat => "iotchat-server",
            Kind::Mosquitto => "Mosquitto",
        }
    }
}

/// Where the brokers' programs are.
#[derive(Debug, Clone)]
pub(crate) struct Programs {
    pub(crate) server: PathBuf,
    pub(crate) mosquitto: PathBuf,
}

/// A running broker, stopped when dropped.
#[derive(Debug)]
pub(crate) struct Running {
    pub(crate) kind: Kind,
    child: Child,
    /// For iotchat-server: its profile.
    pub(crate) backend: Option<Backend>,
    /// The WebSocket URL clients connect to (unsigned).
    pub(crate) ws_url: String,
}

impl Running {
    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Whether the process is still alive (a crashed broker fails the run).
    pub(crate) fn check_alive(&mut self) -> Result<()> {
        if let Some(status) = self.child.try_wait()? {
            bail!("{} exited during the run ({status})", self.kind.label());
        }
        Ok(())
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> Result<u16> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").context("binding loopback")?;
    Ok(listener.local_addr()?.port())
}

/// Starts `kind` with its state in `dir` (kept between starts: accounts survive restarts).
pub(crate) async fn start(kind: Kind, programs: &Programs, dir: &Path) -> Result<Running> {
    match kind {
        Kind::Iotchat => start_iotchat(&programs.server, dir).await,
        Kind::Mosquitto => start_mosquitto(&programs.mosquitto, dir).await,
    }
}

async fn start_iotchat(program: &Path, dir: &Path) -> Result<Running> {
    let port = free_port()?;
    let address = format!("http://127.0.0.1:{port}");
    let child = Command::new(program)
        .args(["serve", "--listen", &format!("127.0.0.1:{port}"), "--data-dir"])
        .arg(dir)
        .env("RUST_LOG", std::env::var("IOTCHAT_LOADGEN_SERVER_LOG").unwrap_or("warn".into()))
        .stdin(Stdio::null())
        // Its log goes to our stderr: stdout carries the report.
        .stdout(Stdio::from(std::io::stderr()))
        .spawn()
        .with_context(|| format!("starting {}", program.display()))?;
    let mut running = Running { kind: Kind::Iotchat, child, backend: None, ws_url: String::new() };
    for _ in 0..200 {
        running.check_alive()?;
        if let Ok(backend) = Backend::fetch(&address, None).await {
            running.ws_url = backend.profile.iot_endpoint.clone();
            running.backend = Some(backend);
            return Ok(running);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    bail!("iotchat-server did not answer at {address} within 10 s")
}

async fn start_mosquitto(program: &Path, dir: &Path) -> Result<Running> {
    let tcp = free_port()?;
    let ws = free_port()?;
    // Only loopback: `socket_domain ipv4` keeps the websockets listener off other interfaces.
    // Queues and in-flight windows as large as the iotchat broker's, so neither drops first.
    let config = format!(
        "per_listener_settings false\n\
         allow_anonymous true\n\
         persistence false\n\
         max_queued_messages 100000\n\
         max_inflight_messages 100\n\
         set_tcp_nodelay true\n\
         log_dest stderr\n\
         log_type error\n\
         log_type warning\n\
         listener {tcp} 127.0.0.1\n\
         socket_domain ipv4\n\
         listener {ws} 127.0.0.1\n\
         socket_domain ipv4\n\
         protocol websockets\n"
    );
    let path = dir.join("mosquitto.conf");
    std::fs::write(&path, config).with_context(|| format!("writing {}", path.display()))?;
    let child = Command::new(program)
        .arg("-c")
        .arg(&path)
        .stdin(Stdio::null())
        // Its log goes to our stderr: stdout carries the report.
        .stdout(Stdio::from(std::io::stderr()))
        .spawn()
        .with_context(|| format!("starting {}", program.display()))?;
    let mut running = Running {
        kind: Kind::Mosquitto,
        child,
        backend: None,
        ws_url: format!("ws://127.0.0.1:{ws}/mqtt"),
    };
    for _ in 0..200 {
        running.check_alive()?;
        if tokio::net::TcpStream::connect(("127.0.0.1", ws)).await.is_ok() {
            return Ok(running);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    bail!("Mosquitto did not listen on 127.0.0.1:{ws} within 10 s")
}

/// CPU time and memory of a process, from `/proc` (Linux).
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct ProcSample {
    /// User + system CPU seconds so far.
    pub(crate) cpu_s: f64,
    /// Resident memory now, MiB.
    pub(crate) rss_mib: f64,
}

/// Clock ticks per second of `/proc/<pid>/stat` (USER_HZ, 100 on Linux).
const TICKS_PER_S: f64 = 100.0;

pub(crate) fn sample(pid: u32) -> Result<ProcSample> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .with_context(|| format!("reading /proc/{pid}/stat"))?;
    // The command name may hold spaces; the fields after its closing parenthesis are fixed.
    let after = stat.rsplit_once(')').map(|(_, rest)| rest).unwrap_or_default();
    let fields: Vec<&str> = after.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the line; the list starts at field 3.
    let ticks = |i: usize| fields.get(i).and_then(|f| f.parse::<f64>().ok()).unwrap_or(0.0);
    let cpu_s = (ticks(11) + ticks(12)) / TICKS_PER_S;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .with_context(|| format!("reading /proc/{pid}/status"))?;
    let kib = |key: &str| {
        status
            .lines()
            .find_map(|line| line.strip_prefix(key))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|n| n.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    Ok(ProcSample { cpu_s, rss_mib: kib("VmRSS:") / 1024.0 })
}
