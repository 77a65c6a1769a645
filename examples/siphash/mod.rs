//! A randomly keyed SipHash-1-2 for hash maps whose keys come from the network, as redis
//! keys its dictionaries (`siphash.c`: one compression round, two finalization rounds).
//!
//! A map keyed by what clients send must not use a hash a client can predict, or it can
//! choose keys that all collide and turn each lookup into a scan. std's `RandomState`
//! (SipHash-1-3) resists that; so does this, at redis's round counts, and in one pass over
//! the key: std's `Hasher` buffers bytes across `write` calls, which on a 16-byte key cost
//! more than the rounds themselves.
//!
//! [`KeyHash`] hashes each `write` as one SipHash message. A byte string's `Hash` writes
//! its length before its bytes (to keep a sequence of fields prefix-free); a key is one
//! field, and SipHash's final block already holds the message length, so
//! [`KeyHasher::write_usize`] drops that prefix.

use std::hash::{BuildHasher, Hasher, RandomState};

/// Builds [`KeyHasher`]s under one random 128-bit key, drawn when the map is made.
pub struct KeyHash {
    k0: u64,
    k1: u64,
}

impl Default for KeyHash {
    fn default() -> KeyHash {
        // std's per-process random seed, through its own keyed hash: two unpredictable words.
        let seed = RandomState::new();
        KeyHash {
            k0: seed.hash_one(0u64),
            k1: seed.hash_one(1u64),
        }
    }
}

impl BuildHasher for KeyHash {
    type Hasher = KeyHasher;

    fn build_hasher(&self) -> KeyHasher {
        KeyHasher {
            k0: self.k0,
            k1: self.k1,
            hash: 0,
        }
    }
}

/// See [`KeyHash`]: each `write` is hashed whole; a second one is keyed by the first's
/// hash, so that sequences of writes still hash as sequences.
pub struct KeyHasher {
    k0: u64,
    k1: u64,
    hash: u64,
}

impl Hasher for KeyHasher {
    fn write(&mut self, bytes: &[u8]) {
        self.hash = siphash::<1, 2>(self.k0, self.k1 ^ self.hash, bytes);
    }

    /// Only a byte string's length prefix comes here (see the module docs).
    fn write_usize(&mut self, _length: usize) {}

    fn finish(&self) -> u64 {
        self.hash
    }
}

/// SipHash-C-D of `message` under the key `(k0, k1)` (little-endian words, as in the
/// paper), with `C` compression and `D` finalization rounds.
pub fn siphash<const C: usize, const D: usize>(k0: u64, k1: u64, message: &[u8]) -> u64 {
    let mut v = [
        k0 ^ 0x736f_6d65_7073_6575,
        k1 ^ 0x646f_7261_6e64_6f6d,
        k0 ^ 0x6c79_6765_6e65_7261,
        k1 ^ 0x7465_6462_7974_6573,
    ];
    let mut words = message.chunks_exact(8);
    for word in &mut words {
        let m = u64::from_le_bytes(word.try_into().expect("8 bytes"));
        compress::<C>(&mut v, m);
    }
    // The last block: the remaining bytes, and the message length in its top byte.
    let mut last = (message.len() as u64) << 56;
    for (i, &b) in words.remainder().iter().enumerate() {
        last |= u64::from(b) << (8 * i);
    }
    compress::<C>(&mut v, last);
    v[2] ^= 0xff;
    for _ in 0..D {
        round(&mut v);
    }
    v[0] ^ v[1] ^ v[2] ^ v[3]
}

#[inline(always)]
fn compress<const C: usize>(v: &mut [u64; 4], m: u64) {
    v[3] ^= m;
    for _ in 0..C {
        round(v);
    }
    v[0] ^= m;
}

/// One SipRound.
#[inline(always)]
fn round(v: &mut [u64; 4]) {
    v[0] = v[0].wrapping_add(v[1]);
    v[1] = v[1].rotate_left(13) ^ v[0];
    v[0] = v[0].rotate_left(32);
    v[2] = v[2].wrapping_add(v[3]);
    v[3] = v[3].rotate_left(16) ^ v[2];
    v[0] = v[0].wrapping_add(v[3]);
    v[3] = v[3].rotate_left(21) ^ v[0];
    v[2] = v[2].wrapping_add(v[1]);
    v[1] = v[1].rotate_left(17) ^ v[2];
    v[2] = v[2].rotate_left(32);
}
