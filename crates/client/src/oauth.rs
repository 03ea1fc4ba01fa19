//! Signing in through the user pool's hosted UI ("Continue with Google"), as RFC 8252 says a
//! native app should: the system browser, never an embedded view that could read the
//! password; the authorization-code grant with PKCE (S256); the answer caught on a loopback
//! port. Cognito registers redirect URIs exactly and allows plain http only for `localhost`, so
//! the profile lists a few fixed `http://localhost:<port>/callback` URIs and the flow listens on
//! the first free one.
//!
//! The code is useless without the PKCE verifier, which never leaves this process, so a program
//! that catches the redirect (say, one that bound `[::1]` on the same port) gains nothing; the
//! `state` check refuses an answer meant for another sign-in.

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use iotchat_protocol::Code;
use iotchat_protocol::profile::HostedUi;
use oauth2::basic::{
    BasicErrorResponse, BasicErrorResponseType, BasicRevocationErrorResponse,
    BasicTokenIntrospectionResponse, BasicTokenType,
};
use oauth2::{
    AuthUrl, AuthorizationCode, ClientId, CsrfToken, EndpointNotSet, EndpointSet,
    PkceCodeChallenge, RedirectUrl, RequestTokenError, Scope, StandardRevocableToken,
    StandardTokenResponse, TokenResponse as _, TokenUrl,
};
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;

use crate::auth::Tokens;
use crate::backend::{Backend, error_chain};
use crate::error::{ClientError, Result};

/// How long the browser may take before the app stops waiting.
pub const SIGN_IN_TIMEOUT: Duration = Duration::from_secs(5 * 60);
/// What the app asks for: an ID token (`openid`), the user's email and name, and the scope
/// Cognito requires for GetUser and GlobalSignOut.
const SCOPES: [&str; 4] = ["openid", "email", "profile", "aws.cognito.signin.user.admin"];
/// The most a browser's request to the loopback port may carry before its blank line.
const MAX_REQUEST_HEAD: usize = 8 * 1024;
/// How long a connection to the loopback port may take to send its request.
const REQUEST_READ_TIMEOUT: Duration = Duration::from_secs(5);

/// Opens a URL for the person to see: the system browser in the app and the CLI, a stand-in in
/// tests. A failure is not fatal; the caller shows the URL to copy instead.
pub trait OpenUrl: Send + Sync {
    fn open(&self, url: &str) -> std::io::Result<()>;
}

/// The system's browser (`$BROWSER` first on Linux and the BSDs, then the desktop's default).
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemBrowser;

impl OpenUrl for SystemBrowser {
    fn open(&self, url: &str) -> std::io::Result<()> {
        webbrowser::open(url)
    }
}

/// Cognito's token answer: the standard fields and the ID token.
#[derive(Debug, Clone, Deserialize, Serialize)]
struct IdTokenField {
    id_token: Option<String>,
}
impl oauth2::ExtraTokenFields for IdTokenField {}

type CognitoTokenResponse = StandardTokenResponse<IdTokenField, BasicTokenType>;
type CognitoOAuth = oauth2::Client<
    BasicErrorResponse,
    CognitoTokenResponse,
    BasicTokenIntrospectionResponse,
    StandardRevocableToken,
    BasicRevocationErrorResponse,
    EndpointSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointSet,
>;

/// The provider's name as the profile spells it, matched without regard to case, with the
/// CLI's short names (`test`, `google`, `facebook`).
pub fn provider_name(hosted: &HostedUi, asked: &str) -> Result<String> {
    let asked = asked.trim();
    let wanted = match asked.to_ascii_lowercase().as_str() {
        "test" | "testidp" => "TestIdP".to_owned(),
        _ => asked.to_owned(),
    };
    hosted.providers.iter().find(|p| p.eq_ignore_ascii_case(&wanted)).cloned().ok_or_else(|| {
        let offered = if hosted.providers.is_empty() {
            "it offers none".to_owned()
        } else {
            format!("it offers {}", hosted.providers.join(", "))
        };
        ClientError::invalid(format!("This server does not sign in with {asked:?}: {offered}."))
    })
}

