//! The only code that names the `tenants` table.

use sqlx::AnyConnection;

use super::model::{NewTenant, Tenant, TenantChanges, TenantRow, TenantStatus};
use crate::db::{self, Pool, Sql};
use crate::error::{Error, Result};
use crate::types::TenantId;

const COLUMNS: &str = "id, slug, display_name, time_zone, language, status, created_at, updated_at";

/// Finds a tenant by id or slug.
pub async fn find(pool: &Pool, ident: &str) -> Result<Tenant> {
    let row: Option<TenantRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM tenants WHERE id = $1 OR slug = $1"
    )))
    .bind(ident)
    .fetch_optional(pool)
    .await?;
    row.map(Tenant::from).ok_or(Error::NotFound("tenant"))
}

/// Reads a tenant in a write transaction, locking its row (`for_update` from the transaction).
pub async fn lock(conn: &mut AnyConnection, id: &TenantId, for_update: &str) -> Result<Tenant> {
    let row: Option<TenantRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM tenants WHERE id = $1{for_update}"
    )))
    .bind(id)
    .fetch_optional(conn)
    .await?;
    row.map(Tenant::from).ok_or(Error::NotFound("tenant"))
}

pub async fn list(pool: &Pool, after: &str, limit: i64) -> Result<Vec<Tenant>> {
    let rows: Vec<TenantRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM tenants WHERE id > $1 ORDER BY id LIMIT $2"
    )))
    .bind(after)
    .bind(limit)
    .fetch_all(pool)
    .await?;
    Ok(rows.into_iter().map(Tenant::from).collect())
}

fn slug_taken(slug: &str) -> Error {
    Error::conflict("slug_taken", format!("the slug {slug:?} is taken"))
}

pub async fn insert(
    conn: &mut AnyConnection,
    new: &NewTenant,
    display_name: String,
) -> Result<Tenant> {
    let now = db::now_ms();
    let row = TenantRow {
        id: TenantId::from_db(db::new_id()),
        slug: new.slug.to_string(),
        display_name,
        time_zone: new.time_zone.to_string(),
        language: new.language.to_string(),
        status: TenantStatus::Active,
        created_at: now,
        updated_at: now,
    };
    let result = sqlx::query(
        "INSERT INTO tenants (id, slug, display_name, time_zone, language, status, created_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $7)",
    )
    .bind(&row.id)
    .bind(&row.slug)
    .bind(&row.display_name)
    .bind(&row.time_zone)
    .bind(&row.language)
    .bind(row.status.as_str())
    .bind(now)
    .execute(conn)
    .await;
    match result {
        Err(e) if db::is_unique_violation(&e) => Err(slug_taken(&row.slug)),
        Err(e) => Err(e.into()),
        Ok(_) => Ok(row.into()),
    }
}

/// Writes only the fields `changes` sets.
pub async fn update(
    conn: &mut AnyConnection,
    id: &TenantId,
    changes: &TenantChanges,
) -> Result<()> {
    let mut sql = Sql::new("UPDATE tenants SET updated_at = ");
    sql.push_bind(db::now_ms());
    if let Some(slug) = &changes.slug {
        sql.push(", slug = ").push_bind(slug.as_str());
    }
    if let Some(name) = &changes.display_name {
        sql.push(", display_name = ").push_bind(name.as_str());
    }
    if let Some(tz) = &changes.time_zone {
        sql.push(", time_zone = ").push_bind(tz.as_str());
    }
    if let Some(language) = &changes.language {
        sql.push(", language = ").push_bind(language.as_str());
    }
    if let Some(status) = changes.status {
        sql.push(", status = ").push_bind(status.as_str());
    }
    sql.push(" WHERE id = ").push_bind(id);
    match sql.execute(conn).await {
        Err(e) if db::is_unique_violation(&e) => Err(slug_taken(
            changes
                .slug
                .as_ref()
                .map(|s| s.as_str())
                .unwrap_or_default(),
        )),
        Err(e) => Err(e.into()),
        Ok(r) if r.rows_affected() == 0 => Err(Error::NotFound("tenant")),
        Ok(_) => Ok(()),
    }
}

/// Deletes a tenant; everything it owns goes with it (`ON DELETE CASCADE`).
pub async fn delete(conn: &mut AnyConnection, id: &TenantId) -> Result<()> {
    let deleted = sqlx::query("DELETE FROM tenants WHERE id = $1")
        .bind(id)
        .execute(conn)
        .await?;
    if deleted.rows_affected() == 0 {
        return Err(Error::NotFound("tenant"));
    }
    Ok(())
}
