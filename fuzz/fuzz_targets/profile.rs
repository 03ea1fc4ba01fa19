//! A client profile (ours or the seed's `config.json`): any bytes are a profile or a typed
//! error, and a profile written out is read back the same.
#![no_main]

use iotchat_protocol::profile::Profile;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|bytes: &[u8]| {
    let Ok(profile) = Profile::from_json(bytes) else { return };
    let written = serde_json::to_vec(&profile).expect("a profile serializes");
    let again = Profile::from_json(&written).expect("a written profile is read back");
    assert_eq!(again, profile);
});
