//! The booking API: rule sets, which rules a profile or project offers, a preview with a pinned
//! clock, and the dispatcher's booking of a ticket's appointment.

use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};

use super::model::{Definition, RuleSet};
use super::service::{self, Booking, Check, Offer, Owner, Question};
use super::store;
use crate::AppState;
use crate::error::{Error, ErrorBody, Result};
use crate::http::extract::{Json, Path, Query};
use crate::http::guard::Scope;
use crate::tickets::service::BookedBy;
use crate::tickets::{self, Ticket};
use crate::types::{Language, Page, PageParams, TenantId};
use portico_sdk::time::Window;

#[utoipa::path(get, path = "/api/v1/tenants/{tenant}/booking-rules", tag = "booking",
    params(("tenant" = String, Path, description = "Tenant id or slug"), PageParams),
    responses((status = 200, body = Page<RuleSet>), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
async fn list_rules(
    State(state): State<AppState>,
    scope: Scope,
    Query(page): Query<PageParams>,
) -> Result<Json<Page<RuleSet>>> {
    let limit = page.limit()?;
    let rows = store::list(&state.db.pool, &scope.tenant.id, page.after(), limit + 1).await?;
    Ok(Json(Page::from_rows(rows, limit, |r| &r.id)))
}

#[utoipa::path(post, path = "/api/v1/tenants/{tenant}/booking-rules", tag = "booking",
    params(("tenant" = String, Path, description = "Tenant id or slug")),
    request_body = Definition,
    responses((status = 201, body = RuleSet), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 409, body = ErrorBody, description = "The name is taken"),
        (status = 422, body = ErrorBody, description = "Invalid rules; the message names the field")))]
async fn create_rules(
    State(state): State<AppState>,
    scope: Scope,
    Json(input): Json<Definition>,
) -> Result<(StatusCode, Json<RuleSet>)> {
    let rules = service::create(&state, &scope.caller, &scope.tenant.id, input).await?;
    Ok((StatusCode::CREATED, Json(rules)))
}

#[utoipa::path(get, path = "/api/v1/tenants/{tenant}/booking-rules/{rules}", tag = "booking",
    params(("tenant" = String, Path, description = "Tenant id or slug"), ("rules" = String, Path)),
    responses((status = 200, body = RuleSet), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn get_rules(
    State(state): State<AppState>,
    scope: Scope,
    Path((_, id)): Path<(String, String)>,
) -> Result<Json<RuleSet>> {
    Ok(Json(
        store::find(&state.db.pool, &scope.tenant.id, &id).await?,
    ))
}

/// Replaces the whole definition; bookings made stay as they are.
#[utoipa::path(put, path = "/api/v1/tenants/{tenant}/booking-rules/{rules}", tag = "booking",
    params(("tenant" = String, Path, description = "Tenant id or slug"), ("rules" = String, Path)),
    request_body = Definition,
    responses((status = 200, body = RuleSet), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody),
        (status = 422, body = ErrorBody)))]
async fn replace_rules(
    State(state): State<AppState>,
    scope: Scope,
    Path((_, id)): Path<(String, String)>,
    Json(input): Json<Definition>,
) -> Result<Json<RuleSet>> {
    Ok(Json(
        service::replace(&state, &scope.caller, &scope.tenant.id, &id, input).await?,
    ))
}

#[utoipa::path(delete, path = "/api/v1/tenants/{tenant}/booking-rules/{rules}", tag = "booking",
    params(("tenant" = String, Path, description = "Tenant id or slug"), ("rules" = String, Path)),
    responses((status = 204), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody, description = "A profile or project uses them (`rules_in_use`)")))]
