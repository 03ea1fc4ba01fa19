use std::path::Path;

use aws_sdk_cognitoidentity as identity;
use aws_sdk_cognitoidentityprovider as idp;
use iotchat_server::RunningServer;
use iotchat_server::config::Config;
use iotchat_server::profile::Profile;

pub(crate) const PASSWORD: &str = "Correct-Horse-9";

/// Starts a server on 127.0.0.1:<ephemeral> with its data in `dir`.
pub(crate) async fn start(dir: &Path) -> RunningServer {
    let config = Config::for_data_dir(dir).expect("test config");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind loopback");
    iotchat_server::start(&config, listener).await.expect("server starts")
}

/// Starts a server on 127.0.0.1:<ephemeral> that speaks TLS with a self-signed certificate.
pub(crate) async fn start_tls(dir: &Path) -> RunningServer {
    start_with(dir, |config| config.tls = iotchat_server::config::Tls::SelfSigned).await
}

/// An HTTP client for the AWS SDK that trusts the profile's CA and nothing else, or the SDK's
/// default when the profile has none.
pub(crate) fn sdk_http_client(profile: &Profile) -> Option<idp::config::SharedHttpClient> {
    use aws_smithy_http_client::tls;
    let pem = profile.ca_certificate.as_ref()?;
    let trust = tls::TrustStore::empty().with_pem_certificate(pem.as_bytes());
    let context = tls::TlsContext::builder().with_trust_store(trust).build().expect("TLS context");
    Some(
        aws_smithy_http_client::Builder::new()
            .tls_provider(tls::Provider::Rustls(tls::rustls_provider::CryptoMode::AwsLc))
            .tls_context(context)
            .build_https(),
    )
}

/// A rustls client configuration that trusts the profile's CA and nothing else.
pub(crate) fn rustls_config(profile: &Profile) -> Option<std::sync::Arc<rustls::ClientConfig>> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject as _;
    let pem = profile.ca_certificate.as_ref()?;
    let mut roots = rustls::RootCertStore::empty();
    roots.add(CertificateDer::from_pem_slice(pem.as_bytes()).expect("a PEM CA")).expect("CA");
    let provider = std::sync::Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("TLS versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    Some(std::sync::Arc::new(config))
}

pub(crate) fn idp_client(profile: &Profile) -> idp::Client {
    let endpoint = profile.cognito_idp_endpoint.clone().expect("local profile has endpoints");
    let mut config = idp::Config::builder()
        .behavior_version(idp::config::BehaviorVersion::latest())
        .region(idp::config::Region::new(profile.region.clone()))
        .endpoint_url(endpoint)
        .retry_config(idp::config::retry::RetryConfig::disabled());
    if let Some(http) = sdk_http_client(profile) {
        config = config.http_client(http);
    }
    idp::Client::from_conf(config.build())
}

pub(crate) fn identity_client(profile: &Profile) -> identity::Client {
    let endpoint = profile.cognito_identity_endpoint.clone().expect("local profile has endpoints");
    let mut config = identity::Config::builder()
        .behavior_version(identity::config::BehaviorVersion::latest())
        .region(identity::config::Region::new(profile.region.clone()))
        .endpoint_url(endpoint)
        .retry_config(identity::config::retry::RetryConfig::disabled());
    if let Some(http) = sdk_http_client(profile) {
        config = config.http_client(http);
    }
    identity::Client::from_conf(config.build())
}

/// A reqwest client for plain HTTP.
pub(crate) fn plain_http() -> reqwest::Client {
    // reqwest builds a TLS configuration even for plain clients, with the process's default
    // rustls back end; several are compiled in, so name one (a second call is a no-op).
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    reqwest::Client::new()
}

/// A reqwest client that trusts the profile's CA (and nothing else) when it has one.
pub(crate) fn http_client(profile: &Profile) -> reqwest::Client {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let builder = reqwest::Client::builder();
    let builder = match rustls_config(profile) {
        Some(tls) => builder.use_preconfigured_tls((*tls).clone()),
        None => builder,
    };
    builder.build().expect("an HTTP client")
}

