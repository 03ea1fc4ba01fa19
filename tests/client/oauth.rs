//! Signing in through the hosted UI with the built-in test provider: the client core's PKCE
//! flow and loopback listener, the browser played by `iotchat_tests::browser`.

use std::sync::Mutex;
use std::time::Duration;

use iotchat_client::protocol::Code;
use iotchat_client::{Delivery, Event, OpenUrl};
use iotchat_tests::browser::{Act, play_browser};
use tokio::sync::mpsc;

use crate::support::{Device, TestServer, keychain};

/// The app's "browser": hands each address it is asked to open to the test.
struct Catch(Mutex<mpsc::UnboundedSender<String>>);

impl OpenUrl for Catch {
    fn open(&self, url: &str) -> std::io::Result<()> {
        let sent = self.0.lock().expect("lock").send(url.to_owned());
        sent.map_err(|_| std::io::Error::other("the test stopped listening"))
    }
}

fn catcher() -> (Catch, mpsc::UnboundedReceiver<String>) {
    let (tx, rx) = mpsc::unbounded_channel();
    (Catch(Mutex::new(tx)), rx)
}

/// Signs `device` in through the test provider, the browser doing `act`; answers the sign-in's
/// result and the page the browser was left on.
async fn sign_in(
    device: &Device,
    act: Act,
) -> (iotchat_client::Result<iotchat_client::Account>, String) {
    let (opener, mut urls) = catcher();
    let login = device.client.login_with_provider("test", &opener, Duration::from_secs(60));
    let browser = async {
        let url = urls.recv().await.expect("the app opens the sign-in address");
        assert!(url.contains("identity_provider=TestIdP"), "{url}");
        assert!(url.contains("code_challenge_method=S256"), "PKCE: {url}");
        play_browser(&url, act).await.expect("the browser's part")
    };
    tokio::join!(login, browser)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_test_provider_sign_in_chats_and_survives_a_restart() {
    let server = TestServer::start().await;
    let mut carol = Device::new(server.profile(), keychain().await);
    assert_eq!(carol.client.providers(), ["TestIdP"]);
    let (account, page) = sign_in(&carol, Act::Allow { subject: "carol".into() }).await;
    let account = account.expect("signed in through the test provider");
    assert_eq!(account.username, "TestIdP_carol", "the user pool's name for the person");
    assert!(page.contains("You can close this tab and return to IoT Chat"), "{page}");
    carol.online().await;

    // A federated user chats like anyone else, with a password user.
    let mut alice = Device::signed_up(&server, "alice").await;
    let room = carol.client.room_create("Social").await.expect("create").name;
    alice.client.room_join(&room).await.expect("join");
    let sent = carol.client.message_send(&room, "Signed in with a provider").await.expect("send");
    carol
        .expect(|e| match e {
            Event::Delivery { id, delivery: Delivery::Delivered, .. } if *id == sent.id => Some(()),
            _ => None,
        })
        .await;
    let got = alice.messages(&room, 1).await;
    assert_eq!(got[0].author, "TestIdP_carol");

    // The session is in the keychain like a password session: it survives the app and the
    // server restarting.
    let mut server = server;
    server.restart().await;
    carol.restart().await;
    let restored = carol.client.restore().await.expect("restore").expect("a session");
    assert_eq!(restored.username, "TestIdP_carol");
    carol.online().await;
    carol.client.rooms().await.expect("the restored session works");

    // Signing in again is the same person, not a new user.
    carol.client.logout().await.expect("logout");
    let (again, _) = sign_in(&carol, Act::Allow { subject: "carol".into() }).await;
    assert_eq!(again.expect("signed in again").identity_id, account.identity_id);
}

#[tokio::test(flavor = "multi_thread")]
async fn declined_forged_cancelled_and_abandoned_sign_ins_end_with_clear_messages() {
    let server = TestServer::start().await;
    let dave = Device::new(server.profile(), keychain().await);

    let (declined, page) = sign_in(&dave, Act::Deny).await;
    let error = declined.expect_err("declined");
    assert_eq!(error.code, Code::Unauthenticated);
    assert_eq!(error.message, "You declined the sign-in at TestIdP.");
    assert!(page.contains("You can close this tab"), "{page}");

    let (forged, page) = sign_in(&dave, Act::TamperState { subject: "dave".into() }).await;
    let error = forged.expect_err("another state");
    assert!(error.message.contains("did not match the sign-in this app started"), "{error}");
    assert!(page.contains("does not belong to the sign-in IoT Chat started"), "{page}");
    assert_eq!(dave.client.account().await, None, "nobody is signed in");

    // Cancel while the browser is open.
    let (opener, mut urls) = catcher();
    let login = dave.client.login_with_provider("test", &opener, Duration::from_secs(60));
    let cancel = async {
        urls.recv().await.expect("the address");
        dave.client.cancel_provider_login();
    };
    let (cancelled, ()) = tokio::join!(login, cancel);
    assert_eq!(cancelled.expect_err("cancelled").code, Code::Cancelled);

    // Nobody comes back from the browser: the wait ends, and says so.
    let (opener, _urls) = catcher();
    let abandoned = dave.client.login_with_provider("test", &opener, Duration::from_secs(1)).await;
    let error = abandoned.expect_err("timed out");
    assert_eq!(error.code, Code::Unavailable);
    assert!(error.message.contains("did not finish within 1 second"), "{error}");

    // A provider the server does not offer.
    let error = dave
        .client
        .login_with_provider("facebook", &opener, Duration::from_secs(1))
        .await
        .expect_err("not offered");
    assert_eq!(error.code, Code::InvalidInput);
    assert!(error.message.contains("offers TestIdP"), "{error}");

    // After all that, a real sign-in still works (the ports were given back).
    let (account, _) = sign_in(&dave, Act::Allow { subject: "dave".into() }).await;
    assert_eq!(account.expect("signed in").username, "TestIdP_dave");
}