async fn delete_rules(
    State(state): State<AppState>,
    scope: Scope,
    Path((_, id)): Path<(String, String)>,
) -> Result<StatusCode> {
    service::delete(&state, &scope.caller, &scope.tenant.id, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Which booking rules a profile or project offers.
#[derive(Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Assignment {
    pub rules_id: String,
}

#[utoipa::path(put, path = "/api/v1/tenants/{tenant}/portal-profiles/{profile}/booking-rules", tag = "booking",
    params(("tenant" = String, Path, description = "Tenant id or slug"), ("profile" = String, Path)),
    request_body = Assignment,
    responses((status = 200, body = Assignment), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn assign_profile(
    State(state): State<AppState>,
    scope: Scope,
    Path((_, id)): Path<(String, String)>,
    Json(input): Json<Assignment>,
) -> Result<Json<Assignment>> {
    let owner = Owner::Profile(&id);
    service::assign(
        &state,
        &scope.caller,
        &scope.tenant.id,
        owner,
        Some(&input.rules_id),
    )
    .await?;
    Ok(Json(input))
}

#[utoipa::path(delete, path = "/api/v1/tenants/{tenant}/portal-profiles/{profile}/booking-rules", tag = "booking",
    params(("tenant" = String, Path, description = "Tenant id or slug"), ("profile" = String, Path)),
    responses((status = 204), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody)))]
async fn unassign_profile(
    State(state): State<AppState>,
    scope: Scope,
    Path((_, id)): Path<(String, String)>,
) -> Result<StatusCode> {
    service::assign(
        &state,
        &scope.caller,
        &scope.tenant.id,
        Owner::Profile(&id),
        None,
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A project's own rules override its profile's.
#[utoipa::path(put, path = "/api/v1/tenants/{tenant}/projects/{project}/booking-rules", tag = "booking",
    params(("tenant" = String, Path, description = "Tenant id or slug"), ("project" = String, Path)),
    request_body = Assignment,
    responses((status = 200, body = Assignment), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn assign_project(
    State(state): State<AppState>,
    scope: Scope,
    Path((_, id)): Path<(String, String)>,
    Json(input): Json<Assignment>,
) -> Result<Json<Assignment>> {
    let owner = Owner::Project(&id);
    service::assign(
        &state,
        &scope.caller,
        &scope.tenant.id,
        owner,
        Some(&input.rules_id),
    )
    .await?;
    Ok(Json(input))
}

#[utoipa::path(delete, path = "/api/v1/tenants/{tenant}/projects/{project}/booking-rules", tag = "booking",
    params(("tenant" = String, Path, description = "Tenant id or slug"), ("project" = String, Path)),
    responses((status = 204), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody)))]
async fn unassign_project(
    State(state): State<AppState>,
    scope: Scope,
    Path((_, id)): Path<(String, String)>,
) -> Result<StatusCode> {
    service::assign(
        &state,
        &scope.caller,
        &scope.tenant.id,
        Owner::Project(&id),
        None,
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A span of time, for existing bookings in a preview.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Span {
    #[schema(value_type = String, format = DateTime)]
    pub start: jiff::Timestamp,
    #[schema(value_type = String, format = DateTime)]
    pub end: jiff::Timestamp,
}

/// The windows a rule set offers at a pinned time; nothing is booked.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = BookingPreviewRequest)]
pub struct PreviewRequest {
    /// A stored rule set; or give `rules`.
    pub rules_id: Option<String>,
    /// Rules given in the request; or name `rules_id`.
    pub rules: Option<Definition>,
    /// The clock to compute at; default: now.
    #[schema(value_type = Option<String>, format = DateTime)]
    pub now: Option<jiff::Timestamp>,
    /// When the ticket was created (the response rule counts from it); default: `now`.
    #[schema(value_type = Option<String>, format = DateTime)]
    pub created_at: Option<jiff::Timestamp>,
    /// Bookings that use capacity (at most 10,000); default: none.
    #[serde(default)]
    pub bookings: Vec<Span>,
    /// Ticket facts the calculator sees (type, priority, custom fields…).
    #[serde(default)]
    #[schema(value_type = Object)]
    pub ticket: Value,
}

/// A window, with its local date and times in the rules' time zone.
#[derive(Serialize, ToSchema)]
pub struct WindowView {
    #[schema(value_type = String, format = DateTime)]
    pub start: jiff::Timestamp,
    #[schema(value_type = String, format = DateTime)]
    pub end: jiff::Timestamp,
    pub capacity_left: u32,
    /// `YYYY-MM-DD` in the rules' time zone.
    pub date: String,
    /// `HH:MM` with the UTC offset, such as `08:00+01:00`.
    pub local_start: String,
    pub local_end: String,
}

/// What a rule set offers.
#[derive(Serialize, ToSchema)]
pub struct Windows {
    pub time_zone: String,
    /// False when the calculator failed or broke the rules: nothing is offered.
    pub available: bool,
    /// Why nothing is offered, for admins.
    pub problem: Option<String>,
    pub windows: Vec<WindowView>,
}

impl Windows {
    pub fn of(offer: Offer) -> Self {
        let local = |ms: i64| {
            jiff::Timestamp::from_millisecond(ms)
                .unwrap_or_default()
                .to_zoned(offer.time_zone.clone())
        };
        let (available, problem, slots) = match offer.windows {
            Ok(slots) => (true, None, slots),
            Err(problem) => (false, Some(problem), Vec::new()),
        };
        Self {
            time_zone: offer.request.time_zone,
            available,
            problem,
            windows: slots
                .into_iter()
                .map(|s| WindowView {
                    start: local(s.window.start).timestamp(),
                    end: local(s.window.end).timestamp(),
                    capacity_left: s.capacity_left,
                    date: local(s.window.start).date().to_string(),
                    local_start: local(s.window.start).strftime("%H:%M%:z").to_string(),
                    local_end: local(s.window.end).strftime("%H:%M%:z").to_string(),
                })
                .collect(),
        }
    }
}

/// Computes the windows a rule set offers at a pinned clock, through the same calculator and
/// checks as the portal; books nothing.
#[utoipa::path(post, path = "/api/v1/tenants/{tenant}/booking/preview", tag = "booking",
    params(("tenant" = String, Path, description = "Tenant id or slug")),
    request_body = PreviewRequest,
    responses((status = 200, body = Windows), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody, description = "No such rules"),
        (status = 422, body = ErrorBody)))]
