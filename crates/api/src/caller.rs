//! Who is calling: the host authenticates the request and says so with a [`Caller`]; the
//! handlers ask [`Accounts`] what the user pool knows about that caller.

use async_trait::async_trait;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use iotchat_protocol::{Code, IdentityId};

use crate::{ApiError, StoreError};

/// The authenticated caller of an API request: a Cognito identity, and the user-pool user
/// (`sub`) it signed in as when the host knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    pub identity: IdentityId,
    /// The user pool's `sub` of the signed-in user (API Gateway names it in
    /// `cognitoAuthenticationProvider`); `None` where the host maps identities itself.
    pub user_sub: Option<String>,
}

impl<S: Send + Sync> FromRequestParts<S> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, ApiError> {
        parts.extensions.get::<Caller>().cloned().ok_or_else(|| {
            // The host's authentication runs before every route; this is a request it let
            // through without naming a Cognito identity (on AWS: IAM credentials that are not
            // an identity pool's).
            ApiError::new(
                Code::Forbidden,
                "This API answers only users signed in to IoT Chat (Cognito identities).",
            )
        })
    }
}

/// Why [`Accounts`] could not answer.
#[derive(Debug, thiserror::Error)]
pub enum AccountsError {
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The user pool or AWS IoT failed (a message for the log).
    #[error("{0}")]
    Backend(String),
}

/// The user pool and the IoT policy, as the API needs them.
#[async_trait]
pub trait Accounts: Send + Sync + 'static {
    /// The user-pool username of the user signed in as `caller`; `None` when the identity
    /// belongs to no user of this pool.
    async fn username(&self, caller: &Caller) -> Result<Option<String>, AccountsError>;
    /// Attaches the IoT policy ([`crate::POLICY_NAME`] locally, the stack's on AWS) to the
    /// identity, idempotently, and returns the policy's name.
    async fn policy_attach(&self, identity: &IdentityId) -> Result<String, AccountsError>;
}
