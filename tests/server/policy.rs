//! Who the broker believes is connected, and the AWS IoT policy's edge cases: a process on this
//! machine dialling the broker's internal listener, borrowed client ids, last wills, retained
//! and QoS 2 messages, and filters outside the rules.

use std::time::Duration;

use rumqttc::{
    AsyncClient, ConnectReturnCode, ConnectionError, EventLoop, LastWill, MqttOptions, Packet, QoS,
    SubscribeReasonCode, Transport,
};
use serde_json::json;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

use crate::mqtt::{connect, expect, next_packet, puback_or_disconnect};
use crate::support::{self, Signed, api, presigned_mqtt_url, signed_in};

/// Options as the app builds them, with the client id and will chosen by the test.
async fn options(
    profile: &iotchat_server::profile::Profile,
    user: &Signed,
    client_id: &str,
    will: Option<LastWill>,
) -> MqttOptions {
    let (status, body) = api(profile, &user.credentials, "POST", "/policy/attach", None).await;
    assert_eq!(status, 200, "{body}");
    let url = presigned_mqtt_url(profile, &user.credentials);
    let mut options = MqttOptions::new(client_id, url, 443);
    options.set_transport(Transport::Ws);
    options.set_keep_alive(Duration::from_secs(30));
    if let Some(will) = will {
        options.set_last_will(will);
    }
    options
}

/// Connects and returns the CONNACK's verdict.
async fn try_connect(options: MqttOptions) -> Result<(AsyncClient, EventLoop), ConnectionError> {
    let (client, mut events) = AsyncClient::new(options, 16);
    let first = tokio::time::timeout(Duration::from_secs(10), next_packet(&mut events))
        .await
        .expect("the broker answers the CONNECT in time")?;
    match first {
        Packet::ConnAck(ack) if ack.code == ConnectReturnCode::Success => Ok((client, events)),
        other => panic!("expected a CONNACK, got {other:?}"),
    }
}

fn refused(result: Result<(AsyncClient, EventLoop), ConnectionError>) -> bool {
    matches!(
        result,
        Err(ConnectionError::ConnectionRefused(
            ConnectReturnCode::NotAuthorized | ConnectReturnCode::BadUserNamePassword
        ))
    )
}

/// A minimal MQTT 3.1.1 CONNECT, with a login when given.
fn raw_connect(client_id: &str, login: Option<(&str, &[u8])>) -> Vec<u8> {
    let field = |bytes: &[u8]| {
        let mut out = (bytes.len() as u16).to_be_bytes().to_vec();
        out.extend_from_slice(bytes);
        out
    };
    let flags: u8 = 0x02 | if login.is_some() { 0xc0 } else { 0 };
    let mut body = field(b"MQTT");
    body.extend_from_slice(&[4, flags, 0, 60]);
    body.extend(field(client_id.as_bytes()));
    if let Some((username, password)) = login {
        body.extend(field(username.as_bytes()));
        body.extend(field(password));
    }
    let mut packet = vec![0x10, body.len() as u8];
    packet.extend(body);
    packet
}

/// What the broker answers a raw CONNECT on `stream`: the CONNACK's return code, or `None`
/// if it closed the connection instead.
async fn connack_code(stream: &mut tokio::net::TcpStream, connect: &[u8]) -> Option<u8> {
    stream.write_all(connect).await.ok()?;
    let mut answer = [0u8; 4];
    let read = tokio::time::timeout(Duration::from_secs(5), stream.read_exact(&mut answer)).await;
    match read {
        Ok(Ok(_)) if answer[0] == 0x20 => Some(answer[3]),
        _ => None,
    }
}

/// The local ports of the bridge's live connections to the broker, from the kernel's table.
#[cfg(target_os = "linux")]
fn bridge_ports(broker: std::net::SocketAddr) -> Vec<u16> {
    let table = std::fs::read_to_string("/proc/net/tcp").expect("the kernel's TCP table");
    let broker_hex = format!("0100007F:{:04X}", broker.port());
    table
        .lines()
        .skip(1)
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let (local, remote, state) = (fields.get(1)?, fields.get(2)?, fields.get(3)?);
            let established = *state == "01";
            let port = local.split(':').nth(1)?;
            (established && *remote == broker_hex).then(|| u16::from_str_radix(port, 16).ok())?
        })
        .collect()
}

