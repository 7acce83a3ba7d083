//! `/api/v1/tenants`: platform administrators manage tenants; tenant admins see and edit their own.

use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};

use super::model::{NewTenant, Tenant, TenantChanges, TenantStatus};
use super::{service, store};
use crate::AppState;
use crate::auth::service::NewUser;
use crate::auth::{StaffUserView, hash_new_password};
use crate::error::Result;
use crate::http::extract::{Json, Query};
use crate::http::guard::Scope;
use crate::types::{self, Caller, Email, Language, Page, PageParams, Slug, TimeZoneName};

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateTenant {
    /// A DNS label; a few names the platform uses itself are reserved.
    #[schema(value_type = String, example = "easy-printer", pattern = "^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")]
    pub slug: Slug,
    #[schema(
        example = "Easy Printer Solution GmbH",
        min_length = 1,
        max_length = 200,
        pattern = "\\S"
    )]
    pub display_name: String,
    /// Defaults to `UTC`.
    #[schema(value_type = Option<TimeZoneName>, example = "Europe/Berlin")]
    pub time_zone: Option<TimeZoneName>,
    /// Defaults to `en`.
    #[schema(value_type = Option<String>, example = "de", pattern = "^(en|de|es)$")]
    pub language: Option<Language>,
    /// Optionally, the tenant's first administrator.
    pub admin: Option<FirstAdmin>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FirstAdmin {
    #[schema(value_type = String, format = Email)]
    pub email: Email,
    #[schema(min_length = 1, max_length = 200, pattern = "\\S")]
    pub display_name: String,
    /// At least 12 characters. Without one, the admin signs in with API tokens only.
    pub password: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct CreatedTenant {
    #[serde(flatten)]
    pub tenant: Tenant,
    pub admin: Option<StaffUserView>,
}

#[utoipa::path(get, path = "/api/v1/tenants", tag = "tenants", params(PageParams),
    responses((status = 200, body = Page<Tenant>), (status = 403, body = crate::error::ErrorBody)))]
async fn list_tenants(
    State(state): State<AppState>,
    caller: Caller,
    Query(page): Query<PageParams>,
) -> Result<Json<Page<Tenant>>> {
    caller.require_platform()?;
    let limit = page.limit()?;
    let rows = store::list(&state.db.pool, page.after(), limit + 1).await?;
    Ok(Json(Page::from_rows(rows, limit, |t| t.id.as_str())))
}

#[utoipa::path(post, path = "/api/v1/tenants", tag = "tenants", request_body = CreateTenant,
    responses((status = 201, body = CreatedTenant), (status = 403, body = crate::error::ErrorBody),
        (status = 409, body = crate::error::ErrorBody), (status = 422, body = crate::error::ErrorBody)))]
async fn create_tenant(
    State(state): State<AppState>,
    caller: Caller,
    Json(input): Json<CreateTenant>,
) -> Result<(StatusCode, Json<CreatedTenant>)> {
    caller.require_platform()?;
    let new = NewTenant {
        slug: input.slug,
        display_name: input.display_name,
        time_zone: input.time_zone.unwrap_or(TimeZoneName::parse("UTC")?),
        language: input.language.unwrap_or(Language::parse("en")?),
    };
    let admin = match input.admin {
        Some(admin) => Some(NewUser {
            display_name: types::display_name(&admin.display_name)?,
            password_hash: match &admin.password {
                Some(password) => Some(hash_new_password(password).await?),
                None => None,
            },
            email: admin.email,
            roles: vec!["tenant-admin".into()],
        }),
        None => None,
    };
    let (tenant, admin) = service::create(&state.events, &caller.actor(), new, admin).await?;
    let admin = admin.map(StaffUserView::from);
    Ok((StatusCode::CREATED, Json(CreatedTenant { tenant, admin })))
}

#[utoipa::path(get, path = "/api/v1/tenants/{tenant}", tag = "tenants",
    params(("tenant" = String, Path, description = "Tenant id or slug")),
    responses((status = 200, body = Tenant)))]
