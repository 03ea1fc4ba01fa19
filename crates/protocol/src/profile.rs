//! The client profile: everything a client needs to reach a backend.
//!
//! The local server writes it (`iotchat-server profile`, `GET /profile.json`); an AWS deployment
//! prints the same keys without the two custom Cognito endpoints. A profile is also accepted in
//! the seed's `config.json` shape (`AwsRegion`, `UserPoolId`, `UserPoolClientId`,
//! `IdentityPoolId`, `AwsApiGatewayInvokeUrl`, `AwsIotHost`), so an existing deployment of the
//! original sample can be imported as it is.
//!
//! Every way of reading a profile validates it: a [`Profile`] value always has well-formed ids,
//! URLs with the right schemes, and no unencrypted URL to another machine.

use serde::{Deserialize, Serialize};
use url::Url;

/// A validated backend profile. Serialises with the camelCase keys the server prints.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", try_from = "WireProfile")]
pub struct Profile {
    pub region: String,
    pub user_pool_id: String,
    pub user_pool_client_id: String,
    pub identity_pool_id: String,
    /// Base URL of the HTTP API, without a trailing slash (`…/api`).
    pub api_url: String,
    /// The MQTT-over-WebSocket URL (`ws://…/mqtt` locally, `wss://<host>/mqtt` on AWS).
    pub iot_endpoint: String,
    /// Cognito user-pool endpoint; absent for AWS, where the SDK's own endpoint is used.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cognito_idp_endpoint: Option<String>,
    /// Cognito identity-pool endpoint; absent for AWS.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cognito_identity_endpoint: Option<String>,
    /// PEM certificate of the authority that signed the server's self-signed TLS certificate.
    /// Clients trust exactly it, for this server only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_certificate: Option<String>,
    /// The user pool's hosted UI, when it signs people in through other identity providers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hosted_ui: Option<HostedUi>,
}

/// Where the hosted UI is, which identity providers it offers, and the loopback redirect URIs
/// registered for the app (the app listens on the first free one).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HostedUi {
    /// Base URL of `/oauth2/authorize` and `/oauth2/token`, without a trailing slash.
    pub url: String,
    /// Provider names as the user pool knows them (`Google`, `Facebook`, `TestIdP`).
    pub providers: Vec<String>,
    /// Exactly `http://localhost:<port>/callback`, as registered on the app client.
    pub redirect_uris: Vec<String>,
}

/// The loopback redirect URI of `port`, as the app client registers it.
pub fn loopback_redirect_uri(port: u16) -> String {
    format!("http://localhost:{port}/callback")
}

impl HostedUi {
    /// The port of each redirect URI, in order.
    pub fn redirect_ports(&self) -> Vec<u16> {
        self.redirect_uris.iter().filter_map(|uri| redirect_port(uri)).collect()
    }

    fn checked(self) -> Result<Self, ProfileError> {
        let url = check_url("hostedUi.url", &self.url, Scheme::Http)?;
        if self.providers.len() > 16 {
            return Err(invalid("hostedUi.providers", "(list)", "at most 16 providers"));
        }
        for provider in &self.providers {
            let ok = (1..=32).contains(&provider.len())
                && provider.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
            if !ok {
                return Err(invalid(
                    "hostedUi.providers",
                    provider,
                    "a provider name is 1–32 letters, digits or underscores",
                ));
            }
        }
        if self.redirect_uris.is_empty() || self.redirect_uris.len() > 8 {
            return Err(invalid("hostedUi.redirectUris", "(list)", "give 1 to 8 redirect URIs"));
        }
        for uri in &self.redirect_uris {
            if redirect_port(uri).is_none() {
                return Err(invalid(
                    "hostedUi.redirectUris",
                    uri,
                    "the app listens only at http://localhost:<port>/callback",
                ));
            }
        }
        Ok(Self { url, ..self })
    }
}

/// The port of `http://localhost:<port>/callback`, the only redirect URI form the app uses.
fn redirect_port(uri: &str) -> Option<u16> {
    let port = uri.strip_prefix("http://localhost:")?.strip_suffix("/callback")?;
    let ok = !port.is_empty() && port.len() <= 5 && port.bytes().all(|b| b.is_ascii_digit());
    ok.then(|| port.parse::<u16>().ok()).flatten().filter(|p| *p > 0)
}