#[cfg(target_os = "linux")]
#[tokio::test(flavor = "multi_thread")]
async fn a_local_process_cannot_pass_for_a_live_bridge_connection() {
    let dir = tempfile::tempdir().unwrap();
    let server = support::start(dir.path()).await;
    let profile = server.profile().clone();
    let alice = signed_in(&profile, "alice").await;
    let broker = server.internal_broker_addr();
    assert!(bridge_ports(broker).is_empty(), "no bridge connection yet");
    let (_alice_mqtt, _alice_events) = connect(&profile, &alice, "app").await;
    let ports = bridge_ports(broker);
    assert_eq!(ports.len(), 1, "alice's bridge connection: {ports:?}");
    let port = ports[0];

    let client_id = format!("{}-intruder", alice.identity_id);
    // Same port, another loopback address: what keying by port alone let in.
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind(([127, 0, 0, 2], port).into()).expect("127.0.0.2 with the bridge's port");
    let mut borrowed = socket.connect(broker).await.expect("the internal listener accepts TCP");
    let code = connack_code(&mut borrowed, &raw_connect(&client_id, None)).await;
    assert_ne!(code, Some(0), "a borrowed port is not alice's connection");

    // A fresh socket with alice's identity as its login: the secret is missing.
    let mut direct = tokio::net::TcpStream::connect(broker).await.unwrap();
    let guess = raw_connect(&client_id, Some((alice.identity_id.as_str(), b"guess")));
    assert_ne!(connack_code(&mut direct, &guess).await, Some(0), "a guessed login is refused");

    server.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_client_id_must_start_with_the_connecting_identity() {
    let dir = tempfile::tempdir().unwrap();
    let server = support::start(dir.path()).await;
    let profile = server.profile().clone();
    let alice = signed_in(&profile, "alice").await;
    let mallory = signed_in(&profile, "mallory").await;
    let room = json!({"roomName": "General", "type": "public"});
    api(&profile, &alice.credentials, "POST", "/chats", Some(room)).await;

    let alices_id = format!("{}-app", alice.identity_id);
    let (alice_mqtt, mut alice_events) =
        try_connect(options(&profile, &alice, &alices_id, None).await).await.unwrap();
    for client_id in [alices_id.clone(), "anything".into(), alice.identity_id.clone()] {
        let taking_over = try_connect(options(&profile, &mallory, &client_id, None).await).await;
        assert!(refused(taking_over), "mallory may not connect as {client_id:?}");
    }
    let topic = format!("room/public/general/{}", alice.identity_id);
    alice_mqtt
        .publish(&topic, QoS::AtLeastOnce, false, r#"{"message":"still here"}"#)
        .await
        .unwrap();
    puback_or_disconnect(&mut alice_events).await.expect("alice was not taken over");
    server.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_will_is_checked_like_a_publish_and_stored_when_it_fires() {
    let dir = tempfile::tempdir().unwrap();
    let server = support::start(dir.path()).await;
    let profile = server.profile().clone();
    let alice = signed_in(&profile, "alice").await;
    let bob = signed_in(&profile, "bob").await;
    let room = json!({"roomName": "General", "type": "public"});
    api(&profile, &alice.credentials, "POST", "/chats", Some(room)).await;
    let client_id = format!("{}-will", alice.identity_id);
    let as_bob = format!("room/public/general/{}", bob.identity_id);
    let own = format!("room/public/general/{}", alice.identity_id);
    let bye = json!({"message": "alice dropped", "id": "7f0c3a3e-8b1d-4d55-9b8e-4c8f7a1d2e3f", "sentAt": 1})
        .to_string();
    for (what, will) in [
        ("as someone else", LastWill::new(&as_bob, bye.clone(), QoS::AtLeastOnce, false)),
        (
            "outside room/public/",
            LastWill::new("status/alice", bye.clone(), QoS::AtMostOnce, false),
        ),
        ("retained", LastWill::new(&own, bye.clone(), QoS::AtLeastOnce, true)),
        ("at QoS 2", LastWill::new(&own, bye.clone(), QoS::ExactlyOnce, false)),
    ] {
        let result = try_connect(options(&profile, &alice, &client_id, Some(will)).await).await;
        assert!(refused(result), "a will {what} is refused at CONNECT");
    }

    let (bob_mqtt, mut bob_events) = connect(&profile, &bob, "b").await;
    bob_mqtt.subscribe("room/public/general/+", QoS::AtLeastOnce).await.unwrap();
    expect(&mut bob_events, |p| matches!(p, Packet::SubAck(_)).then_some(())).await;
    let will = LastWill::new(&own, bye.clone(), QoS::AtLeastOnce, false);
    let (alice_mqtt, alice_events) =
        try_connect(options(&profile, &alice, &client_id, Some(will)).await).await.unwrap();
    // Gone without a DISCONNECT: the will fires.
    drop(alice_events);
    drop(alice_mqtt);
    let delivered = expect(&mut bob_events, |p| match p {
        Packet::Publish(publish) => Some(publish),
        _ => None,
    })
    .await;
    assert_eq!(delivered.topic, own, "the will arrives as alice's message");
    let (_, page) =
        api(&profile, &bob.credentials, "GET", "/chats/messages?room=general", None).await;
    assert_eq!(page["messages"][0]["message"], "alice dropped", "and history has it: {page}");
    server.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn retained_and_qos_2_publishes_disconnect_and_store_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let server = support::start(dir.path()).await;
    let profile = server.profile().clone();
    let carol = signed_in(&profile, "carol").await;
    let room = json!({"roomName": "General", "type": "public"});
    api(&profile, &carol.credentials, "POST", "/chats", Some(room)).await;
    let topic = format!("room/public/general/{}", carol.identity_id);
    let payload = json!({"message": "kept?"}).to_string();

    let (mqtt, mut events) = connect(&profile, &carol, "retain").await;
    mqtt.publish(&topic, QoS::AtLeastOnce, true, payload.clone()).await.unwrap();
    assert!(puback_or_disconnect(&mut events).await.is_err(), "retain is not granted");

    let (mqtt, mut events) = connect(&profile, &carol, "qos2").await;
    mqtt.publish(&topic, QoS::ExactlyOnce, false, payload).await.unwrap();
    let outcome = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            match events.poll().await {
                Err(error) => return Err(error),
                Ok(rumqttc::Event::Incoming(Packet::PubRec(_) | Packet::PubComp(_))) => {
                    return Ok(());
                }
                Ok(_) => {}
            }
        }
    })
    .await
    .expect("the broker reacts in time");
    assert!(outcome.is_err(), "QoS 2 is refused with a disconnect, as AWS IoT does");

    let late = signed_in(&profile, "late").await;
    let (late_mqtt, mut late_events) = connect(&profile, &late, "l").await;
    late_mqtt.subscribe("room/public/general/+", QoS::AtLeastOnce).await.unwrap();
    expect(&mut late_events, |p| matches!(p, Packet::SubAck(_)).then_some(())).await;
    let nothing =
        tokio::time::timeout(Duration::from_millis(500), next_packet(&mut late_events)).await;
    assert!(!matches!(nothing, Ok(Ok(Packet::Publish(_)))), "nothing retained: {nothing:?}");
    let (_, page) =
        api(&profile, &carol.credentials, "GET", "/chats/messages?room=general", None).await;
    assert_eq!(page["messages"], json!([]), "nothing stored");
    server.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn filters_outside_the_policy_or_aws_limits_are_refused_and_qos_2_is_granted_as_1() {
    let dir = tempfile::tempdir().unwrap();
    let server = support::start(dir.path()).await;
    let profile = server.profile().clone();
    let dave = signed_in(&profile, "dave").await;
    let (mqtt, mut events) = connect(&profile, &dave, "d").await;
    let mut suback = async |filter: &str, qos: QoS| {
        mqtt.subscribe(filter, qos).await.unwrap();
        expect(&mut events, |p| match p {
            Packet::SubAck(ack) => Some(ack.return_codes),
            _ => None,
        })
        .await
    };
    let long = format!("room/public/{}/+", "a".repeat(250));
    for filter in [
        "$share/group/room/public/general/+",
        "$SYS/#",
        "$aws/things/x/shadow/#",
        "room/public/a/b/c/d/e/f/+",
        long.as_str(),
    ] {
        let codes = suback(filter, QoS::AtLeastOnce).await;
        assert_eq!(codes, [SubscribeReasonCode::Failure], "{filter} is refused");
    }
    let codes = suback("room/public/#", QoS::ExactlyOnce).await;
    assert_eq!(
        codes,
        [SubscribeReasonCode::Success(QoS::AtLeastOnce)],
        "every public room may be followed at once, at QoS 1 at most"
    );
    server.stop().await.unwrap();
}
