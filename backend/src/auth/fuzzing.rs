//! Entry points for the fuzz targets in `fuzz/` (compiled only with `--cfg fuzzing`, which
//! `cargo fuzz` sets): what the server does with a request's signature, with no secret lookup.

use std::time::{Duration, SystemTime};

use axum::http::{HeaderMap, HeaderName, HeaderValue};

use super::sigv4::{self, Policy, RequestParts, Service};

/// The instant the seed signatures were made at (2015-08-30T12:36:00Z, as in the presigned-URL
/// vectors of `fixtures/`).
pub const NOW_SECS: u64 = 1_440_938_160;
/// The secret the seed signatures were made with.
pub const SECRET: &str = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";

/// Parses and, when that passes, verifies the signature of a request, for the API and for
/// MQTT's presigned URLs. `request` is text: `METHOD /path?query`, then `name: value` lines,
/// a blank line, and the body. Headers that are not valid HTTP are left out, as hyper would
/// refuse them. Never panics on any input.
pub fn sigv4(request: &[u8]) {
    let text = String::from_utf8_lossy(request);
    let (head, body) = text.split_once("\n\n").unwrap_or((&text, ""));
    let mut lines = head.lines();
    let first = lines.next().unwrap_or_default();
    let (method, target) = first.split_once(' ').unwrap_or((first, "/"));
    let (raw_path, raw_query) = match target.split_once('?') {
        Some((path, query)) => (path, Some(query)),
        None => (target, None),
    };
    let headers: Vec<(&str, &str)> =
        lines.filter_map(|line| line.split_once(':')).map(|(n, v)| (n, v.trim())).collect();
    let body = body.as_bytes();
    let mut map = HeaderMap::new();
    for (name, value) in headers {
        if let (Ok(name), Ok(value)) =
            (HeaderName::from_bytes(name.as_bytes()), HeaderValue::from_str(value))
        {
            map.append(name, value);
        }
    }
    let req = RequestParts { method, raw_path, raw_query, headers: &map, body };
    let _ = sigv4::carries_signature(&req);
    let now = SystemTime::UNIX_EPOCH + Duration::from_secs(NOW_SECS);
    for service in [Service::ExecuteApi, Service::IotDeviceGateway] {
        let policy = Policy {
            region: "us-east-1".into(),
            service,
            max_clock_skew: Duration::from_secs(300),
            max_presign_age: Duration::from_secs(900),
        };
        if let Ok(claimed) = sigv4::parse(&req, &policy, now) {
            let _ = sigv4::verify(&req, &claimed, SECRET);
        }
    }
}
