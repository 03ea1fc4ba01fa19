//! Cognito through the AWS SDK: the user pool (sign-up, sign-in, refresh, sign-out) and the
//! identity pool (identity id, temporary AWS credentials). Works unchanged against AWS and
//! against `iotchat-server`; only the endpoints differ.
//!
//! [`crate::Client`] uses it for every sign-in. It is public so that the same calls, with the
//! same error mapping, can be checked against other Cognito implementations (the tests run it
//! against a user pool we did not write).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_sdk_cognitoidentity as identity;
use aws_sdk_cognitoidentityprovider as idp;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;
use iotchat_protocol::{Code, IdentityId};

use crate::backend::{Backend, error_chain};
use crate::error::{ClientError, Result};

/// What a sign-in yields. Never logged: `Debug` shows no token.
#[derive(Clone)]
pub struct Tokens {
    pub(crate) id: String,
    pub(crate) access: String,
    pub(crate) refresh: String,
}

impl std::fmt::Debug for Tokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Tokens { .. }")
    }
}

impl Tokens {
    /// The ID token (a JWT naming the user).
    pub fn id_token(&self) -> &str {
        &self.id
    }

    /// The access token (what sign-out revokes).
    pub fn access_token(&self) -> &str {
        &self.access
    }

    /// The refresh token (what renews the other two).
    pub fn refresh_token(&self) -> &str {
        &self.refresh
    }

    /// When the ID token expires (its `exp` claim), ms since 1970; 0 when unreadable.
    pub fn id_expires_at_ms(&self) -> u64 {
        jwt_claim_u64(&self.id, "exp").map_or(0, |secs| secs.saturating_mul(1000))
    }
}

/// Temporary AWS credentials for the identity.
#[derive(Clone)]
pub struct AwsCredentials {
    pub access_key_id: String,
    pub secret_access_key: String,
    pub session_token: String,
    pub issued_at_ms: u64,
    pub expires_at_ms: u64,
}

impl std::fmt::Debug for AwsCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AwsCredentials")
            .field("access_key_id", &self.access_key_id)
            .field("expires_at_ms", &self.expires_at_ms)
            .finish_non_exhaustive()
    }
}

impl AwsCredentials {
    /// Whether these should be renewed now: within a fifth of their lifetime (at most five
    /// minutes) of expiring.
    pub fn needs_renewal(&self, now_ms: u64) -> bool {
        let lifetime = self.expires_at_ms.saturating_sub(self.issued_at_ms);
        let margin = (lifetime / 5).min(5 * 60 * 1000);
        now_ms + margin >= self.expires_at_ms
    }

    pub(crate) fn for_signing(&self) -> aws_credential_types::Credentials {
        aws_credential_types::Credentials::new(
            &self.access_key_id,
            &self.secret_access_key,
            Some(self.session_token.clone()),
            Some(UNIX_EPOCH + Duration::from_millis(self.expires_at_ms)),
            "iotchat",
        )
    }
}

pub(crate) fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
}

/// One claim of a JWT's payload, read without verifying (the server verifies; we only need to
/// know when to refresh).
fn jwt_claim_u64(token: &str, claim: &str) -> Option<u64> {
    jwt_claims(token)?.get(claim)?.as_u64()
}

/// A string claim of a JWT, read without verifying it (the server verifies the token when it
/// is used).
pub(crate) fn jwt_claim_str(token: &str, claim: &str) -> Option<String> {
    jwt_claims(token)?.get(claim)?.as_str().map(str::to_owned)
}

fn jwt_claims(token: &str) -> Option<serde_json::Value> {
    use base64::Engine as _;
    let payload = token.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload).ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// The two Cognito clients of one backend.
#[derive(Debug, Clone)]
pub struct Cognito {
    idp: idp::Client,
    identity: identity::Client,
    region: String,
    user_pool_id: String,
    client_id: String,
    identity_pool_id: String,
}

/// What the caller was doing, which decides what an SDK error means to the user.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Doing {
    SignUp,
    SignIn,
    Refresh,
    SignOut,
    Identity,
}

