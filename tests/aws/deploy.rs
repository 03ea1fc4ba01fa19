//! `iotchat-infra deploy` and `teardown` (what `cargo xtask aws deploy|teardown` run) against
//! moto with `--endpoint-url`: what moto can create from the template is created and checked
//! in moto's own services; what it cannot is reported; teardown detaches and removes it all.

use std::process::Output;

use iotchat_api::ChatStore as _;
use iotchat_api::dynamo::{DynamoStore, Tables};
use iotchat_protocol::api::{Room, RoomType, StoredMessage};
use iotchat_protocol::{MessageId, RoomName, RoomSlug};

use crate::support::{Moto, Pools, REGION};

/// Runs iotchat-infra with only the environment given (no AWS settings of the machine's).
async fn infra(args: &[&str], env: &[(String, String)]) -> Output {
    let home = tempfile::tempdir().expect("empty HOME");
    let mut command = tokio::process::Command::new(
        iotchat_tests::infra_binary().expect("iotchat-infra is built"),
    );
    command
        .args(args)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", home.path())
        // No instance metadata service here: do not wait for one.
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .kill_on_drop(true);
    for (key, value) in env {
        command.env(key, value);
    }
    tokio::time::timeout(std::time::Duration::from_secs(300), command.output())
        .await
        .expect("iotchat-infra finishes within 5 minutes")
        .expect("iotchat-infra runs")
}

