//! The HTTP API, signed with SigV4 (service `execute-api`) by the AWS signer, with the
//! identity's temporary credentials — as API Gateway with `AWS_IAM` auth expects.

use std::time::SystemTime;

use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
use iotchat_protocol::api::{
    CreateRoomRequest, CreateUserRequest, MessagePage, PolicyAttachResponse, Room, RoomList,
    RoomType, User, UserList, routes,
};
use iotchat_protocol::{Code, ErrorBody, IdentityId, RoomName};
use serde::de::DeserializeOwned;

use crate::auth::AwsCredentials;
use crate::backend::{Backend, error_chain};
use crate::error::{ClientError, Result};

/// The API of one backend.
#[derive(Debug, Clone)]
pub(crate) struct Api {
    http: reqwest::Client,
    base: String,
    region: String,
}

impl Api {
    pub(crate) fn new(backend: &Backend) -> Result<Self> {
        Ok(Self {
            http: backend.http_client()?,
            base: backend.profile.api_url.clone(),
            region: backend.profile.region.clone(),
        })
    }

    async fn call<T: DeserializeOwned>(
        &self,
        credentials: &AwsCredentials,
        method: reqwest::Method,
        path_and_query: &str,
        body: Option<Vec<u8>>,
    ) -> Result<T> {
        let url = format!("{}{path_and_query}", self.base);
        let body = body.unwrap_or_default();
        let mut headers = vec![("content-type", "application/json".to_owned())];
        let identity = credentials.for_signing().into();
        let params = aws_sigv4::sign::v4::SigningParams::builder()
            .identity(&identity)
            .region(&self.region)
            .name("execute-api")
            .time(SystemTime::now())
            .settings(SigningSettings::default())
            .build()
            .map_err(|e| ClientError::internal(format!("signing: {e}")))?
            .into();
        let signable = SignableRequest::new(
            method.as_str(),
            &url,
            headers.iter().map(|(k, v)| (*k, v.as_str())),
            SignableBody::Bytes(&body),
        )
        .map_err(|e| ClientError::internal(format!("signing {url}: {e}")))?;
        let (instructions, _) = sign(signable, &params)
            .map_err(|e| ClientError::internal(format!("signing {url}: {e}")))?
            .into_parts();
        let mut request = self.http.request(method, &url).body(body);
        for (name, value) in headers.drain(..) {
            request = request.header(name, value);
        }
        for (name, value) in instructions.headers() {
            request = request.header(name, value);
        }
        let response = request.send().await.map_err(|e| {
            ClientError::unavailable(format!("Cannot reach the server: {}", error_chain(&e)))
        })?;
        let status = response.status();
        let aws_type = response
            .headers()
            .get("x-amzn-errortype")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let bytes = response.bytes().await.map_err(|e| {
            ClientError::unavailable(format!(
                "The server's answer was cut off: {}",
                error_chain(&e)
            ))
        })?;
        if status.is_success() {
            return serde_json::from_slice(&bytes).map_err(|e| {
                ClientError::internal(format!(
                    "The server's answer to {path_and_query} is not understood: {e}"
                ))
            });
        }
        Err(refusal(status.as_u16(), aws_type.as_deref(), &bytes, path_and_query))
    }

    pub(crate) async fn user_record(&self, c: &AwsCredentials, username: &str) -> Result<User> {
        let body = serde_json::to_vec(&CreateUserRequest { username: username.to_owned() })
            .map_err(|e| ClientError::internal(e.to_string()))?;
        self.call(c, reqwest::Method::POST, routes::USERS, Some(body)).await
    }

    pub(crate) async fn user_get(&self, c: &AwsCredentials, id: &IdentityId) -> Result<User> {
        self.call(c, reqwest::Method::GET, &routes::user(id), None).await
    }

    pub(crate) async fn user_me(&self, c: &AwsCredentials) -> Result<User> {
        self.call(c, reqwest::Method::GET, routes::USERS_ME, None).await
    }

    pub(crate) async fn users(&self, c: &AwsCredentials) -> Result<Vec<User>> {
        let list: UserList = self.call(c, reqwest::Method::GET, routes::USERS, None).await?;
        Ok(list.users)
    }

    pub(crate) async fn rooms(&self, c: &AwsCredentials) -> Result<Vec<Room>> {
        let list: RoomList = self.call(c, reqwest::Method::GET, routes::CHATS, None).await?;
        Ok(list.rooms)
    }

    pub(crate) async fn room_create(&self, c: &AwsCredentials, display_name: &str) -> Result<Room> {
        let request =
            CreateRoomRequest { room_name: display_name.to_owned(), room_type: RoomType::Public };
        // Checked here too, so a bad name never costs a round trip.
        request.validate().map_err(|e| ClientError::invalid(e.to_string()))?;
        let body =
            serde_json::to_vec(&request).map_err(|e| ClientError::internal(e.to_string()))?;
        self.call(c, reqwest::Method::POST, routes::CHATS, Some(body)).await
    }

    pub(crate) async fn policy_attach(&self, c: &AwsCredentials) -> Result<PolicyAttachResponse> {
        self.call(c, reqwest::Method::POST, routes::POLICY_ATTACH, None).await
    }

