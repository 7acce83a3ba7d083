//! Install operations: a tenant's installs pick a version, a configuration (checked against the
//! manifest's schema), encrypted secrets, approved capabilities, enabled or not. Upgrades keep
//! the previous version for one-step rollback. Each operation owns its transaction: it locks the
//! install it changes, writes only the columns it changes, audits and emits
//! `PluginInstallChanged`, which empties the prepared installs on every replica.

use std::collections::BTreeMap;

use portico_plugin_runtime::PluginKind;
use portico_plugin_runtime::manifest::Manifest;
use portico_plugin_runtime::outbound::Grants;
use serde_json::{Value, json};

use super::model::{
    ChangeInstall, Install, InstallChanges, InstallRow, NewInstall, stored, to_column,
};
use super::store;
use crate::AppState;
use crate::audit::{self, Change};
use crate::db::{self, now_ms};
use crate::error::{Error, Result};
use crate::events::{Event, Tx};
use crate::types::{Caller, Page, TenantId};

/// What other areas ask about installs.
pub use super::store::{install_of, kind_of};

/// What an install's secrets are sealed to: they open only for that install of that tenant.
fn context(tenant: &TenantId, install: &str) -> String {
    format!("{tenant}/{install}")
}

/// An install's secrets, opened.
pub(super) fn open_secrets(
    state: &AppState,
    tenant: &TenantId,
    row: &InstallRow,
) -> Result<BTreeMap<String, String>> {
    match &row.secrets {
        None => Ok(BTreeMap::new()),
        Some(sealed) => {
            let plain = state
                .plugins
                .secrets
                .open(&context(tenant, &row.id), sealed)?;
            serde_json::from_slice(&plain).map_err(|e| Error::Internal(e.into()))
        }
    }
}

/// Secrets sealed for storing; `None` when there are none.
fn seal(
    state: &AppState,
    tenant: &TenantId,
    install: &str,
    secrets: &BTreeMap<String, String>,
) -> Result<Option<Vec<u8>>> {
    if secrets.is_empty() {
        return Ok(None);
    }
    let plain = serde_json::to_vec(secrets).map_err(|e| Error::Internal(e.into()))?;
    Ok(Some(
        state
            .plugins
            .secrets
            .seal(&context(tenant, install), &plain)?,
    ))
}

/// The API's view of an install of a plugin of `kind`.
fn view(
    state: &AppState,
    tenant: &TenantId,
    row: &InstallRow,
    kind: PluginKind,
) -> Result<Install> {
    let secrets_set = open_secrets(state, tenant, row)?.into_keys().collect();
    row.view(kind, secrets_set)
}

/// Checks configuration, grants and secret names against a version's manifest.
fn check_against(
    manifest: &Manifest,
    config: &Value,
    grants: &Grants,
    secrets: &BTreeMap<String, String>,
) -> Result<()> {
    manifest
        .check_install(config, grants, secrets.keys())
        .map_err(|problem| Error::invalid(problem.code, problem.message))
}

/// Audits an install change, announces it and commits.
async fn finish(mut tx: Tx, actor: &str, change: Change<'_>) -> Result<()> {
    let (tenant, target) = (change.tenant.cloned(), change.target.to_string());
    audit::record(&mut tx, actor, change).await?;
    tx.emit(tenant.as_ref(), &target, actor, Event::PluginInstallChanged)
        .await?;
    tx.commit().await
}

/// The tenant's installs in id order, `limit` after the cursor `after`.
pub async fn list(
    state: &AppState,
    tenant: &TenantId,
    after: &str,
    limit: i64,
) -> Result<Page<Install>> {
    let pool = &state.db.pool;
    let rows = store::list(pool, tenant, after, limit + 1).await?;
    let page = Page::from_rows(rows, limit, |r| &r.id);
    let mut items = Vec::with_capacity(page.items.len());
    for row in &page.items {
        let (manifest, _) = store::manifest(pool, &row.plugin_id, &row.version).await?;
        items.push(view(state, tenant, row, manifest.kind)?);
    }
    Ok(Page {
        items,
        next_cursor: page.next_cursor,
    })
}

pub async fn get(state: &AppState, tenant: &TenantId, id: &str) -> Result<Install> {
    let pool = &state.db.pool;
    let row = store::find(pool, tenant, id).await?;
    let (manifest, _) = store::manifest(pool, &row.plugin_id, &row.version).await?;
    view(state, tenant, &row, manifest.kind)
}

/// Installs a published version (by default the newest) for the tenant.
pub async fn install(
    state: &AppState,
    caller: &Caller,
    tenant: &TenantId,
    input: NewInstall,
) -> Result<Install> {
    let pool = &state.db.pool;
    let version = match input.version {
        Some(v) => v,
        None => store::latest_version(pool, &input.plugin_id).await?,
    };
    let (manifest, _) = store::manifest(pool, &input.plugin_id, &version).await?;
    let config = input.config.unwrap_or_else(|| json!({}));
    check_against(&manifest, &config, &input.grants, &input.secrets)?;
    let now = now_ms();
    let id = db::new_id();
    let row = InstallRow {
        secrets: seal(state, tenant, &id, &input.secrets)?,
        id,
        plugin_id: manifest.id.clone(),
        version,
        previous_version: None,
        enabled: i64::from(input.enabled),
        keep_failed_inputs: i64::from(input.keep_failed_inputs),
        config: config.to_string(),
        grants: to_column(&input.grants)?,
        limits: None,
        created_at: now,
        updated_at: now,
    };
    let mut tx = state.events.begin().await?;
    store::insert(&mut tx, tenant, &row).await?;
    let change = Change {
        tenant: Some(tenant),
        action: "plugin_install.create",
        target: &row.id,
        before: None,
        after: Some(row.summary()),
    };
    finish(tx, &caller.actor(), change).await?;
    view(state, tenant, &row, manifest.kind)
}

