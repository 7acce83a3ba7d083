//! A tenant's plugin installs: which version, its configuration (checked against the
//! manifest's schema), encrypted secrets, approved capabilities, enabled or not. Upgrades keep
//! the previous version for one-step rollback.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use portico_plugin_runtime::input;
use portico_plugin_runtime::manifest::Manifest;
use portico_plugin_runtime::outbound::Grants;
use portico_plugin_runtime::runtime::{Call, LoadedPlugin};
use portico_plugin_runtime::{Limits, LimitsOverride, PluginKind};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sqlx::FromRow;
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};

use super::registry;
use super::runs::{self, LogLineView, RunSubject};
use crate::AppState;
use crate::audit::{self, Change};
use crate::db::{self, Pool, now_ms};
use crate::error::{Error, Result};
use crate::events::{BoxFuture, Event, Recorded, Subscriber};
use crate::http::extract::{Json, Path, Query};
use crate::http::guard::Scope;
use crate::types::{Page, PageParams, TenantId};

#[derive(Clone, FromRow)]
struct InstallRow {
    id: String,
    plugin_id: String,
    version: String,
    previous_version: Option<String>,
    enabled: i64,
    config: String,
    grants: String,
    secrets: Option<Vec<u8>>,
    limits: Option<String>,
    created_at: i64,
    updated_at: i64,
}

const COLUMNS: &str = "id, plugin_id, version, previous_version, enabled, config, grants, secrets, limits, created_at, updated_at";

/// An install as the API shows it. Secret values are never shown, only which are set.
#[derive(Serialize, ToSchema)]
pub struct Install {
    pub id: String,
    pub plugin_id: String,
    pub version: String,
    /// What `rollback` returns to.
    pub previous_version: Option<String>,
    pub kind: PluginKind,
    pub enabled: bool,
    #[schema(value_type = Object)]
    pub config: Value,
    /// Approved capabilities.
    pub grants: Grants,
    /// Names of the secrets that are set.
    pub secrets_set: Vec<String>,
    /// Limits a platform administrator set for this install.
    pub limits: Option<LimitsOverride>,
    #[schema(value_type = String, format = DateTime)]
    pub created_at: jiff::Timestamp,
    #[schema(value_type = String, format = DateTime)]
    pub updated_at: jiff::Timestamp,
}

fn context(tenant: &TenantId, install: &str) -> String {
    format!("{tenant}/{install}")
}

fn stored<T: serde::de::DeserializeOwned>(text: &str) -> Result<T> {
    serde_json::from_str(text)
        .map_err(|e| Error::Internal(anyhow::anyhow!("stored install field: {e}")))
}

impl InstallRow {
    fn secrets(&self, state: &AppState, tenant: &TenantId) -> Result<BTreeMap<String, String>> {
        match &self.secrets {
            None => Ok(BTreeMap::new()),
            Some(sealed) => {
                let plain = state
                    .plugins
                    .secrets
                    .open(&context(tenant, &self.id), sealed)?;
                serde_json::from_slice(&plain).map_err(|e| Error::Internal(e.into()))
            }
        }
    }

    fn view(&self, state: &AppState, tenant: &TenantId, kind: PluginKind) -> Result<Install> {
        Ok(Install {
            id: self.id.clone(),
            plugin_id: self.plugin_id.clone(),
            version: self.version.clone(),
            previous_version: self.previous_version.clone(),
            kind,
            enabled: self.enabled != 0,
            config: stored(&self.config)?,
            grants: stored(&self.grants)?,
            secrets_set: self.secrets(state, tenant)?.into_keys().collect(),
            limits: self.limits.as_deref().map(stored).transpose()?,
            created_at: db::timestamp(self.created_at),
            updated_at: db::timestamp(self.updated_at),
        })
    }

    /// What the audit log keeps: everything but secret values.
    fn summary(&self) -> Value {
        json!({"plugin_id": self.plugin_id, "version": self.version, "enabled": self.enabled != 0,
               "config": serde_json::from_str::<Value>(&self.config).unwrap_or_default(),
               "grants": serde_json::from_str::<Value>(&self.grants).unwrap_or_default()})
    }
}

async fn find(pool: &Pool, tenant: &TenantId, id: &str) -> Result<InstallRow> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM plugin_installs WHERE tenant_id = $1 AND id = $2"
    )))
    .bind(tenant)
    .bind(id)
    .fetch_optional(pool)
    .await?
    .ok_or(Error::NotFound("plugin install"))
}

