//! Run records: every invocation with its tenant, plugin, version, outcome, cost and logs.

use axum::extract::State;
use portico_plugin_runtime::PluginError;
use portico_plugin_runtime::runtime::{LogLine, RunReport};
use serde::{Deserialize, Serialize};
use sqlx::FromRow;
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::AppState;
use crate::db::{self, Pool};
use crate::error::Result;
use crate::http::extract::{Json, Query};
use crate::http::guard::Scope;
use crate::types::{Page, PageParams, TenantId};

/// What ran.
pub struct RunSubject<'a> {
    pub tenant: &'a TenantId,
    pub install_id: Option<&'a str>,
    pub plugin_id: &'a str,
    pub version: &'a str,
    pub kind: &'a str,
}

/// Records an invocation; returns the record's id.
pub async fn record(
    pool: &Pool,
    subject: RunSubject<'_>,
    report: &RunReport,
    error: Option<&PluginError>,
) -> Result<String> {
    let id = db::new_id();
    sqlx::query(
        "INSERT INTO plugin_runs (id, tenant_id, install_id, plugin_id, version, kind, outcome, message, duration_us, fuel_used, logs, created_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
    )
    .bind(&id)
    .bind(subject.tenant)
    .bind(subject.install_id)
    .bind(subject.plugin_id)
    .bind(subject.version)
    .bind(subject.kind)
    .bind(error.map_or("ok", PluginError::code))
    .bind(error.map(|e| e.to_string()))
    .bind(report.duration_us as i64)
    .bind(report.fuel_used.map(|f| f.min(i64::MAX as u64) as i64))
    .bind(serde_json::to_string(&report.logs).unwrap_or_else(|_| "[]".into()))
    .bind(db::now_ms())
    .execute(pool)
    .await?;
    Ok(id)
}

#[derive(FromRow)]
struct RunRow {
    id: String,
    install_id: Option<String>,
    plugin_id: String,
    version: String,
    kind: String,
    outcome: String,
    message: Option<String>,
    duration_us: i64,
    fuel_used: Option<i64>,
    logs: String,
    created_at: i64,
}

#[derive(Serialize, Deserialize, ToSchema)]
pub struct LogLineView {
    pub level: String,
    pub message: String,
}

/// One invocation.
#[derive(Serialize, ToSchema)]
pub struct Run {
    pub id: String,
    pub install_id: Option<String>,
    pub plugin_id: String,
    pub version: String,
    pub kind: String,
    /// `ok`, or an error code such as `plugin_timeout`.
    pub outcome: String,
    pub message: Option<String>,
    pub duration_us: i64,
    /// Instructions used, for kinds with a budget.
    pub fuel_used: Option<i64>,
    /// What the plugin logged, secrets redacted.
    pub logs: Vec<LogLineView>,
    #[schema(value_type = String, format = DateTime)]
    pub at: jiff::Timestamp,
}

impl From<RunRow> for Run {
    fn from(r: RunRow) -> Self {
        Self {
            id: r.id,
            install_id: r.install_id,
            plugin_id: r.plugin_id,
            version: r.version,
            kind: r.kind,
            outcome: r.outcome,
            message: r.message,
            duration_us: r.duration_us,
            fuel_used: r.fuel_used,
            logs: serde_json::from_str(&r.logs).unwrap_or_default(),
            at: db::timestamp(r.created_at),
        }
    }
}

impl From<&LogLine> for LogLineView {
    fn from(l: &LogLine) -> Self {
        Self {
            level: l.level.to_string(),
            message: l.message.clone(),
        }
    }
}

/// Filters of the run list.
#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct RunFilter {
    /// Only runs of this plugin.
    pub plugin_id: Option<String>,
    /// Items per page, 1 to 200 (default 50).
    pub limit: Option<u32>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

/// This tenant's plugin runs, oldest first.
#[utoipa::path(get, path = "/api/v1/tenants/{tenant}/plugin-runs", tag = "plugins",
    params(("tenant" = String, Path, description = "Tenant id or slug"), RunFilter),
    responses((status = 200, body = Page<Run>)))]
async fn list_runs(
    State(state): State<AppState>,
    scope: Scope,
    Query(filter): Query<RunFilter>,
) -> Result<Json<Page<Run>>> {
    let page = PageParams {
        limit: filter.limit,
        cursor: filter.cursor,
    };
    let limit = page.limit()?;
    let rows: Vec<RunRow> = sqlx::query_as(
        "SELECT id, install_id, plugin_id, version, kind, outcome, message, duration_us, fuel_used, logs, created_at
         FROM plugin_runs WHERE tenant_id = $1 AND id > $2 AND (plugin_id = $3 OR $4 = 1) ORDER BY id LIMIT $5",
    )
    .bind(&scope.tenant.id)
    .bind(page.after())
    .bind(filter.plugin_id.as_deref().unwrap_or_default())
    .bind(i64::from(filter.plugin_id.is_none()))
    .bind(limit + 1)
    .fetch_all(&state.db.pool)
    .await?;
    Ok(Json(Page::from_rows(rows, limit, |r| &r.id).map(Run::from)))
}

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(list_runs))
}
