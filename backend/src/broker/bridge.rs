//! `GET /mqtt`: verify the SigV4-presigned URL (service `iotdevicegateway`), upgrade to a
//! WebSocket echoing the client's MQTT subprotocol, and pipe bytes to the broker.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use axum::extract::State;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use bytes::BytesMut;
use futures_util::{SinkExt as _, StreamExt as _};
use iotchat_protocol::IdentityId;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

use super::{Connections, connect};
use crate::auth::credentials::{self, Unaccepted};
use crate::auth::sigv4::{self, Policy, RequestParts, Service};
use crate::{AppState, now_ms};

/// How old a presigned URL without `X-Amz-Expires` may be, and the allowed clock skew.
const MAX_PRESIGN_AGE: Duration = Duration::from_secs(15 * 60);
/// Largest chunk read from the broker before it is sent as one WebSocket frame.
const CHUNK: usize = 64 * 1024;
/// Largest WebSocket frame (and message) a client may send. A frame may hold several packets
/// (rumqttc flushes what it has queued, at most one full-size publish beyond 8 KiB), and the
/// CONNECT may carry a full-size will.
const MAX_FRAME_BYTES: usize = 512 * 1024;

fn forbidden(reason: String) -> Response {
    tracing::info!(%reason, "MQTT WebSocket upgrade refused");
    (StatusCode::FORBIDDEN, reason).into_response()
}

/// A storage failure is logged in full; the client hears only that it happened.
fn storage_failed(error: crate::storage::StoreError) -> String {
    tracing::error!(%error, "storage failed while checking a presigned URL");
    "the server could not check the credentials; try again".to_owned()
}

async fn verify(state: &AppState, uri: &Uri, headers: &HeaderMap) -> Result<IdentityId, String> {
    let request = RequestParts {
        method: "GET",
        raw_path: uri.path(),
        raw_query: uri.query(),
        headers,
        body: &[],
    };
    let policy = Policy {
        region: state.pool.region.clone(),
        service: Service::IotDeviceGateway,
        max_clock_skew: MAX_PRESIGN_AGE,
        max_presign_age: MAX_PRESIGN_AGE,
    };
    let claimed = sigv4::parse(&request, &policy, SystemTime::now())
        .map_err(|e| format!("the presigned URL is not valid: {e}"))?;
    let credentials = credentials::signed_by(state.store.as_ref(), &request, &claimed, now_ms())
        .await
        .map_err(|unaccepted| match unaccepted {
            Unaccepted::Storage(error) => storage_failed(error),
            other => other.to_string(),
        })?;
    let attached =
        state.store.policy_attached(&credentials.identity_id).await.map_err(storage_failed)?;
    if !attached {
        return Err(format!(
            "no IoT policy is attached to {}: call POST /api/policy/attach first",
            credentials.identity_id
        ));
    }
    Ok(credentials.identity_id)
}

/// The `/mqtt` route.
pub(crate) async fn upgrade(
    State(state): State<AppState>,
    uri: Uri,
    headers: HeaderMap,
    ws: WebSocketUpgrade,
) -> Response {
    let identity = match verify(&state, &uri, &headers).await {
        Ok(identity) => identity,
        Err(reason) => return forbidden(reason),
    };
    let broker = state.broker.addr();
    let connections = Arc::clone(&state.broker.connections);
    let limits = Limits {
        write_timeout: state.settings.client_write_timeout,
        max_age: state.settings.max_connection_age,
    };
    ws.protocols(["mqtt", "mqttv3.1"])
        // tungstenite zero-fills its whole read buffer on every read: keep it small.
        .read_buffer_size(4096)
        // A frame may batch several packets, each at most 128 KB and change; no more than that.
        .max_frame_size(MAX_FRAME_BYTES)
        .max_message_size(MAX_FRAME_BYTES)
        .on_upgrade(move |socket| async move {
            if let Err(error) = pipe(socket, broker, connections, identity, limits).await {
                tracing::debug!(%error, "an MQTT bridge connection ended with an error");
            }
        })
}

