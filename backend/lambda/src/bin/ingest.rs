//! The IoT rule's function: keeps every `room/public/+/+` message in the messages table.

use iotchat_lambda::ingest::{self, RuleEvent};
use lambda_runtime::{LambdaEvent, service_fn};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    iotchat_lambda::init_logging();
    // Only the tables: this function answers to no user and attaches no policy.
    let tables = iotchat_api::dynamo::Tables::from_env().map_err(lambda_runtime::Error::from)?;
    let sdk = iotchat_lambda::sdk_config().await;
    let store = iotchat_api::dynamo::DynamoStore::new(aws_sdk_dynamodb::Client::new(&sdk), tables);
    lambda_runtime::run(service_fn(|event: LambdaEvent<RuleEvent>| {
        let store = &store;
        async move {
            ingest::handle(store, event.payload).await.map_err(lambda_runtime::Error::from)
        }
    }))
    .await
}
