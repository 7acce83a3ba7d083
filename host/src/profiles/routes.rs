//! The admin API of portal profiles: create, edit, clone, delete, logo upload.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};

use super::model::{NewProfile, Profile, ProfileChanges};
use super::{service, store};
use crate::AppState;
use crate::error::{ErrorBody, Result};
use crate::http::extract::{Json, Path, Query};
use crate::http::guard::Scope;
use crate::types::{Page, PageParams};

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CloneRequest {
    /// The copy's name; defaults to the original's with " (copy)".
    pub name: Option<String>,
}

#[utoipa::path(get, path = "/api/v1/tenants/{tenant}/portal-profiles", tag = "portal",
    params(("tenant" = String, Path, description = "Tenant id or slug"), PageParams),
    responses((status = 200, body = Page<Profile>)))]
async fn list_profiles(
    State(state): State<AppState>,
    scope: Scope,
    Query(page): Query<PageParams>,
) -> Result<Json<Page<Profile>>> {
    let limit = page.limit()?;
    let rows = store::list(&state.db.pool, &scope.tenant.id, page.after(), limit + 1).await?;
    Ok(Json(Page::from_rows(rows, limit, |p| &p.id)))
}

#[utoipa::path(post, path = "/api/v1/tenants/{tenant}/portal-profiles", tag = "portal",
    params(("tenant" = String, Path, description = "Tenant id or slug")),
    request_body = NewProfile, responses((status = 201, body = Profile),
        (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn create_profile(
    State(state): State<AppState>,
    scope: Scope,
    Json(input): Json<NewProfile>,
) -> Result<(StatusCode, Json<Profile>)> {
    let tenant = &scope.tenant;
    let profile =
        service::create(&state, &scope.caller, &tenant.id, &tenant.language, input).await?;
    Ok((StatusCode::CREATED, Json(profile)))
}

#[utoipa::path(get, path = "/api/v1/tenants/{tenant}/portal-profiles/{profile}", tag = "portal",
    params(("tenant" = String, Path, description = "Tenant id or slug"), ("profile" = String, Path)),
    responses((status = 200, body = Profile), (status = 404, body = ErrorBody)))]
async fn get_profile(
    State(state): State<AppState>,
    scope: Scope,
    Path((_, id)): Path<(String, String)>,
) -> Result<Json<Profile>> {
    Ok(Json(
        store::find(&state.db.pool, &scope.tenant.id, &id).await?,
    ))
}

#[utoipa::path(patch, path = "/api/v1/tenants/{tenant}/portal-profiles/{profile}", tag = "portal",
    params(("tenant" = String, Path, description = "Tenant id or slug"), ("profile" = String, Path)),
    request_body = ProfileChanges, responses((status = 200, body = Profile),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn update_profile(
    State(state): State<AppState>,
    scope: Scope,
    Path((_, id)): Path<(String, String)>,
    Json(input): Json<ProfileChanges>,
) -> Result<Json<Profile>> {
    let profile = service::update(&state, &scope.caller, &scope.tenant.id, &id, input).await?;
    Ok(Json(profile))
}

/// Copies a profile, logo included, under a new name. The copy is never the default.
#[utoipa::path(post, path = "/api/v1/tenants/{tenant}/portal-profiles/{profile}/clone", tag = "portal",
    params(("tenant" = String, Path, description = "Tenant id or slug"), ("profile" = String, Path)),
    request_body = CloneRequest, responses((status = 201, body = Profile),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn clone_profile(
    State(state): State<AppState>,
    scope: Scope,
    Path((_, id)): Path<(String, String)>,
    Json(input): Json<CloneRequest>,
) -> Result<(StatusCode, Json<Profile>)> {
    let copy = service::clone(&state, &scope.caller, &scope.tenant.id, &id, input.name).await?;
    Ok((StatusCode::CREATED, Json(copy)))
}

/// Deletes a profile; its projects fall back to the default. The default cannot be deleted.
#[utoipa::path(delete, path = "/api/v1/tenants/{tenant}/portal-profiles/{profile}", tag = "portal",
    params(("tenant" = String, Path, description = "Tenant id or slug"), ("profile" = String, Path)),
    responses((status = 204), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn delete_profile(
    State(state): State<AppState>,
    scope: Scope,
    Path((_, id)): Path<(String, String)>,
) -> Result<StatusCode> {
    service::delete(&state, &scope.caller, &scope.tenant.id, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Sets the logo. The body is the image itself (PNG or JPEG, at most 20 KB, within the
/// configured pixel size); it is decoded and stored re-encoded as PNG.
#[utoipa::path(put, path = "/api/v1/tenants/{tenant}/portal-profiles/{profile}/logo", tag = "portal",
    params(("tenant" = String, Path, description = "Tenant id or slug"), ("profile" = String, Path)),
    request_body(content = Vec<u8>, content_type = "image/png"),
    responses((status = 200, body = Profile), (status = 404, body = ErrorBody),
        (status = 413, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn put_logo(
    State(state): State<AppState>,
    scope: Scope,
    Path((_, id)): Path<(String, String)>,
    body: Bytes,
) -> Result<Json<Profile>> {
    let image = Vec::from(body);
    let profile = service::set_logo(&state, &scope.caller, &scope.tenant.id, &id, image).await?;
    Ok(Json(profile))
}

#[utoipa::path(delete, path = "/api/v1/tenants/{tenant}/portal-profiles/{profile}/logo", tag = "portal",
    params(("tenant" = String, Path, description = "Tenant id or slug"), ("profile" = String, Path)),
    responses((status = 200, body = Profile), (status = 404, body = ErrorBody)))]
async fn delete_logo(
    State(state): State<AppState>,
    scope: Scope,
    Path((_, id)): Path<(String, String)>,
) -> Result<Json<Profile>> {
    let profile = service::remove_logo(&state, &scope.caller, &scope.tenant.id, &id).await?;
    Ok(Json(profile))
}

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_profiles, create_profile))
        .routes(routes!(get_profile, update_profile, delete_profile))
        .routes(routes!(clone_profile))
        .routes(routes!(put_logo, delete_logo))
}
