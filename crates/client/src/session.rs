//! A signed-in session: the user's tokens (kept in the secret store, one entry per token) and
//! the identity's temporary AWS credentials, renewed before they expire.

use std::sync::Arc;

use iotchat_protocol::Code;
pub use iotchat_protocol::chat::Account;
use tokio::sync::Mutex;

use crate::auth::{AwsCredentials, Cognito, Tokens, now_ms};
use crate::error::{ClientError, Result};
use crate::secrets::SecretStore;

const TOKEN_NAMES: [&str; 3] = ["id", "access", "refresh"];

/// The names of one user's token entries in the secret store.
pub(crate) fn secret_name(user_pool_id: &str, username: &str, token: &str) -> String {
    format!("{user_pool_id}/{username}/{token}")
}

#[derive(Debug)]
struct Keys {
    tokens: Tokens,
    credentials: Option<AwsCredentials>,
}

/// A live session.
#[derive(Debug)]
pub(crate) struct Session {
    pub(crate) account: Account,
    cognito: Cognito,
    secrets: Arc<dyn SecretStore>,
    user_pool_id: String,
    keys: Mutex<Keys>,
}

impl Session {
    /// Starts a session from a fresh sign-in: finds the identity, keeps the tokens.
    pub(crate) async fn begin(
        cognito: Cognito,
        secrets: Arc<dyn SecretStore>,
        user_pool_id: &str,
        username: &str,
        tokens: Tokens,
    ) -> Result<Self> {
        let identity_id = cognito.identity_id(&tokens.id).await?;
        let session = Self {
            account: Account { username: username.to_owned(), identity_id },
            cognito,
            secrets,
            user_pool_id: user_pool_id.to_owned(),
            keys: Mutex::new(Keys { tokens, credentials: None }),
        };
        session.save_tokens(&session.keys.lock().await.tokens)?;
        Ok(session)
    }

    /// Resumes the session of `account` from the secret store; `None` when no refresh token is
    /// kept there (never signed in on this machine, signed out, or rebooted with a kernel
    /// keyring).
    pub(crate) async fn resume(
        cognito: Cognito,
        secrets: Arc<dyn SecretStore>,
        user_pool_id: &str,
        account: Account,
    ) -> Result<Option<Self>> {
        let read = |token: &str| -> Result<Option<String>> {
            let name = secret_name(user_pool_id, &account.username, token);
            Ok(secrets.get(&name)?.and_then(|bytes| String::from_utf8(bytes).ok()))
        };
        let Some(refresh) = read("refresh")? else { return Ok(None) };
        let tokens = Tokens {
            id: read("id")?.unwrap_or_default(),
            access: read("access")?.unwrap_or_default(),
            refresh,
        };
        let session = Self {
            account,
            cognito,
            secrets,
            user_pool_id: user_pool_id.to_owned(),
            keys: Mutex::new(Keys { tokens, credentials: None }),
        };
        Ok(Some(session))
    }

    fn save_tokens(&self, tokens: &Tokens) -> Result<()> {
        let name = |token| secret_name(&self.user_pool_id, &self.account.username, token);
        self.secrets.set(&name("id"), tokens.id.as_bytes())?;
        self.secrets.set(&name("access"), tokens.access.as_bytes())?;
        self.secrets.set(&name("refresh"), tokens.refresh.as_bytes())
    }

    /// Removes every token of this user from the secret store.
    pub(crate) fn forget(&self) -> Result<()> {
        forget_tokens(self.secrets.as_ref(), &self.user_pool_id, &self.account.username)
    }

    /// Credentials good for a while yet, renewing the tokens and credentials as needed.
    pub(crate) async fn credentials(&self) -> Result<AwsCredentials> {
        let mut keys = self.keys.lock().await;
        if let Some(credentials) = &keys.credentials
            && !credentials.needs_renewal(now_ms())
        {
            return Ok(credentials.clone());
        }
        self.renew(&mut keys, false).await
    }

    /// New credentials now, after the server refused the current ones.
    pub(crate) async fn credentials_renewed(&self) -> Result<AwsCredentials> {
        let mut keys = self.keys.lock().await;
        self.renew(&mut keys, true).await
    }

    async fn renew(&self, keys: &mut Keys, force_tokens: bool) -> Result<AwsCredentials> {
        // The ID token must outlive the credentials call by a margin.
        let id_expiring = keys.tokens.id_expires_at_ms() <= now_ms() + 60_000;
        if force_tokens || id_expiring {
            keys.tokens = self.cognito.refresh(&keys.tokens.refresh).await?;
            self.save_tokens(&keys.tokens)?;
        }
        let credentials =
            match self.cognito.credentials(&self.account.identity_id, &keys.tokens.id).await {
                Err(e) if e.code == Code::SessionExpired && !force_tokens => {
                    // The ID token was refused early (revoked, or clocks disagree): refresh once.
                    keys.tokens = self.cognito.refresh(&keys.tokens.refresh).await?;
                    self.save_tokens(&keys.tokens)?;
                    self.cognito.credentials(&self.account.identity_id, &keys.tokens.id).await?
                }
                other => other?,
            };
        keys.credentials = Some(credentials.clone());
        Ok(credentials)
    }

    /// Signs out everywhere (revoking every token at the server), then forgets the tokens
    /// locally. The local part happens even when the server cannot be reached; the error then
    /// says the server side did not happen.
    pub(crate) async fn sign_out(&self) -> Result<()> {
        let access = self.keys.lock().await.tokens.access.clone();
        let remote = self.cognito.sign_out(&access).await;
        self.forget()?;
        match remote {
            Ok(()) => Ok(()),
            // Already revoked or expired: nothing left to revoke.
            Err(e) if e.code == Code::SessionExpired => Ok(()),
            Err(e) => Err(ClientError::new(
                e.code,
                format!(
                    "You are logged out on this computer, but the server could not be told \
                     ({}); your tokens expire within the hour.",
                    e.message
                ),
            )),
        }
    }
}

/// Removes a user's tokens from `secrets`.
pub(crate) fn forget_tokens(
    secrets: &dyn SecretStore,
    user_pool_id: &str,
    username: &str,
) -> Result<()> {
    for token in TOKEN_NAMES {
        secrets.delete(&secret_name(user_pool_id, username, token))?;
    }
    Ok(())
}
