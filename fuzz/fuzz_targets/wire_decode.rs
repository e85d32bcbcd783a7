//! Arbitrary bytes into `wire::decode`, as a connection reader sees them.
//!
//! Decodes records back to back until the bytes run out or one is refused.
//! Every unit that decodes must re-encode to a record that decodes to the same
//! unit (values, not bytes: postcard accepts over-long varints), every strict
//! prefix of that record must ask for more bytes, and its `Display` must not
//! panic. Any panic, or an allocation past libFuzzer's limit, is a bug.

#![no_main]

use libfuzzer_sys::fuzz_target;
use raft_core::wire;

fuzz_target!(|data: &[u8]| {
    let mut at = 0;
    while at < data.len() {
        match wire::decode(&data[at..]) {
            Ok(Some((unit, used))) => {
                assert!(
                    used >= wire::HEADER_BYTES && used <= data.len() - at,
                    "consumed {used}"
                );
                let mut again = Vec::new();
                wire::encode(&unit, &mut again);
                assert_eq!(wire::decode(&again), Ok(Some((unit.clone(), again.len()))));
                assert_eq!(wire::decode(&again[..again.len() - 1]), Ok(None));
                let _ = unit.to_string();
                at += used;
            }
            Ok(None) | Err(_) => break,
        }
    }
});
