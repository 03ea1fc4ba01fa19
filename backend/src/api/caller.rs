//! SigV4 authentication of API requests: the middleware buffers the body (it is part of the
//! signature), verifies the signature against the credentials GetCredentialsForIdentity issued,
//! and hands the caller's identity to the handlers.

use std::time::{Duration, SystemTime};

use axum::body::{Body, to_bytes};
use axum::extract::{OriginalUri, Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use iotchat_protocol::{Code, IdentityId};

use super::ApiError;
use crate::auth::sigv4::{self, Policy, RequestParts, Service};
use crate::{AppState, now_ms};

/// Largest API request body (room names and usernames are small).
const MAX_API_BODY: usize = 64 * 1024;
/// How far a request's `X-Amz-Date` may be from the server's clock.
const MAX_CLOCK_SKEW: Duration = Duration::from_secs(15 * 60);

/// The verified caller of an API request.
#[derive(Debug, Clone)]
pub(crate) struct Caller {
    pub(crate) identity: IdentityId,
}

fn refuse(reason: impl Into<String>) -> ApiError {
    ApiError::new(Code::Unauthenticated, reason)
}

pub(crate) async fn authenticate(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    let (mut parts, body) = request.into_parts();
    let body = match to_bytes(body, MAX_API_BODY).await {
        Ok(body) => body,
        Err(_) => {
            return ApiError::new(
                Code::PayloadTooLarge,
                format!("The request body is larger than {MAX_API_BODY} bytes."),
            )
            .into_response();
        }
    };
    // Nested under /api, the router sees a stripped path; the signature covers the full one.
    let uri =
        parts.extensions.get::<OriginalUri>().map_or_else(|| parts.uri.clone(), |o| o.0.clone());
    let request = RequestParts {
        method: parts.method.as_str(),
        raw_path: uri.path(),
        raw_query: uri.query(),
        headers: &parts.headers,
        body: &body,
    };
    match verify(&state, &request).await {
        Ok(caller) => {
            parts.extensions.insert(caller);
            next.run(Request::from_parts(parts, Body::from(body))).await
        }
        Err(error) => {
            tracing::info!(path = uri.path(), reason = %error.0.message, "API request refused");
            error.into_response()
        }
    }
}

async fn verify(state: &AppState, request: &RequestParts<'_>) -> Result<Caller, ApiError> {
    let policy = Policy {
        region: state.pool.region.clone(),
        service: Service::ExecuteApi,
        max_clock_skew: MAX_CLOCK_SKEW,
        max_presign_age: MAX_CLOCK_SKEW,
    };
    let claimed = sigv4::parse(request, &policy, SystemTime::now())
        .map_err(|e| refuse(format!("The request is not signed correctly: {e}")))?;
    let credentials =
        state.store.credentials_get(&claimed.access_key_id).await?.ok_or_else(|| {
            refuse("The access key is not one this server issued. Sign in again.")
        })?;
    if credentials.expires_at_ms <= now_ms() {
        return Err(refuse("The credentials have expired. Get new ones and retry."));
    }
    if claimed.session_token.as_deref() != Some(credentials.session_token.as_str()) {
        return Err(refuse("The session token does not belong to this access key."));
    }
    sigv4::verify(request, &claimed, &credentials.secret_access_key)
        .map_err(|e| refuse(format!("The request signature does not match: {e}")))?;
    Ok(Caller { identity: credentials.identity_id })
}
