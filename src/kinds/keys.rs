//! Duplicate record keys inside one manifest. Keys are remembered as 64-bit hashes with
//! the row that first used them, 12 bytes an entry, so a million keys cost about 27 MB,
//! not the keys' text.
//! The table is split in shards that grow one at a time: a single table would briefly
//! hold its old and new copies at once, half as much again at the peak.
//! A hash collision between different keys (odds about 1 in 30 million for a million
//! rows) would fail a row as a duplicate it is not — loudly, never silently.

use std::collections::HashMap;
use std::hash::{BuildHasher, Hash, Hasher};

/// Keys seen so far, by kind-specific key text.
pub struct KeySet {
    shards: Vec<HashMap<Hashed, u32, Fixed>>,
}

/// A key's hash as two halves: with its u32 row an entry takes 12 bytes, where a u64
/// (aligned to 8) would pad it to 16.
#[derive(Clone, Copy, PartialEq, Eq)]
struct Hashed([u32; 2]);

impl Hash for Hashed {
    fn hash<H: Hasher>(&self, state: &mut H) {
        state.write_u64((u64::from(self.0[0]) << 32) | u64::from(self.0[1]));
    }
}

const SHARDS: usize = 64;

/// Where the bits that pick a shard start: clear of the slot bits below (a shard would
/// need 2^40 slots to reach them) and of the tag bits above.
const SHARD_BITS_AT: u32 = 40;

/// A fixed (unseeded) hasher: the same key always hashes the same, and the map's own
/// hashing of the already-random u64 is the identity.
#[derive(Default, Clone, Copy)]
struct Fixed;

#[derive(Default)]
struct Identity(u64);

impl Hasher for Identity {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 << 8) | u64::from(b);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

impl BuildHasher for Fixed {
    type Hasher = Identity;
    fn build_hasher(&self) -> Identity {
        Identity::default()
    }
}

impl Default for KeySet {
    fn default() -> Self {
        KeySet {
            shards: (0..SHARDS).map(|_| HashMap::default()).collect(),
        }
    }
}

impl KeySet {
    /// Records `key` for `row`; returns the earlier row when the key was already used.
    pub fn insert(&mut self, key: &str, row: u64) -> Option<u64> {
        let hash = hash_key(key);
        // Middle bits pick the shard. The table uses the low bits for the slot and the
        // top seven as each slot's tag; a shard chosen by the top bits left its tags
        // only two values, so nearly every probe compared entries (a tenth of
        // `validate`'s CPU).
        let shard = &mut self.shards[(hash >> SHARD_BITS_AT) as usize % SHARDS];
        // Rows beyond u32 (four billion) do not occur in a manifest; saturate rather
        // than wrap if one ever did, so the message is merely imprecise.
        let row32 = u32::try_from(row).unwrap_or(u32::MAX);
        let hashed = Hashed([(hash >> 32) as u32, hash as u32]);
        match shard.entry(hashed) {
            std::collections::hash_map::Entry::Occupied(e) => Some(u64::from(*e.get())),
            std::collections::hash_map::Entry::Vacant(e) => {
                e.insert(row32);
                None
            }
        }
    }
}

/// SipHash-1-3 with fixed keys: well mixed and stable within a process.
fn hash_key(key: &str) -> u64 {
    let mut h = std::hash::DefaultHasher::new();
    h.write(key.as_bytes());
    h.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_repeated_key_names_the_first_row() {
        let mut keys = KeySet::default();
        assert_eq!(keys.insert("A", 2), None);
        assert_eq!(keys.insert("B", 3), None);
        assert_eq!(keys.insert("A", 7), Some(2));
        assert_eq!(keys.insert("A", 9), Some(2));
    }
}
