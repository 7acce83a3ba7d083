//! Failed sign-ins, counted per client address and per account from that address. A client
//! that fails too often waits (`429` with `Retry-After`); nobody else does, so guessing at an
//! account from elsewhere never locks its owner out. Memory is bounded: past the capacity the
//! least used counters go first.

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
    [address.to_string(), format!("{address} {account}")]
}

impl SignInThrottle {
    /// Whether a sign-in from `address` to `account` may be tried now.
    pub async fn check(&self, address: Option<IpAddr>, account: &str) -> Result<(), Error> {
        let Some(address) = address else {
            return Ok(());
        };
        let [by_address, by_account] = keys(address, account);
        let over = async |key: &str, max: u32| {
            self.failures
                .get(key)
                .await
                .and_then(Failures::current)
                .filter(|f| f.count >= max)
        };
        let full = match over(&by_account, MAX_PER_ACCOUNT).await {
            Some(full) => Some(full),
            None => over(&by_address, MAX_PER_ADDRESS).await,
        };
        if let Some(full) = full {
            let wait = WINDOW.saturating_sub(full.since.elapsed()).as_secs().max(1);
            return Err(Error::TooManyRequests {
                code: "too_many_attempts",
                message: "too many failed sign-ins; try again later".into(),
                retry_after_secs: wait,
            });
        }
        Ok(())
    }

    pub async fn failed(&self, address: Option<IpAddr>, account: &str) {
        let Some(address) = address else {
            return;
        };
        for key in keys(address, account) {
            let next = match self.failures.get(&key).await.and_then(Failures::current) {
                Some(f) => Failures {
                    count: f.count + 1,
                    ..f
                },
                None => Failures {
                    count: 1,
                    since: Instant::now(),
                },
            };
            self.failures.insert(key, next).await;
        }
    }

    /// A successful sign-in clears that account's failures from that address.
    pub async fn succeeded(&self, address: Option<IpAddr>, account: &str) {
        if let Some(address) = address {
            let [_, by_account] = keys(address, account);
            self.failures.invalidate(&by_account).await;
        }
    }
}
