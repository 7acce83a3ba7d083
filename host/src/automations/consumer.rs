//! The automated-actions consumer: a durable consumer of the domain events that queues each
//! triggered action's deliveries in the transaction that advances its cursor, so every
//! matching event produces its deliveries exactly once, across crashes and replicas.

use super::service::{self, Happened};
use crate::error::Result;
use crate::events::{BoxFuture, Consumer, Handler, Recorded, Tx};

/// The consumer's name, which keys its cursor.
pub const NAME: &str = "automated-actions";

pub struct QueueDeliveries;

impl Handler for QueueDeliveries {
    fn handle<'a>(&'a self, tx: &'a mut Tx, event: &'a Recorded) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            let (Some(tenant), Some(happened)) = (&event.tenant, Happened::of(&event.event)) else {
                return Ok(());
            };
            service::queue_for_event(tx, tenant, &event.subject, event.seq, &happened)
                .await
                .map(|_| ())
        })
    }
}

pub fn consumer() -> Consumer {
    Consumer::new(NAME, QueueDeliveries)
}
