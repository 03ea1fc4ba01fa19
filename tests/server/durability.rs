//! The server as a process: killed with SIGKILL during a burst of publishes, restarted on the
//! same data directory; and with its disk full. Every message the broker acknowledged must be
//! in history, once, and a message it could not store is neither acknowledged nor delivered.

use std::time::Duration;

use rumqttc::{Event, Packet, QoS};
use serde_json::json;

use crate::mqtt::connect;
use crate::support::{api, free_port, signed_in, spawn, spawn_logging};

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

/// A small tmpfs of its own, unmounted when dropped. Mounting needs root (CI runs as root).
struct SmallDisk {
    dir: tempfile::TempDir,
}

impl SmallDisk {
    fn mount(megabytes: u32) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let status = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={megabytes}m,mode=700"), "tmpfs"])
            .arg(dir.path())
            .status()
            .expect("mount runs");
        assert!(
            status.success(),
            "mounting a {megabytes} MB tmpfs failed: this test fills a disk of its own, which \
             needs root (CI runs as root)"
        );
        Self { dir }
    }

    fn path(&self) -> &std::path::Path {
        self.dir.path()
    }

    /// Writes a file until the disk has no room left.
    fn fill(&self) -> std::path::PathBuf {
        use std::io::Write as _;
        let path = self.path().join("filler");
        let mut file = std::fs::File::create(&path).expect("filler");
        let block = vec![0u8; 64 * 1024];
        while file.write_all(&block).is_ok() {}
        // Whatever partial block is left, too.
        while file.write_all(&block[..512]).is_ok() {}
        path
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg("-l").arg(self.dir.path()).status();
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_full_disk_refuses_publishes_without_an_ack_and_loses_nothing() {
    let disk = SmallDisk::mount(16);
    let logs = tempfile::tempdir().expect("temp dir");
    let log_path = logs.path().join("server.log");
    let log = std::fs::File::create(&log_path).expect("log file");
    let port = free_port();
    let data = disk.path().join("data");
    let (server, profile) = spawn_logging(&data, port, "info", log.into()).await;
    let alice = signed_in(&profile, "alice").await;
    let bob = signed_in(&profile, "bob").await;
    let room = json!({"roomName": "Disk", "type": "public"});
    assert_eq!(api(&profile, &alice.credentials, "POST", "/chats", Some(room)).await.0, 201);
    let (bob_mqtt, mut bob_events) = connect(&profile, &bob, "reader").await;
    bob_mqtt.subscribe("room/public/disk/+", QoS::AtLeastOnce).await.expect("subscribe");
    crate::mqtt::expect(&mut bob_events, |p| matches!(p, Packet::SubAck(_)).then_some(())).await;
    // Bob reads until a second passes quietly after the test is done (a minute at most).
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let finished = std::sync::Arc::clone(&done);
    let bob_reads = tokio::spawn(async move {
        let mut ids = Vec::new();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        while tokio::time::Instant::now() < deadline {
            let event = match tokio::time::timeout(Duration::from_secs(1), bob_events.poll()).await
            {
                Err(_) if finished.load(std::sync::atomic::Ordering::Relaxed) => break,
                Err(_) => continue,
                Ok(event) => event.expect("bob stays connected"),
            };
            if let Event::Incoming(Packet::Publish(publish)) = event {
                let payload: serde_json::Value =
                    serde_json::from_slice(&publish.payload).expect("JSON");
                ids.push(payload["id"].as_str().expect("an id").to_owned());
            }
        }
        ids
    });
    let topic = format!("room/public/disk/{}", alice.identity_id);
    let big = "x".repeat(100 * 1024);
    let message =
        |n: u32| json!({"message": format!("{n} {big}"), "id": format!("disk-{n}"), "sentAt": n});

    // While there is room, messages are stored and acknowledged.
    let (mqtt, mut events) = connect(&profile, &alice, "writer").await;
    mqtt.publish(&topic, QoS::AtLeastOnce, false, message(0).to_string()).await.expect("queue");
    crate::mqtt::puback_or_disconnect(&mut events).await.expect("stored while there is room");

    // Full: the next messages that need new room in the database are refused, never
    // acknowledged, and the client is disconnected (as for any publish the broker refuses).
    let filler = disk.fill();
    let mut acknowledged = vec!["disk-0".to_owned()];
    let mut refused = None;
    for n in 1..40 {
        mqtt.publish(&topic, QoS::AtLeastOnce, false, message(n).to_string()).await.expect("queue");
        match crate::mqtt::puback_or_disconnect(&mut events).await {
            Ok(()) => acknowledged.push(format!("disk-{n}")),
            Err(_) => {
                refused = Some(n);
                break;
            }
        }
    }
    let refused = refused.expect("a publish onto a full disk is refused");
    drop((mqtt, events));
    let text = std::fs::read_to_string(&log_path).expect("the log");
    assert!(
        text.contains("could not store a message") && text.contains("full"),
        "the log says what happened:\n{text}"
    );

    // Room again: the same message, sent again, is stored and acknowledged once.
    std::fs::remove_file(filler).expect("free the disk");
    let (mqtt, mut events) = connect(&profile, &alice, "writer").await;
    mqtt.publish(&topic, QoS::AtLeastOnce, false, message(refused).to_string())
        .await
        .expect("queue");
    crate::mqtt::puback_or_disconnect(&mut events).await.expect("stored once there is room");
    acknowledged.push(format!("disk-{refused}"));

    done.store(true, std::sync::atomic::Ordering::Relaxed);
    let delivered = bob_reads.await.expect("bob's reader");
    assert_eq!(delivered, acknowledged, "bob got what was stored, once each, and nothing else");
    let (status, page) =
        api(&profile, &alice.credentials, "GET", "/chats/messages?room=disk&limit=100", None).await;
    assert_eq!(status, 200, "{page}");
    let mut stored: Vec<String> = page["messages"]
        .as_array()
        .expect("messages")
        .iter()
        .map(|m| m["id"].as_str().expect("an id").to_owned())
        .collect();
    stored.sort();
    acknowledged.sort();
    assert_eq!(stored, acknowledged, "history holds exactly the acknowledged messages");
    drop(server);
}
