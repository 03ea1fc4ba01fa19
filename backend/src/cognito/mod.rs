//! The Cognito subset, on `POST /` as AWS serves it: JSON 1.1 bodies, the operation named by
//! `X-Amz-Target`, errors as `{"__type", "message"}` with Cognito's exception names so the AWS
//! SDKs map them to their typed errors.

pub(crate) mod hosted_ui;
mod identity;
mod user_pool;

use axum::body::Bytes;
use std::net::SocketAddr;

use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::de::DeserializeOwned;

use crate::AppState;

const JSON_11: &str = "application/x-amz-json-1.1";
const USER_POOL_PREFIX: &str = "AWSCognitoIdentityProviderService.";
const IDENTITY_PREFIX: &str = "AWSCognitoIdentityService.";

/// A Cognito exception: its AWS name and a message for people.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CognitoError {
    pub(crate) name: &'static str,
    pub(crate) message: String,
}

impl CognitoError {
    pub(crate) fn new(name: &'static str, message: impl Into<String>) -> Self {
        Self { name, message: message.into() }
    }

    pub(crate) fn invalid_parameter(message: impl Into<String>) -> Self {
        Self::new("InvalidParameterException", message)
    }

    pub(crate) fn not_authorized(message: impl Into<String>) -> Self {
        Self::new("NotAuthorizedException", message)
    }

    /// A password could not be checked because the hashers stayed busy, or failed.
    pub(crate) fn password(error: crate::auth::password::PasswordError) -> Self {
        match error {
            crate::auth::password::PasswordError::Busy => Self::new(
                "TooManyRequestsException",
                "The server is busy checking other sign-ins. Try again in a few seconds.",
            ),
            crate::auth::password::PasswordError::Failed(error) => Self::internal(error),
        }
    }

    pub(crate) fn internal(error: impl std::fmt::Display) -> Self {
        tracing::error!(%error, "internal error in a Cognito operation");
        Self::new("InternalErrorException", "An internal error occurred. Please try again.")
    }
}

impl From<crate::storage::StoreError> for CognitoError {
    fn from(error: crate::storage::StoreError) -> Self {
        Self::internal(error)
    }
}

impl IntoResponse for CognitoError {
    fn into_response(self) -> Response {
        // Cognito answers 400 for every client exception and 500 only for its own failures.
        let status = if self.name == "InternalErrorException" {
            StatusCode::INTERNAL_SERVER_ERROR
        } else {
            StatusCode::BAD_REQUEST
        };
        let body = serde_json::json!({ "__type": self.name, "message": self.message });
        let mut response = (status, body.to_string()).into_response();
        let headers = response.headers_mut();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(JSON_11));
        headers.insert("x-amzn-ErrorType", HeaderValue::from_static(self.name));
        response
    }
}

pub(crate) type CognitoResult = Result<serde_json::Value, CognitoError>;

/// Parses a request body, answering malformed JSON as AWS does.
pub(crate) fn parse<T: DeserializeOwned>(body: &[u8]) -> Result<T, CognitoError> {
    serde_json::from_slice(body).map_err(|e| {
        CognitoError::new("SerializationException", format!("The request body is not valid: {e}"))
    })
}

/// `POST /`: dispatches on `X-Amz-Target`.
pub(crate) async fn dispatch(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let target = headers.get("x-amz-target").and_then(|v| v.to_str().ok()).unwrap_or_default();
    let result = if let Some(op) = target.strip_prefix(USER_POOL_PREFIX) {
        user_pool::call(&state, peer, op, &body).await
    } else if let Some(op) = target.strip_prefix(IDENTITY_PREFIX) {
        identity::call(&state, op, &body).await
    } else if target.is_empty() {
        Err(CognitoError::new("MissingAction", "The X-Amz-Target header names no operation."))
    } else {
        Err(unknown(target))
    };
    match result {
        Ok(value) => {
            let mut response = (StatusCode::OK, value.to_string()).into_response();
            response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(JSON_11));
            response
        }
        Err(error) => {
            // A malformed body's message quotes the offending value, which may be a password.
            if error.name == "SerializationException" {
                tracing::info!(op = target, exception = error.name, "refused");
            } else {
                tracing::info!(op = target, exception = error.name, message = %error.message, "refused");
            }
            error.into_response()
        }
    }
}

pub(crate) fn unknown(target: &str) -> CognitoError {
    CognitoError::new(
        "UnknownOperationException",
        format!("{target} is not an operation this server supports."),
    )
}