/// Why a document is not a usable profile.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProfileError {
    #[error("the profile is not valid JSON: {0}")]
    Json(String),
    #[error("the profile has no {0}")]
    Missing(&'static str),
    #[error("the profile's {key} {value:?} is not valid: {problem}")]
    Invalid { key: &'static str, value: String, problem: &'static str },
    #[error(
        "the profile's {key} {value:?} is not encrypted; http:// and ws:// are allowed only for \
         this computer (localhost), so passwords never cross a network in clear — use https:// \
         and wss://"
    )]
    Insecure { key: &'static str, value: String },
}

impl Profile {
    /// Reads a profile from JSON in either shape (ours or the seed's `config.json`).
    pub fn from_json(json: &[u8]) -> Result<Self, ProfileError> {
        let wire: WireProfile =
            serde_json::from_slice(json).map_err(|e| ProfileError::Json(e.to_string()))?;
        Self::try_from(wire)
    }

    /// Pretty JSON, as the server writes it.
    pub fn to_json_pretty(&self) -> String {
        // A struct of strings always serialises.
        serde_json::to_string_pretty(self).unwrap_or_default()
    }

    /// True when the profile names custom Cognito endpoints (a local or self-hosted server).
    pub fn is_self_hosted(&self) -> bool {
        self.cognito_idp_endpoint.is_some()
    }
}

/// What a profile document may contain: our keys, or the seed's.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct WireProfile {
    #[serde(alias = "AwsRegion")]
    region: Option<String>,
    #[serde(alias = "UserPoolId")]
    user_pool_id: Option<String>,
    #[serde(alias = "UserPoolClientId")]
    user_pool_client_id: Option<String>,
    #[serde(alias = "IdentityPoolId")]
    identity_pool_id: Option<String>,
    #[serde(alias = "AwsApiGatewayInvokeUrl")]
    api_url: Option<String>,
    iot_endpoint: Option<String>,
    /// The seed's bare IoT host name (`xxxx-ats.iot.us-east-1.amazonaws.com`).
    #[serde(rename = "AwsIotHost")]
    aws_iot_host: Option<String>,
    cognito_idp_endpoint: Option<String>,
    cognito_identity_endpoint: Option<String>,
    ca_certificate: Option<String>,
    #[serde(default)]
    hosted_ui: Option<HostedUi>,
}

impl TryFrom<WireProfile> for Profile {
    type Error = ProfileError;

