//! SigV4 authentication of API requests: the middleware buffers the body (it is part of the
//! signature), verifies the signature against the credentials GetCredentialsForIdentity issued,
//! and hands the caller's identity to the handlers.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::body::{Body, to_bytes};
use axum::extract::{OriginalUri, Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use iotchat_api::{ApiError, Caller};
use iotchat_protocol::Code;

use crate::auth::credentials::{self, Unaccepted};
use crate::auth::sigv4::{self, Policy, RequestParts, Service, SigV4Error};
use crate::{AppState, now_ms};

/// Largest API request body (room names and usernames are small).
const MAX_API_BODY: usize = 64 * 1024;
/// How far a request's `X-Amz-Date` may be from the server's clock: API Gateway's five
/// minutes, which is also how long a captured request could be replayed.
const MAX_CLOCK_SKEW: Duration = Duration::from_secs(5 * 60);

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
    if !sigv4::carries_signature(request) {
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
    let credentials = credentials::signed_by(state.store.as_ref(), request, &claimed, now_ms())
        .await
        .map_err(|unaccepted| {
            let reason = unaccepted.to_string();
            match unaccepted {
                Unaccepted::UnknownKey | Unaccepted::ForeignToken => {
                    Refused::new("UnrecognizedClientException", TOKEN_INVALID, reason)
                }
                Unaccepted::Expired => Refused::new(
                    "ExpiredTokenException",
                    "The security token included in the request is expired",
                    reason,
                ),
                Unaccepted::Signature(error) => Refused::signature(&error, now),
                Unaccepted::Storage(error) => {
                    Refused { answer: iotchat_api::StoreError::from(error).into(), reason }
                }
            }
        })?;
    Ok(Caller { identity: credentials.identity_id, user_sub: None })
}
