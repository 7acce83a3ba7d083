//! Hashes the host stores instead of secrets (tokens, links) and uses as content addresses.

use sha2::{Digest, Sha256};

/// SHA-256 as lower-case hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The stored form of a bearer token or tracking-link token.
pub fn hash_token(token: &str) -> String {
    sha256_hex(token.as_bytes())
}
