//! Peers we did not write: boto3 for Cognito, paho-mqtt for the broker. They run from the
//! Python that `cargo xtask test` prepares (`IOTCHAT_PEERS_PYTHON`).

use std::process::Command;

use serde_json::json;

use crate::support::{self, api, presigned_mqtt_url, signed_in};

fn python() -> std::path::PathBuf {
    iotchat_tests::peers_python().expect("the peers' Python")
}

/// Runs a peer script with `args` and returns the JSON it prints.
async fn run_peer(script: &str, args: Vec<String>) -> serde_json::Value {
    let path = iotchat_tests::workspace_root().join("tests").join("peers").join(script);
    let output =
        tokio::task::spawn_blocking(move || Command::new(python()).arg(path).args(args).output())
            .await
            .expect("the peer task runs")
            .expect("python starts (cargo xtask test installs the peers)");
    assert!(
        output.status.success(),
        "{script} failed: {}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("the peer prints JSON")
}

#[tokio::test(flavor = "multi_thread")]
async fn boto3_signs_up_logs_in_and_gets_credentials() {
    let dir = tempfile::tempdir().unwrap();
    let server = support::start(dir.path()).await;
    let profile = serde_json::to_string(server.profile()).unwrap();
    let out =
        run_peer("boto3_cognito.py", vec![profile, "heidi".into(), support::PASSWORD.into()]).await;

    assert_eq!(out["userConfirmed"], true);
    assert_eq!(out["username"], "heidi");
    assert_eq!(out["refreshHasNoRefreshToken"], true);
    assert!(out["identityId"].as_str().unwrap().starts_with("us-east-1:"), "{out}");
    assert!(out["accessKeyId"].as_str().unwrap().starts_with("ASIA"), "{out}");
    assert_eq!(out["expirationIsDatetime"], true, "botocore parsed Expiration as a timestamp");
    let errors = &out["errors"];
    assert_eq!(errors["taken"], "UsernameExistsException", "{out}");
    assert_eq!(errors["weak"], "Password did not conform with policy: Password not long enough");
    assert_eq!(errors["wrongPassword"], "Incorrect username or password.");
    assert_eq!(errors["afterSignOut"], "Access Token has been revoked");
    server.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn paho_chats_through_a_presigned_url() {
    let dir = tempfile::tempdir().unwrap();
    let server = support::start(dir.path()).await;
    let profile = server.profile().clone();
    let ivan = signed_in(&profile, "ivan").await;
    api(&profile, &ivan.credentials, "POST", "/policy/attach", None).await;
    api(
        &profile,
        &ivan.credentials,
        "POST",
        "/chats",
        Some(json!({"roomName": "General", "type": "public"})),
    )
    .await;

    let url = presigned_mqtt_url(&profile, &ivan.credentials);
    let topic = format!("room/public/general/{}", ivan.identity_id);
    let payload = json!({"message": "hello from paho", "id": "paho-1", "sentAt": 1}).to_string();
    let out = run_peer(
        "paho_chat.py",
        vec![
            url,
            format!("{}-paho", ivan.identity_id),
            "room/public/general/+".into(),
            topic.clone(),
            payload.clone(),
        ],
    )
    .await;

    assert_eq!(out["connect"], "Success", "{out}");
    assert_eq!(out["suback"], json!([1]), "granted QoS 1: {out}");
    assert_eq!(out["puback"], true, "{out}");
    assert_eq!(out["received"], json!([{"topic": topic, "payload": payload}]), "{out}");
    let (_, page) =
        api(&profile, &ivan.credentials, "GET", "/chats/messages?room=general", None).await;
    assert_eq!(page["messages"][0]["id"], "paho-1", "paho's message is in history: {page}");
    server.stop().await.unwrap();
}
