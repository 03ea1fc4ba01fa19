//! The API's error: the shared `{code, message}` body with the status its `Code` names.

use axum::http::{HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Json, Response};
use iotchat_protocol::{Code, ErrorBody};

use crate::StoreError;
use crate::caller::AccountsError;

/// The header API Gateway names its own errors in.
const AWS_ERROR_TYPE: HeaderName = HeaderName::from_static("x-amzn-errortype");

/// An API error: the body every client understands.
#[derive(Debug)]
pub struct ApiError {
    pub body: ErrorBody,
    /// API Gateway's `x-amzn-ErrorType`, on the errors the gateway itself produces (a refused
    /// signature); AWS clients map those by this header, the body's `code` is ours.
    aws_type: Option<&'static str>,
}

impl ApiError {
    pub fn new(code: Code, message: impl Into<String>) -> Self {
        Self { body: ErrorBody::new(code, message), aws_type: None }
    }

    /// A refusal as API Gateway's IAM authorizer words it (status 403).
    pub fn gateway(aws_type: &'static str, message: impl Into<String>) -> Self {
        Self { body: ErrorBody::new(Code::Unauthenticated, message), aws_type: Some(aws_type) }
    }
}

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::BadCursor => {
                Self::new(Code::InvalidInput, "before: not a cursor from a previous page.")
            }
            error => {
                tracing::error!(%error, "storage failed while serving the API");
                Self::new(
                    Code::Internal,
                    "The server could not reach its storage. Please try again.",
                )
            }
        }
    }
}

impl From<AccountsError> for ApiError {
    fn from(error: AccountsError) -> Self {
        match error {
            AccountsError::Store(error) => error.into(),
            AccountsError::Backend(error) => {
                tracing::error!(%error, "the user pool or AWS IoT failed while serving the API");
                Self::new(
                    Code::Unavailable,
                    "The server could not reach the user directory. Please try again.",
                )
            }
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.body.code.http_status())
            .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let mut response = (status, Json(self.body)).into_response();
        if let Some(aws_type) = self.aws_type {
            response.headers_mut().insert(AWS_ERROR_TYPE, HeaderValue::from_static(aws_type));
        }
        response
    }
}

pub type ApiResult<T> = Result<T, ApiError>;
