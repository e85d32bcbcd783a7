//! Arbitrary bytes as the payload of a membership entry: `wire::decode_config`.
//!
//! A configuration that decodes is valid, re-encodes to one that decodes to
//! the same value, agrees with `Config::decode`, and its queries and `Display`
//! do not panic.

#![no_main]

use libfuzzer_sys::fuzz_target;
use raft_core::{Config, wire};

fuzz_target!(|data: &[u8]| {
    let Ok(config) = wire::decode_config(data) else {
        return;
    };
    assert_eq!(config.validate(), Ok(()));
    assert_eq!(Config::decode(data).as_ref(), Ok(&config));
    assert_eq!(
        wire::decode_config(&wire::encode_config(&config)).as_ref(),
        Ok(&config)
    );
    assert!(config.voter_count() <= config.members.len());
    assert!(config.quorum() >= 1);
    for member in &config.members {
        assert!(config.contains(member.id));
    }
    let _ = config.to_string();
});
