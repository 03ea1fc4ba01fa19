//! The auto-updater: which release each channel offers, the check at start and every few hours,
//! and "Install and restart". Releases are signed (minisign): the public key is in
//! `tauri.conf.json`, and a download that does not verify is never installed.
//!
//! The manifest URL is a template in the updater's configuration (`plugins.updater.endpoints`,
//! with `{{channel}}`, `{{target}}`, `{{arch}}` and `{{current_version}}`); `IOTCHAT_UPDATE_ENDPOINT`
//! replaces it for a run (a test server, a mirror). An updater is built for every check, so a
//! change of channel takes effect at once.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use iotchat_client::protocol::desktop::{EVENT_UPDATE, UpdateChannel, UpdateState, UpdateStatus};
use iotchat_client::protocol::{Code, ErrorBody};
use tauri::{AppHandle, Emitter as _, Manager as _};
use tauri_plugin_updater::{Error, Update, UpdaterExt as _};

use crate::shell::Shell;

/// How long after start the first check runs (the window comes first).
const FIRST_CHECK_AFTER: Duration = Duration::from_secs(5);
/// How often a running app checks again.
const CHECK_EVERY: Duration = Duration::from_secs(4 * 60 * 60);
/// How long a check or a download may stall before it fails.
const NETWORK_TIMEOUT: Duration = Duration::from_secs(60);

/// The updater's state, managed by the app.
pub(crate) struct Updates {
    status: Mutex<UpdateStatus>,
    /// The release `Available` describes, kept for "Install and restart".
    pending: Mutex<Option<Update>>,
    /// One check or install at a time.
    busy: tokio::sync::Mutex<()>,
}

impl std::fmt::Debug for Updates {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Updates").field("status", &self.status()).finish_non_exhaustive()
    }
}

impl Updates {
    pub(crate) fn new(app: &AppHandle, channel: UpdateChannel) -> Self {
        Self {
            status: Mutex::new(UpdateStatus {
                channel,
                current_version: app.package_info().version.to_string(),
                state: UpdateState::Idle,
                checked_at_ms: None,
                requested: false,
            }),
            pending: Mutex::new(None),
            busy: tokio::sync::Mutex::new(()),
        }
    }

    pub(crate) fn status(&self) -> UpdateStatus {
        self.status.lock().map(|s| s.clone()).unwrap_or_else(|p| p.into_inner().clone())
    }

    fn set(&self, app: &AppHandle, change: impl FnOnce(&mut UpdateStatus)) {
        let status = {
            let mut status = self.status.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            change(&mut status);
            status.clone()
        };
        if let Err(e) = app.emit(EVENT_UPDATE, &status) {
            tracing::warn!(%e, "cannot tell the window about the updater");
        }
    }

    /// "Later": the banner hides this version until a newer one comes or the app restarts,
    /// and the outcome of a check someone asked for is put away.
    pub(crate) fn dismiss(&self, app: &AppHandle) {
        let pending = self.pending.lock().ok().and_then(|p| p.clone());
        self.set(app, |status| {
            status.requested = false;
            let failed_install =
                matches!(status.state, UpdateState::Failed { version: Some(_), .. });
            if let UpdateState::Available { dismissed, .. } = &mut status.state {
                *dismissed = true;
            } else if let (true, Some(update)) = (failed_install, pending) {
                status.state = available(&update, true);
            }
        });
    }

    /// The channel changed: what was found on the other one no longer applies.
    pub(crate) fn channel_changed(&self, app: &AppHandle, channel: UpdateChannel) {
        if let Ok(mut pending) = self.pending.lock() {
            *pending = None;
        }
        self.set(app, |status| {
            status.channel = channel;
            if !matches!(
                status.state,
                UpdateState::Downloading { .. } | UpdateState::Installing { .. }
            ) {
                status.state = UpdateState::Idle;
            }
        });
        let app = app.clone();
        tauri::async_runtime::spawn(async move {
            app.state::<Updates>().check(&app, false).await;
        });
    }

