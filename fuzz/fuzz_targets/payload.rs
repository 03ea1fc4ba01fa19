//! A chat message payload as it arrives over MQTT: any bytes are a payload or a typed error;
//! a payload the parser accepts, completed and published again, is read back the same.
#![no_main]

use iotchat_protocol::payload::{IncomingPayload, MessageId, OutgoingPayload, PayloadError};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|bytes: &[u8]| {
    let Ok(payload) = IncomingPayload::parse(bytes) else { return };
    let message = payload.complete(1, || MessageId::parse("fuzz-id").expect("a valid id"));
    let outgoing =
        OutgoingPayload { message: &message.text, id: &message.id, sent_at: message.sent_at_ms };
    let wire = match outgoing.encode() {
        Ok(wire) => wire,
        // The id and sentAt added to a seed-style payload near the limit can pass it.
        Err(PayloadError::TooLarge { .. }) => return,
        Err(other) => panic!("an accepted message cannot be published: {other}"),
    };
    let again = IncomingPayload::parse(&wire).expect("what we publish is read back");
    assert_eq!(again.message, message.text);
    assert_eq!(again.id.as_ref(), Some(&message.id));
    assert_eq!(again.sent_at, Some(message.sent_at_ms));
});
