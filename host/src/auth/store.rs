//! The only code that names the `staff_users` and `api_tokens` tables.

use sqlx::{AnyConnection, FromRow};

use super::model::{StaffUser, TokenRecord};
use crate::db::{self, Pool, now_ms};
use crate::error::{Error, Result};
use crate::types::{Caller, Email, Principal, TenantId, hash_token};

#[derive(FromRow)]
struct TokenRow {
    id: String,
    name: String,
    tenant_id: Option<String>,
    user_id: Option<String>,
    email: Option<String>,
    disabled: Option<i64>,
}

/// Resolves a presented bearer token to its caller: unknown, expired, revoked tokens and tokens
/// of disabled users are all simply unauthorised.
pub async fn authenticate(pool: &Pool, token: &str) -> Result<Caller> {
    let row: Option<TokenRow> = sqlx::query_as(
        "SELECT t.id, t.name, t.tenant_id, t.user_id, u.email, u.disabled
         FROM api_tokens t LEFT JOIN staff_users u ON u.id = t.user_id AND u.tenant_id = t.tenant_id
         WHERE t.token_hash = $1 AND t.revoked_at IS NULL AND (t.expires_at IS NULL OR t.expires_at > $2)",
    )
    .bind(hash_token(token))
    .bind(now_ms())
    .fetch_optional(pool)
    .await?;
    let row = row.ok_or(Error::Unauthorized)?;
    let principal = match (row.tenant_id, row.user_id, row.email) {
        (None, None, _) => Principal::Platform {
            token_name: row.name,
        },
        (Some(tenant_id), Some(user_id), Some(email)) if row.disabled == Some(0) => {
            Principal::Staff {
                tenant_id: TenantId::from_db(tenant_id),
                user_id,
                email,
            }
        }
        _ => return Err(Error::Unauthorized),
    };
    Ok(Caller {
        token_id: row.id,
        principal,
    })
}

/// Creates a staff user; the email is unique within the tenant.
pub async fn create_user(
    conn: &mut sqlx::AnyConnection,
    tenant: &TenantId,
    email: &Email,
    display_name: &str,
    password_hash: Option<&str>,
) -> Result<StaffUser> {
    let id = db::new_id();
    let now = now_ms();
    let result = sqlx::query(
        "INSERT INTO staff_users (id, tenant_id, email, display_name, password_hash, disabled, created_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, 0, $6, $6)",
    )
    .bind(&id)
    .bind(tenant.as_str())
    .bind(email.as_str())
    .bind(display_name)
    .bind(password_hash)
    .bind(now)
    .execute(&mut *conn)
    .await;
    match result {
        Err(e) if db::is_unique_violation(&e) => Err(Error::conflict(
            "email_taken",
            format!("a staff user with email {email} already exists"),
        )),
        Err(e) => Err(e.into()),
        Ok(_) => Ok(StaffUser {
            id,
            email: email.to_string(),
            display_name: display_name.to_string(),
            disabled: 0,
            created_at: now,
        }),
    }
}

pub async fn find_user(pool: &Pool, tenant: &TenantId, user_id: &str) -> Result<StaffUser> {
    sqlx::query_as(
        "SELECT id, email, display_name, disabled, created_at FROM staff_users WHERE tenant_id = $1 AND id = $2",
    )
    .bind(tenant.as_str())
    .bind(user_id)
    .fetch_optional(pool)
    .await?
    .ok_or(Error::NotFound("staff user"))
}

pub async fn find_user_by_email(
    pool: &Pool,
    tenant: &TenantId,
    email: &Email,
) -> Result<StaffUser> {
    sqlx::query_as(
        "SELECT id, email, display_name, disabled, created_at FROM staff_users WHERE tenant_id = $1 AND email = $2",
    )
    .bind(tenant.as_str())
    .bind(email.as_str())
    .fetch_optional(pool)
    .await?
    .ok_or(Error::NotFound("staff user"))
}

pub async fn list_users(
    pool: &Pool,
    tenant: &TenantId,
    after: &str,
    limit: i64,
) -> Result<Vec<StaffUser>> {
    Ok(sqlx::query_as(
        "SELECT id, email, display_name, disabled, created_at FROM staff_users
         WHERE tenant_id = $1 AND id > $2 ORDER BY id LIMIT $3",
    )
    .bind(tenant)
    .bind(after)
    .bind(limit)
    .fetch_all(pool)
    .await?)
}

/// Reads a user in a write transaction, locking the row (`for_update` from the transaction).
pub async fn lock_user(
    conn: &mut AnyConnection,
    tenant: &TenantId,
    user_id: &str,
    for_update: &str,
) -> Result<StaffUser> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT id, email, display_name, disabled, created_at FROM staff_users WHERE tenant_id = $1 AND id = $2{for_update}"
    )))
    .bind(tenant)
    .bind(user_id)
    .fetch_optional(conn)
    .await?
    .ok_or(Error::NotFound("staff user"))
}

