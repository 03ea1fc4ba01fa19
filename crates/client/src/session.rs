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
        let tokens = session.keys.lock().await.tokens.clone();
        session.save_tokens(&tokens).await?;
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
        let names: Vec<String> = TOKEN_NAMES
            .iter()
            .map(|token| secret_name(user_pool_id, &account.username, token))
            .collect();
        let read = blocking(Arc::clone(&secrets), move |secrets| {
            names
                .iter()
                .map(|name| Ok(secrets.get(name)?.and_then(|b| String::from_utf8(b).ok())))
                .collect::<Result<Vec<Option<String>>>>()
        })
        .await?;
        let [id, access, refresh]: [Option<String>; 3] = read
            .try_into()
            .map_err(|_| ClientError::internal("reading the tokens returned the wrong count"))?;
        let Some(refresh) = refresh else { return Ok(None) };
        let tokens =
            Tokens { id: id.unwrap_or_default(), access: access.unwrap_or_default(), refresh };
        let session = Self {
            account,
            cognito,
            secrets,
            user_pool_id: user_pool_id.to_owned(),
            keys: Mutex::new(Keys { tokens, credentials: None }),
        };
        Ok(Some(session))
    }

    async fn save_tokens(&self, tokens: &Tokens) -> Result<()> {
        let name = |token| secret_name(&self.user_pool_id, &self.account.username, token);
        let entries = [
            (name("id"), tokens.id.clone()),
            (name("access"), tokens.access.clone()),
            (name("refresh"), tokens.refresh.clone()),
        ];
        blocking(Arc::clone(&self.secrets), move |secrets| {
            entries.iter().try_for_each(|(name, value)| secrets.set(name, value.as_bytes()))
        })
        .await
    }

    /// Removes every token of this user from the secret store.
    pub(crate) async fn forget(&self) -> Result<()> {
        let (pool, username) = (self.user_pool_id.clone(), self.account.username.clone());
        blocking(Arc::clone(&self.secrets), move |secrets| forget_tokens(secrets, &pool, &username))
            .await
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
            self.save_tokens(&keys.tokens).await?;
        }
        let credentials =
            match self.cognito.credentials(&self.account.identity_id, &keys.tokens.id).await {
                Err(e) if e.code == Code::SessionExpired && !force_tokens => {
                    // The ID token was refused early (revoked, or clocks disagree): refresh once.
                    keys.tokens = self.cognito.refresh(&keys.tokens.refresh).await?;
                    self.save_tokens(&keys.tokens).await?;
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
        self.forget().await?;
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

/// Runs a secret-store call on the calling thread. Not on the blocking pool, although it
/// blocks briefly: the kernel keyring lets only a key's possessor read it, and keys written
/// from one pool thread were unreadable from another (seen in CI). zbus (the Secret Service)
/// blocks with its own executor here, which is safe inside tokio as long as zbus's `tokio`
/// feature stays off (checked: nothing in the workspace enables it).
pub(crate) async fn blocking<T: Send + 'static>(
    secrets: Arc<dyn SecretStore>,
    call: impl FnOnce(&dyn SecretStore) -> Result<T> + Send + 'static,
) -> Result<T> {
    call(secrets.as_ref())
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
