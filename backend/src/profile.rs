//! The client profile: everything a client needs to reach a backend. The local server writes it
//! to `<data dir>/profile.json`, prints it (`iotchat-server profile`) and serves it at
//! `/profile.json`; an AWS deployment prints the same keys without the custom endpoints.

use std::net::SocketAddr;
use std::path::Path;

use anyhow::Context as _;
use serde::{Deserialize, Serialize};

use crate::PoolIds;

/// File name of the profile in the data directory.
pub const PROFILE_FILE: &str = "profile.json";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Profile {
    pub region: String,
    pub user_pool_id: String,
    pub user_pool_client_id: String,
    pub identity_pool_id: String,
    pub api_url: String,
    pub iot_endpoint: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cognito_idp_endpoint: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cognito_identity_endpoint: Option<String>,
}

impl Profile {
    /// The profile of a local server listening on `addr`.
    pub fn local(pool: &PoolIds, addr: SocketAddr) -> Self {
        let base = format!("http://{addr}");
        Self {
            region: pool.region.clone(),
            user_pool_id: pool.user_pool_id.clone(),
            user_pool_client_id: pool.client_id.clone(),
            identity_pool_id: pool.identity_pool_id.clone(),
            api_url: format!("{base}/api"),
            iot_endpoint: format!("ws://{addr}/mqtt"),
            cognito_idp_endpoint: Some(base.clone()),
            cognito_identity_endpoint: Some(base),
        }
    }

    /// Writes `profile.json` into `dir` (atomically: a reader never sees half a file).
    pub fn write(&self, dir: &Path) -> anyhow::Result<()> {
        let tmp = dir.join(format!("{PROFILE_FILE}.tmp"));
        std::fs::write(&tmp, serde_json::to_vec_pretty(self)?)
            .with_context(|| format!("writing {}", tmp.display()))?;
        std::fs::rename(&tmp, dir.join(PROFILE_FILE))
            .with_context(|| format!("writing {}", dir.join(PROFILE_FILE).display()))?;
        Ok(())
    }

    /// Reads `<dir>/profile.json`, written by a server that has started on that data directory.
    pub fn read(dir: &Path) -> anyhow::Result<Self> {
        let path = dir.join(PROFILE_FILE);
        let bytes = std::fs::read(&path).with_context(|| {
            format!("reading {} (has the server started on this data directory?)", path.display())
        })?;
        serde_json::from_slice(&bytes)
            .with_context(|| format!("{} is not a profile", path.display()))
    }
}