/// Runs the whole flow for `provider` (a name from the profile's `hostedUi.providers`) and
/// answers the user pool's tokens. `opener` shows the sign-in page; `cancel` (or `timeout`)
/// stops the wait.
pub(crate) async fn sign_in(
    backend: &Backend,
    provider: &str,
    opener: &dyn OpenUrl,
    cancel: oneshot::Receiver<()>,
    timeout: Duration,
) -> Result<Tokens> {
    let profile = &backend.profile;
    let hosted = profile.hosted_ui.as_ref().ok_or_else(|| {
        ClientError::invalid("This server offers no sign-in through other providers.")
    })?;
    let provider = provider_name(hosted, provider)?;
    let (listeners, port) = bind_first_free(&hosted.redirect_ports()).await?;
    let redirect_uri = iotchat_protocol::loopback_redirect_uri(port);

    let oauth = oauth_client(&hosted.url, &profile.user_pool_client_id, &redirect_uri)?;
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let (url, state) = oauth
        .authorize_url(CsrfToken::new_random)
        .add_scopes(SCOPES.iter().map(|s| Scope::new((*s).to_owned())))
        .add_extra_param("identity_provider", &provider)
        .set_pkce_challenge(challenge)
        .url();
    tracing::info!(%provider, port, "signing in through the hosted UI");
    if let Err(error) = opener.open(url.as_str()) {
        // Not fatal: the caller shows the address to open by hand.
        tracing::warn!(%error, "could not open the browser");
    }

    let code = tokio::select! {
        answer = wait_for_callback(&listeners, state.secret(), &provider) => answer?,
        _ = cancel => {
            return Err(ClientError::new(Code::Cancelled, "The sign-in was cancelled."));
        }
        () = tokio::time::sleep(timeout) => {
            return Err(ClientError::new(
                Code::Unavailable,
                format!(
                    "The sign-in with {provider} did not finish within {}. Try again.",
                    describe(timeout)
                ),
            ));
        }
    };
    drop(listeners);

    let http = backend.oauth_http_client()?;
    let send = |request: oauth2::HttpRequest| {
        let http = http.clone();
        async move {
            let request = reqwest::Request::try_from(request)?;
            let response = http.execute(request).await?;
            let mut answer = http::Response::builder().status(response.status());
            if let Some(headers) = answer.headers_mut() {
                headers.extend(response.headers().clone());
            }
            let body = response.bytes().await?.to_vec();
            Ok::<_, reqwest::Error>(answer.body(body).expect("a status and headers from reqwest"))
        }
    };
    let answer = oauth
        .exchange_code(AuthorizationCode::new(code))
        .set_pkce_verifier(verifier)
        .request_async(&send)
        .await
        .map_err(|error| exchange_error(&provider, error))?;
    let id = answer.extra_fields().id_token.clone().ok_or_else(|| {
        ClientError::internal("The hosted UI answered without an ID token (is openid allowed?).")
    })?;
    let refresh = answer
        .refresh_token()
        .map(|t| t.secret().clone())
        .ok_or_else(|| ClientError::internal("The hosted UI answered without a refresh token."))?;
    Ok(Tokens { id, access: answer.access_token().secret().clone(), refresh })
}

fn oauth_client(base: &str, client_id: &str, redirect_uri: &str) -> Result<CognitoOAuth> {
    let bad = |what: &str, e: oauth2::url::ParseError| {
        ClientError::invalid(format!("The profile's hosted UI {what} is not a URL: {e}"))
    };
    let base = base.trim_end_matches('/');
    Ok(oauth2::Client::new(ClientId::new(client_id.to_owned()))
        .set_auth_uri(AuthUrl::new(format!("{base}/oauth2/authorize")).map_err(|e| bad("url", e))?)
        .set_token_uri(TokenUrl::new(format!("{base}/oauth2/token")).map_err(|e| bad("url", e))?)
        .set_redirect_uri(
            RedirectUrl::new(redirect_uri.to_owned()).map_err(|e| bad("redirect URI", e))?,
        ))
}

fn describe(timeout: Duration) -> String {
    match timeout.as_secs() {
        secs if secs >= 120 => format!("{} minutes", secs / 60),
        1 => "1 second".to_owned(),
        secs => format!("{secs} seconds"),
    }
}

