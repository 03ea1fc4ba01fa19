//! A backend as the client reaches it: its [`Profile`], and the TLS trust that goes with it.
//!
//! A profile with a `caCertificate` is trusted through exactly that CA (HTTPS, WSS and the AWS
//! SDK clients alike); any other profile uses the platform's root certificates. Plain `http://`
//! and `ws://` only ever reach this computer (the profile type refuses anything else).

use std::path::Path;
use std::sync::Arc;

use aws_smithy_http_client::tls;
use iotchat_protocol::Profile;
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject as _;

use crate::error::{ClientError, Result};

/// How long a request to the backend may take before the user hears about it.
pub(crate) const HTTP_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(20);

/// The address of the server `cargo xtask run` starts (and `iotchat-server serve` defaults to).
pub const LOCAL_SERVER: &str = "http://127.0.0.1:8787";

/// A profile plus the clients' TLS configuration for it.
#[derive(Debug, Clone)]
pub struct Backend {
    pub profile: Profile,
    pub(crate) tls: Arc<rustls::ClientConfig>,
}

impl Backend {
    pub fn new(profile: Profile) -> Result<Self> {
        let tls = rustls_config(profile.ca_certificate.as_deref())?;
        Ok(Self { profile, tls })
    }

    /// Reads a profile file: ours, as `iotchat-server profile` prints it, or the seed's
    /// `config.json`.
    pub fn from_file(path: &Path) -> Result<Self> {
        let bytes = std::fs::read(path).map_err(|e| {
            ClientError::invalid(format!("Cannot read the profile {}: {e}", path.display()))
        })?;
        let profile = Profile::from_json(&bytes)
            .map_err(|e| ClientError::invalid(format!("{}: {e}", path.display())))?;
        Self::new(profile)
    }

    /// Fetches the profile a server publishes at `<address>/profile.json`. `ca_pem` is the CA
    /// to trust for an `https://` server with a self-signed certificate (as its operator hands
    /// it out); the profile must then carry the same CA.
    pub async fn fetch(address: &str, ca_pem: Option<&str>) -> Result<Self> {
        let base = address.trim_end_matches('/');
        if !(base.starts_with("http://") || base.starts_with("https://")) {
            return Err(ClientError::invalid(format!(
                "{address} is not a server address; use http://host:port or https://host:port"
            )));
        }
        let http = http_client(&rustls_config(ca_pem)?)?;
        let url = format!("{base}/profile.json");
        let response = http.get(&url).send().await.map_err(|e| {
            ClientError::unavailable(format!(
                "Cannot reach the server at {base}: {}",
                error_chain(&e)
            ))
        })?;
        if !response.status().is_success() {
            return Err(ClientError::unavailable(format!(
                "{url} answered {}; is this an IoT Chat server?",
                response.status()
            )));
        }
        let bytes = response.bytes().await.map_err(|e| {
            ClientError::unavailable(format!("Reading {url} failed: {}", error_chain(&e)))
        })?;
        let mut profile = Profile::from_json(&bytes)
            .map_err(|e| ClientError::invalid(format!("{url} is not a usable profile: {e}")))?;
        if profile.ca_certificate.is_none() {
            // The CA that let us fetch the profile is the one to keep trusting.
            profile.ca_certificate = ca_pem.map(str::to_owned);
        }
        Self::new(profile)
    }

    /// A short label for people: "this computer" for a local server, else the API's host.
    pub fn label(&self) -> String {
        let host = url::Url::parse(&self.profile.api_url)
            .ok()
            .and_then(|u| u.host_str().map(str::to_owned))
            .unwrap_or_default();
        match host.as_str() {
            "127.0.0.1" | "localhost" | "[::1]" => "this computer".to_owned(),
            _ if self.profile.is_self_hosted() => host,
            _ => format!("AWS ({})", self.profile.region),
        }
    }

    /// The HTTP client of the AWS SDK clients, with this backend's trust.
    pub(crate) fn sdk_http_client(
        &self,
    ) -> Result<aws_smithy_runtime_api::client::http::SharedHttpClient> {
        let trust = match &self.profile.ca_certificate {
            Some(pem) => tls::TrustStore::empty().with_pem_certificate(pem.as_bytes()),
            None => tls::TrustStore::default(),
        };
        let context = tls::TlsContext::builder()
            .with_trust_store(trust)
            .build()
            .map_err(|e| ClientError::invalid(format!("The profile's TLS settings: {e}")))?;
        Ok(aws_smithy_http_client::Builder::new()
            .tls_provider(tls::Provider::Rustls(tls::rustls_provider::CryptoMode::AwsLc))
            .tls_context(context)
            .build_https())
    }

    /// A reqwest client with this backend's trust.
    pub(crate) fn http_client(&self) -> Result<reqwest::Client> {
        http_client(&self.tls)
    }

    /// A reqwest client with this backend's trust that follows no redirect, for OAuth 2
    /// requests (RFC 6749 §5: the token endpoint's answer is the response itself).
    pub(crate) fn oauth_http_client(&self) -> Result<reqwest::Client> {
        reqwest::Client::builder()
            .use_preconfigured_tls((*self.tls).clone())
            .timeout(HTTP_TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| ClientError::internal(format!("Cannot build an HTTP client: {e}")))
    }
}

fn http_client(tls: &Arc<rustls::ClientConfig>) -> Result<reqwest::Client> {
    reqwest::Client::builder()
        .use_preconfigured_tls((**tls).clone())
        .timeout(HTTP_TIMEOUT)
        .build()
        .map_err(|e| ClientError::internal(format!("Cannot build an HTTP client: {e}")))
}

/// rustls settings trusting the given CA only, or else the platform's roots.
fn rustls_config(ca_pem: Option<&str>) -> Result<Arc<rustls::ClientConfig>> {
    let mut roots = rustls::RootCertStore::empty();
    match ca_pem {
        Some(pem) => {
            for cert in CertificateDer::pem_slice_iter(pem.as_bytes()) {
                let cert = cert.map_err(|e| {
                    ClientError::invalid(format!("The profile's caCertificate is not PEM: {e}"))
                })?;
                roots.add(cert).map_err(|e| {
                    ClientError::invalid(format!("The profile's caCertificate is unusable: {e}"))
                })?;
            }
        }
        None => {
            let native = rustls_native_certs::load_native_certs();
            for cert in native.certs {
                // A broken system certificate is skipped, as browsers do.
                let _ = roots.add(cert);
            }
            if roots.is_empty() {
                tracing::warn!(errors = ?native.errors, "no system root certificates found");
            }
        }
    }
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| ClientError::internal(format!("TLS: {e}")))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

/// An error with its causes, which is where reqwest and the SDK keep the useful part.
pub(crate) fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}
