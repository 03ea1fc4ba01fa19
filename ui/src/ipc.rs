//! Calls into the desktop shell. Every command answers `T` or the shared `{code, message}`.
//!
//! The typed wrappers below are the whole contract with `src-tauri`: one function per command,
//! argument keys in camelCase as Tauri expects them.

use iotchat_protocol::chat::{Account, FollowedRoom, HistoryPage, RoomSummary, TimelineMessage};
use iotchat_protocol::desktop::{
    AppInfo, BackendChoice, BackendInfo, SessionState, Settings, TeamServer, UpdateStatus,
};
use iotchat_protocol::{Code, ErrorBody, MessageId, RoomName, api::Room};
use serde::Serialize;
use serde::de::DeserializeOwned;
use wasm_bindgen::prelude::*;

#[wasm_bindgen]
extern "C" {
    // `app.withGlobalTauri` in tauri.conf.json exposes this; outside the app it throws.
    #[wasm_bindgen(catch, js_namespace = ["window", "__TAURI__", "core"], js_name = invoke)]
    async fn tauri_invoke(cmd: &str, args: JsValue) -> Result<JsValue, JsValue>;

    // Resolves to an unlisten function once the shell has registered the listener.
    #[wasm_bindgen(catch, js_namespace = ["window", "__TAURI__", "event"], js_name = listen)]
    async fn tauri_listen(
        event: &str,
        handler: &Closure<dyn FnMut(JsValue)>,
    ) -> Result<JsValue, JsValue>;
}

/// Arguments of a command that takes none.
#[derive(Debug, Serialize)]
pub(crate) struct NoArgs {}

/// Invokes `cmd` with `args` (serialized as a plain object) and decodes the answer.
pub(crate) async fn invoke<T: DeserializeOwned>(
    cmd: &str,
    args: &impl Serialize,
) -> Result<T, ErrorBody> {
    if !in_the_app() {
        return Err(not_in_the_app());
    }
    let serializer = serde_wasm_bindgen::Serializer::json_compatible();
    let args = args.serialize(&serializer).map_err(|e| {
        ErrorBody::new(Code::Internal, format!("Could not encode the {cmd} request: {e}"))
    })?;
    match tauri_invoke(cmd, args).await {
        Ok(value) => serde_wasm_bindgen::from_value(value).map_err(|e| {
            ErrorBody::new(
                Code::Internal,
                format!("The app answered {cmd} in an unexpected shape: {e}"),
            )
        }),
        Err(error) => Err(serde_wasm_bindgen::from_value::<ErrorBody>(error.clone())
            .unwrap_or_else(|_| not_an_error_body(cmd, &error))),
    }
}

/// Calls `on` with the payload of every `event` the shell emits, for the life of the page.
///
/// The listener lives as long as the window, so its closure is leaked on purpose: the UI never
/// stops listening, and dropping the closure would leave JavaScript calling freed memory.
pub(crate) async fn listen<T: DeserializeOwned + 'static>(
    event: &str,
    mut on: impl FnMut(Result<T, ErrorBody>) + 'static,
) -> Result<(), ErrorBody> {
    if !in_the_app() {
        return Err(not_in_the_app());
    }
    let name = event.to_owned();
    let handler = Closure::<dyn FnMut(JsValue)>::new(move |raw: JsValue| {
        let payload =
            js_sys::Reflect::get(&raw, &JsValue::from_str("payload")).unwrap_or(JsValue::UNDEFINED);
        on(serde_wasm_bindgen::from_value(payload).map_err(|e| {
            ErrorBody::new(
                Code::Internal,
                format!("The app sent a {name} event in an unexpected shape: {e}"),
            )
        }))
    });
    tauri_listen(event, &handler).await.map_err(|error| not_an_error_body("listen", &error))?;
    handler.forget();
    Ok(())
}

/// Whether the shell's API is there. Checked first: calling into a missing `window.__TAURI__`
/// throws before a promise exists, which the async bindings cannot turn into an `Err`.
fn in_the_app() -> bool {
    let tauri = js_sys::Reflect::get(&js_sys::global(), &"__TAURI__".into());
    tauri.is_ok_and(|v| v.is_object())
}

fn not_in_the_app() -> ErrorBody {
    ErrorBody::new(
        Code::Unavailable,
        "This window is not connected to the IoT Chat app. Open it through the app, not a browser.",
    )
}

fn not_an_error_body(cmd: &str, error: &JsValue) -> ErrorBody {
    let detail = error
        .as_string()
        .or_else(|| js_sys::JSON::stringify(error).ok().and_then(|s| s.as_string()))
        .unwrap_or_else(|| "no details".to_owned());
    ErrorBody::new(Code::Internal, format!("The app could not run {cmd}: {detail}"))
}

// The commands. Argument structs mirror the shell's parameter names in camelCase.

pub(crate) async fn app_info() -> Result<AppInfo, ErrorBody> {
    invoke("app_info", &NoArgs {}).await
}

pub(crate) async fn session_state() -> Result<SessionState, ErrorBody> {
    invoke("session_state", &NoArgs {}).await
}

#[derive(Debug, Serialize)]
struct RegisterArgs<'a> {
    username: &'a str,
    email: &'a str,
    password: &'a str,
}

pub(crate) async fn session_register(
    username: &str,
    email: &str,
    password: &str,
) -> Result<(), ErrorBody> {
    invoke("session_register", &RegisterArgs { username, email, password }).await
}

