//! What one client (or a crowd of them) may take of the server: password guesses, connections,
//! slow or silent peers. Each limit is exercised against the real server on loopback.

use std::time::Duration;

use aws_sdk_cognitoidentityprovider::error::ProvideErrorMetadata as _;
use iotchat_server::config::Limits;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

use crate::support::{self, PASSWORD, idp_client, initiate, sign_up};

#[tokio::test(flavor = "multi_thread")]
async fn password_guessing_locks_a_username_out_as_cognito_does() {
    let dir = tempfile::tempdir().unwrap();
    let server = support::start(dir.path()).await;
    let profile = server.profile().clone();
    sign_up(&idp_client(&profile), &profile, "alice").await;

    for username in ["alice", "no-such-user"] {
        for n in 1..=5 {
            let err = initiate(&profile, username, "Wrong-Password-1").await.unwrap_err();
            assert!(err.is_not_authorized_exception(), "{username} guess {n}: {err:?}");
            assert_eq!(err.message(), Some("Incorrect username or password."), "guess {n}");
        }
        let err = initiate(&profile, username, PASSWORD).await.unwrap_err();
        assert!(err.is_not_authorized_exception(), "{username}: {err:?}");
        assert_eq!(
            err.message(),
            Some("Password attempts exceeded"),
            "{username}: after five wrong passwords even the right one waits, and an unknown \
             name is locked like a real one (no enumeration)"
        );
    }
    tokio::time::sleep(Duration::from_millis(1100)).await;
    initiate(&profile, "alice", PASSWORD).await.expect("the first lockout lasts one second");
    for n in 1..=5 {
        let err = initiate(&profile, "alice", "Wrong-Password-1").await.unwrap_err();
        assert_eq!(err.message(), Some("Incorrect username or password."), "count reset: {n}");
    }
    server.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn one_address_cannot_spray_a_password_across_accounts() {
    let dir = tempfile::tempdir().unwrap();
    let server = support::start(dir.path()).await;
    let profile = server.profile().clone();
    sign_up(&idp_client(&profile), &profile, "bob").await;

    // One guess each at many accounts: no username reaches its lockout.
    let mut guesses = tokio::task::JoinSet::new();
    for n in 0..iotchat_server::auth::lockout::ADDRESS_BURST {
        let profile = profile.clone();
        guesses.spawn(async move { initiate(&profile, &format!("user{n}"), "Summer-2026!").await });
    }
    while let Some(result) = guesses.join_next().await {
        let err = result.unwrap().unwrap_err();
        assert!(err.is_not_authorized_exception(), "within the address's burst: {err:?}");
    }
    let err = initiate(&profile, "bob", PASSWORD).await.unwrap_err();
    assert!(
        err.is_too_many_requests_exception(),
        "the address has failed too often, whatever it tries next: {err:?}"
    );
    assert!(err.message().unwrap_or_default().contains("Try again in"), "{err:?}");
    server.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn many_correct_sign_ins_from_one_address_are_never_limited() {
    let dir = tempfile::tempdir().unwrap();
    let server = support::start(dir.path()).await;
    let profile = server.profile().clone();
    sign_up(&idp_client(&profile), &profile, "carol").await;
    for n in 0..2 * iotchat_server::auth::lockout::ADDRESS_BURST {
        initiate(&profile, "carol", PASSWORD)
            .await
            .unwrap_or_else(|e| panic!("sign-in {n}: {e:?}"));
    }
    // All at once too, as a team behind one NAT arriving in the morning (the load generator's
    // storm found that attempts waiting for a hasher counted against the address).
    let mut crowd = tokio::task::JoinSet::new();
    for _ in 0..3 * iotchat_server::auth::lockout::ADDRESS_BURST {
        let profile = profile.clone();
        crowd.spawn(async move { initiate(&profile, "carol", PASSWORD).await });
    }
    while let Some(result) = crowd.join_next().await {
        result.unwrap().unwrap_or_else(|e| panic!("a sign-in of the crowd: {e:?}"));
    }
    server.stop().await.unwrap();
}

/// Reads until the server closes the connection; `None` if it is still open after `within`.
async fn closed_within(stream: &mut TcpStream, within: Duration) -> Option<Vec<u8>> {
    let mut seen = Vec::new();
    let read = tokio::time::timeout(within, stream.read_to_end(&mut seen)).await;
    match read {
        Ok(_) => Some(seen),
        Err(_) => None,
    }
}

fn small_limits() -> Limits {
    Limits {
        max_connections: 3,
        max_handshakes: 2,
        handshake_timeout: Duration::from_secs(1),
        header_read_timeout: Duration::from_secs(1),
        ..Limits::default()
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn slow_headers_and_idle_connections_are_closed() {
    let dir = tempfile::tempdir().unwrap();
    let server = support::start_with(dir.path(), |c| c.limits = small_limits()).await;
    let addr = server.addr();

    let mut slow = TcpStream::connect(addr).await.unwrap();
    slow.write_all(b"GET /profile.json HTTP/1.1\r\nHost: x\r\n").await.unwrap();
    let dripping = async {
        // A header byte every half second would keep it open for ever without a deadline.
        for _ in 0..20 {
            tokio::time::sleep(Duration::from_millis(500)).await;
            if slow.write_all(b"X").await.is_err() {
                break;
            }
        }
    };
    let _ = tokio::time::timeout(Duration::from_secs(3), dripping).await;
    assert!(
        closed_within(&mut slow, Duration::from_secs(3)).await.is_some(),
        "headers that never finish must not hold a connection"
    );

    let mut idle = TcpStream::connect(addr).await.unwrap();
    idle.write_all(b"GET /profile.json HTTP/1.1\r\nHost: x\r\n\r\n").await.unwrap();
    let answered = closed_within(&mut idle, Duration::from_secs(5)).await;
    let answered =
        String::from_utf8_lossy(&answered.expect("an idle keep-alive is closed")).into_owned();
    assert!(answered.starts_with("HTTP/1.1 200"), "the request was served first: {answered}");
    server.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn connections_beyond_the_limit_are_closed_at_once_and_the_rest_still_served() {
    let dir = tempfile::tempdir().unwrap();
    let mut limits = small_limits();
    limits.header_read_timeout = Duration::from_secs(30);
    let server = support::start_with(dir.path(), |c| c.limits = limits).await;
    let addr = server.addr();

    let mut held = Vec::new();
    for _ in 0..3 {
        held.push(TcpStream::connect(addr).await.unwrap());
    }
    let mut extra = TcpStream::connect(addr).await.unwrap();
    assert!(
        closed_within(&mut extra, Duration::from_secs(3)).await.is_some(),
        "a fourth connection is closed while three are held"
    );
    drop(held.pop());
    let http = support::plain_http();
    let url = format!("http://{addr}/profile.json");
    let mut served = false;
    for _ in 0..40 {
        if let Ok(response) = http.get(&url).send().await
            && response.status() == 200
        {
            served = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(served, "a freed place serves the next client");
    server.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn silent_tls_handshakes_are_bounded_in_number_and_time() {
    let dir = tempfile::tempdir().unwrap();
    let server = support::start_with(dir.path(), |c| {
        c.tls = iotchat_server::config::Tls::SelfSigned;
        c.limits = small_limits();
        c.limits.max_connections = 100;
    })
    .await;
    let addr = server.addr();

    let mut silent = Vec::new();
    for _ in 0..2 {
        silent.push(TcpStream::connect(addr).await.unwrap());
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut third = TcpStream::connect(addr).await.unwrap();
    assert!(
        closed_within(&mut third, Duration::from_millis(800)).await.is_some(),
        "a third handshake waits for nobody while two are pending"
    );
    for stream in &mut silent {
        assert!(
            closed_within(stream, Duration::from_secs(3)).await.is_some(),
            "a handshake that never starts is dropped after the timeout"
        );
    }
    let profile = server.profile().clone();
    let http = support::http_client(&profile);
    let url = format!("{}/profile.json", profile.api_url.trim_end_matches("/api"));
    let status = http.get(url).send().await.map(|r| r.status().as_u16());
    assert!(matches!(status, Ok(200)), "TLS clients are served again: {status:?}");
    server.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_subscriber_that_stops_reading_is_dropped_and_the_room_goes_on() {
    use rumqttc::{Event, Packet, QoS};
    let dir = tempfile::tempdir().unwrap();
    let server = support::start_with(dir.path(), |c| {
        c.limits.client_write_timeout = Duration::from_secs(2);
    })
    .await;
    let profile = server.profile().clone();
    let alice = support::signed_in(&profile, "alice").await;
    let bob = support::signed_in(&profile, "bob").await;
    let sam = support::signed_in(&profile, "sam").await;
    let room = serde_json::json!({"roomName": "Busy", "type": "public"});
    support::api(&profile, &alice.credentials, "POST", "/chats", Some(room)).await;
    let subscribed = async |user: &support::Signed, tag: &str, qos: QoS| {
        let (client, mut events) = crate::mqtt::connect(&profile, user, tag).await;
        client.subscribe("room/public/busy/+", qos).await.unwrap();
        crate::mqtt::expect(&mut events, |p| matches!(p, Packet::SubAck(_)).then_some(())).await;
        (client, events)
    };
    // Sam's event loop is not polled from here on: nothing reads what the broker sends him.
    // At QoS 0 no acknowledgement paces the broker: it writes until the socket is full.
    let (_sam_client, mut sam_events) = subscribed(&sam, "stalled", QoS::AtMostOnce).await;
    let (_bob_client, mut bob_events) = subscribed(&bob, "healthy", QoS::AtLeastOnce).await;

    // 80 MB: more than the kernel buffers between the bridge and sam can hold (tcp_rmem's
    // maximum is 32 MB here), so the bridge's writes to him must block.
    const MESSAGES: usize = 800;
    let filler = "x".repeat(100 * 1024);
    let bob_reads = tokio::spawn(async move {
        let mut got = 0;
        while got < MESSAGES {
            match tokio::time::timeout(Duration::from_secs(20), bob_events.poll()).await {
                Ok(Ok(Event::Incoming(Packet::Publish(_)))) => got += 1,
                Ok(Ok(_)) => {}
                other => panic!("bob's connection failed after {got} messages: {other:?}"),
            }
        }
        got
    });
    let (alice_client, mut alice_events) = crate::mqtt::connect(&profile, &alice, "a").await;
    let topic = format!("room/public/busy/{}", alice.identity_id);
    for n in 0..MESSAGES {
        let payload = serde_json::json!({"message": format!("{n} {filler}")}).to_string();
        alice_client.publish(&topic, QoS::AtLeastOnce, false, payload).await.unwrap();
        crate::mqtt::puback_or_disconnect(&mut alice_events).await.expect("alice keeps going");
    }
    assert_eq!(
        tokio::time::timeout(Duration::from_secs(30), bob_reads).await.unwrap().unwrap(),
        MESSAGES,
        "a subscriber that stalls does not stall the room for others"
    );
    let mut sam_got = 0;
    let dropped = tokio::time::timeout(Duration::from_secs(30), async {
        loop {
            match sam_events.poll().await {
                Ok(Event::Incoming(Packet::Publish(_))) => sam_got += 1,
                Ok(_) => {}
                Err(_) => return,
            }
        }
    })
    .await;
    assert!(dropped.is_ok(), "the stalled subscriber's connection was closed by the server");
    assert!(sam_got < MESSAGES, "it was dropped before it had everything ({sam_got})");
    server.stop().await.unwrap();
}
