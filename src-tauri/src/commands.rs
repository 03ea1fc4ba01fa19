//! IPC commands, named `<domain>_<verb>`. Each delegates to the client core and returns
//! `Result<_, ErrorBody>`, so the UI always receives the same `{code, message}` shape.

use iotchat_client::protocol::api::Room;
use iotchat_client::protocol::chat::{
    Account, FollowedRoom, HistoryPage, RoomSummary, TimelineMessage,
};
use iotchat_client::protocol::desktop::{
    AppInfo, BackendChoice, BackendInfo, SessionState, Settings, TeamServer, UpdateStatus,
};
use iotchat_client::protocol::{Code, ErrorBody, MessageId, RoomName};
use tauri::State;

use crate::shell::{Shell, error};
use crate::tray;
use crate::updates::Updates;

type Answer<T> = Result<T, ErrorBody>;

fn room_name(raw: &str) -> Answer<RoomName> {
    RoomName::from_user_input(raw).map_err(|e| ErrorBody::new(Code::InvalidInput, e.to_string()))
}

fn message_id(raw: &str) -> Answer<MessageId> {
    MessageId::parse(raw).map_err(|e| ErrorBody::new(Code::InvalidInput, e.to_string()))
}

/// What is running: product, version, Tauri version and OS.
#[tauri::command]
pub(crate) fn app_info(app: tauri::AppHandle) -> Answer<AppInfo> {
    let package = app.package_info();
    Ok(AppInfo {
        product_name: package.name.clone(),
        version: package.version.to_string(),
        tauri_version: tauri::VERSION.to_owned(),
        os: std::env::consts::OS.to_owned(),
    })
}

/// Who is signed in where; resumes the last session on the first call.
#[tauri::command]
pub(crate) async fn session_state(shell: State<'_, Shell>) -> Answer<SessionState> {
    let mut notice = shell.keychain_problem();
    let mut account = None;
    let mut connection = iotchat_client::ConnectionState::Offline;
    match shell.restore_once().await {
        Ok(ended) => notice = ended.or(notice),
        // The backend is unreachable: say so on the login screen (in BackendInfo).
        Err(e) => tracing::info!(message = %e.message, "no session restored"),
    }
    if let Ok(client) = shell.client().await {
        account = client.account().await;
        connection = client.connection();
        let kind = client.secret_store_kind();
        if account.is_some() && !kind.survives_reboot() && notice.is_none() {
            notice = Some(kind.describe().to_owned());
        }
    }
    Ok(SessionState {
        account,
        backend: shell.backend_info(),
        connection,
        secret_store: shell.secret_store(),
        notice,
    })
}

#[tauri::command]
pub(crate) async fn session_register(
    shell: State<'_, Shell>,
    username: String,
    email: String,
    password: String,
) -> Answer<()> {
    shell.client().await?.register(username.trim(), email.trim(), &password).await.map_err(error)
}

#[tauri::command]
pub(crate) async fn session_login(
    app: tauri::AppHandle,
    shell: State<'_, Shell>,
    username: String,
    password: String,
) -> Answer<Account> {
    let client = shell.client().await?;
    let account = client.login(&username, &password).await.map_err(error)?;
    tray::refresh_unread(&app, &client).await;
    Ok(account)
}

/// Opens the sign-in in the system browser, and tells the window its address (shown to copy
/// when no browser opens).
struct ShellBrowser(tauri::AppHandle);

impl iotchat_client::OpenUrl for ShellBrowser {
    fn open(&self, url: &str) -> std::io::Result<()> {
        use tauri::Emitter as _;
        let _ = self.0.emit(iotchat_client::protocol::desktop::EVENT_SIGN_IN_URL, url);
        iotchat_client::SystemBrowser.open(url)
    }
}

/// Signs in through an identity provider in the system browser; answers when the browser
/// comes back (or after five minutes, or `session_login_provider_cancel`), and brings the
/// window forward again.
#[tauri::command]
pub(crate) async fn session_login_provider(
    app: tauri::AppHandle,
    shell: State<'_, Shell>,
    provider: String,
) -> Answer<Account> {
    let client = shell.client().await?;
    let opener = ShellBrowser(app.clone());
    let result = client
        .login_with_provider(&provider, &opener, iotchat_client::oauth::SIGN_IN_TIMEOUT)
        .await;
    if !matches!(&result, Err(e) if e.code == Code::Cancelled) {
        crate::shell::show_window(&app);
    }
    let account = result.map_err(error)?;
    tray::refresh_unread(&app, &client).await;
    Ok(account)
}

/// Stops a sign-in waiting for the browser.
#[tauri::command]
pub(crate) async fn session_login_provider_cancel(shell: State<'_, Shell>) -> Answer<()> {
    shell.client().await?.cancel_provider_login();
    Ok(())
}

#[tauri::command]
pub(crate) async fn session_logout(app: tauri::AppHandle, shell: State<'_, Shell>) -> Answer<()> {
    let client = shell.client().await?;
    let result = client.logout().await.map_err(error);
    tray::show_unread(&app, 0);
    result
}

#[tauri::command]
pub(crate) async fn backend_set(
    shell: State<'_, Shell>,
    choice: BackendChoice,
) -> Answer<BackendInfo> {
    shell.set_backend_choice(choice).await
}

