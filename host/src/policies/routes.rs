//! Roles, role assignments and custom policies of one tenant.

use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::json;
use sqlx::FromRow;
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};

use super::{BUILT_IN_ROLES, Scope, TENANT_ROUTES};
use crate::AppState;
use crate::audit::{self, Change};
use crate::auth;
use crate::db::{self, now_ms};
use crate::error::{Error, Result};
use crate::http::extract::{Json, Path, Query};
use crate::invalidation::Invalidation;
use crate::types::{Page, PageParams};

const METHODS: &[&str] = &["GET", "POST", "PUT", "PATCH", "DELETE", "*"];

fn check_role_name(role: &str) -> Result<()> {
    let ok = !role.is_empty()
        && role.len() <= 40
        && role
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if ok {
        Ok(())
    } else {
        Err(Error::invalid(
            "invalid_role",
            "a role name is 1 to 40 lower-case letters, digits or hyphens",
        ))
    }
}

#[derive(Serialize, ToSchema)]
pub struct PermissionView {
    /// Route template; a trailing `*` matches any continuation.
    pub object: String,
    /// HTTP method, or `*` for any.
    pub action: String,
}

#[derive(Serialize, ToSchema)]
pub struct RoleView {
    pub name: String,
    pub built_in: bool,
    pub description: Option<String>,
    pub permissions: Vec<PermissionView>,
}

/// Built-in roles and the roles this tenant's custom policies define, with their permissions.
#[utoipa::path(get, path = "/api/v1/tenants/{tenant}/roles", tag = "roles",
    params(("tenant" = String, Path, description = "Tenant id or slug")),
    responses((status = 200, body = Vec<RoleView>)))]
async fn list_roles(State(state): State<AppState>, scope: Scope) -> Result<Json<Vec<RoleView>>> {
    let mut roles: Vec<RoleView> = BUILT_IN_ROLES
        .iter()
        .map(|(name, description, perms)| RoleView {
            name: name.to_string(),
            built_in: true,
            description: Some(description.to_string()),
            permissions: perms
                .iter()
                .map(|p| PermissionView {
                    object: p.object.into(),
                    action: p.action.into(),
                })
                .collect(),
        })
        .collect();
    let custom: Vec<(String, String, String)> =
        sqlx::query_as("SELECT role, object, action FROM policies WHERE tenant_id = $1 ORDER BY role, object, action")
            .bind(&scope.tenant.id)
            .fetch_all(&state.db.pool)
            .await?;
    for (role, object, action) in custom {
        let permission = PermissionView { object, action };
        match roles.iter_mut().find(|r| r.name == role) {
            Some(existing) => existing.permissions.push(permission),
            None => roles.push(RoleView {
                name: role,
                built_in: false,
                description: None,
                permissions: vec![permission],
            }),
        }
    }
    Ok(Json(roles))
}

#[derive(Serialize, FromRow, ToSchema)]
pub struct RoleAssignment {
    pub id: String,
    pub user_id: String,
    pub role: String,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewRoleAssignment {
    pub user_id: String,
    pub role: String,
}

#[utoipa::path(get, path = "/api/v1/tenants/{tenant}/role-assignments", tag = "roles",
    params(("tenant" = String, Path, description = "Tenant id or slug"), PageParams),
    responses((status = 200, body = Page<RoleAssignment>)))]
async fn list_assignments(
    State(state): State<AppState>,
    scope: Scope,
    Query(page): Query<PageParams>,
) -> Result<Json<Page<RoleAssignment>>> {
    let limit = page.limit()?;
    let rows: Vec<RoleAssignment> = sqlx::query_as(
        "SELECT id, user_id, role FROM role_assignments WHERE tenant_id = $1 AND id > $2 ORDER BY id LIMIT $3",
    )
    .bind(&scope.tenant.id)
    .bind(page.after())
    .bind(limit + 1)
    .fetch_all(&state.db.pool)
    .await?;
    Ok(Json(Page::from_rows(rows, limit, |r| &r.id)))
}

/// Gives a staff user a role in this tenant. Takes effect on the next request.
#[utoipa::path(post, path = "/api/v1/tenants/{tenant}/role-assignments", tag = "roles",
    params(("tenant" = String, Path, description = "Tenant id or slug")),
    request_body = NewRoleAssignment,
    responses((status = 201, body = RoleAssignment)))]
