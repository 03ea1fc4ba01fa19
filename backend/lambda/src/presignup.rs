//! The user pool's PreSignUp trigger: confirms every new user, as the seed's did, so people
//! sign in right after signing up (the local server does the same). Email addresses are not
//! marked verified: nobody checked them. Users who come through Google or Facebook on the
//! hosted UI (`PreSignUp_ExternalProvider`, on their first sign-in) are confirmed the same way.
//! A sign-up with a password under a provider's prefix (`Google_…`) is refused, as the local
//! server refuses it, so a password user never takes a federated user's name.

use aws_lambda_events::event::cognito::{
    CognitoEventUserPoolsPreSignup, CognitoEventUserPoolsPreSignupTriggerSource,
};
use iotchat_protocol::auth::{UsernameProblem, username_problem};

/// The event answered, or why the sign-up is refused (Cognito shows it to the caller as
/// `UserLambdaValidationException: PreSignUp failed with error <message>`).
pub fn handle(
    mut event: CognitoEventUserPoolsPreSignup,
) -> Result<CognitoEventUserPoolsPreSignup, String> {
    let external = matches!(
        event.cognito_event_user_pools_header.trigger_source,
        Some(CognitoEventUserPoolsPreSignupTriggerSource::ExternalProvider)
    );
    let username = event.cognito_event_user_pools_header.user_name.as_deref().unwrap_or_default();
    if !external && username_problem(username) == Some(UsernameProblem::ReservedPrefix) {
        return Err(UsernameProblem::ReservedPrefix.to_string());
    }
    event.response.auto_confirm_user = true;
    Ok(event)
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
        let answered = serde_json::to_value(handle(event.clone()).expect("confirmed")).unwrap();
        assert_eq!(answered["response"]["autoConfirmUser"], true);
        assert_eq!(answered["response"]["autoVerifyEmail"], false);
        assert_eq!(answered["userName"], "alice", "the rest goes back as it came");
        // A password sign-up may not take a provider's prefix.
        let mut taken = event;
        taken.cognito_event_user_pools_header.user_name = Some("google_123".into());
        let refused = handle(taken).expect_err("a reserved prefix");
        assert!(refused.contains("sign-in provider"), "{refused}");
    }

    #[test]
    fn federated_users_are_confirmed_too() {
        let event: CognitoEventUserPoolsPreSignup = serde_json::from_value(serde_json::json!({
            "version": "1",
            "region": "eu-west-1",
            "userPoolId": "eu-west-1_AbC123",
            // The user the hosted UI creates: <provider>_<the provider's subject>.
            "userName": "Google_109844304513055947397",
            "callerContext": {"awsSdkVersion": "aws-sdk-unknown-unknown", "clientId": "abc"},
            "triggerSource": "PreSignUp_ExternalProvider",
            "request": {"userAttributes": {"email": "carol@example.com"}, "validationData": null},
            "response": {"autoConfirmUser": false, "autoVerifyEmail": false, "autoVerifyPhone": false}
        }))
        .expect("Cognito's PreSignUp event for a federated user");
        let answered = serde_json::to_value(handle(event).expect("confirmed")).unwrap();
        assert_eq!(answered["triggerSource"], "PreSignUp_ExternalProvider");
        assert_eq!(answered["response"]["autoConfirmUser"], true);
        assert_eq!(answered["response"]["autoVerifyEmail"], false);
        assert_eq!(answered["userName"], "Google_109844304513055947397");
    }
}
