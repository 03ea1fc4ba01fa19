//! Storage behind traits: [`Store`] for what only this server keeps (the user pool, identities,
//! credentials), and `iotchat_api::ChatStore` for what the API keeps, which on AWS is DynamoDB.
//! Every method is one atomic operation; callers never hold a transaction across awaits.

mod sqlite;

use async_trait::async_trait;
use iotchat_api::ChatStore;
use iotchat_protocol::IdentityId;

pub use sqlite::SqliteStore;

/// A storage failure. `Conflict` is the only one callers branch on; the rest are reported.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{0} already exists")]
    Conflict(&'static str),
    #[error("storage failed: {0}")]
    Backend(String),
}

impl From<StoreError> for iotchat_api::StoreError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::Conflict(what) => iotchat_api::StoreError::Conflict(what),
            StoreError::Backend(message) => iotchat_api::StoreError::Backend(message),
        }
    }
}

impl From<rusqlite::Error> for StoreError {
    fn from(error: rusqlite::Error) -> Self {
        StoreError::Backend(error.to_string())
    }
}

pub type StoreResult<T> = Result<T, StoreError>;

/// A user of the pool. `sub` never changes; `username` is unique case-insensitively.
#[derive(Clone, PartialEq, Eq)]
pub struct UserRecord {
    pub sub: String,
    pub username: String,
    pub email: String,
    /// argon2 PHC string.
    pub password_hash: String,
    pub confirmed: bool,
    pub created_at_ms: u64,
}

impl std::fmt::Debug for UserRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UserRecord")
            .field("sub", &self.sub)
            .field("username", &self.username)
            .field("confirmed", &self.confirmed)
            .finish_non_exhaustive()
    }
}

/// A signed-in session: one login, its refresh token (stored as a SHA-256, never the value) and
/// every ID and access token issued from it, which carry its id as `origin_jti`.
#[derive(Clone, PartialEq, Eq)]
pub struct SessionRecord {
    pub origin_jti: String,
    pub refresh_sha256: String,
    pub sub: String,
    pub issued_at_ms: u64,
    pub expires_at_ms: u64,
    /// `auth_time` of the login that created it, carried into refreshed tokens.
    pub auth_time_s: u64,
}

impl std::fmt::Debug for SessionRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionRecord")
            .field("origin_jti", &self.origin_jti)
            .field("sub", &self.sub)
            .field("expires_at_ms", &self.expires_at_ms)
            .finish_non_exhaustive()
    }
}

/// Temporary AWS-style credentials issued to an identity.
#[derive(Clone, PartialEq, Eq)]
pub struct CredentialRecord {
    pub access_key_id: String,
    pub secret_access_key: String,
    pub session_token: String,
    pub identity_id: IdentityId,
    pub expires_at_ms: u64,
}

impl std::fmt::Debug for CredentialRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CredentialRecord")
            .field("access_key_id", &self.access_key_id)
            .field("identity_id", &self.identity_id)
            .field("expires_at_ms", &self.expires_at_ms)
            .finish_non_exhaustive()
    }
}

/// An authorization code of the hosted UI, waiting for the token endpoint. Only its SHA-256
/// is kept; it is good for one exchange, by this client, with this redirect URI (and the PKCE
/// verifier of `code_challenge`), until `expires_at_ms`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CodeRecord {
    pub code_sha256: String,
    pub client_id: String,
    pub redirect_uri: String,
    pub sub: String,
    pub scope: String,
    /// The S256 challenge, base64url.
    pub code_challenge: Option<String>,
    pub nonce: Option<String>,
    pub auth_time_s: u64,
    pub expires_at_ms: u64,
}

/// Everything the server keeps: the user pool, identities and credentials here, and what the
/// API keeps ([`ChatStore`]), which on AWS lives in DynamoDB instead.
#[async_trait]
pub trait Store: ChatStore {
    /// Creates a user; `Conflict("user")` if the username is taken (case-insensitively).
    async fn user_insert(&self, user: UserRecord) -> StoreResult<()>;
    async fn user_by_username(&self, username: &str) -> StoreResult<Option<UserRecord>>;
    async fn user_by_sub(&self, sub: &str) -> StoreResult<Option<UserRecord>>;
    /// Marks the user confirmed; false if there is no such user.
    async fn user_confirm(&self, username: &str) -> StoreResult<bool>;

