//! Sign-in attempts, counted per client address (an IPv6 client per /64) and per account from
//! that address; a success gives its attempt back. A client that tries too often waits (`429`
//! with `Retry-After`); nobody else does, so guessing at an account from elsewhere never locks
//! its owner out. Memory is bounded: past the capacity the least used counters go first.

use std::net::IpAddr;
use std::time::{Duration, Instant};

use moka::future::Cache;

use crate::error::Error;

/// How long failures count.
const WINDOW: Duration = Duration::from_secs(15 * 60);
/// Failed sign-ins from one address, to any accounts, within the window.
const MAX_PER_ADDRESS: u32 = 30;
/// Failed sign-ins to one account from one address within the window.
const MAX_PER_ACCOUNT: u32 = 5;

#[derive(Clone, Copy)]
struct Failures {
    count: u32,
    since: Instant,
}

impl Failures {
    fn current(self) -> Option<Self> {
        (self.since.elapsed() < WINDOW).then_some(self)
    }
}

#[derive(Clone)]
pub struct SignInThrottle {
    failures: Cache<String, Failures>,
}

impl Default for SignInThrottle {
    fn default() -> Self {
        Self {
            failures: Cache::builder()
                .max_capacity(100_000)
                .time_to_live(WINDOW)
                .build(),
        }
    }
}

fn keys(address: IpAddr, account: &str) -> [String; 2] {
    let network = crate::http::network_of(address);
    [network.to_string(), format!("{network} {account}")]
}

impl SignInThrottle {
    /// Takes one attempt from `address` at `account`, or refuses it. Attempts count before the
    /// password is checked, each in one atomic step, so parallel guesses cannot all slip in; a
    /// success gives its attempt back.
    pub async fn attempt(&self, address: Option<IpAddr>, account: &str) -> Result<(), Error> {
        let Some(address) = address else {
            return Ok(());
        };
        let [by_address, by_account] = keys(address, account);
        let mut refused: Option<Failures> = None;
        for (key, max) in [(by_account, MAX_PER_ACCOUNT), (by_address, MAX_PER_ADDRESS)] {
            let mut over = false;
            let counted = self
                .failures
                .entry(key)
                .and_upsert_with(|current| {
                    let next = match current.map(|e| e.into_value()).and_then(Failures::current) {
                        Some(f) if f.count >= max => {
                            over = true;
                            f
                        }
                        Some(f) => Failures {
                            count: f.count + 1,
                            ..f
                        },
                        None => Failures {
                            count: 1,
                            since: Instant::now(),
                        },
                    };
                    std::future::ready(next)
                })
                .await
                .into_value();
            if over {
                // A refused attempt costs the address nothing more.
                refused = Some(counted);
                break;
            }
        }
        if let Some(full) = refused {
            let wait = WINDOW.saturating_sub(full.since.elapsed()).as_secs().max(1);
            return Err(Error::TooManyRequests {
                code: "too_many_attempts",
                message: "too many failed sign-ins; try again later".into(),
                retry_after_secs: wait,
            });
        }
        Ok(())
    }

    /// A successful sign-in clears that account's attempts from that address, and gives back
    /// the address's.
    pub async fn succeeded(&self, address: Option<IpAddr>, account: &str) {
        let Some(address) = address else {
            return;
        };
        let [by_address, by_account] = keys(address, account);
        self.failures.invalidate(&by_account).await;
        self.failures
            .entry(by_address)
            .and_compute_with(|current| {
                let op = match current.map(|e| e.into_value()) {
                    Some(f) if f.count > 1 => moka::ops::compute::Op::Put(Failures {
                        count: f.count - 1,
                        ..f
                    }),
                    _ => moka::ops::compute::Op::Remove,
                };
                std::future::ready(op)
            })
            .await;
    }
}
