//! Authentication: passwords, Cognito-shaped tokens and SigV4 signatures.

pub(crate) mod credentials;
#[cfg(fuzzing)]
pub mod fuzzing;
pub mod lockout;
pub mod password;
pub(crate) mod sigv4;
pub mod tokens;