pub(crate) async fn sign_up(idp: &idp::Client, profile: &Profile, username: &str) {
    let email = idp::types::AttributeType::builder()
        .name("email")
        .value(format!("{username}@example.com"))
        .build()
        .expect("attribute");
    let out = idp
        .sign_up()
        .client_id(&profile.user_pool_client_id)
        .username(username)
        .password(PASSWORD)
        .user_attributes(email)
        .send()
        .await
        .expect("sign up");
    assert!(out.user_confirmed(), "users are auto-confirmed, as the seed's PreSignUp trigger did");
}

/// Tokens of one sign-in.
#[derive(Debug, Clone)]
pub(crate) struct Tokens {
    pub(crate) id: String,
    pub(crate) access: String,
    pub(crate) refresh: String,
}

pub(crate) async fn log_in(idp: &idp::Client, profile: &Profile, username: &str) -> Tokens {
    let out = idp
        .initiate_auth()
        .client_id(&profile.user_pool_client_id)
        .auth_flow(idp::types::AuthFlowType::UserPasswordAuth)
        .auth_parameters("USERNAME", username)
        .auth_parameters("PASSWORD", PASSWORD)
        .send()
        .await
        .expect("log in");
    let result = out.authentication_result().expect("tokens, not a challenge");
    Tokens {
        id: result.id_token().expect("id token").to_owned(),
        access: result.access_token().expect("access token").to_owned(),
        refresh: result.refresh_token().expect("refresh token").to_owned(),
    }
}

/// One USER_PASSWORD_AUTH sign-in, its tokens dropped: `Ok` or Cognito's typed error.
pub(crate) async fn initiate(
    profile: &iotchat_server::profile::Profile,
    username: &str,
    password: &str,
) -> Result<(), idp::operation::initiate_auth::InitiateAuthError> {
    idp_client(profile)
        .initiate_auth()
        .client_id(&profile.user_pool_client_id)
        .auth_flow(idp::types::AuthFlowType::UserPasswordAuth)
        .auth_parameters("USERNAME", username)
        .auth_parameters("PASSWORD", password)
        .send()
        .await
        .map(drop)
        .map_err(|e| e.into_service_error())
}

/// The `Logins` map GetId and GetCredentialsForIdentity take.
pub(crate) fn logins(profile: &Profile, id_token: &str) -> (String, String) {
    (
        format!("cognito-idp.{}.amazonaws.com/{}", profile.region, profile.user_pool_id),
        id_token.to_owned(),
    )
}

pub(crate) async fn get_id(
    identity: &identity::Client,
    profile: &Profile,
    id_token: &str,
) -> String {
    let (provider, token) = logins(profile, id_token);
    identity
        .get_id()
        .identity_pool_id(&profile.identity_pool_id)
        .logins(provider, token)
        .send()
        .await
        .expect("GetId")
        .identity_id()
        .expect("an identity id")
        .to_owned()
}

/// Starts a server whose configuration `adjust` may change first.
pub(crate) async fn start_with(dir: &Path, adjust: impl FnOnce(&mut Config)) -> RunningServer {
    let mut config = Config::for_data_dir(dir).expect("test config");
    adjust(&mut config);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind loopback");
    iotchat_server::start(&config, listener).await.expect("server starts")
}

/// A signed-in user's identity and temporary credentials, as the app holds them.
#[derive(Debug, Clone)]
pub(crate) struct Signed {
    pub(crate) identity_id: String,
    pub(crate) credentials: aws_credential_types::Credentials,
}

/// Signs up `username`, logs in, and gets an identity and its credentials.
pub(crate) async fn signed_in(profile: &Profile, username: &str) -> Signed {
    sign_up(&idp_client(profile), profile, username).await;
    logged_in(profile, username).await
}

