//! `iotchat-server`: the local, AWS-compatible IoT Chat backend.
//!
//! One axum router serves the Cognito subset (`POST /`), the JWKS, and the client profile; the
//! SigV4-signed HTTP API and the MQTT broker join it in the same process. Storage is behind
//! [`storage::Store`]. [`start`] takes a bound listener so tests run the real server on
//! ephemeral loopback ports.

mod api;
pub mod auth;
mod broker;
mod cognito;
pub mod config;
pub mod profile;
mod serve;
pub mod storage;
mod tls;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use axum::Router;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Json, Response};
use axum::routing::{get, post};
use iotchat_protocol::{Code, ErrorBody};
use serde::{Deserialize, Serialize};
use tokio::sync::oneshot;

use auth::tokens::TokenIssuer;
use config::Config;
use profile::{Profile, PublicAddress};
use storage::{SqliteStore, Store};

/// Largest request body the server reads (Cognito requests are small).
const MAX_BODY_BYTES: usize = 256 * 1024;

/// Milliseconds since 1970.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// The pool's identifiers, generated on first start and kept in storage.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PoolIds {
    pub region: String,
    pub user_pool_id: String,
    pub client_id: String,
    pub identity_pool_id: String,
}

impl PoolIds {
    fn generate(region: &str) -> Self {
        use rand::Rng as _;
        let mut rng = rand::rng();
        let alnum = |rng: &mut rand::rngs::ThreadRng, n: usize, lower: bool| -> String {
            (0..n)
                .map(|_| {
                    let c = char::from(rng.sample(rand::distr::Alphanumeric));
                    if lower { c.to_ascii_lowercase() } else { c }
                })
                .collect()
        };
        Self {
            region: region.to_owned(),
            user_pool_id: format!("{region}_{}", alnum(&mut rng, 9, false)),
            client_id: alnum(&mut rng, 26, true),
            identity_pool_id: format!("{region}:{}", uuid::Uuid::new_v4()),
        }
    }

    /// The `Logins` key (and token issuer without `https://`), as AWS names it.
    pub fn provider_name(&self) -> String {
        format!("cognito-idp.{}.amazonaws.com/{}", self.region, self.user_pool_id)
    }
}

/// Settings the handlers need at run time.
#[derive(Debug, Clone)]
pub struct Settings {
    pub credentials_ttl: Duration,
    /// How long a WebSocket client may leave what the broker sends it unread.
    pub client_write_timeout: Duration,
    /// How long one MQTT WebSocket connection may last.
    pub max_connection_age: Duration,
    pub(crate) hosted_ui: cognito::hosted_ui::HostedUiSettings,
}

/// Shared state of every handler.
#[derive(Clone)]
pub(crate) struct AppState(Arc<Inner>);

pub(crate) struct Inner {
    pub(crate) store: Arc<dyn Store>,
    pub(crate) tokens: TokenIssuer,
    pub(crate) pool: PoolIds,
    pub(crate) settings: Settings,
    /// Hash checked when a username is unknown, so that costs what a wrong password costs.
    pub(crate) dummy_hash: String,
    /// The password hashers, at most one run per core.
    pub(crate) passwords: auth::password::Passwords,
    /// Password-guessing limits per username and per address.
    pub(crate) sign_ins: auth::lockout::SignInGuard,
    pub(crate) profile: Profile,
    pub(crate) broker: broker::Broker,
    /// Hosted-UI sign-ins waiting at the identity provider.
    pub(crate) pending_logins: cognito::hosted_ui::PendingLogins,
}

impl std::ops::Deref for AppState {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.0
    }
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState").field("pool", &self.pool).finish_non_exhaustive()
    }
}

/// The HTTP routes.
fn router(state: AppState) -> Router {
    Router::new()
        .route("/", post(cognito::dispatch))
        .route("/oauth2/token", post(cognito::hosted_ui::token))
        .route("/oauth2/authorize", get(cognito::hosted_ui::authorize))
        .route("/error", get(cognito::hosted_ui::error_page))
        .route("/login", get(cognito::hosted_ui::login_page))
        .route("/logout", get(cognito::hosted_ui::logout))
        .route(
            "/oauth2/userInfo",
            get(cognito::hosted_ui::user_info).post(cognito::hosted_ui::user_info),
        )
        .route(
            "/testidp/authorize",
            get(cognito::hosted_ui::test_idp_page).post(cognito::hosted_ui::test_idp_answer),
        )
        .route("/{pool_id}/.well-known/jwks.json", get(jwks))
        .route("/profile.json", get(profile_json))
        .route("/mqtt", get(broker::upgrade))
        .nest("/api", api::router(state.clone()))
        .fallback(not_found)
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(tower_http::trace::TraceLayer::new_for_http().make_span_with(request_span))
        .with_state(state)
}

/// The span of one request: method and path only. The query stays out: a presigned `/mqtt` URL
/// carries a signature and a session token that would let anyone who reads the log connect.
fn request_span<B>(request: &axum::http::Request<B>) -> tracing::Span {
    tracing::debug_span!("request", method = %request.method(), path = %request.uri().path())
}

async fn jwks(State(state): State<AppState>, Path(pool_id): Path<String>) -> Response {
    if pool_id == state.pool.user_pool_id {
        Json(state.tokens.jwks()).into_response()
    } else {
        not_found().await
    }
}

async fn profile_json(State(state): State<AppState>) -> Json<Profile> {
    Json(state.profile.clone())
}

async fn not_found() -> Response {
    let body = ErrorBody::new(Code::NotFound, "There is nothing at this address.");
    (StatusCode::NOT_FOUND, Json(body)).into_response()
}

