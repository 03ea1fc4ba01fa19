//! The Cognito subset through the AWS SDK for Rust: the happy path, the typed errors the SDK
//! must map, token revocation, and persistence across a restart.

use std::time::{Duration, SystemTime};

use aws_sdk_cognitoidentityprovider::error::ProvideErrorMetadata as _;
use aws_sdk_cognitoidentityprovider::types::{AttributeType, AuthFlowType};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use iotchat_protocol::IdentityId;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

use crate::support::{
    self, PASSWORD, get_id, identity_client, idp_client, log_in, logins, sign_up,
};

#[tokio::test(flavor = "multi_thread")]
async fn sign_up_log_in_refresh_and_get_credentials_with_the_aws_sdk() {
    let dir = tempfile::tempdir().unwrap();
    let server = support::start(dir.path()).await;
    let profile = server.profile().clone();
    let idp = idp_client(&profile);
    let identity = identity_client(&profile);

    sign_up(&idp, &profile, "alice").await;
    let tokens = log_in(&idp, &profile, "alice").await;

    let user = idp.get_user().access_token(&tokens.access).send().await.unwrap();
    assert_eq!(user.username(), "alice");
    let email = user.user_attributes().iter().find(|a| a.name() == "email").unwrap();
    assert_eq!(email.value(), Some("alice@example.com"));

    let refreshed = idp
        .initiate_auth()
        .client_id(&profile.user_pool_client_id)
        .auth_flow(AuthFlowType::RefreshTokenAuth)
        .auth_parameters("REFRESH_TOKEN", &tokens.refresh)
        .send()
        .await
        .unwrap();
    let refreshed = refreshed.authentication_result().unwrap();
    assert!(refreshed.refresh_token().is_none(), "Cognito does not rotate refresh tokens");
    let new_id_token = refreshed.id_token().unwrap();
    assert_eq!(refreshed.expires_in(), 3600);

    let first = get_id(&identity, &profile, &tokens.id).await;
    let again = get_id(&identity, &profile, new_id_token).await;
    assert_eq!(first, again, "the same user gets the same identity id every time");
    let id = IdentityId::parse(&first).expect("a Cognito-shaped identity id");
    assert!(id.as_str().starts_with("us-east-1:"), "{id}");

    let (provider, token) = logins(&profile, &tokens.id);
    let out = identity
        .get_credentials_for_identity()
        .identity_id(&first)
        .logins(provider, token)
        .send()
        .await
        .unwrap();
    assert_eq!(out.identity_id(), Some(first.as_str()));
    let creds = out.credentials().unwrap();
    assert!(creds.access_key_id().unwrap().starts_with("ASIA"));
    assert_eq!(creds.secret_key().unwrap().len(), 40);
    assert!(creds.session_token().unwrap().len() > 100);
    let expires = SystemTime::try_from(*creds.expiration().unwrap()).unwrap();
    let in_an_hour = SystemTime::now() + Duration::from_secs(3600);
    let drift = in_an_hour.duration_since(expires).unwrap_or_else(|e| e.duration());
    assert!(drift < Duration::from_secs(30), "credentials last the configured hour");

    server.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn the_sdk_gets_cognitos_typed_errors() {
    let dir = tempfile::tempdir().unwrap();
    let server = support::start(dir.path()).await;
    let profile = server.profile().clone();
    let idp = idp_client(&profile);

    sign_up(&idp, &profile, "bob").await;
    let email = AttributeType::builder().name("email").value("b@example.com").build().unwrap();
    let sign_up = |username: &str, password: &str| {
        idp.sign_up()
            .client_id(&profile.user_pool_client_id)
            .username(username)
            .password(password)
            .user_attributes(email.clone())
            .send()
    };

    let taken = sign_up("BOB", PASSWORD).await.unwrap_err().into_service_error();
    assert!(taken.is_username_exists_exception(), "usernames are case-insensitive: {taken:?}");

    let weak = sign_up("carol", "password").await.unwrap_err().into_service_error();
    assert!(weak.is_invalid_password_exception(), "{weak:?}");
    assert_eq!(
        weak.message(),
        Some("Password did not conform with policy: Password must have uppercase characters")
    );

    let spaced = sign_up("carol smith", PASSWORD).await.unwrap_err().into_service_error();
    assert!(spaced.is_invalid_parameter_exception(), "{spaced:?}");

    let no_email = idp
        .sign_up()
        .client_id(&profile.user_pool_client_id)
        .username("dave")
        .password(PASSWORD)
        .send()
        .await
        .unwrap_err()
        .into_service_error();
    assert!(no_email.is_invalid_parameter_exception(), "email is required: {no_email:?}");

    let wrong_client = idp
        .sign_up()
        .client_id("nosuchclient")
        .username("erin")
        .password(PASSWORD)
        .user_attributes(email.clone())
        .send()
        .await
        .unwrap_err()
        .into_service_error();
    assert!(wrong_client.is_resource_not_found_exception(), "{wrong_client:?}");

    for (username, password) in [("bob", "Wrong-Password-1"), ("nobody", PASSWORD)] {
        let err = support::initiate(&profile, username, password).await.unwrap_err();
        assert!(err.is_not_authorized_exception(), "{username}: {err:?}");
        assert_eq!(err.message(), Some("Incorrect username or password."), "no user enumeration");
    }

    let confirm = idp
        .confirm_sign_up()
        .client_id(&profile.user_pool_client_id)
        .username("bob")
        .confirmation_code("123456")
        .send()
        .await
        .unwrap_err()
        .into_service_error();
    assert!(confirm.is_not_authorized_exception(), "already confirmed: {confirm:?}");

    server.stop().await.unwrap();
}

/// Replaces a token's payload with `edit(payload)`, keeping header and signature.
fn tamper(token: &str, edit: impl FnOnce(serde_json::Value) -> serde_json::Value) -> String {
    let mut parts: Vec<String> = token.split('.').map(str::to_owned).collect();
    let payload: serde_json::Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(&parts[1]).expect("base64url payload"))
            .expect("JSON payload");
    parts[1] = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&edit(payload)).expect("JSON"));
    parts.join(".")
}

