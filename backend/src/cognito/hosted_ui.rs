//! The hosted UI, as Cognito serves it, for the authorization-code flow with PKCE:
//!
//! - `GET /oauth2/authorize`: checks the client and that the redirect URI is exactly one that
//!   is registered (otherwise the browser goes to `/error`, never to the URI), then sends the
//!   browser to the identity provider;
//! - the built-in test identity provider (`/testidp/authorize`): a page that names a user, so
//!   the whole flow runs without the internet. Only on a server that listens on loopback: it
//!   signs anyone in without a password;
//! - `POST /oauth2/token`: form-encoded requests from a public client, `{"error": …}` with
//!   status 400 for every refusal, the tokens as JSON. A code is good once, for its client and
//!   redirect URI, with the PKCE verifier of its challenge, for five minutes.
//!
//! - `GET|POST /oauth2/userInfo`: who a bearer access token belongs to;
//! - `GET /login`: the providers to choose from, when the request names none;
//! - `GET /logout`: back to a registered sign-out URI (this server keeps no browser session
//!   to clear, unlike Cognito's hour-long cookie).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::Form;
use axum::extract::{Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::json;
use sha2::{Digest as _, Sha256};

use crate::AppState;
use crate::auth::tokens::TOKEN_TTL;
use crate::storage::{CodeRecord, UserRecord};

/// The name of the built-in identity provider (`identity_provider=TestIdP`).
pub(crate) const TEST_IDP: &str = "TestIdP";
/// How long a browser may take at the identity provider.
const PENDING_TTL: Duration = Duration::from_secs(600);
/// Sign-ins waiting at the identity provider at once; the oldest gives way.
const MAX_PENDING: usize = 1_000;
/// The scope when the request names none.
const DEFAULT_SCOPE: &str = "openid email profile aws.cognito.signin.user.admin";

/// What the hosted UI is configured with.
#[derive(Debug, Clone)]
pub(crate) struct HostedUiSettings {
    pub(crate) redirect_uris: Vec<String>,
    /// Where `/logout` may send the browser.
    pub(crate) logout_uris: Vec<String>,
    /// Whether the built-in test identity provider signs people in.
    pub(crate) test_idp: bool,
    /// How long an authorization code may wait for its exchange.
    pub(crate) code_ttl: Duration,
}

/// An authorization request while its browser is at the identity provider.
#[derive(Debug, Clone)]
struct Pending {
    redirect_uri: String,
    state: Option<String>,
    code_challenge: Option<String>,
    scope: String,
    nonce: Option<String>,
    started: Instant,
}

/// Authorization requests at the identity provider, by a random id; in memory (a restart
/// only means signing in again).
#[derive(Debug, Default)]
pub(crate) struct PendingLogins(Mutex<HashMap<String, Pending>>);

impl PendingLogins {
    fn insert(&self, pending: Pending) -> String {
        let id = random_token();
        if let Ok(mut map) = self.0.lock() {
            map.retain(|_, p| p.started.elapsed() < PENDING_TTL);
            if map.len() >= MAX_PENDING
                && let Some(oldest) =
                    map.iter().min_by_key(|(_, p)| p.started).map(|(k, _)| k.clone())
            {
                map.remove(&oldest);
            }
            map.insert(id.clone(), pending);
        }
        id
    }

    fn get(&self, id: &str) -> Option<Pending> {
        let map = self.0.lock().ok()?;
        map.get(id).filter(|p| p.started.elapsed() < PENDING_TTL).cloned()
    }

    fn take(&self, id: &str) -> Option<Pending> {
        let mut map = self.0.lock().ok()?;
        map.remove(id).filter(|p| p.started.elapsed() < PENDING_TTL)
    }
}

fn random_token() -> String {
    use rand::RngCore as _;
    let mut raw = [0u8; 32];
    rand::rng().fill_bytes(&mut raw);
    URL_SAFE_NO_PAD.encode(raw)
}

/// Escapes text for HTML.
fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

/// A page of the hosted UI: no scripts, no frames, not cached.
fn page(status: StatusCode, title: &str, body: &str) -> Response {
    let html = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{}</title>\
         <style>body{{font-family:sans-serif;max-width:28rem;margin:3rem auto}}</style></head>\
         <body><h1>{}</h1>{body}</body></html>",
        escape(title),
        escape(title)
    );
    let mut response = (status, Html(html)).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'",
        ),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// Back to the app's redirect URI with these parameters (and `state`, as it came).
