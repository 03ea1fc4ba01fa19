//! IoT Chat on AWS Lambda.
//!
//! - [`api`]: the `iotchat-api` Router, unchanged, behind API Gateway (REST API, `AWS_IAM`
//!   auth). API Gateway has verified the SigV4 signature; the caller is the Cognito identity
//!   in the request context. Storage is DynamoDB; the user pool and AWS IoT answer
//!   [`iotchat_api::Accounts`].
//! - [`ingest`]: the IoT topic rule on `room/public/+/+` hands every message to this function,
//!   which keeps it in the messages table by the same rule as the local broker.
//! - [`presignup`]: the user pool's PreSignUp trigger confirms new users (as the seed did).
//!
//! Each binary in `src/bin` reads its settings from the environment the template gives it
//! ([`Settings::from_env`]) and runs on the Lambda runtime.

pub mod api;
pub mod ingest;
pub mod presignup;

use iotchat_api::dynamo::{DynamoStore, Tables};

/// What the functions are told by the stack.
#[derive(Debug, Clone)]
pub struct Settings {
    pub tables: Tables,
    /// The user pool whose users may call the API (`IOTCHAT_USER_POOL_ID`).
    pub user_pool_id: String,
    /// The one IoT policy attached to every identity (`IOTCHAT_IOT_POLICY`).
    pub iot_policy: String,
}

impl Settings {
    /// From `IOTCHAT_USERS_TABLE`, `IOTCHAT_ROOMS_TABLE`, `IOTCHAT_MESSAGES_TABLE`,
    /// `IOTCHAT_USER_POOL_ID` and `IOTCHAT_IOT_POLICY`; says which one is missing.
    pub fn from_env() -> anyhow::Result<Self> {
        let var = |name: &str| {
            std::env::var(name)
                .ok()
                .filter(|v| !v.trim().is_empty())
                .ok_or_else(|| anyhow::anyhow!("the environment variable {name} is not set"))
        };
        Ok(Self {
            tables: Tables::from_env().map_err(anyhow::Error::msg)?,
            user_pool_id: var("IOTCHAT_USER_POOL_ID")?,
            iot_policy: var("IOTCHAT_IOT_POLICY")?,
        })
    }
}

/// The AWS SDK configuration of the function's environment (its role's credentials, its
/// region; `AWS_ENDPOINT_URL` points every client elsewhere, as tests do).
pub async fn sdk_config() -> aws_config::SdkConfig {
    aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await
}

/// The DynamoDB store for these settings.
pub fn store(sdk: &aws_config::SdkConfig, settings: &Settings) -> DynamoStore {
    DynamoStore::new(aws_sdk_dynamodb::Client::new(sdk), settings.tables.clone())
}

/// Logs as Lambda wants them: JSON lines on stdout (CloudWatch), no colours, `RUST_LOG` or info.
pub fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .json()
        .with_env_filter(filter)
        .with_target(false)
        .without_time() // CloudWatch stamps every line
        .try_init();
}