async fn preview(
    State(state): State<AppState>,
    scope: Scope,
    Json(request): Json<PreviewRequest>,
) -> Result<Json<Windows>> {
    let tenant = &scope.tenant.id;
    let (rules_id, definition) = match (request.rules_id, request.rules) {
        (Some(id), None) => {
            let rules = store::find(&state.db.pool, tenant, &id).await?;
            (Some(rules.id), rules.definition)
        }
        (None, Some(definition)) => {
            service::check_calculator(&state, tenant, &definition).await?;
            (None, definition)
        }
        _ => {
            return Err(Error::invalid(
                "invalid_preview",
                "give either rules_id or rules",
            ));
        }
    };
    if request.bookings.len() > 10_000 {
        return Err(Error::invalid("invalid_preview", "at most 10000 bookings"));
    }
    let times = [request.now, request.created_at].into_iter().flatten();
    let spans = request.bookings.iter().flat_map(|b| [b.start, b.end]);
    if !times.chain(spans).all(near) {
        return Err(Error::invalid(
            "invalid_preview",
            "times must be within ten years of today",
        ));
    }
    let now = request
        .now
        .unwrap_or_else(jiff::Timestamp::now)
        .as_millisecond();
    let question = Question {
        ticket: request.ticket,
        created_at: request.created_at.map_or(now, |t| t.as_millisecond()),
        now,
        with_notice: true,
        bookings: Some(
            request
                .bookings
                .iter()
                .map(|b| Window {
                    start: b.start.as_millisecond(),
                    end: b.end.as_millisecond(),
                })
                .collect(),
        ),
        ticket_id: "",
    };
    let offer = service::offer(&state, tenant, rules_id.as_deref(), &definition, question).await?;
    Ok(Json(Windows::of(offer)))
}

/// Whether `at` is within ten years of now: the calendar needs dates it can compute.
fn near(at: jiff::Timestamp) -> bool {
    at.duration_since(jiff::Timestamp::now()).abs() < jiff::SignedDuration::from_hours(24 * 3660)
}

/// The rules a ticket books against, or 409 `no_booking_rules`.
async fn ticket_rules(state: &AppState, tenant: &TenantId, ticket: &Ticket) -> Result<RuleSet> {
    let language = Language::parse("en").expect("English is supported");
    let profile =
        crate::profiles::for_project(&state.db.pool, tenant, &ticket.project_id, &language).await?;
    service::rules_for(state, tenant, &ticket.project_id, &profile.id)
        .await?
        .ok_or_else(|| {
            Error::conflict(
                "no_booking_rules",
                "neither the ticket's project nor its portal profile names booking rules",
            )
        })
}

