//! History cursors: any `before` is a page or `BadCursor`, never a panic; a page holds at most
//! `limit` messages, newest first, and its cursor leads to older messages only.
#![no_main]

use std::sync::OnceLock;

use arbitrary::Arbitrary;
use iotchat_api::{ChatStore, StoreError};
use iotchat_protocol::api::StoredMessage;
use iotchat_protocol::{IdentityId, MessageId, RoomName, RoomSlug};
use iotchat_server::storage::SqliteStore;
use libfuzzer_sys::fuzz_target;

#[derive(Debug, Arbitrary)]
struct Page {
    before: Option<String>,
    limit: u8,
}

struct Fixture {
    runtime: tokio::runtime::Runtime,
    store: SqliteStore,
    room: RoomSlug,
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let dir = tempfile::tempdir().expect("a temp dir").keep();
        let store = SqliteStore::open(&dir).expect("a store");
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .build()
            .expect("a runtime");
        let room = RoomSlug::parse("general").expect("a slug");
        let sender = IdentityId::parse("us-east-1:00000000-0000-4000-8000-000000000000")
            .expect("an identity id");
        runtime.block_on(async {
            for n in 0..30u64 {
                let message = StoredMessage {
                    id: MessageId::parse(&format!("m{n}")).expect("an id"),
                    room: RoomName::new(room.clone()),
                    sender: sender.clone(),
                    message: format!("message {n}"),
                    sent_at: 1_000 + n,
                    received_at: 2_000 + n,
                };
                store.message_insert(message).await.expect("stored");
            }
        });
        Fixture { runtime, store, room }
    })
}

fuzz_target!(|page: Page| {
    let fixture = fixture();
    let limit = u32::from(page.limit);
    let answer = fixture.runtime.block_on(fixture.store.messages_page(
        &fixture.room,
        page.before.as_deref(),
        limit,
    ));
    let (messages, next) = match answer {
        Ok(answer) => answer,
        Err(StoreError::BadCursor) => return,
        Err(other) => panic!("a cursor made the store fail: {other}"),
    };
    assert!(messages.len() <= limit as usize);
    assert!(messages.windows(2).all(|w| w[0].received_at > w[1].received_at), "newest first");
    if let (Some(next), Some(last)) = (next, messages.last()) {
        let (older, _) = fixture
            .runtime
            .block_on(fixture.store.messages_page(&fixture.room, Some(&next), 30))
            .expect("a cursor the store handed out");
        assert!(older.iter().all(|m| m.received_at < last.received_at), "older only");
    }
});
