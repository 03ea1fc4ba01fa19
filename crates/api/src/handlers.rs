//! The API's handlers. Each checks its input with the protocol crate's rules and answers the
//! protocol crate's types.

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

use crate::{ApiError, ApiResult, ApiState, Caller, StoreError, now_ms};

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
    State(state): State<ApiState>,
    caller: Caller,
    body: Bytes,
) -> ApiResult<Json<User>> {
    let request: CreateUserRequest = json_body(&body)?;
    let username = state.accounts.username(&caller).await?.ok_or_else(|| {
        ApiError::new(Code::Forbidden, "This identity belongs to no user of the pool.")
    })?;
    // Usernames are unique case-insensitively, as in the pool.
    if username.to_lowercase() != request.username.trim().to_lowercase() {
        return Err(ApiError::new(
            Code::Forbidden,
            format!("You are signed in as {username:?} and can only record that username."),
        ));
    }
    let profile = User { identity_id: caller.identity, username };
    state.chat.profile_put(profile.clone()).await?;
    Ok(Json(profile))
}

/// `GET /users/me`.
pub(crate) async fn user_me(
    State(state): State<ApiState>,
    caller: Caller,
) -> ApiResult<Json<User>> {
    state.chat.profile_get(&caller.identity).await?.map(Json).ok_or_else(|| {
        ApiError::new(
            Code::NotFound,
            "You have no profile yet: record your username with POST /users.",
        )
    })
}

/// `GET /users/{identityId}`.
pub(crate) async fn user_get(
    State(state): State<ApiState>,
    _caller: Caller,
    Path(raw): Path<String>,
) -> ApiResult<Json<User>> {
    let id =
        IdentityId::parse(&raw).map_err(|e| ApiError::new(Code::InvalidInput, e.to_string()))?;
    state
        .chat
        .profile_get(&id)
        .await?
        .map(Json)
        .ok_or_else(|| ApiError::new(Code::NotFound, format!("No user has the identity {id}.")))
}

/// `GET /users`.
pub(crate) async fn users_list(
    State(state): State<ApiState>,
    _caller: Caller,
) -> ApiResult<Json<UserList>> {
    Ok(Json(UserList { users: state.chat.profiles_list().await? }))
}

/// `GET /chats`.
pub(crate) async fn rooms_list(
    State(state): State<ApiState>,
    _caller: Caller,
) -> ApiResult<Json<RoomList>> {
    Ok(Json(RoomList { rooms: state.chat.rooms_list().await? }))
}

/// `POST /chats`: creates a room from a display name; a taken slug is a 409.
pub(crate) async fn room_create(
    State(state): State<ApiState>,
    caller: Caller,
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
    match state.chat.room_insert(room.clone()).await {
        Ok(()) => {
            tracing::info!(room = %name, "room created");
            Ok((StatusCode::CREATED, Json(room)).into_response())
        }
        Err(StoreError::Conflict(_)) => {
            let existing = state.chat.room_get(name.slug()).await?;
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
    State(state): State<ApiState>,
    _caller: Caller,
    RawQuery(query): RawQuery,
) -> ApiResult<Json<MessagePage>> {
    let query: HistoryQuery = query_string(query.as_deref().unwrap_or_default())?;
    let room = RoomName::from_user_input(&query.room)
        .map_err(|e| ApiError::new(Code::InvalidInput, format!("room: {e}")))?;
    let before = query.before.as_deref().filter(|b| !b.is_empty());
    let limit = match query.limit.as_deref() {
        None | Some("") => None,
        Some(raw) => Some(raw.parse::<u32>().map_err(|_| {
            ApiError::new(Code::InvalidInput, "limit: give a whole number of messages.")
        })?),
    };
    let limit = iotchat_protocol::api::MessagesQuery { room: room.clone(), before: None, limit }
        .effective_limit();
    if state.chat.room_get(room.slug()).await?.is_none() {
        return Err(ApiError::new(Code::NotFound, format!("There is no room {room}.")));
    }
    let (messages, next_before) = state.chat.messages_page(room.slug(), before, limit).await?;
    Ok(Json(MessagePage { messages, next_before }))
}

fn query_string<T: DeserializeOwned>(raw: &str) -> ApiResult<T> {
    axum::extract::Query::<T>::try_from_uri(
        &format!("/?{raw}").parse().map_err(|_| ApiError::new(Code::InvalidInput, "bad query"))?,
    )
    .map(|q| q.0)
    .map_err(|e| ApiError::new(Code::InvalidInput, format!("The query string is not valid: {e}")))
}

/// `POST /policy/attach`: attaches the IoT policy to the caller's identity (idempotent).
pub(crate) async fn policy_attach(
    State(state): State<ApiState>,
    caller: Caller,
) -> ApiResult<Json<PolicyAttachResponse>> {
    let policy_name = state.accounts.policy_attach(&caller.identity).await?;
    Ok(Json(PolicyAttachResponse { identity_id: caller.identity, policy_name }))
}
