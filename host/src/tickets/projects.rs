//! Project operations: a project groups tickets and picks their portal profile.

use serde_json::{Value, json};

use super::model::{Project, ProjectChanges, ProjectInput};
use super::service::check_name;
use super::store;
use crate::AppState;
use crate::audit::{self, Change};
use crate::db::{self, Pool};
use crate::error::{Error, Result};
use crate::events::{Event, Tx};
use crate::types::{Caller, TenantId};

/// A profile assigned to a project must be the tenant's own.
async fn check_profile(pool: &Pool, tenant: &TenantId, profile: Option<&str>) -> Result<()> {
    if let Some(profile) = profile {
        crate::profiles::find(pool, tenant, profile)
            .await
            .map_err(|e| match e {
                Error::NotFound(_) => {
                    Error::invalid("unknown_profile", "no such portal profile in this tenant")
                }
                other => other,
            })?;
    }
    Ok(())
}

/// Audits and announces a project change, then commits.
async fn finish_project(
    mut tx: Tx,
    actor: &str,
    tenant: &TenantId,
    id: &str,
    change: (&str, Option<Value>, Option<Value>),
    event: Event,
) -> Result<()> {
    let (action, before, after) = change;
    let change = Change {
        tenant: Some(tenant),
        action,
        target: id,
        before,
        after,
    };
    audit::record(&mut tx, actor, change).await?;
    tx.emit(Some(tenant), id, actor, event).await?;
    tx.commit().await
}

pub async fn create(
    state: &AppState,
    caller: &Caller,
    tenant: &TenantId,
    input: ProjectInput,
) -> Result<Project> {
    let project = Project {
        id: db::new_id(),
        name: check_name(&input.name)?,
        profile_id: input.profile_id,
    };
    check_profile(&state.db.pool, tenant, project.profile_id.as_deref()).await?;
    let mut tx = state.events.begin().await?;
    store::insert_project(&mut tx, tenant, &project).await?;
    let after = json!({"name": project.name, "profile_id": project.profile_id});
    let change = ("project.create", None, Some(after));
    finish_project(
        tx,
        &caller.actor(),
        tenant,
        &project.id,
        change,
        Event::ProjectCreated,
    )
    .await?;
    Ok(project)
}

pub async fn update(
    state: &AppState,
    caller: &Caller,
    tenant: &TenantId,
    id: &str,
    input: ProjectChanges,
) -> Result<Project> {
    let name = input.name.as_deref().map(check_name).transpose()?;
    if let Some(profile) = &input.profile_id {
        check_profile(&state.db.pool, tenant, profile.as_deref()).await?;
    }
    let mut tx = state.events.begin().await?;
    let for_update = tx.for_update();
    let before = store::lock_project(&mut tx, tenant, id, for_update).await?;
    let profile_id = input.profile_id.as_ref().map(Option::as_deref);
    store::update_project(&mut tx, tenant, id, name.as_deref(), profile_id).await?;
    let after = Project {
        id: id.to_string(),
        name: name.unwrap_or_else(|| before.name.clone()),
        profile_id: input
            .profile_id
            .unwrap_or_else(|| before.profile_id.clone()),
    };
    let change = (
        "project.update",
        Some(json!({"name": before.name, "profile_id": before.profile_id})),
        Some(json!({"name": after.name, "profile_id": after.profile_id})),
    );
    finish_project(
        tx,
        &caller.actor(),
        tenant,
        id,
        change,
        Event::ProjectChanged,
    )
    .await?;
    Ok(after)
}

pub async fn delete(state: &AppState, caller: &Caller, tenant: &TenantId, id: &str) -> Result<()> {
    let mut tx = state.events.begin().await?;
    store::delete_project(&mut tx, tenant, id).await?;
    let change = ("project.delete", None, None);
    finish_project(
        tx,
        &caller.actor(),
        tenant,
        id,
        change,
        Event::ProjectDeleted,
    )
    .await
}
