//! The credentials a SigV4 signature names must be ones this server issued, presented with
//! their own session token, not expired, and the signature must be made with their secret. One
//! check for the API and for `/mqtt`; each caller words the refusal its own way.

use subtle::ConstantTimeEq as _;

use super::sigv4::{self, Claimed, RequestParts, SigV4Error};
use crate::storage::{CredentialRecord, Store, StoreError};

/// Why a signed request's credentials were not accepted.
#[derive(Debug, thiserror::Error)]
pub(crate) enum Unaccepted {
    #[error("the access key is not one this server issued")]
    UnknownKey,
    #[error("the session token does not belong to this access key")]
    ForeignToken,
    #[error("the credentials have expired")]
    Expired,
    #[error("the signature does not match: {0}")]
    Signature(SigV4Error),
    #[error("storage failed: {0}")]
    Storage(StoreError),
}

/// The credentials that signed `request` (already parsed into `claimed`), checked as of
/// `now_ms`.
pub(crate) async fn signed_by(
    store: &dyn Store,
    request: &RequestParts<'_>,
    claimed: &Claimed,
    now_ms: u64,
) -> Result<CredentialRecord, Unaccepted> {
    let credentials = store
        .credentials_get(&claimed.access_key_id)
        .await
        .map_err(Unaccepted::Storage)?
        .ok_or(Unaccepted::UnknownKey)?;
    // Compared in constant time: the token is a bearer secret.
    let token_matches = claimed.session_token.as_deref().is_some_and(|token| {
        bool::from(token.as_bytes().ct_eq(credentials.session_token.as_bytes()))
    });
    if !token_matches {
        return Err(Unaccepted::ForeignToken);
    }
    if credentials.expires_at_ms <= now_ms {
        return Err(Unaccepted::Expired);
    }
    sigv4::verify(request, claimed, &credentials.secret_access_key)
        .map_err(Unaccepted::Signature)?;
    Ok(credentials)
}
