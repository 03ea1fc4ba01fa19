//! [`ChatStore`] on DynamoDB, for the AWS deployment (on-demand tables, created by the
//! template in `backend/infra`; [`DynamoStore::create_tables`] makes the same ones for tests
//! and self-made stacks).
//!
//! | Table | Key | Item |
//! |---|---|---|
//! | users | `identityId` | `username` |
//! | rooms | `slug` | `displayName`, `createdBy`, `createdAt` |
//! | messages | `room` (slug) + `at` (`<receivedAt, 15 digits>#<id>`) | `id`, `sender`, `message`, `sentAt`, `receivedAt` |
//!
//! A room's history is one partition whose sort key orders messages by arrival, so a page is
//! one `Query` backwards from the cursor (the `at` of the last message shown). A message id is
//! stored once per room: each insert also writes a marker `room = "ids#<slug>"`, `at = <id>`
//! in the same transaction, on the condition that the marker does not exist yet (a resend
//! after a lost PUBACK arrives later, with a new `at`, and finds the marker).

use std::collections::HashMap;

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, KeySchemaElement, KeyType, Put,
    ScalarAttributeType, TransactWriteItem,
};
use iotchat_protocol::api::{Room, RoomType, StoredMessage, User};
use iotchat_protocol::{IdentityId, MessageId, RoomName, RoomSlug};

use crate::{ChatStore, StoreError, StoreResult};

/// The three tables' names (the stack names them; see `backend/infra`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tables {
    pub users: String,
    pub rooms: String,
    pub messages: String,
}

impl Tables {
    /// `<prefix>-users`, `<prefix>-rooms`, `<prefix>-messages`.
    pub fn with_prefix(prefix: &str) -> Self {
        Self {
            users: format!("{prefix}-users"),
            rooms: format!("{prefix}-rooms"),
            messages: format!("{prefix}-messages"),
        }
    }

    /// From `IOTCHAT_USERS_TABLE`, `IOTCHAT_ROOMS_TABLE` and `IOTCHAT_MESSAGES_TABLE` (what the
    /// template gives the functions), naming the one that is missing.
    pub fn from_env() -> Result<Self, String> {
        let var = |name: &str| {
            std::env::var(name).ok().filter(|v| !v.trim().is_empty()).ok_or_else(|| {
                format!("the environment variable {name} (a DynamoDB table) is not set")
            })
        };
        Ok(Self {
            users: var("IOTCHAT_USERS_TABLE")?,
            rooms: var("IOTCHAT_ROOMS_TABLE")?,
            messages: var("IOTCHAT_MESSAGES_TABLE")?,
        })
    }
}

/// Digits of the arrival time in a message's sort key: ms since 1970 up to the year 33658.
const AT_DIGITS: usize = 15;
/// Most items a `Query` may return per page before the 1 MB cap: asked for in a loop.
const MARKER_PREFIX: &str = "ids#";

/// The DynamoDB store.
#[derive(Debug, Clone)]
pub struct DynamoStore {
    client: Client,
    tables: Tables,
}

fn backend(what: &str, error: impl std::fmt::Display) -> StoreError {
    StoreError::Backend(format!("DynamoDB {what}: {error}"))
}

/// The full error chain of an SDK error (its `Display` alone says only "service error").
fn sdk<E>(what: &str, error: aws_sdk_dynamodb::error::SdkError<E>) -> StoreError
where
    E: std::error::Error + 'static,
{
    backend(what, aws_sdk_dynamodb::error::DisplayErrorContext(error))
}

fn s(value: impl Into<String>) -> AttributeValue {
    AttributeValue::S(value.into())
}

fn n(value: u64) -> AttributeValue {
    AttributeValue::N(value.to_string())
}

type Item = HashMap<String, AttributeValue>;

fn get_s<'a>(item: &'a Item, key: &str) -> StoreResult<&'a str> {
    match item.get(key) {
        Some(AttributeValue::S(value)) => Ok(value),
        _ => Err(StoreError::Backend(format!("a stored item has no text attribute {key:?}"))),
    }
}