#[tauri::command]
pub(crate) async fn rooms_list(shell: State<'_, Shell>) -> Answer<Vec<RoomSummary>> {
    shell.client().await?.rooms().await.map_err(error)
}

#[tauri::command]
pub(crate) async fn rooms_followed(shell: State<'_, Shell>) -> Answer<Vec<FollowedRoom>> {
    shell.client().await?.followed().await.map_err(error)
}

#[tauri::command]
pub(crate) async fn room_create(shell: State<'_, Shell>, display_name: String) -> Answer<Room> {
    shell.client().await?.room_create(&display_name).await.map_err(error)
}

#[tauri::command]
pub(crate) async fn room_join(shell: State<'_, Shell>, room: String) -> Answer<()> {
    let room = room_name(&room)?;
    shell.client().await?.room_join(&room).await.map_err(error)
}

#[tauri::command]
pub(crate) async fn room_leave(shell: State<'_, Shell>, room: String) -> Answer<()> {
    let room = room_name(&room)?;
    shell.client().await?.room_leave(&room).await.map_err(error)
}

#[tauri::command]
pub(crate) async fn room_mute(shell: State<'_, Shell>, room: String, muted: bool) -> Answer<()> {
    let room = room_name(&room)?;
    shell.client().await?.room_mute(&room, muted).await.map_err(error)
}

/// The UI shows this room now (`null`: no room).
#[tauri::command]
pub(crate) async fn room_open(shell: State<'_, Shell>, room: Option<String>) -> Answer<()> {
    let room = room.as_deref().map(room_name).transpose()?;
    shell.show_room(room).await
}

#[tauri::command]
pub(crate) async fn history_page(
    shell: State<'_, Shell>,
    room: String,
    before: Option<String>,
    limit: Option<u32>,
) -> Answer<HistoryPage> {
    let room = room_name(&room)?;
    let limit = limit.unwrap_or(iotchat_client::protocol::api::DEFAULT_PAGE_SIZE);
    shell.client().await?.history(&room, before.as_deref(), limit).await.map_err(error)
}

#[tauri::command]
pub(crate) async fn outbox_list(
    shell: State<'_, Shell>,
    room: String,
) -> Answer<Vec<TimelineMessage>> {
    let room = room_name(&room)?;
    shell.client().await?.outbox(Some(&room)).await.map_err(error)
}

#[tauri::command]
pub(crate) async fn message_send(
    shell: State<'_, Shell>,
    room: String,
    text: String,
) -> Answer<TimelineMessage> {
    let room = room_name(&room)?;
    shell.client().await?.message_send(&room, &text).await.map_err(error)
}

#[tauri::command]
pub(crate) async fn message_retry(shell: State<'_, Shell>, id: String) -> Answer<()> {
    let id = message_id(&id)?;
    shell.client().await?.message_retry(&id).await.map_err(error)
}

#[tauri::command]
pub(crate) async fn message_discard(shell: State<'_, Shell>, id: String) -> Answer<()> {
    let id = message_id(&id)?;
    shell.client().await?.message_discard(&id).await.map_err(error)
}

#[tauri::command]
pub(crate) fn settings_get(shell: State<'_, Shell>) -> Answer<Settings> {
    Ok(shell.settings())
}

/// Saves the settings. Hosting for the team, switched on or off, restarts the server first; if
/// that fails, the old setting stays and the answer says why.
#[tauri::command]
pub(crate) async fn settings_set(shell: State<'_, Shell>, settings: Settings) -> Answer<Settings> {
    let hosting_before = shell.settings().host_for_team;
    let saved = shell.set_settings(settings)?;
    if saved.host_for_team != hosting_before
        && let Err(e) = shell.rehost(saved.host_for_team).await
    {
        let mut back = saved;
        back.host_for_team = hosting_before;
        shell.set_settings(back)?;
        if let Err(again) = shell.rehost(hosting_before).await {
            tracing::warn!(message = %again.message, "the server did not come back either");
        }
        return Err(e);
    }
    Ok(saved)
}

/// What the team needs to connect to the server this app hosts (`None` while not hosting).
#[tauri::command]
pub(crate) fn team_server(shell: State<'_, Shell>) -> Answer<Option<TeamServer>> {
    Ok(shell.local.team())
}

/// What the updater knows: the channel, the running version, and what it found.
#[tauri::command]
pub(crate) fn update_status(updates: State<'_, Updates>) -> Answer<UpdateStatus> {
    Ok(updates.status())
}

/// "Check for updates…": the answer comes as an `app://update` event (and from `update_status`).
#[tauri::command]
pub(crate) async fn update_check(
    app: tauri::AppHandle,
    updates: State<'_, Updates>,
) -> Answer<UpdateStatus> {
    updates.check(&app, true).await;
    Ok(updates.status())
}

/// "Install and restart": on success the app restarts into the new version.
#[tauri::command]
pub(crate) async fn update_install(
    app: tauri::AppHandle,
    updates: State<'_, Updates>,
) -> Answer<()> {
    updates.install(&app).await
}

/// "Later".
#[tauri::command]
pub(crate) fn update_dismiss(app: tauri::AppHandle, updates: State<'_, Updates>) -> Answer<()> {
    updates.dismiss(&app);
    Ok(())
}
