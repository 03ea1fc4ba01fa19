//! `AWSCognitoIdentityProviderService.*`: SignUp (auto-confirmed, as the seed's PreSignUp
//! trigger did), ConfirmSignUp, InitiateAuth (USER_PASSWORD_AUTH, REFRESH_TOKEN_AUTH), GetUser,
//! GlobalSignOut.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Instant;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use iotchat_protocol::auth::{email_is_plausible, password_problem, username_problem};
use rand::RngCore as _;
use serde::Deserialize;
use serde_json::json;
use sha2::{Digest, Sha256};

use super::{CognitoError, CognitoResult, parse, unknown};
use crate::auth::lockout::Refusal;
use crate::auth::tokens::{AccessClaims, TOKEN_TTL, TokenError};
use crate::storage::{SessionRecord, StoreError, UserRecord};
use crate::{AppState, now_ms};

/// How long a refresh token lives (Cognito's default, 30 days).
const REFRESH_TTL_MS: u64 = 30 * 24 * 3600 * 1000;

pub(super) async fn call(
    state: &AppState,
    peer: SocketAddr,
    op: &str,
    body: &[u8],
) -> CognitoResult {
    match op {
        "SignUp" => sign_up(state, parse(body)?).await,
        "ConfirmSignUp" => confirm_sign_up(state, parse(body)?).await,
        "InitiateAuth" => initiate_auth(state, peer, parse(body)?).await,
        "GetUser" => get_user(state, parse(body)?).await,
        "GlobalSignOut" => global_sign_out(state, parse(body)?).await,
        _ => Err(unknown(&format!("AWSCognitoIdentityProviderService.{op}"))),
    }
}

