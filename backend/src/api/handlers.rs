//! The API's handlers. Each checks its input with the protocol crate's rules and answers the
//! protocol crate's types.

use axum::Extension;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Json, Response};
use iotchat_protocol::api::{
    CreateRoomRequest, CreateUserRequest, MessagePage, PolicyAttachResponse, Room, RoomList, User,
    UserList,
};
use iotchat_protocol::{Code, IdentityId, RoomName};
use serde::de::DeserializeOwned;

use super::{ApiError, ApiResult, Caller};
use crate::storage::StoreError;
use crate::{AppState, now_ms};

/// The name of the one IoT policy every signed-in identity gets (policy variables make it
/// per-identity on AWS; locally the broker enforces the same rules).
pub(crate) const POLICY_NAME: &str = "iotchat-user";

fn json_body<T: DeserializeOwned>(body: &[u8]) -> ApiResult<T> {
    serde_json::from_slice(body).map_err(|e| {
        ApiError::new(
            Code::InvalidInput,
            format!("The request body is not what this call takes: {e}"),
        )
    })
}

pub(crate) async fn not_found() -> ApiError {
    ApiError::new(Code::NotFound, "There is no such API route.")
}

/// `POST /users`: records the caller's username. It must be the caller's own Cognito username.
pub(crate) async fn user_create(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    body: Bytes,
) -> ApiResult<Json<User>> {
    let request: CreateUserRequest = json_body(&body)?;
    let owner = state.store.identity_owner(&caller.identity).await?;
    let user = match owner {
        Some(sub) => state.store.user_by_sub(&sub).await?,
        None => None,
    }
    .ok_or_else(|| {
        ApiError::new(Code::Forbidden, "This identity belongs to no user of the pool.")
    })?;
    // Usernames are unique case-insensitively, as in the pool.
    if user.username.to_lowercase() != request.username.trim().to_lowercase() {
        return Err(ApiError::new(
            Code::Forbidden,
            format!("You are signed in as {:?} and can only record that username.", user.username),
        ));
    }
    let profile = User { identity_id: caller.identity, username: user.username };
    state.store.profile_put(profile.clone()).await?;
    Ok(Json(profile))
}

/// `GET /users/me`.
pub(crate) async fn user_me(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
) -> ApiResult<Json<User>> {
    state.store.profile_get(&caller.identity).await?.map(Json).ok_or_else(|| {
        ApiError::new(
            Code::NotFound,
            "You have no profile yet: record your username with POST /users.",
        )
    })
}

/// `GET /users/{identityId}`.
pub(crate) async fn user_get(
    State(state): State<AppState>,
    Path(raw): Path<String>,
) -> ApiResult<Json<User>> {
    let id =
        IdentityId::parse(&raw).map_err(|e| ApiError::new(Code::InvalidInput, e.to_string()))?;
    state
        .store
        .profile_get(&id)
        .await?
        .map(Json)
        .ok_or_else(|| ApiError::new(Code::NotFound, format!("No user has the identity {id}.")))
}

/// `GET /users`.
pub(crate) async fn users_list(State(state): State<AppState>) -> ApiResult<Json<UserList>> {
    Ok(Json(UserList { users: state.store.profiles_list().await? }))
}

/// `GET /chats`.
pub(crate) async fn rooms_list(State(state): State<AppState>) -> ApiResult<Json<RoomList>> {
    Ok(Json(RoomList { rooms: state.store.rooms_list().await? }))
}

/// `POST /chats`: creates a room from a display name; a taken slug is a 409.
pub(crate) async fn room_create(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    body: Bytes,
) -> ApiResult<Response> {
    let request: CreateRoomRequest = json_body(&body)?;
    let (display, name) =
        request.validate().map_err(|e| ApiError::new(Code::InvalidInput, e.to_string()))?;
    let room = Room {
        name: name.clone(),
        display_name: display.as_str().to_owned(),
        room_type: request.room_type,
        created_by: caller.identity,
        created_at: now_ms(),
    };
    match state.store.room_insert(room.clone()).await {
        Ok(()) => {
            tracing::info!(room = %name, "room created");
            Ok((StatusCode::CREATED, Json(room)).into_response())
        }
        Err(StoreError::Conflict(_)) => {
            let existing = state.store.room_get(name.slug()).await?;
            let shown = existing.map_or_else(|| name.to_string(), |r| r.display_name);
            Err(ApiError::new(
                Code::RoomExists,
                format!(
                    "A room named “{shown}” already exists at {name}. Join it, or pick another name."
                ),
            ))
        }
        Err(e) => Err(e.into()),
    }
}

#[derive(serde::Deserialize)]
struct HistoryQuery {
    room: String,
    #[serde(default)]
    before: Option<String>,
    #[serde(default)]
    limit: Option<String>,
}

/// `GET /chats/messages?room=…&before=…&limit=…`: newest first, cursor paging, limit capped.
pub(crate) async fn messages_page(
    State(state): State<AppState>,
    RawQuery(query): RawQuery,
) -> ApiResult<Json<MessagePage>> {
    let query: HistoryQuery = serde_urlencoded_query(query.as_deref().unwrap_or_default())?;
    let room = RoomName::from_user_input(&query.room)
        .map_err(|e| ApiError::new(Code::InvalidInput, format!("room: {e}")))?;
    let before = match query.before.as_deref() {
        None | Some("") => None,
        Some(raw) => Some(raw.parse::<u64>().map_err(|_| {
            ApiError::new(Code::InvalidInput, "before: not a cursor from a previous page.")
        })?),
    };
    let limit = match query.limit.as_deref() {
        None | Some("") => None,
        Some(raw) => Some(raw.parse::<u32>().map_err(|_| {
            ApiError::new(Code::InvalidInput, "limit: give a whole number of messages.")
        })?),
    };
    let limit = iotchat_protocol::api::MessagesQuery { room: room.clone(), before: None, limit }
        .effective_limit();
    if state.store.room_get(room.slug()).await?.is_none() {
        return Err(ApiError::new(Code::NotFound, format!("There is no room {room}.")));
    }
    let (messages, next) = state.store.messages_page(room.slug(), before, limit).await?;
    Ok(Json(MessagePage { messages, next_before: next.map(|seq| seq.to_string()) }))
}

fn serde_urlencoded_query<T: DeserializeOwned>(raw: &str) -> ApiResult<T> {
    axum::extract::Query::<T>::try_from_uri(
        &format!("/?{raw}").parse().map_err(|_| ApiError::new(Code::InvalidInput, "bad query"))?,
    )
    .map(|q| q.0)
    .map_err(|e| ApiError::new(Code::InvalidInput, format!("The query string is not valid: {e}")))
}

/// `POST /policy/attach`: attaches the IoT policy to the caller's identity (idempotent).
pub(crate) async fn policy_attach(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
) -> ApiResult<Json<PolicyAttachResponse>> {
    state.store.policy_attach(&caller.identity, now_ms()).await?;
    Ok(Json(PolicyAttachResponse { identity_id: caller.identity, policy_name: POLICY_NAME.into() }))
}
