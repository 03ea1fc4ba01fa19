//! The HTTP API the seed served through API Gateway with `AWS_IAM` auth: every request is
//! SigV4-signed (service `execute-api`) with an identity's temporary credentials, and the caller
//! is that Cognito identity. Mounted under `/api` (API Gateway's stage). Errors are the shared
//! `{code, message}` body with the status its `Code` names.

mod caller;
mod handlers;

use axum::Router;
use axum::http::{HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Json, Response};
use axum::routing::{get, post};
use iotchat_protocol::api::routes;
use iotchat_protocol::{Code, ErrorBody};

use crate::AppState;
use crate::storage::StoreError;

pub(crate) use caller::Caller;

/// The header API Gateway names its own errors in.
const AWS_ERROR_TYPE: HeaderName = HeaderName::from_static("x-amzn-errortype");

/// An API error: the body every client understands.
#[derive(Debug)]
pub(crate) struct ApiError {
    pub(crate) body: ErrorBody,
    /// API Gateway's `x-amzn-ErrorType`, on the errors the gateway itself produces (a refused
    /// signature); AWS clients map those by this header, the body's `code` is ours.
    aws_type: Option<&'static str>,
}

impl ApiError {
    pub(crate) fn new(code: Code, message: impl Into<String>) -> Self {
        Self { body: ErrorBody::new(code, message), aws_type: None }
    }

    /// A refusal as API Gateway's IAM authorizer words it (status 403).
    pub(crate) fn gateway(aws_type: &'static str, message: impl Into<String>) -> Self {
        Self { body: ErrorBody::new(Code::Unauthenticated, message), aws_type: Some(aws_type) }
    }
}

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> Self {
        tracing::error!(%error, "storage failed while serving the API");
        Self::new(Code::Internal, "The server could not reach its storage. Please try again.")
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

pub(crate) type ApiResult<T> = Result<T, ApiError>;

/// The API routes, to be nested under `/api`; every one requires a valid signature.
pub(crate) fn router(state: AppState) -> Router<AppState> {
    Router::new()
        .route(routes::USERS, post(handlers::user_create).get(handlers::users_list))
        .route(routes::USERS_ME, get(handlers::user_me))
        .route(routes::USER, get(handlers::user_get))
        .route(routes::CHATS, get(handlers::rooms_list).post(handlers::room_create))
        .route(routes::CHAT_MESSAGES, get(handlers::messages_page))
        .route(routes::POLICY_ATTACH, post(handlers::policy_attach))
        .fallback(handlers::not_found)
        .route_layer(axum::middleware::from_fn_with_state(state, caller::authenticate))
}
