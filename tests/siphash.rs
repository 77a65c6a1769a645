//! The keyed hash `mini_redis` gives its keyspace (examples/siphash): the SipHash rounds
//! checked against the paper's test vector and against std's SipHash-2-4 on every length a
//! block boundary can matter for, and the map hasher's keying.

#[path = "../examples/siphash/mod.rs"]
mod siphash;

use std::hash::{BuildHasher, Hasher};

use siphash::{siphash, KeyHash};

/// The key 00 01 .. 0f as the two little-endian words SipHash takes.
const KEY: (u64, u64) = (0x0706_0504_0302_0100, 0x0f0e_0d0c_0b0a_0908);

#[test]
fn siphash_2_4_matches_the_papers_vector() {
    // SipHash paper, appendix A: key 00..0f, message 00..0e.
    let message: Vec<u8> = (0..15).collect();
    assert_eq!(
        siphash::<2, 4>(KEY.0, KEY.1, &message),
        0xa129_ca61_49be_45e5
    );
}

#[test]
#[allow(deprecated)] // std::hash::SipHasher is SipHash-2-4: the reference to check against
fn siphash_2_4_matches_std_on_every_length_up_to_64() {
    let data: Vec<u8> = (0..64u8).map(|b| b.wrapping_mul(37) ^ 0x5a).collect();
    let (k0, k1) = (0x0123_4567_89ab_cdef, 0xfedc_ba98_7654_3210);
    for len in 0..=data.len() {
        let mut reference = std::hash::SipHasher::new_with_keys(k0, k1);
        reference.write(&data[..len]);
        assert_eq!(
            siphash::<2, 4>(k0, k1, &data[..len]),
            reference.finish(),
            "length {len}"
        );
    }
}

#[test]
fn the_round_counts_and_the_key_change_the_hash() {
    let message = b"key:000000000042";
    let one_two = siphash::<1, 2>(KEY.0, KEY.1, message);
    assert_ne!(one_two, siphash::<2, 4>(KEY.0, KEY.1, message));
    assert_ne!(one_two, siphash::<1, 2>(KEY.0 ^ 1, KEY.1, message));
    assert_ne!(one_two, siphash::<1, 2>(KEY.0, KEY.1, b"key:000000000043"));
}

#[test]
fn a_map_hasher_is_keyed_per_map_and_consistent_within_one() {
    let (a, b) = (KeyHash::default(), KeyHash::default());
    let key: &[u8] = b"key:000000000042";
    // What a HashMap<Vec<u8>, _> and a lookup by &[u8] both feed it: the same hash.
    assert_eq!(a.hash_one(key), a.hash_one(key.to_vec()));
    assert_eq!(a.hash_one(key), a.hash_one(key));
    // Another map draws another key (a 2^-64 chance of a false failure).
    assert_ne!(a.hash_one(key), b.hash_one(key));
    // Two writes are not one write of the concatenation, nor the writes swapped.
    let hash = |parts: &[&[u8]]| {
        let mut h = a.build_hasher();
        for part in parts {
            h.write(part);
        }
        h.finish()
    };
    assert_ne!(hash(&[b"ab", b"c"]), hash(&[b"abc"]));
    assert_ne!(hash(&[b"ab", b"c"]), hash(&[b"c", b"ab"]));
}
