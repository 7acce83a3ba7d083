//! The admin API of automated actions and message templates, with preview and test send.

use axum::extract::State;
use axum::http::StatusCode;
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};

use super::model::{
    Action, ActionChanges, MessageTemplate, MessageTemplateChanges, NewAction, NewMessageTemplate,
    PreviewMessage, PreviewRequest, TestSendRequest,
};
use super::{service, store};
use crate::AppState;
use crate::error::{ErrorBody, Result};
use crate::http::extract::{Json, Path, Query};
use crate::http::guard::Scope;
use crate::types::{Page, PageParams};

#[utoipa::path(get, path = "/api/v1/tenants/{tenant}/automated-actions", tag = "automations",
    params(("tenant" = String, Path, description = "Tenant id or slug"), PageParams),
    responses((status = 200, body = Page<Action>), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
async fn list_actions(
    State(state): State<AppState>,
    scope: Scope,
    Query(page): Query<PageParams>,
) -> Result<Json<Page<Action>>> {
    let limit = page.limit()?;
    let rows =
        store::list_actions(&state.db.pool, &scope.tenant.id, page.after(), limit + 1).await?;
    Ok(Json(Page::from_rows(rows, limit, |a| &a.id)))
}

#[utoipa::path(post, path = "/api/v1/tenants/{tenant}/automated-actions", tag = "automations",
    params(("tenant" = String, Path, description = "Tenant id or slug")),
    request_body = NewAction,
    responses((status = 201, body = Action), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 409, body = ErrorBody),
        (status = 422, body = ErrorBody, description = "Invalid; a template error carries its position")))]
async fn create_action(
    State(state): State<AppState>,
    scope: Scope,
    Json(input): Json<NewAction>,
) -> Result<(StatusCode, Json<Action>)> {
    let action = service::create(&state, &scope.caller, &scope.tenant.id, input).await?;
    Ok((StatusCode::CREATED, Json(action)))
}

#[utoipa::path(get, path = "/api/v1/tenants/{tenant}/automated-actions/{action}", tag = "automations",
    params(("tenant" = String, Path, description = "Tenant id or slug"), ("action" = String, Path)),
    responses((status = 200, body = Action), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn get_action(
    State(state): State<AppState>,
    scope: Scope,
    Path((_, id)): Path<(String, String)>,
) -> Result<Json<Action>> {
    Ok(Json(
        store::find_action(&state.db.pool, &scope.tenant.id, &id).await?,
    ))
}

#[utoipa::path(patch, path = "/api/v1/tenants/{tenant}/automated-actions/{action}", tag = "automations",
    params(("tenant" = String, Path, description = "Tenant id or slug"), ("action" = String, Path)),
    request_body = ActionChanges,
    responses((status = 200, body = Action), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody),
        (status = 422, body = ErrorBody)))]
async fn update_action(
    State(state): State<AppState>,
    scope: Scope,
    Path((_, id)): Path<(String, String)>,
    Json(changes): Json<ActionChanges>,
) -> Result<Json<Action>> {
    Ok(Json(
        service::update(&state, &scope.caller, &scope.tenant.id, &id, changes).await?,
    ))
}

#[utoipa::path(delete, path = "/api/v1/tenants/{tenant}/automated-actions/{action}", tag = "automations",
    params(("tenant" = String, Path, description = "Tenant id or slug"), ("action" = String, Path)),
    responses((status = 204), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody)))]
async fn delete_action(
    State(state): State<AppState>,
    scope: Scope,
    Path((_, id)): Path<(String, String)>,
) -> Result<StatusCode> {
    service::delete(&state, &scope.caller, &scope.tenant.id, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The messages an action would send, rendered; nothing is sent and no link is issued.
#[utoipa::path(post, path = "/api/v1/tenants/{tenant}/automated-actions/{action}/preview", tag = "automations",
    params(("tenant" = String, Path, description = "Tenant id or slug"), ("action" = String, Path)),
    request_body = PreviewRequest,
    responses((status = 200, body = Vec<PreviewMessage>), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn preview_action(
    State(state): State<AppState>,
    scope: Scope,
    Path((_, id)): Path<(String, String)>,
    Json(request): Json<PreviewRequest>,
) -> Result<Json<Vec<PreviewMessage>>> {
    Ok(Json(
        service::preview(&state, &scope.tenant.id, &id, &request.ticket_id).await?,
    ))
}

#[derive(Serialize, ToSchema)]
pub struct TestSendResult {
    /// The queued deliveries; follow them in the delivery log.
    pub deliveries: Vec<String>,
}

/// Sends every step's message for a ticket to one given address, with real links.
#[utoipa::path(post, path = "/api/v1/tenants/{tenant}/automated-actions/{action}/test-send", tag = "automations",
    params(("tenant" = String, Path, description = "Tenant id or slug"), ("action" = String, Path)),
    request_body = TestSendRequest,
    responses((status = 202, body = TestSendResult), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 422, body = ErrorBody),
        (status = 429, body = ErrorBody, description = "The tenant's sending limit is reached; see Retry-After")))]
