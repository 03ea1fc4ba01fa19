//! SigV4 verification, header-signed and presigned, for the API and for MQTT: any request is
//! accepted or refused with a typed error, never a panic. The input is the request as text
//! (`METHOD /path?query`, header lines, a blank line, the body); the seeds are signed.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|request: &[u8]| {
    iotchat_server::auth::fuzzing::sigv4(request);
});
