//! Installs prepared to run: the compiled plugin with the install's limits, grants,
//! configuration and opened secrets, kept in [`crate::plugins::Plugins::runnables`] so that pages
//! rendered by a theme do not read the install, its manifest and its secrets on every request.

use std::sync::Arc;

use portico_plugin_runtime::outbound::Grants;
use portico_plugin_runtime::runtime::{Call, LoadedPlugin};
use portico_plugin_runtime::{Limits, LimitsOverride, PluginKind};

use super::installs::open_secrets;
use super::model::{RunSubject, stored};
use super::store;
use crate::AppState;
use crate::error::{Error, Result};
use crate::events::{BoxFuture, Event, Recorded, Subscriber};
use crate::types::TenantId;

/// An enabled install ready to run: its compiled plugin, limits, grants, configuration and
/// secrets.
pub struct Runnable {
    pub tenant: TenantId,
    pub install_id: String,
    pub plugin_id: String,
    pub version: String,
    pub kind: PluginKind,
    pub plugin: Arc<LoadedPlugin>,
    limits: Limits,
    grants: Grants,
    config: String,
    secrets: Vec<(String, String)>,
    keep_failed_inputs: bool,
}

impl Runnable {
    /// The call, under the install's production limits.
    pub fn call<'a>(&'a self, idempotency_key: &'a str) -> Call<'a> {
        Call {
            limits: &self.limits,
            grants: self.grants.clone(),
            config: &self.config,
            secrets: &self.secrets,
            idempotency_key,
            tenant: self.tenant.as_str(),
        }
    }

    /// The tenant's configuration of the install (JSON).
    pub fn config(&self) -> &str {
        &self.config
    }

    /// What a run record names.
    pub fn subject<'a>(&'a self, tenant: &'a TenantId) -> RunSubject<'a> {
        RunSubject {
            tenant,
            install_id: Some(&self.install_id),
            plugin_id: &self.plugin_id,
            version: &self.version,
            kind: self.kind.as_str(),
            keep_input_with: self.keep_failed_inputs.then_some(self.config.as_str()),
        }
    }
}

/// Prepared installs by tenant and install id.
pub type RunnableCache = moka::future::Cache<(TenantId, String), Arc<Runnable>>;

/// Drops every prepared install when any install changes (rare), on every replica.
pub struct DropPreparedInstalls(pub RunnableCache);

impl Subscriber for DropPreparedInstalls {
    fn notify<'a>(&'a self, event: &'a Recorded) -> BoxFuture<'a, ()> {
        if event.event == Event::PluginInstallChanged {
            self.0.invalidate_all();
        }
        Box::pin(async {})
    }
}

/// [`runnable`], through [`crate::plugins::Plugins::runnables`].
pub async fn runnable_cached(
    state: &AppState,
    tenant: &TenantId,
    id: &str,
) -> Result<Arc<Runnable>> {
    state
        .plugins
        .runnables
        .try_get_with((tenant.clone(), id.to_string()), async {
            runnable(state, tenant, id).await.map(Arc::new)
        })
        .await
        .map_err(|e| match Arc::try_unwrap(e) {
            Ok(error) => error,
            Err(shared) => Error::Internal(anyhow::anyhow!("preparing an install: {shared}")),
        })
}

/// Prepares one of the tenant's installs to run; a disabled install is a conflict.
pub async fn runnable(state: &AppState, tenant: &TenantId, id: &str) -> Result<Runnable> {
    let row = store::find(&state.db.pool, tenant, id).await?;
    if row.enabled == 0 {
        return Err(Error::conflict(
            "plugin_disabled",
            "this install is disabled",
        ));
    }
    let (manifest, sha256) = store::manifest(&state.db.pool, &row.plugin_id, &row.version).await?;
    let plugin = state
        .plugins
        .loaded(&state.db.pool, manifest.kind, &sha256)
        .await?;
    let own_limits: Option<LimitsOverride> = row.limits.as_deref().map(stored).transpose()?;
    Ok(Runnable {
        tenant: tenant.clone(),
        limits: state.plugins.limits(manifest.kind, own_limits.as_ref()),
        grants: stored(&row.grants)?,
        secrets: open_secrets(state, tenant, &row)?.into_iter().collect(),
        kind: manifest.kind,
        plugin,
        install_id: row.id,
        plugin_id: row.plugin_id,
        version: row.version,
        config: row.config,
        keep_failed_inputs: row.keep_failed_inputs != 0,
    })
}
