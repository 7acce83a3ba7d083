//! A tenant's event history.

use axum::extract::State;
use serde::Deserialize;
use utoipa_axum::{router::OpenApiRouter, routes};

use super::model::EventView;
use super::store::{self, Filter};
use crate::AppState;
use crate::error::Result;
use crate::http::extract::{Json, Query};
use crate::http::guard::Scope;
use crate::types::{Page, PageParams};

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct EventFilter {
    /// Only events of this kind, such as `ticket_status_changed`.
    pub kind: Option<String>,
    /// Only events about this id (a ticket's events are its full history).
    pub subject: Option<String>,
}

/// What happened in this tenant, oldest first, for as long as events are kept.
#[utoipa::path(get, path = "/api/v1/tenants/{tenant}/events", tag = "events",
    params(("tenant" = String, Path, description = "Tenant id or slug"), EventFilter, PageParams),
    responses((status = 200, body = Page<EventView>), (status = 400, body = crate::error::ErrorBody)))]
async fn list_events(
    State(state): State<AppState>,
    scope: Scope,
    Query(filter): Query<EventFilter>,
    Query(page): Query<PageParams>,
) -> Result<Json<Page<EventView>>> {
    let limit = page.limit()?;
    let filter = Filter {
        kind: filter.kind.as_deref(),
        subject: filter.subject.as_deref(),
        after: page.after(),
        limit: limit + 1,
    };
    let rows = store::list(&state.db.pool, &scope.tenant.id, &filter).await?;
    let page = Page::from_rows(rows, limit, |r| &r.id);
    Ok(Json(page.map(|r| EventView::from(&r))))
}

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(list_events))
}
