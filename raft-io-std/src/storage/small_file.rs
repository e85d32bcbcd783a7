//! The format of the small files replaced atomically as a whole (the hard
//! state, the node identity): a header naming the file's kind, then one
//! checksummed postcard value.
//!
//! ```text
//! magic [u8; 8] | version u32 LE (1) | len u32 LE | crc32 u32 LE over payload | payload
//! ```

use super::error::{Corruption, HeaderError, RecordError};
use serde::Serialize;
use serde::de::DeserializeOwned;

const VERSION: u32 = 1;
const HEADER_BYTES: usize = 20;
/// These values encode to a few dozen bytes; anything longer is damage.
const PAYLOAD_BYTES_MAX: usize = 1024;

/// The file's bytes for `value`, under `magic`.
pub(crate) fn encode<T: Serialize>(magic: [u8; 8], value: &T) -> Vec<u8> {
    let payload = postcard::to_allocvec(value).expect("a small file's value always serializes");
    let mut out = Vec::with_capacity(HEADER_BYTES + payload.len());
    out.extend_from_slice(&magic);
    out.extend_from_slice(&VERSION.to_le_bytes());
    out.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    out.extend_from_slice(&crc32fast::hash(&payload).to_le_bytes());
    out.extend_from_slice(&payload);
    out
}

/// Decodes a file written by [`encode`] with the same `magic`; on damage
/// returns the byte offset and what is wrong.
pub(crate) fn decode<T: DeserializeOwned>(
    magic: [u8; 8],
    bytes: &[u8],
) -> Result<T, (u64, Corruption)> {
    let Some(header) = bytes.first_chunk::<HEADER_BYTES>() else {
        let e = HeaderError::Incomplete {
            needed: HEADER_BYTES as u64,
            available: bytes.len() as u64,
        };
        return Err((0, e.into()));
    };
    if header[0..8] != magic {
        return Err((0, HeaderError::BadMagic.into()));
    }
    let word = |at: usize| {
        u32::from_le_bytes([header[at], header[at + 1], header[at + 2], header[at + 3]])
    };
    let version = word(8);
    if version != VERSION {
        return Err((8, HeaderError::UnsupportedVersion(version).into()));
    }
    let len = word(12) as usize;
    if len > PAYLOAD_BYTES_MAX {
        let e = RecordError::TooLarge {
            len: len as u64,
            max: PAYLOAD_BYTES_MAX as u64,
        };
        return Err((12, e.into()));
    }
    if bytes.len() != HEADER_BYTES + len {
        let e = RecordError::Incomplete {
            needed: (HEADER_BYTES + len) as u64,
            available: bytes.len() as u64,
        };
        return Err((12, e.into()));
    }
    let payload = &bytes[HEADER_BYTES..];
    let (stored, computed) = (word(16), crc32fast::hash(payload));
    if stored != computed {
        return Err((
            HEADER_BYTES as u64,
            RecordError::Checksum { stored, computed }.into(),
        ));
    }
    match postcard::take_from_bytes::<T>(payload) {
        Ok((value, [])) => Ok(value),
        Ok((_, rest)) => Err((
            HEADER_BYTES as u64,
            RecordError::Malformed(format!("{} trailing bytes", rest.len())).into(),
        )),
        Err(e) => Err((
            HEADER_BYTES as u64,
            RecordError::Malformed(e.to_string()).into(),
        )),
    }
}

/// The payload's offset, for errors about a value that decodes but is invalid.
pub(crate) const PAYLOAD_OFFSET: u64 = HEADER_BYTES as u64;
