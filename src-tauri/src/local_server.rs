//! "This computer": the app runs `iotchat-server` itself (the bundles carry it next to the app,
//! a Tauri sidecar), on loopback with its data in the app's data directory, unless a server
//! already answers there. It watches the server, starts it again if it dies, and stops it on
//! quit. The server also stops when its standard input closes, so it never outlives the app.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use iotchat_client::protocol::desktop::TeamServer;
use tokio::process::{Child, Command};

/// Where "This computer" listens (the client's `LOCAL_SERVER`).
const LOCAL_ADDR: &str = "127.0.0.1:8787";
/// How long a fresh server may take to listen.
const START_TIMEOUT: Duration = Duration::from_secs(15);
/// How long a server may take to stop gracefully on quit.
const STOP_TIMEOUT: Duration = Duration::from_secs(5);

/// Who the server this app runs is for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Reach {
    /// This computer only: plain HTTP on 127.0.0.1:8787.
    ThisComputer,
    /// The team too: TLS on `listen`, reached as `host` (a name or address others can use).
    Team { listen: SocketAddr, host: String },
}

impl Reach {
    /// Hosting for the team: on every interface at port 8787, reached by this machine's
    /// network address (`IOTCHAT_TEAM_LISTEN` and `IOTCHAT_TEAM_HOST` choose others).
    pub(crate) fn team() -> Result<Self, String> {
        let listen = match std::env::var("IOTCHAT_TEAM_LISTEN") {
            Ok(listen) => listen
                .parse()
                .map_err(|e| format!("IOTCHAT_TEAM_LISTEN={listen:?} is not an address: {e}"))?,
            Err(_) => SocketAddr::from(([0, 0, 0, 0], 8787)),
        };
        let host = match std::env::var("IOTCHAT_TEAM_HOST") {
            Ok(host) => host,
            Err(_) => network_address().ok_or_else(|| {
                "This computer has no network address others could reach.".to_owned()
            })?,
        };
        Ok(Self::Team { listen, host })
    }
}

/// The address this machine uses on its network (no packet is sent to find it).
fn network_address() -> Option<String> {
    let socket = std::net::UdpSocket::bind("0.0.0.0:0").ok()?;
    socket.connect("192.0.2.1:9").ok()?;
    let ip = socket.local_addr().ok()?.ip();
    (!ip.is_loopback() && !ip.is_unspecified()).then(|| ip.to_string())
}

/// The server this app started, if any.
#[derive(Debug)]
pub(crate) struct LocalServer {
    data_dir: PathBuf,
    reach: std::sync::Mutex<Reach>,
    child: tokio::sync::Mutex<Option<Child>>,
    /// The watcher is running (started once).
    watching: AtomicBool,
    /// Quit: the watcher must not start it again.
    stopping: AtomicBool,
}

impl LocalServer {
    /// `data_dir`: the app's data directory (the server's goes in `server/` inside it).
    pub(crate) fn new(data_dir: &std::path::Path, reach: Reach) -> Self {
        Self {
            data_dir: data_dir.join("server"),
            reach: std::sync::Mutex::new(reach),
            child: tokio::sync::Mutex::new(None),
            watching: AtomicBool::new(false),
            stopping: AtomicBool::new(false),
        }
    }

    /// Makes sure a server answers on [`LOCAL_ADDR`]: one already there, or ours, started now.
    pub(crate) async fn ensure(self: &Arc<Self>) -> Result<(), String> {
        if answers(self.probe()).await {
            return check_owner();
        }
        let mut child = self.child.lock().await;
        if let Some(running) = child.as_mut()
            && matches!(running.try_wait(), Ok(None))
        {
            drop(child);
            return wait_until_listening(self.probe()).await;
        }
        let started = self.spawn()?;
        *child = Some(started);
        drop(child);
        if !self.watching.swap(true, Ordering::SeqCst) {
            tauri::async_runtime::spawn(Arc::clone(self).watch());
        }
        wait_until_listening(self.probe()).await
    }

    pub(crate) fn reach(&self) -> Reach {
        self.reach.lock().map(|r| r.clone()).unwrap_or(Reach::ThisComputer)
    }

    pub(crate) fn set_reach(&self, reach: Reach) {
        if let Ok(mut current) = self.reach.lock() {
            *current = reach;
        }
    }

    /// Where to knock to see whether the server is up.
    fn probe(&self) -> SocketAddr {
        match self.reach() {
            Reach::ThisComputer => addr(),
            Reach::Team { listen, .. } if listen.ip().is_unspecified() => {
                SocketAddr::from(([127, 0, 0, 1], listen.port()))
            }
            Reach::Team { listen, .. } => listen,
        }
    }