fn back_to_app(redirect_uri: &str, state: Option<&str>, pairs: &[(&str, &str)]) -> Response {
    let Ok(mut url) = url::Url::parse(redirect_uri) else {
        return page(
            StatusCode::BAD_REQUEST,
            "An error was encountered",
            "<p>Bad redirect URI.</p>",
        );
    };
    {
        let mut query = url.query_pairs_mut();
        for (key, value) in pairs {
            query.append_pair(key, value);
        }
        if let Some(state) = state {
            query.append_pair("state", state);
        }
    }
    Redirect::to(url.as_str()).into_response()
}

/// `GET /oauth2/authorize`.
pub(crate) async fn authorize(
    State(app): State<AppState>,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let field = |name: &str| query.get(name).map(String::as_str).filter(|v| !v.is_empty());
    let client_ok = field("client_id") == Some(app.pool.client_id.as_str());
    let redirect_uri = field("redirect_uri").unwrap_or_default();
    // An unknown client or an unregistered redirect URI never sends the browser anywhere.
    if !client_ok || !app.settings.hosted_ui.redirect_uris.iter().any(|r| r == redirect_uri) {
        tracing::info!(redirect_uri, "hosted UI: refused a redirect URI that is not registered");
        let mut to = url::Url::parse("http://localhost/error").expect("a constant URL");
        to.query_pairs_mut()
            .append_pair("error", "redirect_mismatch")
            .append_pair("client_id", field("client_id").unwrap_or_default());
        return Redirect::to(&format!("/error?{}", to.query().unwrap_or_default())).into_response();
    }
    let state = field("state");
    let refuse = |error: &str, description: &str| {
        back_to_app(redirect_uri, state, &[("error", error), ("error_description", description)])
    };
    if field("response_type") != Some("code") {
        return refuse("unsupported_response_type", "response_type must be code");
    }
    let challenge = match (field("code_challenge_method"), field("code_challenge")) {
        (None, None) => None,
        (Some("S256"), Some(challenge)) if (43..=128).contains(&challenge.len()) => {
            Some(challenge.to_owned())
        }
        (Some("S256") | None, _) => {
            return refuse("invalid_request", "code_challenge is missing or malformed");
        }
        (Some(_), _) => return refuse("invalid_request", "code_challenge_method must be S256"),
    };
    let pending = Pending {
        redirect_uri: redirect_uri.to_owned(),
        state: state.map(str::to_owned),
        code_challenge: challenge,
        scope: field("scope").unwrap_or(DEFAULT_SCOPE).to_owned(),
        nonce: field("nonce").map(str::to_owned),
        started: Instant::now(),
    };
    match field("identity_provider") {
        Some(TEST_IDP) if app.settings.hosted_ui.test_idp => {
            let id = app.pending_logins.insert(pending);
            Redirect::to(&format!("/testidp/authorize?pending={id}")).into_response()
        }
        Some(provider) => refuse(
            "invalid_request",
            &format!("{provider} is not an identity provider of this user pool"),
        ),
        None => {
            let query = url::form_urlencoded::Serializer::new(String::new())
                .extend_pairs(query.iter().filter(|(key, _)| key.as_str() != "identity_provider"))
                .finish();
            Redirect::to(&format!("/login?{query}")).into_response()
        }
    }
}

/// The identity providers this server signs people in with.
fn providers(app: &AppState) -> Vec<&'static str> {
    if app.settings.hosted_ui.test_idp { vec![TEST_IDP] } else { Vec::new() }
}

/// `GET /login`: a choice of identity providers, each a link back to `/oauth2/authorize` with
/// the same request. (Passwords are typed into the app, never into a page.)
pub(crate) async fn login_page(
    State(app): State<AppState>,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let client_ok = query.get("client_id") == Some(&app.pool.client_id);
    let redirect_ok = query
        .get("redirect_uri")
        .is_some_and(|uri| app.settings.hosted_ui.redirect_uris.contains(uri));
    if !client_ok || !redirect_ok {
        return Redirect::to("/error?error=redirect_mismatch").into_response();
    }
    let choices: String = providers(&app)
        .into_iter()
        .map(|provider| {
            let link = url::form_urlencoded::Serializer::new(String::new())
                .extend_pairs(query.iter().filter(|(key, _)| key.as_str() != "identity_provider"))
                .append_pair("identity_provider", provider)
                .finish();
            format!(
                "<p><a href=\"/oauth2/authorize?{}\">Continue with {}</a></p>",
                escape(&link),
                escape(provider)
            )
        })
        .collect();
    let body = if choices.is_empty() {
        "<p>This server offers no other sign-in. Sign in with your username and password in \
         IoT Chat.</p>"
            .to_owned()
    } else {
        format!("{choices}<p>To sign in with a username and password, use the IoT Chat app.</p>")
    };
    page(StatusCode::OK, "Sign in", &body)
}