#[tokio::test(flavor = "multi_thread")]
async fn forged_unsigned_and_expired_login_tokens_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let server = support::start(dir.path()).await;
    let profile = server.profile().clone();
    let idp = idp_client(&profile);
    let identity = identity_client(&profile);
    sign_up(&idp, &profile, "mallory").await;
    sign_up(&idp, &profile, "victim").await;
    let tokens = log_in(&idp, &profile, "mallory").await;
    let victim = log_in(&idp, &profile, "victim").await;
    let victim_sub = {
        let payload = victim.id.split('.').nth(1).unwrap();
        let claims: serde_json::Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap();
        claims["sub"].as_str().unwrap().to_owned()
    };

    let forged = tamper(&tokens.id, |mut claims| {
        claims["sub"] = victim_sub.clone().into();
        claims
    });
    let alg_none = {
        let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT"}"#);
        let payload = tokens.id.split('.').nth(1).unwrap();
        format!("{header}.{payload}.")
    };
    let access_as_id = tokens.access.clone();

    for (what, token) in
        [("forged", forged), ("alg none", alg_none), ("access token", access_as_id)]
    {
        let (provider, token) = logins(&profile, &token);
        let err = identity
            .get_id()
            .identity_pool_id(&profile.identity_pool_id)
            .logins(provider, token)
            .send()
            .await
            .unwrap_err()
            .into_service_error();
        assert!(err.is_not_authorized_exception(), "{what}: {err:?}");
    }

    // An ID token validly signed by the server's own key, but expired two hours ago.
    let store = iotchat_server::storage::SqliteStore::open(dir.path()).unwrap();
    let issuer = iotchat_server::auth::tokens::TokenIssuer::load(
        &store,
        format!("https://{}", logins(&profile, "").0),
        profile.user_pool_client_id.clone(),
    )
    .await
    .unwrap();
    let claims: serde_json::Value = serde_json::from_slice(
        &URL_SAFE_NO_PAD.decode(tokens.id.split('.').nth(1).unwrap()).unwrap(),
    )
    .unwrap();
    let user =
        iotchat_server::storage::Store::user_by_username(&store, "mallory").await.unwrap().unwrap();
    let now = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).unwrap().as_secs();
    let old = issuer
        .issue(&user, claims["origin_jti"].as_str().unwrap(), now - 7200, now - 7200)
        .unwrap();
    let (provider, token) = logins(&profile, &old.id_token);
    let err = identity
        .get_id()
        .identity_pool_id(&profile.identity_pool_id)
        .logins(provider, token)
        .send()
        .await
        .unwrap_err()
        .into_service_error();
    assert!(err.is_not_authorized_exception(), "expired: {err:?}");
    assert!(err.message().unwrap_or_default().contains("expired"), "{err:?}");
    let err = idp.get_user().access_token(&old.access_token).send().await.unwrap_err();
    assert_eq!(err.into_service_error().message(), Some("Access Token has expired"));

    server.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn global_sign_out_revokes_every_token_of_the_user() {
    let dir = tempfile::tempdir().unwrap();
    let server = support::start(dir.path()).await;
    let profile = server.profile().clone();
    let idp = idp_client(&profile);
    let identity = identity_client(&profile);
    sign_up(&idp, &profile, "frank").await;
    let tokens = log_in(&idp, &profile, "frank").await;
    let other_device = log_in(&idp, &profile, "frank").await;

    idp.global_sign_out().access_token(&tokens.access).send().await.unwrap();

    for access in [&tokens.access, &other_device.access] {
        let err = idp.get_user().access_token(access).send().await.unwrap_err();
        assert_eq!(err.into_service_error().message(), Some("Access Token has been revoked"));
    }
    let err = idp
        .initiate_auth()
        .client_id(&profile.user_pool_client_id)
        .auth_flow(AuthFlowType::RefreshTokenAuth)
        .auth_parameters("REFRESH_TOKEN", &tokens.refresh)
        .send()
        .await
        .unwrap_err()
        .into_service_error();
    assert!(err.is_not_authorized_exception(), "{err:?}");
    let (provider, token) = logins(&profile, &other_device.id);
    let err = identity
        .get_id()
        .identity_pool_id(&profile.identity_pool_id)
        .logins(provider, token)
        .send()
        .await
        .unwrap_err()
        .into_service_error();
    assert!(err.is_not_authorized_exception(), "revoked ID tokens cannot get an identity");

    let again = log_in(&idp, &profile, "frank").await;
    idp.get_user().access_token(&again.access).send().await.expect("a new sign-in works");
    server.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn users_identities_and_tokens_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let server = support::start(dir.path()).await;
    let profile = server.profile().clone();
    let idp = idp_client(&profile);
    sign_up(&idp, &profile, "grace").await;
    let tokens = log_in(&idp, &profile, "grace").await;
    let id = get_id(&identity_client(&profile), &profile, &tokens.id).await;
    server.stop().await.unwrap();

    let server = support::start(dir.path()).await;
    let after = server.profile().clone();
    assert_eq!(after.user_pool_id, profile.user_pool_id, "the pool keeps its ids");
    assert_eq!(after.user_pool_client_id, profile.user_pool_client_id);
    assert_eq!(after.identity_pool_id, profile.identity_pool_id);
    let idp = idp_client(&after);
    idp.get_user().access_token(&tokens.access).send().await.expect("signing keys persist");
    let relogin = log_in(&idp, &after, "grace").await;
    assert_eq!(get_id(&identity_client(&after), &after, &relogin.id).await, id);
    server.stop().await.unwrap();
}

