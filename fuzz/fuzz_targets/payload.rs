//! A chat message payload as it arrives over MQTT: any bytes are a payload or a typed error;
//! a payload the parser accepts, completed and sent on, is read back the same.
#![no_main]

use iotchat_protocol::payload::{IncomingPayload, MessageId};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|bytes: &[u8]| {
    let Ok(payload) = IncomingPayload::parse(bytes) else { return };
    let message = payload.complete(1, || MessageId::parse("fuzz-id").expect("a valid id"));
    let wire = serde_json::to_vec(&message).expect("a message serializes");
    let again = IncomingPayload::parse(&wire).expect("what we send is read back");
    assert_eq!(again.message, message.text);
    assert_eq!(again.id.as_ref(), Some(&message.id));
    assert_eq!(again.sent_at, Some(message.sent_at_ms));
});
