//! The user pool's PreSignUp trigger: confirms every new user, as the seed's did, so people
//! sign in right after signing up (the local server does the same). Email addresses are not
//! marked verified: nobody checked them.

use aws_lambda_events::event::cognito::CognitoEventUserPoolsPreSignup;

pub fn handle(mut event: CognitoEventUserPoolsPreSignup) -> CognitoEventUserPoolsPreSignup {
    event.response.auto_confirm_user = true;
    event
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_users_are_confirmed_and_their_email_is_not_vouched_for() {
        let event: CognitoEventUserPoolsPreSignup = serde_json::from_value(serde_json::json!({
            "version": "1",
            "region": "us-east-1",
            "userPoolId": "us-east-1_AbC123",
            "userName": "alice",
            "callerContext": {"awsSdkVersion": "aws-sdk-unknown-unknown", "clientId": "abc"},
            "triggerSource": "PreSignUp_SignUp",
            "request": {"userAttributes": {"email": "alice@example.com"}},
            // Cognito sends the response part filled with falses for the trigger to change.
            "response": {"autoConfirmUser": false, "autoVerifyEmail": false, "autoVerifyPhone": false}
        }))
        .expect("Cognito's PreSignUp event");
        let answered = serde_json::to_value(handle(event)).unwrap();
        assert_eq!(answered["response"]["autoConfirmUser"], true);
        assert_eq!(answered["response"]["autoVerifyEmail"], false);
        assert_eq!(answered["userName"], "alice", "the rest goes back as it came");
    }
}
