//! The one error shape every boundary uses: `{"code": "...", "message": "..."}`.
//!
//! `Code` is closed so the UI matches on it instead of on message text. The server, the client
//! core and the desktop shell all produce it; `message` is written for a person to read.

use std::fmt;

use serde::{Deserialize, Serialize};

/// What went wrong, in a form code can act on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Code {
    /// The request or an input field is invalid; the message says which and why.
    InvalidInput,
    /// No valid credentials or signature.
    Unauthenticated,
    /// Signed in, but not allowed to do this.
    Forbidden,
    NotFound,
    /// A room with that name (slug) already exists.
    RoomExists,
    /// The username is taken.
    UsernameExists,
    /// The password does not meet the policy.
    InvalidPassword,
    /// Wrong username or password.
    WrongCredentials,
    /// The session can no longer be refreshed; sign in again.
    SessionExpired,
    PayloadTooLarge,
    RateLimited,
    /// The server (or the network to it) cannot be reached.
    Unavailable,
    /// No OS keychain to keep the session in; it lives in memory only.
    KeychainUnavailable,
    /// The server or app failed; the message carries what is known.
    Internal,
    /// The person stopped what they had started (a sign-in in the browser); nothing to show.
    Cancelled,
    /// A code from a newer peer that this build does not know.
    #[serde(other)]
    Unknown,
}

impl Code {
    /// The HTTP status this code travels with.
    pub fn http_status(self) -> u16 {
        match self {
            Code::InvalidInput | Code::InvalidPassword => 400,
            Code::WrongCredentials | Code::SessionExpired => 401,
            // API Gateway's IAM authorizer refuses a missing or bad signature with 403, never
            // 401; the AWS SDKs and the seed's client expect that.
            Code::Unauthenticated | Code::Forbidden => 403,
            Code::NotFound => 404,
            Code::RoomExists | Code::UsernameExists => 409,
            Code::PayloadTooLarge => 413,
            Code::RateLimited => 429,
            Code::Unavailable | Code::KeychainUnavailable => 503,
            Code::Internal | Code::Unknown => 500,
            // Never sent by a server; nginx's "client closed request" is the nearest.
            Code::Cancelled => 499,
        }
    }

    /// The wire name, as serialized.
    pub fn as_str(self) -> &'static str {
        match self {
            Code::InvalidInput => "invalid_input",
            Code::Unauthenticated => "unauthenticated",
            Code::Forbidden => "forbidden",
            Code::NotFound => "not_found",
            Code::RoomExists => "room_exists",
            Code::UsernameExists => "username_exists",
            Code::InvalidPassword => "invalid_password",
            Code::WrongCredentials => "wrong_credentials",
            Code::SessionExpired => "session_expired",
            Code::PayloadTooLarge => "payload_too_large",
            Code::RateLimited => "rate_limited",
            Code::Unavailable => "unavailable",
            Code::KeychainUnavailable => "keychain_unavailable",
            Code::Internal => "internal",
            Code::Cancelled => "cancelled",
            Code::Unknown => "unknown",
        }
    }
}

impl fmt::Display for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The error body on every boundary: HTTP responses, Tauri command errors, CLI `--json` output.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("{message}")]
pub struct ErrorBody {
    pub code: Code,
    pub message: String,
}

impl ErrorBody {
    pub fn new(code: Code, message: impl Into<String>) -> Self {
        Self { code, message: message.into() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL: [Code; 16] = [
        Code::InvalidInput,
        Code::Unauthenticated,
        Code::Forbidden,
        Code::NotFound,
        Code::RoomExists,
        Code::UsernameExists,
        Code::InvalidPassword,
        Code::WrongCredentials,
        Code::SessionExpired,
        Code::PayloadTooLarge,
        Code::RateLimited,
        Code::Unavailable,
        Code::KeychainUnavailable,
        Code::Internal,
        Code::Cancelled,
        Code::Unknown,
    ];

    #[test]
    fn serializes_as_code_and_message() {
        let body = ErrorBody::new(Code::RoomExists, "A room named “General” already exists.");
        let json = serde_json::to_value(&body).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"code": "room_exists", "message": "A room named “General” already exists."})
        );
        assert_eq!(serde_json::from_value::<ErrorBody>(json).unwrap(), body);
        assert_eq!(body.to_string(), body.message);
    }

    #[test]
    fn wire_names_match_serde_for_every_code() {
        for code in ALL {
            let json = serde_json::to_string(&code).unwrap();
            assert_eq!(json, format!("\"{}\"", code.as_str()), "{code:?}");
            assert_eq!(serde_json::from_str::<Code>(&json).unwrap(), code);
        }
    }

    #[test]
    fn statuses_are_errors_and_specific() {
        for code in ALL {
            assert!((400..600).contains(&code.http_status()), "{code:?}");
        }
        assert_eq!(Code::RoomExists.http_status(), 409);
        assert_eq!(Code::Unauthenticated.http_status(), 403, "as API Gateway answers");
        assert_eq!(Code::PayloadTooLarge.http_status(), 413);
    }

    #[test]
    fn unknown_codes_from_newer_peers_still_parse() {
        let body: ErrorBody =
            serde_json::from_str(r#"{"code":"quota_exceeded","message":"Too many rooms."}"#)
                .unwrap();
        assert_eq!(body.code, Code::Unknown);
        assert_eq!(body.message, "Too many rooms.");
        assert!(serde_json::from_str::<ErrorBody>(r#"{"code":"internal"}"#).is_err());
    }
}
