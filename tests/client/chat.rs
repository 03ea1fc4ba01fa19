//! Two people chat; unread counts follow DESIGN.md's rule.

use std::time::Duration;

use iotchat_client::{Delivery, Event};

use crate::support::{Device, TestServer, room};

#[tokio::test(flavor = "multi_thread")]
async fn two_users_create_join_and_chat_both_ways_with_names() {
    let server = TestServer::start().await;
    let mut alice = Device::signed_up(&server, "alice").await;
    let mut bob = Device::signed_up(&server, "bob").await;

    let created = alice.client.room_create("Über Café 2020").await.expect("create");
    let cafe = room("uber-cafe-2020");
    assert_eq!(created.name, cafe);
    let rooms = bob.client.rooms().await.expect("rooms");
    let listed = rooms.iter().find(|r| r.room.name == cafe).expect("bob sees the room");
    assert!(!listed.followed, "bob does not follow it yet");
    bob.client.room_join(&cafe).await.expect("join");
    assert!(bob.client.rooms().await.unwrap().iter().any(|r| r.room.name == cafe && r.followed));

    let sent = alice.client.message_send(&cafe, "Grüß dich, <b>Bob</b>!").await.expect("send");
    assert_eq!(sent.delivery, Delivery::Pending, "shown at once, as pending");
    alice
        .expect(|e| match e {
            Event::Delivery { id, delivery: Delivery::Delivered, .. } if *id == sent.id => Some(()),
            _ => None,
        })
        .await;
    let got = bob.messages(&cafe, 1).await;
    assert_eq!((got[0].author.as_str(), got[0].text.as_str()), ("alice", "Grüß dich, <b>Bob</b>!"));
    assert_eq!(got[0].id, sent.id, "the sender's id travels with the message");

    bob.client.message_send(&cafe, "Hallo Alice").await.expect("reply");
    let got = alice.messages(&cafe, 1).await;
    assert_eq!((got[0].author.as_str(), got[0].text.as_str()), ("bob", "Hallo Alice"));

    let history = bob.client.history(&cafe, None, 10).await.expect("history");
    let texts: Vec<&str> = history.messages.iter().map(|m| m.text.as_str()).collect();
    assert_eq!(texts, ["Hallo Alice", "Grüß dich, <b>Bob</b>!"], "newest first");
    assert_eq!(history.messages[0].author, "bob");
    assert!(history.messages[0].own, "bob's own message is marked as his");
}

#[tokio::test(flavor = "multi_thread")]
async fn unread_counts_up_away_from_the_room_resets_on_open_and_survives_a_restart() {
    let server = TestServer::start().await;
    let mut alice = Device::signed_up(&server, "alice").await;
    let bob = Device::signed_up(&server, "bob").await;
    let (general, random) = (room("general"), room("random"));
    for name in ["General", "Random"] {
        alice.client.room_create(name).await.expect("create");
    }
    for r in [&general, &random] {
        bob.client.room_join(r).await.expect("join");
    }
    alice.client.room_open(Some(general.clone())).await.expect("open general");

    for text in ["one", "two"] {
        bob.client.message_send(&random, text).await.expect("send");
    }
    bob.client.message_send(&general, "on screen").await.expect("send");
    alice.messages(&random, 2).await;
    let unread = alice
        .expect(|e| match e {
            Event::Unread { room, count: 2, total } if *room == random => Some(*total),
            _ => None,
        })
        .await;
    assert_eq!(unread, 2, "the total is the sum over followed rooms");
    alice.messages(&general, 1).await;
    let followed = alice.client.followed().await.unwrap();
    let count = |r| followed.iter().find(|f| &f.name == r).map(|f| f.unread);
    assert_eq!((count(&general), count(&random)), (Some(0), Some(2)), "the open room stays read");

    // Own messages never count.
    alice.client.message_send(&random, "mine").await.expect("send");
    alice
        .expect_none(Duration::from_millis(500), |e| matches!(e, Event::Unread { count: 3, .. }))
        .await;

    alice.restart().await;
    alice.client.restore().await.expect("restore").expect("still signed in");
    let followed = alice.client.followed().await.unwrap();
    assert_eq!(
        followed.iter().find(|f| f.name == random).map(|f| f.unread),
        Some(2),
        "counts survive a restart"
    );
    alice.client.room_open(Some(random.clone())).await.unwrap();
    let followed = alice.client.followed().await.unwrap();
    assert!(followed.iter().all(|f| f.unread == 0), "opening the room reads it");
    drop(bob);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_team_server_over_tls_is_reached_through_its_profile_alone() {
    let server = TestServer::start_tls().await;
    let profile = server.profile();
    assert!(profile.iot_endpoint.starts_with("wss://"), "{}", profile.iot_endpoint);
    let port = url_port(&profile.api_url);
    // A client that knows only the address and the CA the operator handed out.
    let ca = profile.ca_certificate.clone().expect("a self-signed server's profile has its CA");
    let fetched = iotchat_client::Backend::fetch(&format!("https://127.0.0.1:{port}"), Some(&ca))
        .await
        .expect("the profile is fetched over HTTPS");
    assert_eq!(fetched.profile, profile);
    let untrusting =
        iotchat_client::Backend::fetch(&format!("https://127.0.0.1:{port}"), None).await;
    let error = untrusting.expect_err("an unknown CA is not trusted");
    assert_eq!(error.code, iotchat_client::protocol::Code::Unavailable, "{error:?}");

    let alice = Device::signed_up(&server, "alice").await;
    let mut bob = Device::signed_up(&server, "bob").await;
    let general = room("general");
    alice.client.room_create("General").await.expect("create over HTTPS");
    bob.client.room_join(&general).await.expect("join");
    alice.client.message_send(&general, "over wss").await.expect("send");
    assert_eq!(bob.messages(&general, 1).await[0].text, "over wss");
    let users = bob.client.users().await.expect("users");
    assert!(users.iter().any(|u| u.username == "alice"), "{users:?}");
    assert_eq!(bob.client.me().await.expect("me").username, "bob");
}

fn url_port(url: &str) -> u16 {
    let authority = url.split("://").nth(1).and_then(|rest| rest.split('/').next()).unwrap_or("");
    authority.rsplit(':').next().and_then(|p| p.parse().ok()).expect("a port")
}