    fn try_from(wire: WireProfile) -> Result<Self, ProfileError> {
        let region = required(wire.region, "region (or AwsRegion)")?;
        let region_ok = region.len() <= 32
            && region.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        if !region_ok {
            return Err(invalid("region", &region, "use an AWS region name such as us-east-1"));
        }

        let user_pool_id = required(wire.user_pool_id, "userPoolId (or UserPoolId)")?;
        let pool_ok = user_pool_id
            .strip_prefix(&region)
            .and_then(|rest| rest.strip_prefix('_'))
            .is_some_and(|id| !id.is_empty() && id.bytes().all(|b| b.is_ascii_alphanumeric()));
        if !pool_ok {
            return Err(invalid(
                "userPoolId",
                &user_pool_id,
                "a user pool id is <region>_<letters and digits>, in the profile's region",
            ));
        }

        let user_pool_client_id =
            required(wire.user_pool_client_id, "userPoolClientId (or UserPoolClientId)")?;
        if user_pool_client_id.len() > 128
            || !user_pool_client_id.bytes().all(|b| b.is_ascii_alphanumeric())
        {
            return Err(invalid(
                "userPoolClientId",
                &user_pool_client_id,
                "an app client id is letters and digits",
            ));
        }

        let identity_pool_id =
            required(wire.identity_pool_id, "identityPoolId (or IdentityPoolId)")?;
        let identity_ok = identity_pool_id
            .strip_prefix(&region)
            .and_then(|rest| rest.strip_prefix(':'))
            .is_some_and(|id| {
                !id.is_empty() && id.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-')
            });
        if !identity_ok {
            return Err(invalid(
                "identityPoolId",
                &identity_pool_id,
                "an identity pool id is <region>:<uuid>, in the profile's region",
            ));
        }

        let api_url = required(wire.api_url, "apiUrl (or AwsApiGatewayInvokeUrl)")?;
        let api_url = check_url("apiUrl", &api_url, Scheme::Http)?;

        let iot_endpoint = match (wire.iot_endpoint, wire.aws_iot_host) {
            (Some(endpoint), _) => endpoint,
            (None, Some(host)) => host,
            (None, None) => return Err(ProfileError::Missing("iotEndpoint (or AwsIotHost)")),
        };
        // A bare host name, as the seed stores it, means AWS IoT's WebSocket endpoint.
        let iot_endpoint = if iot_endpoint.contains("://") {
            iot_endpoint
        } else {
            format!("wss://{}/mqtt", iot_endpoint.trim_end_matches('/'))
        };
        let iot_endpoint = check_url("iotEndpoint", &iot_endpoint, Scheme::WebSocket)?;

        let cognito_idp_endpoint = wire
            .cognito_idp_endpoint
            .map(|url| check_url("cognitoIdpEndpoint", &url, Scheme::Http))
            .transpose()?;
        let cognito_identity_endpoint = wire
            .cognito_identity_endpoint
            .map(|url| check_url("cognitoIdentityEndpoint", &url, Scheme::Http))
            .transpose()?;
        if cognito_idp_endpoint.is_some() != cognito_identity_endpoint.is_some() {
            return Err(ProfileError::Missing(
                "cognitoIdpEndpoint and cognitoIdentityEndpoint together (give both or neither)",
            ));
        }

        let ca_certificate = wire.ca_certificate.filter(|pem| !pem.trim().is_empty());
        if let Some(pem) = &ca_certificate
            && !(pem.contains("-----BEGIN CERTIFICATE-----")
                && pem.contains("-----END CERTIFICATE-----"))
        {
            return Err(invalid(
                "caCertificate",
                pem.get(..40).unwrap_or(pem),
                "expected a PEM certificate (-----BEGIN CERTIFICATE-----)",
            ));
        }

        Ok(Self {
            region,
            user_pool_id,
            user_pool_client_id,
            identity_pool_id,
            api_url,
            iot_endpoint,
            cognito_idp_endpoint,
            cognito_identity_endpoint,
            ca_certificate,
            hosted_ui: wire.hosted_ui.map(HostedUi::checked).transpose()?,
        })
    }
}

fn required(value: Option<String>, what: &'static str) -> Result<String, ProfileError> {
    value.map(|v| v.trim().to_owned()).filter(|v| !v.is_empty()).ok_or(ProfileError::Missing(what))
}

fn invalid(key: &'static str, value: &str, problem: &'static str) -> ProfileError {
    ProfileError::Invalid { key, value: value.to_owned(), problem }
}

#[derive(Clone, Copy)]
enum Scheme {
    Http,
    WebSocket,
}

