//! Configuration: built-in defaults ← config file ← environment ← flags.

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context as _, bail};
use serde::Deserialize;

/// The commented default configuration, as `iotchat-server print-config` prints it.
pub const DEFAULT_CONFIG: &str = include_str!("config.default.toml");

/// The server's configuration, fully resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    pub data_dir: PathBuf,
    pub listen: SocketAddr,
    pub region: String,
    pub credentials_ttl_secs: u64,
    pub tls: Tls,
    /// The host name (or IP address) clients use to reach the server: it goes into the profile's
    /// URLs and the self-signed certificate.
    pub public_host: String,
    /// What one client may hold of the server; the defaults suit every deployment, tests
    /// shrink them.
    pub limits: Limits,
    /// The loopback ports of the hosted UI's registered redirect URIs.
    pub callback_ports: Vec<u16>,
    /// How long one MQTT WebSocket connection may last (AWS IoT: 24 hours).
    pub max_connection_age_secs: u64,
}

/// Bounds on connections, so that no client (or crowd of them) can exhaust the server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Connections served at once; one more is closed as soon as it is accepted.
    pub max_connections: usize,
    /// TLS handshakes in progress at once; one more is closed as soon as it is accepted.
    pub max_handshakes: usize,
    /// How long a client may take to finish its TLS handshake.
    pub handshake_timeout: Duration,
    /// How long a request's headers may take to arrive, and how long a keep-alive connection
    /// may sit idle between requests.
    pub header_read_timeout: Duration,
    /// How long the broker waits for an MQTT client to take what it is sent before dropping
    /// it; a client that stops reading would otherwise make the broker buffer without end.
    pub client_write_timeout: Duration,
    /// How long a hosted-UI authorization code stays good (Cognito: five minutes).
    pub oauth_code_ttl: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_connections: 4096,
            max_handshakes: 256,
            handshake_timeout: Duration::from_secs(10),
            header_read_timeout: Duration::from_secs(20),
            client_write_timeout: Duration::from_secs(30),
            oauth_code_ttl: Duration::from_secs(300),
        }
    }
}

/// Whether and how the server speaks TLS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Tls {
    /// Plain HTTP and WebSocket: loopback only.
    Off,
    /// A certificate signed by a CA the server generates once and keeps in its data directory;
    /// the profile carries the CA certificate so clients trust exactly it.
    SelfSigned,
    /// A certificate chain and private key from PEM files (for example from an ACME client).
    Files { cert: PathBuf, key: PathBuf },
}

/// The `tls` setting as written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum TlsMode {
    /// Plain on loopback addresses, TLS on any other.
    Auto,
    On,
    Off,
}

/// What a config file may contain; every key optional. The same keys are `serve`'s flags (and
/// `IOTCHAT_*` variables), which override the file.
#[derive(Debug, Default, Deserialize, clap::Args)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    /// Where the server keeps its database and keys.
    #[arg(long, env = "IOTCHAT_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// The address to listen on (default 127.0.0.1:8787).
    #[arg(long, env = "IOTCHAT_LISTEN")]
    pub listen: Option<SocketAddr>,
    /// The AWS region the server presents itself as.
    #[arg(long, env = "IOTCHAT_REGION")]
    pub region: Option<String>,
    /// How long the temporary AWS credentials it hands out last.
    #[arg(long, env = "IOTCHAT_CREDENTIALS_TTL_SECS")]
    pub credentials_ttl_secs: Option<u64>,
    /// auto: plain HTTP on loopback addresses, TLS on any other; on; off (loopback only).
    #[arg(long, env = "IOTCHAT_TLS", value_enum)]
    pub tls: Option<TlsMode>,
    /// PEM certificate chain to serve (with --tls-key); default: a self-signed one.
    #[arg(long, env = "IOTCHAT_TLS_CERT")]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key of --tls-cert.
    #[arg(long, env = "IOTCHAT_TLS_KEY")]
    pub tls_key: Option<PathBuf>,
    /// Host name or address clients use to reach the server (profile URLs, certificate).
    #[arg(long, env = "IOTCHAT_PUBLIC_HOST")]
    pub public_host: Option<String>,
    /// Loopback ports of the app's hosted-UI redirect URIs (http://localhost:<port>/callback).
    #[arg(long, env = "IOTCHAT_CALLBACK_PORTS", value_delimiter = ',')]
    pub callback_ports: Option<Vec<u16>>,
    /// How long one MQTT WebSocket connection may last, in seconds (at most 86400, AWS IoT's).
    #[arg(long, env = "IOTCHAT_MAX_CONNECTION_AGE_SECS")]
    pub max_connection_age_secs: Option<u64>,
}

