//! The hosted UI's authorization-code flow with PKCE, the browser played by an HTTP client
//! that does not follow redirects, the test identity provider's page submitted by hand.

use base64::Engine as _;
use iotchat_server::profile::Profile;
use sha2::{Digest as _, Sha256};

use crate::support::{self, get_id, identity_client, idp_client};

const CALLBACK: &str = "http://localhost:28787/callback";
const VERIFIER: &str = "a-verifier-of-at-least-forty-three-characters-0123456789";

fn challenge(verifier: &str) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

fn browser() -> reqwest::Client {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("an HTTP client")
}

fn base(profile: &Profile) -> String {
    profile.api_url.trim_end_matches("/api").to_owned()
}

fn location(response: &reqwest::Response) -> String {
    assert!(response.status().is_redirection(), "a redirect, got {}", response.status());
    response.headers()["location"].to_str().expect("ASCII").to_owned()
}

fn query_of(url: &str) -> std::collections::HashMap<String, String> {
    let url = url::Url::parse(url).expect("an absolute URL");
    url.query_pairs().into_owned().collect()
}

/// Runs the flow up to the redirect back to the app, choosing `action` on the provider's page.
async fn authorize(profile: &Profile, redirect_uri: &str, subject: &str, action: &str) -> String {
    let browser = browser();
    let url = format!("{}/oauth2/authorize", base(profile));
    let challenge = challenge(VERIFIER);
    let response = browser
        .get(&url)
        .query(&[
            ("client_id", profile.user_pool_client_id.as_str()),
            ("redirect_uri", redirect_uri),
            ("response_type", "code"),
            ("state", "state-123"),
            ("identity_provider", "TestIdP"),
            ("code_challenge_method", "S256"),
            ("code_challenge", challenge.as_str()),
            ("scope", "openid email profile aws.cognito.signin.user.admin"),
        ])
        .send()
        .await
        .expect("authorize");
    let to_provider = location(&response);
    assert!(to_provider.starts_with("/testidp/authorize?pending="), "{to_provider}");
    let page = browser
        .get(format!("{}{to_provider}", base(profile)))
        .send()
        .await
        .expect("the provider's page");
    assert_eq!(page.status(), 200);
    assert_eq!(page.headers()["x-frame-options"], "DENY");
    let pending = to_provider.split("pending=").nth(1).expect("a pending id").to_owned();
    let answer = browser
        .post(format!("{}/testidp/authorize", base(profile)))
        .form(&[
            ("pending", pending.as_str()),
            ("subject", subject),
            ("email", "carol@example.com"),
            ("action", action),
        ])
        .send()
        .await
        .expect("the provider's answer");
    location(&answer)
}

/// `GET /oauth2/authorize` with `query`; where it sends the browser.
async fn authorize_redirect(profile: &Profile, query: &[(&str, &str)]) -> String {
    let response = browser()
        .get(format!("{}/oauth2/authorize", base(profile)))
        .query(query)
        .send()
        .await
        .expect("authorize");
    location(&response)
}

/// `POST /oauth2/token` with `form`: the status and the JSON answer (never cached).
async fn token(profile: &Profile, form: &[(&str, &str)]) -> (u16, serde_json::Value) {
    let response = browser()
        .post(format!("{}/oauth2/token", base(profile)))
        .form(form)
        .send()
        .await
        .expect("token endpoint");
    let status = response.status().as_u16();
    assert_eq!(response.headers()["cache-control"], "no-store");
    (status, response.json().await.expect("JSON"))
}

/// The authorization-code grant for `code` with `verifier`, for the usual redirect URI.
async fn exchange(profile: &Profile, code: &str, verifier: &str) -> (u16, serde_json::Value) {
    let client_id = profile.user_pool_client_id.as_str();
    token(
        profile,
        &[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("client_id", client_id),
            ("redirect_uri", CALLBACK),
            ("code_verifier", verifier),
        ],
    )
    .await
}

fn claim(token: &str, name: &str) -> serde_json::Value {
    let payload = token.split('.').nth(1).expect("a JWT");
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload).expect("b64");
    serde_json::from_slice::<serde_json::Value>(&bytes).expect("claims")[name].clone()
}

