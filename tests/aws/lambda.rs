//! The real Lambda binaries, run as Lambda runs them (polling a Runtime API), answering the
//! events AWS sends them: API Gateway REST API proxy events with a Cognito identity in the
//! request context, IoT topic-rule events, and the user pool's PreSignUp event. Their AWS
//! calls go to moto: DynamoDB, Cognito's ListUsers, IoT's AttachPolicy.

use base64::Engine as _;
use iotchat_api::dynamo::{DynamoStore, Tables};
use iotchat_protocol::IdentityId;
use serde_json::{Value, json};

use crate::support::{Moto, Pools, REGION, Runtime};

/// Everything the API function's stack would hold, on moto.
struct World {
    moto: Moto,
    pools: Pools,
    tables: Tables,
    policy: String,
}

impl World {
    async fn create(prefix: &str) -> Self {
        let moto = Moto::start().await;
        let pools = Pools::create(&moto).await;
        let tables = Tables::with_prefix(prefix);
        DynamoStore::new(moto.dynamodb(), tables.clone())
            .create_tables()
            .await
            .expect("the tables are created");
        let policy = format!("{prefix}-iotchat-user");
        moto.iot()
            .create_policy()
            .policy_name(&policy)
            .policy_document(
                json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
                    "Action": "iot:Receive", "Resource": "*"}]})
                .to_string(),
            )
            .send()
            .await
            .expect("the IoT policy is created");
        Self { moto, pools, tables, policy }
    }

    /// What the template tells the functions, plus the SDK's way to moto.
    fn env(&self) -> Vec<(String, String)> {
        let mut env = self.moto.sdk_env();
        env.extend(
            [
                ("IOTCHAT_USERS_TABLE", self.tables.users.as_str()),
                ("IOTCHAT_ROOMS_TABLE", self.tables.rooms.as_str()),
                ("IOTCHAT_MESSAGES_TABLE", self.tables.messages.as_str()),
                ("IOTCHAT_USER_POOL_ID", self.pools.user_pool_id.as_str()),
                ("IOTCHAT_IOT_POLICY", self.policy.as_str()),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned())),
        );
        env
    }

    /// A signed-up user of the pool with an identity: what API Gateway would name.
    async fn person(&self, username: &str) -> Person {
        let sub = self.pools.confirmed_user(&self.moto, username).await;
        let identity = self.pools.identity(&self.moto).await;
        Person { identity, sub, pool: self.pools.user_pool_id.clone() }
    }
}

/// A caller as API Gateway's IAM authorizer describes a Cognito identity.
struct Person {
    identity: IdentityId,
    sub: String,
    pool: String,
}

impl Person {
    fn request_identity(&self) -> Value {
        let provider = format!("cognito-idp.{REGION}.amazonaws.com/{}", self.pool);
        json!({
            "cognitoIdentityPoolId": format!("{REGION}:11111111-2222-4333-8444-555555555555"),
            "cognitoIdentityId": self.identity.as_str(),
            "cognitoAuthenticationType": "authenticated",
            "cognitoAuthenticationProvider":
                format!("{provider},{provider}:CognitoSignIn:{}", self.sub),
            "accountId": "123456789012",
            "caller": "AROAEXAMPLE:CognitoIdentityCredentials",
            "accessKey": "ASIAEXAMPLE",
            "sourceIp": "192.0.2.10",
            "userArn": "arn:aws:sts::123456789012:assumed-role/iotchat-authenticated/CognitoIdentityCredentials",
            "userAgent": "iotchat",
            "user": "AROAEXAMPLE:CognitoIdentityCredentials"
        })
    }
}

