//! The API function: the same Router as `iotchat-server`'s `/api`, with the caller taken from
//! API Gateway's request context instead of our own signature check.

use std::sync::Arc;

use async_trait::async_trait;
use aws_sdk_cognitoidentityprovider as idp;
use axum::Router;
use axum::extract::Request;
use axum::middleware::Next;
use axum::response::Response;
use iotchat_api::{Accounts, AccountsError, ApiState, Caller};
use iotchat_protocol::IdentityId;
use lambda_http::RequestExt as _;
use lambda_http::request::RequestContext;

use crate::Settings;

/// The API Gateway stage, and so the first segment of every path the function sees: the same
/// `/api` prefix as the local server, so the profile's `apiUrl` ends the same way.
pub const STAGE: &str = "api";

/// The function's Router: the API under `/api`, the caller from the request context.
pub fn app(state: ApiState, user_pool_id: &str) -> Router {
    let pool = Arc::new(PoolName::new(user_pool_id));
    Router::new().nest(&format!("/{STAGE}"), iotchat_api::router(state)).layer(
        axum::middleware::from_fn(move |request, next| {
            caller_from_context(Arc::clone(&pool), request, next)
        }),
    )
}

/// The API state on AWS: DynamoDB, the user pool and AWS IoT.
pub fn state(sdk: &aws_config::SdkConfig, settings: &Settings) -> ApiState {
    ApiState {
        chat: Arc::new(crate::store(sdk, settings)),
        accounts: Arc::new(AwsAccounts {
            idp: idp::Client::new(sdk),
            iot: aws_sdk_iot::Client::new(sdk),
            user_pool_id: settings.user_pool_id.clone(),
            policy: settings.iot_policy.clone(),
        }),
    }
}

/// How API Gateway names a user of our pool in `cognitoAuthenticationProvider`:
/// `cognito-idp.<region>.amazonaws.com/<pool>,cognito-idp.<region>.amazonaws.com/<pool>:CognitoSignIn:<sub>`.
#[derive(Debug)]
struct PoolName {
    sign_in_prefix: String,
}

impl PoolName {
    fn new(user_pool_id: &str) -> Self {
        let region = user_pool_id.split('_').next().unwrap_or_default();
        Self {
            sign_in_prefix: format!(
                "cognito-idp.{region}.amazonaws.com/{user_pool_id}:CognitoSignIn:"
            ),
        }
    }

    /// The `sub` of the user the provider string names, if it is a sign-in to our pool.
    fn user_sub(&self, providers: &str) -> Option<String> {
        providers.split(',').find_map(|provider| {
            let sub = provider.trim().strip_prefix(&self.sign_in_prefix)?;
            let ok = !sub.is_empty()
                && sub.len() <= 128
                && sub.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
            ok.then(|| sub.to_owned())
        })
    }
}

/// Puts the [`Caller`] API Gateway vouches for into the request. A request without a Cognito
/// identity (signed with other IAM credentials) gets none, and the routes answer 403.
async fn caller_from_context(pool: Arc<PoolName>, mut request: Request, next: Next) -> Response {
    let caller = match request.request_context_ref() {
        Some(RequestContext::ApiGatewayV1(context)) => {
            let identity = context.identity.cognito_identity_id.as_deref().and_then(|raw| {
                IdentityId::parse(raw)
                    .inspect_err(|error| tracing::warn!(%error, "a malformed Cognito identity"))
                    .ok()
            });
            identity.map(|identity| Caller {
                identity,
                user_sub: context
                    .identity
                    .cognito_authentication_provider
                    .as_deref()
                    .and_then(|providers| pool.user_sub(providers)),
            })
        }
        _ => None,
    };
    if let Some(caller) = caller {
        request.extensions_mut().insert(caller);
    }
    next.run(request).await
}

/// The user pool (who a `sub` is) and AWS IoT (the policy).
struct AwsAccounts {
    idp: idp::Client,
    iot: aws_sdk_iot::Client,
    user_pool_id: String,
    policy: String,
}

#[async_trait]
impl Accounts for AwsAccounts {
    async fn username(&self, caller: &Caller) -> Result<Option<String>, AccountsError> {
        let Some(sub) = &caller.user_sub else { return Ok(None) };
        // `sub` is checked to be letters, digits and dashes: nothing to escape in the filter.
        let found = self
            .idp
            .list_users()
            .user_pool_id(&self.user_pool_id)
            .filter(format!("sub = \"{sub}\""))
            .limit(1)
            .send()
            .await
            .map_err(|e| {
                AccountsError::Backend(format!(
                    "Cognito ListUsers: {}",
                    idp::error::DisplayErrorContext(e)
                ))
            })?;
        Ok(found.users().first().and_then(|u| u.username()).map(str::to_owned))
    }

    async fn policy_attach(&self, identity: &IdentityId) -> Result<String, AccountsError> {
        // Attaching an attached policy succeeds: idempotent, as the API promises.
        self.iot
            .attach_policy()
            .policy_name(&self.policy)
            .target(identity.as_str())
            .send()
            .await
            .map_err(|e| {
            AccountsError::Backend(format!(
                "AWS IoT AttachPolicy: {}",
                aws_sdk_iot::error::DisplayErrorContext(e)
            ))
        })?;
        Ok(self.policy.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_sign_ins_to_our_pool_name_a_user() {
        let pool = PoolName::new("us-east-1_AbC123");
        let ours = "cognito-idp.us-east-1.amazonaws.com/us-east-1_AbC123,cognito-idp.us-east-1.\
                    amazonaws.com/us-east-1_AbC123:CognitoSignIn:0f1e2d3c-aaaa-bbbb-cccc-1234567890ab";
        assert_eq!(pool.user_sub(ours).as_deref(), Some("0f1e2d3c-aaaa-bbbb-cccc-1234567890ab"));
        let other = ours.replace("us-east-1_AbC123", "us-east-1_Other");
        assert_eq!(pool.user_sub(&other), None, "another pool's user");
        assert_eq!(pool.user_sub("graph.facebook.com"), None);
        let injected = format!("{}\" or sub ^= \"", &ours[..ours.len() - 5]);
        assert_eq!(pool.user_sub(&injected), None, "nothing but a sub gets into the filter");
    }
}
