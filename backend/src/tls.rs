//! TLS for servers reached over a network.
//!
//! With certificate files, the server serves them. Without, it creates a certificate authority
//! once (kept in storage, so the CA in clients' profiles stays valid across restarts), and at
//! every start signs a fresh certificate for the public host name with it. The CA certificate
//! goes into the profile; clients trust exactly it, for this server only.
//!
//! The handshakes themselves run in `serve.rs`, each in its own task with a timeout.

use std::net::IpAddr;
use std::path::Path;
use std::sync::Arc;

use anyhow::Context as _;
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use serde::{Deserialize, Serialize};

use crate::config::Tls;
use crate::storage::Store;

/// Name of the stored certificate authority.
const CA_SECRET: &str = "tls-ca";

/// The server side of TLS: what rustls serves, and the CA certificate for the profile when the
/// certificate is self-signed.
#[derive(Debug)]
pub(crate) struct ServerTls {
    pub(crate) config: Arc<rustls::ServerConfig>,
    pub(crate) ca_certificate: Option<String>,
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct StoredCa {
    cert_pem: String,
    key_pem: String,
}

/// Sets up TLS as configured; `None` for plain HTTP. `hosts` are the names and addresses the
/// self-signed certificate must cover.
pub(crate) async fn setup(
    tls: &Tls,
    store: &dyn Store,
    ca_name: &str,
    hosts: &[String],
) -> anyhow::Result<Option<ServerTls>> {
    let (chain, key, ca_certificate) = match tls {
        Tls::Off => return Ok(None),
        Tls::Files { cert, key } => {
            let (chain, key) = read_files(cert, key)?;
            (chain, key, None)
        }
        Tls::SelfSigned => {
            let ca = load_or_create_ca(store, ca_name).await?;
            let (leaf, key) = sign_server_certificate(&ca, ca_name, hosts)?;
            let ca_der = CertificateDer::from_pem_slice(ca.cert_pem.as_bytes())
                .context("the stored CA certificate is corrupt")?;
            (vec![leaf, ca_der], key, Some(ca.cert_pem))
        }
    };
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .context("TLS protocol versions")?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .context("the TLS certificate and key do not form a usable pair")?;
    // WebSocket upgrades need HTTP/1.1.
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Some(ServerTls { config: Arc::new(config), ca_certificate }))
}

fn read_files(
    cert: &Path,
    key: &Path,
) -> anyhow::Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>)> {
    let chain = CertificateDer::pem_file_iter(cert)
        .with_context(|| format!("reading tls_cert {}", cert.display()))?
        .collect::<Result<Vec<_>, _>>()
        .with_context(|| format!("tls_cert {} is not a PEM certificate chain", cert.display()))?;
    if chain.is_empty() {
        anyhow::bail!("tls_cert {} holds no certificate", cert.display());
    }
    let key = PrivateKeyDer::from_pem_file(key).with_context(|| {
        format!("tls_key {} is not a PEM private key (PKCS#8, PKCS#1 or SEC1)", key.display())
    })?;
    Ok((chain, key))
}

fn ca_params(ca_name: &str) -> anyhow::Result<CertificateParams> {
    let mut params = CertificateParams::new(Vec::<String>::new())?;
    let mut name = DistinguishedName::new();
    name.push(DnType::OrganizationName, "IoT Chat");
    name.push(DnType::CommonName, format!("IoT Chat server CA {ca_name}"));
    params.distinguished_name = name;
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    Ok(params)
}

async fn load_or_create_ca(store: &dyn Store, ca_name: &str) -> anyhow::Result<StoredCa> {
    // Generated up front because the store's generator cannot fail; a key pair takes
    // microseconds, and the stored one wins when it exists.
    let key = KeyPair::generate().context("generating the CA key")?;
    let mut params = ca_params(ca_name)?;
    let now = time::OffsetDateTime::now_utc();
    params.not_before = now - time::Duration::days(1);
    params.not_after = now + time::Duration::days(3650);
    let cert = params.self_signed(&key).context("signing the CA certificate")?;
    let fresh =
        serde_json::to_vec(&StoredCa { cert_pem: cert.pem(), key_pem: key.serialize_pem() })?;
    let stored = store
        .secret_get_or_insert(CA_SECRET, Box::new(move || fresh))
        .await
        .context("loading the TLS certificate authority")?;
    serde_json::from_slice(&stored).context("the stored TLS certificate authority is corrupt")
}

/// A certificate for `hosts`, valid for 90 days from now (a new one is signed at every start).
fn sign_server_certificate(
    ca: &StoredCa,
    ca_name: &str,
    hosts: &[String],
) -> anyhow::Result<(CertificateDer<'static>, PrivateKeyDer<'static>)> {
    let ca_key = KeyPair::from_pem(&ca.key_pem).context("the stored CA key is corrupt")?;
    let issuer = Issuer::new(ca_params(ca_name)?, ca_key);
    let mut params = CertificateParams::new(hosts.to_vec())
        .with_context(|| format!("a certificate cannot name {hosts:?}"))?;
    let mut name = DistinguishedName::new();
    name.push(DnType::CommonName, hosts.first().cloned().unwrap_or_default());
    params.distinguished_name = name;
    params.use_authority_key_identifier_extension = true;
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth];
    let now = time::OffsetDateTime::now_utc();
    params.not_before = now - time::Duration::hours(1);
    params.not_after = now + time::Duration::days(90);
    let key = KeyPair::generate().context("generating the server key")?;
    let cert = params.signed_by(&key, &issuer).context("signing the server certificate")?;
    let key = PrivateKeyDer::try_from(key.serialize_der())
        .map_err(|e| anyhow::anyhow!("the server key: {e}"))?;
    Ok((cert.der().clone(), key))
}

/// The names a self-signed certificate covers: the public host, and this computer's loopback
/// names so local clients can use TLS too.
pub(crate) fn certificate_hosts(public_host: &str, listen: IpAddr) -> Vec<String> {
    let mut hosts = vec![public_host.to_owned()];
    let mut add = |h: String| {
        if !hosts.contains(&h) {
            hosts.push(h);
        }
    };
    if !listen.is_unspecified() {
        add(listen.to_string());
    }
    for local in ["localhost", "127.0.0.1", "::1"] {
        add(local.to_owned());
    }
    hosts
}
