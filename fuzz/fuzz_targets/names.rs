//! Topic parsing, slug making and the sign-up rules: any text is a value or a typed error, and
//! every value the parsers make is parsed back to itself from its text.
#![no_main]

use iotchat_protocol::auth::{email_is_plausible, password_problem, username_problem};
use iotchat_protocol::identity::IdentityId;
use iotchat_protocol::slug::{RoomDisplayName, RoomSlug};
use iotchat_protocol::topic::{RoomName, Topic, TopicFilter};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|text: &str| {
    if let Ok(topic) = Topic::parse(text) {
        assert_eq!(Topic::parse(&topic.to_string()).as_ref(), Ok(&topic));
        assert_eq!(topic.room().filter().room(), topic.room());
    }
    if let Ok(filter) = TopicFilter::parse(text) {
        assert_eq!(TopicFilter::parse(&filter.to_string()).as_ref(), Ok(&filter));
    }
    for room in [RoomName::parse(text), RoomName::from_user_input(text)].into_iter().flatten() {
        assert_eq!(RoomName::parse(&room.to_string()).as_ref(), Ok(&room));
        assert_eq!(RoomSlug::parse(room.slug().as_str()).as_ref(), Ok(room.slug()));
    }
    if let Ok(slug) = RoomSlug::from_display_name(text) {
        assert_eq!(RoomSlug::parse(slug.as_str()).as_ref(), Ok(&slug), "a made slug is valid");
    }
    if let Ok(name) = RoomDisplayName::parse(text) {
        let _ = name.slug();
    }
    if let Ok(identity) = IdentityId::parse(text) {
        assert_eq!(IdentityId::parse(&identity.to_string()).as_ref(), Ok(&identity));
    }
    let _ = (username_problem(text), password_problem(text), email_is_plausible(text));
});
