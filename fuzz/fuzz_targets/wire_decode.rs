//! Arbitrary bytes into `wire::decode`, as a connection reader sees them.
//!
//! Each input is decoded twice: as it is (version, length and checksum checks)
//! and sealed, with its checksums rewritten (`raft_fuzz::seal_records`), so
//! mutations of a payload reach the postcard decoder instead of dying at the
//! checksum. Records are decoded back to back until the bytes run out or one
//! is refused. Every unit that decodes must re-encode to a record that decodes
//! to the same unit (values, not bytes: postcard accepts over-long varints),
//! every strict prefix of that record must ask for more bytes, and its
//! `Display` must not panic. Any panic, or an allocation past libFuzzer's
//! limit, is a bug.

#![no_main]

use libfuzzer_sys::fuzz_target;
use raft_core::wire;

fn decode_all(data: &[u8]) {
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
                assert_eq!(
                    raft_fuzz::seal_records(&again),
                    again,
                    "the fuzz crate's crc32 disagrees"
                );
                let _ = unit.to_string();
                at += used;
            }
            Ok(None) | Err(_) => break,
        }
    }
}

fuzz_target!(|data: &[u8]| {
    decode_all(data);
    decode_all(&raft_fuzz::seal_records(data));
});
