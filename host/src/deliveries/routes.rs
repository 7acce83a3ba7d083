//! The tenant's delivery log: what went to whom through which channel, with its attempts and
//! outcome; dead deliveries can be retried.

use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;
use utoipa::IntoParams;
use utoipa_axum::{router::OpenApiRouter, routes};

use super::model::{Delivery, Status};
use super::{service, store};
use crate::AppState;
use crate::error::{ErrorBody, Result};
use crate::http::extract::{Json, Path, Query};
use crate::http::guard::Scope;
use crate::types::{Page, PageParams, Principal};

const RETRY_ROUTE: &str = "/api/v1/tenants/{tenant}/deliveries/{delivery}/retry";

/// Recipients' addresses are shown in full only to those who may act on deliveries.
async fn sees_addresses(state: &AppState, scope: &Scope) -> bool {
    match &scope.caller.principal {
        Principal::Platform { .. } => true,
        Principal::Staff { user_id, .. } => {
            state
                .authz
                .is_allowed(&scope.tenant.id, user_id, RETRY_ROUTE, "POST")
                .await
        }
    }
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct DeliveryFilter {
    /// `pending`, `sending`, `sent` or `dead`.
    status: Option<Status>,
    action_id: Option<String>,
    ticket_id: Option<String>,
    /// Items per page, 1 to 200 (default 50).
    #[param(minimum = 1, maximum = 200)]
    limit: Option<u32>,
    /// The `next_cursor` of the previous page.
    cursor: Option<String>,
}

#[utoipa::path(get, path = "/api/v1/tenants/{tenant}/deliveries", tag = "automations",
    params(("tenant" = String, Path, description = "Tenant id or slug"), DeliveryFilter),
    responses((status = 200, body = Page<Delivery>), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
async fn list_deliveries(
    State(state): State<AppState>,
    scope: Scope,
    Query(filter): Query<DeliveryFilter>,
) -> Result<Json<Page<Delivery>>> {
    let page = PageParams {
        limit: filter.limit,
        cursor: filter.cursor.clone(),
    };
    let limit = page.limit()?;
    let rows = store::list(
        &state.db.pool,
        &scope.tenant.id,
        &store::Filter {
            status: filter.status,
            action_id: filter.action_id.as_deref(),
            ticket_id: filter.ticket_id.as_deref(),
            after: page.after(),
            limit: limit + 1,
        },
    )
    .await?;
    let masked = !sees_addresses(&state, &scope).await;
    let views = rows.iter().map(|r| r.view(masked, false)).collect();
    Ok(Json(Page::from_rows(views, limit, |d: &Delivery| &d.id)))
}

#[utoipa::path(get, path = "/api/v1/tenants/{tenant}/deliveries/{delivery}", tag = "automations",
    params(("tenant" = String, Path, description = "Tenant id or slug"), ("delivery" = String, Path)),
    responses((status = 200, body = Delivery, description = "With the rendered message, its links shown as placeholders"),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn get_delivery(
    State(state): State<AppState>,
    scope: Scope,
    Path((_, id)): Path<(String, String)>,
) -> Result<Json<Delivery>> {
    let row = store::find(&state.db.pool, &scope.tenant.id, &id).await?;
    let masked = !sees_addresses(&state, &scope).await;
    Ok(Json(row.view(masked, true)))
}

#[utoipa::path(post, path = "/api/v1/tenants/{tenant}/deliveries/{delivery}/retry", tag = "automations",
    params(("tenant" = String, Path, description = "Tenant id or slug"), ("delivery" = String, Path)),
    responses((status = 202, body = Delivery, description = "Queued again with fresh attempts"),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody, description = "The delivery is not dead")))]
async fn retry_delivery(
    State(state): State<AppState>,
    scope: Scope,
    Path((_, id)): Path<(String, String)>,
) -> Result<(StatusCode, Json<Delivery>)> {
    let tenant = &scope.tenant.id;
    store::find(&state.db.pool, tenant, &id).await?;
    service::retry(&state, &scope.caller, tenant, &id).await?;
    let row = store::find(&state.db.pool, tenant, &id).await?;
    Ok((StatusCode::ACCEPTED, Json(row.view(false, true))))
}

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_deliveries))
        .routes(routes!(get_delivery))
        .routes(routes!(retry_delivery))
}
