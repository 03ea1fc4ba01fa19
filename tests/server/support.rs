use std::path::Path;

use aws_sdk_cognitoidentity as identity;
use aws_sdk_cognitoidentityprovider as idp;
use iotchat_server::RunningServer;
use iotchat_server::config::Config;
use iotchat_server::profile::Profile;

pub(crate) const PASSWORD: &str = "Correct-Horse-9";

/// Starts a server on 127.0.0.1:<ephemeral> with its data in `dir`.
pub(crate) async fn start(dir: &Path) -> RunningServer {
    let config = Config::for_data_dir(dir).expect("test config");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind loopback");
    iotchat_server::start(&config, listener).await.expect("server starts")
}

pub(crate) fn idp_client(profile: &Profile) -> idp::Client {
    let endpoint = profile.cognito_idp_endpoint.clone().expect("local profile has endpoints");
    let config = idp::Config::builder()
        .behavior_version(idp::config::BehaviorVersion::latest())
        .region(idp::config::Region::new(profile.region.clone()))
        .endpoint_url(endpoint)
        .retry_config(idp::config::retry::RetryConfig::disabled())
        .build();
    idp::Client::from_conf(config)
}

pub(crate) fn identity_client(profile: &Profile) -> identity::Client {
    let endpoint = profile.cognito_identity_endpoint.clone().expect("local profile has endpoints");
    let config = identity::Config::builder()
        .behavior_version(identity::config::BehaviorVersion::latest())
        .region(identity::config::Region::new(profile.region.clone()))
        .endpoint_url(endpoint)
        .retry_config(identity::config::retry::RetryConfig::disabled())
        .build();
    identity::Client::from_conf(config)
}

pub(crate) async fn sign_up(idp: &idp::Client, profile: &Profile, username: &str) {
    let email = idp::types::AttributeType::builder()
        .name("email")
        .value(format!("{username}@example.com"))
        .build()
        .expect("attribute");
    let out = idp
        .sign_up()
        .client_id(&profile.user_pool_client_id)
        .username(username)
        .password(PASSWORD)
        .user_attributes(email)
        .send()
        .await
        .expect("sign up");
    assert!(out.user_confirmed(), "users are auto-confirmed, as the seed's PreSignUp trigger did");
}

/// Tokens of one sign-in.
#[derive(Debug, Clone)]
pub(crate) struct Tokens {
    pub(crate) id: String,
    pub(crate) access: String,
    pub(crate) refresh: String,
}

pub(crate) async fn log_in(idp: &idp::Client, profile: &Profile, username: &str) -> Tokens {
    let out = idp
        .initiate_auth()
        .client_id(&profile.user_pool_client_id)
        .auth_flow(idp::types::AuthFlowType::UserPasswordAuth)
        .auth_parameters("USERNAME", username)
        .auth_parameters("PASSWORD", PASSWORD)
        .send()
        .await
        .expect("log in");
    let result = out.authentication_result().expect("tokens, not a challenge");
    Tokens {
        id: result.id_token().expect("id token").to_owned(),
        access: result.access_token().expect("access token").to_owned(),
        refresh: result.refresh_token().expect("refresh token").to_owned(),
    }
}

/// The `Logins` map GetId and GetCredentialsForIdentity take.
pub(crate) fn logins(profile: &Profile, id_token: &str) -> (String, String) {
    (
        format!("cognito-idp.{}.amazonaws.com/{}", profile.region, profile.user_pool_id),
        id_token.to_owned(),
    )
}

pub(crate) async fn get_id(
    identity: &identity::Client,
    profile: &Profile,
    id_token: &str,
) -> String {
    let (provider, token) = logins(profile, id_token);
    identity
        .get_id()
        .identity_pool_id(&profile.identity_pool_id)
        .logins(provider, token)
        .send()
        .await
        .expect("GetId")
        .identity_id()
        .expect("an identity id")
        .to_owned()
}
