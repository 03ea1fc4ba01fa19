//! The server as a process: killed with SIGKILL during a burst of publishes, restarted on the
//! same data directory. Every message the broker acknowledged must be in history, once.

use std::time::Duration;

use rumqttc::{Event, Packet, QoS};
use serde_json::json;

use crate::mqtt::connect;
use crate::support::{api, free_port, signed_in, spawn};

#[tokio::test(flavor = "multi_thread")]
async fn kill_9_during_a_burst_loses_no_acknowledged_message() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let (mut server, profile) = spawn(dir.path(), port).await;
    let alice = signed_in(&profile, "alice").await;
    let room = json!({"roomName": "Burst", "type": "public"});
    assert_eq!(api(&profile, &alice.credentials, "POST", "/chats", Some(room)).await.0, 201);
    let (mqtt, mut events) = connect(&profile, &alice, "burst").await;
    let topic = format!("room/public/burst/{}", alice.identity_id);

    // Publish one at a time and record each acknowledgement; kill the server mid-burst.
    let mut acknowledged = Vec::new();
    for n in 0..400u32 {
        let id = format!("burst-{n}");
        let payload = json!({"message": format!("message {n}"), "id": id, "sentAt": n});
        if mqtt.publish(&topic, QoS::AtLeastOnce, false, payload.to_string()).await.is_err() {
            break;
        }
        let acked = tokio::time::timeout(Duration::from_secs(5), async {
            loop {
                match events.poll().await {
                    Ok(Event::Incoming(Packet::PubAck(_))) => return true,
                    Ok(_) => {}
                    Err(_) => return false,
                }
            }
        })
        .await
        .unwrap_or(false);
        if !acked {
            break;
        }
        acknowledged.push(id);
        if acknowledged.len() == 60 {
            server.child.kill().expect("SIGKILL");
        }
    }
    assert!(acknowledged.len() >= 60, "the burst got going: {} acks", acknowledged.len());
    assert!(acknowledged.len() < 400, "the kill interrupted the burst");
    drop(server);

    let (_server, profile) = spawn(dir.path(), port).await;
    let mut stored = Vec::new();
    let mut before = None::<String>;
    loop {
        let query = match &before {
            Some(cursor) => format!("/chats/messages?room=burst&limit=100&before={cursor}"),
            None => "/chats/messages?room=burst&limit=100".to_owned(),
        };
        let relogin = crate::support::logged_in(&profile, "alice").await;
        assert_eq!(relogin.identity_id, alice.identity_id, "the same identity after a restart");
        let (status, page) = api(&profile, &relogin.credentials, "GET", &query, None).await;
        assert_eq!(status, 200, "{page}");
        for message in page["messages"].as_array().unwrap() {
            stored.push(message["id"].as_str().unwrap().to_owned());
        }
        match page["nextBefore"].as_str() {
            Some(cursor) => before = Some(cursor.to_owned()),
            None => break,
        }
    }
    for id in &acknowledged {
        let copies = stored.iter().filter(|s| *s == id).count();
        assert_eq!(copies, 1, "{id} was acknowledged, so it is stored exactly once");
    }
}
