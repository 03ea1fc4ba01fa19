//! Request and response types for every HTTP API route (API Gateway with IAM auth on AWS,
//! `iotchat-server` locally). The caller is always the SigV4-signed Cognito identity, so no
//! request names its own identity. JSON field names are camelCase, as in the seed.

use serde::{Deserialize, Serialize};

use crate::identity::IdentityId;
use crate::payload::MessageId;
use crate::slug::{RoomDisplayName, RoomSlug, SlugError};
use crate::topic::RoomName;

/// Route paths, shared by the server's router and the client.
pub mod routes {
    /// `POST`: record the caller's profile. `GET`: list users.
    pub const USERS: &str = "/users";
    /// `GET`: the caller's profile.
    pub const USERS_ME: &str = "/users/me";
    /// `GET /users/{identityId}`: one user's profile (author-name lookups).
    pub const USER: &str = "/users/{identityId}";
    /// `GET`: every room. `POST`: create a room.
    pub const CHATS: &str = "/chats";
    /// `GET ?room=…&before=…&limit=…`: a page of a room's history, newest first.
    pub const CHAT_MESSAGES: &str = "/chats/messages";
    /// `POST`: attach the IoT policy to the caller's identity (idempotent).
    pub const POLICY_ATTACH: &str = "/policy/attach";

    /// The path of one user's profile.
    pub fn user(identity_id: &crate::IdentityId) -> String {
        format!("/users/{identity_id}")
    }
}

/// A user's public profile.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct User {
    pub identity_id: IdentityId,
    pub username: String,
}

/// `POST /users`: record the caller's username against their identity.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CreateUserRequest {
    pub username: String,
}

/// `GET /users`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UserList {
    pub users: Vec<User>,
}

/// Room visibility. Only public rooms exist; the broker policy admits nothing else.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RoomType {
    Public,
}

/// A room as listed by `GET /chats`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Room {
    /// `room/public/<slug>`: the seed's room name and the topic prefix.
    pub name: RoomName,
    /// What the creator typed.
    pub display_name: String,
    #[serde(rename = "type")]
    pub room_type: RoomType,
    pub created_by: IdentityId,
    /// Milliseconds since 1970.
    pub created_at: u64,
}

/// `POST /chats`: create a room from a display name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CreateRoomRequest {
    /// The display name as typed; the server derives the slug with [`RoomSlug::from_display_name`].
    pub room_name: String,
    #[serde(rename = "type")]
    pub room_type: RoomType,
}

impl CreateRoomRequest {
    /// The checked display name and the room it creates.
    pub fn validate(&self) -> Result<(RoomDisplayName, RoomName), SlugError> {
        let display = RoomDisplayName::parse(&self.room_name)?;
        let slug: RoomSlug = display.slug()?;
        Ok((display, RoomName::new(slug)))
    }
}

/// `GET /chats`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RoomList {
    pub rooms: Vec<Room>,
}

/// `POST /policy/attach`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PolicyAttachResponse {
    pub identity_id: IdentityId,
    pub policy_name: String,
}

/// Default number of messages in a history page.
pub const DEFAULT_PAGE_SIZE: u32 = 50;
/// Largest page the server returns, whatever the client asks for.
pub const MAX_PAGE_SIZE: u32 = 200;

/// `GET /chats/messages` query string.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MessagesQuery {
    pub room: RoomName,
    /// Opaque cursor from a previous page's `nextBefore`; absent for the newest page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub before: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<u32>,
}

impl MessagesQuery {
    /// The page size the server uses: the default when absent, capped, at least 1.
    pub fn effective_limit(&self) -> u32 {
        self.limit.unwrap_or(DEFAULT_PAGE_SIZE).clamp(1, MAX_PAGE_SIZE)
    }
}

/// A message as history stores it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StoredMessage {
    pub id: MessageId,
    pub room: RoomName,
    pub sender: IdentityId,
    pub message: String,
    /// The sender's clock (or the receive time for seed clients), ms since 1970.
    pub sent_at: u64,
    /// The server's clock when it accepted the message, ms since 1970.
    pub received_at: u64,
}

/// One page of history, newest first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MessagePage {
    pub messages: Vec<StoredMessage>,
    /// Pass as `before` for the next (older) page; absent when this is the oldest.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_before: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALICE: &str = "us-east-1:7f86d9a8-b9f4-439e-bcf3-9756e4d2bbdf";

    #[test]
    fn create_room_request_uses_the_seed_field_names_and_slug_rules() {
        let req: CreateRoomRequest =
            serde_json::from_str(r#"{"roomName":"Über Café 2020","type":"public"}"#).unwrap();
        let (display, room) = req.validate().unwrap();
        assert_eq!(display.as_str(), "Über Café 2020");
        assert_eq!(room.to_string(), "room/public/uber-cafe-2020");

        let empty = CreateRoomRequest { room_name: "!!!".into(), room_type: RoomType::Public };
        assert!(matches!(empty.validate(), Err(SlugError::NothingToSlug(_))));
        assert!(
            serde_json::from_str::<CreateRoomRequest>(r#"{"roomName":"x","type":"private"}"#)
                .is_err(),
            "only public rooms exist"
        );
    }

    #[test]
    fn room_serializes_like_the_seed() {
        let room = Room {
            name: RoomName::parse("room/public/general").unwrap(),
            display_name: "General".into(),
            room_type: RoomType::Public,
            created_by: IdentityId::parse(ALICE).unwrap(),
            created_at: 5,
        };
        let json = serde_json::to_value(&room).unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "name": "room/public/general",
                "displayName": "General",
                "type": "public",
                "createdBy": ALICE,
                "createdAt": 5
            })
        );
        assert_eq!(serde_json::from_value::<Room>(json).unwrap(), room);
    }

    #[test]
    fn history_query_limits_are_defaulted_and_capped() {
        let q = |limit| MessagesQuery {
            room: RoomName::parse("room/public/general").unwrap(),
            before: None,
            limit,
        };
        assert_eq!(q(None).effective_limit(), DEFAULT_PAGE_SIZE);
        assert_eq!(q(Some(0)).effective_limit(), 1);
        assert_eq!(q(Some(10)).effective_limit(), 10);
        assert_eq!(q(Some(1_000_000)).effective_limit(), MAX_PAGE_SIZE);
    }

    #[test]
    fn message_page_round_trips_and_rejects_bad_ids() {
        let page = MessagePage {
            messages: vec![StoredMessage {
                id: MessageId::parse("m-1").unwrap(),
                room: RoomName::parse("room/public/general").unwrap(),
                sender: IdentityId::parse(ALICE).unwrap(),
                message: "<script>alert(1)</script>".into(),
                sent_at: 1,
                received_at: 2,
            }],
            next_before: Some("cursor".into()),
        };
        let json = serde_json::to_string(&page).unwrap();
        assert!(json.contains("\"nextBefore\":\"cursor\""), "{json}");
        assert_eq!(serde_json::from_str::<MessagePage>(&json).unwrap(), page);
        let forged = json.replace(ALICE, "someone/else");
        assert!(serde_json::from_str::<MessagePage>(&forged).is_err());
    }

    #[test]
    fn user_paths_are_built_from_checked_ids() {
        let id = IdentityId::parse(ALICE).unwrap();
        assert_eq!(routes::user(&id), format!("/users/{ALICE}"));
        let user: User =
            serde_json::from_str(&format!(r#"{{"identityId":"{ALICE}","username":"alice"}}"#))
                .unwrap();
        assert_eq!(user.identity_id, id);
    }
}
