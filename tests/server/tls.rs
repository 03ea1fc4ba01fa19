//! A server reached over a network speaks TLS. With no certificate given it signs its own with a
//! CA it keeps, and the profile carries that CA: clients that trust exactly it can use every
//! part of the server; clients that do not are refused at the handshake.

use rumqttc::{Packet, QoS};
use serde_json::json;

use crate::mqtt::{connect, expect};
use crate::support::{self, api, http_client, idp_client, signed_in};

#[tokio::test(flavor = "multi_thread")]
async fn a_self_signed_server_is_usable_by_clients_that_trust_its_profile_ca() {
    let dir = tempfile::tempdir().unwrap();
    let server = support::start_tls(dir.path()).await;
    let profile = server.profile().clone();
    let port = server.addr().port();
    assert_eq!(profile.api_url, format!("https://127.0.0.1:{port}/api"));
    assert_eq!(profile.iot_endpoint, format!("wss://127.0.0.1:{port}/mqtt"));
    let ca = profile.ca_certificate.clone().expect("the profile carries the CA");

    // The profile the server serves is the one it wrote, CA included.
    let served: iotchat_server::profile::Profile = http_client(&profile)
        .get(format!("https://127.0.0.1:{port}/profile.json"))
        .send()
        .await
        .expect("HTTPS with the profile's CA")
        .json()
        .await
        .expect("a profile");
    assert_eq!(served, profile);

    // The AWS SDK (Cognito), the signed API and MQTT over wss:// all work through it.
    let alice = signed_in(&profile, "alice").await;
    let bob = signed_in(&profile, "bob").await;
    let room = json!({"roomName": "Secure", "type": "public"});
    let (status, body) = api(&profile, &alice.credentials, "POST", "/chats", Some(room)).await;
    assert_eq!(status, 201, "{body}");
    let (alice_mqtt, mut alice_events) = connect(&profile, &alice, "a").await;
    let (bob_mqtt, mut bob_events) = connect(&profile, &bob, "b").await;
    bob_mqtt.subscribe("room/public/secure/+", QoS::AtLeastOnce).await.unwrap();
    expect(&mut bob_events, |p| matches!(p, Packet::SubAck(_)).then_some(())).await;
    let topic = format!("room/public/secure/{}", alice.identity_id);
    let payload = json!({"message": "over TLS"}).to_string();
    alice_mqtt.publish(&topic, QoS::AtLeastOnce, false, payload).await.unwrap();
    expect(&mut alice_events, |p| matches!(p, Packet::PubAck(_)).then_some(())).await;
    let received =
        expect(&mut bob_events, |p| if let Packet::Publish(p) = p { Some(p) } else { None }).await;
    assert_eq!(received.topic, topic);

    // A client that does not trust the CA is refused, and so is plain HTTP on the TLS port.
    let mut untrusting = profile.clone();
    untrusting.ca_certificate = None;
    let refused = idp_client(&untrusting)
        .initiate_auth()
        .client_id(&profile.user_pool_client_id)
        .auth_flow(aws_sdk_cognitoidentityprovider::types::AuthFlowType::UserPasswordAuth)
        .auth_parameters("USERNAME", "alice")
        .auth_parameters("PASSWORD", support::PASSWORD)
        .send()
        .await;
    assert!(refused.is_err(), "an unknown CA must not be trusted");
    let plain = support::plain_http().get(format!("http://127.0.0.1:{port}/profile.json")).send();
    assert!(plain.await.is_err(), "no plain HTTP on a TLS port");

    // The CA survives a restart: profiles already handed out stay valid.
    server.stop().await.unwrap();
    let server = support::start_tls(dir.path()).await;
    assert_eq!(server.profile().ca_certificate.as_deref(), Some(ca.as_str()));
    server.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn given_certificate_files_are_served() {
    // An organisation's own CA and a certificate for 127.0.0.1, as an operator would hand over.
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca_params.distinguished_name.push(rcgen::DnType::CommonName, "Example Org CA");
    let ca_cert = ca_params.self_signed(&ca_key).unwrap();
    let issuer = rcgen::Issuer::new(ca_params, ca_key);
    let leaf_key = rcgen::KeyPair::generate().unwrap();
    let leaf = rcgen::CertificateParams::new(vec!["127.0.0.1".to_owned()])
        .unwrap()
        .signed_by(&leaf_key, &issuer)
        .unwrap();
    let files = tempfile::tempdir().unwrap();
    let (cert, key) = (files.path().join("cert.pem"), files.path().join("key.pem"));
    std::fs::write(&cert, leaf.pem()).unwrap();
    std::fs::write(&key, leaf_key.serialize_pem()).unwrap();

    let dir = tempfile::tempdir().unwrap();
    let server = support::start_with(dir.path(), |config| {
        config.tls = iotchat_server::config::Tls::Files { cert, key };
    })
    .await;
    let mut profile = server.profile().clone();
    assert!(profile.api_url.starts_with("https://"), "{}", profile.api_url);
    assert_eq!(profile.ca_certificate, None, "a given certificate is trusted by its own CA");
    profile.ca_certificate = Some(ca_cert.pem());
    let carol = signed_in(&profile, "carol").await;
    let (status, me) = api(&profile, &carol.credentials, "GET", "/chats", None).await;
    assert_eq!(status, 200, "{me}");
    server.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn unusable_certificate_files_stop_the_start_with_a_reason() {
    let dir = tempfile::tempdir().unwrap();
    let bogus = dir.path().join("bogus.pem");
    std::fs::write(&bogus, "not a certificate").unwrap();
    let mut config = iotchat_server::config::Config::for_data_dir(dir.path()).unwrap();
    config.tls = iotchat_server::config::Tls::Files { cert: bogus.clone(), key: bogus };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let error = iotchat_server::start(&config, listener).await.unwrap_err();
    let message = format!("{error:#}");
    assert!(message.contains("bogus.pem") && message.contains("tls_cert"), "{message}");
}