/// Checks configuration, grants and secret names against a version's manifest.
fn check_against(
    manifest: &Manifest,
    config: &Value,
    grants: &Grants,
    secrets: &BTreeMap<String, String>,
) -> Result<()> {
    manifest
        .check_config(config)
        .map_err(|e| Error::invalid("invalid_config", e.0))?;
    if !grants.is_within(&manifest.capabilities) {
        return Err(Error::invalid(
            "capability_not_requested",
            format!(
                "grants must be among the capabilities {} {} asks for",
                manifest.id, manifest.version
            ),
        ));
    }
    if let Some(unknown) = secrets.keys().find(|k| !manifest.secrets.contains(k)) {
        return Err(Error::invalid(
            "unknown_secret",
            format!("{} does not use a secret called {unknown:?}", manifest.id),
        ));
    }
    Ok(())
}

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

/// The kind of plugin an install of the tenant runs (`None`: no such install).
pub async fn kind_of(pool: &Pool, tenant: &TenantId, install: &str) -> Result<Option<String>> {
    let kind: Option<(String,)> = sqlx::query_as(
        "SELECT p.kind FROM plugin_installs i JOIN plugin_packages p ON p.plugin_id = i.plugin_id AND p.version = i.version
         WHERE i.tenant_id = $1 AND i.id = $2",
    )
    .bind(tenant)
    .bind(install)
    .fetch_optional(pool)
    .await?;
    Ok(kind.map(|(kind,)| kind))
}

/// The id of the tenant's install of `plugin` (a tenant installs a plugin at most once).
pub async fn install_of(pool: &Pool, tenant: &TenantId, plugin: &str) -> Result<Option<String>> {
    let id: Option<(String,)> =
        sqlx::query_as("SELECT id FROM plugin_installs WHERE tenant_id = $1 AND plugin_id = $2")
            .bind(tenant)
            .bind(plugin)
            .fetch_optional(pool)
            .await?;
    Ok(id.map(|(id,)| id))
}

async fn save(conn: &mut sqlx::AnyConnection, tenant: &TenantId, row: &InstallRow) -> Result<()> {
    sqlx::query(
        "UPDATE plugin_installs SET version = $3, previous_version = $4, enabled = $5, config = $6, grants = $7,
         secrets = $8, limits = $9, updated_at = $10 WHERE tenant_id = $1 AND id = $2",
    )
    .bind(tenant)
    .bind(&row.id)
    .bind(&row.version)
    .bind(&row.previous_version)
    .bind(row.enabled)
    .bind(&row.config)
    .bind(&row.grants)
    .bind(row.secrets.clone())
    .bind(&row.limits)
    .bind(row.updated_at)
    .execute(conn)
    .await?;
    Ok(())
}

#[utoipa::path(get, path = "/api/v1/tenants/{tenant}/plugins", tag = "plugins",
    params(("tenant" = String, Path, description = "Tenant id or slug"), PageParams),
    responses((status = 200, body = Page<Install>)))]
async fn list_installs(
    State(state): State<AppState>,
    scope: Scope,
    Query(page): Query<PageParams>,
) -> Result<Json<Page<Install>>> {
    let limit = page.limit()?;
    let tenant = &scope.tenant.id;
    let rows: Vec<InstallRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM plugin_installs WHERE tenant_id = $1 AND id > $2 ORDER BY id LIMIT $3"
    )))
    .bind(tenant)
    .bind(page.after())
    .bind(limit + 1)
    .fetch_all(&state.db.pool)
    .await?;
    let page = Page::from_rows(rows, limit, |r| &r.id);
    let mut items = Vec::with_capacity(page.items.len());
    for row in &page.items {
        let (manifest, _) =
            registry::manifest(&state.db.pool, &row.plugin_id, &row.version).await?;
        items.push(row.view(&state, tenant, manifest.kind)?);
    }
    Ok(Json(Page {
        items,
        next_cursor: page.next_cursor,
    }))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewInstall {
    pub plugin_id: String,
    /// Defaults to the newest published version.
    pub version: Option<String>,
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub config: Option<Value>,
    /// Capabilities to approve, among those the manifest asks for.
    #[serde(default)]
    pub grants: Grants,
    /// Secret values by name; stored encrypted and never shown again.
    #[serde(default)]
    pub secrets: BTreeMap<String, String>,
    #[serde(default = "yes")]
    pub enabled: bool,
}

