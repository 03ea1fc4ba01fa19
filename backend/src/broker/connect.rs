//! The first packet of every bridge connection, rewritten so the broker can tell who is
//! connecting without trusting where the connection comes from.
//!
//! The bridge verified the presigned URL, so it knows the identity; rmqtt, behind a loopback
//! listener any local process can reach, must not take a connection's word for it. The bridge
//! therefore replaces the CONNECT's username with the verified identity and its password with
//! a secret drawn for this one connection; the broker's authentication hook accepts a CONNECT
//! only from the bridge connection registered for its peer address, carrying that
//! connection's identity and secret. Whatever login the client sent is dropped: AWS IoT ignores
//! it too on presigned connections. rmqtt's own codec decodes and re-encodes the packet, so
//! MQTT 3.1, 3.1.1 and 5 all work and nothing else in it changes.

use bytes::BytesMut;
use rmqtt::codec::version::{ProtocolVersion, VersionCodec};
use rmqtt::codec::{v3, v5};
use tokio_util::codec::{Decoder as _, Encoder as _};

/// The largest CONNECT accepted: a will may carry a full payload.
pub(super) const MAX_CONNECT_BYTES: usize = iotchat_protocol::MAX_PAYLOAD_BYTES + 64 * 1024;

/// What the bridge puts in the CONNECT.
#[derive(Clone, PartialEq, Eq)]
pub(super) struct Login {
    pub(super) username: String,
    pub(super) password: Vec<u8>,
}

impl std::fmt::Debug for Login {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Login").field("username", &self.username).finish_non_exhaustive()
    }
}

/// Why a connection's first bytes were not a CONNECT the bridge could pass on.
#[derive(Debug, thiserror::Error)]
pub(super) enum ConnectError {
    #[error("the first MQTT packet is not a CONNECT")]
    NotConnect,
    #[error("the CONNECT is larger than {MAX_CONNECT_BYTES} bytes")]
    TooLarge,
    #[error("the CONNECT is malformed: {0}")]
    Malformed(String),
}

/// The whole first packet's length, once `pending` holds its fixed header.
fn packet_len(pending: &[u8]) -> Result<Option<usize>, ConnectError> {
    let mut remaining = 0usize;
    for (i, byte) in pending.iter().skip(1).take(4).enumerate() {
        remaining |= usize::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            return Ok(Some(1 + i + 1 + remaining));
        }
    }
    if pending.len() >= 5 {
        return Err(ConnectError::Malformed("the remaining length is over four bytes".into()));
    }
    Ok(None)
}

