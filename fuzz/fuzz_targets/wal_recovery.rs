//! An arbitrary write-ahead-log directory image fed to raft-io-std's recovery:
//! it must recover a contiguous log or return a typed error, never panic or
//! loop. The same bytes are also read as a hard-state file. Recovered again
//! within a memory budget (the first input byte picks it), the log must be the
//! same: the same front, described without payloads, and the same tail.
//!
//! Input format (so seeds can be real directories): repeated
//! `[kind u8][index u16 LE][len u16 LE][bytes]`, where kind 0 is a segment named
//! after `index`, 1 a temporary file, 2 a file of another name.

#![no_main]

use libfuzzer_sys::fuzz_target;
use raft_io_std::storage::{decode_hard_state, recover_from_image, recover_image_within};

fn image(mut data: &[u8]) -> Vec<(String, Vec<u8>)> {
    let mut files = Vec::new();
    while data.len() >= 5 && files.len() < 16 {
        let kind = data[0];
        let index = u16::from_le_bytes([data[1], data[2]]);
        let len = usize::from(u16::from_le_bytes([data[3], data[4]])).min(data.len() - 5);
        let bytes = data[5..5 + len].to_vec();
        data = &data[5 + len..];
        let name = match kind % 3 {
            0 => format!("{:020}.wal", u64::from(index)),
            1 => format!("{:020}.wal.tmp", u64::from(index)),
            _ => format!("stray-{index}"),
        };
        files.push((name, bytes));
    }
    files
}

fuzz_target!(|data: &[u8]| {
    let files = image(data);
    if let Ok(recovered) = recover_from_image(&files) {
        let entries = &recovered.entries;
        for pair in entries.windows(2) {
            assert_eq!(
                pair[1].index.0,
                pair[0].index.0 + 1,
                "recovered log is contiguous"
            );
            assert!(
                pair[1].term >= pair[0].term,
                "recovered terms never decrease"
            );
        }
        let total: usize = files.iter().map(|(_, b)| b.len()).sum();
        let payload: usize = entries.iter().map(|e| e.data.len()).sum();
        assert!(payload <= total, "recovery never invents bytes");

        let budget = u64::from(data.first().copied().unwrap_or(0)) * 16;
        let within = recover_image_within(&files, budget).expect("the same image recovers");
        assert_eq!(within.first_index, recovered.first_index);
        assert_eq!(within.last_index(), recovered.last_index());
        let tail = &entries[entries.len() - within.entries.len()..];
        assert_eq!(within.entries, tail, "the kept tail is the log's tail");
        let front = &entries[..entries.len() - within.entries.len()];
        match (&within.stored, front.last()) {
            (None, None) => {}
            (Some(stored), Some(last)) => {
                assert_eq!(stored.last, last.index);
                let mut term_starts = Vec::new();
                for e in front {
                    if term_starts.last().is_none_or(|&(_, t)| t != e.term) {
                        term_starts.push((e.index, e.term));
                    }
                }
                assert_eq!(stored.term_starts, term_starts, "stored terms");
                let configs: Vec<_> = front
                    .iter()
                    .filter(|e| e.kind.is_config())
                    .cloned()
                    .collect();
                assert_eq!(stored.config_entries, configs, "stored membership entries");
            }
            (stored, last) => panic!("stored {stored:?} but the front ends at {last:?}"),
        }
    }
    let _ = decode_hard_state(data);
});