impl FileConfig {
    pub fn read(path: &Path) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading the config file {}", path.display()))?;
        toml::from_str(&text).with_context(|| format!("in the config file {}", path.display()))
    }
}

/// The platform's data directory for the server (`~/.local/share/iotchat-server` on Linux).
pub fn default_data_dir() -> PathBuf {
    dirs::data_dir().unwrap_or_else(|| PathBuf::from(".")).join("iotchat-server")
}

impl Config {
    /// Layers `overrides` (environment and flags, already merged by clap) over `file` over the
    /// defaults, and checks the result.
    pub fn resolve(file: FileConfig, overrides: FileConfig) -> anyhow::Result<Self> {
        let defaults: FileConfig =
            toml::from_str(DEFAULT_CONFIG).context("the built-in default")?;
        let listen: SocketAddr =
            overrides.listen.or(file.listen).or(defaults.listen).context("listen")?;
        let tls = resolve_tls(
            overrides.tls.or(file.tls).or(defaults.tls).unwrap_or(TlsMode::Auto),
            overrides.tls_cert.or(file.tls_cert),
            overrides.tls_key.or(file.tls_key),
            listen.ip(),
        )?;
        let public_host = match overrides.public_host.or(file.public_host) {
            Some(host) => host,
            None if listen.ip().is_unspecified() => {
                gethostname::gethostname().into_string().ok().filter(|h| !h.is_empty()).context(
                    "this machine's host name is unusable; set public_host to the name or \
                     address clients use to reach the server",
                )?
            }
            None => listen.ip().to_string(),
        };
        let config = Config {
            data_dir: overrides
                .data_dir
                .or(file.data_dir)
                .or(defaults.data_dir)
                .unwrap_or_else(default_data_dir),
            listen,
            region: overrides.region.or(file.region).or(defaults.region).context("region")?,
            credentials_ttl_secs: overrides
                .credentials_ttl_secs
                .or(file.credentials_ttl_secs)
                .or(defaults.credentials_ttl_secs)
                .context("credentials_ttl_secs")?,
            tls,
            public_host,
            limits: Limits::default(),
            callback_ports: overrides
                .callback_ports
                .or(file.callback_ports)
                .or(defaults.callback_ports)
                .context("callback_ports")?,
            max_connection_age_secs: overrides
                .max_connection_age_secs
                .or(file.max_connection_age_secs)
                .or(defaults.max_connection_age_secs)
                .context("max_connection_age_secs")?,
        };
        config.check()?;
        Ok(config)
    }

    fn check(&self) -> anyhow::Result<()> {
        if let Err(problem) = check_host(&self.public_host) {
            bail!("public_host = {:?}: {problem}", self.public_host);
        }
        let region_ok = !self.region.is_empty()
            && self.region.len() <= 32
            && self
                .region
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        if !region_ok {
            bail!("region = {:?}: use an AWS-style region name such as us-east-1", self.region);
        }
        let mut ports = self.callback_ports.clone();
        ports.sort_unstable();
        ports.dedup();
        if !(1..=8).contains(&self.callback_ports.len())
            || ports.len() != self.callback_ports.len()
            || ports.iter().any(|port| *port < 1024)
        {
            bail!(
                "callback_ports = {:?}: give 1 to 8 different ports from 1024 up",
                self.callback_ports
            );
        }
        if !(1..=24 * 3600).contains(&self.max_connection_age_secs) {
            bail!(
                "max_connection_age_secs = {}: must be between 1 and 86400 (24 hours, AWS IoT's \
                 limit)",
                self.max_connection_age_secs
            );
        }
        if !(1..=12 * 3600).contains(&self.credentials_ttl_secs) {
            bail!(
                "credentials_ttl_secs = {}: must be between 1 and 43200 (12 hours)",
                self.credentials_ttl_secs
            );
        }
        Ok(())
    }