/// A running server.
#[derive(Debug)]
pub struct RunningServer {
    addr: SocketAddr,
    broker: SocketAddr,
    profile: Profile,
    shutdown: oneshot::Sender<()>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
    housekeeping: tokio::task::JoinHandle<()>,
}

impl RunningServer {
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The broker's internal listener on loopback, which only the `/mqtt` bridge should use:
    /// tests attack it directly.
    pub fn internal_broker_addr(&self) -> SocketAddr {
        self.broker
    }

    /// The client profile for this server.
    pub fn profile(&self) -> &Profile {
        &self.profile
    }

    /// Stops accepting, lets requests in flight finish, and returns.
    pub async fn stop(self) -> anyhow::Result<()> {
        let _ = self.shutdown.send(());
        self.housekeeping.abort();
        self.task.await.context("the server task failed")?.context("serving")?;
        Ok(())
    }
}

/// Forgets expired credentials and sessions at start and every hour, so the database does not
/// grow with every sign-in (their secrets go with them).
async fn expired_remove_hourly(store: Arc<dyn Store>) {
    let mut every_hour = tokio::time::interval(Duration::from_secs(3600));
    loop {
        every_hour.tick().await;
        match store.expired_remove(now_ms()).await {
            Ok(0) => {}
            Ok(removed) => tracing::info!(removed, "forgot expired credentials and sessions"),
            Err(error) => tracing::warn!(%error, "could not forget expired credentials"),
        }
    }
}

/// Creates the data directory readable by this user only, or makes an existing one so: it
/// holds the token signing keys, the TLS CA key and every issued AWS secret key, and another
/// user of this machine who could read them could sign in as anyone.
fn private_dir(dir: &std::path::Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(dir)?.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)).with_context(
                || format!("making {} private to this user (chmod 700)", dir.display()),
            )?;
            tracing::warn!(
                dir = %dir.display(),
                was = format!("{mode:o}"),
                "the data directory was readable by others; it is now private to this user"
            );
        }
    }
    Ok(())
}

/// Opens storage in `config.data_dir`, then serves on `listener` until [`RunningServer::stop`].
pub async fn start(
    config: &Config,
    listener: tokio::net::TcpListener,
) -> anyhow::Result<RunningServer> {
    let addr = listener.local_addr()?;
    private_dir(&config.data_dir)?;
    let store = SqliteStore::open(&config.data_dir)
        .with_context(|| format!("opening the data directory {}", config.data_dir.display()))?;
    let store: Arc<dyn Store> = Arc::new(store);

    let region = config.region.clone();
    let generated = serde_json::to_vec(&PoolIds::generate(&region))?;
    let stored = store
        .secret_get_or_insert("pool-ids", Box::new(move || generated))
        .await
        .context("loading the pool ids")?;
    let pool: PoolIds =
        serde_json::from_slice(&stored).context("the stored pool ids are corrupt")?;
    if pool.region != config.region {
        anyhow::bail!(
            "this data directory was created for region {} but the configuration says {}; \
             identities carry their region, so it cannot change",
            pool.region,
            config.region
        );
    }
    let issuer = format!("https://{}", pool.provider_name());
    let tokens = TokenIssuer::load(store.as_ref(), issuer, pool.client_id.clone()).await?;
    let passwords = auth::password::Passwords::default();
    let dummy_hash = passwords.hash(uuid::Uuid::new_v4().to_string()).await?;
    let hosts = tls::certificate_hosts(&config.public_host, addr.ip());
    let server_tls = tls::setup(&config.tls, store.as_ref(), &pool.user_pool_id, &hosts).await?;
    let public = PublicAddress {
        tls: server_tls.is_some(),
        authority: config.public_authority(addr.port()),
    };
    let ca_certificate = server_tls.as_ref().and_then(|t| t.ca_certificate.clone());
    let hosted_ui = cognito::hosted_ui::HostedUiSettings {
        redirect_uris: config
            .callback_ports
            .iter()
            .map(|port| iotchat_protocol::loopback_redirect_uri(*port))
            .collect(),
        logout_uris: config
            .callback_ports
            .iter()
            .map(|port| format!("http://localhost:{port}/signed-out"))
            .collect(),
        // It signs anyone in without a password: only for this computer.
        test_idp: addr.ip().is_loopback(),
        code_ttl: config.limits.oauth_code_ttl,
    };
    let profile = profile::local(&pool, &public, ca_certificate, &hosted_ui);
    profile::write(&profile, &config.data_dir)?;

    let housekeeping = tokio::spawn(expired_remove_hourly(Arc::clone(&store)));
    let broker = broker::Broker::start(Arc::clone(&store)).await?;
    let broker_addr = broker.addr();
    let state = AppState(Arc::new(Inner {
        store,
        tokens,
        pool,
        settings: Settings {
            credentials_ttl: config.credentials_ttl(),
            client_write_timeout: config.limits.client_write_timeout,
            max_connection_age: config.max_connection_age(),
            hosted_ui,
        },
        dummy_hash,
        passwords,
        sign_ins: auth::lockout::SignInGuard::default(),
        profile: profile.clone(),
        broker,
        pending_logins: cognito::hosted_ui::PendingLogins::default(),
    }));
    let (shutdown, shutdown_rx) = oneshot::channel();
    let app = router(state);
    let tls = server_tls.map(|t| t.config);
    let task = tokio::spawn(serve::serve(listener, tls, app, config.limits.clone(), shutdown_rx));
    tracing::info!(%addr, tls = public.tls, "serving");
    Ok(RunningServer { addr, broker: broker_addr, profile, shutdown, task, housekeeping })
}
