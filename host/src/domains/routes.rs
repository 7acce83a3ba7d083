//! `/api/v1/tenants/{tenant}/domains`: custom domains and their verification.

use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};

use super::model::Domain;
use super::{service, store};
use crate::AppState;
use crate::error::{ErrorBody, Result};
use crate::http::extract::{Json, Path, Query};
use crate::http::guard::Scope;
use crate::types::{DomainName, Page, PageParams};

#[utoipa::path(get, path = "/api/v1/tenants/{tenant}/domains", tag = "domains",
    params(("tenant" = String, Path, description = "Tenant id or slug"), PageParams),
    responses((status = 200, body = Page<Domain>)))]
async fn list_domains(
    State(state): State<AppState>,
    scope: Scope,
    Query(page): Query<PageParams>,
) -> Result<Json<Page<Domain>>> {
    let limit = page.limit()?;
    let rows = store::list(&state.db.pool, &scope.tenant.id, page.after(), limit + 1).await?;
    Ok(Json(
        Page::from_rows(rows, limit, |d| &d.id).map(Domain::from),
    ))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AddDomain {
    /// Two or more DNS labels, the last not all digits.
    #[schema(
        value_type = String,
        example = "service.example.com",
        max_length = 253,
        pattern = "^([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\\.)+[a-z]([a-z0-9-]{0,61}[a-z0-9])?$"
    )]
    pub name: DomainName,
}

/// Adds a custom domain, pending until verified.
#[utoipa::path(post, path = "/api/v1/tenants/{tenant}/domains", tag = "domains",
    params(("tenant" = String, Path, description = "Tenant id or slug")),
    request_body = AddDomain,
    responses((status = 201, body = Domain), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn add_domain(
    State(state): State<AppState>,
    scope: Scope,
    Json(input): Json<AddDomain>,
) -> Result<(StatusCode, Json<Domain>)> {
    let domain = service::add(&state, &scope.caller, &scope.tenant.id, &input.name).await?;
    Ok((StatusCode::CREATED, Json(domain)))
}

#[utoipa::path(get, path = "/api/v1/tenants/{tenant}/domains/{domain}", tag = "domains",
    params(("tenant" = String, Path, description = "Tenant id or slug"), ("domain" = String, Path)),
    responses((status = 200, body = Domain), (status = 404, body = ErrorBody)))]
async fn get_domain(
    State(state): State<AppState>,
    scope: Scope,
    Path((_, id)): Path<(String, String)>,
) -> Result<Json<Domain>> {
    Ok(Json(
        store::find(&state.db.pool, &scope.tenant.id, &id)
            .await?
            .into(),
    ))
}

/// Looks up the challenge TXT record; when it holds the token, the domain becomes active.
#[utoipa::path(post, path = "/api/v1/tenants/{tenant}/domains/{domain}/verify", tag = "domains",
    params(("tenant" = String, Path, description = "Tenant id or slug"), ("domain" = String, Path)),
    responses((status = 200, body = Domain), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn verify_domain(
    State(state): State<AppState>,
    scope: Scope,
    Path((_, id)): Path<(String, String)>,
) -> Result<Json<Domain>> {
    let domain = service::verify(&state, &scope.caller, &scope.tenant.id, &id).await?;
    Ok(Json(domain))
}

#[utoipa::path(delete, path = "/api/v1/tenants/{tenant}/domains/{domain}", tag = "domains",
    params(("tenant" = String, Path, description = "Tenant id or slug"), ("domain" = String, Path)),
    responses((status = 204), (status = 404, body = ErrorBody)))]
async fn delete_domain(
    State(state): State<AppState>,
    scope: Scope,
    Path((_, id)): Path<(String, String)>,
) -> Result<StatusCode> {
    service::delete(&state, &scope.caller, &scope.tenant.id, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_domains, add_domain))
        .routes(routes!(get_domain, delete_domain))
        .routes(routes!(verify_domain))
}