/// What one bridge connection may do: leave its writes unread for `write_timeout`, and last
/// `max_age` (AWS IoT's 24 hours; clients reconnect with a freshly signed URL).
#[derive(Debug, Clone, Copy)]
struct Limits {
    write_timeout: Duration,
    max_age: Duration,
}

async fn pipe(
    socket: WebSocket,
    broker: SocketAddr,
    connections: Arc<Connections>,
    identity: IdentityId,
    limits: Limits,
) -> anyhow::Result<()> {
    let mut tcp = tokio::net::TcpStream::connect(broker).await?;
    tcp.set_nodelay(true)?;
    let addr = tcp.local_addr()?;
    // Registered before any byte flows, so the CONNECT's authentication finds it; removed
    // while the socket is still open, so no later socket with the same address inherits it.
    let login = connections.insert(addr, identity);
    let result = shovel(socket, &mut tcp, &login, limits).await;
    connections.remove(addr);
    drop(tcp);
    result
}

async fn shovel(
    socket: WebSocket,
    tcp: &mut tokio::net::TcpStream,
    login: &connect::Login,
    limits: Limits,
) -> anyhow::Result<()> {
    let write_timeout = limits.write_timeout;
    let (mut from_broker, mut to_broker) = tcp.split();
    let (mut to_client, mut from_client) = socket.split();
    let upstream = async {
        // Until the CONNECT has gone through, bytes wait here to be rewritten.
        let mut pending = Some(BytesMut::new());
        while let Some(message) = from_client.next().await {
            match message? {
                Message::Binary(bytes) => match pending.as_mut() {
                    None => to_broker.write_all(&bytes).await?,
                    Some(buffer) => {
                        buffer.extend_from_slice(&bytes);
                        let rewritten = connect::rewrite(buffer, login).inspect_err(|error| {
                            tracing::info!(%error, "MQTT connection refused by the bridge");
                        })?;
                        if let Some(connect) = rewritten {
                            to_broker.write_all(&connect).await?;
                            to_broker.write_all(buffer).await?;
                            pending = None;
                        }
                    }
                },
                Message::Close(_) => break,
                // MQTT travels in binary frames only; pings are answered by axum.
                Message::Text(_) | Message::Ping(_) | Message::Pong(_) => {}
            }
        }
        to_broker.shutdown().await?;
        anyhow::Ok(())
    };
    let downstream = async {
        let mut buf = vec![0u8; CHUNK];
        loop {
            let n = from_broker.read(&mut buf).await?;
            if n == 0 {
                break;
            }
            let frame = Message::Binary(buf[..n].to_vec().into());
            // A client that stops reading would hold the broker's writes (and everything
            // routed to it) without end: drop it instead, as AWS IoT drops slow clients.
            match tokio::time::timeout(write_timeout, to_client.send(frame)).await {
                Ok(sent) => sent?,
                Err(_) => {
                    tracing::warn!(
                        timeout_s = write_timeout.as_secs_f32(),
                        "dropping an MQTT client that stopped reading what it is sent"
                    );
                    return anyhow::Ok(());
                }
            }
        }
        let _ = to_client.send(Message::Close(None)).await;
        anyhow::Ok(())
    };
    let result = tokio::select! {
        result = upstream => result,
        result = downstream => result,
        () = tokio::time::sleep(limits.max_age) => {
            tracing::info!(
                max_age_s = limits.max_age.as_secs(),
                "closing an MQTT connection at its maximum age, as AWS IoT does after 24 hours"
            );
            // A normal close: the client reconnects with a freshly signed URL.
            let close = axum::extract::ws::CloseFrame {
                code: axum::extract::ws::close_code::NORMAL,
                reason: "maximum connection age reached; reconnect".into(),
            };
            let _ = tokio::time::timeout(write_timeout, to_client.send(Message::Close(Some(close))))
                .await;
            Ok(())
        }
    };
    result
}
