//! The embedded broker through presigned WebSocket URLs, with rumqttc as the client.

use std::time::Duration;

use rumqttc::{
    AsyncClient, Event, EventLoop, MqttOptions, Packet, QoS, SubscribeReasonCode, Transport,
};
use serde_json::json;

use crate::support::{self, Signed, api, presigned_mqtt_url, presigned_mqtt_url_at, signed_in};

/// How long a test waits for one MQTT event.
const WAIT: Duration = Duration::from_secs(10);

pub(crate) async fn connect(
    profile: &iotchat_server::profile::Profile,
    user: &Signed,
    tag: &str,
) -> (AsyncClient, EventLoop) {
    connect_with(profile, user, tag, Duration::from_secs(30)).await
}

/// [`connect`] with a chosen keepalive, over `wss://` when the profile says so.
pub(crate) async fn connect_with(
    profile: &iotchat_server::profile::Profile,
    user: &Signed,
    tag: &str,
    keep_alive: Duration,
) -> (AsyncClient, EventLoop) {
    let (status, body) = api(profile, &user.credentials, "POST", "/policy/attach", None).await;
    assert_eq!(status, 200, "{body}");
    let url = presigned_mqtt_url(profile, &user.credentials);
    let mut options = MqttOptions::new(format!("{}-{tag}", user.identity_id), url, 443);
    match support::rustls_config(profile) {
        Some(tls) => options
            .set_transport(Transport::wss_with_config(rumqttc::TlsConfiguration::Rustls(tls))),
        None => options.set_transport(Transport::Ws),
    };
    options.set_keep_alive(keep_alive);
    options.set_max_packet_size(128 * 1024 + 1024, 128 * 1024 + 1024);
    let (client, mut events) = AsyncClient::new(options, 16);
    match tokio::time::timeout(WAIT, next_packet(&mut events)).await {
        Ok(Ok(Packet::ConnAck(ack))) => assert_eq!(ack.code, rumqttc::ConnectReturnCode::Success),
        other => panic!("expected a CONNACK, got {other:?}"),
    }
    (client, events)
}

pub(crate) async fn next_packet(
    events: &mut EventLoop,
) -> Result<Packet, rumqttc::ConnectionError> {
    loop {
        if let Event::Incoming(packet) = events.poll().await? {
            return Ok(packet);
        }
    }
}

/// Waits for the broker's answer to a QoS 1 publish: `Ok` for a PUBACK, `Err` if the
/// connection was closed instead.
pub(crate) async fn puback_or_disconnect(
    events: &mut EventLoop,
) -> Result<(), rumqttc::ConnectionError> {
    let answer = async {
        loop {
            match events.poll().await {
                Err(error) => return Err(error),
                Ok(Event::Incoming(Packet::PubAck(_))) => return Ok(()),
                Ok(_) => {}
            }
        }
    };
    tokio::time::timeout(WAIT, answer).await.expect("the broker reacts in time")
}

