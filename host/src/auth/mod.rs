//! Staff accounts and bearer API tokens.
//!
//! API tokens carry 256 random bits, so a fast SHA-256 of the token is a safe lookup key; only
//! that hash is stored.

pub mod model;
pub mod password;
pub mod routes;
pub mod service;
pub mod store;

use base64::Engine as _;
use rand::RngCore;

pub use model::{IssuedToken, StaffUser, StaffUserView, TokenRecord, TokenView};
pub use password::hash_new_password;
pub use service::issue_token;
pub use store::{authenticate, find_user, find_user_by_email};

use crate::types::hash_token;

/// Prefix that makes leaked Portico tokens easy to recognise in logs and secret scanners.
const TOKEN_PREFIX: &str = "ptk_";

/// A fresh token: what the client keeps, and the hash we store.
fn generate_token() -> (String, String) {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    let token = format!(
        "{TOKEN_PREFIX}{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    );
    let hash = hash_token(&token);
    (token, hash)
}
