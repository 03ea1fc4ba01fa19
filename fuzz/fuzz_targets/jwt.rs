//! The pool's JWT checks (`verify_id`, `verify_access`): any text, or a token put together from
//! any header, claims and signature, is refused with a typed error, never a panic, and never
//! accepted (the fuzzer has no signing key).
#![no_main]

use std::sync::OnceLock;

use arbitrary::Arbitrary;
use iotchat_server::auth::tokens::TokenIssuer;
use libfuzzer_sys::fuzz_target;

#[derive(Debug, Arbitrary)]
enum Token {
    Raw(String),
    Parts { header: Vec<u8>, claims: Vec<u8>, signature: Vec<u8> },
}

fn issuer() -> &'static TokenIssuer {
    static ISSUER: OnceLock<TokenIssuer> = OnceLock::new();
    ISSUER.get_or_init(|| {
        let dir = tempfile::tempdir().expect("a temp dir").keep();
        let store = iotchat_server::storage::SqliteStore::open(&dir).expect("a store");
        let runtime = tokio::runtime::Builder::new_current_thread().build().expect("a runtime");
        runtime
            .block_on(TokenIssuer::load(
                &store,
                "https://cognito-idp.us-east-1.amazonaws.com/us-east-1_fuzz".into(),
                "fuzzclient".into(),
            ))
            .expect("the signing keys")
    })
}

fn b64(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    // base64url without padding, by hand: the fuzz crate needs no base64 dependency for it.
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk.iter().enumerate().fold(0u32, |n, (i, b)| n | u32::from(*b) << (16 - 8 * i));
        for i in 0..=chunk.len() {
            let _ = out.write_char(char::from(ALPHABET[(n >> (18 - 6 * i) & 63) as usize]));
        }
    }
    out
}

fuzz_target!(|token: Token| {
    let token = match token {
        Token::Raw(text) => text,
        Token::Parts { header, claims, signature } => {
            format!("{}.{}.{}", b64(&header), b64(&claims), b64(&signature))
        }
    };
    let issuer = issuer();
    assert!(issuer.verify_id(&token).is_err(), "an ID token nobody signed was accepted");
    assert!(issuer.verify_access(&token).is_err(), "an access token nobody signed was accepted");
});
