//! Passwords: argon2id at OWASP's recommended cost, computed on a few threads of their own, each
//! reusing one block of argon2 memory, so that neither CPU nor memory grows with the load.

use std::cell::RefCell;

use argon2::password_hash::{Output, ParamsString, PasswordHash, SaltString};
use argon2::{Algorithm, Argon2, Block, Params, Version};

use crate::error::{Error, Result};

/// Shortest password accepted for a staff account.
pub const MIN_PASSWORD_LEN: usize = 12;

fn params() -> Params {
    // OWASP: argon2id, 19 MiB memory, 2 iterations, 1 lane.
    Params::new(19 * 1024, 2, 1, None).expect("valid argon2 parameters")
}

thread_local! {
    /// This thread's argon2 working memory, allocated once and reused for every hash: a fresh
    /// 19 MiB allocation per hash leaves the allocator holding far more than is in use.
    static MEMORY: RefCell<Vec<Block>> = const { RefCell::new(Vec::new()) };
}

/// argon2id of `password` and `salt` into `out`, in this thread's memory.
fn argon2id_into(
    params: &Params,
    password: &[u8],
    salt: &[u8],
    out: &mut [u8],
) -> argon2::password_hash::Result<()> {
    let hasher = Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone());
    MEMORY.with_borrow_mut(|memory| {
        let needed = params.block_count();
        if memory.len() < needed {
            memory.resize(needed, Block::default());
        }
        Ok(hasher.hash_password_into_with_memory(password, salt, out, &mut memory[..needed])?)
    })
}

/// Hashes a password into a PHC string (algorithm, parameters and salt included).
fn hash_password(password: &str) -> anyhow::Result<String> {
    let salt = SaltString::generate(&mut argon2::password_hash::rand_core::OsRng);
    let params = params();
    let failed = |e: argon2::password_hash::Error| anyhow::anyhow!("hashing password: {e}");
    let mut raw_salt = [0u8; 64];
    let salt_bytes = salt.decode_b64(&mut raw_salt).map_err(failed)?;
    let output = Output::init_with(Params::DEFAULT_OUTPUT_LEN, |out| {
        argon2id_into(&params, password.as_bytes(), salt_bytes, out)
    })
    .map_err(failed)?;
    let phc = PasswordHash {
        algorithm: argon2::ARGON2ID_IDENT,
        version: Some(Version::V0x13.into()),
        params: ParamsString::try_from(&params).map_err(failed)?,
        salt: Some(salt.as_salt()),
        hash: Some(output),
    };
    Ok(phc.to_string())
}

/// Checks a password against a stored PHC string (argon2id only); a malformed hash never
/// matches. The comparison of the outputs takes constant time.
fn verify_password(password: &str, phc: &str) -> bool {
    let Ok(hash) = PasswordHash::new(phc) else {
        return false;
    };
    let (Some(expected), Some(salt)) = (hash.hash, hash.salt) else {
        return false;
    };
    let current = hash.algorithm == argon2::ARGON2ID_IDENT
        && hash.version.is_none_or(|v| v == u32::from(Version::V0x13));
    let Ok(params) = Params::try_from(&hash) else {
        return false;
    };
    let mut raw_salt = [0u8; 64];
    let Ok(salt) = salt.decode_b64(&mut raw_salt) else {
        return false;
    };
    current
        && Output::init_with(expected.len(), |out| {
            argon2id_into(&params, password.as_bytes(), salt, out)
        })
        .is_ok_and(|computed| computed == expected)
}

/// A hash of a password nobody has, checked when no account matches, so that a wrong email
/// costs as much time as a wrong password and response times reveal nothing.
pub async fn decoy_hash() -> Result<&'static str> {
    static DECOY: tokio::sync::OnceCell<String> = tokio::sync::OnceCell::const_new();
    let hash = DECOY
        .get_or_try_init(|| async {
            HASHING
                .run(|| hash_password("decoy password that never matches"))
                .await?
                .map_err(Error::Internal)
        })
        .await?;
    Ok(hash.as_str())
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

/// Password hashing runs on its own threads, one per core (each hash holds 19 MiB and a core
/// for tens of milliseconds), with a bounded queue in front: past it, callers are told to come
/// back in a second rather than pile up. Dedicated threads also keep the memory bounded, since
/// each thread keeps its allocator's arena. One per process, like the cores it guards.
static HASHING: std::sync::LazyLock<HashingPool> = std::sync::LazyLock::new(|| {
    let cores = std::thread::available_parallelism().map_or(2, usize::from);
    HashingPool::start(cores, cores * 32)
});

type Job = Box<dyn FnOnce() + Send>;

struct HashingPool {
    queue: std::sync::mpsc::SyncSender<Job>,
}

impl HashingPool {
    fn start(threads: usize, queued: usize) -> Self {
        let (queue, jobs) = std::sync::mpsc::sync_channel::<Job>(queued);
        let jobs = std::sync::Arc::new(std::sync::Mutex::new(jobs));
        for n in 0..threads {
            let jobs = jobs.clone();
            std::thread::Builder::new()
                .name(format!("password-hashing-{n}"))
                .spawn(move || {
                    loop {
                        let job = match jobs.lock() {
                            Ok(jobs) => jobs.recv(),
                            Err(_) => return,
                        };
                        match job {
                            Ok(job) => job(),
                            Err(_) => return,
                        }
                    }
                })
                .expect("starting a password-hashing thread");
        }
        Self { queue }
    }

    async fn run<T: Send + 'static>(&self, work: impl FnOnce() -> T + Send + 'static) -> Result<T> {
        let (done, result) = tokio::sync::oneshot::channel();
        let job: Job = Box::new(move || {
            // Nobody waiting for it any more (a dropped request) is fine.
            let _ = done.send(work());
        });
        match self.queue.try_send(job) {
            Ok(()) => {}
            Err(std::sync::mpsc::TrySendError::Full(_)) => {
                return Err(Error::TooManyRequests {
                    code: "busy",
                    message: "the server is busy checking passwords; try again in a moment".into(),
                    retry_after_secs: 1,
                });
            }
            Err(std::sync::mpsc::TrySendError::Disconnected(_)) => {
                return Err(Error::Internal(anyhow::anyhow!("password hashing stopped")));
            }
        }
        result
            .await
            .map_err(|_| Error::Internal(anyhow::anyhow!("a password hash was lost")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_verify_with_the_standard_verifier_and_back() {
        use argon2::password_hash::{PasswordHasher, PasswordVerifier};
        let ours = hash_password("correct horse battery").unwrap();
        assert!(
            ours.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
            "{ours}"
        );
        let standard = Argon2::new(Algorithm::Argon2id, Version::V0x13, params());
        let parsed = PasswordHash::new(&ours).unwrap();
        assert!(
            standard
                .verify_password(b"correct horse battery", &parsed)
                .is_ok()
        );
        let salt = SaltString::generate(&mut argon2::password_hash::rand_core::OsRng);
        let theirs = standard
            .hash_password(b"correct horse battery", &salt)
            .unwrap()
            .to_string();
        assert!(verify_password("correct horse battery", &theirs));
        assert!(!verify_password("wrong horse battery", &theirs));
        assert!(!verify_password("correct horse battery", "not a hash"));
    }
}