fn text(output: &Output) -> String {
    format!(
        "{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// The functions directory: the binaries the Lambda tests run (cargo's layout).
fn functions_dir() -> String {
    iotchat_tests::lambda_binary("iotchat-lambda-api")
        .expect("the functions are built")
        .parent()
        .expect("a directory")
        .to_string_lossy()
        .into_owned()
}

/// boto3 answering a few questions about moto's IAM, Lambda and S3 (which our tests have no
/// Rust clients for), as JSON.
async fn boto(moto: &Moto, stack: &str) -> serde_json::Value {
    let script = r#"
import boto3, json, sys
kw = dict(endpoint_url=sys.argv[1], region_name="us-east-1",
          aws_access_key_id="testing", aws_secret_access_key="testing")
prefix = sys.argv[2] + "-"
fns = [boto3.client("lambda", **kw).get_function(FunctionName=f["FunctionName"])["Configuration"]
       for f in boto3.client("lambda", **kw).list_functions()["Functions"]
       if f["FunctionName"].startswith(prefix)]
roles = [r["RoleName"] for r in boto3.client("iam", **kw).list_roles()["Roles"]
         if r["RoleName"].startswith(prefix)]
buckets = [b["Name"] for b in boto3.client("s3", **kw).list_buckets()["Buckets"]
           if b["Name"].startswith(prefix)]
print(json.dumps({
  "functions": [{"name": f["FunctionName"], "runtime": f.get("Runtime"), "handler": f.get("Handler"),
                 "env": f.get("Environment", {}).get("Variables", {})} for f in fns],
  "roles": roles, "buckets": buckets}))
"#;
    let python = iotchat_tests::peers_python().expect("the peers' Python");
    let out = tokio::process::Command::new(python)
        .args(["-c", script, moto.endpoint(), stack])
        .output()
        .await
        .expect("python runs");
    assert!(out.status.success(), "boto3: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).expect("JSON")
}

async fn tables_of(moto: &Moto, stack: &str) -> Vec<String> {
    let listed = moto.dynamodb().list_tables().send().await.expect("ListTables");
    listed.table_names().iter().filter(|t| t.starts_with(&format!("{stack}-"))).cloned().collect()
}

#[tokio::test]
async fn deploy_creates_what_moto_supports_says_what_it_could_not_and_teardown_removes_it() {
    let moto = Moto::start().await;
    let mut env = moto.sdk_env();
    env.retain(|(k, _)| k != "AWS_ENDPOINT_URL"); // the command's --endpoint-url says it
    let profile_out = tempfile::tempdir().expect("temp dir");
    let profile_path = profile_out.path().join("profile.json");
    let functions = functions_dir();
    let deploy = [
        "deploy",
        "--functions",
        functions.as_str(),
        "--stack",
        "chat",
        "--region",
        REGION,
        "--arch",
        "x86_64",
        "--endpoint-url",
        moto.endpoint(),
        "--profile-out",
        profile_path.to_str().expect("utf-8 path"),
    ];
    let out = infra(&deploy, &env).await;
    let said = text(&out);
    assert!(out.status.success(), "deploy on moto succeeds: {said}");
    for expected in [
        "created      AWS::DynamoDB::Table",
        "created      AWS::IoT::Policy",
        "created      AWS::IAM::Role",
        "created      AWS::Lambda::Function",
        "NOT CREATED  AWS::Cognito::UserPool",
        "NOT CREATED  AWS::IoT::TopicRule",
        "no profile: the stack has no UserPoolId output",
        "Deployed what the stand-in supports. Not created:",
    ] {
        assert!(said.contains(expected), "the report says {expected:?}: {said}");
    }
    assert!(!profile_path.exists(), "no profile is written when the stack cannot make one");

    // The tables are the ones the store expects: the storage story's core runs on them.
    let mut tables = tables_of(&moto, "chat").await;
    tables.sort();
    assert_eq!(tables.len(), 3, "{tables:?}");
    let find = |part: &str| {
        tables.iter().find(|t| t.contains(part)).cloned().unwrap_or_else(|| panic!("{part}"))
    };
    let store = DynamoStore::new(
        moto.dynamodb(),
        Tables {
            users: find("UsersTable"),
            rooms: find("RoomsTable"),
            messages: find("MessagesTable"),
        },
    );
    let creator = iotchat_protocol::IdentityId::parse(&format!(
        "{REGION}:00000000-0000-4000-8000-000000000001"
    ))
    .expect("identity");
    let name = RoomName::new(RoomSlug::parse("general").expect("slug"));
    store
        .room_insert(Room {
            name: name.clone(),
            display_name: "General".into(),
            room_type: RoomType::Public,
            created_by: creator.clone(),
            created_at: 1,
        })
        .await
        .expect("a room in the stack's table");
    for n in 0..3u64 {
        let message = StoredMessage {
            id: MessageId::parse(&format!("m-{n}")).expect("id"),
            room: name.clone(),
            sender: creator.clone(),
            message: format!("hello {n}"),
            sent_at: n,
            received_at: 1_000 + n,
        };
        assert!(store.message_insert(message).await.expect("a message in the stack's table"));
    }
    let (page, next) = store.messages_page(name.slug(), None, 2).await.expect("a page");
    assert_eq!(page.iter().map(|m| m.id.as_str()).collect::<Vec<_>>(), ["m-2", "m-1"]);
    assert!(next.is_some());

    // The one static IoT policy, with its policy variables intact.
    let policy =
        moto.iot().get_policy().policy_name("chat-user").send().await.expect("the IoT policy");
    let document = policy.policy_document().unwrap_or_default();
    assert!(
        document.contains("client/${cognito-identity.amazonaws.com:sub}-*")
            && document.contains("topic/room/public/*/${cognito-identity.amazonaws.com:sub}"),
        "{document}"
    );

    // Roles and functions, as Lambda and IAM hold them.
    let held = boto(&moto, "chat").await;
    let functions = held["functions"].as_array().expect("functions");
    assert_eq!(functions.len(), 3, "{held}");
    for function in functions {
        assert_eq!(function["runtime"], "provided.al2023", "{function}");
        assert_eq!(function["handler"], "bootstrap", "{function}");
    }
    let api = functions
        .iter()
        .find(|f| f["name"].as_str().is_some_and(|n| n.contains("ApiFunction")))
        .expect("the API function");
    assert_eq!(api["env"]["IOTCHAT_IOT_POLICY"], "chat-user");
    assert_eq!(api["env"]["IOTCHAT_MESSAGES_TABLE"], find("MessagesTable").as_str());
    assert!(held["roles"].as_array().is_some_and(|r| r.len() >= 4), "{held}");
    assert_eq!(held["buckets"].as_array().map(Vec::len), Some(1), "the artefacts bucket: {held}");

    // A second deploy of the same code changes nothing and says so.
    let again = infra(&deploy, &env).await;
    assert!(again.status.success(), "{}", text(&again));

    // Someone signed in: the policy is attached to their identity. Teardown detaches it first.
    let pools = Pools::create(&moto).await;
    let identity = pools.identity(&moto).await;
    moto.iot()
        .attach_policy()
        .policy_name("chat-user")
        .target(identity.as_str())
        .send()
        .await
        .expect("AttachPolicy");
    let teardown =
        ["teardown", "--stack", "chat", "--region", REGION, "--endpoint-url", moto.endpoint()];
    let out = infra(&teardown, &env).await;
    let said = text(&out);
    assert!(out.status.success(), "teardown succeeds: {said}");
    assert!(said.contains("detached from 1 identity"), "{said}");
    assert!(tables_of(&moto, "chat").await.is_empty(), "the tables are gone");
    assert!(moto.iot().get_policy().policy_name("chat-user").send().await.is_err());
    let held = boto(&moto, "chat").await;
    assert_eq!(held["functions"], serde_json::json!([]), "{held}");
    assert_eq!(held["roles"], serde_json::json!([]), "{held}");
    assert_eq!(held["buckets"], serde_json::json!([]), "{held}");

    // A second teardown finds nothing to do, and says so.
    let out = infra(&teardown, &env).await;
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("there is no stack chat"));
}

#[tokio::test]
async fn deploy_says_what_is_missing_before_it_calls_aws() {
    let functions = functions_dir();
    // No credentials anywhere (empty HOME, no AWS_* variables).
    let out = infra(&["deploy", "--functions", &functions, "--region", REGION], &[]).await;
    assert!(!out.status.success());
    let said = text(&out);
    assert!(said.contains("no AWS credentials") && said.contains("AWS_ACCESS_KEY_ID"), "{said}");
    // No region.
    let creds = [
        ("AWS_ACCESS_KEY_ID".to_owned(), "testing".to_owned()),
        ("AWS_SECRET_ACCESS_KEY".to_owned(), "testing".to_owned()),
    ];
    let out = infra(&["teardown"], &creds).await;
    assert!(!out.status.success());
    assert!(text(&out).contains("no AWS region: pass --region"), "{}", text(&out));
    // No binaries: named before anything is uploaded.
    let empty = tempfile::tempdir().expect("temp dir");
    let dir = empty.path().to_str().expect("utf-8");
    let out = infra(&["deploy", "--functions", dir, "--region", REGION], &creds).await;
    assert!(!out.status.success());
    assert!(text(&out).contains("no binary for iotchat-lambda-api"), "{}", text(&out));
    // Half a sign-in provider (a secret without its app id): refused first, the secret unsaid.
    let mut half = creds.to_vec();
    half.push(("IOTCHAT_FACEBOOK_APP_SECRET".to_owned(), "s3cret-value".to_owned()));
    let out = infra(&["deploy", "--functions", &functions, "--region", REGION], &half).await;
    assert!(!out.status.success());
    let said = text(&out);
    assert!(said.contains("IOTCHAT_FACEBOOK_APP_ID must be set"), "{said}");
    assert!(!said.contains("s3cret-value"), "{said}");
}
