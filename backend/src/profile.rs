//! The client profile of this server (the type is shared: [`iotchat_protocol::Profile`]). The
//! server writes it to `<data dir>/profile.json`, prints it (`iotchat-server profile`) and serves
//! it at `/profile.json`.

use std::path::Path;

use anyhow::Context as _;
pub use iotchat_protocol::Profile;

use crate::PoolIds;

/// File name of the profile in the data directory.
pub const PROFILE_FILE: &str = "profile.json";

/// How clients reach this server: `http` or `https`, and `host:port`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicAddress {
    pub tls: bool,
    /// `host:port`, with IPv6 hosts in brackets.
    pub authority: String,
}

/// The profile of this server, reached at `public`; `ca_certificate` when the server's
/// certificate is self-signed.
pub(crate) fn local(
    pool: &PoolIds,
    public: &PublicAddress,
    ca_certificate: Option<String>,
    hosted_ui: &crate::cognito::hosted_ui::HostedUiSettings,
) -> Profile {
    let (http, ws) = if public.tls { ("https", "wss") } else { ("http", "ws") };
    let base = format!("{http}://{}", public.authority);
    Profile {
        region: pool.region.clone(),
        user_pool_id: pool.user_pool_id.clone(),
        user_pool_client_id: pool.client_id.clone(),
        identity_pool_id: pool.identity_pool_id.clone(),
        api_url: format!("{base}/api"),
        iot_endpoint: format!("{ws}://{}/mqtt", public.authority),
        cognito_idp_endpoint: Some(base.clone()),
        cognito_identity_endpoint: Some(base.clone()),
        ca_certificate,
        // The providers this server signs in with; the hosted UI itself is always there.
        hosted_ui: Some(iotchat_protocol::HostedUi {
            url: base,
            providers: if hosted_ui.test_idp {
                vec![crate::cognito::hosted_ui::TEST_IDP.to_owned()]
            } else {
                Vec::new()
            },
            redirect_uris: hosted_ui.redirect_uris.clone(),
        }),
    }
}

/// Writes `profile.json` into `dir` (atomically: a reader never sees half a file).
pub fn write(profile: &Profile, dir: &Path) -> anyhow::Result<()> {
    let tmp = dir.join(format!("{PROFILE_FILE}.tmp"));
    std::fs::write(&tmp, profile.to_json_pretty())
        .with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, dir.join(PROFILE_FILE))
        .with_context(|| format!("writing {}", dir.join(PROFILE_FILE).display()))?;
    Ok(())
}

/// Reads `<dir>/profile.json`, written by a server that has started on that data directory.
pub fn read(dir: &Path) -> anyhow::Result<Profile> {
    let path = dir.join(PROFILE_FILE);
    let bytes = std::fs::read(&path).with_context(|| {
        format!("reading {} (has the server started on this data directory?)", path.display())
    })?;
    Profile::from_json(&bytes)
        .with_context(|| format!("{} is not a usable profile", path.display()))
}
