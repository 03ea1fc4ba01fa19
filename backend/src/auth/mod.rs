//! Authentication: passwords, Cognito-shaped tokens and SigV4 signatures.

pub mod lockout;
pub mod password;
pub(crate) mod sigv4;
pub mod tokens;
