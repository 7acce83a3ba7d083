//! The only writer of `booking_rules`, `profile_booking_rules` and `project_booking_rules`.
//! Every query names the tenant.

use sqlx::AnyConnection;

use super::model::{RuleSet, RuleSetRow};
use super::service::Owner;
use crate::db::{self, Pool};
use crate::error::{Error, Result};
use crate::types::TenantId;

const COLUMNS: &str = "id, definition, calculator_install_id, created_at, updated_at";

fn written(result: std::result::Result<sqlx::any::AnyQueryResult, sqlx::Error>) -> Result<u64> {
    match result {
        Err(e) if db::is_unique_violation(&e) => Err(Error::conflict(
            "name_taken",
            "booking rules with this name exist",
        )),
        Err(e) if db::is_foreign_key_violation(&e) => Err(Error::conflict(
            "rules_in_use",
            "a portal profile or project uses these booking rules; point it elsewhere first",
        )),
        other => Ok(other?.rows_affected()),
    }
}

pub async fn list(pool: &Pool, tenant: &TenantId, after: &str, limit: i64) -> Result<Vec<RuleSet>> {
    let rows: Vec<RuleSetRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM booking_rules WHERE tenant_id = $1 AND id > $2 ORDER BY id LIMIT $3"
    )))
    .bind(tenant)
    .bind(after)
    .bind(limit)
    .fetch_all(pool)
    .await?;
    rows.into_iter().map(RuleSet::try_from).collect()
}

pub async fn find(pool: &Pool, tenant: &TenantId, id: &str) -> Result<RuleSet> {
    let mut conn = pool.acquire().await?;
    lock(&mut conn, tenant, id, "").await
}

/// Reads a rule set; with ` FOR UPDATE` it serialises bookings against it on PostgreSQL.
pub async fn lock(
    conn: &mut AnyConnection,
    tenant: &TenantId,
    id: &str,
    for_update: &str,
) -> Result<RuleSet> {
    let row: Option<RuleSetRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM booking_rules WHERE tenant_id = $1 AND id = $2{for_update}"
    )))
    .bind(tenant)
    .bind(id)
    .fetch_optional(conn)
    .await?;
    row.ok_or(Error::NotFound("booking rules"))?.try_into()
}

pub async fn insert(conn: &mut AnyConnection, tenant: &TenantId, rules: &RuleSet) -> Result<()> {
    let definition = serde_json::to_string(&rules.definition).expect("rules serialise");
    written(
        sqlx::query(
            "INSERT INTO booking_rules (id, tenant_id, name, kind, time_zone, definition, calculator_install_id, created_at, updated_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(&rules.id)
        .bind(tenant)
        .bind(&rules.definition.name)
        .bind(rules.definition.source.kind())
        .bind(&rules.definition.time_zone)
        .bind(definition)
        .bind(&rules.definition.calculator_install_id)
        .bind(rules.created_at.as_millisecond())
        .bind(rules.updated_at.as_millisecond())
        .execute(conn)
        .await,
    )?;
    Ok(())
}

pub async fn replace(conn: &mut AnyConnection, tenant: &TenantId, rules: &RuleSet) -> Result<()> {
    let definition = serde_json::to_string(&rules.definition).expect("rules serialise");
    written(
        sqlx::query(
            "UPDATE booking_rules SET name = $3, kind = $4, time_zone = $5, definition = $6,
             calculator_install_id = $7, updated_at = $8 WHERE tenant_id = $1 AND id = $2",
        )
        .bind(tenant)
        .bind(&rules.id)
        .bind(&rules.definition.name)
        .bind(rules.definition.source.kind())
        .bind(&rules.definition.time_zone)
        .bind(definition)
        .bind(&rules.definition.calculator_install_id)
        .bind(rules.updated_at.as_millisecond())
        .execute(conn)
        .await,
    )?;
    Ok(())
}

pub async fn delete(conn: &mut AnyConnection, tenant: &TenantId, id: &str) -> Result<()> {
    let deleted = written(
        sqlx::query("DELETE FROM booking_rules WHERE tenant_id = $1 AND id = $2")
            .bind(tenant)
            .bind(id)
            .execute(conn)
            .await,
    )?;
    if deleted == 0 {
        return Err(Error::NotFound("booking rules"));
    }
    Ok(())
}

fn owner_table(owner: Owner<'_>) -> (&'static str, &'static str, &str) {
    match owner {
        Owner::Profile(id) => ("profile_booking_rules", "profile_id", id),
        Owner::Project(id) => ("project_booking_rules", "project_id", id),
    }
}

/// The rules a profile or project names, if any.
pub async fn assigned(
    conn: &mut AnyConnection,
    tenant: &TenantId,
    owner: Owner<'_>,
) -> Result<Option<String>> {
    let (table, column, id) = owner_table(owner);
    let row: Option<(String,)> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT rules_id FROM {table} WHERE tenant_id = $1 AND {column} = $2"
    )))
    .bind(tenant)
    .bind(id)
    .fetch_optional(conn)
    .await?;
    Ok(row.map(|(id,)| id))
}

/// Names the rules a profile or project offers (`None`: none of its own).
pub async fn assign(
    conn: &mut AnyConnection,
    tenant: &TenantId,
    owner: Owner<'_>,
    rules: Option<&str>,
) -> Result<()> {
    let (table, column, id) = owner_table(owner);
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "DELETE FROM {table} WHERE tenant_id = $1 AND {column} = $2"
    )))
    .bind(tenant)
    .bind(id)
    .execute(&mut *conn)
    .await?;
    if let Some(rules) = rules {
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "INSERT INTO {table} ({column}, tenant_id, rules_id) VALUES ($1, $2, $3)"
        )))
        .bind(id)
        .bind(tenant)
        .bind(rules)
        .execute(conn)
        .await?;
    }
    Ok(())
}