async fn create_assignment(
    State(state): State<AppState>,
    scope: Scope,
    Json(input): Json<NewRoleAssignment>,
) -> Result<(StatusCode, Json<RoleAssignment>)> {
    check_role_name(&input.role)?;
    let tenant = &scope.tenant.id;
    // The user must be this tenant's: ids of other tenants' users are simply not found.
    auth::find_user(&state.db.pool, tenant, &input.user_id).await?;
    let assignment = RoleAssignment {
        id: db::new_id(),
        user_id: input.user_id,
        role: input.role,
    };
    let mut tx = state.db.pool.begin().await?;
    let inserted = sqlx::query(
        "INSERT INTO role_assignments (id, tenant_id, user_id, role, created_at) VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(&assignment.id)
    .bind(tenant)
    .bind(&assignment.user_id)
    .bind(&assignment.role)
    .bind(now_ms())
    .execute(&mut *tx)
    .await;
    match inserted {
        Err(e) if db::is_unique_violation(&e) => {
            return Err(Error::conflict(
                "already_assigned",
                "the user already has this role",
            ));
        }
        other => other?,
    };
    let change = Change {
        tenant: Some(tenant),
        action: "role_assignment.create",
        target: &assignment.id,
        before: None,
        after: Some(json!({"user_id": assignment.user_id, "role": assignment.role})),
    };
    audit::record(&mut tx, &scope.caller.actor(), change).await?;
    tx.commit().await?;
    state
        .invalidate(Invalidation::Policies(tenant.clone()))
        .await;
    Ok((StatusCode::CREATED, Json(assignment)))
}

#[utoipa::path(delete, path = "/api/v1/tenants/{tenant}/role-assignments/{assignment}", tag = "roles",
    params(("tenant" = String, Path, description = "Tenant id or slug"), ("assignment" = String, Path)),
    responses((status = 204)))]
async fn delete_assignment(
    State(state): State<AppState>,
    scope: Scope,
    Path((_, assignment_id)): Path<(String, String)>,
) -> Result<StatusCode> {
    let tenant = &scope.tenant.id;
    let mut tx = state.db.pool.begin().await?;
    let existing: RoleAssignment = sqlx::query_as(
        "SELECT id, user_id, role FROM role_assignments WHERE tenant_id = $1 AND id = $2",
    )
    .bind(tenant)
    .bind(&assignment_id)
    .fetch_optional(&mut *tx)
    .await?
    .ok_or(Error::NotFound("role assignment"))?;
    sqlx::query("DELETE FROM role_assignments WHERE tenant_id = $1 AND id = $2")
        .bind(tenant)
        .bind(&assignment_id)
        .execute(&mut *tx)
        .await?;
    let change = Change {
        tenant: Some(tenant),
        action: "role_assignment.delete",
        target: &existing.id,
        before: Some(json!({"user_id": existing.user_id, "role": existing.role})),
        after: None,
    };
    audit::record(&mut tx, &scope.caller.actor(), change).await?;
    tx.commit().await?;
    state
        .invalidate(Invalidation::Policies(tenant.clone()))
        .await;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Serialize, FromRow, ToSchema)]
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
    pub role: String,
    pub object: String,
    pub action: String,
}

#[utoipa::path(get, path = "/api/v1/tenants/{tenant}/policies", tag = "roles",
    params(("tenant" = String, Path, description = "Tenant id or slug"), PageParams),
    responses((status = 200, body = Page<Policy>)))]
async fn list_policies(
    State(state): State<AppState>,
    scope: Scope,
    Query(page): Query<PageParams>,
) -> Result<Json<Page<Policy>>> {
    let limit = page.limit()?;
    let rows: Vec<Policy> = sqlx::query_as(
        "SELECT id, role, object, action FROM policies WHERE tenant_id = $1 AND id > $2 ORDER BY id LIMIT $3",
    )
    .bind(&scope.tenant.id)
    .bind(page.after())
    .bind(limit + 1)
    .fetch_all(&state.db.pool)
    .await?;
    Ok(Json(Page::from_rows(rows, limit, |r| &r.id)))
}