    /// Asks the channel's manifest for a newer release. `requested`: a person asked.
    pub(crate) async fn check(&self, app: &AppHandle, requested: bool) {
        let Ok(_busy) = self.busy.try_lock() else {
            // A check or an install is under way; a person asking is told what it finds.
            if requested {
                self.set(app, |status| status.requested = true);
            }
            return;
        };
        let channel = app.state::<Shell>().settings().update_channel;
        self.set(app, |status| {
            status.channel = channel;
            status.requested = requested;
            // A release already found stays on screen while the check runs.
            if !matches!(status.state, UpdateState::Available { .. }) {
                status.state = UpdateState::Checking;
            }
        });
        let outcome = self.find(app, channel).await;
        if app.state::<Shell>().settings().update_channel != channel {
            return; // switched while this ran: the check of the new channel says what is new
        }
        let state = match outcome {
            Ok(Found::Newer(update)) => {
                let dismissed = matches!(
                    &self.status().state,
                    UpdateState::Available { version, dismissed: true, .. } if *version == update.version
                );
                let state = available(&update, dismissed);
                tracing::info!(version = %update.version, channel = channel.as_str(), "an update is available");
                if let Ok(mut pending) = self.pending.lock() {
                    *pending = Some(*update);
                }
                state
            }
            Ok(Found::Nothing { latest }) => {
                if let Ok(mut pending) = self.pending.lock() {
                    *pending = None;
                }
                let current = &app.package_info().version;
                match latest {
                    Some(latest) if latest < *current => {
                        UpdateState::Ahead { latest: latest.to_string() }
                    }
                    latest => UpdateState::UpToDate { latest: latest.map(|v| v.to_string()) },
                }
            }
            Err(message) => {
                tracing::warn!(%message, channel = channel.as_str(), "update check failed");
                match self.pending.lock().ok().and_then(|p| p.clone()) {
                    // Still known from an earlier check: keep offering it.
                    Some(_) if !requested => return self.set(app, |s| s.checked_at_ms = now_ms()),
                    _ => UpdateState::Failed { message, version: None },
                }
            }
        };
        self.set(app, |status| {
            status.state = state;
            status.checked_at_ms = now_ms();
        });
    }

    async fn find(&self, app: &AppHandle, channel: UpdateChannel) -> Result<Found, String> {
        let url = endpoint(app, channel)?;
        let seen: Arc<Mutex<Option<semver::Version>>> = Arc::default();
        let seen_by_comparator = Arc::clone(&seen);
        let updater = app
            .updater_builder()
            .endpoints(vec![url.clone()])
            .map_err(|e| describe(&e, &url))?
            .timeout(NETWORK_TIMEOUT)
            // The default rule (newer only), remembering what the channel offered, so that
            // "older than what you have" can be told apart from "nothing new".
            .version_comparator(move |current, release| {
                if let Ok(mut seen) = seen_by_comparator.lock() {
                    *seen = Some(release.version.clone());
                }
                release.version > current
            })
            .build()
            .map_err(|e| describe(&e, &url))?;
        match updater.check().await {
            Ok(Some(update)) => Ok(Found::Newer(Box::new(update))),
            Ok(None) => Ok(Found::Nothing { latest: seen.lock().ok().and_then(|s| s.clone()) }),
            Err(e) => Err(describe(&e, &url)),
        }
    }

    /// "Install and restart": downloads the pending release, verifies its signature, puts it in
    /// place and restarts. On failure the app goes on as it is and says why.
    pub(crate) async fn install(&self, app: &AppHandle) -> Result<(), ErrorBody> {
        let Ok(_busy) = self.busy.try_lock() else {
            return Err(ErrorBody::new(
                Code::InvalidInput,
                "The updater is busy checking or installing; try again in a moment.",
            ));
        };
        let Some(update) = self.pending.lock().ok().and_then(|p| p.clone()) else {
            return Err(ErrorBody::new(
                Code::NotFound,
                "There is no update to install: check for updates first.",
            ));
        };
        let version = update.version.clone();
        let url = update.download_url.clone();
        self.set(app, |s| {
            s.state =
                UpdateState::Downloading { version: version.clone(), received: 0, total: None }
        });
        let mut received = 0u64;
        let mut shown = std::time::Instant::now();
        let downloaded = update
            .download(
                |chunk, total| {
                    received += chunk as u64;
                    // A few updates a second are enough for a progress bar.
                    if shown.elapsed() >= Duration::from_millis(150) || Some(received) == total {
                        shown = std::time::Instant::now();
                        self.set(app, |s| {
                            s.state = UpdateState::Downloading {
                                version: version.clone(),
                                received,
                                total,
                            };
                        });
                    }
                },
                || {},
            )
            .await;
        let result = downloaded.and_then(|bytes| {
            self.set(app, |s| s.state = UpdateState::Installing { version: version.clone() });
            update.install(bytes)
        });
        match result {
            Ok(()) => {
                tracing::info!(%version, "update installed; restarting");
                app.request_restart();
                Ok(())
            }
            Err(e) => {
                let message = describe(&e, &url);
                tracing::warn!(%version, %message, "update not installed");
                self.set(app, |s| {
                    s.state =
                        UpdateState::Failed { message: message.clone(), version: Some(version) }
                });
                Err(ErrorBody::new(Code::Unavailable, message))
            }
        }
    }
}