#[tokio::test]
async fn a_test_provider_sign_in_ends_with_cognito_tokens_for_a_federated_user() {
    let dir = tempfile::tempdir().expect("temp dir");
    let server = support::start(dir.path()).await;
    let profile = server.profile().clone();
    // The profile says where the hosted UI is and what it offers.
    let hosted = profile.hosted_ui.clone().expect("the local profile has a hosted UI");
    assert_eq!(hosted.providers, ["TestIdP"], "a loopback server offers the test provider");
    assert_eq!(hosted.redirect_uris.first().map(String::as_str), Some(CALLBACK));
    assert_eq!(hosted.url, base(&profile));

    let back = authorize(&profile, CALLBACK, "carol", "allow").await;
    assert!(back.starts_with(&format!("{CALLBACK}?")), "{back}");
    let answer = query_of(&back);
    assert_eq!(answer["state"], "state-123", "state comes back as it was sent");
    let code = answer["code"].clone();

    let (status, tokens) = exchange(&profile, &code, VERIFIER).await;
    assert_eq!(status, 200, "{tokens}");
    assert_eq!(tokens["token_type"], "Bearer");
    let id_token = tokens["id_token"].as_str().expect("an ID token");
    assert_eq!(claim(id_token, "cognito:username"), "TestIdP_carol");
    // The tokens are the user pool's: the identity pool takes them as any sign-in.
    let identity = get_id(&identity_client(&profile), &profile, id_token).await;
    assert!(identity.starts_with(&profile.region));
    let first_sub = claim(id_token, "sub");

    // userInfo names the user of the access token; without a token, or with a bad one, a bare
    // 400 or 401 as Cognito answers.
    let url = format!("{}/oauth2/userInfo", base(&profile));
    let access = tokens["access_token"].as_str().expect("an access token");
    let me: serde_json::Value = browser()
        .get(&url)
        .bearer_auth(access)
        .send()
        .await
        .expect("userInfo")
        .json()
        .await
        .expect("JSON");
    assert_eq!(me["username"], "TestIdP_carol");
    assert_eq!(me["email"], "carol@example.com");
    assert_eq!(browser().get(&url).send().await.expect("userInfo").status(), 400);
    let bad = browser().get(&url).bearer_auth("not-a-token").send().await.expect("userInfo");
    assert_eq!(bad.status(), 401);
    assert!(bad.headers()["www-authenticate"].to_str().unwrap_or("").contains("invalid_token"));

    // A code is good once.
    let (status, again) = exchange(&profile, &code, VERIFIER).await;
    assert_eq!((status, again["error"].as_str()), (400, Some("invalid_grant")));

    // The same person again is the same user; a password cannot sign them in.
    let second = query_of(&authorize(&profile, CALLBACK, "carol", "allow").await)["code"].clone();
    let (_, tokens) = exchange(&profile, &second, VERIFIER).await;
    let id_token = tokens["id_token"].as_str().expect("an ID token");
    assert_eq!(claim(id_token, "sub"), first_sub, "one user per provider subject");
    let refused = idp_client(&profile)
        .initiate_auth()
        .client_id(&profile.user_pool_client_id)
        .auth_flow(aws_sdk_cognitoidentityprovider::types::AuthFlowType::UserPasswordAuth)
        .auth_parameters("USERNAME", "TestIdP_carol")
        .auth_parameters("PASSWORD", "")
        .send()
        .await
        .expect_err("no password sign-in for a federated user");
    assert!(format!("{refused:?}").contains("NotAuthorizedException"), "{refused:?}");
}

