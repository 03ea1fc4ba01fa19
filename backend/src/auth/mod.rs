//! Authentication: passwords, Cognito-shaped tokens and SigV4 signatures.

pub(crate) mod credentials;
pub mod lockout;
pub mod password;
pub(crate) mod sigv4;
pub mod tokens;
