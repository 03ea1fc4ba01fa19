//! The API function (API Gateway REST API, `AWS_IAM` auth).

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_http::Error> {
    iotchat_lambda::init_logging();
    let settings = iotchat_lambda::Settings::from_env()?;
    let sdk = iotchat_lambda::sdk_config().await;
    let state = iotchat_lambda::api::state(&sdk, &settings);
    lambda_http::run(iotchat_lambda::api::app(state, &settings.user_pool_id)).await
}
