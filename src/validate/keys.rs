//! Duplicate record keys inside one manifest. Keys are remembered as 64-bit hashes with
//! the row that first used them, so a million keys cost about 32 MB, not the keys' text.
//! A hash collision between different keys (odds about 1 in 30 million for a million
//! rows) would fail a row as a duplicate it is not — loudly, never silently.

use std::collections::HashMap;
use std::hash::{BuildHasher, Hasher};

/// Keys seen so far, by kind-specific key text.
#[derive(Default)]
pub struct KeySet {
    first_row: HashMap<u64, u64, Fixed>,
}

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

impl KeySet {
    /// Records `key` for `row`; returns the earlier row when the key was already used.
    pub fn insert(&mut self, key: &str, row: u64) -> Option<u64> {
        let hash = hash_key(key);
        match self.first_row.entry(hash) {
            std::collections::hash_map::Entry::Occupied(e) => Some(*e.get()),
            std::collections::hash_map::Entry::Vacant(e) => {
                e.insert(row);
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
