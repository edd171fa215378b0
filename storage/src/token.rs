//! Bearer tokens: 256 random bits shown once, stored only as their SHA-256.
//!
//! A plain (unsalted, fast) hash is enough because the input is uniformly random: there is
//! no dictionary to attack, and a lookup must be one indexed read per request.

use rand::RngCore;
use sha2::{Digest, Sha256};

/// Prefix that makes tokens recognisable in logs and secret scanners.
const PREFIX: &str = "fgt_";

pub fn generate() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    format!("{PREFIX}{}", hex::encode(bytes))
}

pub fn hash(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_unique_and_hash_stably() {
        let first = generate();
        let second = generate();
        assert_ne!(first, second);
        assert!(first.starts_with(PREFIX));
        assert_eq!(hash(&first), hash(&first));
        assert_ne!(hash(&first), hash(&second));
    }
}