fn get_n(item: &Item, key: &str) -> StoreResult<u64> {
    match item.get(key) {
        Some(AttributeValue::N(value)) => value.parse().map_err(|_| {
            StoreError::Backend(format!("a stored item's {key:?} is not a whole number"))
        }),
        _ => Err(StoreError::Backend(format!("a stored item has no number attribute {key:?}"))),
    }
}

fn identity(raw: &str) -> StoreResult<IdentityId> {
    IdentityId::parse(raw).map_err(|e| StoreError::Backend(format!("stored identity: {e}")))
}

fn room_from(item: &Item) -> StoreResult<Room> {
    let slug = RoomSlug::parse(get_s(item, "slug")?)
        .map_err(|e| StoreError::Backend(format!("stored room: {e}")))?;
    Ok(Room {
        name: RoomName::new(slug),
        display_name: get_s(item, "displayName")?.to_owned(),
        room_type: RoomType::Public,
        created_by: identity(get_s(item, "createdBy")?)?,
        created_at: get_n(item, "createdAt")?,
    })
}

fn user_from(item: &Item) -> StoreResult<User> {
    Ok(User {
        identity_id: identity(get_s(item, "identityId")?)?,
        username: get_s(item, "username")?.to_owned(),
    })
}

fn message_from(item: &Item) -> StoreResult<StoredMessage> {
    let slug = RoomSlug::parse(get_s(item, "room")?)
        .map_err(|e| StoreError::Backend(format!("stored message's room: {e}")))?;
    Ok(StoredMessage {
        id: MessageId::parse(get_s(item, "id")?)
            .map_err(|e| StoreError::Backend(format!("stored message id: {e}")))?,
        room: RoomName::new(slug),
        sender: identity(get_s(item, "sender")?)?,
        message: get_s(item, "message")?.to_owned(),
        sent_at: get_n(item, "sentAt")?,
        received_at: get_n(item, "receivedAt")?,
    })
}

/// The sort key of a message: arrival order, then id (unique within the room).
fn at_key(received_at: u64, id: &MessageId) -> String {
    format!("{received_at:0AT_DIGITS$}#{id}")
}

/// A cursor is the `at` of a message this store returned; anything else is refused before it
/// reaches DynamoDB.
fn cursor_check(raw: &str) -> StoreResult<&str> {
    let (digits, id) = raw.split_once('#').ok_or(StoreError::BadCursor)?;
    let ok = digits.len() == AT_DIGITS
        && digits.bytes().all(|b| b.is_ascii_digit())
        && MessageId::parse(id).is_ok();
    if ok { Ok(raw) } else { Err(StoreError::BadCursor) }
}

impl DynamoStore {
    pub fn new(client: Client, tables: Tables) -> Self {
        Self { client, tables }
    }

    pub fn tables(&self) -> &Tables {
        &self.tables
    }

    /// Creates the three tables (on-demand), as the template does, unless they exist, and waits
    /// until they are active. For tests and hand-made setups; the stack makes its own.
    pub async fn create_tables(&self) -> StoreResult<()> {
        let tables = [
            (&self.tables.users, "identityId", None),
            (&self.tables.rooms, "slug", None),
            (&self.tables.messages, "room", Some("at")),
        ];
        for (name, hash, range) in tables {
            let mut request = self
                .client
                .create_table()
                .table_name(name.as_str())
                .billing_mode(BillingMode::PayPerRequest)
                .attribute_definitions(attribute(hash)?)
                .key_schema(key(hash, KeyType::Hash)?);
            if let Some(range) = range {
                request = request
                    .attribute_definitions(attribute(range)?)
                    .key_schema(key(range, KeyType::Range)?);
            }
            match request.send().await {
                Ok(_) => {}
                // It exists already (a second run): waiting for it to be active is enough.
                Err(e)
                    if e.as_service_error().is_some_and(|e| e.is_resource_in_use_exception()) => {}
                Err(e) => return Err(sdk("CreateTable", e)),
            }
        }
        for name in [&self.tables.users, &self.tables.rooms, &self.tables.messages] {
            self.wait_active(name).await?;
        }
        Ok(())
    }

