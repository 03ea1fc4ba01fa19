//! The shell's state: one client core for the chosen backend, the user's settings, and what the
//! window shows. Chat logic stays in the client; this only wires it to the window.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use iotchat_client::protocol::chat::{Event, StoreKind};
use iotchat_client::protocol::desktop::{
    BackendChoice, BackendInfo, EVENT_CLIENT, EVENT_RESYNC, Settings,
};
use iotchat_client::protocol::{Code, ErrorBody, RoomName};
use iotchat_client::{
    Backend, Client, ClientConfig, ClientError, LOCAL_SERVER, MemoryStore, SecretStore,
    open_keychain,
};
use serde::{Deserialize, Serialize};
use tauri::{AppHandle, Emitter as _, Manager as _};
use tokio::sync::RwLock;

use crate::local_server::{LocalServer, Reach};
use crate::updates::Updates;
use crate::{autostart, notify, tray};

/// Keychain service of the app's entries (the CLI uses the same, so they share a session).
const KEYCHAIN_SERVICE: &str = "dev.iotchat.desktop";
const SETTINGS_FILE: &str = "desktop.json";

/// What the shell keeps on disk (no secrets).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
struct Saved {
    settings: Settings,
    backend: Option<BackendChoice>,
    /// The profile the backend last answered with, so the app starts (and queues messages)
    /// while the server is unreachable.
    last_profile: Option<iotchat_client::protocol::Profile>,
}

/// The managed state of the app.
pub(crate) struct Shell {
    app: AppHandle,
    data_dir: PathBuf,
    secrets: Arc<dyn SecretStore>,
    /// Why the keychain is not used, when it is not.
    keychain_problem: Option<String>,
    client: RwLock<Option<Client>>,
    backend: Mutex<BackendInfo>,
    settings: Mutex<Settings>,
    last_profile: Mutex<Option<iotchat_client::protocol::Profile>>,
    /// The room the UI shows (whatever the focus).
    shown_room: Mutex<Option<RoomName>>,
    focused: AtomicBool,
    /// Set by `session_state` on the first call, so a restart resumes the session once.
    restored: AtomicBool,
    /// The server "This computer" runs, when the app started it.
    pub(crate) local: Arc<LocalServer>,
}

impl std::fmt::Debug for Shell {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shell").field("data_dir", &self.data_dir).finish_non_exhaustive()
    }
}

pub(crate) fn error(e: ClientError) -> ErrorBody {
    e.body()
}