impl Cognito {
    pub fn new(backend: &Backend) -> Result<Self> {
        let profile = &backend.profile;
        let http = backend.sdk_http_client()?;
        let timeouts = aws_smithy_types::timeout::TimeoutConfig::builder()
            .operation_timeout(crate::backend::HTTP_TIMEOUT)
            .build();
        let mut idp_config = idp::Config::builder()
            .behavior_version(idp::config::BehaviorVersion::latest())
            .region(idp::config::Region::new(profile.region.clone()))
            .http_client(http.clone())
            .timeout_config(timeouts.clone());
        if let Some(endpoint) = &profile.cognito_idp_endpoint {
            idp_config = idp_config.endpoint_url(endpoint);
        }
        let mut identity_config = identity::Config::builder()
            .behavior_version(identity::config::BehaviorVersion::latest())
            .region(identity::config::Region::new(profile.region.clone()))
            .http_client(http)
            .timeout_config(timeouts);
        if let Some(endpoint) = &profile.cognito_identity_endpoint {
            identity_config = identity_config.endpoint_url(endpoint);
        }
        Ok(Self {
            idp: idp::Client::from_conf(idp_config.build()),
            identity: identity::Client::from_conf(identity_config.build()),
            region: profile.region.clone(),
            user_pool_id: profile.user_pool_id.clone(),
            client_id: profile.user_pool_client_id.clone(),
            identity_pool_id: profile.identity_pool_id.clone(),
        })
    }

    fn provider_name(&self) -> String {
        format!("cognito-idp.{}.amazonaws.com/{}", self.region, self.user_pool_id)
    }

    pub async fn sign_up(&self, username: &str, email: &str, password: &str) -> Result<()> {
        let email = idp::types::AttributeType::builder()
            .name("email")
            .value(email)
            .build()
            .map_err(|e| ClientError::internal(e.to_string()))?;
        self.idp
            .sign_up()
            .client_id(&self.client_id)
            .username(username)
            .password(password)
            .user_attributes(email)
            .send()
            .await
            .map_err(|e| sdk_error(Doing::SignUp, e))?;
        Ok(())
    }

    pub async fn sign_in(&self, username: &str, password: &str) -> Result<Tokens> {
        let out = self
            .idp
            .initiate_auth()
            .client_id(&self.client_id)
            .auth_flow(idp::types::AuthFlowType::UserPasswordAuth)
            .auth_parameters("USERNAME", username)
            .auth_parameters("PASSWORD", password)
            .send()
            .await
            .map_err(|e| sdk_error(Doing::SignIn, e))?;
        let result = out.authentication_result().ok_or_else(|| {
            let challenge = out.challenge_name().map(|c| c.as_str().to_owned()).unwrap_or_default();
            ClientError::new(
                Code::Unauthenticated,
                format!(
                    "The server asks for a sign-in step this app does not support ({challenge})."
                ),
            )
        })?;
        match (result.id_token(), result.access_token(), result.refresh_token()) {
            (Some(id), Some(access), Some(refresh)) => Ok(Tokens {
                id: id.to_owned(),
                access: access.to_owned(),
                refresh: refresh.to_owned(),
            }),
            _ => Err(ClientError::internal("The sign-in answer lacks a token.")),
        }
    }

    /// New ID and access tokens for a refresh token (which Cognito does not rotate).
    pub async fn refresh(&self, refresh_token: &str) -> Result<Tokens> {
        let out = self
            .idp
            .initiate_auth()
            .client_id(&self.client_id)
            .auth_flow(idp::types::AuthFlowType::RefreshTokenAuth)
            .auth_parameters("REFRESH_TOKEN", refresh_token)
            .send()
            .await
            .map_err(|e| sdk_error(Doing::Refresh, e))?;
        let result = out
            .authentication_result()
            .ok_or_else(|| ClientError::internal("The refresh answer has no tokens."))?;
        match (result.id_token(), result.access_token()) {
            (Some(id), Some(access)) => Ok(Tokens {
                id: id.to_owned(),
                access: access.to_owned(),
                refresh: result.refresh_token().unwrap_or(refresh_token).to_owned(),
            }),
            _ => Err(ClientError::internal("The refresh answer lacks a token.")),
        }
    }

    pub async fn sign_out(&self, access_token: &str) -> Result<()> {
        self.idp
            .global_sign_out()
            .access_token(access_token)
            .send()
            .await
            .map_err(|e| sdk_error(Doing::SignOut, e))?;
        Ok(())
    }

    pub async fn identity_id(&self, id_token: &str) -> Result<IdentityId> {
        let out = self
            .identity
            .get_id()
            .identity_pool_id(&self.identity_pool_id)
            .logins(self.provider_name(), id_token)
            .send()
            .await
            .map_err(|e| sdk_error(Doing::Identity, e))?;
        let raw = out.identity_id().ok_or_else(|| ClientError::internal("GetId returned no id"))?;
        IdentityId::parse(raw)
            .map_err(|e| ClientError::internal(format!("The server's identity id: {e}")))
    }

