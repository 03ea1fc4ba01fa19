//! The client's one error type: a [`Code`] the UI can act on and a message for a person.

use std::fmt;

use iotchat_protocol::{Code, ErrorBody};

/// An error from the client core. `code` is what callers match on; `message` is for people.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientError {
    pub code: Code,
    pub message: String,
}

pub type Result<T, E = ClientError> = std::result::Result<T, E>;

impl ClientError {
    pub fn new(code: Code, message: impl Into<String>) -> Self {
        Self { code, message: message.into() }
    }

    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(Code::InvalidInput, message)
    }

    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(Code::Internal, message)
    }

    pub fn unavailable(message: impl Into<String>) -> Self {
        Self::new(Code::Unavailable, message)
    }

    pub fn not_signed_in() -> Self {
        Self::new(Code::Unauthenticated, "You are not signed in. Log in first.")
    }

    /// The wire shape, for the desktop shell and `--json` output.
    pub fn body(&self) -> ErrorBody {
        ErrorBody::new(self.code, self.message.clone())
    }
}

impl fmt::Display for ClientError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for ClientError {}

impl From<ErrorBody> for ClientError {
    fn from(body: ErrorBody) -> Self {
        Self { code: body.code, message: body.message }
    }
}

impl From<rusqlite::Error> for ClientError {
    fn from(error: rusqlite::Error) -> Self {
        Self::internal(format!("the local database failed: {error}"))
    }
}