/// A REST API proxy event for `method path` under the `api` stage, as API Gateway sends it.
fn gateway_event(
    method: &str,
    path: &str,
    query: &[(&str, &str)],
    body: Option<&str>,
    identity: Value,
) -> Value {
    let query_map: serde_json::Map<String, Value> =
        query.iter().map(|(k, v)| ((*k).to_owned(), json!(v))).collect();
    let multi_query: serde_json::Map<String, Value> =
        query.iter().map(|(k, v)| ((*k).to_owned(), json!([v]))).collect();
    let mut headers = json!({
        "Accept": "application/json",
        "Host": "abcdef1234.execute-api.us-east-1.amazonaws.com",
        "User-Agent": "iotchat",
        "X-Forwarded-Proto": "https"
    });
    if body.is_some() {
        headers["Content-Type"] = json!("application/json");
    }
    let multi_headers: serde_json::Map<String, Value> =
        headers.as_object().expect("object").iter().map(|(k, v)| (k.clone(), json!([v]))).collect();
    json!({
        "resource": "/{proxy+}",
        "path": path,
        "httpMethod": method,
        "headers": headers,
        "multiValueHeaders": multi_headers,
        "queryStringParameters": if query.is_empty() { Value::Null } else { Value::Object(query_map) },
        "multiValueQueryStringParameters": if query.is_empty() { Value::Null } else { Value::Object(multi_query) },
        "pathParameters": {"proxy": path.trim_start_matches('/')},
        "stageVariables": null,
        "requestContext": {
            "accountId": "123456789012",
            "resourceId": "abc123",
            "stage": "api",
            "requestId": uuid::Uuid::new_v4().to_string(),
            "identity": identity,
            "resourcePath": "/{proxy+}",
            "httpMethod": method,
            "apiId": "abcdef1234",
            "path": format!("/api{path}"),
            "protocol": "HTTP/1.1",
            "domainName": "abcdef1234.execute-api.us-east-1.amazonaws.com",
            "requestTimeEpoch": iotchat_api::now_ms()
        },
        "body": body,
        "isBase64Encoded": false
    })
}

/// The API function behind its own runtime.
struct ApiFunction {
    runtime: Runtime,
    _process: tokio::process::Child,
}

impl ApiFunction {
    async fn start(env: &[(String, String)]) -> Self {
        let runtime = Runtime::start().await;
        let process = runtime.spawn("iotchat-lambda-api", env);
        Self { runtime, _process: process }
    }

    /// Sends one request; returns the status and the JSON body of the proxy response.
    async fn call(
        &self,
        method: &str,
        path: &str,
        query: &[(&str, &str)],
        body: Option<&str>,
        identity: Value,
    ) -> (u16, Value) {
        let event = gateway_event(method, path, query, body, identity);
        let response = self
            .runtime
            .invoke(event)
            .await
            .unwrap_or_else(|e| panic!("{method} {path}: the function failed: {e}"));
        let status = response["statusCode"].as_u64().expect("a statusCode") as u16;
        let raw = response["body"].as_str().unwrap_or_default();
        let raw = if response["isBase64Encoded"] == json!(true) {
            String::from_utf8(base64::engine::general_purpose::STANDARD.decode(raw).expect("b64"))
                .expect("utf-8")
        } else {
            raw.to_owned()
        };
        let content_type = response["headers"]["content-type"]
            .as_str()
            .or_else(|| response["multiValueHeaders"]["content-type"][0].as_str())
            .unwrap_or_default();
        assert!(
            content_type.starts_with("application/json"),
            "{method} {path} answers JSON, got content-type {content_type:?}: {raw}"
        );
        let body = serde_json::from_str(&raw)
            .unwrap_or_else(|e| panic!("{method} {path}: the body is not JSON ({e}): {raw}"));
        (status, body)
    }
}

/// Asserts the shared error body `{code, message}` with a message for people.
fn assert_error(answer: &(u16, Value), status: u16, code: &str) {
    assert_eq!(answer.0, status, "status of {}", answer.1);
    assert_eq!(answer.1["code"], code, "code of {}", answer.1);
    let message = answer.1["message"].as_str().unwrap_or_default();
    assert!(message.len() > 10, "a message a person can read: {:?}", answer.1);
}

