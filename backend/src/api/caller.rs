//! SigV4 authentication of API requests: the middleware buffers the body (it is part of the
//! signature), verifies the signature against the credentials GetCredentialsForIdentity issued,
//! and hands the caller's identity to the handlers.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::body::{Body, to_bytes};
use axum::extract::{OriginalUri, Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use iotchat_protocol::{Code, IdentityId};

use super::ApiError;
use subtle::ConstantTimeEq as _;

use crate::auth::sigv4::{self, Policy, RequestParts, Service, SigV4Error};
use crate::{AppState, now_ms};

/// Largest API request body (room names and usernames are small).
const MAX_API_BODY: usize = 64 * 1024;
/// How far a request's `X-Amz-Date` may be from the server's clock: API Gateway's five
/// minutes, which is also how long a captured request could be replayed.
const MAX_CLOCK_SKEW: Duration = Duration::from_secs(5 * 60);

/// The verified caller of an API request.
#[derive(Debug, Clone)]
pub(crate) struct Caller {
    pub(crate) identity: IdentityId,
}

/// A refused request: what API Gateway would answer, and our own reason for the log.
struct Refused {
    answer: ApiError,
    reason: String,
}

/// API Gateway's words for a signature that does not verify.
const SIGNATURE_MISMATCH: &str = "The request signature we calculated does not match the \
    signature you provided. Check your AWS Secret Access Key and signing method. Consult the \
    service documentation for details.";
/// API Gateway's words for an access key or session token it did not issue.
const TOKEN_INVALID: &str = "The security token included in the request is invalid.";

impl Refused {
    fn new(aws_type: &'static str, message: impl Into<String>, reason: impl Into<String>) -> Self {
        Self { answer: ApiError::gateway(aws_type, message), reason: reason.into() }
    }

    /// Maps a SigV4 verdict to the exception and wording API Gateway uses for it.
    fn signature(error: &SigV4Error, now: SystemTime) -> Self {
        let reason = error.to_string();
        match error {
            SigV4Error::RequestExpired { age_secs, max_secs } => {
                let signed = amz_date(now, -(*age_secs as i64));
                let limit = amz_date(now, -(*max_secs as i64));
                let message = format!(
                    "Signature expired: {signed} is now earlier than {limit} ({} - {} min.)",
                    amz_date(now, 0),
                    max_secs / 60
                );
                Self::new("InvalidSignatureException", message, reason)
            }
            SigV4Error::RequestFromTheFuture { ahead_secs, max_secs } => {
                let signed = amz_date(now, *ahead_secs as i64);
                let limit = amz_date(now, *max_secs as i64);
                let message = format!(
                    "Signature not yet current: {signed} is still later than {limit} ({} + {} \
                     min.)",
                    amz_date(now, 0),
                    max_secs / 60
                );
                Self::new("InvalidSignatureException", message, reason)
            }
            SigV4Error::WrongRegion { .. } => Self::new(
                "InvalidSignatureException",
                "Credential should be scoped to a valid region.",
                reason,
            ),
            SigV4Error::WrongService { expected, .. } => Self::new(
                "InvalidSignatureException",
                format!("Credential should be scoped to correct service: '{expected}'."),
                reason,
            ),
            SigV4Error::SignatureMismatch
            | SigV4Error::BodyHashMismatch
            | SigV4Error::MissingSignedHeader(_)
            | SigV4Error::HeaderNotUtf8(_)
            | SigV4Error::BadPath(_)
            | SigV4Error::ScopeDateMismatch => {
                Self::new("InvalidSignatureException", SIGNATURE_MISMATCH, reason)
            }
            SigV4Error::HmacKey => Self {
                answer: ApiError::new(Code::Internal, "The server could not check the signature."),
                reason,
            },
            // The request's signing parts are missing or malformed: API Gateway says which.
            _ => Self::new(
                "IncompleteSignatureException",
                format!("The request is not signed correctly: {reason}."),
                reason.clone(),
            ),
        }
    }
}

/// `YYYYMMDDTHHMMSSZ`, `offset_secs` from `now`.
fn amz_date(now: SystemTime, offset_secs: i64) -> String {
    let secs = now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64) + offset_secs;
    let Ok(at) = time::OffsetDateTime::from_unix_timestamp(secs) else {
        return "(out of range)".to_owned();
    };
    format!(
        "{:04}{:02}{:02}T{:02}{:02}{:02}Z",
        at.year(),
        u8::from(at.month()),
        at.day(),
        at.hour(),
        at.minute(),
        at.second()
    )
}

/// A request that carries no signature at all: neither an `Authorization` header nor the
/// presigned query parameters.
fn unsigned(request: &RequestParts<'_>) -> bool {
    let query = request.raw_query.unwrap_or("");
    let presigned = query.split('&').any(|pair| {
        let key = pair.split_once('=').map_or(pair, |(key, _)| key);
        key.eq_ignore_ascii_case("X-Amz-Signature") || key.eq_ignore_ascii_case("X-Amz-Credential")
    });
    !request.headers.contains_key("authorization") && !presigned
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
        Err(refused) => {
            tracing::info!(path = uri.path(), reason = %refused.reason, "API request refused");
            refused.answer.into_response()
        }
    }
}

async fn verify(state: &AppState, request: &RequestParts<'_>) -> Result<Caller, Refused> {
    if unsigned(request) {
        let reason = "the request carries no signature";
        return Err(Refused::new(
            "MissingAuthenticationTokenException",
            "Missing Authentication Token",
            reason,
        ));
    }
    let policy = Policy {
        region: state.pool.region.clone(),
        service: Service::ExecuteApi,
        max_clock_skew: MAX_CLOCK_SKEW,
        max_presign_age: MAX_CLOCK_SKEW,
    };
    let now = SystemTime::now();
    let claimed = sigv4::parse(request, &policy, now).map_err(|e| Refused::signature(&e, now))?;
    let credentials = state
        .store
        .credentials_get(&claimed.access_key_id)
        .await
        .map_err(|e| Refused { answer: e.into(), reason: "storage failed".into() })?
        .ok_or_else(|| {
            Refused::new(
                "UnrecognizedClientException",
                TOKEN_INVALID,
                "the access key is not one this server issued",
            )
        })?;
    // Compared in constant time: the token is a bearer secret.
    let token_matches = claimed.session_token.as_deref().is_some_and(|token| {
        bool::from(token.as_bytes().ct_eq(credentials.session_token.as_bytes()))
    });
    if !token_matches {
        return Err(Refused::new(
            "UnrecognizedClientException",
            TOKEN_INVALID,
            "the session token does not belong to this access key",
        ));
    }
    if credentials.expires_at_ms <= now_ms() {
        return Err(Refused::new(
            "ExpiredTokenException",
            "The security token included in the request is expired",
            "the credentials have expired",
        ));
    }
    sigv4::verify(request, &claimed, &credentials.secret_access_key)
        .map_err(|e| Refused::signature(&e, now))?;
    Ok(Caller { identity: credentials.identity_id })
}