    pub async fn credentials(
        &self,
        identity: &IdentityId,
        id_token: &str,
    ) -> Result<AwsCredentials> {
        let issued_at_ms = now_ms();
        let out = self
            .identity
            .get_credentials_for_identity()
            .identity_id(identity.as_str())
            .logins(self.provider_name(), id_token)
            .send()
            .await
            .map_err(|e| sdk_error(Doing::Identity, e))?;
        let c =
            out.credentials().ok_or_else(|| ClientError::internal("No credentials returned"))?;
        let expires_at_ms = c
            .expiration()
            .and_then(|t| u64::try_from(t.to_millis().ok()?).ok())
            .unwrap_or(issued_at_ms + 15 * 60 * 1000);
        match (c.access_key_id(), c.secret_key(), c.session_token()) {
            (Some(key), Some(secret), Some(token)) => Ok(AwsCredentials {
                access_key_id: key.to_owned(),
                secret_access_key: secret.to_owned(),
                session_token: token.to_owned(),
                issued_at_ms,
                expires_at_ms,
            }),
            _ => Err(ClientError::internal("The credentials answer is incomplete.")),
        }
    }
}

/// Cognito's message while a username is locked out after wrong passwords.
const LOCKED_OUT: &str = "Password attempts exceeded";

/// Maps an SDK error to what it means for the user, keeping Cognito's own words.
fn sdk_error<E, R>(
    doing: Doing,
    error: aws_smithy_runtime_api::client::result::SdkError<E, R>,
) -> ClientError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug + Send + Sync + 'static,
{
    use aws_smithy_runtime_api::client::result::SdkError;
    match &error {
        SdkError::DispatchFailure(_) | SdkError::TimeoutError(_) => ClientError::unavailable(
            format!("Cannot reach the sign-in service: {}", error_chain(&error)),
        ),
        SdkError::ServiceError(service) => {
            let err = service.err();
            let message = err.message().unwrap_or("The sign-in service refused the request.");
            let code = match (err.code().unwrap_or_default(), doing) {
                ("UsernameExistsException", _) => Code::UsernameExists,
                ("InvalidPasswordException", _) => Code::InvalidPassword,
                ("InvalidParameterException", _) => Code::InvalidInput,
                ("TooManyRequestsException" | "LimitExceededException", _) => Code::RateLimited,
                // Cognito's lockout after repeated wrong passwords: waiting helps, retyping not.
                ("NotAuthorizedException", Doing::SignIn) if message == LOCKED_OUT => {
                    Code::RateLimited
                }
                ("NotAuthorizedException" | "UserNotFoundException", Doing::SignIn) => {
                    Code::WrongCredentials
                }
                ("NotAuthorizedException" | "UserNotFoundException", _) => Code::SessionExpired,
                ("ResourceNotFoundException", _) => Code::InvalidInput,
                _ => Code::Internal,
            };
            let message = match code {
                Code::SessionExpired => {
                    format!("Your session has ended ({message}). Please log in again.")
                }
                // Cognito's own words name no field ("User already exists"; other pools say
                // less): say which field and what to do.
                Code::UsernameExists => {
                    "This username is taken. Choose another one, or log in if it is yours."
                        .to_owned()
                }
                Code::RateLimited if message == LOCKED_OUT => "Too many wrong passwords for this \
                    account. Wait a moment and try again: the wait doubles with each wrong \
                    password, up to 15 minutes."
                    .to_owned(),
                _ => message.to_owned(),
            };
            ClientError::new(code, message)
        }
        _ => ClientError::internal(format!("The sign-in service failed: {}", error_chain(&error))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renewal_starts_a_fifth_of_the_lifetime_early_at_most_five_minutes() {
        let creds = |lifetime_ms: u64| AwsCredentials {
            access_key_id: "k".into(),
            secret_access_key: "s".into(),
            session_token: "t".into(),
            issued_at_ms: 1_000_000,
            expires_at_ms: 1_000_000 + lifetime_ms,
        };
        let hour = creds(3_600_000);
        assert!(!hour.needs_renewal(1_000_000 + 3_600_000 - 300_001));
        assert!(hour.needs_renewal(1_000_000 + 3_600_000 - 300_000));
        let short = creds(10_000);
        assert!(!short.needs_renewal(1_000_000 + 7_999));
        assert!(short.needs_renewal(1_000_000 + 8_000));
    }

    #[test]
    fn the_expiry_of_a_token_is_read_from_its_claims() {
        use base64::Engine as _;
        let claims =
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(br#"{"exp":1700000000}"#);
        let tokens =
            Tokens { id: format!("h.{claims}.s"), access: String::new(), refresh: String::new() };
        assert_eq!(tokens.id_expires_at_ms(), 1_700_000_000_000);
        let garbage =
            Tokens { id: "nonsense".into(), access: String::new(), refresh: String::new() };
        assert_eq!(garbage.id_expires_at_ms(), 0, "unreadable means refresh now");
    }
}
