//! `/api/v1/tenants`: platform administrators manage tenants; tenant admins see and edit their own.

use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};

use super::{NewTenant, Tenant, TenantStatus};
use crate::AppState;
use crate::audit::{self, Change};
use crate::auth::{self, Caller, StaffUserView};
use crate::error::{Error, Result};
use crate::http::extract::{Json, Query};
use crate::invalidation::Invalidation;
use crate::policies::Scope;
use crate::types::{Email, Language, Page, PageParams, Slug, TimeZoneName};

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateTenant {
    #[schema(value_type = String, example = "easy-printer")]
    pub slug: Slug,
    #[schema(example = "Easy Printer Solution GmbH")]
    pub display_name: String,
    /// Defaults to `UTC`.
    #[schema(value_type = Option<String>, example = "Europe/Berlin")]
    pub time_zone: Option<TimeZoneName>,
    /// Defaults to `en`.
    #[schema(value_type = Option<String>, example = "de")]
    pub language: Option<Language>,
    /// Optionally, the tenant's first administrator.
    pub admin: Option<FirstAdmin>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FirstAdmin {
    #[schema(value_type = String)]
    pub email: Email,
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
    responses((status = 200, body = Page<Tenant>)))]
async fn list_tenants(
    State(state): State<AppState>,
    caller: Caller,
    Query(page): Query<PageParams>,
) -> Result<Json<Page<Tenant>>> {
    caller.require_platform()?;
    let limit = page.limit()?;
    let rows = super::list(&state.db.pool, page.after(), limit + 1).await?;
    Ok(Json(Page::from_rows(rows, limit, |t| t.id.as_str())))
}

#[utoipa::path(post, path = "/api/v1/tenants", tag = "tenants", request_body = CreateTenant,
    responses((status = 201, body = CreatedTenant)))]
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
    let password_hash = match input.admin.as_ref().and_then(|a| a.password.as_deref()) {
        Some(password) => Some(auth::hash_new_password(password).await?),
        None => None,
    };
    let mut tx = state.db.pool.begin().await?;
    let tenant = super::insert(&mut tx, &new).await?;
    let admin = match &input.admin {
        Some(admin) => {
            let name = super::check_display_name(&admin.display_name)?;
            let user = auth::create_user(
                &mut tx,
                &tenant.id,
                &admin.email,
                &name,
                password_hash.as_deref(),
            )
            .await?;
            sqlx::query(
                "INSERT INTO role_assignments (id, tenant_id, user_id, role, created_at) VALUES ($1, $2, $3, 'tenant-admin', $4)",
            )
            .bind(crate::db::new_id())
            .bind(&tenant.id)
            .bind(&user.id)
            .bind(crate::db::now_ms())
            .execute(&mut *tx)
            .await?;
            Some(StaffUserView::from(user))
        }
        None => None,
    };
    let change = Change {
        tenant: None,
        action: "tenant.create",
        target: tenant.id.as_str(),
        before: None,
        after: Some(
            json!({"slug": tenant.slug, "display_name": tenant.display_name, "admin": admin.as_ref().map(|a| &a.email)}),
        ),
    };
    audit::record(&mut tx, &caller.actor(), change).await?;
    tx.commit().await?;
    state.invalidate(Invalidation::Hosts).await;
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
    #[schema(value_type = Option<String>)]
    pub slug: Option<Slug>,
    pub display_name: Option<String>,
    #[schema(value_type = Option<String>)]
    pub time_zone: Option<TimeZoneName>,
    #[schema(value_type = Option<String>)]
    pub language: Option<Language>,
}

fn summary(t: &Tenant) -> serde_json::Value {
    json!({"slug": t.slug, "display_name": t.display_name, "time_zone": t.time_zone, "language": t.language, "status": t.status})
}