    async fn wait_active(&self, name: &str) -> StoreResult<()> {
        use aws_sdk_dynamodb::types::TableStatus;
        for _ in 0..120 {
            let described = self
                .client
                .describe_table()
                .table_name(name)
                .send()
                .await
                .map_err(|e| sdk("DescribeTable", e))?;
            let status = described.table().and_then(|t| t.table_status());
            if status == Some(&TableStatus::Active) {
                return Ok(());
            }
            tokio_sleep_ms(500).await;
        }
        Err(backend("CreateTable", format!("the table {name} did not become active in a minute")))
    }

    /// Every item of a table (all pages of a `Scan`).
    async fn scan_all(&self, table: &str) -> StoreResult<Vec<Item>> {
        let mut items = Vec::new();
        let mut start: Option<Item> = None;
        loop {
            let page = self
                .client
                .scan()
                .table_name(table)
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(|e| sdk("Scan", e))?;
            items.extend(page.items.unwrap_or_default());
            match page.last_evaluated_key {
                Some(key) if !key.is_empty() => start = Some(key),
                _ => return Ok(items),
            }
        }
    }
}

fn attribute(name: &str) -> StoreResult<AttributeDefinition> {
    AttributeDefinition::builder()
        .attribute_name(name)
        .attribute_type(ScalarAttributeType::S)
        .build()
        .map_err(|e| backend("CreateTable", e))
}

fn key(name: &str, key_type: KeyType) -> StoreResult<KeySchemaElement> {
    KeySchemaElement::builder()
        .attribute_name(name)
        .key_type(key_type)
        .build()
        .map_err(|e| backend("CreateTable", e))
}

/// A pause without naming an async runtime: the SDK's own sleep (tokio underneath).
async fn tokio_sleep_ms(ms: u64) {
    use aws_sdk_dynamodb::config::AsyncSleep as _;
    aws_smithy_async::rt::sleep::TokioSleep::new()
        .sleep(std::time::Duration::from_millis(ms))
        .await;
}

#[async_trait]
impl ChatStore for DynamoStore {
    async fn profile_put(&self, user: User) -> StoreResult<()> {
        self.client
            .put_item()
            .table_name(&self.tables.users)
            .item("identityId", s(user.identity_id.as_str()))
            .item("username", s(user.username))
            .send()
            .await
            .map_err(|e| sdk("PutItem", e))?;
        Ok(())
    }

