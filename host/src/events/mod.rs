//! Domain events: what changed, written in the same transaction as the change.
//!
//! Areas emit through a [`Tx`]; after commit the event fans out to in-process [`Subscriber`]s
//! (caches, live pages), to other replicas over PostgreSQL `NOTIFY`, and to durable
//! [`Consumer`]s that read the table through their own cursors. In-transaction [`Reaction`]s
//! let one area add to another's change without either importing the other. This area imports
//! no other: everyone may depend on it.

mod bus;
pub mod consumer;
mod model;
pub mod routes;
pub mod store;

use std::time::Duration;

pub use bus::{
    BoxFuture, Bus, Reaction, Subscriber, Tx, spawn_process_watcher, spawn_replica_listener,
};
pub use consumer::{Consumer, Handler};
pub use model::{Event, EventView, Recorded};

/// Deletes events older than `retention` that every durable consumer has read, once an hour,
/// for as long as the runtime runs.
pub fn spawn_pruner(bus: Bus, retention: Duration) {
    tokio::spawn(async move {
        let mut every = tokio::time::interval(Duration::from_secs(3600));
        loop {
            every.tick().await;
            let before = crate::db::now_ms() - retention.as_millis() as i64;
            match store::prune(&bus.db().pool, before).await {
                Ok(0) => {}
                Ok(pruned) => tracing::info!(pruned, "old events pruned"),
                Err(e) => tracing::warn!(error = ?e, "pruning events failed"),
            }
        }
    });
}
