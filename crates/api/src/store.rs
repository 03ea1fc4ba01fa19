//! What the API stores: user profiles, rooms and their history. SQLite implements it in
//! `iotchat-server`, DynamoDB in [`crate::dynamo`]; one story test runs against both.

use async_trait::async_trait;
use iotchat_protocol::api::{Room, StoredMessage, User};
use iotchat_protocol::{IdentityId, RoomSlug};

/// A storage failure. `Conflict` and `BadCursor` are what callers branch on; the rest are
/// reported.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{0} already exists")]
    Conflict(&'static str),
    /// A history cursor this store did not hand out.
    #[error("not a cursor from a previous page")]
    BadCursor,
    #[error("storage failed: {0}")]
    Backend(String),
}

pub type StoreResult<T> = Result<T, StoreError>;

/// Profiles, rooms and history. Every method is one atomic operation.
#[async_trait]
pub trait ChatStore: Send + Sync + 'static {
    /// Records (or renames) the profile of `user.identity_id`.
    async fn profile_put(&self, user: User) -> StoreResult<()>;
    async fn profile_get(&self, identity: &IdentityId) -> StoreResult<Option<User>>;
    /// Every profile, ordered by username (case-insensitively).
    async fn profiles_list(&self) -> StoreResult<Vec<User>>;

    /// Creates a room; `Conflict("room")` if its slug exists.
    async fn room_insert(&self, room: Room) -> StoreResult<()>;
    async fn room_get(&self, slug: &RoomSlug) -> StoreResult<Option<Room>>;
    /// Every room, ordered by slug.
    async fn rooms_list(&self) -> StoreResult<Vec<Room>>;

    /// Stores a message durably; false if the room already holds a message with its id.
    async fn message_insert(&self, message: StoredMessage) -> StoreResult<bool>;
    /// Up to `limit` messages of `room` that arrived before the cursor `before` (from an
    /// earlier page), newest first, and the cursor of the next (older) page when there is
    /// one. A cursor this store did not make is `BadCursor`.
    async fn messages_page(
        &self,
        room: &RoomSlug,
        before: Option<&str>,
        limit: u32,
    ) -> StoreResult<(Vec<StoredMessage>, Option<String>)>;
}