/// Writes a changed tenant with its audit entry, then drops cached host lookups.
async fn save(
    state: &AppState,
    caller: &Caller,
    before: &Tenant,
    after: Tenant,
    action: &str,
) -> Result<Tenant> {
    let mut tx = state.db.pool.begin().await?;
    let saved = super::update(&mut tx, &after).await?;
    let change = Change {
        tenant: Some(&before.id),
        action,
        target: before.id.as_str(),
        before: Some(summary(before)),
        after: Some(summary(&saved)),
    };
    audit::record(&mut tx, &caller.actor(), change).await?;
    tx.commit().await?;
    state.invalidate(Invalidation::Hosts).await;
    Ok(saved)
}

#[utoipa::path(patch, path = "/api/v1/tenants/{tenant}", tag = "tenants",
    params(("tenant" = String, Path, description = "Tenant id or slug")),
    request_body = UpdateTenant,
    responses((status = 200, body = Tenant)))]
async fn update_tenant(
    State(state): State<AppState>,
    scope: Scope,
    Json(input): Json<UpdateTenant>,
) -> Result<Json<Tenant>> {
    let mut after = scope.tenant.clone();
    if let Some(slug) = input.slug {
        scope.caller.require_platform()?;
        after.slug = slug.to_string();
    }
    if let Some(name) = input.display_name {
        after.display_name = super::check_display_name(&name)?;
    }
    if let Some(tz) = input.time_zone {
        after.time_zone = tz.to_string();
    }
    if let Some(language) = input.language {
        after.language = language.to_string();
    }
    Ok(Json(
        save(&state, &scope.caller, &scope.tenant, after, "tenant.update").await?,
    ))
}

async fn set_status(
    state: AppState,
    scope: Scope,
    status: TenantStatus,
    action: &str,
) -> Result<Json<Tenant>> {
    scope.caller.require_platform()?;
    let after = Tenant {
        status,
        ..scope.tenant.clone()
    };
    Ok(Json(
        save(&state, &scope.caller, &scope.tenant, after, action).await?,
    ))
}

/// Suspends a tenant: its API answers `tenant_suspended` and its portals show an
/// "unavailable" page until it is resumed. Platform administrators only.
#[utoipa::path(post, path = "/api/v1/tenants/{tenant}/suspend", tag = "tenants",
    params(("tenant" = String, Path, description = "Tenant id or slug")),
    responses((status = 200, body = Tenant)))]
async fn suspend_tenant(State(state): State<AppState>, scope: Scope) -> Result<Json<Tenant>> {
    set_status(state, scope, TenantStatus::Suspended, "tenant.suspend").await
}

/// Lifts a suspension. Platform administrators only.
#[utoipa::path(post, path = "/api/v1/tenants/{tenant}/resume", tag = "tenants",
    params(("tenant" = String, Path, description = "Tenant id or slug")),
    responses((status = 200, body = Tenant)))]
async fn resume_tenant(State(state): State<AppState>, scope: Scope) -> Result<Json<Tenant>> {
    set_status(state, scope, TenantStatus::Active, "tenant.resume").await
}

/// Deletes a tenant and everything it owns. Platform administrators only.
#[utoipa::path(delete, path = "/api/v1/tenants/{tenant}", tag = "tenants",
    params(("tenant" = String, Path, description = "Tenant id or slug")),
    responses((status = 204)))]
async fn delete_tenant(State(state): State<AppState>, scope: Scope) -> Result<StatusCode> {
    scope.caller.require_platform()?;
    let tenant = &scope.tenant;
    let mut tx = state.db.pool.begin().await?;
    let deleted = sqlx::query("DELETE FROM tenants WHERE id = $1")
        .bind(&tenant.id)
        .execute(&mut *tx)
        .await?;
    if deleted.rows_affected() == 0 {
        return Err(Error::NotFound("tenant"));
    }
    let change = Change {
        tenant: None,
        action: "tenant.delete",
        target: tenant.id.as_str(),
        before: Some(summary(tenant)),
        after: None,
    };
    audit::record(&mut tx, &scope.caller.actor(), change).await?;
    tx.commit().await?;
    state.invalidate(Invalidation::Hosts).await;
    state
        .invalidate(Invalidation::Policies(tenant.id.clone()))
        .await;
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
