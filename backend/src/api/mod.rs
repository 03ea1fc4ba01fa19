//! The HTTP API the seed served through API Gateway with `AWS_IAM` auth: every request is
//! SigV4-signed (service `execute-api`) with an identity's temporary credentials, and the caller
//! is that Cognito identity. Mounted under `/api` (API Gateway's stage). Errors are the shared
//! `{code, message}` body with the status its `Code` names.

mod caller;
mod handlers;

use axum::Router;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Json, Response};
use axum::routing::{get, post};
use iotchat_protocol::api::routes;
use iotchat_protocol::{Code, ErrorBody};

use crate::AppState;
use crate::storage::StoreError;

pub(crate) use caller::Caller;

/// An API error: the body every client understands.
#[derive(Debug)]
pub(crate) struct ApiError(pub(crate) ErrorBody);

impl ApiError {
    pub(crate) fn new(code: Code, message: impl Into<String>) -> Self {
        Self(ErrorBody::new(code, message))
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
        let status = StatusCode::from_u16(self.0.code.http_status())
            .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        (status, Json(self.0)).into_response()
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
