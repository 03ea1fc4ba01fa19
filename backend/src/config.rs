//! Configuration: built-in defaults ← config file ← environment ← flags.

use std::net::SocketAddr;
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
}

/// What a config file may contain; every key optional.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    pub data_dir: Option<PathBuf>,
    pub listen: Option<SocketAddr>,
    pub region: Option<String>,
    pub credentials_ttl_secs: Option<u64>,
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
        let config = Config {
            data_dir: overrides
                .data_dir
                .or(file.data_dir)
                .or(defaults.data_dir)
                .unwrap_or_else(default_data_dir),
            listen: overrides.listen.or(file.listen).or(defaults.listen).context("listen")?,
            region: overrides.region.or(file.region).or(defaults.region).context("region")?,
            credentials_ttl_secs: overrides
                .credentials_ttl_secs
                .or(file.credentials_ttl_secs)
                .or(defaults.credentials_ttl_secs)
                .context("credentials_ttl_secs")?,
        };
        config.check()?;
        Ok(config)
    }

    fn check(&self) -> anyhow::Result<()> {
        if !self.listen.ip().is_loopback() {
            bail!(
                "listen = {}: only loopback addresses (127.0.0.1, ::1) are allowed, because this \
                 server cannot serve TLS yet and passwords must never cross a network in clear",
                self.listen
            );
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
        if !(1..=12 * 3600).contains(&self.credentials_ttl_secs) {
            bail!(
                "credentials_ttl_secs = {}: must be between 1 and 43200 (12 hours)",
                self.credentials_ttl_secs
            );
        }
        Ok(())
    }

    pub fn credentials_ttl(&self) -> Duration {
        Duration::from_secs(self.credentials_ttl_secs)
    }

    /// A configuration for tests: loopback, the given data directory, defaults otherwise.
    pub fn for_data_dir(data_dir: &Path) -> anyhow::Result<Self> {
        let overrides = FileConfig { data_dir: Some(data_dir.to_owned()), ..FileConfig::default() };
        Self::resolve(FileConfig::default(), overrides)
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
        let listen =
            FileConfig { listen: Some("0.0.0.0:8787".parse().unwrap()), ..Default::default() };
        let err = Config::resolve(FileConfig::default(), listen).unwrap_err().to_string();
        assert!(err.contains("only loopback"), "{err}");
        let region = FileConfig { region: Some("US East".into()), ..Default::default() };
        assert!(Config::resolve(FileConfig::default(), region).is_err());
        let ttl = FileConfig { credentials_ttl_secs: Some(0), ..Default::default() };
        assert!(Config::resolve(FileConfig::default(), ttl).is_err());
        assert!(toml::from_str::<FileConfig>("lissen = \"x\"").is_err(), "typos are errors");
    }
}
