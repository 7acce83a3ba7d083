//! Who may run a plugin now: at most `concurrency` instances at once (the size of the pooled
//! allocator, so instantiation never fails for want of a slot), and at most `per_tenant` of them
//! for any one tenant, so that one tenant's slow plugins cannot take every slot. A call waits
//! for its slots for at most half of its deadline.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;

/// The pool's size and shares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolSettings {
    /// Instances running at once, across tenants.
    pub concurrency: u32,
    /// Of those, instances one tenant may run at once.
    pub per_tenant: u32,
    /// Linear memory any one instance may grow to (bytes); per-install limits sit below it.
    pub instance_memory: usize,
}

impl Default for PoolSettings {
    fn default() -> Self {
        Self {
            concurrency: 64,
            per_tenant: 16,
            instance_memory: 256 << 20,
        }
    }
}

impl PoolSettings {
    /// The most memory the instances can hold at once.
    pub fn worst_case_bytes(&self) -> u64 {
        u64::from(self.concurrency) * self.instance_memory as u64
    }
}

/// Slots held by one running call; dropped, they are free again.
pub struct Held {
    _tenant: OwnedSemaphorePermit,
    _total: OwnedSemaphorePermit,
}

pub struct Slots {
    settings: PoolSettings,
    total: Arc<Semaphore>,
    tenants: Mutex<HashMap<String, Arc<Semaphore>>>,
}

impl Slots {
    pub fn new(settings: PoolSettings) -> Self {
        Self {
            settings,
            total: Arc::new(Semaphore::new(settings.concurrency.max(1) as usize)),
            tenants: Mutex::default(),
        }
    }

    fn tenant(&self, tenant: &str) -> Arc<Semaphore> {
        let mut tenants = self.tenants.lock().unwrap_or_else(|e| e.into_inner());
        if tenants.len() > 10_000 {
            // Forget idle tenants' shares: nobody holds them.
            tenants.retain(|_, share| Arc::strong_count(share) > 1);
        }
        let share = self
            .settings
            .per_tenant
            .clamp(1, self.settings.concurrency.max(1));
        tenants
            .entry(tenant.to_string())
            .or_insert_with(|| Arc::new(Semaphore::new(share as usize)))
            .clone()
    }

    /// Waits until `until` for a slot of `tenant`'s share and one of the pool; `None` if none
    /// came free in time.
    pub async fn acquire(&self, tenant: &str, until: Instant) -> Option<Held> {
        let share = self.tenant(tenant);
        let tenant = tokio::time::timeout_at(until, share.acquire_owned())
            .await
            .ok()?
            .ok()?;
        let total = tokio::time::timeout_at(until, self.total.clone().acquire_owned())
            .await
            .ok()?
            .ok()?;
        Some(Held {
            _tenant: tenant,
            _total: total,
        })
    }
}
