//! The client's Cognito calls (`iotchat_client::auth`, what every sign-in in the app uses),
//! told one story against two user pools: moto's, which we did not write, and ours.

use iotchat_client::auth::{Cognito, Tokens};
use iotchat_client::protocol::Code;
use iotchat_client::{Backend, ClientError};

use crate::support::{Moto, PASSWORD, Pools};

/// A claim of a JWT's payload (the test reads what the server put there).
fn claim(token: &str, name: &str) -> serde_json::Value {
    use base64::Engine as _;
    let payload = token.split('.').nth(1).expect("a JWT has a payload");
    let bytes =
        base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload).expect("base64url");
    let claims: serde_json::Value = serde_json::from_slice(&bytes).expect("JSON claims");
    claims[name].clone()
}

fn code(result: Result<impl std::fmt::Debug, ClientError>) -> Code {
    match result {
        Ok(value) => panic!("expected an error, got {value:?}"),
        Err(error) => {
            assert!(error.message.len() > 10, "a message a person can read: {error:?}");
            error.code
        }
    }
}

/// Sign up, sign in, identity and credentials, refresh, sign out. `confirm` does what the
/// pool's PreSignUp trigger does where the pool has none.
async fn story<F, Fut>(cognito: &Cognito, confirm: F)
where
    F: Fn(String) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let name = "dana";
    cognito.sign_up(name, "dana@example.com", PASSWORD).await.expect("sign up");
    assert_eq!(
        code(cognito.sign_up(name, "other@example.com", PASSWORD).await),
        Code::UsernameExists,
        "a taken username is named as such"
    );
    confirm(name.to_owned()).await;

    assert_eq!(code(cognito.sign_in(name, "Wrong-Horse-9").await), Code::WrongCredentials);
    assert_eq!(code(cognito.sign_in("nobody", PASSWORD).await), Code::WrongCredentials);
    let tokens: Tokens = cognito.sign_in(name, PASSWORD).await.expect("sign in");
    assert_eq!(claim(tokens.id_token(), "cognito:username"), name);
    assert!(tokens.id_expires_at_ms() > iotchat_api::now_ms(), "the ID token is fresh");

    let identity = cognito.identity_id(tokens.id_token()).await.expect("GetId");
    let credentials =
        cognito.credentials(&identity, tokens.id_token()).await.expect("GetCredentialsForIdentity");
    assert!(!credentials.access_key_id.is_empty() && !credentials.session_token.is_empty());
    assert!(credentials.expires_at_ms > iotchat_api::now_ms(), "credentials not yet expired");

    let renewed = cognito.refresh(tokens.refresh_token()).await.expect("refresh");
    assert_eq!(claim(renewed.id_token(), "cognito:username"), name);
    assert_eq!(renewed.refresh_token(), tokens.refresh_token(), "the refresh token is kept");
    assert_eq!(
        code(cognito.refresh("not-a-refresh-token").await),
        Code::SessionExpired,
        "a refresh token the pool never issued ends the session"
    );

    cognito.sign_out(renewed.access_token()).await.expect("global sign-out");
    assert_eq!(
        code(cognito.refresh(tokens.refresh_token()).await),
        Code::SessionExpired,
        "after signing out everywhere the refresh token is revoked"
    );
    // Signing in again works, and gives a new refresh token.
    let again = cognito.sign_in(name, PASSWORD).await.expect("sign in again");
    assert_ne!(again.refresh_token(), tokens.refresh_token());
}

fn backend(profile: serde_json::Value) -> Backend {
    let profile =
        iotchat_client::protocol::profile::Profile::from_json(profile.to_string().as_bytes())
            .expect("a valid profile");
    Backend::new(profile).expect("backend")
}

#[tokio::test]
async fn the_client_signs_up_in_and_out_against_motos_user_pool() {
    let moto = Moto::start().await;
    let pools = Pools::create(&moto).await;
    // The profile an AWS deployment prints, pointed at moto (whose endpoints stand in for
    // Cognito's); the API and MQTT endpoints are not used by these calls.
    let cognito = Cognito::new(&backend(serde_json::json!({
        "region": crate::support::REGION,
        "userPoolId": pools.user_pool_id,
        "userPoolClientId": pools.client_id,
        "identityPoolId": pools.identity_pool_id,
        "apiUrl": "http://127.0.0.1:9/api",
        "iotEndpoint": "ws://127.0.0.1:9/mqtt",
        "cognitoIdpEndpoint": moto.endpoint(),
        "cognitoIdentityEndpoint": moto.endpoint(),
    })))
    .expect("the client's Cognito clients");
    let idp = moto.user_pools();
    let pool = pools.user_pool_id.clone();
    story(&cognito, |username| {
        let (idp, pool) = (idp.clone(), pool.clone());
        async move {
            // moto fires no PreSignUp trigger; confirm as ours does.
            idp.admin_confirm_sign_up()
                .user_pool_id(pool)
                .username(username)
                .send()
                .await
                .expect("AdminConfirmSignUp");
        }
    })
    .await;
}

#[tokio::test]
async fn the_client_signs_up_in_and_out_against_our_user_pool() {
    let dir = tempfile::tempdir().expect("temp dir");
    let config = iotchat_server::config::Config::for_data_dir(dir.path()).expect("config");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind loopback");
    let server = iotchat_server::start(&config, listener).await.expect("the server starts");
    let profile = serde_json::to_value(server.profile()).expect("profile JSON");
    let cognito = Cognito::new(&backend(profile)).expect("the client's Cognito clients");
    // Our pool confirms new users itself, as the template's PreSignUp trigger does.
    story(&cognito, |_| async {}).await;
    server.stop().await.expect("the server stops");
}