#[derive(Debug, Serialize)]
struct LoginArgs<'a> {
    username: &'a str,
    password: &'a str,
}

pub(crate) async fn session_login(username: &str, password: &str) -> Result<Account, ErrorBody> {
    invoke("session_login", &LoginArgs { username, password }).await
}

#[derive(Debug, Serialize)]
struct ProviderArgs<'a> {
    provider: &'a str,
}

/// Signs in through `provider` in the system browser; answers when the browser comes back.
pub(crate) async fn session_login_provider(provider: &str) -> Result<Account, ErrorBody> {
    invoke("session_login_provider", &ProviderArgs { provider }).await
}

/// Stops a sign-in waiting for the browser (it answers `Code::Cancelled`).
pub(crate) async fn session_login_provider_cancel() -> Result<(), ErrorBody> {
    invoke("session_login_provider_cancel", &NoArgs {}).await
}

pub(crate) async fn session_logout() -> Result<(), ErrorBody> {
    invoke("session_logout", &NoArgs {}).await
}

#[derive(Debug, Serialize)]
struct BackendArgs<'a> {
    choice: &'a BackendChoice,
}

pub(crate) async fn backend_set(choice: &BackendChoice) -> Result<BackendInfo, ErrorBody> {
    invoke("backend_set", &BackendArgs { choice }).await
}

pub(crate) async fn rooms_list() -> Result<Vec<RoomSummary>, ErrorBody> {
    invoke("rooms_list", &NoArgs {}).await
}

pub(crate) async fn rooms_followed() -> Result<Vec<FollowedRoom>, ErrorBody> {
    invoke("rooms_followed", &NoArgs {}).await
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct CreateArgs<'a> {
    display_name: &'a str,
}

pub(crate) async fn room_create(display_name: &str) -> Result<Room, ErrorBody> {
    invoke("room_create", &CreateArgs { display_name }).await
}

#[derive(Debug, Serialize)]
struct RoomArgs<'a> {
    room: &'a RoomName,
}

pub(crate) async fn room_join(room: &RoomName) -> Result<(), ErrorBody> {
    invoke("room_join", &RoomArgs { room }).await
}

pub(crate) async fn room_leave(room: &RoomName) -> Result<(), ErrorBody> {
    invoke("room_leave", &RoomArgs { room }).await
}

#[derive(Debug, Serialize)]
struct MuteArgs<'a> {
    room: &'a RoomName,
    muted: bool,
}

pub(crate) async fn room_mute(room: &RoomName, muted: bool) -> Result<(), ErrorBody> {
    invoke("room_mute", &MuteArgs { room, muted }).await
}

#[derive(Debug, Serialize)]
struct OpenArgs<'a> {
    room: Option<&'a RoomName>,
}

pub(crate) async fn room_open(room: Option<&RoomName>) -> Result<(), ErrorBody> {
    invoke("room_open", &OpenArgs { room }).await
}

#[derive(Debug, Serialize)]
struct HistoryArgs<'a> {
    room: &'a RoomName,
    before: Option<&'a str>,
    limit: u32,
}

pub(crate) async fn history_page(
    room: &RoomName,
    before: Option<&str>,
    limit: u32,
) -> Result<HistoryPage, ErrorBody> {
    invoke("history_page", &HistoryArgs { room, before, limit }).await
}

pub(crate) async fn outbox_list(room: &RoomName) -> Result<Vec<TimelineMessage>, ErrorBody> {
    invoke("outbox_list", &RoomArgs { room }).await
}

#[derive(Debug, Serialize)]
struct SendArgs<'a> {
    room: &'a RoomName,
    text: &'a str,
}

pub(crate) async fn message_send(
    room: &RoomName,
    text: &str,
) -> Result<TimelineMessage, ErrorBody> {
    invoke("message_send", &SendArgs { room, text }).await
}

#[derive(Debug, Serialize)]
struct IdArgs<'a> {
    id: &'a MessageId,
}

pub(crate) async fn message_retry(id: &MessageId) -> Result<(), ErrorBody> {
    invoke("message_retry", &IdArgs { id }).await
}

pub(crate) async fn message_discard(id: &MessageId) -> Result<(), ErrorBody> {
    invoke("message_discard", &IdArgs { id }).await
}

pub(crate) async fn settings_get() -> Result<Settings, ErrorBody> {
    invoke("settings_get", &NoArgs {}).await
}

#[derive(Debug, Serialize)]
struct SettingsArgs<'a> {
    settings: &'a Settings,
}

pub(crate) async fn settings_set(settings: &Settings) -> Result<Settings, ErrorBody> {
    invoke("settings_set", &SettingsArgs { settings }).await
}

pub(crate) async fn update_status() -> Result<UpdateStatus, ErrorBody> {
    invoke("update_status", &NoArgs {}).await
}

pub(crate) async fn update_check() -> Result<UpdateStatus, ErrorBody> {
    invoke("update_check", &NoArgs {}).await
}

pub(crate) async fn update_install() -> Result<(), ErrorBody> {
    invoke("update_install", &NoArgs {}).await
}

pub(crate) async fn update_dismiss() -> Result<(), ErrorBody> {
    invoke("update_dismiss", &NoArgs {}).await
}

pub(crate) async fn team_server() -> Result<Option<TeamServer>, ErrorBody> {
    invoke("team_server", &NoArgs {}).await
}