fn yes() -> bool {
    true
}

#[utoipa::path(post, path = "/api/v1/tenants/{tenant}/plugins", tag = "plugins",
    params(("tenant" = String, Path, description = "Tenant id or slug")),
    request_body = NewInstall,
    responses((status = 201, body = Install)))]
async fn install(
    State(state): State<AppState>,
    scope: Scope,
    Json(input): Json<NewInstall>,
) -> Result<(StatusCode, Json<Install>)> {
    let tenant = &scope.tenant.id;
    let version = match input.version {
        Some(v) => v,
        None => registry::latest_version(&state.db.pool, &input.plugin_id).await?,
    };
    let (manifest, _) = registry::manifest(&state.db.pool, &input.plugin_id, &version).await?;
    let config = input.config.unwrap_or_else(|| json!({}));
    check_against(&manifest, &config, &input.grants, &input.secrets)?;
    let now = now_ms();
    let id = db::new_id();
    let row = InstallRow {
        secrets: seal(&state, tenant, &id, &input.secrets)?,
        id,
        plugin_id: manifest.id.clone(),
        version,
        previous_version: None,
        enabled: i64::from(input.enabled),
        config: config.to_string(),
        grants: serde_json::to_string(&input.grants).map_err(|e| Error::Internal(e.into()))?,
        limits: None,
        created_at: now,
        updated_at: now,
    };
    let mut tx = state.events.begin().await?;
    let inserted = sqlx::query(
        "INSERT INTO plugin_installs (id, tenant_id, plugin_id, version, enabled, config, grants, secrets, created_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $9)",
    )
    .bind(&row.id)
    .bind(tenant)
    .bind(&row.plugin_id)
    .bind(&row.version)
    .bind(row.enabled)
    .bind(&row.config)
    .bind(&row.grants)
    .bind(row.secrets.clone())
    .bind(now)
    .execute(&mut *tx)
    .await;
    match inserted {
        Err(e) if db::is_unique_violation(&e) => {
            return Err(Error::conflict(
                "already_installed",
                format!(
                    "{} is already installed; change or upgrade that install",
                    manifest.id
                ),
            ));
        }
        other => other?,
    };
    let change = Change {
        tenant: Some(tenant),
        action: "plugin_install.create",
        target: &row.id,
        before: None,
        after: Some(row.summary()),
    };
    let actor = scope.caller.actor();
    audit::record(&mut tx, &actor, change).await?;
    tx.emit(Some(tenant), &row.id, &actor, Event::PluginInstallChanged)
        .await?;
    tx.commit().await?;
    Ok((
        StatusCode::CREATED,
        Json(row.view(&state, tenant, manifest.kind)?),
    ))
}

#[utoipa::path(get, path = "/api/v1/tenants/{tenant}/plugins/{install}", tag = "plugins",
    params(("tenant" = String, Path, description = "Tenant id or slug"), ("install" = String, Path)),
    responses((status = 200, body = Install)))]
async fn get_install(
    State(state): State<AppState>,
    scope: Scope,
    Path((_, id)): Path<(String, String)>,
) -> Result<Json<Install>> {
    let row = find(&state.db.pool, &scope.tenant.id, &id).await?;
    let (manifest, _) = registry::manifest(&state.db.pool, &row.plugin_id, &row.version).await?;
    Ok(Json(row.view(&state, &scope.tenant.id, manifest.kind)?))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChangeInstall {
    /// Another published version: an upgrade (or downgrade); the current one becomes the
    /// rollback target.
    pub version: Option<String>,
    #[schema(value_type = Option<Object>)]
    pub config: Option<Value>,
    pub grants: Option<Grants>,
    /// Secrets to set; a `null` value removes one.
    pub secrets: Option<BTreeMap<String, Option<String>>>,
    pub enabled: Option<bool>,
    /// Platform administrators only.
    pub limits: Option<LimitsOverride>,
}

/// Applies a change (or a rollback) to an install after checking it against the target
/// version's manifest, and records it.
async fn apply(
    state: &AppState,
    scope: &Scope,
    before: InstallRow,
    mut after: InstallRow,
    secrets: &BTreeMap<String, String>,
    action: &str,
) -> Result<Install> {
    let tenant = &scope.tenant.id;
    let (manifest, _) =
        registry::manifest(&state.db.pool, &after.plugin_id, &after.version).await?;
    check_against(
        &manifest,
        &stored(&after.config)?,
        &stored(&after.grants)?,
        secrets,
    )?;
    after.secrets = seal(state, tenant, &after.id, secrets)?;
    after.updated_at = now_ms();
    let mut tx = state.events.begin().await?;
    save(&mut tx, tenant, &after).await?;
    let change = Change {
        tenant: Some(tenant),
        action,
        target: &after.id,
        before: Some(before.summary()),
        after: Some(after.summary()),
    };
    let actor = scope.caller.actor();
    audit::record(&mut tx, &actor, change).await?;
    tx.emit(Some(tenant), &after.id, &actor, Event::PluginInstallChanged)
        .await?;
    tx.commit().await?;
    after.view(state, tenant, manifest.kind)
}

#[utoipa::path(patch, path = "/api/v1/tenants/{tenant}/plugins/{install}", tag = "plugins",
    params(("tenant" = String, Path, description = "Tenant id or slug"), ("install" = String, Path)),
    request_body = ChangeInstall,
    responses((status = 200, body = Install)))]