    /// The address this app's own client uses, and the CA it trusts there.
    pub(crate) fn client_address(&self) -> (String, Option<String>) {
        match self.reach() {
            Reach::ThisComputer => (format!("http://{LOCAL_ADDR}"), None),
            Reach::Team { listen, host } => {
                let ca = self.profile().and_then(|p| p.ca_certificate);
                (format!("https://{host}:{}", listen.port()), ca)
            }
        }
    }

    fn profile(&self) -> Option<iotchat_client::protocol::Profile> {
        let bytes = std::fs::read(self.data_dir.join("profile.json")).ok()?;
        iotchat_client::protocol::Profile::from_json(&bytes).ok()
    }

    /// What the team needs to connect, while hosting and once the server is up.
    pub(crate) fn team(&self) -> Option<TeamServer> {
        let Reach::Team { listen, host } = self.reach() else { return None };
        let ca_certificate = self.profile()?.ca_certificate?;
        Some(TeamServer {
            address: format!("https://{host}:{}", listen.port()),
            ca_fingerprint: fingerprint(&ca_certificate)?,
            ca_certificate,
        })
    }

    /// Stops the server this app runs and starts it again as [`Self::reach`] says.
    pub(crate) async fn restart(self: &Arc<Self>) -> Result<(), String> {
        self.stop_child().await;
        self.ensure().await
    }

    /// Where the server this app starts writes its log.
    pub(crate) fn log_path(&self) -> PathBuf {
        self.data_dir.join("server.log")
    }

    fn spawn(&self) -> Result<Child, String> {
        let exe = server_binary()?;
        std::fs::create_dir_all(&self.data_dir).map_err(|e| {
            format!("Cannot create the server's folder {}: {e}", self.data_dir.display())
        })?;
        tracing::info!(exe = %exe.display(), data_dir = %self.data_dir.display(), "starting the bundled iotchat-server");
        let mut command = Command::new(&exe);
        command.args(["serve", "--stop-with-stdin", "--data-dir"]).arg(&self.data_dir);
        match self.reach() {
            Reach::ThisComputer => command.args(["--listen", LOCAL_ADDR]),
            Reach::Team { listen, host } => command.args([
                "--listen",
                &listen.to_string(),
                "--tls",
                "on",
                "--public-host",
                &host,
            ]),
        };
        command.stdin(Stdio::piped()).kill_on_drop(true);
        // Its log goes to a file next to its data, not into the app's terminal.
        match std::fs::File::create(self.log_path()) {
            Ok(log) => {
                let err = log.try_clone().map_or(Stdio::null(), Stdio::from);
                command.stdout(Stdio::from(log)).stderr(err);
            }
            Err(_) => {
                command.stdout(Stdio::null()).stderr(Stdio::null());
            }
        }
        command.spawn().map_err(|e| format!("Cannot start {}: {e}", exe.display()))
    }

    /// Starts the server again whenever it exits, with a growing pause, until quit.
    async fn watch(self: Arc<Self>) {
        let mut pause = Duration::from_secs(1);
        loop {
            tokio::time::sleep(Duration::from_millis(500)).await;
            if self.stopping.load(Ordering::SeqCst) {
                return;
            }
            let mut slot = self.child.lock().await;
            let Some(child) = slot.as_mut() else { continue };
            let status = match child.try_wait() {
                Ok(None) => {
                    pause = Duration::from_secs(1);
                    continue;
                }
                Ok(Some(status)) => status.to_string(),
                Err(e) => e.to_string(),
            };
            *slot = None;
            drop(slot);
            if self.stopping.load(Ordering::SeqCst) {
                return;
            }
            tracing::warn!(%status, ?pause, "the bundled iotchat-server stopped; starting it again");
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(Duration::from_secs(30));
            if answers(self.probe()).await {
                continue; // another server took the address meanwhile
            }
            match self.spawn() {
                Ok(child) => *self.child.lock().await = Some(child),
                Err(e) => tracing::warn!(%e, "cannot start the bundled iotchat-server again"),
            }
        }
    }

    /// Stops the server this app started (quit): its stdin closes, which stops it gracefully;
    /// one that does not stop in time is killed.
    pub(crate) async fn stop(&self) {
        self.stopping.store(true, Ordering::SeqCst);
        self.stop_child().await;
    }

    async fn stop_child(&self) {
        let Some(mut child) = self.child.lock().await.take() else { return };
        drop(child.stdin.take());
        match tokio::time::timeout(STOP_TIMEOUT, child.wait()).await {
            Ok(_) => tracing::info!("the bundled iotchat-server stopped"),
            Err(_) => {
                tracing::warn!("the bundled iotchat-server did not stop in time; killing it");
                let _ = child.kill().await;
            }
        }
    }
}

