//! The user pool's PreSignUp trigger: new users are confirmed; names that only a provider's
//! users may have are refused.

use aws_lambda_events::event::cognito::CognitoEventUserPoolsPreSignup;
use lambda_runtime::{LambdaEvent, service_fn};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    iotchat_lambda::init_logging();
    lambda_runtime::run(service_fn(|event: LambdaEvent<CognitoEventUserPoolsPreSignup>| async {
        iotchat_lambda::presignup::handle(event.payload).map_err(lambda_runtime::Error::from)
    }))
    .await
}