/// `GET /logout`: to a registered sign-out URI (`http://localhost:<port>/signed-out`), or to
/// `/login` with a new request, as Cognito does.
pub(crate) async fn logout(
    State(app): State<AppState>,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    if query.get("client_id") != Some(&app.pool.client_id) {
        return Redirect::to("/error?error=invalid_request").into_response();
    }
    if let Some(to) = query.get("logout_uri") {
        return if app.settings.hosted_ui.logout_uris.contains(to) {
            Redirect::to(to).into_response()
        } else {
            tracing::info!(logout_uri = %to, "hosted UI: refused a sign-out URI that is not registered");
            Redirect::to("/error?error=redirect_mismatch").into_response()
        };
    }
    let query = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(query.iter().filter(|(key, _)| key.as_str() != "logout_uri"))
        .finish();
    Redirect::to(&format!("/login?{query}")).into_response()
}

/// `GET /error`: where a request with a bad client or redirect URI ends.
pub(crate) async fn error_page(Query(query): Query<HashMap<String, String>>) -> Response {
    let error = query.get("error").map(String::as_str).unwrap_or("unknown");
    page(
        StatusCode::BAD_REQUEST,
        "An error was encountered with the requested page",
        &format!("<p>{}</p>", escape(error)),
    )
}

/// `GET /testidp/authorize`: the test provider's page, which names the user to sign in.
pub(crate) async fn test_idp_page(
    State(app): State<AppState>,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let id = query.get("pending").cloned().unwrap_or_default();
    if !app.settings.hosted_ui.test_idp || app.pending_logins.get(&id).is_none() {
        return page(
            StatusCode::BAD_REQUEST,
            "Sign-in expired",
            "<p>Start again from the app.</p>",
        );
    }
    let form = format!(
        "<p>The test identity provider signs in whoever is named here. It exists only on a \
         server for this computer.</p>\
         <form method=\"post\" action=\"/testidp/authorize\">\
         <input type=\"hidden\" name=\"pending\" value=\"{}\">\
         <p><label>User <input name=\"subject\" value=\"alice\" required></label></p>\
         <p><label>Email <input name=\"email\" value=\"alice@example.com\"></label></p>\
         <p><button name=\"action\" value=\"allow\">Sign in</button> \
         <button name=\"action\" value=\"deny\">Deny</button></p></form>",
        escape(&id)
    );
    page(StatusCode::OK, "Sign in with Test IdP", &form)
}

/// `POST /testidp/authorize`: the user chose; back to the app with a code, or a refusal.
pub(crate) async fn test_idp_answer(
    State(app): State<AppState>,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    let id = form.get("pending").map(String::as_str).unwrap_or_default();
    let Some(pending) =
        app.settings.hosted_ui.test_idp.then(|| app.pending_logins.take(id)).flatten()
    else {
        return page(
            StatusCode::BAD_REQUEST,
            "Sign-in expired",
            "<p>Start again from the app.</p>",
        );
    };
    let state = pending.state.as_deref();
    if form.get("action").map(String::as_str) != Some("allow") {
        return back_to_app(
            &pending.redirect_uri,
            state,
            &[("error", "access_denied"), ("error_description", "TestIdP: the user declined")],
        );
    }
    let subject = form.get("subject").map(|s| s.trim()).unwrap_or_default();
    let subject_ok = (1..=64).contains(&subject.len())
        && subject.bytes().all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b));
    if !subject_ok {
        return page(
            StatusCode::BAD_REQUEST,
            "Not a user name",
            "<p>Use 1 to 64 letters, digits, dots, dashes or underscores. Go back and try again.</p>",
        );
    }
    let email = form
        .get("email")
        .map(|e| e.trim().to_owned())
        .filter(|e| e.contains('@') && e.len() <= 254)
        .unwrap_or_else(|| format!("{subject}@testidp.invalid"));
    let now = crate::now_ms();
    let new_user = UserRecord {
        sub: uuid::Uuid::new_v4().to_string(),
        username: format!("{TEST_IDP}_{subject}"),
        email,
        password_hash: String::new(),
        confirmed: true,
        created_at_ms: now,
    };
    let user = match app.store.federated_user(TEST_IDP, subject, new_user).await {
        Ok(user) => user,
        Err(error) => {
            tracing::warn!(%error, "hosted UI: the federated user could not be recorded");
            return back_to_app(
                &pending.redirect_uri,
                state,
                &[
                    ("error", "server_error"),
                    ("error_description", "the user could not be recorded"),
                ],
            );
        }
    };
    let code = random_token();
    let record = CodeRecord {
        code_sha256: code_hash(&code),
        client_id: app.pool.client_id.clone(),
        redirect_uri: pending.redirect_uri.clone(),
        sub: user.sub.clone(),
        scope: pending.scope.clone(),
        code_challenge: pending.code_challenge.clone(),
        nonce: pending.nonce.clone(),
        auth_time_s: now / 1000,
        expires_at_ms: now + app.settings.hosted_ui.code_ttl.as_millis() as u64,
    };
    if let Err(error) = app.store.oauth_code_insert(record).await {
        tracing::error!(%error, "hosted UI: storing a code");
        return back_to_app(
            &pending.redirect_uri,
            state,
            &[("error", "server_error"), ("error_description", "try again")],
        );
    }
    back_to_app(&pending.redirect_uri, state, &[("code", &code)])
}