fn exchange_error(
    provider: &str,
    error: RequestTokenError<reqwest::Error, BasicErrorResponse>,
) -> ClientError {
    match error {
        RequestTokenError::ServerResponse(answer) => match answer.error() {
            BasicErrorResponseType::InvalidGrant => ClientError::new(
                Code::Unauthenticated,
                format!(
                    "The sign-in with {provider} was refused: its code was used already, \
                     expired, or did not match this app's request. Try again."
                ),
            ),
            other => ClientError::new(
                Code::Unauthenticated,
                format!("The sign-in with {provider} was refused ({other})."),
            ),
        },
        RequestTokenError::Request(error) => ClientError::new(
            Code::Unavailable,
            format!("Cannot reach the sign-in server: {}", error_chain(&error)),
        ),
        other => ClientError::internal(format!(
            "The sign-in server's answer was not understood: {}",
            error_chain(&other)
        )),
    }
}

/// Listens on 127.0.0.1 (and `[::1]`, where browsers may resolve `localhost`) on the first of
/// `ports` that is free.
async fn bind_first_free(ports: &[u16]) -> Result<(Vec<TcpListener>, u16)> {
    for &port in ports {
        let Ok(v4) = TcpListener::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, port))).await else {
            continue;
        };
        let mut listeners = vec![v4];
        if let Ok(v6) = TcpListener::bind(SocketAddr::from((Ipv6Addr::LOCALHOST, port))).await {
            listeners.push(v6);
        }
        return Ok((listeners, port));
    }
    let ports: Vec<String> = ports.iter().map(u16::to_string).collect();
    Err(ClientError::new(
        Code::Unavailable,
        format!(
            "Other programs are using every port the sign-in can answer on ({}). Close one of \
             them and try again.",
            ports.join(", ")
        ),
    ))
}

/// What came back to the redirect URI.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Callback {
    Code(String),
    Refused {
        error: String,
        description: Option<String>,
    },
    WrongState,
    /// Not the callback (another path, a favicon): answered 404, the wait goes on.
    Other,
}

/// Reads one request line (`GET /callback?… HTTP/1.1`) against the expected `state`.
fn parse_callback(request_line: &str, expected_state: &str) -> Callback {
    let mut parts = request_line.split(' ');
    let (Some("GET"), Some(target)) = (parts.next(), parts.next()) else {
        return Callback::Other;
    };
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    if path != "/callback" {
        return Callback::Other;
    }
    let pairs: std::collections::HashMap<String, String> =
        oauth2::url::form_urlencoded::parse(query.as_bytes()).into_owned().collect();
    let state_ok = pairs.get("state").is_some_and(|state| {
        state.len() == expected_state.len()
            && state.bytes().zip(expected_state.bytes()).fold(0, |acc, (a, b)| acc | (a ^ b)) == 0
    });
    if !state_ok {
        return Callback::WrongState;
    }
    if let Some(error) = pairs.get("error") {
        return Callback::Refused {
            error: error.clone(),
            description: pairs.get("error_description").cloned(),
        };
    }
    match pairs.get("code") {
        Some(code) if !code.is_empty() => Callback::Code(code.clone()),
        _ => Callback::Refused { error: "invalid_request".into(), description: None },
    }
}

/// Serves the loopback port until the callback comes: its code, or the reason it failed.
async fn wait_for_callback(
    listeners: &[TcpListener],
    expected_state: &str,
    provider: &str,
) -> Result<String> {
    loop {
        let accepted = match listeners {
            [one] => one.accept().await,
            [v4, v6, ..] => tokio::select! {
                a = v4.accept() => a,
                a = v6.accept() => a,
            },
            [] => return Err(ClientError::internal("no loopback listener")),
        };
        let Ok((mut stream, _)) = accepted else { continue };
        let Some(line) = read_request_line(&mut stream).await else { continue };
        let callback = parse_callback(&line, expected_state);
        let (status, title, text, outcome) = match callback {
            Callback::Other => {
                respond(&mut stream, "404 Not Found", "Not found", "Nothing here.").await;
                continue;
            }
            Callback::Code(code) => (
                "200 OK",
                "Signed in",
                "You can close this tab and return to IoT Chat.".to_owned(),
                Ok(code),
            ),
            Callback::WrongState => (
                "400 Bad Request",
                "Not this sign-in",
                "This answer does not belong to the sign-in IoT Chat started, so it was not \
                 used. You can close this tab and return to IoT Chat to try again."
                    .to_owned(),
                Err(ClientError::new(
                    Code::Unauthenticated,
                    "The sign-in answer did not match the sign-in this app started (its state \
                     differs), so it was not used. Try again.",
                )),
            ),
            Callback::Refused { error, description } => {
                let message = if error == "access_denied" {
                    format!("You declined the sign-in at {provider}.")
                } else {
                    let detail = description.map(|d| format!(": {d}")).unwrap_or_default();
                    format!("The sign-in with {provider} failed ({error}{detail}).")
                };
                (
                    "200 OK",
                    "Not signed in",
                    format!("{message} You can close this tab and return to IoT Chat."),
                    Err(ClientError::new(Code::Unauthenticated, message)),
                )
            }
        };
        respond(&mut stream, status, title, &text).await;
        return outcome;
    }
}