/// The server executable: `iotchat-server` beside the app, where the bundles install it and
/// where cargo builds it.
fn server_binary() -> Result<PathBuf, String> {
    let exe = std::env::current_exe().map_err(|e| format!("Cannot find the app's folder: {e}"))?;
    let beside = exe.with_file_name(format!("iotchat-server{}", std::env::consts::EXE_SUFFIX));
    if beside.is_file() {
        Ok(beside)
    } else {
        Err(format!(
            "This copy of IoT Chat has no server of its own ({} is missing). Reinstall it, or \
             choose another backend.",
            beside.display()
        ))
    }
}

fn addr() -> SocketAddr {
    LOCAL_ADDR.parse().unwrap_or_else(|_| SocketAddr::from(([127, 0, 0, 1], 8787)))
}

async fn answers(at: SocketAddr) -> bool {
    matches!(
        tokio::time::timeout(Duration::from_millis(500), tokio::net::TcpStream::connect(at)).await,
        Ok(Ok(_))
    )
}

/// SHA-256 of a PEM certificate's DER, as colon-separated hex.
fn fingerprint(pem: &str) -> Option<String> {
    use base64::Engine as _;
    use sha2::Digest as _;
    let body: String = pem.lines().filter(|line| !line.starts_with("-----")).collect();
    let der = base64::engine::general_purpose::STANDARD.decode(body.trim()).ok()?;
    let digest = sha2::Sha256::digest(der);
    Some(digest.iter().map(|b| format!("{b:02X}")).collect::<Vec<_>>().join(":"))
}

async fn wait_until_listening(at: SocketAddr) -> Result<(), String> {
    let deadline = tokio::time::Instant::now() + START_TIMEOUT;
    while tokio::time::Instant::now() < deadline {
        if answers(at).await {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Err(format!("The bundled server did not start listening on {at} within {START_TIMEOUT:?}."))
}

/// On Linux, the user that owns the socket listening on [`LOCAL_ADDR`], from `/proc/net/tcp`.
#[cfg(target_os = "linux")]
fn listener_owner() -> Option<u32> {
    let table = std::fs::read_to_string("/proc/net/tcp").ok()?;
    listener_owner_in(&table, addr())
}

/// The uid of the socket listening on `addr` in a `/proc/net/tcp` table.
#[cfg(any(target_os = "linux", test))]
fn listener_owner_in(table: &str, addr: SocketAddr) -> Option<u32> {
    let SocketAddr::V4(v4) = addr else { return None };
    // The kernel prints the address as the 32-bit value in host order (little-endian here),
    // then the port.
    let wanted = format!("{:08X}:{:04X}", u32::from_le_bytes(v4.ip().octets()), v4.port());
    table.lines().skip(1).find_map(|line| {
        let fields: Vec<&str> = line.split_whitespace().collect();
        // sl local_address rem_address st … uid: the state 0A is LISTEN.
        (fields.get(1) == Some(&wanted.as_str()) && fields.get(3) == Some(&"0A"))
            .then(|| fields.get(7)?.parse().ok())
            .flatten()
    })
}

/// This process's real user id, from `/proc/self/status`.
#[cfg(target_os = "linux")]
fn own_uid() -> Option<u32> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("Uid:")?.split_whitespace().next()?.parse().ok())
}

/// A server that already answers is used only if it runs as this user: another user's would
/// receive this user's password.
fn check_owner() -> Result<(), String> {
    #[cfg(target_os = "linux")]
    if let (Some(owner), Some(me)) = (listener_owner(), own_uid())
        && owner != me
    {
        return Err(format!(
            "Another user's program (uid {owner}) is serving on {LOCAL_ADDR}, so IoT Chat will \
             not send your password to it. Stop it, or choose another backend."
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const TABLE: &str = "\
  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:2253 00000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 4242 1
   1: 0100007F:2253 0100007F:9C40 01 00000000:00000000 00:00000000 00000000  1000        0 4243 1
   2: 0200007F:2253 00000000:0000 0A 00000000:00000000 00:00000000 00000000    33        0 4244 1
";

    #[test]
    fn the_owner_of_the_loopback_listener_is_read_from_the_kernel_table() {
        assert_eq!(listener_owner_in(TABLE, addr()), Some(1000));
        let other: SocketAddr = "127.0.0.2:8787".parse().unwrap();
        assert_eq!(listener_owner_in(TABLE, other), Some(33));
        let unused: SocketAddr = "127.0.0.1:8788".parse().unwrap();
        assert_eq!(listener_owner_in(TABLE, unused), None);
    }
}
