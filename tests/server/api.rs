//! The SigV4-signed HTTP API, called as the app does: temporary credentials from the identity
//! pool, requests signed by the AWS SDK's own signer.

use serde_json::json;

use crate::support::{
    self, Answer, Signing, api, send_headers, send_headers_as, send_raw, signed_in,
};

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
        ("GET", "/chats/messages?room=general&limit=-1", None, 400, "invalid_input"),
        ("GET", "/chats/messages?room=general&limit=99999999999", None, 400, "invalid_input"),
        ("GET", "/chats/messages?room=general&limit=1&limit=2", None, 400, "invalid_input"),
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

/// Asserts that `answer` is API Gateway's refusal: 403, the exception in `x-amzn-ErrorType`,
/// its words in `message`, and our `code` beside them.
#[track_caller]
fn assert_gateway_refusal(answer: &Answer, aws_type: &str, message: &str, what: &str) {
    assert_eq!(answer.status, 403, "{what}: API Gateway refuses with 403, never 401: {answer:?}");
    assert_eq!(answer.aws_type.as_deref(), Some(aws_type), "{what}: {answer:?}");
    let said = answer.body["message"].as_str().unwrap_or_default();
    assert!(said.starts_with(message), "{what}: API Gateway's words, got {said:?}");
    assert_eq!(answer.body["code"], "unauthenticated", "{what}: our code stays beside it");
}

