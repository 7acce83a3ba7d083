//! Delivery operations an administrator takes: putting a dead delivery back in the queue.

use super::store;
use crate::AppState;
use crate::audit::{self, Change};
use crate::error::Result;
use crate::events::Event;
use crate::types::{Caller, TenantId};

/// Queues a dead delivery again with fresh attempts; audited.
pub async fn retry(state: &AppState, caller: &Caller, tenant: &TenantId, id: &str) -> Result<()> {
    let actor = caller.actor();
    let mut tx = state.events.begin().await?;
    store::requeue(&mut tx, tenant, id).await?;
    let change = Change {
        tenant: Some(tenant),
        action: "delivery.retry",
        target: id,
        before: None,
        after: None,
    };
    audit::record(&mut tx, &actor, change).await?;
    tx.emit(Some(tenant), id, &actor, Event::DeliveryRetried)
        .await?;
    tx.commit().await
}
