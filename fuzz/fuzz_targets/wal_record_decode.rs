//! Arbitrary bytes as the records of one write-ahead-log segment, into the
//! decoder raft-io-std really reads its log with (`storage::record::decode_record`),
//! and then, behind a valid segment header, into the log's recovery
//! (`storage::recover_from_image`).
//!
//! Each input is used twice: as it is (the length and checksum checks) and
//! sealed, its lengths cut to the bytes present and its checksums rewritten
//! (`raft_fuzz::seal_wal_records`), so mutations of a payload reach the
//! postcard decoder instead of dying at the checksum. Records are decoded back
//! to back until the bytes run out or one is refused. Every record that
//! decodes must re-encode to a record that decodes to the same value (values,
//! not bytes: postcard accepts over-long varints), and every strict prefix of
//! that record must be `Incomplete` (what recovery treats as a torn tail).
//! Recovery must return a contiguous log whose entries all came from the
//! records, or a typed error. Any panic, or an allocation past libFuzzer's
//! limit, is a bug.

#![no_main]

use libfuzzer_sys::fuzz_target;
use raft_core::LogIndex;
use raft_io_std::storage::record::{self, Record, SegmentHeader};
use raft_io_std::storage::{RecordError, recover_from_image};

/// `find_valid_record_after` tries every offset: keep its quadratic cost small.
const SCAN_BYTES_MAX: usize = 4096;

fn decode_all(data: &[u8]) -> Vec<Record> {
    let mut records = Vec::new();
    let mut at = 0;
    while at < data.len() {
        match record::decode_record(&data[at..]) {
            Ok((decoded, used)) => {
                assert!(
                    used > record::RECORD_HEADER_BYTES && used <= data.len() - at,
                    "consumed {used}"
                );
                let mut again = Vec::new();
                let size =
                    record::encode_record(&decoded, &mut again).expect("a decoded record fits");
                assert_eq!(size, again.len());
                assert_eq!(
                    record::decode_record(&again),
                    Ok((decoded.clone(), again.len()))
                );
                for cut in [0, 1, record::RECORD_HEADER_BYTES, again.len() - 1] {
                    assert!(
                        matches!(
                            record::decode_record(&again[..cut]),
                            Err(RecordError::Incomplete { .. })
                        ),
                        "a record cut at {cut} of {} is not Incomplete",
                        again.len()
                    );
                }
                assert_eq!(
                    raft_fuzz::seal_wal_records(&again),
                    again,
                    "the fuzz crate's crc32 disagrees"
                );
                records.push(decoded);
                at += used;
            }
            Err(_) => {
                if data.len() - at <= SCAN_BYTES_MAX {
                    if let Some(next) = record::find_valid_record_after(&data[at..]) {
                        assert!(next > 0 && at + next < data.len());
                        assert!(record::decode_record(&data[at + next..]).is_ok());
                    }
                }
                break;
            }
        }
    }
    records
}

fn recover(records: &[Record], body: &[u8]) {
    let mut segment = SegmentHeader {
        first_index: LogIndex(1),
        reset: false,
    }
    .encode()
    .to_vec();
    segment.extend_from_slice(body);
    let files = vec![(format!("{:020}.wal", 1), segment)];
    let Ok(recovered) = recover_from_image(&files) else {
        return;
    };
    for pair in recovered.entries.windows(2) {
        assert_eq!(
            pair[1].index.0,
            pair[0].index.0 + 1,
            "recovered log is contiguous"
        );
    }
    for entry in &recovered.entries {
        assert!(
            records
                .iter()
                .any(|r| matches!(r, Record::Entry(e) if e == entry)),
            "recovery invented entry {}",
            entry.index
        );
    }
}

fuzz_target!(|data: &[u8]| {
    let records = decode_all(data);
    recover(&records, data);
    let sealed = raft_fuzz::seal_wal_records(data);
    let records = decode_all(&sealed);
    recover(&records, &sealed);
});
