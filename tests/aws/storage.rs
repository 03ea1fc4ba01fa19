//! One storage story, told to both implementations of `ChatStore`: the server's SQLite store
//! and the DynamoDB store the Lambda functions use (on moto's DynamoDB).

use iotchat_api::dynamo::{DynamoStore, Tables};
use iotchat_api::{ChatStore, StoreError};
use iotchat_protocol::api::{Room, RoomType, StoredMessage, User};
use iotchat_protocol::{IdentityId, MessageId, RoomName, RoomSlug};

use crate::support::Moto;

fn identity(n: u8) -> IdentityId {
    IdentityId::parse(&format!("us-east-1:00000000-0000-4000-8000-0000000000{n:02}"))
        .expect("identity")
}

fn room(slug: &str, by: &IdentityId, at: u64) -> Room {
    Room {
        name: RoomName::new(RoomSlug::parse(slug).expect("slug")),
        display_name: slug.replace('-', " "),
        room_type: RoomType::Public,
        created_by: by.clone(),
        created_at: at,
    }
}

fn message(id: &str, slug: &str, sender: &IdentityId, text: &str, at: u64) -> StoredMessage {
    StoredMessage {
        id: MessageId::parse(id).expect("id"),
        room: RoomName::new(RoomSlug::parse(slug).expect("slug")),
        sender: sender.clone(),
        message: text.to_owned(),
        sent_at: at - 5,
        received_at: at,
    }
}

fn slug(raw: &str) -> RoomSlug {
    RoomSlug::parse(raw).expect("slug")
}

/// Pages through all of a room's history, `limit` at a time, newest first.
async fn whole_history(store: &dyn ChatStore, room: &str, limit: u32) -> Vec<StoredMessage> {
    let mut all = Vec::new();
    let mut before: Option<String> = None;
    for _ in 0..1_000 {
        let (page, next) =
            store.messages_page(&slug(room), before.as_deref(), limit).await.expect("a page");
        assert!(page.len() <= limit as usize, "a page holds at most the limit");
        all.extend(page);
        match next {
            Some(cursor) => before = Some(cursor),
            None => return all,
        }
    }
    panic!("history of {room} did not end after 1,000 pages");
}

async fn story(store: &dyn ChatStore) {
    let (alice, bob, carol) = (identity(1), identity(2), identity(3));

    // Profiles: recorded, renamed, listed by name whatever the case.
    assert_eq!(store.profile_get(&alice).await.expect("get"), None);
    store
        .profile_put(User { identity_id: alice.clone(), username: "alice".into() })
        .await
        .expect("put");
    store
        .profile_put(User { identity_id: bob.clone(), username: "Bob".into() })
        .await
        .expect("put");
    store
        .profile_put(User { identity_id: carol.clone(), username: "carol".into() })
        .await
        .expect("put");
    store
        .profile_put(User { identity_id: alice.clone(), username: "Zoe".into() })
        .await
        .expect("put");
    let alice_now = store.profile_get(&alice).await.expect("get").expect("alice's profile");
    assert_eq!(alice_now.username, "Zoe", "a second put renames");
    let names: Vec<String> =
        store.profiles_list().await.expect("list").into_iter().map(|u| u.username).collect();
    assert_eq!(names, ["Bob", "carol", "Zoe"], "ordered by name, case-insensitively");

    // Rooms: created once, listed by slug.
    assert!(store.rooms_list().await.expect("list").is_empty());
    store.room_insert(room("random", &bob, 1_000)).await.expect("insert");
    store.room_insert(room("general", &alice, 2_000)).await.expect("insert");
    match store.room_insert(room("general", &bob, 3_000)).await {
        Err(StoreError::Conflict(_)) => {}
        other => panic!("a second room with a taken slug must conflict, got {other:?}"),
    }
    let general = store.room_get(&slug("general")).await.expect("get").expect("general exists");
    assert_eq!(general.created_by, alice, "the first creator keeps the room");
    assert_eq!(store.room_get(&slug("nowhere")).await.expect("get"), None);
    let slugs: Vec<String> = store
        .rooms_list()
        .await
        .expect("list")
        .into_iter()
        .map(|r| r.name.slug().as_str().to_owned())
        .collect();
    assert_eq!(slugs, ["general", "random"]);

    // History: 25 messages, some arriving in the same millisecond, one resent.
    let mut sent = Vec::new();
    for n in 0..25u64 {
        let at = 1_700_000_000_000 + (n / 3) * 10; // three per millisecond
        let sender = if n % 2 == 0 { &alice } else { &bob };
        let m = message(&format!("m-{n:02}"), "general", sender, &format!("message {n}"), at);
        assert!(store.message_insert(m.clone()).await.expect("insert"), "m-{n:02} is new");
        sent.push(m);
    }
    let resend = StoredMessage { received_at: sent[4].received_at + 99_999, ..sent[4].clone() };
    assert!(!store.message_insert(resend).await.expect("insert"), "a resent id is not kept twice");
    // The same id in another room is another message.
    let elsewhere = message("m-04", "random", &carol, "elsewhere", 1_700_000_000_500);
    assert!(store.message_insert(elsewhere.clone()).await.expect("insert"));

    for limit in [1, 2, 7, 25, 200] {
        let history = whole_history(store, "general", limit).await;
        let ids: Vec<&str> = history.iter().map(|m| m.id.as_str()).collect();
        let mut expected: Vec<&str> = sent.iter().map(|m| m.id.as_str()).collect();
        expected.reverse();
        assert_eq!(ids, expected, "pages of {limit}: every message once, newest first");
    }
    let (newest, _) = store.messages_page(&slug("general"), None, 1).await.expect("page");
    assert_eq!(newest, [sent[24].clone()], "a message comes back as it was stored");
    assert_eq!(whole_history(store, "random", 10).await, [elsewhere]);
    let (empty, next) = store.messages_page(&slug("quiet"), None, 10).await.expect("page");
    assert!(empty.is_empty() && next.is_none(), "a room without messages has one empty page");
    let (_, last) = store.messages_page(&slug("general"), None, 25).await.expect("page");
    assert_eq!(last, None, "a page that reaches the oldest message has no next cursor");

    for bad in ["not-a-cursor", "", "0000#", "99999999999999999999999999"] {
        match store.messages_page(&slug("general"), Some(bad), 10).await {
            Err(StoreError::BadCursor) => {}
            // An empty cursor may be read as "no cursor" by a store, but never as an error
            // of another kind.
            Ok(_) if bad.is_empty() => {}
            other => panic!("cursor {bad:?} must be refused as BadCursor, got {other:?}"),
        }
    }
}

