//! `AWSCognitoIdentityService.*`: GetId (one identity per user, for good) and
//! GetCredentialsForIdentity (temporary credentials the HTTP API and the broker verify).

use std::collections::HashMap;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use iotchat_protocol::IdentityId;
use rand::Rng as _;
use rand::distr::Alphanumeric;
use serde::Deserialize;
use serde_json::json;

use super::{CognitoError, CognitoResult, parse, unknown};
use crate::auth::tokens::TokenError;
use crate::storage::CredentialRecord;
use crate::{AppState, now_ms};

pub(super) async fn call(state: &AppState, op: &str, body: &[u8]) -> CognitoResult {
    match op {
        "GetId" => get_id(state, parse(body)?).await,
        "GetCredentialsForIdentity" => get_credentials(state, parse(body)?).await,
        _ => Err(unknown(&format!("AWSCognitoIdentityService.{op}"))),
    }
}

/// Checks the `Logins` map: it must hold a valid, signed-in ID token of our pool under the
/// pool's provider name. Returns the user's `sub`.
async fn login_sub(
    state: &AppState,
    logins: &HashMap<String, String>,
) -> Result<String, CognitoError> {
    if logins.is_empty() {
        return Err(CognitoError::not_authorized(
            "Unauthenticated access is not supported for this identity pool.",
        ));
    }
    let provider = state.pool.provider_name();
    let token = logins.get(&provider).ok_or_else(|| {
        CognitoError::not_authorized(
            "Token is not from a supported provider of this identity pool.",
        )
    })?;
    let claims = state.tokens.verify_id(token).map_err(|e| match e {
        TokenError::Expired { .. } => {
            CognitoError::not_authorized("Invalid login token. Token expired.")
        }
        TokenError::Invalid { detail, .. } => {
            tracing::info!(%detail, "invalid login token");
            CognitoError::not_authorized("Invalid login token. Couldn't verify signed token.")
        }
    })?;
    if !state.store.session_active(&claims.origin_jti, now_ms()).await? {
        return Err(CognitoError::not_authorized("Invalid login token. Token has been revoked."));
    }
    Ok(claims.sub)
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct GetId {
    identity_pool_id: String,
    #[serde(default)]
    logins: HashMap<String, String>,
}

async fn get_id(state: &AppState, req: GetId) -> CognitoResult {
    if req.identity_pool_id != state.pool.identity_pool_id {
        return Err(CognitoError::new(
            "ResourceNotFoundException",
            format!("IdentityPool '{}' not found.", req.identity_pool_id),
        ));
    }
    let sub = login_sub(state, &req.logins).await?;
    let fresh = IdentityId::parse(&format!("{}:{}", state.pool.region, uuid::Uuid::new_v4()))
        .map_err(CognitoError::internal)?;
    let id = state.store.identity_for_sub(&sub, fresh).await?;
    Ok(json!({ "IdentityId": id }))
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct GetCredentials {
    identity_id: String,
    #[serde(default)]
    logins: HashMap<String, String>,
}

fn random_string(len: usize) -> String {
    rand::rng().sample_iter(&Alphanumeric).take(len).map(char::from).collect()
}

async fn get_credentials(state: &AppState, req: GetCredentials) -> CognitoResult {
    let identity = IdentityId::parse(&req.identity_id)
        .map_err(|e| CognitoError::invalid_parameter(format!("IdentityId: {e}")))?;
    let sub = login_sub(state, &req.logins).await?;
    match state.store.identity_owner(&identity).await? {
        None => Err(CognitoError::new(
            "ResourceNotFoundException",
            format!("Identity '{identity}' not found."),
        )),
        Some(owner) if owner != sub => Err(CognitoError::not_authorized(
            "Logins don't match. Please include at least one valid login for this identity or \
             identity pool.",
        )),
        Some(_) => {
            let mut token = [0u8; 96];
            rand::rng().fill(&mut token[..]);
            let record = CredentialRecord {
                access_key_id: format!("ASIA{}", random_string(16).to_uppercase()),
                secret_access_key: random_string(40),
                session_token: STANDARD.encode(token),
                identity_id: identity.clone(),
                expires_at_ms: now_ms() + state.settings.credentials_ttl.as_millis() as u64,
            };
            state.store.credentials_insert(record.clone()).await?;
            Ok(json!({
                "IdentityId": identity,
                "Credentials": {
                    "AccessKeyId": record.access_key_id,
                    "SecretKey": record.secret_access_key,
                    "SessionToken": record.session_token,
                    "Expiration": record.expires_at_ms / 1000,
                }
            }))
        }
    }
}
