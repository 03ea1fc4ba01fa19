//! Background processes for a headless session, each in its own process group so that stopping
//! it also stops whatever it started (tauri-driver → WebKitWebDriver → the app).

use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::{Context, Result, bail};

/// A child process that is stopped, with its whole process group, when dropped.
#[derive(Debug)]
pub(crate) struct Background {
    child: Child,
    name: &'static str,
}

impl Background {
    pub(crate) fn spawn(command: &mut Command, name: &'static str) -> Result<Self> {
        let child = command
            .process_group(0)
            .stdin(Stdio::null())
            .spawn()
            .with_context(|| format!("starting {name}"))?;
        Ok(Self { child, name })
    }

    /// The process id, which is also the id of its process group.
    pub(crate) fn id(&self) -> u32 {
        self.child.id()
    }

    /// A private X server; returns it and its display number.
    pub(crate) async fn xvfb() -> Result<(Self, String)> {
        let mut command = Command::new("Xvfb");
        command
            .args(["-displayfd", "1", "-screen", "0", "1280x800x24", "-nolisten", "tcp"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null());
        let mut xvfb = Self::spawn(&mut command, "Xvfb (install the xvfb package)")?;
        let display = xvfb.first_line().await.context("Xvfb did not report its display")?;
        Ok((xvfb, display))
    }

    /// A private D-Bus session bus; returns it and its address.
    pub(crate) async fn dbus_session() -> Result<(Self, String)> {
        let mut command = Command::new("dbus-daemon");
        command
            .args(["--session", "--nofork", "--print-address=1"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null());
        let mut dbus = Self::spawn(&mut command, "dbus-daemon (install the dbus package)")?;
        let address = dbus.first_line().await.context("dbus-daemon did not report its address")?;
        Ok((dbus, address))
    }

    async fn first_line(&mut self) -> Result<String> {
        let stdout = self.child.stdout.take().context("stdout is not piped")?;
        let read = tokio::task::spawn_blocking(move || {
            let mut line = String::new();
            BufReader::new(stdout).read_line(&mut line).map(|_| line.trim().to_owned())
        });
        let line = tokio::time::timeout(Duration::from_secs(20), read)
            .await
            .with_context(|| format!("{} said nothing within 20 s", self.name))???;
        if line.is_empty() {
            bail!("{} exited before it was ready", self.name);
        }
        Ok(line)
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        // A negative pid signals the whole process group the child leads.
        let group = format!("-{}", self.child.id());
        let _ = Command::new("kill").args(["-TERM", "--", &group]).status();
        for _ in 0..50 {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = Command::new("kill").args(["-KILL", "--", &group]).status();
        let _ = self.child.wait();
    }
}

/// A loopback port nobody listens on right now.
pub(crate) fn free_loopback_port() -> Result<u16> {
    let listener = std::net::TcpListener::bind(("127.0.0.1", 0))?;
    Ok(listener.local_addr()?.port())
}

/// Waits until something accepts connections on `127.0.0.1:port`.
pub(crate) async fn wait_for_port(port: u16, within: Duration) -> Result<()> {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        if tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_ok() {
            return Ok(());
        }
        if tokio::time::Instant::now() >= deadline {
            bail!("nothing listens on 127.0.0.1:{port} after {within:?}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