fn available(update: &Update, dismissed: bool) -> UpdateState {
    UpdateState::Available {
        version: update.version.clone(),
        notes: update.body.clone().filter(|n| !n.trim().is_empty()),
        date: update.date.map(|d| d.to_string()),
        dismissed,
    }
}

enum Found {
    Newer(Box<Update>),
    Nothing { latest: Option<semver::Version> },
}

/// Checks at start, then every few hours, for as long as the app runs.
pub(crate) fn start(app: &AppHandle) {
    let app = app.clone();
    tauri::async_runtime::spawn(async move {
        tokio::time::sleep(FIRST_CHECK_AFTER).await;
        loop {
            app.state::<Updates>().check(&app, false).await;
            tokio::time::sleep(CHECK_EVERY).await;
        }
    });
}

/// The manifest URL of `channel`.
fn endpoint(app: &AppHandle, channel: UpdateChannel) -> Result<url::Url, String> {
    let template = match std::env::var("IOTCHAT_UPDATE_ENDPOINT") {
        Ok(template) => template,
        Err(_) => app
            .config()
            .plugins
            .0
            .get("updater")
            .and_then(|updater| updater.get("endpoints"))
            .and_then(|endpoints| endpoints.get(0))
            .and_then(|endpoint| endpoint.as_str())
            .map(str::to_owned)
            .ok_or_else(|| {
                "This build has no update server configured (plugins.updater.endpoints in \
                 tauri.conf.json)."
                    .to_owned()
            })?,
    };
    // Parsing percent-encodes the braces of a template in the path; take both spellings.
    let url = template
        .replace("%7B%7Bchannel%7D%7D", channel.as_str())
        .replace("{{channel}}", channel.as_str());
    url::Url::parse(&url)
        .map_err(|e| format!("The update server address {url:?} is not valid: {e}"))
}

/// What went wrong, in words a person understands.
fn describe(error: &Error, url: &url::Url) -> String {
    let server = url.host_str().unwrap_or("the update server");
    match error {
        Error::Reqwest(e) if e.is_timeout() => {
            format!("{server} did not answer in time. IoT Chat will try again later.")
        }
        Error::Reqwest(e) if e.is_connect() => {
            format!("Cannot reach {server}: are you online? IoT Chat will try again later.")
        }
        Error::Reqwest(e) if e.is_status() => match e.status() {
            Some(status) => format!("{server} refused the download ({status})."),
            None => format!("{server} refused the download."),
        },
        Error::Reqwest(e) if e.is_decode() => {
            format!("{server} answered with something that is not an update manifest.")
        }
        Error::Reqwest(e) => format!("The update could not be fetched from {server}: {e}"),
        Error::Network(e) => format!("The update could not be fetched from {server}: {e}"),
        Error::ReleaseNotFound | Error::Serialization(_) | Error::Semver(_) => format!(
            "{server} has no valid release manifest for this channel (it answered {url} with an \
             error or with something IoT Chat cannot read)."
        ),
        Error::TargetNotFound(target) => {
            format!("The new release has no build for this system ({target}).")
        }
        Error::TargetsNotFound(targets) => {
            format!("The new release has no build for this system ({}).", targets.join(", "))
        }
        Error::Minisign(_) | Error::Base64(_) | Error::SignatureUtf8(_) => {
            "The download does not carry IoT Chat's signature, so it was not installed. It may \
             have been damaged or tampered with on the way."
                .to_owned()
        }
        Error::SignedVersionMismatch { signed, announced } => format!(
            "The update server announced version {announced}, but the download is signed as \
             {signed}, so it was not installed."
        ),
        Error::MissingSignedVersion => {
            "The download's signature does not say which version it is, so it was not installed."
                .to_owned()
        }
        Error::InsecureTransportProtocol => {
            format!("The update server address {url} is not https, so it is not used.")
        }
        Error::InvalidUpdaterFormat | Error::BinaryNotFoundInArchive => {
            "The download is not an IoT Chat package for this system.".to_owned()
        }
        Error::AuthenticationFailed => {
            "Installing needs an administrator's permission, which was not given.".to_owned()
        }
        Error::DebInstallFailed | Error::PackageInstallFailed => {
            "The system's package manager could not install the update.".to_owned()
        }
        Error::Io(e) => format!("The update could not be put in place: {e}"),
        other => format!("The updater failed: {other}"),
    }
}

fn now_ms() -> Option<u64> {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .ok()
        .and_then(|d| u64::try_from(d.as_millis()).ok())
}