/// Takes the CONNECT off the front of `pending` once it is complete and returns it rewritten
/// with `login`; `None` while more bytes are needed. What follows the CONNECT stays in
/// `pending`, to be forwarded as it is.
pub(super) fn rewrite(
    pending: &mut BytesMut,
    login: &Login,
) -> Result<Option<BytesMut>, ConnectError> {
    if pending.first().is_some_and(|&b| b >> 4 != 1) {
        return Err(ConnectError::NotConnect);
    }
    let Some(len) = packet_len(pending)? else { return Ok(None) };
    if len > MAX_CONNECT_BYTES {
        return Err(ConnectError::TooLarge);
    }
    if pending.len() < len {
        return Ok(None);
    }
    let mut packet = pending.split_to(len);
    let malformed = |e: rmqtt::codec::error::DecodeError| ConnectError::Malformed(e.to_string());
    let version = VersionCodec.decode(&mut packet).map_err(malformed)?;
    let mut out = BytesMut::with_capacity(len + login.username.len() + login.password.len());
    let encode_failed = |e: rmqtt::codec::error::EncodeError| {
        ConnectError::Malformed(format!("it cannot be re-encoded: {e}"))
    };
    let size = u32::try_from(MAX_CONNECT_BYTES).unwrap_or(u32::MAX);
    match version {
        Some(ProtocolVersion::MQTT3) => {
            let mut codec = v3::Codec::new(size);
            match codec.decode(&mut packet).map_err(malformed)? {
                Some((v3::Packet::Connect(mut connect), _)) => {
                    connect.username = Some(login.username.as_str().into());
                    connect.password = Some(login.password.clone().into());
                    codec.encode(v3::Packet::Connect(connect), &mut out).map_err(encode_failed)?;
                }
                _ => return Err(ConnectError::NotConnect),
            }
        }
        Some(ProtocolVersion::MQTT5) => {
            let mut codec = v5::Codec::new(size, size);
            match codec.decode(&mut packet).map_err(malformed)? {
                Some((v5::Packet::Connect(mut connect), _)) => {
                    connect.username = Some(login.username.as_str().into());
                    connect.password = Some(login.password.clone().into());
                    codec.encode(v5::Packet::Connect(connect), &mut out).map_err(encode_failed)?;
                }
                _ => return Err(ConnectError::NotConnect),
            }
        }
        None => return Err(ConnectError::Malformed("the protocol name is cut short".into())),
    }
    Ok(Some(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn login() -> Login {
        Login { username: "us-east-1:0000".into(), password: b"per-connection-secret".to_vec() }
    }

    fn v3_connect(username: Option<&str>, will: Option<&str>) -> BytesMut {
        let connect = v3::Connect {
            client_id: "us-east-1:0000-app".into(),
            username: username.map(Into::into),
            password: username.map(|_| bytes::Bytes::from_static(b"forged")),
            keep_alive: 30,
            clean_session: true,
            last_will: will.map(|topic| v3::LastWill {
                qos: v3::QoS::AtLeastOnce,
                retain: false,
                topic: topic.into(),
                message: bytes::Bytes::from_static(b"bye"),
            }),
            ..Default::default()
        };
        let mut out = BytesMut::new();
        v3::Codec::new(0).encode(v3::Packet::Connect(Box::new(connect)), &mut out).unwrap();
        out
    }

    fn decoded_v3(bytes: &mut BytesMut) -> v3::Connect {
        match v3::Codec::new(0).decode(bytes).unwrap() {
            Some((v3::Packet::Connect(connect), _)) => *connect,
            other => panic!("not a CONNECT: {other:?}"),
        }
    }

    #[test]
    fn the_login_is_replaced_and_everything_else_kept() {
        let mut pending = v3_connect(Some("us-east-1:someone-else"), Some("room/public/a/b"));
        let pingreq = [0xc0u8, 0x00];
        pending.extend_from_slice(&pingreq);
        let mut rewritten = rewrite(&mut pending, &login()).unwrap().expect("complete");
        assert_eq!(&pending[..], &pingreq, "the next packet is left to forward as it is");
        let connect = decoded_v3(&mut rewritten);
        assert_eq!(connect.username.as_deref(), Some("us-east-1:0000"));
        assert_eq!(connect.password.as_deref(), Some(&b"per-connection-secret"[..]));
        assert_eq!(&*connect.client_id, "us-east-1:0000-app");
        assert_eq!(connect.keep_alive, 30);
        assert_eq!(
            connect.last_will.map(|w| w.topic.to_string()).as_deref(),
            Some("room/public/a/b")
        );
    }

    #[test]
    fn a_connect_split_across_frames_waits_for_its_last_byte() {
        let whole = v3_connect(None, None);
        let mut pending = BytesMut::new();
        for &byte in &whole[..whole.len() - 1] {
            pending.extend_from_slice(&[byte]);
            assert!(rewrite(&mut pending, &login()).unwrap().is_none(), "not complete yet");
        }
        pending.extend_from_slice(&whole[whole.len() - 1..]);
        let mut rewritten = rewrite(&mut pending, &login()).unwrap().expect("complete now");
        assert!(pending.is_empty());
        assert_eq!(decoded_v3(&mut rewritten).username.as_deref(), Some("us-east-1:0000"));
    }

    #[test]
    fn mqtt5_connects_are_rewritten_too() {
        let connect = v5::Connect {
            client_id: "us-east-1:0000-v5".into(),
            username: Some("someone".into()),
            keep_alive: 60,
            clean_start: true,
            ..Default::default()
        };
        let mut pending = BytesMut::new();
        let mut codec = v5::Codec::new(0, 0);
        codec.encode(v5::Packet::Connect(Box::new(connect)), &mut pending).unwrap();
        let mut rewritten = rewrite(&mut pending, &login()).unwrap().expect("complete");
        match v5::Codec::new(0, 0).decode(&mut rewritten).unwrap() {
            Some((v5::Packet::Connect(connect), _)) => {
                assert_eq!(connect.username.as_deref(), Some("us-east-1:0000"));
                assert_eq!(connect.password.as_deref(), Some(&b"per-connection-secret"[..]));
            }
            other => panic!("not a CONNECT: {other:?}"),
        }
    }

    #[test]
    fn anything_but_a_sane_connect_is_refused() {
        let mut publish = BytesMut::from(&[0x30u8, 0x02, 0x00, 0x00][..]);
        assert!(matches!(rewrite(&mut publish, &login()), Err(ConnectError::NotConnect)));
        let mut huge = BytesMut::from(&[0x10u8, 0xff, 0xff, 0xff, 0x7f][..]);
        assert!(matches!(rewrite(&mut huge, &login()), Err(ConnectError::TooLarge)));
        let mut endless = BytesMut::from(&[0x10u8, 0xff, 0xff, 0xff, 0xff, 0x01][..]);
        assert!(matches!(rewrite(&mut endless, &login()), Err(ConnectError::Malformed(_))));
        let mut garbage = BytesMut::from(&[0x10u8, 0x04, 0x00, 0x02, b'X', b'Y'][..]);
        assert!(matches!(rewrite(&mut garbage, &login()), Err(ConnectError::Malformed(_))));
    }
}
