//! Outages and expiry: the outbox, reconnection with catch-up, credential renewal.

use std::time::Duration;

use iotchat_client::{ConnectionState, Delivery, Event};

use crate::support::{Device, TestServer, room};

#[tokio::test(flavor = "multi_thread")]
async fn messages_sent_while_the_server_is_down_are_delivered_once_in_order() {
    let mut server = TestServer::start().await;
    let mut alice = Device::signed_up(&server, "alice").await;
    let mut bob = Device::signed_up(&server, "bob").await;
    let general = room("general");
    alice.client.room_create("General").await.expect("create");
    bob.client.room_join(&general).await.expect("join");

    server.stop().await;
    alice
        .expect(|e| {
            matches!(e, Event::Connection { connection: ConnectionState::Reconnecting { .. } })
                .then_some(())
        })
        .await;
    let mut ids = Vec::new();
    for n in 1..=5 {
        let message =
            alice.client.message_send(&general, &format!("offline {n}")).await.expect("queued");
        assert_eq!(message.delivery, Delivery::Pending);
        ids.push(message.id);
    }
    let pending = alice.client.outbox(Some(&general)).await.unwrap();
    assert_eq!(pending.len(), 5, "shown as pending while offline");

    server.restart().await;
    let mut delivered = Vec::new();
    while delivered.len() < 5 {
        let id = alice
            .expect(|e| match e {
                Event::Delivery { id, delivery: Delivery::Delivered, .. } => Some(id.clone()),
                _ => None,
            })
            .await;
        delivered.push(id);
    }
    assert_eq!(delivered, ids, "delivered in the order written");
    assert!(alice.client.outbox(None).await.unwrap().is_empty(), "the outbox is empty");

    let seen = bob.messages(&general, 5).await;
    let texts: Vec<String> = seen.iter().map(|m| m.text.clone()).collect();
    assert_eq!(texts, ["offline 1", "offline 2", "offline 3", "offline 4", "offline 5"]);
    bob.expect_none(Duration::from_secs(1), |e| matches!(e, Event::Message { .. })).await;
    let history = bob.client.history(&general, None, 50).await.unwrap();
    assert_eq!(history.messages.len(), 5, "stored once each");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_server_restart_mid_burst_loses_and_duplicates_nothing() {
    const COUNT: usize = 60;
    let mut server = TestServer::start().await;
    let alice = Device::signed_up(&server, "alice").await;
    let mut bob = Device::signed_up(&server, "bob").await;
    let general = room("general");
    alice.client.room_create("General").await.expect("create");
    bob.client.room_join(&general).await.expect("join");

    for n in 0..COUNT {
        alice.client.message_send(&general, &format!("burst {n}")).await.expect("queued");
        if n == COUNT / 3 {
            server.stop().await;
        }
        if n == 2 * COUNT / 3 {
            server.restart().await;
        }
    }
    // Bob reconnects by himself, resubscribes and catches up from history.
    bob.receive_each_once(&general, COUNT).await;
    // Bob can read the last messages from history before Alice's PUBACK for them arrives.
    alice.outbox_drains().await;
    let all = bob.whole_history(&general).await;
    assert_eq!(all.len(), COUNT, "history holds each message exactly once");
}

#[tokio::test(flavor = "multi_thread")]
async fn credentials_that_expire_in_seconds_are_renewed_and_the_link_keeps_working() {
    let mut server = TestServer::start_with_ttl(Some(3)).await;
    let alice = Device::signed_up(&server, "alice").await;
    let mut bob = Device::signed_up(&server, "bob").await;
    let general = room("general");
    alice.client.room_create("General").await.expect("create");
    bob.client.room_join(&general).await.expect("join");

    tokio::time::sleep(Duration::from_secs(4)).await;
    // The API needs fresh credentials now...
    alice.client.rooms().await.expect("the API works with renewed credentials");
    // ...and so does a reconnect: the old presigned credentials would be refused.
    server.restart().await;
    alice.online().await;
    bob.online().await;
    alice.client.message_send(&general, "still here").await.expect("send");
    let got = bob.messages(&general, 1).await;
    assert_eq!(got[0].text, "still here");
}