/// Polls until a packet matching `want` arrives (other packets are skipped).
pub(crate) async fn expect<T>(
    events: &mut EventLoop,
    mut want: impl FnMut(Packet) -> Option<T>,
) -> T {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let packet = tokio::time::timeout_at(deadline, next_packet(events))
            .await
            .expect("the expected packet arrives in time")
            .expect("the connection stays up");
        if let Some(found) = want(packet) {
            return found;
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn two_clients_chat_through_presigned_urls_and_history_keeps_it() {
    let dir = tempfile::tempdir().unwrap();
    let server = support::start(dir.path()).await;
    let profile = server.profile().clone();
    let alice = signed_in(&profile, "alice").await;
    let bob = signed_in(&profile, "bob").await;
    api(
        &profile,
        &alice.credentials,
        "POST",
        "/chats",
        Some(json!({"roomName": "General", "type": "public"})),
    )
    .await;

    let (alice_mqtt, mut alice_events) = connect(&profile, &alice, "a").await;
    let (bob_mqtt, mut bob_events) = connect(&profile, &bob, "b").await;
    bob_mqtt.subscribe("room/public/general/+", QoS::AtLeastOnce).await.unwrap();
    let granted = expect(&mut bob_events, |p| match p {
        Packet::SubAck(ack) => Some(ack.return_codes),
        _ => None,
    })
    .await;
    assert_eq!(granted, [SubscribeReasonCode::Success(QoS::AtLeastOnce)]);

    let topic = format!("room/public/general/{}", alice.identity_id);
    let payload = json!({"message": "hello <b>bob</b>", "id": "0b7e4c1a-1111-4222-8333-944455556666", "sentAt": 1_700_000_000_000u64});
    alice_mqtt.publish(&topic, QoS::AtLeastOnce, false, payload.to_string()).await.unwrap();
    expect(&mut alice_events, |p| matches!(p, Packet::PubAck(_)).then_some(())).await;

    let received = expect(&mut bob_events, |p| match p {
        Packet::Publish(publish) => Some(publish),
        _ => None,
    })
    .await;
    assert_eq!(received.topic, topic, "the topic names the sender");
    let body: serde_json::Value = serde_json::from_slice(&received.payload).unwrap();
    assert_eq!(body, payload);

    let (status, page) =
        api(&profile, &bob.credentials, "GET", "/chats/messages?room=general", None).await;
    assert_eq!(status, 200, "{page}");
    let messages = page["messages"].as_array().unwrap();
    assert_eq!(messages.len(), 1, "stored once, before the PUBACK: {page}");
    assert_eq!(messages[0]["message"], "hello <b>bob</b>");
    assert_eq!(messages[0]["sender"], alice.identity_id.as_str());
    assert_eq!(messages[0]["id"], "0b7e4c1a-1111-4222-8333-944455556666");
    server.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_spoofed_publish_disconnects_and_delivers_and_stores_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let server = support::start(dir.path()).await;
    let profile = server.profile().clone();
    let mallory = signed_in(&profile, "mallory").await;
    let bob = signed_in(&profile, "bob").await;
    api(
        &profile,
        &bob.credentials,
        "POST",
        "/chats",
        Some(json!({"roomName": "General", "type": "public"})),
    )
    .await;

    let (bob_mqtt, mut bob_events) = connect(&profile, &bob, "b").await;
    bob_mqtt.subscribe("room/public/general/+", QoS::AtLeastOnce).await.unwrap();
    expect(&mut bob_events, |p| matches!(p, Packet::SubAck(_)).then_some(())).await;

    let (mallory_mqtt, mut mallory_events) = connect(&profile, &mallory, "m").await;
    let as_bob = format!("room/public/general/{}", bob.identity_id);
    mallory_mqtt
        .publish(&as_bob, QoS::AtLeastOnce, false, json!({"message": "I am bob"}).to_string())
        .await
        .unwrap();
    let outcome = puback_or_disconnect(&mut mallory_events).await;
    assert!(outcome.is_err(), "no PUBACK: the connection is closed, as AWS IoT does");

    let nothing =
        tokio::time::timeout(Duration::from_millis(500), next_packet(&mut bob_events)).await;
    assert!(!matches!(nothing, Ok(Ok(Packet::Publish(_)))), "nothing was delivered: {nothing:?}");
    let (_, page) =
        api(&profile, &bob.credentials, "GET", "/chats/messages?room=general", None).await;
    assert_eq!(page["messages"], json!([]), "nothing was stored");
    server.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn subscriptions_outside_public_rooms_get_0x80() {
    let dir = tempfile::tempdir().unwrap();
    let server = support::start(dir.path()).await;
    let profile = server.profile().clone();
    let carol = signed_in(&profile, "carol").await;
    let (mqtt, mut events) = connect(&profile, &carol, "c").await;
    for filter in ["#", "room/private/#", "room/+/x/+"] {
        mqtt.subscribe(filter, QoS::AtLeastOnce).await.unwrap();
        let codes = expect(&mut events, |p| match p {
            Packet::SubAck(ack) => Some(ack.return_codes),
            _ => None,
        })
        .await;
        assert_eq!(codes, [SubscribeReasonCode::Failure], "{filter} is refused");
    }
    mqtt.subscribe("room/public/anything/+", QoS::AtLeastOnce).await.unwrap();
    let codes = expect(&mut events, |p| match p {
        Packet::SubAck(ack) => Some(ack.return_codes),
        _ => None,
    })
    .await;
    assert_eq!(codes, [SubscribeReasonCode::Success(QoS::AtLeastOnce)], "the connection stayed up");
    server.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_presigned_urls_are_refused_at_the_upgrade() {
    let dir = tempfile::tempdir().unwrap();
    let server = support::start(dir.path()).await;
    let profile = server.profile().clone();
    let dave = signed_in(&profile, "dave").await;
    api(&profile, &dave.credentials, "POST", "/policy/attach", None).await;
    let good = presigned_mqtt_url(&profile, &dave.credentials);
    let http_url = good.replacen("ws://", "http://", 1);

    let mut flipped = good.clone();
    let at = flipped.find("X-Amz-Signature=").unwrap() + "X-Amz-Signature=".len();
    let digit = if &flipped[at..=at] == "0" { "1" } else { "0" };
    flipped.replace_range(at..=at, digit);
    let wrong_token = {
        let at = good.find("X-Amz-Security-Token=").unwrap();
        format!("{}X-Amz-Security-Token=forged", &good[..at])
    };
    let missing = good.replace("X-Amz-Date=", "X-Amz-Nope=");
    let twenty_minutes_ago = std::time::SystemTime::now() - Duration::from_secs(20 * 60);
    let stale = presigned_mqtt_url_at(&profile, &dave.credentials, twenty_minutes_ago);
    let cases = [
        ("bad signature", flipped.replacen("ws://", "http://", 1)),
        ("wrong token", wrong_token.replacen("ws://", "http://", 1)),
        ("missing date", missing.replacen("ws://", "http://", 1)),
        ("expired", stale.replacen("ws://", "http://", 1)),
        ("unsigned", profile.iot_endpoint.replacen("ws://", "http://", 1)),
    ];
    let http = support::plain_http();
    let upgrade = |url: String| {
        http.get(url)
            .header("connection", "upgrade")
            .header("upgrade", "websocket")
            .header("sec-websocket-version", "13")
            .header("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ==")
            .header("sec-websocket-protocol", "mqtt")
            .send()
    };
    for (what, url) in cases {
        let status = upgrade(url).await.unwrap().status().as_u16();
        assert_eq!(status, 403, "{what}");
    }
    let token_signed = support::presigned_mqtt_url_signing_the_token(&profile, &dave.credentials);
    let response = upgrade(token_signed.replacen("ws://", "http://", 1)).await.unwrap();
    assert_eq!(response.status().as_u16(), 101, "a URL whose signature covers the token too");
    let response = upgrade(http_url).await.unwrap();
    assert_eq!(response.status().as_u16(), 101, "the good URL upgrades");
    assert_eq!(response.headers()["sec-websocket-protocol"], "mqtt", "the subprotocol is echoed");
    server.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn payloads_over_128_kb_disconnect_and_are_not_stored() {
    let dir = tempfile::tempdir().unwrap();
    let server = support::start(dir.path()).await;
    let profile = server.profile().clone();
    let erin = signed_in(&profile, "erin").await;
    let room = json!({"roomName": "General", "type": "public"});
    api(&profile, &erin.credentials, "POST", "/chats", Some(room)).await;
    let (mqtt, mut events) = connect(&profile, &erin, "e").await;
    let topic = format!("room/public/general/{}", erin.identity_id);

    let text = "x".repeat(128 * 1024);
    let payload = json!({"message": text, "id": "too-big"}).to_string();
    assert!(payload.len() > 128 * 1024);
    mqtt.publish(&topic, QoS::AtLeastOnce, false, payload).await.unwrap();
    let outcome = puback_or_disconnect(&mut events).await;
    assert!(outcome.is_err(), "an oversize payload is not acknowledged");
    let (_, page) =
        api(&profile, &erin.credentials, "GET", "/chats/messages?room=general", None).await;
    assert_eq!(page["messages"], json!([]), "nothing was stored");
    server.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_second_connection_with_the_same_client_id_takes_over() {
    let dir = tempfile::tempdir().unwrap();
    let server = support::start(dir.path()).await;
    let profile = server.profile().clone();
    let frank = signed_in(&profile, "frank").await;
    let (_first, mut first_events) = connect(&profile, &frank, "same").await;
    let (second, mut second_events) = connect(&profile, &frank, "same").await;

    let first_closed = tokio::time::timeout(WAIT, async {
        loop {
            if first_events.poll().await.is_err() {
                return;
            }
        }
    })
    .await;
    assert!(first_closed.is_ok(), "the first connection is closed by the takeover");
    second.subscribe("room/public/general/+", QoS::AtLeastOnce).await.unwrap();
    expect(&mut second_events, |p| matches!(p, Packet::SubAck(_)).then_some(())).await;
    server.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_connection_holds_at_most_50_subscriptions() {
    let dir = tempfile::tempdir().unwrap();
    let server = support::start(dir.path()).await;
    let profile = server.profile().clone();
    let gina = signed_in(&profile, "gina").await;
    let (mqtt, mut events) = connect(&profile, &gina, "g").await;
    for n in 0..51 {
        mqtt.subscribe(format!("room/public/room-{n}/+"), QoS::AtLeastOnce).await.unwrap();
        let codes = expect(&mut events, |p| match p {
            Packet::SubAck(ack) => Some(ack.return_codes),
            _ => None,
        })
        .await;
        let expected = if n < 50 {
            SubscribeReasonCode::Success(QoS::AtLeastOnce)
        } else {
            SubscribeReasonCode::Failure
        };
        assert_eq!(codes, [expected], "subscription {}", n + 1);
    }
    mqtt.unsubscribe("room/public/room-0/+").await.unwrap();
    expect(&mut events, |p| matches!(p, Packet::UnsubAck(_)).then_some(())).await;
    mqtt.subscribe("room/public/room-50/+", QoS::AtLeastOnce).await.unwrap();
    let codes = expect(&mut events, |p| match p {
        Packet::SubAck(ack) => Some(ack.return_codes),
        _ => None,
    })
    .await;
    assert_eq!(codes, [SubscribeReasonCode::Success(QoS::AtLeastOnce)], "leaving frees a slot");
    server.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn keepalives_outside_aws_bounds_are_adjusted_not_refused() {
    let dir = tempfile::tempdir().unwrap();
    let server = support::start(dir.path()).await;
    let profile = server.profile().clone();
    let hana = signed_in(&profile, "hana").await;
    // AWS IoT accepts 30–1200 s and adjusts anything else; a plain rmqtt refuses MQTT 3 clients
    // outside its bounds, which would lock out clients that merely ping often.
    for (tag, secs) in [("short", 5), ("never", 0), ("long", 4000)] {
        let (mqtt, mut events) =
            connect_with(&profile, &hana, tag, Duration::from_secs(secs)).await;
        mqtt.subscribe("room/public/general/+", QoS::AtLeastOnce).await.unwrap();
        expect(&mut events, |p| matches!(p, Packet::SubAck(_)).then_some(())).await;
        mqtt.disconnect().await.unwrap();
    }
    server.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_fast_publisher_is_slowed_to_100_per_second_and_loses_nothing() {
    const COUNT: usize = 250;
    let dir = tempfile::tempdir().unwrap();
    let server = support::start(dir.path()).await;
    let profile = server.profile().clone();
    let ivan = signed_in(&profile, "ivan").await;
    let room = json!({"roomName": "Flood", "type": "public"});
    api(&profile, &ivan.credentials, "POST", "/chats", Some(room)).await;
    let (mqtt, mut events) = connect(&profile, &ivan, "i").await;
    let topic = format!("room/public/flood/{}", ivan.identity_id);

    let started = tokio::time::Instant::now();
    let publisher = tokio::spawn(async move {
        for n in 0..COUNT {
            let payload = json!({"message": format!("flood {n}")}).to_string();
            mqtt.publish(&topic, QoS::AtLeastOnce, false, payload).await.unwrap();
        }
        mqtt
    });
    let mut acks = 0;
    while acks < COUNT {
        let answer = tokio::time::timeout(WAIT, puback_or_disconnect(&mut events)).await;
        answer.expect("acks keep coming").expect("the connection stays up");
        acks += 1;
    }
    let elapsed = started.elapsed();
    let _mqtt = publisher.await.unwrap();
    // The first 100 are a burst; the other 150 come at 100/s: at least 1.5 s in all. A lower
    // bound, so a slow machine cannot fail it.
    assert!(elapsed >= Duration::from_millis(1400), "{COUNT} publishes acked in {elapsed:?}");

    let mut stored = 0;
    let mut before: Option<String> = None;
    loop {
        let cursor = before.as_ref().map(|b| format!("&before={b}")).unwrap_or_default();
        let path = format!("/chats/messages?room=flood&limit=200{cursor}");
        let (status, page) = api(&profile, &ivan.credentials, "GET", &path, None).await;
        assert_eq!(status, 200, "{page}");
        stored += page["messages"].as_array().unwrap().len();
        match page["nextBefore"].as_str() {
            Some(next) => before = Some(next.to_owned()),
            None => break,
        }
    }
    assert_eq!(stored, COUNT, "every acknowledged publish is in history");
    server.stop().await.unwrap();
}