async fn change_install(
    State(state): State<AppState>,
    scope: Scope,
    Path((_, id)): Path<(String, String)>,
    Json(input): Json<ChangeInstall>,
) -> Result<Json<Install>> {
    let tenant = &scope.tenant.id;
    let before = find(&state.db.pool, tenant, &id).await?;
    let mut after = before.clone();
    if let Some(version) = input.version.filter(|v| *v != before.version) {
        after.previous_version = Some(before.version.clone());
        after.version = version;
    }
    if let Some(config) = input.config {
        after.config = config.to_string();
    }
    if let Some(grants) = input.grants {
        after.grants = serde_json::to_string(&grants).map_err(|e| Error::Internal(e.into()))?;
    }
    if let Some(enabled) = input.enabled {
        after.enabled = i64::from(enabled);
    }
    if let Some(limits) = input.limits {
        scope.caller.require_platform()?;
        after.limits = Some(serde_json::to_string(&limits).map_err(|e| Error::Internal(e.into()))?);
    }
    let mut secrets = before.secrets(&state, tenant)?;
    for (name, value) in input.secrets.unwrap_or_default() {
        match value {
            Some(value) => secrets.insert(name, value),
            None => secrets.remove(&name),
        };
    }
    Ok(Json(
        apply(
            &state,
            &scope,
            before,
            after,
            &secrets,
            "plugin_install.update",
        )
        .await?,
    ))
}

/// Returns to the version before the last upgrade.
#[utoipa::path(post, path = "/api/v1/tenants/{tenant}/plugins/{install}/rollback", tag = "plugins",
    params(("tenant" = String, Path, description = "Tenant id or slug"), ("install" = String, Path)),
    responses((status = 200, body = Install), (status = 409, body = crate::error::ErrorBody)))]
async fn rollback(
    State(state): State<AppState>,
    scope: Scope,
    Path((_, id)): Path<(String, String)>,
) -> Result<Json<Install>> {
    let tenant = &scope.tenant.id;
    let before = find(&state.db.pool, tenant, &id).await?;
    let Some(previous) = before.previous_version.clone() else {
        return Err(Error::conflict(
            "nothing_to_roll_back",
            "this install has not been upgraded",
        ));
    };
    let after = InstallRow {
        version: previous,
        previous_version: Some(before.version.clone()),
        ..before.clone()
    };
    let secrets = before.secrets(&state, tenant)?;
    Ok(Json(
        apply(
            &state,
            &scope,
            before,
            after,
            &secrets,
            "plugin_install.rollback",
        )
        .await?,
    ))
}

#[utoipa::path(delete, path = "/api/v1/tenants/{tenant}/plugins/{install}", tag = "plugins",
    params(("tenant" = String, Path, description = "Tenant id or slug"), ("install" = String, Path)),
    responses((status = 204)))]
