//! The SigV4-signed HTTP API, called as the app does: temporary credentials from the identity
//! pool, requests signed by the AWS SDK's own signer.

use serde_json::json;

use crate::support::{self, api, send_headers, signed_in};

#[tokio::test(flavor = "multi_thread")]
async fn two_users_record_profiles_and_create_rooms() {
    let dir = tempfile::tempdir().unwrap();
    let server = support::start(dir.path()).await;
    let profile = server.profile().clone();
    let alice = signed_in(&profile, "alice").await;
    let bob = signed_in(&profile, "bob").await;
    let a = &alice.credentials;

    for _ in 0..2 {
        let (status, body) = api(&profile, a, "POST", "/policy/attach", None).await;
        assert_eq!(status, 200, "attaching is idempotent: {body}");
        assert_eq!(body["identityId"], alice.identity_id.as_str());
    }

    let (status, body) = api(&profile, a, "GET", "/users/me", None).await;
    assert_eq!((status, body["code"].as_str()), (404, Some("not_found")), "{body}");
    let (status, body) =
        api(&profile, a, "POST", "/users", Some(json!({"username": "Alice"}))).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body, json!({"identityId": alice.identity_id, "username": "alice"}));
    let (status, body) =
        api(&profile, &bob.credentials, "POST", "/users", Some(json!({"username": "alice"}))).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (403, Some("forbidden")),
        "no impersonation: {body}"
    );
    api(&profile, &bob.credentials, "POST", "/users", Some(json!({"username": "bob"}))).await;

    let (status, body) =
        api(&profile, &bob.credentials, "GET", &format!("/users/{}", alice.identity_id), None)
            .await;
    assert_eq!((status, body["username"].as_str()), (200, Some("alice")), "{body}");
    let (_, body) = api(&profile, a, "GET", "/users", None).await;
    let names: Vec<&str> =
        body["users"].as_array().unwrap().iter().map(|u| u["username"].as_str().unwrap()).collect();
    assert_eq!(names, ["alice", "bob"]);

    let create = |name: &str| json!({"roomName": name, "type": "public"});
    let (status, room) = api(&profile, a, "POST", "/chats", Some(create("Über Café 2020"))).await;
    assert_eq!(status, 201, "{room}");
    assert_eq!(room["name"], "room/public/uber-cafe-2020");
    assert_eq!(room["displayName"], "Über Café 2020");
    assert_eq!(room["createdBy"], alice.identity_id.as_str());
    let (status, body) =
        api(&profile, &bob.credentials, "POST", "/chats", Some(create("uber cafe 2020"))).await;
    assert_eq!((status, body["code"].as_str()), (409, Some("room_exists")), "{body}");
    assert!(
        body["message"].as_str().unwrap().contains("Über Café 2020"),
        "names the existing room"
    );

    let (status, body) = api(&profile, &bob.credentials, "GET", "/chats", None).await;
    assert_eq!(status, 200);
    assert_eq!(body["rooms"].as_array().unwrap().len(), 1);

    let (status, body) =
        api(&profile, a, "GET", "/chats/messages?room=room/public/uber-cafe-2020&limit=10", None)
            .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body, json!({"messages": []}), "no history yet, and no next page");
    server.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn invalid_input_gets_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let server = support::start(dir.path()).await;
    let profile = server.profile().clone();
    let c = signed_in(&profile, "carol").await.credentials;

    let cases: &[(&str, &str, Option<serde_json::Value>, u16, &str)] = &[
        (
            "POST",
            "/chats",
            Some(json!({"roomName": "!!!", "type": "public"})),
            400,
            "invalid_input",
        ),
        ("POST", "/chats", Some(json!({"roomName": "x", "type": "private"})), 400, "invalid_input"),
        ("POST", "/chats", Some(json!({"room": "x"})), 400, "invalid_input"),
        ("GET", "/users/not-an-identity", None, 400, "invalid_input"),
        ("GET", "/users/us-east-1:0000", None, 404, "not_found"),
        ("GET", "/chats/messages?room=nope", None, 404, "not_found"),
        ("GET", "/chats/messages?room=a/b", None, 400, "invalid_input"),
        ("GET", "/chats/messages", None, 400, "invalid_input"),
        ("GET", "/no/such/route", None, 404, "not_found"),
    ];
    for (method, path, body, status, code) in cases {
        let (got, answer) = api(&profile, &c, method, path, body.clone()).await;
        assert_eq!(
            (got, answer["code"].as_str()),
            (*status, Some(*code)),
            "{method} {path}: {answer}"
        );
        assert!(!answer["message"].as_str().unwrap_or_default().is_empty(), "a message for people");
    }
    api(&profile, &c, "POST", "/chats", Some(json!({"roomName": "General", "type": "public"})))
        .await;
    let (status, body) =
        api(&profile, &c, "GET", "/chats/messages?room=general&before=abc", None).await;
    assert_eq!((status, body["code"].as_str()), (400, Some("invalid_input")), "{body}");

    for (name, slug) in [
        ("Robert'); DROP TABLE rooms;--", "room/public/robert-drop-table-rooms"),
        ("<script>alert(1)</script>", "room/public/script-alert-1-script"),
    ] {
        let body = json!({"roomName": name, "type": "public"});
        let (status, room) = api(&profile, &c, "POST", "/chats", Some(body)).await;
        assert_eq!(status, 201, "{room}");
        assert_eq!((room["name"].as_str(), room["displayName"].as_str()), (Some(slug), Some(name)));
    }
    let (_, rooms) = api(&profile, &c, "GET", "/chats", None).await;
    assert_eq!(rooms["rooms"].as_array().unwrap().len(), 3, "names are data: the table is intact");
    let body = json!({"roomName": "line\nbreak", "type": "public"});
    let (status, body) = api(&profile, &c, "POST", "/chats", Some(body)).await;
    assert_eq!((status, body["code"].as_str()), (400, Some("invalid_input")), "{body}");
    server.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn unsigned_tampered_and_expired_requests_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let server = support::start_with(dir.path(), |config| config.credentials_ttl_secs = 4).await;
    let profile = server.profile().clone();
    let dave = signed_in(&profile, "dave").await;
    let http = support::plain_http();
    let url = format!("{}/chats", profile.api_url);

    let unsigned = http.get(&url).send().await.unwrap();
    assert_eq!(unsigned.status().as_u16(), 401);
    let body: serde_json::Value = unsigned.json().await.unwrap();
    assert_eq!(body["code"], "unauthenticated");

    // Signed for one body, sent with another.
    let signed_body = json!({"roomName": "Signed", "type": "public"}).to_string();
    let headers = send_headers(&profile, &dave.credentials, "POST", &url, &signed_body);
    let mut request =
        http.post(&url).body(json!({"roomName": "Tampered", "type": "public"}).to_string());
    for (name, value) in &headers {
        request = request.header(name, value);
    }
    let response = request.send().await.unwrap();
    assert_eq!(response.status().as_u16(), 401, "a changed body breaks the signature");

    // The right signature with someone else's session token.
    let mut request = http.post(&url).body(signed_body.clone());
    for (name, value) in &headers {
        let value = if name == "x-amz-security-token" { "forged" } else { value.as_str() };
        request = request.header(name, value);
    }
    assert_eq!(request.send().await.unwrap().status().as_u16(), 401);

    let (status, _) = api(&profile, &dave.credentials, "GET", "/chats", None).await;
    assert_eq!(status, 200, "fresh credentials work");
    tokio::time::sleep(std::time::Duration::from_millis(4500)).await;
    let (status, body) = api(&profile, &dave.credentials, "GET", "/chats", None).await;
    assert_eq!(status, 401, "expired credentials are refused: {body}");
    assert!(body["message"].as_str().unwrap().contains("expired"), "{body}");
    let no_room =
        api(&profile, &signed_in(&profile, "erin").await.credentials, "GET", "/chats", None).await;
    assert_eq!(no_room.1["rooms"], json!([]), "the tampered request created nothing");
    server.stop().await.unwrap();
}