impl Shell {
    pub(crate) fn new(app: AppHandle) -> Self {
        let data_dir = std::env::var_os("IOTCHAT_DATA_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(iotchat_client::default_data_dir);
        let service =
            std::env::var("IOTCHAT_KEYCHAIN_SERVICE").unwrap_or_else(|_| KEYCHAIN_SERVICE.into());
        let (secrets, keychain_problem): (Arc<dyn SecretStore>, _) = match open_keychain(&service) {
            Ok(keychain) => (Arc::new(keychain), None),
            Err(e) => {
                tracing::warn!(%e, "no keychain; the session lives in memory only");
                (Arc::new(MemoryStore::default()), Some(e.message))
            }
        };
        let saved = load(&data_dir);
        let data_dir_for_server = data_dir.clone();
        // Hosting for the team resumes with the app; if it cannot (no network), this computer.
        let reach = if saved.settings.host_for_team {
            Reach::team().unwrap_or_else(|e| {
                tracing::warn!(%e, "cannot host for the team");
                Reach::ThisComputer
            })
        } else {
            Reach::ThisComputer
        };
        let choice = backend_override().or(saved.backend).unwrap_or(BackendChoice::Local);
        Self {
            app,
            data_dir,
            secrets,
            keychain_problem,
            client: RwLock::new(None),
            backend: Mutex::new(BackendInfo {
                label: label_of(&choice),
                choice,
                problem: None,
                providers: Vec::new(),
            }),
            settings: Mutex::new(saved.settings),
            last_profile: Mutex::new(saved.last_profile),
            shown_room: Mutex::new(None),
            focused: AtomicBool::new(true),
            restored: AtomicBool::new(false),
            local: Arc::new(LocalServer::new(&data_dir_for_server, reach)),
        }
    }

    pub(crate) fn settings(&self) -> Settings {
        self.settings.lock().map(|s| s.clone()).unwrap_or_default()
    }

    pub(crate) fn set_settings(&self, mut settings: Settings) -> Result<Settings, ErrorBody> {
        let before = self.settings();
        if settings.start_on_login != before.start_on_login {
            autostart::set(&self.app, settings.start_on_login)?;
        }
        if !settings.start_on_login {
            settings.start_hidden = false;
        }
        if let Ok(mut current) = self.settings.lock() {
            *current = settings.clone();
        }
        self.save()?;
        tray::settings_changed(&self.app, &settings);
        let _ = self.app.emit(iotchat_client::protocol::desktop::EVENT_SETTINGS, settings.clone());
        if settings.update_channel != before.update_channel {
            self.app.state::<Updates>().channel_changed(&self.app, settings.update_channel);
        }
        Ok(settings)
    }

    /// Starts or stops hosting for the team: the server this app runs restarts on its new
    /// address, and a session on "This computer" carries on through it.
    pub(crate) async fn rehost(&self, hosting: bool) -> Result<(), ErrorBody> {
        let reach = if hosting {
            Reach::team().map_err(|e| ErrorBody::new(Code::Unavailable, e))?
        } else {
            Reach::ThisComputer
        };
        self.local.set_reach(reach);
        let on_this_computer = matches!(self.backend_info().choice, BackendChoice::Local);
        let old = if on_this_computer { self.client.write().await.take() } else { None };
        if let Some(old) = &old {
            old.shutdown().await;
        }
        self.local.restart().await.map_err(|e| ErrorBody::new(Code::Unavailable, e))?;
        if old.is_some() {
            let client = self.client().await?;
            if let Err(e) = client.restore().await {
                tracing::warn!(%e, "the session did not carry over to the moved server");
            }
            tray::refresh_unread(&self.app, &client).await;
            let _ = self.app.emit(EVENT_RESYNC, ());
        }
        Ok(())
    }

    /// Takes the start-on-login state from the system (the entry may have been removed there).
    pub(crate) fn sync_autostart(&self) {
        let Some(enabled) = autostart::enabled(&self.app) else { return };
        let mut settings = self.settings();
        if settings.start_on_login != enabled {
            settings.start_on_login = enabled;
            settings.start_hidden &= enabled;
            if let Ok(mut current) = self.settings.lock() {
                *current = settings;
            }
            if let Err(e) = self.save() {
                tracing::warn!(message = %e.message, "cannot save the start-on-login state");
            }
        }
    }

    pub(crate) fn backend_info(&self) -> BackendInfo {
        self.backend.lock().map(|b| b.clone()).unwrap_or_else(|_| BackendInfo {
            choice: BackendChoice::Local,
            label: "this computer".into(),
            problem: None,
            providers: Vec::new(),
        })
    }

    pub(crate) fn secret_store(&self) -> StoreKind {
        self.secrets.kind()
    }

    pub(crate) fn keychain_problem(&self) -> Option<String> {
        self.keychain_problem.clone()
    }

    fn save(&self) -> Result<(), ErrorBody> {
        let saved = Saved {
            settings: self.settings(),
            backend: Some(self.backend_info().choice),
            last_profile: self.last_profile.lock().ok().and_then(|p| p.clone()),
        };
        let path = self.data_dir.join(SETTINGS_FILE);
        let write = std::fs::create_dir_all(&self.data_dir).and_then(|()| {
            std::fs::write(&path, serde_json::to_vec_pretty(&saved).unwrap_or_default())
        });
        write.map_err(|e| {
            ErrorBody::new(Code::Internal, format!("Cannot save {}: {e}", path.display()))
        })
    }

    /// The client of the chosen backend, reaching it first if need be.
    pub(crate) async fn client(&self) -> Result<Client, ErrorBody> {
        if let Some(client) = self.client.read().await.clone() {
            return Ok(client);
        }
        let mut slot = self.client.write().await;
        if let Some(client) = slot.clone() {
            return Ok(client);
        }
        let choice = self.backend_info().choice;
        let cached = self.last_profile.lock().ok().and_then(|p| p.clone());
        let backend = match resolve(&choice, &self.local).await {
            Ok(backend) => backend,
            // Unreachable now, known from before: start offline; the link keeps trying.
            Err(e) if e.code == Code::Unavailable && cached.is_some() => {
                tracing::info!(%e, "the backend is unreachable; starting from its last profile");
                match cached.map(Backend::new) {
                    Some(Ok(backend)) => backend,
                    _ => return Err(e.body()),
                }
            }
            Err(e) => {
                self.set_backend(BackendInfo {
                    label: label_of(&choice),
                    choice,
                    problem: Some(e.message.clone()),
                    providers: Vec::new(),
                });
                return Err(e.body());
            }
        };
        let label = backend.label();
        let client = self.start_client(backend)?;
        self.set_backend(BackendInfo {
            choice,
            label,
            problem: None,
            providers: client.providers(),
        });
        self.remember_profile(client.backend().profile.clone());
        *slot = Some(client.clone());
        Ok(client)
    }

    fn remember_profile(&self, profile: iotchat_client::protocol::Profile) {
        let changed = self.last_profile.lock().is_ok_and(|mut last| {
            let changed = last.as_ref() != Some(&profile);
            *last = Some(profile);
            changed
        });
        if changed && let Err(e) = self.save() {
            tracing::warn!(message = %e.message, "cannot remember the backend's profile");
        }
    }

    fn set_backend(&self, info: BackendInfo) {
        if let Ok(mut backend) = self.backend.lock() {
            *backend = info;
        }
    }

    /// Resumes the session kept from the last run, once per start.
    pub(crate) async fn restore_once(&self) -> Result<Option<String>, ErrorBody> {
        // Only once a backend is there: a server that starts later still gets the session.
        let client = self.client().await?;
        if self.restored.swap(true, Ordering::SeqCst) {
            return Ok(None);
        }
        // The backend came up only after someone signed in (it was unreachable at start):
        // resuming the stored session now would end theirs.
        if client.account().await.is_some() {
            return Ok(None);
        }
        match client.restore().await {
            Ok(_) => {
                tray::refresh_unread(&self.app, &client).await;
                Ok(None)
            }
            Err(e) if e.code == Code::SessionExpired => Ok(Some(e.message)),
            Err(e) => Err(e.body()),
        }
    }

    /// Switches backend (signed out only).
    pub(crate) async fn set_backend_choice(
        &self,
        choice: BackendChoice,
    ) -> Result<BackendInfo, ErrorBody> {
        if let Some(client) = self.client.read().await.clone()
            && client.account().await.is_some()
        {
            return Err(ErrorBody::new(
                Code::InvalidInput,
                "Log out before choosing another backend.",
            ));
        }
        let backend = resolve(&choice, &self.local).await.map_err(error)?;
        let label = backend.label();
        let client = self.start_client(backend)?;
        let profile = client.backend().profile.clone();
        let providers = client.providers();
        if let Some(old) = self.client.write().await.replace(client) {
            old.shutdown().await;
        }
        let info = BackendInfo { choice, label, problem: None, providers };
        self.set_backend(info.clone());
        if let Ok(mut last) = self.last_profile.lock() {
            *last = Some(profile);
        }
        self.save()?;
        Ok(info)
    }

    /// A client core for `backend`, its events forwarded to the window.
    fn start_client(&self, backend: Backend) -> Result<Client, ErrorBody> {
        let client = Client::new(ClientConfig {
            backend,
            data_dir: self.data_dir.clone(),
            secrets: Arc::clone(&self.secrets),
            connect: true,
            instance: None,
        })
        .map_err(error)?;
        self.forward_events(&client);
        Ok(client)
    }

    /// Forwards every client event to the UI, and drives notifications, the tray and the title.
    fn forward_events(&self, client: &Client) {
        let mut events = client.events();
        let app = self.app.clone();
        let client = client.clone();
        tauri::async_runtime::spawn(async move {
            // Events lost to a burst: once the burst is over, the UI fetches its state again.
            let mut lost = 0u64;
            loop {
                match events.recv().await {
                    Ok(event) => {
                        react(&app, &client, &event).await;
                        if let Err(e) = app.emit(EVENT_CLIENT, &event) {
                            tracing::warn!(%e, "cannot forward an event to the window");
                        }
                    }
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => lost += n,
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => break,
                }
                if lost > 0 && events.is_empty() {
                    tracing::info!(lost, "a burst outran the window; it fetches its state again");
                    lost = 0;
                    tray::refresh_unread(&app, &client).await;
                    if let Err(e) = app.emit(EVENT_RESYNC, ()) {
                        tracing::warn!(%e, "cannot ask the window to fetch its state again");
                    }
                }
            }
        });
    }

    /// The UI shows `room` (or none).
    pub(crate) async fn show_room(&self, room: Option<RoomName>) -> Result<(), ErrorBody> {
        if let Ok(mut shown) = self.shown_room.lock() {
            shown.clone_from(&room);
        }
        let visible = if self.focused.load(Ordering::SeqCst) { room } else { None };
        let client = self.client().await?;
        client.room_open(visible).await.map_err(error)?;
        tray::refresh_unread(&self.app, &client).await;
        Ok(())
    }

    pub(crate) fn shown_room(&self) -> Option<RoomName> {
        self.shown_room.lock().ok().and_then(|r| r.clone())
    }

    pub(crate) fn is_focused(&self) -> bool {
        self.focused.load(Ordering::SeqCst)
    }

    /// The window gained or lost focus: a room counts as on screen only while focused.
    pub(crate) async fn focus_changed(&self, focused: bool) {
        self.focused.store(focused, Ordering::SeqCst);
        let Some(client) = self.client.read().await.clone() else { return };
        if client.account().await.is_none() {
            return;
        }
        let visible = if focused { self.shown_room() } else { None };
        if let Err(e) = client.room_open(visible).await {
            tracing::debug!(%e, "room_open after a focus change");
        }
        tray::refresh_unread(&self.app, &client).await;
    }
}

/// What the shell does with an event besides forwarding it.
async fn react(app: &AppHandle, client: &Client, event: &Event) {
    match event {
        Event::Message { message, missed: false } => {
            notify::maybe_notify(app, client, message).await
        }
        Event::Unread { total, .. } => tray::show_unread(app, *total),
        Event::Followed => tray::refresh_unread(app, client).await,
        _ => {}
    }
}

async fn resolve(choice: &BackendChoice, local: &Arc<LocalServer>) -> Result<Backend, ClientError> {
    match choice {
        BackendChoice::Local => {
            if let Err(problem) = local.ensure().await {
                return Err(ClientError::new(Code::Unavailable, problem));
            }
            let (address, ca) = local.client_address();
            Backend::fetch(&address, ca.as_deref()).await.map_err(|e| {
                ClientError::new(
                    e.code,
                    format!(
                        "The server on this computer is not answering at {LOCAL_SERVER} ({}). \
                         Its log is {}; or choose another backend.",
                        e.message,
                        local.log_path().display()
                    ),
                )
            })
        }
        BackendChoice::Server { address, ca_certificate } => {
            Backend::fetch(address, ca_certificate.as_deref()).await
        }
        BackendChoice::Profile { json } => {
            let profile = iotchat_client::protocol::Profile::from_json(json.as_bytes())
                .map_err(|e| ClientError::invalid(e.to_string()))?;
            Backend::new(profile)
        }
    }
}

fn label_of(choice: &BackendChoice) -> String {
    match choice {
        BackendChoice::Local => "this computer".into(),
        BackendChoice::Server { address, .. } => address.clone(),
        BackendChoice::Profile { .. } => "a profile".into(),
    }
}

/// `IOTCHAT_SERVER` (an address) or `IOTCHAT_PROFILE` (a file) choose the backend for this run.
fn backend_override() -> Option<BackendChoice> {
    if let Ok(address) = std::env::var("IOTCHAT_SERVER") {
        return Some(BackendChoice::Server { address, ca_certificate: None });
    }
    let path = std::env::var_os("IOTCHAT_PROFILE")?;
    match std::fs::read_to_string(&path) {
        Ok(json) => Some(BackendChoice::Profile { json }),
        Err(e) => {
            tracing::warn!(%e, "IOTCHAT_PROFILE cannot be read");
            None
        }
    }
}

fn load(data_dir: &std::path::Path) -> Saved {
    let path = data_dir.join(SETTINGS_FILE);
    match std::fs::read(&path) {
        Ok(bytes) => serde_json::from_slice(&bytes).unwrap_or_else(|e| {
            tracing::warn!(%e, path = %path.display(), "unreadable settings; using defaults");
            Saved::default()
        }),
        Err(_) => Saved::default(),
    }
}

/// Shows and focuses the main window.
pub(crate) fn show_window(app: &AppHandle) {
    if let Some(window) = app.get_webview_window("main") {
        // Only what is needed: re-showing a shown window makes WebKitGTK stop painting under
        // some X servers.
        if window.is_minimized().unwrap_or(false) {
            let _ = window.unminimize();
        }
        if !window.is_visible().unwrap_or(true) {
            let _ = window.show();
        }
        let _ = window.set_focus();
    }
}
