//! The audit log: who changed what in which tenant, with before/after summaries. Entries are
//! written in the same transaction as the change they describe.

use axum::extract::State;
use serde::Serialize;
use serde_json::Value;
use sqlx::FromRow;
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::AppState;
use crate::db::{self, Pool};
use crate::error::Result;
use crate::http::extract::{Json, Query};
use crate::http::guard::Scope;
use crate::types::{Caller, Page, PageParams, TenantId};

/// One audited change.
pub struct Change<'a> {
    pub tenant: Option<&'a TenantId>,
    pub action: &'a str,
    pub target: &'a str,
    pub before: Option<Value>,
    pub after: Option<Value>,
}

/// Appends a change to the log.
/// `actor` names who made the change, as [`Caller::actor`] does.
pub async fn record(conn: &mut sqlx::AnyConnection, actor: &str, change: Change<'_>) -> Result<()> {
    sqlx::query(
        "INSERT INTO audit_log (id, tenant_id, actor, action, target, before, after, at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(db::new_id())
    .bind(change.tenant.map(TenantId::as_str))
    .bind(actor)
    .bind(change.action)
    .bind(change.target)
    .bind(change.before.map(|v| v.to_string()))
    .bind(change.after.map(|v| v.to_string()))
    .bind(db::now_ms())
    .execute(conn)
    .await?;
    Ok(())
}

#[derive(FromRow)]
struct EntryRow {
    id: String,
    tenant_id: Option<String>,
    actor: String,
    action: String,
    target: String,
    before: Option<String>,
    after: Option<String>,
    at: i64,
}

/// An audit entry as the API shows it.
#[derive(Serialize, ToSchema)]
pub struct AuditEntry {
    pub id: String,
    /// Absent for platform-level changes.
    pub tenant_id: Option<String>,
    pub actor: String,
    /// What was done, such as `tenant.create` or `role_assignment.delete`.
    pub action: String,
    /// The id of what was changed.
    pub target: String,
    pub before: Option<Value>,
    pub after: Option<Value>,
    #[schema(value_type = String, format = DateTime)]
    pub at: jiff::Timestamp,
}

impl From<EntryRow> for AuditEntry {
    fn from(r: EntryRow) -> Self {
        let parse = |s: Option<String>| s.and_then(|s| serde_json::from_str(&s).ok());
        Self {
            id: r.id,
            tenant_id: r.tenant_id,
            actor: r.actor,
            action: r.action,
            target: r.target,
            before: parse(r.before),
            after: parse(r.after),
            at: db::timestamp(r.at),
        }
    }
}

async fn list(
    pool: &Pool,
    tenant: Option<&TenantId>,
    page: &PageParams,
) -> Result<Page<AuditEntry>> {
    let limit = page.limit()?;
    let rows: Vec<EntryRow> = match tenant {
        Some(tenant) => {
            sqlx::query_as(
                "SELECT id, tenant_id, actor, action, target, before, after, at FROM audit_log
                 WHERE tenant_id = $1 AND id > $2 ORDER BY id LIMIT $3",
            )
            .bind(tenant.as_str())
            .bind(page.after())
            .bind(limit + 1)
            .fetch_all(pool)
            .await?
        }
        None => {
            sqlx::query_as(
                "SELECT id, tenant_id, actor, action, target, before, after, at FROM audit_log
                 WHERE tenant_id IS NULL AND id > $1 ORDER BY id LIMIT $2",
            )
            .bind(page.after())
            .bind(limit + 1)
            .fetch_all(pool)
            .await?
        }
    };
    Ok(Page::from_rows(rows, limit, |r| &r.id).map(AuditEntry::from))
}

/// The audit log of one tenant, oldest first.
#[utoipa::path(get, path = "/api/v1/tenants/{tenant}/audit", tag = "audit",
    params(("tenant" = String, Path, description = "Tenant id or slug"), PageParams),
    responses((status = 200, body = Page<AuditEntry>)))]
async fn tenant_audit(
    State(state): State<AppState>,
    scope: Scope,
    Query(page): Query<PageParams>,
) -> Result<Json<Page<AuditEntry>>> {
    Ok(Json(
        list(&state.db.pool, Some(&scope.tenant.id), &page).await?,
    ))
}

/// Platform-level changes (tenants created, suspended, deleted), oldest first.
#[utoipa::path(get, path = "/api/v1/audit", tag = "audit", params(PageParams),
    responses((status = 200, body = Page<AuditEntry>)))]
async fn platform_audit(
    State(state): State<AppState>,
    caller: Caller,
    Query(page): Query<PageParams>,
) -> Result<Json<Page<AuditEntry>>> {
    caller.require_platform()?;
    Ok(Json(list(&state.db.pool, None, &page).await?))
}

pub fn tenant_routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(tenant_audit))
}

pub fn platform_routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(platform_audit))
}
