//! The user pool's PreSignUp trigger: new users are confirmed.

use aws_lambda_events::event::cognito::CognitoEventUserPoolsPreSignup;
use lambda_runtime::{LambdaEvent, service_fn};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    iotchat_lambda::init_logging();
    lambda_runtime::run(service_fn(|event: LambdaEvent<CognitoEventUserPoolsPreSignup>| async {
        Ok::<_, lambda_runtime::Error>(iotchat_lambda::presignup::handle(event.payload))
    }))
    .await
}