async fn uninstall(
    State(state): State<AppState>,
    scope: Scope,
    Path((_, id)): Path<(String, String)>,
) -> Result<StatusCode> {
    let tenant = &scope.tenant.id;
    let before = find(&state.db.pool, tenant, &id).await?;
    let mut tx = state.events.begin().await?;
    sqlx::query("DELETE FROM plugin_installs WHERE tenant_id = $1 AND id = $2")
        .bind(tenant)
        .bind(&id)
        .execute(&mut *tx)
        .await?;
    let change = Change {
        tenant: Some(tenant),
        action: "plugin_install.delete",
        target: &id,
        before: Some(before.summary()),
        after: None,
    };
    let actor = scope.caller.actor();
    audit::record(&mut tx, &actor, change).await?;
    tx.emit(Some(tenant), &id, &actor, Event::PluginInstallChanged)
        .await?;
    tx.commit().await?;
    Ok(StatusCode::NO_CONTENT)
}

/// An enabled install ready to run: its compiled plugin, limits, grants, configuration and
/// secrets.
pub struct Runnable {
    pub install_id: String,
    pub plugin_id: String,
    pub version: String,
    pub kind: PluginKind,
    pub plugin: Arc<LoadedPlugin>,
    limits: Limits,
    grants: Grants,
    config: String,
    secrets: Vec<(String, String)>,
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
    let row = find(&state.db.pool, tenant, id).await?;
    if row.enabled == 0 {
        return Err(Error::conflict(
            "plugin_disabled",
            "this install is disabled",
        ));
    }
    let (manifest, sha256) =
        registry::manifest(&state.db.pool, &row.plugin_id, &row.version).await?;
    let plugin = state
        .plugins
        .loaded(&state.db.pool, manifest.kind, &sha256)
        .await?;
    let own_limits: Option<LimitsOverride> = row.limits.as_deref().map(stored).transpose()?;
    Ok(Runnable {
        limits: state.plugins.limits(manifest.kind, own_limits.as_ref()),
        grants: stored(&row.grants)?,
        secrets: row.secrets(state, tenant)?.into_iter().collect(),
        kind: manifest.kind,
        plugin,
        install_id: row.id,
        plugin_id: row.plugin_id,
        version: row.version,
        config: row.config,
    })
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct InvokeRequest {
    /// The input of the plugin's kind, as JSON (see the plugin documentation).
    #[schema(value_type = Object)]
    pub input: Value,
    /// Defaults to a fresh id.
    pub idempotency_key: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct InvokeResult {
    /// `ok`, or the error code, such as `plugin_timeout`.
    pub outcome: String,
    pub message: Option<String>,
    #[schema(value_type = Option<Object>)]
    pub output: Option<Value>,
    /// The run record.
    pub run_id: String,
    pub duration_us: u64,
    pub fuel_used: Option<u64>,
    pub logs: Vec<LogLineView>,
}

/// Runs the installed plugin once on the given input, under its production limits, and records
/// the run. A plugin's failure is a result here, not an API error.
#[utoipa::path(post, path = "/api/v1/tenants/{tenant}/plugins/{install}/invoke", tag = "plugins",
    params(("tenant" = String, Path, description = "Tenant id or slug"), ("install" = String, Path)),
    request_body = InvokeRequest,
    responses((status = 200, body = InvokeResult)))]
async fn invoke(
    State(state): State<AppState>,
    scope: Scope,
    Path((_, id)): Path<(String, String)>,
    Json(request): Json<InvokeRequest>,
) -> Result<Json<InvokeResult>> {
    let tenant = &scope.tenant.id;
    let runnable = runnable(&state, tenant, &id).await?;
    let key = request.idempotency_key.unwrap_or_else(db::new_id);
    let (result, report) = input::execute(
        &state.plugins.runtime,
        &runnable.plugin,
        runnable.call(&key),
        request.input,
    )
    .await
    .map_err(|e| Error::invalid("invalid_input", e.0))?;
    let subject = runnable.subject(tenant);
    let run_id = runs::record(&state.db.pool, subject, &report, result.as_ref().err()).await?;
    let (outcome, message, output) = match result {
        Ok(output) => ("ok".to_string(), None, Some(output)),
        Err(e) => (e.code().to_string(), Some(e.to_string()), None),
    };
    Ok(Json(InvokeResult {
        outcome,
        message,
        output,
        run_id,
        duration_us: report.duration_us,
        fuel_used: report.fuel_used,
        logs: report.logs.iter().map(LogLineView::from).collect(),
    }))
}

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_installs, install))
        .routes(routes!(get_install, change_install, uninstall))
        .routes(routes!(rollback))
        .routes(routes!(invoke))
}