    /// The `host:port` clients use, for a server bound to `port`.
    pub fn public_authority(&self, port: u16) -> String {
        match self.public_host.parse::<IpAddr>() {
            Ok(IpAddr::V6(ip)) => format!("[{ip}]:{port}"),
            _ => format!("{}:{port}", self.public_host),
        }
    }

    pub fn credentials_ttl(&self) -> Duration {
        Duration::from_secs(self.credentials_ttl_secs)
    }

    pub fn max_connection_age(&self) -> Duration {
        Duration::from_secs(self.max_connection_age_secs)
    }

    /// A configuration for tests: loopback, the given data directory, defaults otherwise.
    pub fn for_data_dir(data_dir: &Path) -> anyhow::Result<Self> {
        let overrides = FileConfig { data_dir: Some(data_dir.to_owned()), ..FileConfig::default() };
        Self::resolve(FileConfig::default(), overrides)
    }
}

fn resolve_tls(
    mode: TlsMode,
    cert: Option<PathBuf>,
    key: Option<PathBuf>,
    ip: IpAddr,
) -> anyhow::Result<Tls> {
    let files = match (cert, key) {
        (Some(cert), Some(key)) => Some(Tls::Files { cert, key }),
        (None, None) => None,
        (Some(_), None) => bail!("tls_cert is set but tls_key is not: give both PEM files"),
        (None, Some(_)) => bail!("tls_key is set but tls_cert is not: give both PEM files"),
    };
    Ok(match (mode, files) {
        (TlsMode::Off, Some(_)) => {
            bail!("tls = \"off\" but tls_cert and tls_key are set: remove one or the other")
        }
        (TlsMode::Off, None) if !ip.is_loopback() => bail!(
            "tls = \"off\" is allowed only on loopback addresses (127.0.0.1, ::1): on {ip} \
             passwords would cross a network in clear. Use tls = \"auto\" (a self-signed \
             certificate the profile carries) or give tls_cert and tls_key"
        ),
        (TlsMode::Off, None) => Tls::Off,
        (_, Some(files)) => files,
        (TlsMode::On, None) => Tls::SelfSigned,
        (TlsMode::Auto, None) if ip.is_loopback() => Tls::Off,
        (TlsMode::Auto, None) => Tls::SelfSigned,
    })
}