/// A change of an install, checked against the manifest of the version it ends on.
#[derive(Clone, Copy)]
enum Edit<'a> {
    Change(&'a ChangeInstall),
    /// Back to the version before the last upgrade.
    Rollback,
}

/// The columns `edit` writes on the install as `current` has it, and the kind of the version
/// it ends on. It reads the manifest, so it runs before the transaction.
async fn prepare(
    state: &AppState,
    caller: &Caller,
    tenant: &TenantId,
    current: &InstallRow,
    edit: Edit<'_>,
) -> Result<(InstallChanges, PluginKind)> {
    let mut changes = InstallChanges::default();
    let secrets = match edit {
        Edit::Change(input) => {
            if let Some(version) = input.version.as_ref().filter(|v| **v != current.version) {
                changes.version = Some((version.clone(), current.version.clone()));
            }
            changes.config = input.config.as_ref().map(Value::to_string);
            changes.grants = input.grants.as_ref().map(to_column).transpose()?;
            changes.enabled = input.enabled.map(i64::from);
            changes.keep_failed_inputs = input.keep_failed_inputs.map(i64::from);
            if let Some(limits) = &input.limits {
                caller.require_platform()?;
                changes.limits = Some(to_column(limits)?);
            }
            let mut secrets = open_secrets(state, tenant, current)?;
            for (name, value) in input.secrets.iter().flatten() {
                match value {
                    Some(value) => secrets.insert(name.clone(), value.clone()),
                    None => secrets.remove(name),
                };
            }
            secrets
        }
        Edit::Rollback => {
            let Some(previous) = current.previous_version.clone() else {
                return Err(Error::conflict(
                    "nothing_to_roll_back",
                    "this install has not been upgraded",
                ));
            };
            changes.version = Some((previous, current.version.clone()));
            open_secrets(state, tenant, current)?
        }
    };
    let after = changes.applied_to(current, current.updated_at);
    let (manifest, _) = store::manifest(&state.db.pool, &after.plugin_id, &after.version).await?;
    check_against(
        &manifest,
        &stored(&after.config)?,
        &stored(&after.grants)?,
        &secrets,
    )?;
    if let Edit::Change(input) = edit
        && input.secrets.is_some()
    {
        changes.secrets = Some(seal(state, tenant, &current.id, &secrets)?);
    }
    Ok((changes, manifest.kind))
}

/// Prepares `edit` from the install as read outside the transaction, then writes it if the
/// locked install is still as read; if it changed meanwhile, prepares again from the new one.
async fn apply(
    state: &AppState,
    caller: &Caller,
    tenant: &TenantId,
    id: &str,
    edit: Edit<'_>,
) -> Result<Install> {
    let action = match edit {
        Edit::Change(_) => "plugin_install.update",
        Edit::Rollback => "plugin_install.rollback",
    };
    loop {
        let current = store::find(&state.db.pool, tenant, id).await?;
        let (changes, kind) = prepare(state, caller, tenant, &current, edit).await?;
        let mut tx = state.events.begin().await?;
        let for_update = tx.for_update();
        let before = store::lock(&mut tx, tenant, id, for_update).await?;
        if before != current {
            // Changed by another request meanwhile: checked against the wrong state.
            continue;
        }
        let now = now_ms();
        store::update(&mut tx, tenant, id, &changes, now).await?;
        let after = changes.applied_to(&before, now);
        let change = Change {
            tenant: Some(tenant),
            action,
            target: id,
            before: Some(before.summary()),
            after: Some(after.summary()),
        };
        finish(tx, &caller.actor(), change).await?;
        return view(state, tenant, &after, kind);
    }
}

/// Changes what `input` sets; another version is an upgrade (or downgrade) that keeps the
/// current one as the rollback target. Only platform administrators set limits.
pub async fn change(
    state: &AppState,
    caller: &Caller,
    tenant: &TenantId,
    id: &str,
    input: ChangeInstall,
) -> Result<Install> {
    apply(state, caller, tenant, id, Edit::Change(&input)).await
}

/// Returns to the version before the last upgrade; `nothing_to_roll_back` without one.
pub async fn rollback(
    state: &AppState,
    caller: &Caller,
    tenant: &TenantId,
    id: &str,
) -> Result<Install> {
    apply(state, caller, tenant, id, Edit::Rollback).await
}

pub async fn uninstall(
    state: &AppState,
    caller: &Caller,
    tenant: &TenantId,
    id: &str,
) -> Result<()> {
    let mut tx = state.events.begin().await?;
    let for_update = tx.for_update();
    let before = store::lock(&mut tx, tenant, id, for_update).await?;
    store::delete(&mut tx, tenant, id).await?;
    let change = Change {
        tenant: Some(tenant),
        action: "plugin_install.delete",
        target: id,
        before: Some(before.summary()),
        after: None,
    };
    finish(tx, &caller.actor(), change).await
}