    async fn session_insert(&self, session: SessionRecord) -> StoreResult<()>;
    async fn session_by_refresh(&self, refresh_sha256: &str) -> StoreResult<Option<SessionRecord>>;
    /// Whether tokens from this login are still valid (not signed out, not expired at `now_ms`).
    async fn session_active(&self, origin_jti: &str, now_ms: u64) -> StoreResult<bool>;
    /// Ends every session of the user (GlobalSignOut): their refresh, ID and access tokens die.
    async fn sessions_end(&self, sub: &str) -> StoreResult<()>;

    /// The identity of `sub`, created as `new_id` the first time (atomically).
    async fn identity_for_sub(&self, sub: &str, new_id: IdentityId) -> StoreResult<IdentityId>;
    /// The user a federated sign-in names: the one linked to `provider`'s `provider_sub`, or
    /// `new_user` (confirmed, without a password) created and linked now, atomically.
    /// `Conflict("user")` if `new_user`'s username is taken by someone else.
    async fn federated_user(
        &self,
        provider: &str,
        provider_sub: &str,
        new_user: UserRecord,
    ) -> StoreResult<UserRecord>;

    async fn oauth_code_insert(&self, code: CodeRecord) -> StoreResult<()>;
    /// The code with this hash, removed in the same step: a code is exchanged at most once.
    async fn oauth_code_take(&self, code_sha256: &str) -> StoreResult<Option<CodeRecord>>;

    /// The user `sub` an identity belongs to.
    async fn identity_owner(&self, identity: &IdentityId) -> StoreResult<Option<String>>;

    async fn credentials_insert(&self, record: CredentialRecord) -> StoreResult<()>;
    /// Forgets credentials and sessions that expired before `now_ms`; how many rows went.
    async fn expired_remove(&self, now_ms: u64) -> StoreResult<u64>;
    async fn credentials_get(&self, access_key_id: &str) -> StoreResult<Option<CredentialRecord>>;

    /// Records that the IoT policy is attached to `identity` (idempotent).
    async fn policy_attach(&self, identity: &IdentityId, at_ms: u64) -> StoreResult<()>;
    async fn policy_attached(&self, identity: &IdentityId) -> StoreResult<bool>;

    /// The secret stored under `name`, or `generate()`'s value, stored first (first writer wins).
    async fn secret_get_or_insert(
        &self,
        name: &str,
        generate: Box<dyn FnOnce() -> Vec<u8> + Send>,
    ) -> StoreResult<Vec<u8>>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_output_leaves_secrets_out() {
        let user = UserRecord {
            sub: "sub-1".into(),
            username: "alice".into(),
            email: "alice@example.com".into(),
            password_hash: "$argon2id$v=19$m=19456,t=2,p=1$SALTSALT$HASHHASH".into(),
            confirmed: true,
            created_at_ms: 1,
        };
        let credentials = CredentialRecord {
            access_key_id: "ASIAEXAMPLE".into(),
            secret_access_key: "SECRET-KEY-VALUE".into(),
            session_token: "SESSION-TOKEN-VALUE".into(),
            identity_id: IdentityId::parse("us-east-1:7f86d9a8-b9f4-439e-bcf3-9756e4d2bbdf")
                .expect("a valid identity id"),
            expires_at_ms: 2,
        };
        let session = SessionRecord {
            origin_jti: "jti".into(),
            refresh_sha256: "REFRESH-HASH-VALUE".into(),
            sub: "sub-1".into(),
            issued_at_ms: 1,
            expires_at_ms: 2,
            auth_time_s: 1,
        };
        let shown = format!("{user:?} {credentials:?} {session:?}");
        for secret in ["HASHHASH", "SECRET-KEY-VALUE", "SESSION-TOKEN-VALUE", "REFRESH-HASH"] {
            assert!(!shown.contains(secret), "{secret} leaks into Debug: {shown}");
        }
        assert!(shown.contains("alice") && shown.contains("ASIAEXAMPLE"), "the rest is shown");
    }
}
