//! Authentication: passwords, Cognito-shaped tokens and SigV4 signatures.

pub mod password;
// pub(crate) mod sigv4; (arrives with the SigV4-signed API)
pub mod tokens;
