//! The only code that names the `domains` table.

use sqlx::AnyConnection;

use super::model::DomainRow;
use crate::db::{self, Pool};
use crate::error::{Error, Result};
use crate::types::TenantId;

const COLUMNS: &str =
    "id, name, challenge_token, verified_at, created_at, checked_at, failing_since, problem";

pub(super) async fn find(pool: &Pool, tenant: &TenantId, id: &str) -> Result<DomainRow> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM domains WHERE tenant_id = $1 AND id = $2"
    )))
    .bind(tenant)
    .bind(id)
    .fetch_optional(pool)
    .await?
    .ok_or(Error::NotFound("domain"))
}

/// One domain, read in a write transaction and locked until it ends (`for_update` from the
/// transaction).
pub(super) async fn lock(
    conn: &mut AnyConnection,
    tenant: &TenantId,
    id: &str,
    for_update: &str,
) -> Result<DomainRow> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM domains WHERE tenant_id = $1 AND id = $2{for_update}"
    )))
    .bind(tenant)
    .bind(id)
    .fetch_optional(conn)
    .await?
    .ok_or(Error::NotFound("domain"))
}

pub(super) async fn list(
    pool: &Pool,
    tenant: &TenantId,
    after: &str,
    limit: i64,
) -> Result<Vec<DomainRow>> {
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM domains WHERE tenant_id = $1 AND id > $2 ORDER BY id LIMIT $3"
    )))
    .bind(tenant)
    .bind(after)
    .bind(limit)
    .fetch_all(pool)
    .await?)
}

/// The tenant that has verified `name`. Any tenant may add a name; only one can verify it.
pub(super) async fn verified_owner(pool: &Pool, name: &str) -> Result<Option<TenantId>> {
    let owner: Option<(TenantId,)> =
        sqlx::query_as("SELECT tenant_id FROM domains WHERE name = $1 AND verified_at IS NOT NULL")
            .bind(name)
            .fetch_optional(pool)
            .await?;
    Ok(owner.map(|(tenant,)| tenant))
}

/// Adds a pending domain; `domain_exists` when the tenant has added it already.
pub(super) async fn insert(
    conn: &mut AnyConnection,
    tenant: &TenantId,
    row: &DomainRow,
) -> Result<()> {
    let inserted = sqlx::query(
        "INSERT INTO domains (id, tenant_id, name, challenge_token, created_at) VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(&row.id)
    .bind(tenant)
    .bind(&row.name)
    .bind(&row.challenge_token)
    .bind(row.created_at)
    .execute(conn)
    .await;
    match inserted {
        Err(e) if db::is_unique_violation(&e) => Err(Error::conflict(
            "domain_exists",
            format!("{} is already added", row.name),
        )),
        other => other.map(drop).map_err(Error::from),
    }
}

/// Marks a domain verified; `domain_taken` when another tenant has verified the name first.
pub(super) async fn mark_verified(
    conn: &mut AnyConnection,
    tenant: &TenantId,
    row: &DomainRow,
    at: i64,
) -> Result<()> {
    let updated =
        sqlx::query("UPDATE domains SET verified_at = $3, checked_at = $3, failing_since = NULL, problem = NULL WHERE tenant_id = $1 AND id = $2")
            .bind(tenant)
            .bind(&row.id)
            .bind(at)
            .execute(conn)
            .await;
    match updated {
        Err(e) if db::is_unique_violation(&e) => Err(Error::conflict(
            "domain_taken",
            format!("{} is already verified by another tenant", row.name),
        )),
        other => other.map(drop).map_err(Error::from),
    }
}

/// Verified domains of every tenant not checked since `before`, oldest first: the periodic
/// re-verification walks all tenants, and names each one in the writes that follow.
pub(super) async fn due_for_check(
    pool: &Pool,
    before: i64,
    limit: i64,
) -> Result<Vec<(TenantId, String)>> {
    Ok(sqlx::query_as(
        "SELECT tenant_id, id FROM domains WHERE verified_at IS NOT NULL AND COALESCE(checked_at, 0) < $1
         ORDER BY COALESCE(checked_at, 0) LIMIT $2",
    )
    .bind(before)
    .bind(limit)
    .fetch_all(pool)
    .await?)
}

/// The outcome of a check: when it was seen, since when it fails, why, and whether it still
/// serves (`verified_at`).
pub(super) async fn record_check(
    conn: &mut AnyConnection,
    tenant: &TenantId,
    row: &DomainRow,
) -> Result<()> {
    sqlx::query(
        "UPDATE domains SET verified_at = $3, checked_at = $4, failing_since = $5, problem = $6
         WHERE tenant_id = $1 AND id = $2",
    )
    .bind(tenant)
    .bind(&row.id)
    .bind(row.verified_at)
    .bind(row.checked_at)
    .bind(row.failing_since)
    .bind(&row.problem)
    .execute(conn)
    .await?;
    Ok(())
}

pub(super) async fn delete(conn: &mut AnyConnection, tenant: &TenantId, id: &str) -> Result<()> {
    sqlx::query("DELETE FROM domains WHERE tenant_id = $1 AND id = $2")
        .bind(tenant)
        .bind(id)
        .execute(conn)
        .await?;
    Ok(())
}
