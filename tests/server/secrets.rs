//! Secrets stay out of the server's log and out of other users' reach on disk.

use std::time::Duration;

use rumqttc::QoS;
use serde_json::json;

use crate::mqtt::connect;
use crate::support::{
    self, PASSWORD, api, free_port, idp_client, log_in, logged_in, presigned_mqtt_url, sign_up,
    spawn_logging,
};

/// Sends a Cognito call as raw JSON, the way a client with a bug might.
async fn cognito_raw(profile: &iotchat_server::profile::Profile, target: &str, body: String) {
    let endpoint = profile.cognito_idp_endpoint.clone().expect("a local profile");
    let _ = support::plain_http()
        .post(endpoint)
        .header("content-type", "application/x-amz-json-1.1")
        .header("x-amz-target", target)
        .body(body)
        .send()
        .await
        .expect("the server answers");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_most_verbose_log_holds_no_password_token_key_or_signature() {
    let dir = tempfile::tempdir().unwrap();
    let log_path = dir.path().join("server.log");
    let log = std::fs::File::create(&log_path).unwrap();
    let (mut server, profile) =
        spawn_logging(&dir.path().join("data"), free_port(), "trace", log.into()).await;

    let idp = idp_client(&profile);
    sign_up(&idp, &profile, "alice").await;
    let tokens = log_in(&idp, &profile, "alice").await;
    let alice = logged_in(&profile, "alice").await;
    let wrong_password = "Hunter2-Not-Alices!";
    let _ = idp
        .initiate_auth()
        .client_id(&profile.user_pool_client_id)
        .auth_flow(aws_sdk_cognitoidentityprovider::types::AuthFlowType::UserPasswordAuth)
        .auth_parameters("USERNAME", "alice")
        .auth_parameters("PASSWORD", wrong_password)
        .send()
        .await
        .expect_err("a wrong password");
    // A password sent as a number: the parse error would quote it.
    let numeric_password = "4815162342";
    let target = "AWSCognitoIdentityProviderService.SignUp";
    let body = format!(
        r#"{{"ClientId":"{}","Username":"zed","Password":{numeric_password}}}"#,
        profile.user_pool_client_id
    );
    cognito_raw(&profile, target, body).await;

    let room = json!({"roomName": "Quiet", "type": "public"});
    assert_eq!(api(&profile, &alice.credentials, "POST", "/chats", Some(room)).await.0, 201);
    let url = presigned_mqtt_url(&profile, &alice.credentials);
    let signature = url.split("X-Amz-Signature=").nth(1).unwrap().split('&').next().unwrap();
    let (client, mut events) = connect(&profile, &alice, "log").await;
    let topic = format!("room/public/quiet/{}", alice.identity_id);
    client.publish(&topic, QoS::AtLeastOnce, false, r#"{"message":"hi"}"#).await.unwrap();
    let _ = tokio::time::timeout(Duration::from_secs(2), async {
        while let Ok(event) = events.poll().await {
            if matches!(event, rumqttc::Event::Incoming(rumqttc::Packet::PubAck(_))) {
                break;
            }
        }
    })
    .await;
    // A refused upgrade is logged with its reason: the reason must not quote the URL.
    let refused = url.replace("X-Amz-Signature=", "X-Amz-Signature=0").replacen("ws", "http", 1);
    let _ = support::plain_http()
        .get(refused)
        .header("connection", "upgrade")
        .header("upgrade", "websocket")
        .header("sec-websocket-version", "13")
        .header("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ==")
        .send()
        .await;
    drop(client);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let _ = server.child.kill();
    let _ = server.child.wait();

    let logged = std::fs::read_to_string(&log_path).unwrap();
    assert!(logged.contains("MQTT WebSocket upgrade refused"), "the log was written: {logged}");
    assert!(logged.contains("TRACE"), "the log is at its most verbose");
    let secret_key = alice.credentials.secret_access_key().to_owned();
    let session_token = alice.credentials.session_token().expect("a session token").to_owned();
    let secrets = [
        ("the password", PASSWORD.to_owned()),
        ("a wrong password", wrong_password.to_owned()),
        ("a password sent as a number", numeric_password.to_owned()),
        ("the ID token", tokens.id.clone()),
        ("the access token", tokens.access.clone()),
        ("the refresh token", tokens.refresh.clone()),
        ("the secret access key", secret_key),
        ("the session token", session_token),
        ("a presigned URL's signature", signature.to_owned()),
    ];
    for (what, secret) in secrets {
        // Any 24 characters of it would already say too much.
        let middle = secret.len() / 2;
        let piece = &secret[middle.saturating_sub(12)..(middle + 12).min(secret.len())];
        assert!(!logged.contains(piece), "{what} appears in the trace-level log");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_database_holds_no_password_and_no_refresh_token() {
    let dir = tempfile::tempdir().unwrap();
    let server = support::start(dir.path()).await;
    let profile = server.profile().clone();
    let idp = idp_client(&profile);
    sign_up(&idp, &profile, "alice").await;
    let tokens = log_in(&idp, &profile, "alice").await;
    server.stop().await.unwrap();
    let mut stored = Vec::new();
    for entry in std::fs::read_dir(dir.path()).unwrap() {
        let path = entry.unwrap().path();
        if path.is_file() {
            stored.extend(std::fs::read(path).unwrap());
        }
    }
    let stored = String::from_utf8_lossy(&stored);
    assert!(stored.contains("alice"), "the database (and its WAL) was read");
    assert!(!stored.contains(PASSWORD), "passwords are kept as argon2id hashes only");
    assert!(!stored.contains(&tokens.refresh), "refresh tokens are kept as SHA-256 only");
}

#[cfg(unix)]
#[tokio::test(flavor = "multi_thread")]
async fn the_data_directory_is_private_to_the_servers_user() {
    use std::os::unix::fs::PermissionsExt as _;
    let dir = tempfile::tempdir().unwrap();
    let fresh = dir.path().join("fresh");
    let server = support::start(&fresh).await;
    let mode = std::fs::metadata(&fresh).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o700, "keys and secrets are inside: {mode:o}");
    server.stop().await.unwrap();

    let shared = dir.path().join("shared");
    std::fs::create_dir(&shared).unwrap();
    std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o755)).unwrap();
    let server = support::start(&shared).await;
    let mode = std::fs::metadata(&shared).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o700, "a directory others could read is made private: {mode:o}");
    server.stop().await.unwrap();
}
