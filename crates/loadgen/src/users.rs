//! The generator's users. On iotchat-server each is a real account: signed up and signed in
//! through Cognito (the AWS SDK, as the app does), with an identity, temporary credentials, its
//! IoT policy attached and a presigned URL for every connection. On Mosquitto a user is only a
//! client id.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anyhow::{Context as _, Result, anyhow};
use iotchat_client::auth::{AwsCredentials, Cognito};
use iotchat_client::protocol::Code;
use iotchat_client::{Backend, ClientError};

use crate::brokers::{Kind, Running};

/// The password every load-test account has (the pool's policy: 8+ characters, mixed).
const PASSWORD: &str = "Load-test-passw0rd";
/// How often a busy answer is tried again before the user counts as failed.
const MAX_TRIES: u32 = 60;

/// One user as the broker knows it.
#[derive(Debug, Clone)]
pub(crate) struct User {
    pub(crate) index: usize,
    /// The id its topics carry: the identity id on iotchat-server.
    pub(crate) sender: String,
    pub(crate) client_id: String,
    credentials: Option<AwsCredentials>,
}

impl User {
    /// A user of Mosquitto: no account.
    pub(crate) fn anonymous(index: usize) -> Self {
        let sender = format!("load{index:05}");
        Self { index, client_id: format!("{sender}-bench"), sender, credentials: None }
    }

    /// Its temporary AWS credentials, on iotchat-server.
    pub(crate) fn credentials(&self) -> Option<&AwsCredentials> {
        self.credentials.as_ref()
    }

    /// The URL to connect to now: presigned with its credentials on iotchat-server.
    pub(crate) fn url(&self, broker: &Running) -> Result<String> {
        match (&broker.backend, &self.credentials) {
            (Some(backend), Some(credentials)) => {
                iotchat_client::device::presigned_mqtt_url(backend, credentials)
                    .map_err(|e| anyhow!("presigning for user {}: {}", self.index, e.message))
            }
            (None, _) => Ok(broker.ws_url.clone()),
            (Some(_), None) => Err(anyhow!("user {} has not signed in", self.index)),
        }
    }
}

pub(crate) fn username(index: usize) -> String {
    format!("load{index:05}")
}

/// Busy answers retried, over a whole phase.
#[derive(Debug, Default)]
pub(crate) struct Retries(AtomicU64);

impl Retries {
    pub(crate) fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// Calls `f` until it succeeds, retrying what a busy server answers (as the app's user would
/// press the button again), at most [`MAX_TRIES`] times.
async fn retrying<T, F, Fut>(retries: &Retries, mut f: F) -> Result<T, ClientError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, ClientError>>,
{
    let mut tries = 0;
    loop {
        match f().await {
            Err(error)
                if matches!(error.code, Code::RateLimited | Code::Unavailable)
                    && tries < MAX_TRIES =>
            {
                tries += 1;
                retries.0.fetch_add(1, Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
            other => return other,
        }
    }
}

/// Signs up account `index` (an existing one is fine: the data directory is reused).
pub(crate) async fn sign_up(cognito: &Cognito, index: usize, retries: &Retries) -> Result<()> {
    let name = username(index);
    let email = format!("{name}@example.com");
    match retrying(retries, || cognito.sign_up(&name, &email, PASSWORD)).await {
        Ok(()) => Ok(()),
        Err(e) if e.code == Code::UsernameExists => Ok(()),
        Err(e) => Err(anyhow!("signing up {name}: {}", e.message)),
    }
}

/// Signs account `index` in as the app does: tokens, identity, credentials, policy attached.
pub(crate) async fn sign_in(
    backend: &Backend,
    cognito: &Cognito,
    index: usize,
    retries: &Retries,
) -> Result<User> {
    let name = username(index);
    let fail = |what: &str, e: ClientError| anyhow!("{what} for {name}: {}", e.message);
    let tokens = retrying(retries, || cognito.sign_in(&name, PASSWORD))
        .await
        .map_err(|e| fail("signing in", e))?;
    let identity = retrying(retries, || cognito.identity_id(tokens.id_token()))
        .await
        .map_err(|e| fail("getting the identity", e))?;
    let credentials = retrying(retries, || cognito.credentials(&identity, tokens.id_token()))
        .await
        .map_err(|e| fail("getting credentials", e))?;
    retrying(retries, || iotchat_client::device::attach_policy(backend, &credentials))
        .await
        .map_err(|e| fail("attaching the policy", e))?;
    Ok(User {
        index,
        client_id: format!("{identity}-bench"),
        sender: identity.to_string(),
        credentials: Some(credentials),
    })
}

/// Runs `f` for every index in `range`, at most `concurrency` at once, in index order.
pub(crate) async fn for_each<T, F, Fut>(
    range: std::ops::Range<usize>,
    concurrency: usize,
    f: F,
) -> Result<Vec<T>>
where
    T: Send + 'static,
    F: Fn(usize) -> Fut,
    Fut: std::future::Future<Output = Result<T>> + Send + 'static,
{
    let permits = Arc::new(tokio::sync::Semaphore::new(concurrency.max(1)));
    let mut tasks = Vec::with_capacity(range.len());
    for index in range {
        let permit = Arc::clone(&permits).acquire_owned().await.context("semaphore closed")?;
        let work = f(index);
        tasks.push(tokio::spawn(async move {
            let out = work.await;
            drop(permit);
            out
        }));
    }
    let mut out = Vec::with_capacity(tasks.len());
    for task in tasks {
        out.push(task.await.context("a user task panicked")??);
    }
    Ok(out)
}

/// A Cognito client for `broker`, if it has accounts.
pub(crate) fn cognito(broker: &Running) -> Result<Option<(Backend, Arc<Cognito>)>> {
    match (&broker.backend, broker.kind) {
        (Some(backend), Kind::Iotchat) => {
            let cognito = Cognito::new(backend).map_err(|e| anyhow!(e.message))?;
            Ok(Some((backend.clone(), Arc::new(cognito))))
        }
        _ => Ok(None),
    }
}

/// Users `0..count` ready to connect: signed in on iotchat-server (`concurrency` at a time),
/// plain client ids on Mosquitto.
pub(crate) async fn ready(broker: &Running, count: usize, concurrency: usize) -> Result<Vec<User>> {
    let Some((backend, cognito)) = cognito(broker)? else {
        return Ok((0..count).map(User::anonymous).collect());
    };
    let retries = Arc::new(Retries::default());
    for_each(0..count, concurrency, |index| {
        let backend = backend.clone();
        let cognito = Arc::clone(&cognito);
        let retries = Arc::clone(&retries);
        async move { sign_in(&backend, &cognito, index, &retries).await }
    })
    .await
}
