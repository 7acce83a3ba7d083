//! The back-office API: projects and tickets for dispatchers and technicians.

use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;
use utoipa_axum::{router::OpenApiRouter, routes};

use super::model::{
    NewTicket, PositionReport, Project, ProjectChanges, ProjectInput, Status, StatusChange, Ticket,
    TicketChanges,
};
use super::store::{self, Filter};
use super::{fields, projects, service};
use crate::AppState;
use crate::error::{Error, ErrorBody, Result};
use crate::http::extract::{Json, Path, Query};
use crate::http::guard::Scope;
use crate::types::{Page, PageParams};

#[utoipa::path(get, path = "/api/v1/tenants/{tenant}/projects", tag = "tickets",
    params(("tenant" = String, Path, description = "Tenant id or slug"), PageParams),
    responses((status = 200, body = Page<Project>)))]
async fn list_projects(
    State(state): State<AppState>,
    scope: Scope,
    Query(page): Query<PageParams>,
) -> Result<Json<Page<Project>>> {
    let limit = page.limit()?;
    let rows =
        store::list_projects(&state.db.pool, &scope.tenant.id, page.after(), limit + 1).await?;
    Ok(Json(Page::from_rows(rows, limit, |p| &p.id)))
}

#[utoipa::path(post, path = "/api/v1/tenants/{tenant}/projects", tag = "tickets",
    params(("tenant" = String, Path, description = "Tenant id or slug")),
    request_body = ProjectInput, responses((status = 201, body = Project),
        (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn create_project(
    State(state): State<AppState>,
    scope: Scope,
    Json(input): Json<ProjectInput>,
) -> Result<(StatusCode, Json<Project>)> {
    let project = projects::create(&state, &scope.caller, &scope.tenant.id, input).await?;
    Ok((StatusCode::CREATED, Json(project)))
}

#[utoipa::path(patch, path = "/api/v1/tenants/{tenant}/projects/{project}", tag = "tickets",
    params(("tenant" = String, Path, description = "Tenant id or slug"), ("project" = String, Path)),
    request_body = ProjectChanges, responses((status = 200, body = Project),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn update_project(
    State(state): State<AppState>,
    scope: Scope,
    Path((_, id)): Path<(String, String)>,
    Json(input): Json<ProjectChanges>,
) -> Result<Json<Project>> {
    let project = projects::update(&state, &scope.caller, &scope.tenant.id, &id, input).await?;
    Ok(Json(project))
}

#[utoipa::path(delete, path = "/api/v1/tenants/{tenant}/projects/{project}", tag = "tickets",
    params(("tenant" = String, Path, description = "Tenant id or slug"), ("project" = String, Path)),
    responses((status = 204), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn delete_project(
    State(state): State<AppState>,
    scope: Scope,
    Path((_, id)): Path<(String, String)>,
) -> Result<StatusCode> {
    projects::delete(&state, &scope.caller, &scope.tenant.id, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Creates a ticket in step "Ticket Received" with its tracking link, shown once in the answer.
#[utoipa::path(post, path = "/api/v1/tenants/{tenant}/tickets", tag = "tickets",
    params(("tenant" = String, Path, description = "Tenant id or slug")),
    request_body = NewTicket, responses((status = 201, body = Ticket),
        (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn create_ticket(
    State(state): State<AppState>,
    scope: Scope,
    Json(input): Json<NewTicket>,
) -> Result<(StatusCode, Json<Ticket>)> {
    let tenant = &scope.tenant;
    let ticket = service::create(&state, &scope.caller, &tenant.id, &tenant.slug, input).await?;
    Ok((StatusCode::CREATED, Json(ticket)))
}

/// Filters of the ticket list.
#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct TicketFilter {
    #[param(value_type = Option<crate::tickets::Status>)]
    pub status: Option<String>,
    pub project_id: Option<String>,
    pub technician_id: Option<String>,
    /// Searches title, contact name and email, and the ticket number.
    pub q: Option<String>,
    /// Items per page, 1 to 200 (default 50).
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<u32>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

#[utoipa::path(get, path = "/api/v1/tenants/{tenant}/tickets", tag = "tickets",
    params(("tenant" = String, Path, description = "Tenant id or slug"), TicketFilter),
    responses((status = 200, body = Page<Ticket>), (status = 400, body = ErrorBody)))]
async fn list_tickets(
    State(state): State<AppState>,
    scope: Scope,
    Query(filter): Query<TicketFilter>,
) -> Result<Json<Page<Ticket>>> {
    let page = PageParams {
        limit: filter.limit,
        cursor: filter.cursor.clone(),
    };
    let limit = page.limit()?;
    let status = match &filter.status {
        Some(status) => Some(Status::parse(status).ok_or_else(|| Error::BadRequest {
            code: "invalid_query",
            message: format!("unknown status {status:?}"),
        })?),
        None => None,
    };
    let filter = Filter {
        status,
        project_id: filter.project_id.as_deref(),
        technician_id: filter.technician_id.as_deref(),
        q: filter.q.as_deref().map(str::trim).filter(|q| !q.is_empty()),
        after: page.after(),
        limit: limit + 1,
    };
    let tickets = service::list(&state.db.pool, &scope.tenant.id, &filter).await?;
    Ok(Json(Page::from_rows(tickets, limit, |t| &t.id)))
}

#[utoipa::path(get, path = "/api/v1/tenants/{tenant}/tickets/{ticket}", tag = "tickets",
    params(("tenant" = String, Path, description = "Tenant id or slug"), ("ticket" = String, Path)),
    responses((status = 200, body = Ticket), (status = 404, body = ErrorBody)))]
async fn get_ticket(
    State(state): State<AppState>,
    scope: Scope,
    Path((_, id)): Path<(String, String)>,
) -> Result<Json<Ticket>> {
    Ok(Json(
        service::load(&state.db.pool, &scope.tenant.id, &id).await?,
    ))
}

#[utoipa::path(patch, path = "/api/v1/tenants/{tenant}/tickets/{ticket}", tag = "tickets",
    params(("tenant" = String, Path, description = "Tenant id or slug"), ("ticket" = String, Path)),
    request_body = TicketChanges, responses((status = 200, body = Ticket),
        (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn update_ticket(
    State(state): State<AppState>,
    scope: Scope,
    Path((_, id)): Path<(String, String)>,
    Json(input): Json<TicketChanges>,
) -> Result<Json<Ticket>> {
    let ticket = service::update(&state, &scope.caller, &scope.tenant.id, &id, input).await?;
    Ok(Json(ticket))
}

/// Moves the ticket to another step. Steps go forward (skipping is allowed) or one step back;
/// a closed ticket stays closed.
#[utoipa::path(post, path = "/api/v1/tenants/{tenant}/tickets/{ticket}/status", tag = "tickets",
    params(("tenant" = String, Path, description = "Tenant id or slug"), ("ticket" = String, Path)),
    request_body = StatusChange, responses((status = 200, body = Ticket),
        (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn change_status(
    State(state): State<AppState>,
    scope: Scope,
    Path((_, id)): Path<(String, String)>,
    Json(input): Json<StatusChange>,
) -> Result<Json<Ticket>> {
    let ticket =
        service::change_status(&state, &scope.caller, &scope.tenant.id, &id, input.status).await?;
    Ok(Json(ticket))
}

/// The technician's live position and ETA; the ticket keeps the last one.
#[utoipa::path(post, path = "/api/v1/tenants/{tenant}/tickets/{ticket}/position", tag = "tickets",
    params(("tenant" = String, Path, description = "Tenant id or slug"), ("ticket" = String, Path)),
    request_body = PositionReport, responses((status = 200, body = Ticket),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn report_position(
    State(state): State<AppState>,
    scope: Scope,
    Path((_, id)): Path<(String, String)>,
    Json(input): Json<PositionReport>,
) -> Result<Json<Ticket>> {
    let ticket =
        service::report_position(&state, &scope.caller, &scope.tenant.id, &id, input).await?;
    Ok(Json(ticket))
}

/// Revokes the ticket's tracking link and issues a new one, returned in `tracking_url`.
#[utoipa::path(post, path = "/api/v1/tenants/{tenant}/tickets/{ticket}/tracking-link", tag = "tickets",
    params(("tenant" = String, Path, description = "Tenant id or slug"), ("ticket" = String, Path)),
    responses((status = 200, body = Ticket), (status = 404, body = ErrorBody)))]
async fn reissue_link(
    State(state): State<AppState>,
    scope: Scope,
    Path((_, id)): Path<(String, String)>,
) -> Result<Json<Ticket>> {
    let tenant = &scope.tenant;
    let ticket =
        service::reissue_link(&state, &scope.caller, &tenant.id, &tenant.slug, &id).await?;
    Ok(Json(ticket))
}

/// Revokes the ticket's tracking link; the page then says the link is not valid.
#[utoipa::path(delete, path = "/api/v1/tenants/{tenant}/tickets/{ticket}/tracking-link", tag = "tickets",
    params(("tenant" = String, Path, description = "Tenant id or slug"), ("ticket" = String, Path)),
    responses((status = 204), (status = 404, body = ErrorBody)))]
async fn revoke_link(
    State(state): State<AppState>,
    scope: Scope,
    Path((_, id)): Path<(String, String)>,
) -> Result<StatusCode> {
    service::revoke_link(&state, &scope.caller, &scope.tenant.id, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_projects, create_project))
        .routes(routes!(update_project, delete_project))
        .routes(routes!(list_tickets, create_ticket))
        .routes(routes!(get_ticket, update_ticket))
        .routes(routes!(change_status))
        .routes(routes!(report_position))
        .routes(routes!(reissue_link, revoke_link))
        .merge(fields::routes())
}