/// Checks `raw` is an absolute URL of the right kind, encrypted unless it points at this
/// computer, and returns it without a trailing slash.
fn check_url(key: &'static str, raw: &str, kind: Scheme) -> Result<String, ProfileError> {
    let url = Url::parse(raw).map_err(|_| invalid(key, raw, "not an absolute URL"))?;
    let (plain, secure, expected) = match kind {
        Scheme::Http => ("http", "https", "expected an https:// (or local http://) URL"),
        Scheme::WebSocket => ("ws", "wss", "expected a wss:// (or local ws://) URL"),
    };
    if url.scheme() != plain && url.scheme() != secure {
        return Err(invalid(key, raw, expected));
    }
    if url.query().is_some() || url.fragment().is_some() || !url.username().is_empty() {
        return Err(invalid(key, raw, "a profile URL has no query, fragment or user name"));
    }
    let loopback = match url.host() {
        Some(url::Host::Domain(name)) => name.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => return Err(invalid(key, raw, "the URL has no host")),
    };
    if url.scheme() == plain && !loopback {
        return Err(ProfileError::Insecure { key, value: raw.to_owned() });
    }
    Ok(raw.trim_end_matches('/').to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_hosted_ui(hosted_ui: serde_json::Value) -> Result<Profile, ProfileError> {
        let mut json: serde_json::Value = serde_json::from_str(LOCAL).expect("JSON");
        json["hostedUi"] = hosted_ui;
        Profile::from_json(json.to_string().as_bytes())
    }

    #[test]
    fn a_hosted_ui_is_optional_and_checked_when_given() {
        assert_eq!(Profile::from_json(LOCAL.as_bytes()).expect("valid").hosted_ui, None);
        let profile = with_hosted_ui(serde_json::json!({
            "url": "http://127.0.0.1:8787/",
            "providers": ["TestIdP", "Google"],
            "redirectUris": ["http://localhost:28787/callback", "http://localhost:28788/callback"]
        }))
        .expect("valid");
        let hosted = profile.hosted_ui.clone().expect("a hosted UI");
        assert_eq!(hosted.url, "http://127.0.0.1:8787", "no trailing slash");
        assert_eq!(hosted.redirect_ports(), [28787, 28788]);
        let again = Profile::from_json(profile.to_json_pretty().as_bytes()).expect("round trip");
        assert_eq!(again, profile);
        assert_eq!(loopback_redirect_uri(28787), "http://localhost:28787/callback");

        let refused = |hosted: serde_json::Value, why: &str| {
            let error = with_hosted_ui(hosted).expect_err(why).to_string();
            assert!(error.contains("hostedUi"), "{why}: {error}");
        };
        let uris = serde_json::json!(["http://localhost:28787/callback"]);
        refused(
            serde_json::json!({"url": "http://auth.example.com", "providers": [], "redirectUris": uris}),
            "plain http to another machine",
        );
        refused(
            serde_json::json!({"url": "https://a.example.com", "providers": ["Bad Name"], "redirectUris": uris}),
            "a provider name with a space",
        );
        for uri in [
            "https://localhost:28787/callback",
            "http://127.0.0.1:28787/callback",
            "http://localhost:28787/other",
            "http://localhost:0/callback",
            "http://localhost:99999/callback",
            "http://localhost:/callback",
        ] {
            refused(
                serde_json::json!({"url": "https://a.example.com", "providers": [], "redirectUris": [uri]}),
                uri,
            );
        }
        refused(
            serde_json::json!({"url": "https://a.example.com", "providers": [], "redirectUris": []}),
            "no redirect URI",
        );
    }

    const LOCAL: &str = r#"{
        "region": "us-east-1",
        "userPoolId": "us-east-1_AbC123xyz",
        "userPoolClientId": "abcdefghijklmnopqrstuvwxyz",
        "identityPoolId": "us-east-1:7f86d9a8-b9f4-439e-bcf3-9756e4d2bbdf",
        "apiUrl": "http://127.0.0.1:8787/api",
        "iotEndpoint": "ws://127.0.0.1:8787/mqtt",
        "cognitoIdpEndpoint": "http://127.0.0.1:8787",
        "cognitoIdentityEndpoint": "http://127.0.0.1:8787"
    }"#;

    fn with(key: &str, value: serde_json::Value) -> Vec<u8> {
        let mut doc: serde_json::Value = serde_json::from_str(LOCAL).unwrap();
        doc[key] = value;
        serde_json::to_vec(&doc).unwrap()
    }

    #[test]
    fn the_local_profile_round_trips() {
        let profile = Profile::from_json(LOCAL.as_bytes()).unwrap();
        assert!(profile.is_self_hosted());
        assert_eq!(profile.api_url, "http://127.0.0.1:8787/api");
        let again = Profile::from_json(profile.to_json_pretty().as_bytes()).unwrap();
        assert_eq!(again, profile);
        assert!(!profile.to_json_pretty().contains("caCertificate"), "absent keys stay absent");
    }

    #[test]
    fn the_seeds_config_json_is_accepted() {
        let seed = r#"{
            "AwsIotHost": "a1b2c3d4e5f6g7-ats.iot.eu-west-1.amazonaws.com",
            "AwsRegion": "eu-west-1",
            "UserPoolId": "eu-west-1_Q1w2E3r4T",
            "UserPoolClientId": "1h2g3f4e5d6c7b8a9",
            "IdentityPoolId": "eu-west-1:0a1b2c3d-1111-2222-3333-444455556666",
            "AwsApiGatewayInvokeUrl": "https://abc123.execute-api.eu-west-1.amazonaws.com/dev/",
            "FacebookAppId": "", "GoogleAppId": "", "LogLevel": "info", "MqttDebugLevel": false
        }"#;
        let profile = Profile::from_json(seed.as_bytes()).unwrap();
        assert_eq!(profile.region, "eu-west-1");
        assert_eq!(
            profile.iot_endpoint,
            "wss://a1b2c3d4e5f6g7-ats.iot.eu-west-1.amazonaws.com/mqtt"
        );
        assert_eq!(profile.api_url, "https://abc123.execute-api.eu-west-1.amazonaws.com/dev");
        assert!(!profile.is_self_hosted(), "no custom endpoints: the SDK's AWS endpoints");
        let ours: serde_json::Value = serde_json::from_str(&profile.to_json_pretty()).unwrap();
        assert!(ours.get("userPoolClientId").is_some(), "written back in our own keys");
    }

    #[test]
    fn unencrypted_urls_to_other_machines_are_refused() {
        for (key, url) in [
            ("apiUrl", "http://192.168.1.20:8787/api"),
            ("iotEndpoint", "ws://chat.example.lan/mqtt"),
            ("cognitoIdpEndpoint", "http://10.0.0.1"),
        ] {
            let err = Profile::from_json(&with(key, url.into())).unwrap_err();
            assert!(matches!(err, ProfileError::Insecure { .. }), "{key}: {err}");
            assert!(err.to_string().contains("https://"), "{err}");
        }
        let ok = with("apiUrl", "https://192.168.1.20:8787/api".into());
        assert!(Profile::from_json(&ok).is_ok());
        let ok = with("iotEndpoint", "ws://localhost:8787/mqtt".into());
        assert!(Profile::from_json(&ok).is_ok());
        let ok = with("iotEndpoint", "ws://[::1]:8787/mqtt".into());
        assert!(Profile::from_json(&ok).is_ok());
    }

    #[test]
    fn bad_documents_name_the_key_at_fault() {
        let cases: Vec<(Vec<u8>, &str)> = vec![
            (b"{".to_vec(), "not valid JSON"),
            (b"[]".to_vec(), "not valid JSON"),
            (with("region", "US East".into()), "region"),
            (with("userPoolId", "eu-west-1_abc".into()), "userPoolId"),
            (with("userPoolClientId", "abc/../x".into()), "userPoolClientId"),
            (with("identityPoolId", "us-east-1:not hex".into()), "identityPoolId"),
            (with("apiUrl", "ftp://127.0.0.1/api".into()), "apiUrl"),
            (with("apiUrl", "/api".into()), "apiUrl"),
            (with("iotEndpoint", "https://127.0.0.1/mqtt".into()), "iotEndpoint"),
            (with("apiUrl", serde_json::Value::Null), "no apiUrl"),
            (with("cognitoIdentityEndpoint", serde_json::Value::Null), "together"),
            (with("caCertificate", "hello".into()), "caCertificate"),
            (with("apiUrl", "http://127.0.0.1/api?x=1".into()), "no query"),
        ];
        for (doc, expected) in cases {
            let err = Profile::from_json(&doc).unwrap_err().to_string();
            assert!(err.contains(expected), "{expected:?} not in {err:?}");
        }
    }

    #[test]
    fn a_ca_certificate_is_carried() {
        let pem = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";
        let profile = Profile::from_json(&with("caCertificate", pem.into())).unwrap();
        assert_eq!(profile.ca_certificate.as_deref(), Some(pem));
    }
}
