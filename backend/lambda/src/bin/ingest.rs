//! The IoT rule's function: keeps every `room/public/+/+` message in the messages table.

use iotchat_lambda::ingest::{self, RuleEvent};
use lambda_runtime::{LambdaEvent, service_fn};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    iotchat_lambda::init_logging();
    let settings = iotchat_lambda::Settings::from_env()?;
    let sdk = iotchat_lambda::sdk_config().await;
    let store = iotchat_lambda::store(&sdk, &settings);
    lambda_runtime::run(service_fn(|event: LambdaEvent<RuleEvent>| {
        let store = &store;
        async move {
            ingest::handle(store, event.payload).await.map_err(lambda_runtime::Error::from)
        }
    }))
    .await
}