/// An OAuth 2 error of the token endpoint (RFC 6749 §5.2), as Cognito names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum OAuthError {
    InvalidRequest,
    InvalidClient,
    InvalidGrant,
    UnsupportedGrantType,
    ServerError,
}

impl OAuthError {
    fn code(self) -> &'static str {
        match self {
            Self::InvalidRequest => "invalid_request",
            Self::InvalidClient => "invalid_client",
            Self::InvalidGrant => "invalid_grant",
            Self::UnsupportedGrantType => "unsupported_grant_type",
            Self::ServerError => "server_error",
        }
    }
}

impl IntoResponse for OAuthError {
    fn into_response(self) -> Response {
        let status = match self {
            Self::ServerError => StatusCode::INTERNAL_SERVER_ERROR,
            _ => StatusCode::BAD_REQUEST,
        };
        no_store(status, json!({ "error": self.code() }))
    }
}

fn no_store(status: StatusCode, body: serde_json::Value) -> Response {
    let mut response = (status, body.to_string()).into_response();
    let headers = response.headers_mut();
    headers
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json;charset=UTF-8"));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// What the authorization code is stored under.
pub(crate) fn code_hash(code: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(code.as_bytes()))
}

/// RFC 7636 S256: the verifier is 43–128 unreserved characters, and its SHA-256 in base64url
/// is the challenge. Compared in constant time.
pub(crate) fn pkce_matches(challenge: &str, verifier: &str) -> bool {
    let well_formed = (43..=128).contains(&verifier.len())
        && verifier.bytes().all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b));
    if !well_formed {
        return false;
    }
    let computed = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
    constant_time_eq(computed.as_bytes(), challenge.as_bytes())
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// `POST /oauth2/token`.
pub(crate) async fn token(
    State(state): State<AppState>,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    let result = match form.get("grant_type").map(String::as_str) {
        Some("authorization_code") => authorization_code(&state, &form).await,
        Some("refresh_token") => refresh_token(&state, &form).await,
        Some(_) => Err(OAuthError::UnsupportedGrantType),
        None => Err(OAuthError::InvalidRequest),
    };
    match result {
        Ok(tokens) => no_store(StatusCode::OK, tokens),
        Err(error) => error.into_response(),
    }
}

async fn authorization_code(
    state: &AppState,
    form: &HashMap<String, String>,
) -> Result<serde_json::Value, OAuthError> {
    let field = |name: &str| form.get(name).map(String::as_str).filter(|v| !v.is_empty());
    let (Some(code), Some(client_id), Some(redirect_uri)) =
        (field("code"), field("client_id"), field("redirect_uri"))
    else {
        return Err(OAuthError::InvalidRequest);
    };
    if client_id != state.pool.client_id {
        return Err(OAuthError::InvalidClient);
    }
    // Taken (and so spent) before anything else is checked: a code gets one try.
    let record = state
        .store
        .oauth_code_take(&code_hash(code))
        .await
        .map_err(|error| {
            tracing::error!(%error, "reading an authorization code");
            OAuthError::ServerError
        })?
        .ok_or(OAuthError::InvalidGrant)?;
    let now = crate::now_ms();
    let verified = record.expires_at_ms > now
        && record.client_id == client_id
        && record.redirect_uri == redirect_uri
        && match (&record.code_challenge, field("code_verifier")) {
            (Some(challenge), Some(verifier)) => pkce_matches(challenge, verifier),
            (Some(_), None) => false,
            (None, _) => true,
        };
    if !verified {
        tracing::info!(
            "an authorization code was refused (expired, or another client, redirect or verifier)"
        );
        return Err(OAuthError::InvalidGrant);
    }
    let user = state
        .store
        .user_by_sub(&record.sub)
        .await
        .map_err(|_| OAuthError::ServerError)?
        .ok_or(OAuthError::InvalidGrant)?;
    let (session, refresh_token) =
        super::user_pool::start_session(state, &user, record.auth_time_s)
            .await
            .map_err(|_| OAuthError::ServerError)?;
    let tokens = state
        .tokens
        .issue(&user, &session.origin_jti, session.auth_time_s, now / 1000)
        .map_err(|error| {
            tracing::error!(%error, "issuing tokens");
            OAuthError::ServerError
        })?;
    tracing::info!(sub = %user.sub, "signed in through the hosted UI");
    Ok(json!({
        "id_token": tokens.id_token,
        "access_token": tokens.access_token,
        "refresh_token": refresh_token,
        "token_type": "Bearer",
        "expires_in": TOKEN_TTL.as_secs(),
    }))
}

