//! Creating, changing and deleting tenants. Every change emits an event: host caches follow it
//! on every replica, and the `TenantCreated` reactions give a new tenant its built-in plugins
//! and default portal profile in the same transaction.

use crate::audit::{self, Change};
use crate::auth::StaffUser;
use crate::auth::service::{self as staff, NewUser};
use crate::error::Result;
use crate::events::{Bus, Event, store as history};
use crate::types::{self, Caller, TenantId};

use super::model::{NewTenant, Tenant, TenantChanges};
use super::store;

/// Creates a tenant, and its first administrator when `admin` is given.
pub async fn create(
    events: &Bus,
    actor: &str,
    new: NewTenant,
    admin: Option<NewUser>,
) -> Result<(Tenant, Option<StaffUser>)> {
    let display_name = types::display_name(&new.display_name)?;
    let mut tx = events.begin().await?;
    let tenant = store::insert(&mut tx, &new, display_name).await?;
    let created = Event::TenantCreated {
        slug: tenant.slug.clone(),
        language: tenant.language.clone(),
    };
    tx.emit(Some(&tenant.id), tenant.id.as_str(), actor, created)
        .await?;
    let admin = match admin {
        Some(admin) => Some(staff::add_user_in(&mut tx, actor, &tenant.id, &admin).await?),
        None => None,
    };
    let change = Change {
        tenant: None,
        action: "tenant.create",
        target: tenant.id.as_str(),
        before: None,
        after: Some(
            serde_json::json!({"slug": tenant.slug, "display_name": tenant.display_name,
            "admin": admin.as_ref().map(|a| &a.email)}),
        ),
    };
    audit::record(&mut tx, actor, change).await?;
    tx.commit().await?;
    Ok((tenant, admin))
}

/// Changes what `changes` sets. The slug and the status are the platform's to change.
pub async fn update(
    events: &Bus,
    caller: &Caller,
    id: &TenantId,
    mut changes: TenantChanges,
    action: &str,
) -> Result<Tenant> {
    if changes.slug.is_some() || changes.status.is_some() {
        caller.require_platform()?;
    }
    if let Some(name) = &changes.display_name {
        changes.display_name = Some(types::display_name(name)?);
    }
    let actor = caller.actor();
    let mut tx = events.begin().await?;
    let for_update = tx.for_update();
    let before = store::lock(&mut tx, id, for_update).await?;
    store::update(&mut tx, id, &changes).await?;
    let after = store::lock(&mut tx, id, "").await?;
    let change = Change {
        tenant: Some(id),
        action,
        target: id.as_str(),
        before: Some(before.summary()),
        after: Some(after.summary()),
    };
    audit::record(&mut tx, &actor, change).await?;
    tx.emit(Some(id), id.as_str(), &actor, Event::TenantChanged)
        .await?;
    tx.commit().await?;
    Ok(after)
}

/// Deletes a tenant with everything it owns, its event history included.
pub async fn delete(events: &Bus, caller: &Caller, id: &TenantId) -> Result<()> {
    caller.require_platform()?;
    let actor = caller.actor();
    // The platform's own record of the deletion: its audit entry and event belong to no tenant.
    crate::db::across_tenants(async {
        let mut tx = events.begin().await?;
        let for_update = tx.for_update();
        let before = store::lock(&mut tx, id, for_update).await?;
        store::delete(&mut tx, id).await?;
        history::delete_for_tenant(&mut tx, id).await?;
        let change = Change {
            tenant: None,
            action: "tenant.delete",
            target: id.as_str(),
            before: Some(before.summary()),
            after: None,
        };
        audit::record(&mut tx, &actor, change).await?;
        tx.emit(None, id.as_str(), &actor, Event::TenantDeleted)
            .await?;
        tx.commit().await
    })
    .await
}
