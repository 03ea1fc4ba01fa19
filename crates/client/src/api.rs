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
        Err(match serde_json::from_slice::<ErrorBody>(&bytes) {
            Ok(body) => body.into(),
            Err(_) => {
                let code = match status.as_u16() {
                    401 => Code::Unauthenticated,
                    403 => Code::Forbidden,
                    404 => Code::NotFound,
                    429 => Code::RateLimited,
                    502..=504 => Code::Unavailable,
                    _ => Code::Internal,
                };
                ClientError::new(code, format!("The server answered {status} to {path_and_query}."))
            }
        })
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