/// Grants a role one more permission in this tenant. Objects are limited to this tenant's routes.
#[utoipa::path(post, path = "/api/v1/tenants/{tenant}/policies", tag = "roles",
    params(("tenant" = String, Path, description = "Tenant id or slug")),
    request_body = NewPolicy,
    responses((status = 201, body = Policy)))]
async fn create_policy(
    State(state): State<AppState>,
    scope: Scope,
    Json(input): Json<NewPolicy>,
) -> Result<(StatusCode, Json<Policy>)> {
    check_role_name(&input.role)?;
    if super::is_built_in_role(&input.role) {
        return Err(Error::invalid(
            "built_in_role",
            "built-in roles cannot be changed; define a role of your own",
        ));
    }
    if !input.object.starts_with(TENANT_ROUTES) || input.object.len() > 200 {
        return Err(Error::invalid(
            "invalid_object",
            format!("a policy object is a route template starting with {TENANT_ROUTES}"),
        ));
    }
    let action = input.action.to_ascii_uppercase();
    if !METHODS.contains(&action.as_str()) {
        return Err(Error::invalid(
            "invalid_action",
            "action must be GET, POST, PUT, PATCH, DELETE or *",
        ));
    }
    let tenant = &scope.tenant.id;
    let policy = Policy {
        id: db::new_id(),
        role: input.role,
        object: input.object,
        action,
    };
    let mut tx = state.db.pool.begin().await?;
    let inserted = sqlx::query(
        "INSERT INTO policies (id, tenant_id, role, object, action, created_at) VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(&policy.id)
    .bind(tenant)
    .bind(&policy.role)
    .bind(&policy.object)
    .bind(&policy.action)
    .bind(now_ms())
    .execute(&mut *tx)
    .await;
    match inserted {
        Err(e) if db::is_unique_violation(&e) => {
            return Err(Error::conflict(
                "policy_exists",
                "this policy exists already",
            ));
        }
        other => other?,
    };
    let change = Change {
        tenant: Some(tenant),
        action: "policy.create",
        target: &policy.id,
        before: None,
        after: Some(json!({"role": policy.role, "object": policy.object, "action": policy.action})),
    };
    audit::record(&mut tx, &scope.caller.actor(), change).await?;
    tx.commit().await?;
    state
        .invalidate(Invalidation::Policies(tenant.clone()))
        .await;
    Ok((StatusCode::CREATED, Json(policy)))
}

#[utoipa::path(delete, path = "/api/v1/tenants/{tenant}/policies/{policy}", tag = "roles",
    params(("tenant" = String, Path, description = "Tenant id or slug"), ("policy" = String, Path)),
    responses((status = 204)))]
async fn delete_policy(
    State(state): State<AppState>,
    scope: Scope,
    Path((_, policy_id)): Path<(String, String)>,
) -> Result<StatusCode> {
    let tenant = &scope.tenant.id;
    let mut tx = state.db.pool.begin().await?;
    let existing: Policy = sqlx::query_as(
        "SELECT id, role, object, action FROM policies WHERE tenant_id = $1 AND id = $2",
    )
    .bind(tenant)
    .bind(&policy_id)
    .fetch_optional(&mut *tx)
    .await?
    .ok_or(Error::NotFound("policy"))?;
    sqlx::query("DELETE FROM policies WHERE tenant_id = $1 AND id = $2")
        .bind(tenant)
        .bind(&policy_id)
        .execute(&mut *tx)
        .await?;
    let change = Change {
        tenant: Some(tenant),
        action: "policy.delete",
        target: &existing.id,
        before: Some(
            json!({"role": existing.role, "object": existing.object, "action": existing.action}),
        ),
        after: None,
    };
    audit::record(&mut tx, &scope.caller.actor(), change).await?;
    tx.commit().await?;
    state
        .invalidate(Invalidation::Policies(tenant.clone()))
        .await;
    Ok(StatusCode::NO_CONTENT)
}

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_roles))
        .routes(routes!(list_assignments, create_assignment))
        .routes(routes!(delete_assignment))
        .routes(routes!(list_policies, create_policy))
        .routes(routes!(delete_policy))
}