/// The `refresh_token` grant: new ID and access tokens for a live session, and (as Cognito
/// does) no new refresh token.
async fn refresh_token(
    state: &AppState,
    form: &HashMap<String, String>,
) -> Result<serde_json::Value, OAuthError> {
    let field = |name: &str| form.get(name).map(String::as_str).filter(|v| !v.is_empty());
    let (Some(token), Some(client_id)) = (field("refresh_token"), field("client_id")) else {
        return Err(OAuthError::InvalidRequest);
    };
    if client_id != state.pool.client_id {
        return Err(OAuthError::InvalidClient);
    }
    let (user, session) = super::user_pool::refreshed_session(state, token).await.map_err(|e| {
        if e.name == "NotAuthorizedException" {
            OAuthError::InvalidGrant
        } else {
            OAuthError::ServerError
        }
    })?;
    let tokens = state
        .tokens
        .issue(&user, &session.origin_jti, session.auth_time_s, crate::now_ms() / 1000)
        .map_err(|error| {
            tracing::error!(%error, "issuing tokens");
            OAuthError::ServerError
        })?;
    Ok(json!({
        "id_token": tokens.id_token,
        "access_token": tokens.access_token,
        "token_type": "Bearer",
        "expires_in": TOKEN_TTL.as_secs(),
    }))
}

/// `GET|POST /oauth2/userInfo`: the user of a live access token, or Cognito's bare 401.
pub(crate) async fn user_info(
    State(app): State<AppState>,
    headers: axum::http::HeaderMap,
) -> Response {
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
        .filter(|t| !t.is_empty());
    let refusal = |status: StatusCode, error: &str, description: &str| {
        let mut response = status.into_response();
        if let Ok(value) = HeaderValue::from_str(&format!(
            "error=\"{error}\", error_description=\"{description}\""
        )) {
            response.headers_mut().insert(header::WWW_AUTHENTICATE, value);
        }
        response
    };
    let Some(token) = bearer else {
        return refusal(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "Bad OAuth2 request at UserInfo Endpoint",
        );
    };
    let invalid = || {
        refusal(
            StatusCode::UNAUTHORIZED,
            "invalid_token",
            "Access token is expired, disabled, or deleted, or the user has globally signed out.",
        )
    };
    let Ok(claims) = super::user_pool::access(&app, token).await else { return invalid() };
    let Ok(Some(user)) = app.store.user_by_sub(&claims.sub).await else { return invalid() };
    no_store(
        StatusCode::OK,
        json!({
            "sub": user.sub,
            "username": user.username,
            "email": user.email,
            "email_verified": if user.confirmed { "true" } else { "false" },
        }),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pkce_is_rfc_7636_s256() {
        // The pair computed independently (Python's hashlib and base64.urlsafe_b64encode).
        let verifier = "dBjftJeZ4CVP-mJ92K9uCYCkFSDW4wzU4qbWjHxXtgg";
        let challenge = "Rj427xWtsfDXOYH1v-k1uKeg5hbHAmR_frouXq6cUkg";
        assert!(pkce_matches(challenge, verifier));
        assert!(!pkce_matches(challenge, &verifier.replace('d', "e")), "another verifier");
        assert!(!pkce_matches(verifier, verifier), "plain is not accepted");
        assert!(!pkce_matches(challenge, "short"), "too short a verifier");
        assert!(!pkce_matches(challenge, &format!("{verifier}!")), "a reserved character");
    }

    #[test]
    fn refusals_are_400_with_the_oauth_error_and_never_cached() {
        let response = OAuthError::InvalidGrant.into_response();
        assert_eq!(response.status(), StatusCode::BAD_REQUEST);
        assert_eq!(response.headers()[header::CACHE_CONTROL], "no-store");
        assert_eq!(OAuthError::ServerError.into_response().status(), 500);
        assert_ne!(code_hash("a"), code_hash("b"));
    }
}