/// Logs an existing user in and gets their identity and fresh credentials, as the app does.
pub(crate) async fn logged_in(profile: &Profile, username: &str) -> Signed {
    let identity = identity_client(profile);
    let tokens = log_in(&idp_client(profile), profile, username).await;
    let identity_id = get_id(&identity, profile, &tokens.id).await;
    let (provider, token) = logins(profile, &tokens.id);
    let out = identity
        .get_credentials_for_identity()
        .identity_id(&identity_id)
        .logins(provider, token)
        .send()
        .await
        .expect("credentials");
    let c = out.credentials().expect("credentials");
    let credentials = aws_credential_types::Credentials::new(
        c.access_key_id().expect("key id"),
        c.secret_key().expect("secret"),
        c.session_token().map(str::to_owned),
        None,
        "iotchat-tests",
    );
    Signed { identity_id, credentials }
}

/// Calls the HTTP API signed with SigV4 (service `execute-api`) by the AWS signer itself.
pub(crate) async fn api(
    profile: &Profile,
    credentials: &aws_credential_types::Credentials,
    method: &str,
    path_and_query: &str,
    body: Option<serde_json::Value>,
) -> (u16, serde_json::Value) {
    let url = format!("{}{path_and_query}", profile.api_url);
    let body = body.map(|b| b.to_string()).unwrap_or_default();
    let headers = send_headers(profile, credentials, method, &url, &body);
    let client = http_client(profile);
    let method = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
    let mut request = client.request(method, &url).body(body);
    for (name, value) in headers {
        request = request.header(name, value);
    }
    let response = request.send().await.expect("the API answers");
    let status = response.status().as_u16();
    let json = response.json().await.unwrap_or(serde_json::Value::Null);
    (status, json)
}

/// The headers of a signed request: content type plus what the signer adds.
pub(crate) fn send_headers(
    profile: &Profile,
    credentials: &aws_credential_types::Credentials,
    method: &str,
    url: &str,
    body: &str,
) -> Vec<(String, String)> {
    let now = std::time::SystemTime::now();
    let signing = Signing { region: &profile.region, service: "execute-api", time: now };
    send_headers_as(credentials, method, url, body, &signing)
}

/// How a test signs a request, when it signs it differently from the app.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Signing<'a> {
    pub(crate) region: &'a str,
    pub(crate) service: &'a str,
    pub(crate) time: std::time::SystemTime,
}

/// [`send_headers`] with the scope and time given.
pub(crate) fn send_headers_as(
    credentials: &aws_credential_types::Credentials,
    method: &str,
    url: &str,
    body: &str,
    signing: &Signing<'_>,
) -> Vec<(String, String)> {
    use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
    let identity = credentials.clone().into();
    let params = aws_sigv4::sign::v4::SigningParams::builder()
        .identity(&identity)
        .region(signing.region)
        .name(signing.service)
        .time(signing.time)
        .settings(SigningSettings::default())
        .build()
        .expect("signing params")
        .into();
    let mut headers = vec![("content-type".to_owned(), "application/json".to_owned())];
    let signable = SignableRequest::new(
        method,
        url,
        headers.iter().map(|(k, v)| (k.as_str(), v.as_str())),
        SignableBody::Bytes(body.as_bytes()),
    )
    .expect("signable request");
    let (instructions, _) = sign(signable, &params).expect("signs").into_parts();
    headers.extend(instructions.headers().map(|(k, v)| (k.to_owned(), v.to_owned())));
    headers
}

/// What the server answered to a raw request: status, `x-amzn-ErrorType`, JSON body.
#[derive(Debug)]
pub(crate) struct Answer {
    pub(crate) status: u16,
    pub(crate) aws_type: Option<String>,
    pub(crate) body: serde_json::Value,
}

/// Sends `method url` with exactly `headers` and `body`.
pub(crate) async fn send_raw(
    profile: &Profile,
    method: &str,
    url: &str,
    headers: &[(String, String)],
    body: &str,
) -> Answer {
    let method = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
    let mut request = http_client(profile).request(method, url).body(body.to_owned());
    for (name, value) in headers {
        request = request.header(name, value);
    }
    let response = request.send().await.expect("the server answers");
    let status = response.status().as_u16();
    let aws_type = response
        .headers()
        .get("x-amzn-errortype")
        .map(|v| v.to_str().expect("an ASCII header").to_owned());
    let body = response.json().await.unwrap_or(serde_json::Value::Null);
    Answer { status, aws_type, body }
}

