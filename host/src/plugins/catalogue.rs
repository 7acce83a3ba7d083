//! Catalogue operations: packages uploaded by platform administrators (or built into the host)
//! are validated on upload and immutable once published.

use serde_json::json;

use super::model::{PackageRow, PluginVersion};
use super::store;
use crate::AppState;
use crate::audit::{self, Change};
use crate::db::{self, now_ms};
use crate::error::{Error, Result};
use crate::events::Event;
use crate::types::Caller;

/// Validates a package (manifest, world, compilation) and adds it to the catalogue with its
/// audit entry; `version_exists` when that version is catalogued already.
async fn add(state: &AppState, package: &[u8], actor: &str) -> Result<PackageRow> {
    let (manifest, text, plugin) = state
        .plugins
        .runtime
        .check_package(package)
        .map_err(|why| Error::invalid("invalid_package", why))?;
    let row = PackageRow {
        id: db::new_id(),
        manifest: text,
        sha256: plugin.sha256.clone(),
        size: package.len() as i64,
        created_at: now_ms(),
    };
    let mut tx = state.events.begin().await?;
    if !store::insert_package(&mut tx, &manifest, &row, package).await? {
        return Err(Error::conflict(
            "version_exists",
            format!(
                "{} {} is already published; versions are immutable, publish a new one",
                manifest.id, manifest.version
            ),
        ));
    }
    let change = Change {
        tenant: None,
        action: "plugin.publish",
        target: &row.id,
        before: None,
        after: Some(
            json!({"plugin_id": manifest.id, "version": manifest.version, "sha256": row.sha256}),
        ),
    };
    audit::record(&mut tx, actor, change).await?;
    let subject = format!("{}@{}", manifest.id, manifest.version);
    tx.emit(None, &subject, actor, Event::PluginPublished)
        .await?;
    tx.commit().await?;
    Ok(row)
}

/// Publishes a package: the manifest is checked, the component is compiled and checked against
/// its world, and the version becomes immutable. Platform administrators only.
pub async fn publish(state: &AppState, caller: &Caller, package: &[u8]) -> Result<PluginVersion> {
    caller.require_platform()?;
    add(state, package, &caller.actor()).await?.view()
}

/// Publishes a built-in package at start-up unless that version is catalogued already (by this
/// or another replica).
pub async fn publish_built_in(state: &AppState, package: &[u8]) -> anyhow::Result<()> {
    match add(state, package, "built-in plugins").await {
        Ok(_)
        | Err(Error::Conflict {
            code: "version_exists",
            ..
        }) => Ok(()),
        Err(e) => Err(e.into()),
    }
}
