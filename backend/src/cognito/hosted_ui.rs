//! The hosted UI's token endpoint (`POST /oauth2/token`), as Cognito serves it: form-encoded
//! requests from a public client, `{"error": …}` with status 400 for every refusal, and the
//! tokens as JSON. An authorization code is good once, for its client and redirect URI, with
//! the PKCE verifier of its challenge, for five minutes. (Issue 13; `/oauth2/authorize`, the
//! test identity provider and `/oauth2/userInfo` come next.)

use std::collections::HashMap;

use axum::Form;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::json;
use sha2::{Digest as _, Sha256};

use crate::AppState;
use crate::auth::tokens::TOKEN_TTL;

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
