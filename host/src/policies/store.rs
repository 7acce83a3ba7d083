//! The only code that names the `role_assignments` and `policies` tables.

use serde::{Deserialize, Serialize};
use sqlx::{AnyConnection, FromRow};
use utoipa::ToSchema;

use super::TenantRules;
use crate::db::{self, Pool, now_ms};
use crate::error::{Error, Result};
use crate::types::TenantId;

#[derive(Debug, Clone, Serialize, FromRow, ToSchema)]
pub struct RoleAssignment {
    pub id: String,
    pub user_id: String,
    pub role: String,
}

#[derive(Debug, Clone, Serialize, FromRow, ToSchema)]
pub struct Policy {
    pub id: String,
    pub role: String,
    /// A tenant route template such as `/api/v1/tenants/{tenant}/users` (a trailing `*` matches
    /// any continuation).
    pub object: String,
    /// HTTP method, or `*`.
    pub action: String,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewPolicy {
    /// 1 to 40 lower-case letters, digits or hyphens; not a built-in role.
    #[schema(pattern = "^[a-z0-9-]{1,40}$")]
    pub role: String,
    /// A tenant route template: route characters only.
    #[schema(
        max_length = 200,
        pattern = "^/api/v1/tenants/\\{tenant\\}[A-Za-z0-9/{}_*.-]*$"
    )]
    pub object: String,
    /// An HTTP method (any case), or `*`.
    #[schema(
        pattern = "^([Gg][Ee][Tt]|[Pp][Oo][Ss][Tt]|[Pp][Uu][Tt]|[Pp][Aa][Tt][Cc][Hh]|[Dd][Ee][Ll][Ee][Tt][Ee]|\\*)$"
    )]
    pub action: String,
}

/// Everything a tenant's enforcer is built from.
pub async fn rules(pool: &Pool, tenant: &TenantId) -> Result<TenantRules> {
    let assignments: Vec<(String, String)> =
        sqlx::query_as("SELECT user_id, role FROM role_assignments WHERE tenant_id = $1")
            .bind(tenant)
            .fetch_all(pool)
            .await?;
    let policies: Vec<(String, String, String)> = sqlx::query_as(
        "SELECT role, object, action FROM policies WHERE tenant_id = $1 ORDER BY role, object, action",
    )
    .bind(tenant)
    .fetch_all(pool)
    .await?;
    Ok(TenantRules {
        assignments,
        policies,
    })
}

pub async fn list_assignments(
    pool: &Pool,
    tenant: &TenantId,
    after: &str,
    limit: i64,
) -> Result<Vec<RoleAssignment>> {
    Ok(sqlx::query_as(
        "SELECT id, user_id, role FROM role_assignments WHERE tenant_id = $1 AND id > $2 ORDER BY id LIMIT $3",
    )
    .bind(tenant)
    .bind(after)
    .bind(limit)
    .fetch_all(pool)
    .await?)
}

/// Inserts an assignment; `None` when the user has the role already.
pub async fn insert_assignment(
    conn: &mut AnyConnection,
    tenant: &TenantId,
    user_id: &str,
    role: &str,
) -> Result<Option<RoleAssignment>> {
    let assignment = RoleAssignment {
        id: db::new_id(),
        user_id: user_id.to_string(),
        role: role.to_string(),
    };
    let inserted = sqlx::query(
        "INSERT INTO role_assignments (id, tenant_id, user_id, role, created_at) VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT DO NOTHING",
    )
    .bind(&assignment.id)
    .bind(tenant)
    .bind(&assignment.user_id)
    .bind(&assignment.role)
    .bind(now_ms())
    .execute(conn)
    .await?;
    Ok((inserted.rows_affected() == 1).then_some(assignment))
}

pub async fn delete_assignment(
    conn: &mut AnyConnection,
    tenant: &TenantId,
    id: &str,
) -> Result<RoleAssignment> {
    let existing: RoleAssignment = sqlx::query_as(
        "DELETE FROM role_assignments WHERE tenant_id = $1 AND id = $2 RETURNING id, user_id, role",
    )
    .bind(tenant)
    .bind(id)
    .fetch_optional(conn)
    .await?
    .ok_or(Error::NotFound("role assignment"))?;
    Ok(existing)
}

pub async fn list_policies(
    pool: &Pool,
    tenant: &TenantId,
    after: &str,
    limit: i64,
) -> Result<Vec<Policy>> {
    Ok(sqlx::query_as(
        "SELECT id, role, object, action FROM policies WHERE tenant_id = $1 AND id > $2 ORDER BY id LIMIT $3",
    )
    .bind(tenant)
    .bind(after)
    .bind(limit)
    .fetch_all(pool)
    .await?)
}

pub async fn insert_policy(
    conn: &mut AnyConnection,
    tenant: &TenantId,
    policy: &Policy,
) -> Result<()> {
    let inserted = sqlx::query(
        "INSERT INTO policies (id, tenant_id, role, object, action, created_at) VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(&policy.id)
    .bind(tenant)
    .bind(&policy.role)
    .bind(&policy.object)
    .bind(&policy.action)
    .bind(now_ms())
    .execute(conn)
    .await;
    match inserted {
        Err(e) if db::is_unique_violation(&e) => Err(Error::conflict(
            "policy_exists",
            "this policy exists already",
        )),
        other => other.map(|_| ()).map_err(Error::from),
    }
}

pub async fn delete_policy(
    conn: &mut AnyConnection,
    tenant: &TenantId,
    id: &str,
) -> Result<Policy> {
    let existing: Policy = sqlx::query_as(
        "DELETE FROM policies WHERE tenant_id = $1 AND id = $2 RETURNING id, role, object, action",
    )
    .bind(tenant)
    .bind(id)
    .fetch_optional(conn)
    .await?
    .ok_or(Error::NotFound("policy"))?;
    Ok(existing)
}
