//! IoT Chat's HTTP API, the one the seed served through API Gateway with `AWS_IAM` auth.
//!
//! [`router`] is the API as one axum `Router` over two traits: [`ChatStore`] (profiles, rooms,
//! history) and [`Accounts`] (who a caller is in the user pool, and the IoT policy). Its host
//! decides who the caller is and puts a [`Caller`] in the request's extensions before the
//! router sees it:
//!
//! - `iotchat-server` verifies the request's SigV4 signature against the credentials it issued,
//!   stores in SQLite and records policy attachments itself;
//! - on AWS, API Gateway verifies the signature (IAM auth) and the Lambda function reads the
//!   Cognito identity from the request context, stores in DynamoDB ([`dynamo`]) and attaches
//!   the IoT policy with AWS IoT.
//!
//! The routes, request and response types and error bodies are this crate's code in both.

mod caller;
mod error;
mod handlers;
mod history;
mod store;

#[cfg(feature = "dynamodb")]
pub mod dynamo;

use std::sync::Arc;

use axum::Router;
use axum::routing::{get, post};
use iotchat_protocol::api::routes;

pub use caller::{Accounts, AccountsError, Caller};
pub use error::{ApiError, ApiResult};
pub use history::{NotKept, history_entry};
pub use store::{ChatStore, StoreError, StoreResult};

/// The name of the one IoT policy every signed-in identity gets: policy variables make it
/// per-identity on AWS; locally the broker enforces the same rules.
pub const POLICY_NAME: &str = "iotchat-user";

/// What the handlers share.
#[derive(Clone)]
pub struct ApiState {
    pub chat: Arc<dyn ChatStore>,
    pub accounts: Arc<dyn Accounts>,
}

impl std::fmt::Debug for ApiState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiState").finish_non_exhaustive()
    }
}

/// Milliseconds since 1970.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// The API routes, relative to the API's base (`/api` locally, the stage on API Gateway).
///
/// Every route answers only requests that carry a [`Caller`] extension (put there by the
/// host's authentication); without one it answers 403. Unknown routes answer 404.
pub fn router<S>(state: ApiState) -> Router<S>
where
    S: Clone + Send + Sync + 'static,
{
    Router::new()
        .route(routes::USERS, post(handlers::user_create).get(handlers::users_list))
        .route(routes::USERS_ME, get(handlers::user_me))
        .route(routes::USER, get(handlers::user_get))
        .route(routes::CHATS, get(handlers::rooms_list).post(handlers::room_create))
        .route(routes::CHAT_MESSAGES, get(handlers::messages_page))
        .route(routes::POLICY_ATTACH, post(handlers::policy_attach))
        .fallback(handlers::not_found)
        .with_state(state)
}