    pub(crate) async fn messages(
        &self,
        c: &AwsCredentials,
        room: &RoomName,
        before: Option<&str>,
        limit: u32,
    ) -> Result<MessagePage> {
        let mut path =
            format!("{}?room={}&limit={limit}", routes::CHAT_MESSAGES, encode(&room.to_string()));
        if let Some(before) = before {
            path.push_str(&format!("&before={}", encode(before)));
        }
        self.call(c, reqwest::Method::GET, &path, None).await
    }
}

/// Percent-encodes a query value the way SigV4 canonicalizes it (RFC 3986 unreserved kept).
fn encode(value: &str) -> String {
    const SET: &percent_encoding::AsciiSet =
        &percent_encoding::NON_ALPHANUMERIC.remove(b'-').remove(b'_').remove(b'.').remove(b'~');
    percent_encoding::utf8_percent_encode(value, SET).to_string()
}

/// The error of a refused API call. Our server sends `{code, message}`; API Gateway's own
/// refusals (a signature it does not accept) send only `{message}` with a 403 and name the
/// exception in `x-amzn-ErrorType`, which is what decides between "renew the credentials" and
/// "not allowed".
fn refusal(status: u16, aws_type: Option<&str>, body: &[u8], path: &str) -> ClientError {
    if let Ok(body) = serde_json::from_slice::<ErrorBody>(body) {
        return body.into();
    }
    #[derive(serde::Deserialize)]
    struct GatewayBody {
        message: String,
    }
    let message = serde_json::from_slice::<GatewayBody>(body).ok().map(|b| b.message);
    // The header may carry a suffix after ':' (the exception's namespace).
    let aws_type = aws_type.map(|t| t.split(':').next().unwrap_or(t));
    let said = |fallback: String| message.clone().unwrap_or(fallback);
    match aws_type {
        // API Gateway answers this for a path it has no route for, signed or not.
        Some("MissingAuthenticationTokenException") => ClientError::new(
            Code::NotFound,
            format!("The API has no route {path}: check the profile's API address."),
        ),
        Some("InvalidSignatureException")
            if message.as_deref().is_some_and(|m| m.starts_with("Signature expired"))
                || message.as_deref().is_some_and(|m| m.starts_with("Signature not yet")) =>
        {
            ClientError::new(
                Code::Unauthenticated,
                "The server refused the request's time: this computer's clock is more than 5 \
                 minutes off. Set the clock right and try again.",
            )
        }
        Some(
            "IncompleteSignatureException"
            | "InvalidSignatureException"
            | "UnrecognizedClientException"
            | "ExpiredTokenException",
        ) => ClientError::new(
            Code::Unauthenticated,
            said(format!("The server refused the credentials for {path}.")),
        ),
        Some("AccessDeniedException") => ClientError::new(
            Code::Forbidden,
            said(format!("These credentials may not call {path}.")),
        ),
        Some("ThrottlingException" | "TooManyRequestsException" | "LimitExceededException") => {
            ClientError::new(Code::RateLimited, said("The server is busy: try again soon.".into()))
        }
        _ => {
            let code = match status {
                401 => Code::Unauthenticated,
                403 => Code::Forbidden,
                404 => Code::NotFound,
                429 => Code::RateLimited,
                502..=504 => Code::Unavailable,
                _ => Code::Internal,
            };
            ClientError::new(code, said(format!("The server answered {status} to {path}.")))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn our_servers_body_decides_the_code() {
        let body = br#"{"code":"unauthenticated","message":"Missing Authentication Token"}"#;
        let error = refusal(403, Some("MissingAuthenticationTokenException"), body, "/chats");
        assert_eq!(error.code, Code::Unauthenticated, "our server's code wins over the header");
    }

    #[test]
    fn api_gateway_refusals_map_by_their_exception() {
        let invalid = br#"{"message":"The security token included in the request is invalid."}"#;
        let error = refusal(403, Some("UnrecognizedClientException"), invalid, "/chats");
        assert_eq!(error.code, Code::Unauthenticated, "an unknown token means renew: {error:?}");
        assert!(error.message.contains("security token"), "{error:?}");

        let expired = br#"{"message":"The security token included in the request is expired"}"#;
        let with_suffix = "ExpiredTokenException:http://internal.amazon.com/coral/com.amazon/";
        assert_eq!(refusal(403, Some(with_suffix), expired, "/chats").code, Code::Unauthenticated);

        let denied = br#"{"message":"User: arn:aws:sts::1:assumed-role/r is not authorized"}"#;
        let error = refusal(403, Some("AccessDeniedException"), denied, "/chats");
        assert_eq!(error.code, Code::Forbidden, "a denied call is not a reason to renew");

        let missing = br#"{"message":"Missing Authentication Token"}"#;
        let error = refusal(403, Some("MissingAuthenticationTokenException"), missing, "/nope");
        assert_eq!(error.code, Code::NotFound, "a signed call to no route: {error:?}");

        let skew = br#"{"message":"Signature expired: 20260101T000000Z is now earlier than 20260101T001000Z (20260101T001500Z - 5 min.)"}"#;
        let error = refusal(403, Some("InvalidSignatureException"), skew, "/chats");
        assert!(error.message.contains("clock"), "a stale date is the clock's fault: {error:?}");
    }

    #[test]
    fn a_bare_status_still_maps() {
        assert_eq!(refusal(403, None, b"", "/chats").code, Code::Forbidden);
        assert_eq!(refusal(500, None, b"<html>", "/chats").code, Code::Internal);
        assert_eq!(refusal(502, None, b"", "/chats").code, Code::Unavailable);
    }
}