async fn raw_post(addr: std::net::SocketAddr, target: &str, body: &[u8]) -> (u16, String) {
    let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let head = format!(
        "POST / HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/x-amz-json-1.1\r\n\
         X-Amz-Target: {target}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await.expect("send head");
    // The server may answer (413) and close before an oversize body is fully sent: what it
    // answered is what counts, so write and read errors after the head are not failures.
    let _ = stream.write_all(body).await;
    let mut response = Vec::new();
    let _ = stream.read_to_end(&mut response).await;
    let text = String::from_utf8_lossy(&response).into_owned();
    let status = text.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    (status, text)
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_input_gets_clear_errors_and_the_server_keeps_serving() {
    let dir = tempfile::tempdir().unwrap();
    let server = support::start(dir.path()).await;
    let addr = server.addr();
    let sign_up_target = "AWSCognitoIdentityProviderService.SignUp";

    let (status, text) = raw_post(addr, sign_up_target, b"{\"ClientId\": ").await;
    assert_eq!(status, 400, "{text}");
    assert!(text.contains("SerializationException"), "{text}");

    let (status, text) =
        raw_post(addr, "AWSCognitoIdentityProviderService.AdminDeleteUser", b"{}").await;
    assert_eq!(status, 400, "{text}");
    assert!(text.contains("UnknownOperationException"), "{text}");

    let (status, text) = raw_post(addr, "", b"{}").await;
    assert_eq!(status, 400, "{text}");

    let huge = vec![b'x'; 2 * 1024 * 1024];
    let (status, _) = raw_post(addr, sign_up_target, &huge).await;
    assert_eq!(status, 413, "oversize bodies are refused");

    let profile = server.profile().clone();
    let idp = idp_client(&profile);
    let sqlish = "robert');DROP_TABLE_users;--";
    sign_up(&idp, &profile, sqlish).await;
    sign_up(&idp, &profile, "<script>alert(1)</script>").await;
    let user =
        idp.get_user().access_token(&log_in(&idp, &profile, sqlish).await.access).send().await;
    assert_eq!(user.unwrap().username(), sqlish, "names are data, never SQL");

    server.stop().await.unwrap();
}