/// A presigned `ws://…/mqtt` URL as AWS IoT clients build it: SigV4 in the query, service
/// `iotdevicegateway`, the session token appended after signing.
pub(crate) fn presigned_mqtt_url(
    profile: &Profile,
    credentials: &aws_credential_types::Credentials,
) -> String {
    presigned_mqtt_url_at(profile, credentials, std::time::SystemTime::now())
}

/// [`presigned_mqtt_url`] signed as of `time`.
pub(crate) fn presigned_mqtt_url_at(
    profile: &Profile,
    credentials: &aws_credential_types::Credentials,
    time: std::time::SystemTime,
) -> String {
    presigned_mqtt_url_as(
        profile,
        credentials,
        time,
        aws_sigv4::http_request::SessionTokenMode::Exclude,
    )
}

/// [`presigned_mqtt_url`] with the session token signed too, as some signers do.
pub(crate) fn presigned_mqtt_url_signing_the_token(
    profile: &Profile,
    credentials: &aws_credential_types::Credentials,
) -> String {
    let now = std::time::SystemTime::now();
    presigned_mqtt_url_as(
        profile,
        credentials,
        now,
        aws_sigv4::http_request::SessionTokenMode::Include,
    )
}

fn presigned_mqtt_url_as(
    profile: &Profile,
    credentials: &aws_credential_types::Credentials,
    time: std::time::SystemTime,
    token_mode: aws_sigv4::http_request::SessionTokenMode,
) -> String {
    use aws_sigv4::http_request::{
        SignableBody, SignableRequest, SignatureLocation, SigningSettings, sign,
    };
    let mut settings = SigningSettings::default();
    settings.signature_location = SignatureLocation::QueryParams;
    settings.expires_in = Some(std::time::Duration::from_secs(300));
    settings.session_token_mode = token_mode;
    let identity = credentials.clone().into();
    let params = aws_sigv4::sign::v4::SigningParams::builder()
        .identity(&identity)
        .region(&profile.region)
        .name("iotdevicegateway")
        .time(time)
        .settings(settings)
        .build()
        .expect("signing params")
        .into();
    let url = profile.iot_endpoint.clone();
    let signable =
        SignableRequest::new("GET", url.clone(), std::iter::empty(), SignableBody::Bytes(&[]))
            .expect("signable");
    let (instructions, _) = sign(signable, &params).expect("presigns").into_parts();
    let mut request = http::Request::builder().uri(url).body(()).expect("request");
    instructions.apply_to_request_http1x(&mut request);
    request.uri().to_string()
}

/// `iotchat-server serve` as a process of its own, killed when dropped.
pub(crate) struct ServerProcess {
    pub(crate) child: std::process::Child,
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub(crate) fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind loopback");
    listener.local_addr().expect("bound address").port()
}

/// Starts `iotchat-server serve` and waits until it answers `/profile.json`.
pub(crate) async fn spawn(dir: &Path, port: u16) -> (ServerProcess, Profile) {
    spawn_logging(dir, port, "warn", std::process::Stdio::null()).await
}

/// [`spawn`] with `RUST_LOG=rust_log` and its log (stdout) going to `log`.
pub(crate) async fn spawn_logging(
    dir: &Path,
    port: u16,
    rust_log: &str,
    log: std::process::Stdio,
) -> (ServerProcess, Profile) {
    let child =
        std::process::Command::new(iotchat_tests::server_binary().expect("the server is built"))
            .args(["serve", "--listen", &format!("127.0.0.1:{port}"), "--data-dir"])
            .arg(dir)
            .env("RUST_LOG", rust_log)
            .stdin(std::process::Stdio::null())
            .stdout(log)
            .spawn()
            .expect("iotchat-server starts");
    let process = ServerProcess { child };
    let url = format!("http://127.0.0.1:{port}/profile.json");
    for _ in 0..200 {
        if let Ok(response) = plain_http().get(&url).send().await
            && let Ok(profile) = response.json::<Profile>().await
        {
            return (process, profile);
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("iotchat-server did not answer on port {port} within 10 s");
}