#[tokio::test]
async fn the_flow_refuses_what_cognito_refuses() {
    let dir = tempfile::tempdir().expect("temp dir");
    let server = support::start(dir.path()).await;
    let profile = server.profile().clone();
    let client_id = profile.user_pool_client_id.as_str();

    // A redirect URI that is not registered, even by a trailing slash or another port, never
    // gets the browser: it goes to the error page.
    for redirect_uri in [
        "http://localhost:28787/callback/",
        "http://localhost:9999/callback",
        "http://127.0.0.1:28787/callback",
        "https://evil.example.com/callback",
    ] {
        let to = authorize_redirect(
            &profile,
            &[
                ("client_id", client_id),
                ("redirect_uri", redirect_uri),
                ("response_type", "code"),
                ("identity_provider", "TestIdP"),
            ],
        )
        .await;
        assert!(to.starts_with("/error?error=redirect_mismatch"), "{redirect_uri}: {to}");
    }
    // Another client id likewise.
    let to = authorize_redirect(
        &profile,
        &[("client_id", "someoneelse"), ("redirect_uri", CALLBACK), ("response_type", "code")],
    )
    .await;
    assert!(to.starts_with("/error?"), "{to}");

    // A plain PKCE method is refused, back at the app with the state.
    let to = authorize_redirect(
        &profile,
        &[
            ("client_id", client_id),
            ("redirect_uri", CALLBACK),
            ("response_type", "code"),
            ("state", "s1"),
            ("identity_provider", "TestIdP"),
            ("code_challenge_method", "plain"),
            ("code_challenge", VERIFIER),
        ],
    )
    .await;
    let answer = query_of(&to);
    assert_eq!((answer["error"].as_str(), answer["state"].as_str()), ("invalid_request", "s1"));

    // Declining at the provider.
    let answer = query_of(&authorize(&profile, CALLBACK, "dave", "deny").await);
    assert_eq!(answer["error"], "access_denied");
    assert_eq!(answer["state"], "state-123");
    assert!(!answer.contains_key("code"));

    // A wrong verifier spends the code: the right one cannot use it afterwards.
    let code = query_of(&authorize(&profile, CALLBACK, "erin", "allow").await)["code"].clone();
    let other = "another-verifier-of-at-least-forty-three-characters-98765";
    let (status, body) = exchange(&profile, &code, other).await;
    assert_eq!((status, body["error"].as_str()), (400, Some("invalid_grant")));
    let (status, _) = exchange(&profile, &code, VERIFIER).await;
    assert_eq!(status, 400, "the code was spent by the failed try");

    // A code exchanged for another redirect URI, or with no verifier, is refused.
    let code = query_of(&authorize(&profile, CALLBACK, "erin", "allow").await)["code"].clone();
    let (status, _) = token(
        &profile,
        &[
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("client_id", client_id),
            ("redirect_uri", "http://localhost:28788/callback"),
            ("code_verifier", VERIFIER),
        ],
    )
    .await;
    assert_eq!(status, 400);
    let (status, body) = exchange(&profile, "never-issued", VERIFIER).await;
    assert_eq!((status, body["error"].as_str()), (400, Some("invalid_grant")));
    drop(server);

    // A code past its lifetime (shortened to one second here; five minutes by default).
    let dir = tempfile::tempdir().expect("temp dir");
    let server = support::start_with(dir.path(), |config| {
        config.limits.oauth_code_ttl = std::time::Duration::from_secs(1);
    })
    .await;
    let profile = server.profile().clone();
    let code = query_of(&authorize(&profile, CALLBACK, "frank", "allow").await)["code"].clone();
    tokio::time::sleep(std::time::Duration::from_millis(1_200)).await;
    let (status, body) = exchange(&profile, &code, VERIFIER).await;
    assert_eq!((status, body["error"].as_str()), (400, Some("invalid_grant")));
    let (_, body) = token(&profile, &[("grant_type", "password"), ("username", "x")]).await;
    assert_eq!(body["error"], "unsupported_grant_type");
}

