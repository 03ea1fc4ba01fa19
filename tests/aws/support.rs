//! What the AWS tests stand on: a moto server (AWS's control planes and DynamoDB, written by
//! others) on 127.0.0.1, and a stand-in for the Lambda Runtime API that our real function
//! binaries poll, as they do in Lambda.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_credential_types::Credentials;
use aws_credential_types::provider::SharedCredentialsProvider;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::{mpsc, oneshot};

pub(crate) const REGION: &str = "us-east-1";
/// How long a test waits for moto, a function or an answer.
pub(crate) const WAIT: Duration = Duration::from_secs(60);

/// A moto server on an ephemeral loopback port, stopped when dropped.
pub(crate) struct Moto {
    endpoint: String,
    _child: Child,
}

impl Moto {
    pub(crate) async fn start() -> Self {
        // Port 0: the server picks a free port and says which, so two tests never race for one.
        let python = iotchat_tests::peers_python().expect("the peers' Python, with moto");
        let mut child = Command::new(python)
            .args(["-m", "moto.server", "-H", "127.0.0.1", "-p", "0"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("moto starts (IOTCHAT_PEERS_PYTHON needs moto[server])");
        let stderr = child.stderr.take().expect("piped stderr");
        let log = Arc::new(Mutex::new(Vec::new()));
        let (port_tx, port_rx) = oneshot::channel();
        let lines = Arc::clone(&log);
        // moto logs every request on stderr: keep reading it for as long as it runs.
        tokio::spawn(async move {
            let mut port_tx = Some(port_tx);
            let mut reader = BufReader::new(stderr).lines();
            while let Ok(Some(line)) = reader.next_line().await {
                if let Some(rest) = line.split("Running on http://127.0.0.1:").nth(1) {
                    let port: String = rest.chars().take_while(char::is_ascii_digit).collect();
                    if let (Some(tx), Ok(port)) = (port_tx.take(), port.parse::<u16>()) {
                        let _ = tx.send(port);
                    }
                }
                let mut lines = lines.lock().expect("log lock");
                if lines.len() < 2_000 {
                    lines.push(line);
                }
            }
        });
        let port = tokio::time::timeout(WAIT, port_rx)
            .await
            .unwrap_or_else(|_| panic!("moto did not start: {:?}", log.lock().expect("log")))
            .expect("moto's port");
        Self { endpoint: format!("http://127.0.0.1:{port}"), _child: child }
    }

    pub(crate) fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// One SDK configuration for every client: moto's endpoint, its region, test credentials.
    fn sdk(&self) -> aws_types::SdkConfig {
        aws_types::SdkConfig::builder()
            .behavior_version(aws_sdk_dynamodb::config::BehaviorVersion::latest())
            .region(aws_types::region::Region::new(REGION))
            .endpoint_url(&self.endpoint)
            .credentials_provider(SharedCredentialsProvider::new(Credentials::new(
                "testing", "testing", None, None, "moto",
            )))
            .build()
    }

    pub(crate) fn dynamodb(&self) -> aws_sdk_dynamodb::Client {
        aws_sdk_dynamodb::Client::new(&self.sdk())
    }

    pub(crate) fn iot(&self) -> aws_sdk_iot::Client {
        aws_sdk_iot::Client::new(&self.sdk())
    }

    pub(crate) fn user_pools(&self) -> aws_sdk_cognitoidentityprovider::Client {
        aws_sdk_cognitoidentityprovider::Client::new(&self.sdk())
    }

    pub(crate) fn identity_pools(&self) -> aws_sdk_cognitoidentity::Client {
        aws_sdk_cognitoidentity::Client::new(&self.sdk())
    }

    /// The environment that points a function's AWS SDK at this moto server.
    pub(crate) fn sdk_env(&self) -> Vec<(String, String)> {
        [
            ("AWS_ENDPOINT_URL", self.endpoint.as_str()),
            ("AWS_REGION", REGION),
            ("AWS_ACCESS_KEY_ID", "testing"),
            ("AWS_SECRET_ACCESS_KEY", "testing"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
    }
}

/// A Cognito user pool with an app client and an identity pool, as the template makes them.
pub(crate) struct Pools {
    pub(crate) user_pool_id: String,
    pub(crate) client_id: String,
    pub(crate) identity_pool_id: String,
}

impl Pools {
    pub(crate) async fn create(moto: &Moto) -> Self {
        use aws_sdk_cognitoidentityprovider::types::{
            AttributeDataType, ExplicitAuthFlowsType, SchemaAttributeType,
        };
        let idp = moto.user_pools();
        let email = SchemaAttributeType::builder()
            .name("email")
            .attribute_data_type(AttributeDataType::String)
            .required(true)
            .mutable(true)
            .build();
        let pool = idp
            .create_user_pool()
            .pool_name("iotchat-test")
            .schema(email)
            .send()
            .await
            .expect("moto creates a user pool");
        let user_pool_id = pool.user_pool().and_then(|p| p.id()).expect("pool id").to_owned();
        let client = idp
            .create_user_pool_client()
            .user_pool_id(&user_pool_id)
            .client_name("iotchat-desktop")
            .explicit_auth_flows(ExplicitAuthFlowsType::AllowUserPasswordAuth)
            .explicit_auth_flows(ExplicitAuthFlowsType::AllowRefreshTokenAuth)
            .explicit_auth_flows(ExplicitAuthFlowsType::AllowUserSrpAuth)
            .send()
            .await
            .expect("moto creates an app client");
        let client_id =
            client.user_pool_client().and_then(|c| c.client_id()).expect("client id").to_owned();
        let provider = aws_sdk_cognitoidentity::types::CognitoIdentityProvider::builder()
            .provider_name(format!("cognito-idp.{REGION}.amazonaws.com/{user_pool_id}"))
            .client_id(&client_id)
            .build();
        let identity = moto
            .identity_pools()
            .create_identity_pool()
            .identity_pool_name("iotchat_test")
            .allow_unauthenticated_identities(false)
            .cognito_identity_providers(provider)
            .send()
            .await
            .expect("moto creates an identity pool");
        Self { user_pool_id, client_id, identity_pool_id: identity.identity_pool_id().to_owned() }
    }

    /// A confirmed user; returns their `sub`.
    pub(crate) async fn confirmed_user(&self, moto: &Moto, username: &str) -> String {
        let idp = moto.user_pools();
        idp.sign_up()
            .client_id(&self.client_id)
            .username(username)
            .password(PASSWORD)
            .user_attributes(
                aws_sdk_cognitoidentityprovider::types::AttributeType::builder()
                    .name("email")
                    .value(format!("{username}@example.com"))
                    .build()
                    .expect("attribute"),
            )
            .send()
            .await
            .expect("sign up");
        // moto fires no PreSignUp trigger: confirm as the trigger would.
        idp.admin_confirm_sign_up()
            .user_pool_id(&self.user_pool_id)
            .username(username)
            .send()
            .await
            .expect("admin confirm");
        let user = idp
            .admin_get_user()
            .user_pool_id(&self.user_pool_id)
            .username(username)
            .send()
            .await
            .expect("admin get user");
        user.user_attributes()
            .iter()
            .find(|a| a.name() == "sub")
            .and_then(|a| a.value())
            .expect("every user has a sub")
            .to_owned()
    }

    /// A new identity of the identity pool (moto makes a new one on every GetId).
    pub(crate) async fn identity(&self, moto: &Moto) -> iotchat_protocol::IdentityId {
        let out = moto
            .identity_pools()
            .get_id()
            .identity_pool_id(&self.identity_pool_id)
            .send()
            .await
            .expect("GetId");
        iotchat_protocol::IdentityId::parse(out.identity_id().expect("an identity id"))
            .expect("moto's identity ids have Cognito's shape")
    }
}

pub(crate) const PASSWORD: &str = "Correct-Horse-9";

/// One invocation waiting for a function to take it.
struct Invocation {
    event: serde_json::Value,
    answer: oneshot::Sender<Result<serde_json::Value, serde_json::Value>>,
}

#[derive(Clone, Default)]
struct RuntimeState {
    queue: Arc<tokio::sync::Mutex<Option<mpsc::Receiver<Invocation>>>>,
    waiting: Arc<Mutex<HashMap<String, Invocation>>>,
    init_error: Arc<Mutex<Option<String>>>,
}

/// The Lambda Runtime API (`/2018-06-01/runtime/…`) as Lambda serves it to a function: the
/// function asks for the next event, then posts its response or error. One function per
/// runtime, one event at a time.
pub(crate) struct Runtime {
    address: SocketAddr,
    events: mpsc::Sender<Invocation>,
    state: RuntimeState,
    _server: tokio::task::JoinHandle<()>,
}

impl Runtime {
    pub(crate) async fn start() -> Self {
        let (events, queue) = mpsc::channel(1);
        let state = RuntimeState {
            queue: Arc::new(tokio::sync::Mutex::new(Some(queue))),
            ..Default::default()
        };
        let app = Router::new()
            .route("/2018-06-01/runtime/invocation/next", get(next))
            .route("/2018-06-01/runtime/invocation/{id}/response", post(response))
            .route("/2018-06-01/runtime/invocation/{id}/error", post(error))
            .route("/2018-06-01/runtime/init/error", post(init_error))
            .with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind loopback");
        let address = listener.local_addr().expect("address");
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self { address, events, state, _server: server }
    }

    /// Hands `event` to the function and waits for its answer: `Ok(response)` or
    /// `Err(error body)` when the function reported an error.
    pub(crate) async fn invoke(
        &self,
        event: serde_json::Value,
    ) -> Result<serde_json::Value, serde_json::Value> {
        let (answer, answered) = oneshot::channel();
        self.events.send(Invocation { event, answer }).await.expect("the runtime runs");
        match tokio::time::timeout(WAIT, answered).await {
            Ok(Ok(answer)) => answer,
            _ => panic!(
                "the function did not answer within {WAIT:?} (init error: {:?})",
                self.state.init_error.lock().expect("lock")
            ),
        }
    }

    /// Runs the function binary `name` against this runtime, with `env` (plus what Lambda
    /// sets for every function). It stops when dropped.
    pub(crate) fn spawn(&self, name: &str, env: &[(String, String)]) -> Child {
        let bin = iotchat_tests::lambda_binary(name).expect("the function is built");
        let mut command = Command::new(&bin);
        command
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("AWS_LAMBDA_RUNTIME_API", self.address.to_string())
            .env("AWS_LAMBDA_FUNCTION_NAME", name)
            .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")
            .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
            .env("AWS_LAMBDA_LOG_STREAM_NAME", "test")
            .env("AWS_LAMBDA_LOG_GROUP_NAME", format!("/aws/lambda/{name}"))
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .kill_on_drop(true);
        for (key, value) in env {
            command.env(key, value);
        }
        command.spawn().unwrap_or_else(|e| panic!("{} does not start: {e}", bin.display()))
    }
}

/// `GET …/invocation/next`: waits for an event, hands it out with Lambda's headers.
async fn next(State(state): State<RuntimeState>) -> impl IntoResponse {
    let mut queue = state.queue.lock().await;
    let Some(receiver) = queue.as_mut() else {
        return (StatusCode::INTERNAL_SERVER_ERROR, HeaderMap::new(), String::new());
    };
    let Some(invocation) = receiver.recv().await else {
        return (StatusCode::GONE, HeaderMap::new(), String::new());
    };
    let id = uuid::Uuid::new_v4().to_string();
    let body = invocation.event.to_string();
    let deadline = iotchat_api::now_ms() + WAIT.as_millis() as u64;
    let mut headers = HeaderMap::new();
    let mut set = |name: &'static str, value: String| {
        headers.insert(name, value.parse().expect("header value"));
    };
    set("lambda-runtime-aws-request-id", id.clone());
    set("lambda-runtime-deadline-ms", deadline.to_string());
    set(
        "lambda-runtime-invoked-function-arn",
        format!("arn:aws:lambda:{REGION}:123456789012:function:test"),
    );
    set("lambda-runtime-trace-id", "Root=1-00000000-000000000000000000000000".to_owned());
    set("content-type", "application/json".to_owned());
    state.waiting.lock().expect("lock").insert(id, invocation);
    (StatusCode::OK, headers, body)
}

fn settle(state: &RuntimeState, id: &str, answer: Result<serde_json::Value, serde_json::Value>) {
    if let Some(invocation) = state.waiting.lock().expect("lock").remove(id) {
        let _ = invocation.answer.send(answer);
    }
}

fn parse(body: &[u8]) -> serde_json::Value {
    serde_json::from_slice(body)
        .unwrap_or_else(|_| serde_json::Value::String(String::from_utf8_lossy(body).into_owned()))
}

async fn response(
    State(state): State<RuntimeState>,
    Path(id): Path<String>,
    body: Bytes,
) -> StatusCode {
    settle(&state, &id, Ok(parse(&body)));
    StatusCode::ACCEPTED
}

async fn error(
    State(state): State<RuntimeState>,
    Path(id): Path<String>,
    body: Bytes,
) -> StatusCode {
    settle(&state, &id, Err(parse(&body)));
    StatusCode::ACCEPTED
}

async fn init_error(State(state): State<RuntimeState>, body: Bytes) -> StatusCode {
    *state.init_error.lock().expect("lock") = Some(String::from_utf8_lossy(&body).into_owned());
    StatusCode::ACCEPTED
}
