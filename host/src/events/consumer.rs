//! Durable consumers: each reads the events table through its own cursor and handles every
//! event once. The handler's writes, the cursor's advance and any events the handler emits
//! commit in one transaction, so a crash (or a dropped task) between an event's commit and its
//! handling loses nothing and repeats nothing: the next run resumes from the cursor. On
//! PostgreSQL replicas share the work through a lease (`FOR UPDATE SKIP LOCKED` on the cursor).

use std::sync::Arc;
use std::time::Duration;

use super::bus::{BoxFuture, Bus, Tx};
use super::model::Recorded;
use super::store;
use crate::error::Result;

/// Events handled per transaction.
const BATCH: i64 = 100;
/// How long an idle consumer waits for a wake-up before looking anyway.
const IDLE_POLL: Duration = Duration::from_secs(1);

/// Handles one event inside the consumer's transaction. An error rolls the batch back; it is
/// retried after a pause. Handlers write to the database and return: on SQLite the transaction
/// holds the only write lock, so slow work (a delivery over the network) belongs in an outbox
/// that a separate worker drains.
pub trait Handler: Send + Sync + 'static {
    fn handle<'a>(&'a self, tx: &'a mut Tx, event: &'a Recorded) -> BoxFuture<'a, Result<()>>;
}

/// A named consumer and its handler.
#[derive(Clone)]
pub struct Consumer {
    name: String,
    handler: Arc<dyn Handler>,
}

impl Consumer {
    pub fn new(name: impl Into<String>, handler: impl Handler) -> Self {
        Self {
            name: name.into(),
            handler: Arc::new(handler),
        }
    }

    /// Creates the cursor at the current end of the table unless it exists.
    pub async fn register(&self, bus: &Bus) -> Result<()> {
        store::register_cursor(&bus.db().pool, &self.name).await
    }

    /// Handles one batch; returns how many events it handled (0 when there was nothing to do or
    /// another replica holds the lease).
    pub async fn run_once(&self, bus: &Bus) -> Result<usize> {
        let mut tx = bus.begin().await?;
        let backend = tx.backend();
        let Some(position) = store::lease_cursor(&mut tx, backend, &self.name).await? else {
            return Ok(0);
        };
        let events = store::after(&mut tx, backend, position, BATCH).await?;
        let Some(last) = events.last().map(|e| (e.tx, e.seq)) else {
            return Ok(0);
        };
        // The batch is read across tenants; each event is handled in its own tenant's name.
        for event in &events {
            tx.work_for(event.tenant.as_ref()).await?;
            self.handler.handle(&mut tx, event).await?;
        }
        tx.work_for(None).await?;
        store::move_cursor(&mut tx, &self.name, last).await?;
        tx.commit().await?;
        Ok(events.len())
    }

    /// Runs until the task is dropped: handles what is there, then waits for new commits.
    pub async fn run(self, bus: Bus) {
        let mut failures = 0u32;
        loop {
            let woken = bus.committed(IDLE_POLL);
            match self.run_once(&bus).await {
                Ok(0) => {
                    failures = 0;
                    woken.await;
                }
                Ok(_) => failures = 0,
                Err(e) => {
                    failures += 1;
                    let pause = Duration::from_millis(100 * 2u64.pow(failures.min(8)));
                    tracing::error!(consumer = %self.name, error = ?e, ?pause, "event consumer failed; retrying");
                    tokio::time::sleep(pause).await;
                }
            }
        }
    }

    /// Registers the consumer and runs it on the runtime.
    pub async fn spawn(self, bus: &Bus) -> Result<tokio::task::JoinHandle<()>> {
        self.register(bus).await?;
        Ok(tokio::spawn(self.run(bus.clone())))
    }
}
