//! The HTTP API under `/api` (API Gateway's stage): the `iotchat-api` router, behind this
//! server's own check of every request's SigV4 signature (service `execute-api`) against the
//! credentials GetCredentialsForIdentity issued. On AWS the same router runs in Lambda behind
//! API Gateway's IAM auth.

mod caller;

use std::sync::Arc;

use async_trait::async_trait;
use axum::Router;
use iotchat_api::{Accounts, AccountsError, ApiState, Caller, POLICY_NAME};
use iotchat_protocol::IdentityId;

use crate::storage::Store;
use crate::{AppState, now_ms};

/// The API routes, to be nested under `/api`; every one requires a valid signature.
pub(crate) fn router(state: AppState) -> Router<AppState> {
    let store = Arc::clone(&state.store);
    let api = ApiState { chat: store.clone(), accounts: Arc::new(LocalAccounts { store }) };
    iotchat_api::router(api)
        .route_layer(axum::middleware::from_fn_with_state(state, caller::authenticate))
}

/// This server's user pool and policy records, for the API.
struct LocalAccounts {
    store: Arc<dyn Store>,
}

#[async_trait]
impl Accounts for LocalAccounts {
    async fn username(&self, caller: &Caller) -> Result<Option<String>, AccountsError> {
        let store_error = |e: crate::storage::StoreError| AccountsError::Store(e.into());
        let Some(sub) = self.store.identity_owner(&caller.identity).await.map_err(store_error)?
        else {
            return Ok(None);
        };
        let user = self.store.user_by_sub(&sub).await.map_err(store_error)?;
        Ok(user.map(|u| u.username))
    }

    async fn policy_attach(&self, identity: &IdentityId) -> Result<String, AccountsError> {
        self.store
            .policy_attach(identity, now_ms())
            .await
            .map_err(|e| AccountsError::Store(e.into()))?;
        Ok(POLICY_NAME.to_owned())
    }
}
