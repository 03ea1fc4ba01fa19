//! The Cognito JSON handlers and the hosted UI's token endpoint of a running server: any body
//! for any operation gets Cognito's typed 400 or a 200, never a 500, a dropped connection or
//! a panic (a handler that panics drops its connection, which fails here).
#![no_main]

use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::sync::OnceLock;
use std::time::Duration;

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;

const OPERATIONS: [&str; 9] = [
    "AWSCognitoIdentityProviderService.SignUp",
    "AWSCognitoIdentityProviderService.ConfirmSignUp",
    "AWSCognitoIdentityProviderService.InitiateAuth",
    "AWSCognitoIdentityProviderService.GetUser",
    "AWSCognitoIdentityProviderService.GlobalSignOut",
    "AWSCognitoIdentityService.GetId",
    "AWSCognitoIdentityService.GetCredentialsForIdentity",
    "AWSCognitoIdentityService.GetOpenIdToken",
    "",
];

#[derive(Debug, Arbitrary)]
enum Call {
    /// `POST /` with `X-Amz-Target`.
    Json { operation: u8, body: Vec<u8> },
    /// `POST /oauth2/token`, form-encoded.
    Token { body: Vec<u8> },
}

struct Server {
    addr: SocketAddr,
    _runtime: tokio::runtime::Runtime,
    _running: iotchat_server::RunningServer,
}

fn server() -> &'static Server {
    static SERVER: OnceLock<Server> = OnceLock::new();
    SERVER.get_or_init(|| {
        let dir = tempfile::tempdir().expect("a temp dir").keep();
        let config = iotchat_server::config::Config::for_data_dir(&dir).expect("a config");
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("a runtime");
        let running = runtime.block_on(async {
            let listener =
                tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("a loopback port");
            iotchat_server::start(&config, listener).await.expect("the server starts")
        });
        Server { addr: running.addr(), _runtime: runtime, _running: running }
    })
}

fuzz_target!(|call: Call| {
    let server = server();
    let (path, content_type, target, body) = match &call {
        Call::Json { operation, body } => (
            "/",
            "application/x-amz-json-1.1",
            OPERATIONS[usize::from(*operation) % OPERATIONS.len()],
            body,
        ),
        Call::Token { body } => ("/oauth2/token", "application/x-www-form-urlencoded", "", body),
    };
    let mut stream = TcpStream::connect(server.addr).expect("the server is up");
    stream.set_read_timeout(Some(Duration::from_secs(30))).expect("a timeout");
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: {}\r\nContent-Type: {content_type}\r\nX-Amz-Target: \
         {target}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        server.addr,
        body.len()
    );
    stream.write_all(head.as_bytes()).expect("the request is sent");
    stream.write_all(body).expect("the body is sent");
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).expect("an answer");
    let answer = String::from_utf8_lossy(&answer);
    let status = answer.split(' ').nth(1).unwrap_or_default();
    assert!(matches!(status, "200" | "400"), "{call:?} was answered {answer:?}");
});
