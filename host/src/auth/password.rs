//! Passwords: argon2id at OWASP's recommended cost, hashed on the blocking pool.

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};

use crate::error::{Error, Result};

/// Shortest password accepted for a staff account.
pub const MIN_PASSWORD_LEN: usize = 12;

fn argon2() -> Argon2<'static> {
    // OWASP: argon2id, 19 MiB memory, 2 iterations, 1 lane.
    let params = Params::new(19 * 1024, 2, 1, None).expect("valid argon2 parameters");
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

/// Hashes a password into a PHC string (algorithm, parameters and salt included).
pub fn hash_password(password: &str) -> anyhow::Result<String> {
    let salt = SaltString::generate(&mut argon2::password_hash::rand_core::OsRng);
    argon2()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| anyhow::anyhow!("hashing password: {e}"))
}

/// Checks a password against a stored PHC string; a malformed hash never matches.
pub fn verify_password(password: &str, phc: &str) -> bool {
    PasswordHash::new(phc)
        .is_ok_and(|hash| argon2().verify_password(password.as_bytes(), &hash).is_ok())
}

/// Checks a new password's strength and hashes it in the [`HashingPool`], since a hash takes
/// tens of milliseconds of CPU by design.
pub async fn hash_new_password(password: &str) -> Result<String> {
    if password.chars().count() < MIN_PASSWORD_LEN {
        return Err(Error::invalid(
            "weak_password",
            format!("a password needs at least {MIN_PASSWORD_LEN} characters"),
        ));
    }
    let password = password.to_string();
    Ok(HASHING.run(move || hash_password(&password)).await??)
}

/// Checks a password against a stored PHC string in the [`HashingPool`].
pub async fn check_password(password: &str, phc: &str) -> Result<bool> {
    let (password, phc) = (password.to_string(), phc.to_string());
    HASHING.run(move || verify_password(&password, &phc)).await
}

/// Hashing work at once is bounded by the machine's cores (each hash holds 19 MiB and a core
/// for tens of milliseconds), with a bounded queue behind it: past that, callers are told to
/// come back in a second rather than pile up. One per process, like the cores it guards.
static HASHING: std::sync::LazyLock<HashingPool> = std::sync::LazyLock::new(|| {
    let cores = std::thread::available_parallelism().map_or(2, usize::from);
    HashingPool {
        running: std::sync::Arc::new(tokio::sync::Semaphore::new(cores)),
        waiting: std::sync::atomic::AtomicUsize::new(0),
        max_waiting: cores * 32,
    }
});

struct HashingPool {
    running: std::sync::Arc<tokio::sync::Semaphore>,
    waiting: std::sync::atomic::AtomicUsize,
    max_waiting: usize,
}

/// Counts a caller as waiting for as long as it exists, even when its request is dropped.
struct Waiting<'a>(&'a std::sync::atomic::AtomicUsize);

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
    }
}

impl HashingPool {
    async fn run<T: Send + 'static>(&self, work: impl FnOnce() -> T + Send + 'static) -> Result<T> {
        use std::sync::atomic::Ordering::Relaxed;
        let waiting = Waiting(&self.waiting);
        if self.waiting.fetch_add(1, Relaxed) >= self.max_waiting {
            return Err(Error::TooManyRequests {
                code: "busy",
                message: "the server is busy checking passwords; try again in a moment".into(),
                retry_after_secs: 1,
            });
        }
        let permit = self
            .running
            .clone()
            .acquire_owned()
            .await
            .map_err(|e| Error::Internal(e.into()))?;
        drop(waiting);
        // The permit goes with the work: a dropped request does not free it before the hash ends.
        tokio::task::spawn_blocking(move || {
            let _running = permit;
            work()
        })
        .await
        .map_err(|e| Error::Internal(e.into()))
    }
}