fn check_client(state: &AppState, client_id: &str) -> Result<(), CognitoError> {
    if client_id == state.pool.client_id {
        Ok(())
    } else {
        Err(CognitoError::new(
            "ResourceNotFoundException",
            format!("User pool client {client_id} does not exist."),
        ))
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Attribute {
    name: String,
    value: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct SignUp {
    client_id: String,
    username: String,
    password: String,
    #[serde(default)]
    user_attributes: Vec<Attribute>,
}

async fn sign_up(state: &AppState, req: SignUp) -> CognitoResult {
    check_client(state, &req.client_id)?;
    if let Some(problem) = username_problem(&req.username) {
        return Err(CognitoError::invalid_parameter(problem.to_string()));
    }
    if let Some(problem) = password_problem(&req.password) {
        return Err(CognitoError::new("InvalidPasswordException", problem.cognito_message()));
    }
    let email = req
        .user_attributes
        .iter()
        .find(|a| a.name == "email")
        .map(|a| a.value.trim().to_owned())
        .ok_or_else(|| {
            CognitoError::invalid_parameter(
                "Attributes did not conform to the schema: email: The attribute is required",
            )
        })?;
    if !email_is_plausible(&email) {
        return Err(CognitoError::invalid_parameter("Invalid email address format."));
    }
    if let Some(other) = req.user_attributes.iter().find(|a| a.name != "email") {
        return Err(CognitoError::invalid_parameter(format!(
            "Attributes did not conform to the schema: {}: The attribute is not defined in schema.",
            other.name
        )));
    }
    if state.store.user_by_username(&req.username).await?.is_some() {
        return Err(CognitoError::new("UsernameExistsException", "User already exists"));
    }
    let sub = uuid::Uuid::new_v4().to_string();
    let password_hash = state.passwords.hash(req.password).await.map_err(CognitoError::password)?;
    let user = UserRecord {
        sub: sub.clone(),
        username: req.username,
        email,
        password_hash,
        confirmed: true,
        created_at_ms: now_ms(),
    };
    match state.store.user_insert(user).await {
        Ok(()) => {}
        Err(StoreError::Conflict(_)) => {
            return Err(CognitoError::new("UsernameExistsException", "User already exists"));
        }
        Err(e) => return Err(e.into()),
    }
    tracing::info!(%sub, "user signed up");
    Ok(json!({ "UserConfirmed": true, "UserSub": sub }))
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ConfirmSignUp {
    client_id: String,
    username: String,
}

async fn confirm_sign_up(state: &AppState, req: ConfirmSignUp) -> CognitoResult {
    check_client(state, &req.client_id)?;
    match state.store.user_by_username(&req.username).await? {
        None => Err(CognitoError::new(
            "UserNotFoundException",
            "Username/client id combination not found.",
        )),
        Some(user) if user.confirmed => Err(CognitoError::not_authorized(
            "User cannot be confirmed. Current status is CONFIRMED",
        )),
        Some(user) => {
            state.store.user_confirm(&user.username).await?;
            Ok(json!({}))
        }
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct InitiateAuth {
    auth_flow: String,
    client_id: String,
    #[serde(default)]
    auth_parameters: HashMap<String, String>,
}

fn param<'a>(params: &'a HashMap<String, String>, name: &str) -> Result<&'a str, CognitoError> {
    params.get(name).map(String::as_str).ok_or_else(|| {
        CognitoError::invalid_parameter(format!("Missing required parameter {name}"))
    })
}

fn refresh_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

async fn initiate_auth(state: &AppState, peer: SocketAddr, req: InitiateAuth) -> CognitoResult {
    check_client(state, &req.client_id)?;
    match req.auth_flow.as_str() {
        "USER_PASSWORD_AUTH" => password_auth(state, peer, &req.auth_parameters).await,
        "REFRESH_TOKEN_AUTH" | "REFRESH_TOKEN" => refresh_auth(state, &req.auth_parameters).await,
        other => Err(CognitoError::invalid_parameter(format!(
            "Initiate Auth method not supported: {other}. This server supports USER_PASSWORD_AUTH \
             and REFRESH_TOKEN_AUTH."
        ))),
    }
}

async fn password_auth(
    state: &AppState,
    peer: SocketAddr,
    params: &HashMap<String, String>,
) -> CognitoResult {
    let username = param(params, "USERNAME")?;
    let given = param(params, "PASSWORD")?.to_owned();
    // The attempt starts (and counts) only once a hasher is free to check it: at most one per
    // core is in flight, so a crowd signing in at once from one address is not taken for a
    // guesser, and parallel guesses get at most that many more tries than serial ones.
    let hasher = state.passwords.hasher().await.map_err(CognitoError::password)?;
    let attempt = state.sign_ins.begin(username, peer.ip(), Instant::now()).map_err(|refusal| {
        match refusal {
            // Cognito's words and exception for a locked-out user.
            Refusal::UserLocked { retry_after } => {
                tracing::info!(retry_after_s = retry_after.as_secs(), "sign-in locked out");
                CognitoError::not_authorized("Password attempts exceeded")
            }
            Refusal::AddressLimited { retry_after } => {
                tracing::warn!(%peer, "too many failed sign-ins from one address");
                CognitoError::new(
                    "TooManyRequestsException",
                    format!(
                        "Too many failed sign-ins from this address. Try again in {} s.",
                        retry_after.as_secs().max(1)
                    ),
                )
            }
        }
    })?;
    let user = match state.store.user_by_username(username).await {
        Ok(user) => user,
        Err(error) => {
            state.sign_ins.abandoned(attempt, Instant::now());
            return Err(error.into());
        }
    };
    // A user who signs in through another provider has no password: checked against the
    // dummy hash like an unknown name (same cost, same answer).
    let hash = user
        .as_ref()
        .map(|u| u.password_hash.as_str())
        .filter(|hash| !hash.is_empty())
        .unwrap_or(state.dummy_hash.as_str())
        .to_owned();
    let matches = match hasher.verify(given, hash).await {
        Ok(matches) => matches,
        Err(error) => {
            state.sign_ins.abandoned(attempt, Instant::now());
            return Err(CognitoError::password(error));
        }
    };
    let user = match user {
        Some(user) if matches && !user.password_hash.is_empty() => user,
        // The attempt stays counted as a failure.
        _ => return Err(CognitoError::not_authorized("Incorrect username or password.")),
    };
    state.sign_ins.succeeded(attempt, Instant::now());
    if !user.confirmed {
        return Err(CognitoError::new("UserNotConfirmedException", "User is not confirmed."));
    }
    let (session, refresh_token) = start_session(state, &user, now_ms() / 1000).await?;
    tracing::info!(sub = %user.sub, "signed in");
    authentication_result(state, &user, &session, Some(&refresh_token))
}

/// A new sign-in of `user` (authenticated at `auth_time_s`): its session, kept, and the
/// refresh token that names it (only its hash is kept).
pub(crate) async fn start_session(
    state: &AppState,
    user: &UserRecord,
    auth_time_s: u64,
) -> Result<(SessionRecord, String), CognitoError> {
    let now = now_ms();
    let mut raw = [0u8; 48];
    rand::rng().fill_bytes(&mut raw);
    let refresh_token = URL_SAFE_NO_PAD.encode(raw);
    let session = SessionRecord {
        origin_jti: uuid::Uuid::new_v4().to_string(),
        refresh_sha256: refresh_hash(&refresh_token),
        sub: user.sub.clone(),
        issued_at_ms: now,
        expires_at_ms: now + REFRESH_TTL_MS,
        auth_time_s,
    };
    state.store.session_insert(session.clone()).await?;
    Ok((session, refresh_token))
}

async fn refresh_auth(state: &AppState, params: &HashMap<String, String>) -> CognitoResult {
    let (user, session) = refreshed_session(state, param(params, "REFRESH_TOKEN")?).await?;
    // Cognito does not rotate refresh tokens: the response carries none.
    authentication_result(state, &user, &session, None)
}

/// The live session of a refresh token and its user (InitiateAuth and the hosted UI's
/// `refresh_token` grant).
pub(crate) async fn refreshed_session(
    state: &AppState,
    token: &str,
) -> Result<(UserRecord, SessionRecord), CognitoError> {
    let now = now_ms();
    let session = state
        .store
        .session_by_refresh(&refresh_hash(token))
        .await?
        .ok_or_else(|| CognitoError::not_authorized("Invalid Refresh Token"))?;
    if session.expires_at_ms <= now {
        return Err(CognitoError::not_authorized("Refresh Token has expired"));
    }
    let user = state
        .store
        .user_by_sub(&session.sub)
        .await?
        .ok_or_else(|| CognitoError::not_authorized("Invalid Refresh Token"))?;
    Ok((user, session))
}

/// Issues ID and access tokens for `session` and answers InitiateAuth with them.
fn authentication_result(
    state: &AppState,
    user: &UserRecord,
    session: &SessionRecord,
    refresh_token: Option<&str>,
) -> CognitoResult {
    let tokens = state
        .tokens
        .issue(user, &session.origin_jti, session.auth_time_s, now_ms() / 1000)
        .map_err(CognitoError::internal)?;
    let mut result = json!({
        "AccessToken": tokens.access_token,
        "ExpiresIn": TOKEN_TTL.as_secs(),
        "TokenType": "Bearer",
        "IdToken": tokens.id_token,
    });
    if let Some(refresh_token) = refresh_token {
        result["RefreshToken"] = refresh_token.into();
    }
    Ok(json!({ "ChallengeParameters": {}, "AuthenticationResult": result }))
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct WithAccessToken {
    access_token: String,
}

/// Verifies an access token and that its sign-in has not been ended.
pub(crate) async fn access(state: &AppState, token: &str) -> Result<AccessClaims, CognitoError> {
    let claims = state.tokens.verify_access(token).map_err(|e| match e {
        TokenError::Expired { .. } => CognitoError::not_authorized("Access Token has expired"),
        TokenError::Invalid { detail, .. } => {
            tracing::info!(%detail, "invalid access token");
            CognitoError::not_authorized("Invalid Access Token")
        }
    })?;
    if !state.store.session_active(&claims.origin_jti, now_ms()).await? {
        return Err(CognitoError::not_authorized("Access Token has been revoked"));
    }
    Ok(claims)
}

async fn get_user(state: &AppState, req: WithAccessToken) -> CognitoResult {
    let claims = access(state, &req.access_token).await?;
    let user = state
        .store
        .user_by_sub(&claims.sub)
        .await?
        .ok_or_else(|| CognitoError::new("UserNotFoundException", "User does not exist."))?;
    Ok(json!({
        "Username": user.username,
        "UserAttributes": [
            { "Name": "sub", "Value": user.sub },
            { "Name": "email_verified", "Value": if user.confirmed { "true" } else { "false" } },
            { "Name": "email", "Value": user.email },
        ]
    }))
}

async fn global_sign_out(state: &AppState, req: WithAccessToken) -> CognitoResult {
    let claims = access(state, &req.access_token).await?;
    state.store.sessions_end(&claims.sub).await?;
    tracing::info!(sub = %claims.sub, "signed out everywhere");
    Ok(json!({}))
}