async fn test_send(
    State(state): State<AppState>,
    scope: Scope,
    Path((_, id)): Path<(String, String)>,
    Json(request): Json<TestSendRequest>,
) -> Result<(StatusCode, Json<TestSendResult>)> {
    let deliveries = service::test_send(
        &state,
        &scope.caller,
        &scope.tenant.id,
        &id,
        &request.ticket_id,
        &request.to,
    )
    .await?;
    Ok((StatusCode::ACCEPTED, Json(TestSendResult { deliveries })))
}

#[utoipa::path(get, path = "/api/v1/tenants/{tenant}/message-templates", tag = "automations",
    params(("tenant" = String, Path, description = "Tenant id or slug"), PageParams),
    responses((status = 200, body = Page<MessageTemplate>), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
async fn list_templates(
    State(state): State<AppState>,
    scope: Scope,
    Query(page): Query<PageParams>,
) -> Result<Json<Page<MessageTemplate>>> {
    let limit = page.limit()?;
    let rows =
        store::list_templates(&state.db.pool, &scope.tenant.id, page.after(), limit + 1).await?;
    Ok(Json(Page::from_rows(rows, limit, |t| &t.id)))
}

#[utoipa::path(post, path = "/api/v1/tenants/{tenant}/message-templates", tag = "automations",
    params(("tenant" = String, Path, description = "Tenant id or slug")),
    request_body = NewMessageTemplate,
    responses((status = 201, body = MessageTemplate), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 409, body = ErrorBody),
        (status = 422, body = ErrorBody, description = "Invalid; a template error carries its position")))]
async fn create_template(
    State(state): State<AppState>,
    scope: Scope,
    Json(input): Json<NewMessageTemplate>,
) -> Result<(StatusCode, Json<MessageTemplate>)> {
    let template = service::create_template(&state, &scope.caller, &scope.tenant.id, input).await?;
    Ok((StatusCode::CREATED, Json(template)))
}

#[utoipa::path(get, path = "/api/v1/tenants/{tenant}/message-templates/{template}", tag = "automations",
    params(("tenant" = String, Path, description = "Tenant id or slug"), ("template" = String, Path)),
    responses((status = 200, body = MessageTemplate), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn get_template(
    State(state): State<AppState>,
    scope: Scope,
    Path((_, id)): Path<(String, String)>,
) -> Result<Json<MessageTemplate>> {
    Ok(Json(
        store::find_template(&state.db.pool, &scope.tenant.id, &id).await?,
    ))
}

#[utoipa::path(patch, path = "/api/v1/tenants/{tenant}/message-templates/{template}", tag = "automations",
    params(("tenant" = String, Path, description = "Tenant id or slug"), ("template" = String, Path)),
    request_body = MessageTemplateChanges,
    responses((status = 200, body = MessageTemplate), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn update_template(
    State(state): State<AppState>,
    scope: Scope,
    Path((_, id)): Path<(String, String)>,
    Json(changes): Json<MessageTemplateChanges>,
) -> Result<Json<MessageTemplate>> {
    Ok(Json(
        service::update_template(&state, &scope.caller, &scope.tenant.id, &id, changes).await?,
    ))
}

#[utoipa::path(delete, path = "/api/v1/tenants/{tenant}/message-templates/{template}", tag = "automations",
    params(("tenant" = String, Path, description = "Tenant id or slug"), ("template" = String, Path)),
    responses((status = 204), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody, description = "An active action sends this template")))]
async fn delete_template(
    State(state): State<AppState>,
    scope: Scope,
    Path((_, id)): Path<(String, String)>,
) -> Result<StatusCode> {
    service::delete_template(&state, &scope.caller, &scope.tenant.id, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_actions, create_action))
        .routes(routes!(get_action, update_action, delete_action))
        .routes(routes!(preview_action))
        .routes(routes!(test_send))
        .routes(routes!(list_templates, create_template))
        .routes(routes!(get_template, update_template, delete_template))
}
