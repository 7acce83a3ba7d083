//! Plugin secrets at rest: ChaCha20-Poly1305 under the host's key, each ciphertext bound to its
//! tenant and install so that it cannot be moved to another.

use std::path::Path;

use anyhow::Context;
use base64::Engine as _;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};
use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::Sha256;

const NONCE_LEN: usize = 12;

/// Encrypts and decrypts plugin secrets, and signs values the host hands out (such as CSRF
/// tokens) so it can recognise them later without storing them.
pub struct SecretBox {
    cipher: ChaCha20Poly1305,
    /// Derived from the key, so signatures and ciphertexts never share a key.
    mac_key: [u8; 32],
}

impl SecretBox {
    /// Uses the configured key (32 bytes, base64), or a key kept in `key_file`, created on first
    /// use.
    pub fn load(configured: Option<&str>, key_file: &Path) -> anyhow::Result<Self> {
        let encoded = if let Some(configured) = configured {
            configured.to_string()
        } else if key_file.exists() {
            crate::files::refuse_shared(key_file)?;
            std::fs::read_to_string(key_file)
                .with_context(|| format!("reading {}", key_file.display()))?
        } else {
            let mut key = [0u8; 32];
            rand::rng().fill_bytes(&mut key);
            let encoded = base64::engine::general_purpose::STANDARD.encode(key);
            if let Some(dir) = key_file.parent() {
                crate::files::private_dir(dir)?;
            }
            write_private(key_file, &encoded)?;
            tracing::warn!(path = %key_file.display(), "generated a new secret key; replicas sharing a database need PORTICO_SECRET_KEY set to the same key");
            encoded
        };
        let key = base64::engine::general_purpose::STANDARD
            .decode(encoded.trim())
            .ok()
            .filter(|k| k.len() == 32)
            .context("the secret key must be 32 bytes, base64-encoded")?;
        let mut derive = <Hmac<Sha256> as Mac>::new_from_slice(&key).expect("any key length");
        derive.update(b"portico signing key");
        Ok(Self {
            cipher: ChaCha20Poly1305::new(Key::from_slice(&key)),
            mac_key: derive.finalize().into_bytes().into(),
        })
    }

    /// A key for `purpose`, derived from the host key: what it signs, nothing else can.
    pub fn derived_key(&self, purpose: &str) -> [u8; 32] {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.mac_key).expect("any key length");
        mac.update(b"derived key for ");
        mac.update(purpose.as_bytes());
        mac.finalize().into_bytes().into()
    }

    /// A signature of `message` (HMAC-SHA256, hex).
    pub fn sign(&self, message: &str) -> String {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.mac_key).expect("any key length");
        mac.update(message.as_bytes());
        mac.finalize()
            .into_bytes()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }

    /// Whether `signature` is [`SecretBox::sign`]'s for `message`, compared in constant time.
    pub fn verify(&self, message: &str, signature: &str) -> bool {
        let Some(bytes) = decode_hex(signature) else {
            return false;
        };
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.mac_key).expect("any key length");
        mac.update(message.as_bytes());
        mac.verify_slice(&bytes).is_ok()
    }

    /// Encrypts `plaintext` for one install of one tenant.
    pub fn seal(&self, context: &str, plaintext: &[u8]) -> anyhow::Result<Vec<u8>> {
        let mut nonce = [0u8; NONCE_LEN];
        rand::rng().fill_bytes(&mut nonce);
        let sealed = self
            .cipher
            .encrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: plaintext,
                    aad: context.as_bytes(),
                },
            )
            .map_err(|_| anyhow::anyhow!("encrypting secrets failed"))?;
        Ok([nonce.as_slice(), &sealed].concat())
    }

    /// Decrypts what [`SecretBox::seal`] made for the same context.
    pub fn open(&self, context: &str, sealed: &[u8]) -> anyhow::Result<Vec<u8>> {
        anyhow::ensure!(sealed.len() > NONCE_LEN, "sealed secrets are too short");
        let (nonce, ciphertext) = sealed.split_at(NONCE_LEN);
        self.cipher
            .decrypt(
                Nonce::from_slice(nonce),
                Payload {
                    msg: ciphertext,
                    aad: context.as_bytes(),
                },
            )
            .map_err(|_| {
                anyhow::anyhow!("secrets cannot be decrypted: wrong key or moved ciphertext")
            })
    }
}

fn decode_hex(hex: &str) -> Option<Vec<u8>> {
    if !hex.len().is_multiple_of(2) {
        return None;
    }
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(hex.get(i..i + 2)?, 16).ok())
        .collect()
}

fn write_private(path: &Path, contents: &str) -> anyhow::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options
        .open(path)
        .with_context(|| format!("creating {}", path.display()))?;
    file.write_all(contents.as_bytes())?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_verify_only_for_their_message() {
        let dir = std::env::temp_dir().join(format!("portico-key-{}", uuid::Uuid::new_v4()));
        let secrets = SecretBox::load(None, &dir.join("secret.key")).unwrap();
        let signature = secrets.sign("feedback/t1/ticket-1");
        assert!(secrets.verify("feedback/t1/ticket-1", &signature));
        assert!(!secrets.verify("feedback/t1/ticket-2", &signature));
        assert!(!secrets.verify("feedback/t1/ticket-1", &signature[..62]));
        assert!(!secrets.verify("feedback/t1/ticket-1", "zz"));
        let other = SecretBox::load(None, &dir.join("other.key")).unwrap();
        assert!(!other.verify("feedback/t1/ticket-1", &signature));
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn sealed_secrets_open_only_in_their_context() {
        let dir = std::env::temp_dir().join(format!("portico-key-{}", uuid::Uuid::new_v4()));
        let key_file = dir.join("secret.key");
        let secrets = SecretBox::load(None, &key_file).unwrap();
        let sealed = secrets.seal("tenant-a/install-1", b"api-key-123").unwrap();
        assert!(!sealed.windows(11).any(|w| w == b"api-key-123"));
        assert_eq!(
            secrets.open("tenant-a/install-1", &sealed).unwrap(),
            b"api-key-123"
        );
        assert!(secrets.open("tenant-b/install-1", &sealed).is_err());
        let reloaded = SecretBox::load(None, &key_file).unwrap();
        assert_eq!(
            reloaded.open("tenant-a/install-1", &sealed).unwrap(),
            b"api-key-123"
        );
        assert!(SecretBox::load(Some("dG9vIHNob3J0"), &key_file).is_err());
        std::fs::remove_dir_all(dir).unwrap();
    }
}