/// The windows the ticket may be booked in now, as staff see them (without the rules' notice).
#[utoipa::path(get, path = "/api/v1/tenants/{tenant}/tickets/{ticket}/booking", tag = "booking",
    params(("tenant" = String, Path, description = "Tenant id or slug"), ("ticket" = String, Path)),
    responses((status = 200, body = Windows), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody, description = "No booking rules apply (`no_booking_rules`)")))]
async fn ticket_windows(
    State(state): State<AppState>,
    scope: Scope,
    Path((_, id)): Path<(String, String)>,
) -> Result<Json<Windows>> {
    let tenant = &scope.tenant.id;
    let ticket = tickets::service::load(&state.db.pool, tenant, &id).await?;
    let rules = ticket_rules(&state, tenant, &ticket).await?;
    let question = Question {
        ticket: service::facts(&ticket),
        created_at: ticket.created_at.as_millisecond(),
        now: crate::db::now_ms(),
        with_notice: false,
        bookings: None,
        ticket_id: &ticket.id,
    };
    let offer =
        service::offer(&state, tenant, Some(&rules.id), &rules.definition, question).await?;
    Ok(Json(Windows::of(offer)))
}

/// A booking by staff.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BookRequest {
    #[schema(value_type = String, format = DateTime)]
    pub start: jiff::Timestamp,
    #[schema(value_type = String, format = DateTime)]
    pub end: jiff::Timestamp,
    /// Book outside the offered windows and capacity (the booking still uses capacity).
    #[serde(default, rename = "override")]
    pub force: bool,
}

/// Books or moves the ticket's appointment within its booking rules, without the customer
/// notice; `override` books any window. Moves a Received ticket to Scheduling.
#[utoipa::path(put, path = "/api/v1/tenants/{tenant}/tickets/{ticket}/booking", tag = "booking",
    params(("tenant" = String, Path, description = "Tenant id or slug"), ("ticket" = String, Path)),
    request_body = BookRequest,
    responses((status = 200, body = Ticket), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody, description = "`window_taken`, `booking_unavailable` or `no_booking_rules`"),
        (status = 422, body = ErrorBody)))]
async fn book(
    State(state): State<AppState>,
    scope: Scope,
    Path((_, id)): Path<(String, String)>,
    Json(request): Json<BookRequest>,
) -> Result<Json<Ticket>> {
    let tenant = &scope.tenant.id;
    let ticket = tickets::service::load(&state.db.pool, tenant, &id).await?;
    let rules = ticket_rules(&state, tenant, &ticket).await?;
    if !(near(request.start) && near(request.end)) {
        return Err(Error::invalid(
            "invalid_window",
            "an appointment is within ten years of today",
        ));
    }
    let window = Window {
        start: request.start.as_millisecond(),
        end: request.end.as_millisecond(),
    };
    let check = if request.force {
        Check::Override
    } else {
        Check::OfferedWithoutNotice
    };
    let booking = Booking {
        ticket: &ticket,
        rules: &rules,
        window,
        check,
        change_notice_ms: None,
    };
    Ok(Json(
        service::book(&state, &scope.caller.actor(), tenant, booking).await?,
    ))
}

#[utoipa::path(delete, path = "/api/v1/tenants/{tenant}/tickets/{ticket}/booking", tag = "booking",
    params(("tenant" = String, Path, description = "Tenant id or slug"), ("ticket" = String, Path)),
    responses((status = 200, body = Ticket), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody, description = "No appointment (`no_appointment`)")))]
async fn cancel(
    State(state): State<AppState>,
    scope: Scope,
    Path((_, id)): Path<(String, String)>,
) -> Result<Json<Ticket>> {
    let tenant = &scope.tenant.id;
    let ticket = tickets::service::load(&state.db.pool, tenant, &id).await?;
    let actor = scope.caller.actor();
    Ok(Json(
        service::cancel(&state, &actor, tenant, &ticket, BookedBy::Staff, None).await?,
    ))
}

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_rules, create_rules))
        .routes(routes!(get_rules, replace_rules, delete_rules))
        .routes(routes!(assign_profile, unassign_profile))
        .routes(routes!(assign_project, unassign_project))
        .routes(routes!(preview))
        .routes(routes!(ticket_windows, book, cancel))
}
