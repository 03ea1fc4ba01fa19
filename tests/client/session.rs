//! Sessions: kept in the real keychain across restarts, revoked and wiped on logout.

use std::sync::Arc;

use iotchat_client::protocol::Code;
use iotchat_client::{SecretStore, StoreKind};

use crate::support::{Device, PASSWORD, TestServer, client, memory};

#[tokio::test(flavor = "multi_thread")]
async fn a_session_in_the_real_keychain_survives_a_restart_and_logout_removes_it() {
    let server = TestServer::start().await;
    let mut alice = Device::signed_up(&server, "alice").await;
    let kind = alice.client.secret_store_kind();
    assert!(
        matches!(
            kind,
            StoreKind::SecretService
                | StoreKind::KernelKeyring
                | StoreKind::MacosKeychain
                | StoreKind::WindowsCredentialManager
        ),
        "a real OS store, not {kind:?}"
    );
    let pool = server.profile().user_pool_id;
    let name = |token: &str| format!("{pool}/alice/{token}");
    assert!(alice.secrets.get(&name("refresh")).unwrap().is_some(), "the refresh token is kept");

    alice.restart().await;
    let account = alice.client.restore().await.expect("restore").expect("a session");
    assert_eq!(account.username, "alice");
    alice.online().await;
    alice.client.rooms().await.expect("the restored session works");

    alice.client.logout().await.expect("logout");
    for token in ["id", "access", "refresh"] {
        assert_eq!(alice.secrets.get(&name(token)).unwrap(), None, "{token} token removed");
    }
    alice.restart().await;
    assert_eq!(alice.client.restore().await.unwrap(), None, "nobody is signed in any more");
    let error = alice.client.rooms().await.unwrap_err();
    assert_eq!(error.code, Code::Unauthenticated, "{error:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn logout_revokes_the_tokens_and_leaves_no_secret_behind() {
    let server = TestServer::start().await;
    let store = memory();
    let secrets: Arc<dyn SecretStore> = store.clone();
    let data = tempfile::tempdir().unwrap();
    let alice = client(&server.profile(), data.path(), Arc::clone(&secrets));
    alice.register("alice", "alice@example.com", PASSWORD).await.expect("register");
    alice.login("alice", PASSWORD).await.expect("login");
    let mut names = store.names();
    names.sort();
    let pool = server.profile().user_pool_id;
    assert_eq!(
        names,
        [
            format!("{pool}/alice/access"),
            format!("{pool}/alice/id"),
            format!("{pool}/alice/refresh")
        ]
    );
    // Keep a copy, as a thief with the keychain would.
    let stolen = memory();
    for name in &names {
        stolen.set(name, &store.get(name).unwrap().unwrap()).unwrap();
    }

    alice.logout().await.expect("logout");
    assert!(store.names().is_empty(), "no secret left: {:?}", store.names());

    // The stolen tokens no longer work: the server revoked them.
    let data = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(data.path().join(&pool)).unwrap();
    let account = serde_json::json!({"username": "alice", "identityId": "us-east-1:00000000-0000-4000-8000-000000000000"});
    std::fs::write(data.path().join(&pool).join("account.json"), account.to_string()).unwrap();
    let thief = client(&server.profile(), data.path(), stolen);
    let error = thief.restore().await.expect_err("revoked tokens are refused");
    assert_eq!(error.code, Code::SessionExpired, "{error:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn wrong_passwords_taken_names_and_weak_passwords_get_typed_errors() {
    let server = TestServer::start().await;
    let data = tempfile::tempdir().unwrap();
    let c = client(&server.profile(), data.path(), memory());
    c.register("carol", "carol@example.com", PASSWORD).await.expect("register");
    let cases = [
        (c.register("carol", "carol@example.com", PASSWORD).await, Code::UsernameExists),
        (c.register("dave", "dave@example.com", "short").await, Code::InvalidPassword),
        (c.register("dave", "not-an-email", PASSWORD).await, Code::InvalidInput),
        (c.login("carol", "Wrong-Horse-9").await.map(|_| ()), Code::WrongCredentials),
        (c.login("nobody", PASSWORD).await.map(|_| ()), Code::WrongCredentials),
    ];
    for (result, code) in cases {
        let error = result.expect_err("refused");
        assert_eq!(error.code, code, "{error:?}");
        assert!(!error.message.is_empty());
    }
    let error = c.room_create("General").await.expect_err("not signed in");
    assert_eq!(error.code, Code::Unauthenticated);
}

#[tokio::test(flavor = "multi_thread")]
async fn repeated_wrong_passwords_lock_the_account_and_say_to_wait() {
    let server = TestServer::start().await;
    let data = tempfile::tempdir().unwrap();
    let c = client(&server.profile(), data.path(), memory());
    c.register("erin", "erin@example.com", PASSWORD).await.expect("register");
    for n in 1..=5 {
        let error = c.login("erin", "Wrong-Horse-9").await.map(|_| ()).expect_err("wrong");
        assert_eq!(error.code, Code::WrongCredentials, "wrong password {n}: {error:?}");
    }
    let error = c.login("erin", PASSWORD).await.map(|_| ()).expect_err("locked out");
    assert_eq!(error.code, Code::RateLimited, "waiting helps, retyping does not: {error:?}");
    assert!(error.message.contains("Wait a moment"), "says what to do: {error:?}");
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    c.login("erin", PASSWORD).await.expect("the first lockout is over after a second");
}