    async fn profile_get(&self, identity: &IdentityId) -> StoreResult<Option<User>> {
        let found = self
            .client
            .get_item()
            .table_name(&self.tables.users)
            .key("identityId", s(identity.as_str()))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| sdk("GetItem", e))?;
        found.item.as_ref().map(user_from).transpose()
    }

    async fn profiles_list(&self) -> StoreResult<Vec<User>> {
        let mut users = self
            .scan_all(&self.tables.users)
            .await?
            .iter()
            .map(user_from)
            .collect::<Result<Vec<_>, _>>()?;
        users.sort_by_key(|u| u.username.to_lowercase());
        Ok(users)
    }

    async fn room_insert(&self, room: Room) -> StoreResult<()> {
        let result = self
            .client
            .put_item()
            .table_name(&self.tables.rooms)
            .item("slug", s(room.name.slug().as_str()))
            .item("displayName", s(room.display_name))
            .item("createdBy", s(room.created_by.as_str()))
            .item("createdAt", n(room.created_at))
            .condition_expression("attribute_not_exists(slug)")
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(error) => match error.into_service_error() {
                aws_sdk_dynamodb::operation::put_item::PutItemError::ConditionalCheckFailedException(_) => {
                    Err(StoreError::Conflict("room"))
                }
                other => Err(backend("PutItem", aws_sdk_dynamodb::error::DisplayErrorContext(other))),
            },
        }
    }

    async fn room_get(&self, slug: &RoomSlug) -> StoreResult<Option<Room>> {
        let found = self
            .client
            .get_item()
            .table_name(&self.tables.rooms)
            .key("slug", s(slug.as_str()))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| sdk("GetItem", e))?;
        found.item.as_ref().map(room_from).transpose()
    }

    async fn rooms_list(&self) -> StoreResult<Vec<Room>> {
        let mut rooms = self
            .scan_all(&self.tables.rooms)
            .await?
            .iter()
            .map(room_from)
            .collect::<Result<Vec<_>, _>>()?;
        rooms.sort_by(|a, b| a.name.slug().as_str().cmp(b.name.slug().as_str()));
        Ok(rooms)
    }

    async fn message_insert(&self, message: StoredMessage) -> StoreResult<bool> {
        let slug = message.room.slug().as_str().to_owned();
        let marker = Put::builder()
            .table_name(&self.tables.messages)
            .item("room", s(format!("{MARKER_PREFIX}{slug}")))
            .item("at", s(message.id.as_str()))
            .condition_expression("attribute_not_exists(#r)")
            .expression_attribute_names("#r", "room")
            .build()
            .map_err(|e| backend("TransactWriteItems", e))?;
        let item = Put::builder()
            .table_name(&self.tables.messages)
            .item("room", s(slug))
            .item("at", s(at_key(message.received_at, &message.id)))
            .item("id", s(message.id.as_str()))
            .item("sender", s(message.sender.as_str()))
            .item("message", s(message.message))
            .item("sentAt", n(message.sent_at))
            .item("receivedAt", n(message.received_at))
            .build()
            .map_err(|e| backend("TransactWriteItems", e))?;
        let result = self
            .client
            .transact_write_items()
            .transact_items(TransactWriteItem::builder().put(marker).build())
            .transact_items(TransactWriteItem::builder().put(item).build())
            .send()
            .await;
        use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
        match result {
            Ok(_) => Ok(true),
            Err(error) => match error.into_service_error() {
                // The marker's condition failed: this room already holds a message with the id.
                TransactWriteItemsError::TransactionCanceledException(cancelled)
                    if cancelled
                        .cancellation_reasons()
                        .first()
                        .and_then(|r| r.code())
                        .is_some_and(|code| code == "ConditionalCheckFailed") =>
                {
                    Ok(false)
                }
                other => Err(backend(
                    "TransactWriteItems",
                    aws_sdk_dynamodb::error::DisplayErrorContext(other),
                )),
            },
        }
    }

    async fn messages_page(
        &self,
        room: &RoomSlug,
        before: Option<&str>,
        limit: u32,
    ) -> StoreResult<(Vec<StoredMessage>, Option<String>)> {
        let before = before.map(cursor_check).transpose()?;
        let wanted = limit as usize + 1; // one more tells whether an older page exists
        let mut items: Vec<Item> = Vec::with_capacity(wanted);
        let mut start: Option<Item> = None;
        // A query page stops at 1 MB (eight messages of 128 KB): ask again until enough.
        loop {
            let mut query = self
                .client
                .query()
                .table_name(&self.tables.messages)
                .scan_index_forward(false)
                .consistent_read(true)
                .limit(i32::try_from(wanted - items.len()).unwrap_or(i32::MAX))
                .expression_attribute_names("#r", "room")
                .expression_attribute_values(":r", s(room.as_str()))
                .set_exclusive_start_key(start.take());
            query = match before {
                None => query.key_condition_expression("#r = :r"),
                Some(cursor) => query
                    .key_condition_expression("#r = :r AND #a < :before")
                    .expression_attribute_names("#a", "at")
                    .expression_attribute_values(":before", s(cursor)),
            };
            let page = query.send().await.map_err(|e| sdk("Query", e))?;
            items.extend(page.items.unwrap_or_default());
            match page.last_evaluated_key {
                Some(key) if !key.is_empty() && items.len() < wanted => start = Some(key),
                _ => break,
            }
        }
        let more = items.len() > limit as usize;
        items.truncate(limit as usize);
        let next = if more {
            items.last().map(|item| get_s(item, "at").map(str::to_owned)).transpose()?
        } else {
            None
        };
        let messages = items.iter().map(message_from).collect::<Result<Vec<_>, _>>()?;
        Ok((messages, next))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sort_keys_order_by_arrival_and_cursors_are_checked() {
        let id = MessageId::parse("m-1").unwrap();
        let early = at_key(999, &id);
        let late = at_key(1_700_000_000_000, &id);
        assert_eq!(early, "000000000000999#m-1");
        assert!(early < late, "string order is arrival order");
        assert_eq!(cursor_check(&late).unwrap(), late);
        for bad in ["", "12#m", "00000000000099x#m-1", "000000000000999#", "000000000000999#a b"] {
            assert!(matches!(cursor_check(bad), Err(StoreError::BadCursor)), "{bad:?}");
        }
    }
}