/// Whether `host` can go into a URL's authority and a certificate: a DNS name or an IP address.
fn check_host(host: &str) -> Result<(), &'static str> {
    if host.parse::<IpAddr>().is_ok() {
        return Ok(());
    }
    let label_ok = |label: &str| {
        !label.is_empty()
            && label.len() <= 63
            && label.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            && !label.starts_with('-')
            && !label.ends_with('-')
    };
    if host.len() <= 253 && host.split('.').all(label_ok) {
        Ok(())
    } else {
        Err("expected a host name such as chat.example.lan, or an IP address")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_file_parses_and_resolves() {
        let config = Config::resolve(FileConfig::default(), FileConfig::default()).unwrap();
        assert_eq!(config.listen, "127.0.0.1:8787".parse().unwrap());
        assert_eq!(config.region, "us-east-1");
        assert_eq!(config.credentials_ttl_secs, 3600);
        assert_eq!(config.callback_ports, [28787, 28788, 28789]);
    }

    #[test]
    fn overrides_win_over_the_file() {
        let file = FileConfig {
            region: Some("eu-west-1".into()),
            credentials_ttl_secs: Some(5),
            ..Default::default()
        };
        let overrides = FileConfig { credentials_ttl_secs: Some(7), ..Default::default() };
        let config = Config::resolve(file, overrides).unwrap();
        assert_eq!((config.region.as_str(), config.credentials_ttl_secs), ("eu-west-1", 7));
    }

    #[test]
    fn non_loopback_and_bad_values_are_refused_with_reasons() {
        let listen = FileConfig {
            listen: Some("0.0.0.0:8787".parse().unwrap()),
            tls: Some(TlsMode::Off),
            ..Default::default()
        };
        let err = Config::resolve(FileConfig::default(), listen).unwrap_err().to_string();
        assert!(err.contains("only on loopback"), "{err}");
        let host = FileConfig { public_host: Some("chat example".into()), ..Default::default() };
        let err = Config::resolve(FileConfig::default(), host).unwrap_err().to_string();
        assert!(err.contains("public_host"), "{err}");
        let region = FileConfig { region: Some("US East".into()), ..Default::default() };
        assert!(Config::resolve(FileConfig::default(), region).is_err());
        let ports = FileConfig { callback_ports: Some(vec![80]), ..Default::default() };
        let err = Config::resolve(FileConfig::default(), ports).unwrap_err().to_string();
        assert!(err.contains("callback_ports"), "{err}");
        let ports = FileConfig { callback_ports: Some(vec![30000, 30000]), ..Default::default() };
        let err = Config::resolve(FileConfig::default(), ports).unwrap_err().to_string();
        assert!(err.contains("callback_ports"), "{err}");
        let ttl = FileConfig { credentials_ttl_secs: Some(0), ..Default::default() };
        assert!(Config::resolve(FileConfig::default(), ttl).is_err());
        assert!(toml::from_str::<FileConfig>("lissen = \"x\"").is_err(), "typos are errors");
    }

    #[test]
    fn tls_follows_the_address_unless_told() {
        let resolve = |listen: &str, tls: Option<TlsMode>, files: bool| {
            let overrides = FileConfig {
                listen: Some(listen.parse().unwrap()),
                tls,
                tls_cert: files.then(|| "c.pem".into()),
                tls_key: files.then(|| "k.pem".into()),
                ..Default::default()
            };
            Config::resolve(FileConfig::default(), overrides)
        };
        assert_eq!(resolve("127.0.0.1:1", None, false).unwrap().tls, Tls::Off);
        assert_eq!(resolve("[::1]:1", None, false).unwrap().tls, Tls::Off);
        assert_eq!(resolve("192.168.1.5:1", None, false).unwrap().tls, Tls::SelfSigned);
        assert_eq!(resolve("127.0.0.1:1", Some(TlsMode::On), false).unwrap().tls, Tls::SelfSigned);
        let files = resolve("0.0.0.0:1", None, true).unwrap();
        assert!(matches!(files.tls, Tls::Files { .. }));
        assert!(!files.public_host.is_empty(), "all interfaces: the machine's host name");
        assert!(resolve("127.0.0.1:1", Some(TlsMode::Off), true).is_err());
        let half = FileConfig { tls_cert: Some("c.pem".into()), ..Default::default() };
        let err = Config::resolve(FileConfig::default(), half).unwrap_err().to_string();
        assert!(err.contains("tls_key"), "{err}");
    }

    #[test]
    fn the_public_address_brackets_ipv6() {
        let config = |listen: &str| {
            let overrides =
                FileConfig { listen: Some(listen.parse().unwrap()), ..Default::default() };
            Config::resolve(FileConfig::default(), overrides).unwrap()
        };
        assert_eq!(config("127.0.0.1:0").public_authority(8787), "127.0.0.1:8787");
        assert_eq!(config("[::1]:0").public_authority(8787), "[::1]:8787");
    }
}
