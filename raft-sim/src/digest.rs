//! Small deterministic 64-bit hashes for digests (log chains, trace, FSM state).
//! Not cryptographic; stable across builds and platforms, unlike `std`'s
//! `DefaultHasher`, whose algorithm is unspecified.

/// A hash of bytes, eight at a time (little-endian words folded with [`mix`],
/// the tail zero-padded, the length folded last).
pub fn hash_bytes(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut words = bytes.chunks_exact(8);
    for w in &mut words {
        h = mix(
            h,
            u64::from_le_bytes(w.try_into().expect("chunks of eight")),
        );
    }
    let rest = words.remainder();
    if !rest.is_empty() {
        let mut last = [0u8; 8];
        last[..rest.len()].copy_from_slice(rest);
        h = mix(h, u64::from_le_bytes(last));
    }
    mix(h, bytes.len() as u64)
}

/// Folds `x` into the running digest `h` (a splitmix64 finalizer over both).
pub fn mix(h: u64, x: u64) -> u64 {
    let mut z = h.rotate_left(5) ^ x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// A [`std::hash::Hasher`] for a `#[derive(Hash)]` value (a trace
/// [`crate::trace::Fact`]), to digest it without formatting it: each
/// field is folded in with a multiply and a rotate (as `FxHasher` does),
/// and [`mix_hash`] finishes the value with one [`mix`]. A full [`mix`] per
/// field cost a sweep about 3%; the digest is a determinism check, not a
/// defence against chosen inputs. Integers of every width are folded as one
/// `u64` each, so the value does not depend on the platform's `usize`.
#[derive(Clone, Copy, Debug, Default)]
pub struct DigestHasher(pub u64);

/// The multiplier of [`DigestHasher`]'s fold (`FxHasher`'s 64-bit seed).
const FOLD: u64 = 0x51_7c_c1_b7_27_22_0a_95;

impl DigestHasher {
    fn fold(&mut self, x: u64) {
        self.0 = (self.0.rotate_left(5) ^ x).wrapping_mul(FOLD);
    }
}

impl std::hash::Hasher for DigestHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        self.fold(hash_bytes(bytes));
    }
    fn write_u8(&mut self, x: u8) {
        self.fold(u64::from(x));
    }
    fn write_u16(&mut self, x: u16) {
        self.fold(u64::from(x));
    }
    fn write_u32(&mut self, x: u32) {
        self.fold(u64::from(x));
    }
    fn write_u64(&mut self, x: u64) {
        self.fold(x);
    }
    fn write_usize(&mut self, x: usize) {
        self.fold(x as u64);
    }
    fn write_i8(&mut self, x: i8) {
        self.fold(x as i64 as u64);
    }
    fn write_i16(&mut self, x: i16) {
        self.fold(x as i64 as u64);
    }
    fn write_i32(&mut self, x: i32) {
        self.fold(x as i64 as u64);
    }
    fn write_i64(&mut self, x: i64) {
        self.fold(x as u64);
    }
    fn write_isize(&mut self, x: isize) {
        self.fold(x as i64 as u64);
    }
}

/// Folds the digest of `x` (see [`DigestHasher`]) into `h` with [`mix`].
pub fn mix_hash<T: std::hash::Hash + ?Sized>(h: u64, x: &T) -> u64 {
    let mut hasher = DigestHasher(0);
    x.hash(&mut hasher);
    mix(h, hasher.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOLDEN_EMPTY: u64 = 13_704_985_777_098_402_202;

    #[test]
    fn digests_are_pinned() {
        assert_eq!(hash_bytes(b""), GOLDEN_EMPTY);
        assert_ne!(hash_bytes(b"a"), hash_bytes(b"a\0"), "the length counts");
        assert_ne!(hash_bytes(b"12345678x"), hash_bytes(b"12345678y"));
        assert_ne!(mix(0, 1), mix(1, 0));
        assert_eq!(mix(0, 0), mix(0, 0));
    }

    #[test]
    fn a_hashed_value_is_folded_field_by_field() {
        let fold = |h: u64, x: u64| (h.rotate_left(5) ^ x).wrapping_mul(FOLD);
        assert_eq!(mix_hash(7, &3u64), mix(7, fold(0, 3)));
        assert_eq!(mix_hash(7, &3usize), mix_hash(7, &3u64), "usize as u64");
        assert_eq!(mix_hash(7, &(1u32, 2u8)), mix(7, fold(fold(0, 1), 2)));
        assert_ne!(
            mix_hash(0, &(1u8, 2u8)),
            mix_hash(0, &(2u8, 1u8)),
            "order counts"
        );
        assert_ne!(mix_hash(0, &Some(1u64)), mix_hash(0, &None::<u64>));
    }
}
