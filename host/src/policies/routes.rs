//! Roles and custom policies of one tenant. (Role assignments are served by the staff area,
//! which owns the users they name.)

use axum::extract::State;
use axum::http::StatusCode;
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};

use super::BUILT_IN_ROLES;
use super::service;
use super::store::{self, NewPolicy, Policy};
use crate::AppState;
use crate::error::Result;
use crate::http::extract::{Json, Path, Query};
use crate::http::guard::Scope;
use crate::types::{Page, PageParams};

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
    let custom = store::rules(&state.db.pool, &scope.tenant.id).await?;
    for (role, object, action) in custom.policies {
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

#[utoipa::path(get, path = "/api/v1/tenants/{tenant}/policies", tag = "roles",
    params(("tenant" = String, Path, description = "Tenant id or slug"), PageParams),
    responses((status = 200, body = Page<Policy>)))]
async fn list_policies(
    State(state): State<AppState>,
    scope: Scope,
    Query(page): Query<PageParams>,
) -> Result<Json<Page<Policy>>> {
    let limit = page.limit()?;
    let rows =
        store::list_policies(&state.db.pool, &scope.tenant.id, page.after(), limit + 1).await?;
    Ok(Json(Page::from_rows(rows, limit, |r| &r.id)))
}

/// Grants a role one more permission in this tenant. Objects are limited to this tenant's routes.
#[utoipa::path(post, path = "/api/v1/tenants/{tenant}/policies", tag = "roles",
    params(("tenant" = String, Path, description = "Tenant id or slug")),
    request_body = NewPolicy,
    responses((status = 201, body = Policy), (status = 409, body = crate::error::ErrorBody),
        (status = 422, body = crate::error::ErrorBody)))]
async fn create_policy(
    State(state): State<AppState>,
    scope: Scope,
    Json(input): Json<NewPolicy>,
) -> Result<(StatusCode, Json<Policy>)> {
    let policy = service::add_policy(
        &state.events,
        &state.authz,
        &scope.caller,
        &scope.tenant.id,
        input,
    )
    .await?;
    Ok((StatusCode::CREATED, Json(policy)))
}

#[utoipa::path(delete, path = "/api/v1/tenants/{tenant}/policies/{policy}", tag = "roles",
    params(("tenant" = String, Path, description = "Tenant id or slug"), ("policy" = String, Path)),
    responses((status = 204), (status = 404, body = crate::error::ErrorBody)))]
async fn delete_policy(
    State(state): State<AppState>,
    scope: Scope,
    Path((_, policy_id)): Path<(String, String)>,
) -> Result<StatusCode> {
    service::remove_policy(
        &state.events,
        &state.authz,
        &scope.caller,
        &scope.tenant.id,
        &policy_id,
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_roles))
        .routes(routes!(list_policies, create_policy))
        .routes(routes!(delete_policy))
}