#[tokio::test(flavor = "multi_thread")]
async fn refused_requests_get_api_gateways_403_and_exception() {
    let dir = tempfile::tempdir().unwrap();
    let server = support::start_with(dir.path(), |config| config.credentials_ttl_secs = 4).await;
    let profile = server.profile().clone();
    let dave = signed_in(&profile, "dave").await;
    let url = format!("{}/chats", profile.api_url);
    let now = std::time::SystemTime::now();
    let signed =
        |signing: Signing<'_>| send_headers_as(&dave.credentials, "GET", &url, "", &signing);

    let unsigned = send_raw(&profile, "GET", &url, &[], "").await;
    assert_gateway_refusal(
        &unsigned,
        "MissingAuthenticationTokenException",
        "Missing Authentication Token",
        "unsigned",
    );

    // Signed for one body, sent with another.
    let signed_body = json!({"roomName": "Signed", "type": "public"}).to_string();
    let headers = send_headers(&profile, &dave.credentials, "POST", &url, &signed_body);
    let tampered_body = json!({"roomName": "Tampered", "type": "public"}).to_string();
    let tampered = send_raw(&profile, "POST", &url, &headers, &tampered_body).await;
    assert_gateway_refusal(
        &tampered,
        "InvalidSignatureException",
        "The request signature we calculated does not match the signature you provided.",
        "a changed body breaks the signature",
    );

    // The right signature with someone else's session token.
    let forged: Vec<(String, String)> = headers
        .iter()
        .map(|(name, value)| {
            let value = if name == "x-amz-security-token" { "forged" } else { value.as_str() };
            (name.clone(), value.to_owned())
        })
        .collect();
    let answer = send_raw(&profile, "POST", &url, &forged, &signed_body).await;
    assert_gateway_refusal(
        &answer,
        "UnrecognizedClientException",
        "The security token included in the request is invalid.",
        "a session token that is not the access key's",
    );
    let stranger = aws_credential_types::Credentials::new(
        "ASIANOTISSUEDHERE000",
        "secret",
        Some("token".into()),
        None,
        "test",
    );
    let signing = Signing { region: &profile.region, service: "execute-api", time: now };
    let headers = send_headers_as(&stranger, "GET", &url, "", &signing);
    let answer = send_raw(&profile, "GET", &url, &headers, "").await;
    assert_gateway_refusal(
        &answer,
        "UnrecognizedClientException",
        "The security token included in the request is invalid.",
        "an access key this server never issued",
    );

    let stale = now - std::time::Duration::from_secs(6 * 60);
    let answer =
        send_raw(&profile, "GET", &url, &signed(Signing { time: stale, ..signing }), "").await;
    assert_gateway_refusal(
        &answer,
        "InvalidSignatureException",
        "Signature expired: ",
        "signed six minutes ago: outside API Gateway's five",
    );
    let said = answer.body["message"].as_str().unwrap();
    assert!(said.ends_with(" - 5 min.)"), "names the window as API Gateway does: {said}");
    let ahead = now + std::time::Duration::from_secs(6 * 60);
    let answer =
        send_raw(&profile, "GET", &url, &signed(Signing { time: ahead, ..signing }), "").await;
    assert_gateway_refusal(
        &answer,
        "InvalidSignatureException",
        "Signature not yet current: ",
        "dated six minutes ahead",
    );
    let recent = now - std::time::Duration::from_secs(4 * 60);
    let answer =
        send_raw(&profile, "GET", &url, &signed(Signing { time: recent, ..signing }), "").await;
    assert_eq!(answer.status, 200, "four minutes of clock skew is within the window: {answer:?}");

    let answer =
        send_raw(&profile, "GET", &url, &signed(Signing { region: "eu-west-1", ..signing }), "")
            .await;
    assert_gateway_refusal(
        &answer,
        "InvalidSignatureException",
        "Credential should be scoped to a valid region.",
        "another region's scope",
    );
    let answer = send_raw(
        &profile,
        "GET",
        &url,
        &signed(Signing { service: "iotdevicegateway", ..signing }),
        "",
    )
    .await;
    assert_gateway_refusal(
        &answer,
        "InvalidSignatureException",
        "Credential should be scoped to correct service: 'execute-api'.",
        "a presigned-MQTT scope on the API",
    );
    let bearer = vec![("authorization".to_owned(), "Bearer abc".to_owned())];
    let answer = send_raw(&profile, "GET", &url, &bearer, "").await;
    assert_gateway_refusal(
        &answer,
        "IncompleteSignatureException",
        "The request is not signed correctly",
        "a bearer token instead of a signature",
    );

    let (status, _) = api(&profile, &dave.credentials, "GET", "/chats", None).await;
    assert_eq!(status, 200, "fresh credentials work");
    tokio::time::sleep(std::time::Duration::from_millis(4500)).await;
    let headers = send_headers(&profile, &dave.credentials, "GET", &url, "");
    let answer = send_raw(&profile, "GET", &url, &headers, "").await;
    assert_gateway_refusal(
        &answer,
        "ExpiredTokenException",
        "The security token included in the request is expired",
        "expired credentials",
    );
    let no_room =
        api(&profile, &signed_in(&profile, "erin").await.credentials, "GET", "/chats", None).await;
    assert_eq!(no_room.1["rooms"], json!([]), "the tampered request created nothing");
    server.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_presigned_api_url_that_signs_its_session_token_works() {
    use aws_sigv4::http_request::{
        SignableBody, SignableRequest, SignatureLocation, SigningSettings, sign,
    };
    let dir = tempfile::tempdir().unwrap();
    let server = support::start(dir.path()).await;
    let profile = server.profile().clone();
    let frank = signed_in(&profile, "frank").await;
    let url = format!("{}/chats", profile.api_url);
    let mut settings = SigningSettings::default();
    settings.signature_location = SignatureLocation::QueryParams;
    settings.expires_in = Some(std::time::Duration::from_secs(300));
    // The signer's default: the session token is a signed query parameter, as botocore does.
    let identity = frank.credentials.clone().into();
    let params = aws_sigv4::sign::v4::SigningParams::builder()
        .identity(&identity)
        .region(&profile.region)
        .name("execute-api")
        .time(std::time::SystemTime::now())
        .settings(settings)
        .build()
        .unwrap()
        .into();
    let signable =
        SignableRequest::new("GET", url.clone(), std::iter::empty(), SignableBody::Bytes(&[]))
            .unwrap();
    let (instructions, _) = sign(signable, &params).unwrap().into_parts();
    let mut request = http::Request::builder().uri(url).body(()).unwrap();
    instructions.apply_to_request_http1x(&mut request);
    let presigned = request.uri().to_string();
    assert!(presigned.contains("X-Amz-Security-Token="), "{presigned}");
    let answer = send_raw(&profile, "GET", &presigned, &[], "").await;
    assert_eq!(answer.status, 200, "a signed token is part of the signature: {answer:?}");
    let forged = presigned.replace("X-Amz-Security-Token=", "X-Amz-Security-Token=x");
    let answer = send_raw(&profile, "GET", &forged, &[], "").await;
    assert_eq!(answer.status, 403, "and cannot be changed: {answer:?}");
    server.stop().await.unwrap();
}