/// Writes only what is given.
pub async fn update_user(
    conn: &mut AnyConnection,
    tenant: &TenantId,
    user_id: &str,
    display_name: Option<&str>,
    disabled: Option<bool>,
    password_hash: Option<&str>,
) -> Result<()> {
    let mut sql = db::Sql::new("UPDATE staff_users SET updated_at = ");
    sql.push_bind(now_ms());
    if let Some(name) = display_name {
        sql.push(", display_name = ").push_bind(name);
    }
    if let Some(disabled) = disabled {
        sql.push(", disabled = ").push_bind(i64::from(disabled));
    }
    if let Some(hash) = password_hash {
        sql.push(", password_hash = ").push_bind(hash);
    }
    sql.push(" WHERE tenant_id = ").push_bind(tenant);
    sql.push(" AND id = ").push_bind(user_id);
    sql.execute(conn).await?;
    Ok(())
}

pub async fn delete_user(
    conn: &mut AnyConnection,
    tenant: &TenantId,
    user_id: &str,
) -> Result<StaffUser> {
    sqlx::query_as(
        "DELETE FROM staff_users WHERE tenant_id = $1 AND id = $2
         RETURNING id, email, display_name, disabled, created_at",
    )
    .bind(tenant)
    .bind(user_id)
    .fetch_optional(conn)
    .await?
    .ok_or(Error::NotFound("staff user"))
}

/// What sign-in checks a password against.
#[derive(FromRow)]
pub struct Credentials {
    pub id: String,
    pub password_hash: Option<String>,
    pub disabled: i64,
}

pub async fn credentials(
    pool: &Pool,
    tenant: &TenantId,
    email: &Email,
) -> Result<Option<Credentials>> {
    Ok(sqlx::query_as(
        "SELECT id, password_hash, disabled FROM staff_users WHERE tenant_id = $1 AND email = $2",
    )
    .bind(tenant)
    .bind(email.as_str())
    .fetch_optional(pool)
    .await?)
}

/// Stores a token's hash and metadata; `tenant` is `None` for platform tokens.
pub async fn insert_token(
    conn: &mut AnyConnection,
    tenant: Option<&TenantId>,
    record: &TokenRecord,
    hash: &str,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO api_tokens (id, tenant_id, user_id, name, token_hash, created_at, expires_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(&record.id)
    .bind(tenant.map(TenantId::as_str))
    .bind(&record.user_id)
    .bind(&record.name)
    .bind(hash)
    .bind(record.created_at)
    .bind(record.expires_at)
    .execute(conn)
    .await?;
    Ok(())
}

/// A tenant's tokens, or one user's when `user` is given.
pub async fn list_tokens(
    pool: &Pool,
    tenant: &TenantId,
    user: Option<&str>,
    after: &str,
    limit: i64,
) -> Result<Vec<TokenRecord>> {
    let mut sql = db::Sql::new(
        "SELECT id, user_id, name, created_at, expires_at, revoked_at FROM api_tokens WHERE tenant_id = ",
    );
    sql.push_bind(tenant);
    if let Some(user) = user {
        sql.push(" AND user_id = ").push_bind(user);
    }
    sql.push(" AND id > ").push_bind(after);
    sql.push(" ORDER BY id LIMIT ").push_bind(limit);
    Ok(sql.query_as().fetch_all(pool).await?)
}

pub async fn lock_token(
    conn: &mut AnyConnection,
    tenant: &TenantId,
    token_id: &str,
    for_update: &str,
) -> Result<Option<TokenRecord>> {
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT id, user_id, name, created_at, expires_at, revoked_at FROM api_tokens WHERE tenant_id = $1 AND id = $2{for_update}"
    )))
    .bind(tenant)
    .bind(token_id)
    .fetch_optional(conn)
    .await?)
}

/// Revokes every live token of a user; returns how many.
pub async fn revoke_user_tokens(
    conn: &mut AnyConnection,
    tenant: &TenantId,
    user_id: &str,
) -> Result<u64> {
    let done = sqlx::query(
        "UPDATE api_tokens SET revoked_at = $3 WHERE tenant_id = $1 AND user_id = $2 AND revoked_at IS NULL",
    )
    .bind(tenant)
    .bind(user_id)
    .bind(now_ms())
    .execute(conn)
    .await?;
    Ok(done.rows_affected())
}

pub async fn revoke_token(
    conn: &mut AnyConnection,
    tenant: &TenantId,
    token_id: &str,
) -> Result<()> {
    sqlx::query("UPDATE api_tokens SET revoked_at = $3 WHERE tenant_id = $1 AND id = $2")
        .bind(tenant)
        .bind(token_id)
        .bind(now_ms())
        .execute(conn)
        .await?;
    Ok(())
}