/// Big messages: a DynamoDB query answers at most 1 MB at a time, a page may need more.
async fn big_pages(store: &dyn ChatStore) {
    let sender = identity(9);
    let text = "x".repeat(100 * 1024);
    for n in 0..30u64 {
        let m = message(&format!("big-{n:02}"), "big", &sender, &text, 1_800_000_000_000 + n);
        assert!(store.message_insert(m).await.expect("a 100 KB message is kept"));
    }
    let (page, next) = store.messages_page(&slug("big"), None, 30).await.expect("page");
    assert_eq!(page.len(), 30, "3 MB of messages in one page of 30");
    assert_eq!(page[0].id.as_str(), "big-29");
    assert!(page.iter().all(|m| m.message.len() == text.len()));
    assert_eq!(next, None);
    let (first, cursor) = store.messages_page(&slug("big"), None, 12).await.expect("page");
    let (rest, end) =
        store.messages_page(&slug("big"), cursor.as_deref(), 100).await.expect("page");
    assert_eq!(first.len() + rest.len(), 30);
    assert_eq!(rest.last().map(|m| m.id.as_str()), Some("big-00"));
    assert_eq!(end, None);
}

#[tokio::test]
async fn the_storage_story_holds_in_sqlite() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = iotchat_server::storage::SqliteStore::open(dir.path()).expect("open SQLite");
    // The server's store also holds the user pool and the identity pool, and profiles name
    // their identities.
    use iotchat_server::storage::{Store as _, UserRecord};
    for n in [1, 2, 3, 9] {
        let sub = format!("sub-{n}");
        let user = UserRecord {
            sub: sub.clone(),
            username: format!("user{n}"),
            email: format!("user{n}@example.com"),
            password_hash: "not used here".into(),
            confirmed: true,
            created_at_ms: 1,
        };
        store.user_insert(user).await.expect("a user");
        store.identity_for_sub(&sub, identity(n)).await.expect("an identity");
    }
    story(&store).await;
    big_pages(&store).await;
}

#[tokio::test]
async fn the_storage_story_holds_in_dynamodb() {
    let moto = Moto::start().await;
    let store = DynamoStore::new(moto.dynamodb(), Tables::with_prefix("story"));
    store.create_tables().await.expect("tables are created");
    story(&store).await;
    big_pages(&store).await;
    // Creating the tables again (a second deploy, a test rerun) is not an error.
    store.create_tables().await.expect("creating existing tables is a no-op");
}