async fn get_tenant(scope: Scope) -> Json<Tenant> {
    Json(scope.tenant)
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateTenant {
    /// Platform administrators only: it changes the tenant's host name.
    #[schema(value_type = Option<String>, pattern = "^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")]
    pub slug: Option<Slug>,
    #[schema(min_length = 1, max_length = 200, pattern = "\\S")]
    pub display_name: Option<String>,
    #[schema(value_type = Option<TimeZoneName>)]
    pub time_zone: Option<TimeZoneName>,
    #[schema(value_type = Option<String>, pattern = "^(en|de|es)$")]
    pub language: Option<Language>,
}

#[utoipa::path(patch, path = "/api/v1/tenants/{tenant}", tag = "tenants",
    params(("tenant" = String, Path, description = "Tenant id or slug")),
    request_body = UpdateTenant,
    responses((status = 200, body = Tenant), (status = 403, body = crate::error::ErrorBody),
        (status = 409, body = crate::error::ErrorBody), (status = 422, body = crate::error::ErrorBody)))]
async fn update_tenant(
    State(state): State<AppState>,
    scope: Scope,
    Json(input): Json<UpdateTenant>,
) -> Result<Json<Tenant>> {
    let changes = TenantChanges {
        slug: input.slug,
        display_name: input.display_name,
        time_zone: input.time_zone,
        language: input.language,
        status: None,
    };
    let tenant = service::update(
        &state.events,
        &scope.caller,
        &scope.tenant.id,
        changes,
        "tenant.update",
    )
    .await?;
    Ok(Json(tenant))
}

async fn set_status(
    state: AppState,
    scope: Scope,
    status: TenantStatus,
    action: &str,
) -> Result<Json<Tenant>> {
    let changes = TenantChanges {
        status: Some(status),
        ..TenantChanges::default()
    };
    let tenant = service::update(
        &state.events,
        &scope.caller,
        &scope.tenant.id,
        changes,
        action,
    )
    .await?;
    Ok(Json(tenant))
}

/// Suspends a tenant: its API answers `tenant_suspended` and its portals show an
/// "unavailable" page until it is resumed. Platform administrators only.
#[utoipa::path(post, path = "/api/v1/tenants/{tenant}/suspend", tag = "tenants",
    params(("tenant" = String, Path, description = "Tenant id or slug")),
    responses((status = 200, body = Tenant), (status = 403, body = crate::error::ErrorBody)))]
async fn suspend_tenant(State(state): State<AppState>, scope: Scope) -> Result<Json<Tenant>> {
    set_status(state, scope, TenantStatus::Suspended, "tenant.suspend").await
}

/// Lifts a suspension. Platform administrators only.
#[utoipa::path(post, path = "/api/v1/tenants/{tenant}/resume", tag = "tenants",
    params(("tenant" = String, Path, description = "Tenant id or slug")),
    responses((status = 200, body = Tenant), (status = 403, body = crate::error::ErrorBody)))]
async fn resume_tenant(State(state): State<AppState>, scope: Scope) -> Result<Json<Tenant>> {
    set_status(state, scope, TenantStatus::Active, "tenant.resume").await
}

/// Deletes a tenant and everything it owns. Platform administrators only.
#[utoipa::path(delete, path = "/api/v1/tenants/{tenant}", tag = "tenants",
    params(("tenant" = String, Path, description = "Tenant id or slug")),
    responses((status = 204), (status = 403, body = crate::error::ErrorBody)))]
async fn delete_tenant(State(state): State<AppState>, scope: Scope) -> Result<StatusCode> {
    service::delete(&state.events, &scope.caller, &scope.tenant.id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Routes that need no tenant guard (the platform's tenant list).
pub fn platform_routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(list_tenants, create_tenant))
}

/// Routes on one tenant, behind the tenant guard.
pub fn tenant_routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(get_tenant, update_tenant, delete_tenant))
        .routes(routes!(suspend_tenant))
        .routes(routes!(resume_tenant))
}