#[tokio::test]
async fn the_api_function_answers_every_route_for_the_cognito_identity_in_the_context() {
    let world = World::create("routes").await;
    let api = ApiFunction::start(&world.env()).await;
    let alice = world.person("alice").await;
    let bob = world.person("bob").await;
    let me = || alice.request_identity();

    // POST /users: only one's own username; GET /users/me before and after.
    assert_error(&api.call("GET", "/users/me", &[], None, me()).await, 404, "not_found");
    let wrong = api.call("POST", "/users", &[], Some(r#"{"username":"bob"}"#), me()).await;
    assert_error(&wrong, 403, "forbidden");
    let bad = api.call("POST", "/users", &[], Some("{not json"), me()).await;
    assert_error(&bad, 400, "invalid_input");
    let (status, body) =
        api.call("POST", "/users", &[], Some(r#"{"username":"ALICE"}"#), me()).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body, json!({"identityId": alice.identity.as_str(), "username": "alice"}));
    let (status, body) = api.call("GET", "/users/me", &[], None, me()).await;
    assert_eq!((status, &body["username"]), (200, &json!("alice")));
    api.call("POST", "/users", &[], Some(r#"{"username":"bob"}"#), bob.request_identity()).await;

    // GET /users, GET /users/{identityId}.
    let (status, body) = api.call("GET", "/users", &[], None, me()).await;
    assert_eq!(status, 200);
    let names: Vec<&str> = body["users"]
        .as_array()
        .expect("users")
        .iter()
        .filter_map(|u| u["username"].as_str())
        .collect();
    assert_eq!(names, ["alice", "bob"]);
    let path = format!("/users/{}", bob.identity.as_str());
    let (status, body) = api.call("GET", &path, &[], None, me()).await;
    assert_eq!((status, &body["username"]), (200, &json!("bob")));
    let nobody = format!("/users/{REGION}:99999999-9999-4999-8999-999999999999");
    assert_error(&api.call("GET", &nobody, &[], None, me()).await, 404, "not_found");
    assert_error(&api.call("GET", "/users/not-an-id", &[], None, me()).await, 400, "invalid_input");

    // POST /chats, GET /chats.
    let (status, room) = api
        .call("POST", "/chats", &[], Some(r#"{"roomName":"Team Chat","type":"public"}"#), me())
        .await;
    assert_eq!(status, 201, "{room}");
    assert_eq!(room["name"], "room/public/team-chat");
    assert_eq!(room["displayName"], "Team Chat");
    assert_eq!(room["createdBy"], alice.identity.as_str());
    let again = api
        .call("POST", "/chats", &[], Some(r#"{"roomName":"team chat!","type":"public"}"#), me())
        .await;
    assert_error(&again, 409, "room_exists");
    assert!(again.1["message"].as_str().unwrap_or_default().contains("Team Chat"));
    let empty =
        api.call("POST", "/chats", &[], Some(r#"{"roomName":"!!!","type":"public"}"#), me()).await;
    assert_error(&empty, 400, "invalid_input");
    let (status, body) = api.call("GET", "/chats", &[], None, bob.request_identity()).await;
    assert_eq!(status, 200);
    assert_eq!(body["rooms"], json!([room]));

    // GET /chats/messages: an empty page, bad input, an unknown room.
    let query = [("room", "room/public/team-chat")];
    let (status, body) = api.call("GET", "/chats/messages", &query, None, me()).await;
    assert_eq!(status, 200);
    assert_eq!(body["messages"], json!([]));
    assert!(body.get("nextBefore").is_none_or(Value::is_null), "{body}");
    let cursor = [("room", "team-chat"), ("before", "garbage")];
    assert_error(
        &api.call("GET", "/chats/messages", &cursor, None, me()).await,
        400,
        "invalid_input",
    );
    let limit = [("room", "team-chat"), ("limit", "many")];
    assert_error(
        &api.call("GET", "/chats/messages", &limit, None, me()).await,
        400,
        "invalid_input",
    );
    let unknown = [("room", "nowhere")];
    assert_error(&api.call("GET", "/chats/messages", &unknown, None, me()).await, 404, "not_found");
    assert_error(&api.call("GET", "/chats/messages", &[], None, me()).await, 400, "invalid_input");

    // POST /policy/attach: the stack's policy, on the caller's identity, idempotent.
    for _ in 0..2 {
        let (status, body) = api.call("POST", "/policy/attach", &[], None, me()).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(
            body,
            json!({"identityId": alice.identity.as_str(), "policyName": world.policy})
        );
    }
    let attached = world
        .moto
        .iot()
        .list_attached_policies()
        .target(alice.identity.as_str())
        .send()
        .await
        .expect("ListAttachedPolicies");
    let names: Vec<&str> = attached.policies().iter().filter_map(|p| p.policy_name()).collect();
    assert_eq!(names, [world.policy.as_str()], "attached once, to alice's identity");

    // Unknown routes, and callers API Gateway did not tie to a Cognito identity.
    assert_error(&api.call("GET", "/nothing", &[], None, me()).await, 404, "not_found");
    let iam_user = json!({"accessKey": "AKIAEXAMPLE", "sourceIp": "192.0.2.1",
        "userArn": "arn:aws:iam::123456789012:user/admin", "cognitoIdentityId": null});
    assert_error(&api.call("GET", "/chats", &[], None, iam_user).await, 403, "forbidden");
    let forged = json!({"cognitoIdentityId": "not an identity"});
    assert_error(&api.call("GET", "/chats", &[], None, forged).await, 403, "forbidden");
    // A Cognito identity of another pool names no user: it reads, but records no username.
    let other_pool = Person {
        identity: world.pools.identity(&world.moto).await,
        sub: alice.sub.clone(),
        pool: format!("{REGION}_OtherPool1"),
    };
    let (status, _) = api.call("GET", "/chats", &[], None, other_pool.request_identity()).await;
    assert_eq!(status, 200);
    let other = api
        .call("POST", "/users", &[], Some(r#"{"username":"alice"}"#), other_pool.request_identity())
        .await;
    assert_error(&other, 403, "forbidden");
}

fn rule_event(topic: &str, payload: &[u8], received_at: u64) -> Value {
    json!({
        "topic": topic,
        "payload": base64::engine::general_purpose::STANDARD.encode(payload),
        "receivedAt": received_at
    })
}

#[tokio::test]
async fn the_topic_rule_function_keeps_history_that_the_api_function_pages() {
    let world = World::create("ingest").await;
    let ingest_runtime = Runtime::start().await;
    let _ingest = ingest_runtime.spawn("iotchat-lambda-ingest", &world.env());
    let api = ApiFunction::start(&world.env()).await;
    let alice = world.person("alice").await;
    let (status, _) = api
        .call(
            "POST",
            "/chats",
            &[],
            Some(r#"{"roomName":"general","type":"public"}"#),
            alice.request_identity(),
        )
        .await;
    assert_eq!(status, 201);

    let topic = format!("room/public/general/{}", alice.identity.as_str());
    let mut ids = Vec::new();
    for n in 0..5u64 {
        let id = format!("{n:02}-{}", uuid::Uuid::new_v4());
        let payload =
            json!({"message": format!("hello {n}"), "id": id, "sentAt": 1_700_000_000_000u64 + n});
        let outcome = ingest_runtime
            .invoke(rule_event(&topic, payload.to_string().as_bytes(), 1_700_000_000_100 + n))
            .await
            .expect("the function answers");
        assert_eq!(outcome, json!({"outcome": "stored", "id": id}));
        ids.push(id);
    }
    // AWS IoT delivers at least once: the same message again is not kept twice.
    let resend = json!({"message": "hello 0", "id": ids[0], "sentAt": 1_700_000_000_000u64});
    let outcome = ingest_runtime
        .invoke(rule_event(&topic, resend.to_string().as_bytes(), 1_700_000_009_999))
        .await
        .expect("the function answers");
    assert_eq!(outcome, json!({"outcome": "duplicate", "id": ids[0]}));
    // What is not a chat message is delivered by AWS IoT but not kept, and says why.
    for (topic, payload) in [
        (topic.as_str(), b"not json".as_slice()),
        (topic.as_str(), br#"{"message": "   "}"#.as_slice()),
        ("room/public/general/not-an-identity", br#"{"message":"hi"}"#.as_slice()),
        ("room/public/Bad_Slug/x", br#"{"message":"hi"}"#.as_slice()),
    ] {
        let outcome = ingest_runtime
            .invoke(rule_event(topic, payload, 1_700_000_000_000))
            .await
            .expect("answer");
        assert_eq!(outcome["outcome"], "skipped", "{topic} {outcome}");
        assert!(outcome["reason"].as_str().is_some_and(|r| r.len() > 10), "{outcome}");
    }
    let not_base64 = json!({"topic": topic, "payload": "%%%", "receivedAt": 1});
    let outcome = ingest_runtime.invoke(not_base64).await.expect("answer");
    assert_eq!(outcome["outcome"], "skipped");
    // A message without an id (the seed's clients) gets one.
    let seed = ingest_runtime
        .invoke(rule_event(&topic, br#"{"message":"from the seed"}"#, 1_700_000_000_200))
        .await
        .expect("answer");
    assert_eq!(seed["outcome"], "stored");

    // The API function pages what the rule kept: newest first, two at a time, each once.
    let mut seen = Vec::new();
    let mut before: Option<String> = None;
    for _ in 0..10 {
        let mut query = vec![("room", "general"), ("limit", "2")];
        if let Some(cursor) = &before {
            query.push(("before", cursor.as_str()));
        }
        let (status, page) =
            api.call("GET", "/chats/messages", &query, None, alice.request_identity()).await;
        assert_eq!(status, 200, "{page}");
        for m in page["messages"].as_array().expect("messages") {
            assert_eq!(m["sender"], alice.identity.as_str());
            assert_eq!(m["room"], "room/public/general");
            seen.push(m["message"].as_str().expect("text").to_owned());
        }
        match page["nextBefore"].as_str() {
            Some(cursor) => before = Some(cursor.to_owned()),
            None => break,
        }
    }
    assert_eq!(
        seen,
        ["from the seed", "hello 4", "hello 3", "hello 2", "hello 1", "hello 0"],
        "every kept message once, by arrival, newest first"
    );
}

#[tokio::test]
async fn a_function_that_cannot_store_says_so() {
    let world = World::create("broken").await;
    let mut env = world.env();
    for (key, value) in &mut env {
        if key == "IOTCHAT_MESSAGES_TABLE" || key == "IOTCHAT_ROOMS_TABLE" {
            *value = "no-such-table".to_owned();
        }
    }
    // The topic rule's function fails the invocation (so AWS IoT's error action sees it),
    // rather than dropping the message as if it were kept.
    let runtime = Runtime::start().await;
    let _ingest = runtime.spawn("iotchat-lambda-ingest", &env);
    let topic = format!("room/public/general/{}", world.pools.identity(&world.moto).await.as_str());
    let failed = runtime
        .invoke(rule_event(&topic, br#"{"message":"lost?","id":"m-1"}"#, 1_700_000_000_000))
        .await
        .expect_err("a message that could not be stored is an error");
    let message = failed["errorMessage"].as_str().unwrap_or_default();
    assert!(message.contains("no-such-table") || message.contains("ResourceNotFound"), "{failed}");

    // The API answers 500 with the shared body, not a gateway error or a crash.
    let api = ApiFunction::start(&env).await;
    let alice = world.person("alice").await;
    assert_error(
        &api.call("GET", "/chats", &[], None, alice.request_identity()).await,
        500,
        "internal",
    );
    // The function keeps serving after an error.
    let (status, _) = api.call("GET", "/users", &[], None, alice.request_identity()).await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn the_presignup_function_confirms_new_users() {
    let runtime = Runtime::start().await;
    let _presignup = runtime.spawn("iotchat-lambda-presignup", &[]);
    // The event as Cognito sends it (PreSignUp_SignUp), response fields set to false.
    let event = json!({
        "version": "1",
        "region": REGION,
        "userPoolId": format!("{REGION}_AbCdEf123"),
        "userName": "alice",
        "callerContext": {"awsSdkVersion": "aws-sdk-rust-1.0", "clientId": "client123"},
        "triggerSource": "PreSignUp_SignUp",
        "request": {"userAttributes": {"email": "alice@example.com"}, "validationData": null},
        "response": {"autoConfirmUser": false, "autoVerifyEmail": false, "autoVerifyPhone": false}
    });
    let answer = runtime.invoke(event).await.expect("the trigger answers");
    assert_eq!(answer["response"]["autoConfirmUser"], true);
    assert_eq!(answer["response"]["autoVerifyEmail"], false, "nobody checked the address");
    assert_eq!(answer["userName"], "alice");
    assert_eq!(answer["triggerSource"], "PreSignUp_SignUp");
}
