//! Arbitrary bytes as a log file: `wire::decode_entry` record after record, and
//! the same bytes as a hard-state record (`wire::decode_hard_state`).
//!
//! Each input is decoded as it is and sealed (checksums rewritten, see
//! `raft_fuzz::seal_records`), so payload mutations reach the postcard decoder.
//! A record that decodes must re-encode to one that decodes to the same value;
//! a cut-short record must be `Truncated` (a torn tail), never anything else.

#![no_main]

use libfuzzer_sys::fuzz_target;
use raft_core::{DecodeError, wire};

fn decode_log(data: &[u8]) {
    let mut at = 0;
    while at < data.len() {
        match wire::decode_entry(&data[at..]) {
            Ok((entry, used)) => {
                assert!(
                    used >= wire::HEADER_BYTES && used <= data.len() - at,
                    "consumed {used}"
                );
                let mut again = Vec::new();
                wire::encode_entry(&entry, &mut again);
                assert_eq!(wire::decode_entry(&again), Ok((entry.clone(), again.len())));
                let cut = again.len() - 1;
                assert!(matches!(
                    wire::decode_entry(&again[..cut]),
                    Err(DecodeError::Truncated { .. })
                ));
                let _ = entry.to_string();
                at += used;
            }
            Err(_) => break,
        }
    }

    if let Ok((hard_state, used)) = wire::decode_hard_state(data) {
        assert!(used <= data.len());
        let mut again = Vec::new();
        wire::encode_hard_state(&hard_state, &mut again);
        assert_eq!(
            wire::decode_hard_state(&again),
            Ok((hard_state, again.len()))
        );
    }
}

fuzz_target!(|data: &[u8]| {
    decode_log(data);
    decode_log(&raft_fuzz::seal_records(data));
});