#[tokio::test]
async fn refresh_login_logout_and_reserved_names() {
    let dir = tempfile::tempdir().expect("temp dir");
    let server = support::start(dir.path()).await;
    let profile = server.profile().clone();
    let browser = browser();
    let client_id = profile.user_pool_client_id.as_str();

    // The refresh grant gives new tokens (and, as Cognito, no new refresh token) until the
    // user signs out everywhere.
    let code = query_of(&authorize(&profile, CALLBACK, "gina", "allow").await)["code"].clone();
    let (_, tokens) = exchange(&profile, &code, VERIFIER).await;
    let refresh = tokens["refresh_token"].as_str().expect("a refresh token").to_owned();
    let refreshed = async |refresh_token: &str| {
        let grant = [
            ("grant_type", "refresh_token"),
            ("client_id", client_id),
            ("refresh_token", refresh_token),
        ];
        token(&profile, &grant).await
    };
    let (status, renewed) = refreshed(&refresh).await;
    assert_eq!(status, 200, "{renewed}");
    assert!(renewed.get("refresh_token").is_none(), "{renewed}");
    let access = renewed["access_token"].as_str().expect("an access token");
    assert_eq!(claim(access, "username"), "TestIdP_gina");
    // The same refresh token works with InitiateAuth, as the app renews sessions.
    let renewed_by_sdk = idp_client(&profile)
        .initiate_auth()
        .client_id(client_id)
        .auth_flow(aws_sdk_cognitoidentityprovider::types::AuthFlowType::RefreshTokenAuth)
        .auth_parameters("REFRESH_TOKEN", &refresh)
        .send()
        .await
        .expect("REFRESH_TOKEN_AUTH with a hosted-UI refresh token");
    assert!(renewed_by_sdk.authentication_result().and_then(|r| r.id_token()).is_some());
    idp_client(&profile)
        .global_sign_out()
        .access_token(access)
        .send()
        .await
        .expect("GlobalSignOut with a hosted-UI access token");
    let (status, body) = refreshed(&refresh).await;
    assert_eq!((status, body["error"].as_str()), (400, Some("invalid_grant")));
    let (status, body) = refreshed("never-issued").await;
    assert_eq!((status, body["error"].as_str()), (400, Some("invalid_grant")));

    // Without a provider, /oauth2/authorize shows /login, which offers the test provider with
    // the same request; /login refuses what /oauth2/authorize refuses.
    let request = [
        ("client_id", client_id),
        ("redirect_uri", CALLBACK),
        ("response_type", "code"),
        ("state", "<script>alert(1)</script>"),
    ];
    let to_login = authorize_redirect(&profile, &request).await;
    assert!(to_login.starts_with("/login?"), "{to_login}");
    let page = browser.get(format!("{}{to_login}", base(&profile))).send().await.expect("/login");
    assert_eq!(page.status(), 200);
    assert!(page.headers()["content-security-policy"].to_str().unwrap_or("").contains("'none'"));
    let html = page.text().await.expect("HTML");
    assert!(html.contains("Continue with TestIdP"), "{html}");
    assert!(html.contains("identity_provider=TestIdP"), "{html}");
    assert!(!html.contains("<script>"), "reflected values are escaped: {html}");
    let bad = browser
        .get(format!("{}/login", base(&profile)))
        .query(&[("client_id", client_id), ("redirect_uri", "http://localhost:1/callback")])
        .send()
        .await
        .expect("/login");
    assert!(location(&bad).starts_with("/error?error=redirect_mismatch"));
    let error_page = browser
        .get(format!("{}/error", base(&profile)))
        .query(&[("error", "<img src=x onerror=alert(1)>")])
        .send()
        .await
        .expect("/error")
        .text()
        .await
        .expect("HTML");
    assert!(error_page.contains("&lt;img"), "{error_page}");

    // /logout goes only to a registered sign-out URI.
    let logout = |logout_uri: &'static str| {
        browser
            .get(format!("{}/logout", base(&profile)))
            .query(&[("client_id", client_id), ("logout_uri", logout_uri)])
            .send()
    };
    let signed_out = logout("http://localhost:28787/signed-out").await.expect("/logout");
    assert_eq!(location(&signed_out), "http://localhost:28787/signed-out");
    let elsewhere = logout("https://evil.example.com/").await.expect("/logout");
    assert!(location(&elsewhere).starts_with("/error?"), "never to an unregistered URI");

    // Nobody signs up with a provider's prefix, so a password user never takes a federated
    // user's name.
    for username in ["TestIdP_gina2", "google_123", "FACEBOOK_9"] {
        let refused = idp_client(&profile)
            .sign_up()
            .client_id(client_id)
            .username(username)
            .password("Correct-horse-1")
            .user_attributes(
                aws_sdk_cognitoidentityprovider::types::AttributeType::builder()
                    .name("email")
                    .value("x@example.com")
                    .build()
                    .expect("an attribute"),
            )
            .send()
            .await
            .expect_err("a reserved prefix");
        let text = format!("{refused:?}");
        assert!(text.contains("InvalidParameterException"), "{username}: {text}");
        assert!(text.contains("sign-in provider"), "{username}: {text}");
    }
}