/// The request line, if the head arrives complete, within the size and time limits.
async fn read_request_line(stream: &mut TcpStream) -> Option<String> {
    let mut head = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    let read = async {
        while !head.windows(4).any(|w| w == b"\r\n\r\n") {
            let n = stream.read(&mut chunk).await.ok()?;
            if n == 0 || head.len() + n > MAX_REQUEST_HEAD {
                return None;
            }
            head.extend_from_slice(&chunk[..n]);
        }
        Some(())
    };
    tokio::time::timeout(REQUEST_READ_TIMEOUT, read).await.ok()??;
    let text = std::str::from_utf8(&head).ok()?;
    text.lines().next().map(str::to_owned)
}

async fn respond(stream: &mut TcpStream, status: &str, title: &str, text: &str) {
    let body = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{title} — IoT \
         Chat</title><style>body{{font-family:system-ui,sans-serif;max-width:32rem;margin:4rem \
         auto;line-height:1.5}}</style></head><body><h1>{title}</h1><p>{}</p></body></html>",
        escape(text)
    );
    let response = format!(
        "HTTP/1.1 {status}\r\nContent-Type: text/html; charset=utf-8\r\nContent-Length: {}\r\n\
         Cache-Control: no-store\r\nContent-Security-Policy: default-src 'none'; style-src \
         'unsafe-inline'\r\nReferrer-Policy: no-referrer\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = stream.write_all(response.as_bytes()).await;
    let _ = stream.shutdown().await;
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_callback_is_read_against_its_state() {
        let line = |target: &str| format!("GET {target} HTTP/1.1");
        assert_eq!(
            parse_callback(&line("/callback?code=abc&state=s1"), "s1"),
            Callback::Code("abc".into())
        );
        assert_eq!(
            parse_callback(&line("/callback?code=abc&state=s2"), "s1"),
            Callback::WrongState
        );
        assert_eq!(parse_callback(&line("/callback?code=abc"), "s1"), Callback::WrongState);
        assert_eq!(
            parse_callback(&line("/callback?error=access_denied&state=s1"), "s1"),
            Callback::Refused { error: "access_denied".into(), description: None }
        );
        assert_eq!(
            parse_callback(&line("/callback?state=s1"), "s1"),
            Callback::Refused { error: "invalid_request".into(), description: None }
        );
        assert_eq!(parse_callback(&line("/favicon.ico"), "s1"), Callback::Other);
        assert_eq!(
            parse_callback("POST /callback?code=a&state=s1 HTTP/1.1", "s1"),
            Callback::Other
        );
        assert_eq!(
            parse_callback(&line("/callback?state=a%20b&code=x%2By"), "a b"),
            Callback::Code("x+y".into())
        );
    }

    #[test]
    fn provider_names_match_the_profile_without_regard_to_case() {
        let hosted = HostedUi {
            url: "http://127.0.0.1:8787".into(),
            providers: vec!["TestIdP".into(), "Google".into()],
            redirect_uris: vec![iotchat_protocol::loopback_redirect_uri(28787)],
        };
        assert_eq!(provider_name(&hosted, "test").expect("alias"), "TestIdP");
        assert_eq!(provider_name(&hosted, "google").expect("case"), "Google");
        let refused = provider_name(&hosted, "facebook").expect_err("not offered");
        assert!(refused.message.contains("TestIdP, Google"), "{refused}");
    }

    #[tokio::test]
    async fn a_taken_port_gives_way_to_the_next() {
        let taken = TcpListener::bind("127.0.0.1:0").await.expect("a port");
        let busy = taken.local_addr().expect("addr").port();
        let free = TcpListener::bind("127.0.0.1:0").await.expect("a port");
        let next = free.local_addr().expect("addr").port();
        drop(free);
        let (_listeners, port) = bind_first_free(&[busy, next]).await.expect("the second port");
        assert_eq!(port, next);
        let error = bind_first_free(&[busy]).await.expect_err("all taken");
        assert!(error.message.contains(&busy.to_string()), "{error}");
    }
}
