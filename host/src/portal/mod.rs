//! The tracking page end users open from a link: `/t/<token>` on the tenant's portal host,
//! with live updates over server-sent events, the booking page (choose, change or cancel an
//! appointment, download it as `.ics`) and the feedback form. No login; the token opens one ticket of one tenant, and failed guesses are rate-limited per
//! client address. Pages are branded by the project's portal profile and rendered by its theme.

mod live;
mod render;
pub mod view;

pub use live::{LiveStreams, TicketChanges};

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::Duration;

use axum::extract::{FromRequest, Path, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::{Form, Router};
use minijinja::context;
use moka::future::Cache;
use serde::Deserialize;

use crate::error::Error;
use crate::plugins::bindings::theme::exports::portico::plugin::pages::PageKind;
use crate::profiles::{self, Profile};
use crate::tenants::Tenant;
use crate::tickets::Ticket;
use crate::tickets::feedback::{self, Refusal};
use crate::tickets::service::{give_feedback, load};
use crate::tickets::{Status, links};
use crate::types::{LANGUAGES, Language};
use crate::{AppState, booking};
use portico_sdk::time::Window;
use view::{
    BOOKING_SCRIPT, BookingView, Branding, FeedbackView, LIVE_SCRIPT, Links, Rating, TenantView,
    ViewModel,
};

/// The actor end users' changes are recorded as.
const END_USER: &str = "end user";

/// Failed link lookups allowed per client address within [`GUESS_WINDOW`].
const MAX_FAILED_GUESSES: u32 = 20;
const GUESS_WINDOW: Duration = Duration::from_secs(600);

/// Texts of the portal pages, per language.
pub struct Texts(HashMap<&'static str, HashMap<String, String>>);

impl Texts {
    pub fn load() -> anyhow::Result<Self> {
        let sources = [
            ("en", include_str!("../../translations/en.toml")),
            ("de", include_str!("../../translations/de.toml")),
            ("es", include_str!("../../translations/es.toml")),
        ];
        let mut texts = HashMap::new();
        for (language, source) in sources {
            texts.insert(language, toml::from_str(source)?);
        }
        Ok(Self(texts))
    }

    pub fn get(&self, language: &str) -> &HashMap<String, String> {
        self.0
            .get(language)
            .or_else(|| self.0.get("en"))
            .expect("English texts are built in")
    }
}

/// Failed guesses per client: an IPv4 address or an IPv6 /64 (one subscriber's network).
/// Bounded in size: past it, moka evicts the least used entries.
pub type GuessCounter = Cache<IpAddr, u32>;

pub fn guess_counter() -> GuessCounter {
    Cache::builder()
        .max_capacity(100_000)
        .time_to_live(GUESS_WINDOW)
        .build()
}

pub fn routes(state: &AppState) -> Router<AppState> {
    Router::new()
        .route("/t/{token}", get(tracking_page))
        .route("/t/{token}/events", get(live::tracking_events))
        .route("/t/{token}/booking", get(booking_page).post(submit_booking))
        .route(
            "/t/{token}/booking/cancel",
            axum::routing::post(cancel_booking),
        )
        .route("/t/{token}/appointment.ics", get(appointment_calendar))
        .route("/t/{token}/feedback", axum::routing::post(submit_feedback))
        .route("/portal/logo/{profile}", get(logo))
        .route(LIVE_SCRIPT, get(live_script))
        .route(BOOKING_SCRIPT, get(booking_script))
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            within_host_tenant,
        ))
}

/// Runs a portal request in the name of the tenant its host serves (see
/// [`crate::db::within_tenant`]); a host that serves none (or cannot be looked up now) runs in
/// no tenant's name, so its handler, which answers with a not-found page, can see no rows.
async fn within_host_tenant(
    State(state): State<AppState>,
    request: Request,
    next: axum::middleware::Next,
) -> Response {
    let tenant = match crate::http::request_host(&state, &request) {
        Some(host) => state.hosts.resolve(&host).await.ok().flatten(),
        None => None,
    };
    match tenant {
        Some(tenant) => crate::db::within_tenant(&tenant.id, next.run(request)).await,
        None => crate::db::within_no_tenant(next.run(request)).await,
    }
}

/// The profile's language, unless the browser prefers another one we have.
fn language(default: &str, headers: &HeaderMap) -> String {
    let accepted = headers
        .get(header::ACCEPT_LANGUAGE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let mut ranked: Vec<(f32, &str)> = accepted
        .split(',')
        .filter_map(|part| {
            let mut pieces = part.trim().split(';');
            let tag = pieces.next()?.split('-').next()?.trim();
            let quality = pieces
                .find_map(|p| p.trim().strip_prefix("q=")?.parse().ok())
                .unwrap_or(1.0);
            Some((quality, tag))
        })
        .collect();
    ranked.sort_by(|a, b| b.0.total_cmp(&a.0));
    ranked
        .into_iter()
        .map(|(_, tag)| tag.to_ascii_lowercase())
        .find(|tag| LANGUAGES.contains(&tag.as_str()))
        .unwrap_or_else(|| default.to_string())
}

/// Who asks: the host they asked for, their headers and address.
struct Visitor {
    host: Option<String>,
    headers: HeaderMap,
    client: Option<IpAddr>,
}

impl Visitor {
    fn of(state: &AppState, request: &Request) -> Self {
        Self {
            host: crate::http::request_host(state, request),
            client: crate::http::client_address(state, request.headers(), request.extensions())
                .map(crate::http::network_of),
            headers: request.headers().clone(),
        }
    }
}

/// What a live link opens.
struct Opened {
    tenant: Tenant,
    ticket: Ticket,
    profile: Profile,
    language: String,
}

/// The tenant a portal host belongs to, or the page to show instead.
async fn portal_tenant(state: &AppState, visitor: &Visitor) -> Result<Tenant, Response> {
    let Some(host) = &visitor.host else {
        return Err(state.pages.not_found());
    };
    let tenant = match state.hosts.resolve(host).await {
        Ok(Some(tenant)) => tenant,
        Ok(None) => return Err(state.pages.not_found()),
        Err(e) => {
            tracing::error!(error = ?e, "host resolution failed");
            return Err(StatusCode::SERVICE_UNAVAILABLE.into_response());
        }
    };
    if tenant.is_suspended() {
        let language = language(&tenant.language, &visitor.headers);
        return Err(render::message(
            state,
            &tenant,
            PageKind::Unavailable,
            StatusCode::SERVICE_UNAVAILABLE,
            &language,
        )
        .await);
    }
    Ok(tenant)
}

/// The tenant's language as stored (checked when it was set), English if it is not one we
/// have anymore.
fn default_language(tenant: &Tenant) -> Language {
    Language::parse(&tenant.language)
        .unwrap_or_else(|_| Language::parse("en").expect("English is supported"))
}

/// Whether the link has expired: its profile lets links lapse some days after Closed.
fn expired(profile: &Profile, ticket: &Ticket) -> bool {
    let (Some(days), Status::Closed) = (profile.link_expiry_days, ticket.status) else {
        return false;
    };
    let closed_at = ticket
        .timeline
        .iter()
        .rev()
        .find(|s| s.status == Status::Closed)
        .map_or(ticket.updated_at, |s| s.at);
    jiff::Timestamp::now().duration_since(closed_at) > jiff::SignedDuration::from_hours(24 * days)
}

/// What a link opens, or the page to show instead.
async fn open(state: &AppState, visitor: &Visitor, token: &str) -> Result<Opened, Response> {
    let tenant = portal_tenant(state, visitor).await?;
    let client = visitor.client;
    let failures = match client {
        Some(ip) => state.guesses.get(&ip).await.unwrap_or(0),
        None => 0,
    };
    let tenant_language = language(&tenant.language, &visitor.headers);
    // A valid link is always served: only failed guesses are limited, so nobody's guessing
    // can lock an end user out of their ticket.
    let ticket_id = match links::resolve(&state.db.pool, &tenant.id, token).await {
        Ok(Some(id)) => id,
        Ok(None) => {
            if failures >= MAX_FAILED_GUESSES {
                let texts = state.texts.get(&tenant_language);
                let mut page = state.pages.render(
                    StatusCode::TOO_MANY_REQUESTS,
                    "link_invalid.html",
                    context! { heading => texts.get("too_many_title"), text => texts.get("too_many_text"), lang => &tenant_language },
                );
                page.headers_mut().insert(
                    axum::http::header::RETRY_AFTER,
                    axum::http::HeaderValue::from(GUESS_WINDOW.as_secs()),
                );
                return Err(page);
            }
            if let Some(ip) = client {
                // One atomic step, so that parallel misses all count.
                state
                    .guesses
                    .entry(ip)
                    .and_upsert_with(|n| std::future::ready(n.map_or(1, |n| n.into_value() + 1)))
                    .await;
            }
            return Err(render::message(
                state,
                &tenant,
                PageKind::NotFound,
                StatusCode::NOT_FOUND,
                &tenant_language,
            )
            .await);
        }
        Err(e) => return Err(e.into_response()),
    };
    let ticket = load(&state.db.pool, &tenant.id, &ticket_id)
        .await
        .map_err(IntoResponse::into_response)?;
    let profile = profiles::for_project(
        &state.db.pool,
        &tenant.id,
        &ticket.project_id,
        &default_language(&tenant),
    )
    .await
    .map_err(IntoResponse::into_response)?;
    if expired(&profile, &ticket) {
        // The same page as an unknown link: an expired link reveals nothing either.
        return Err(render::message(
            state,
            &tenant,
            PageKind::NotFound,
            StatusCode::NOT_FOUND,
            &tenant_language,
        )
        .await);
    }
    let language = language(profile.language.as_str(), &visitor.headers);
    Ok(Opened {
        tenant,
        ticket,
        profile,
        language,
    })
}

/// What the CSRF token of the page's forms (feedback, booking) signs: the form belongs to this
/// ticket of this tenant.
fn csrf_message(opened: &Opened) -> String {
    format!("portal/{}/{}", opened.tenant.id, opened.ticket.id)
}

/// Whether the end user may still change or cancel online: no appointment yet, or one further
/// away than the profile's notice.
fn can_change(profile: &Profile, ticket: &Ticket) -> bool {
    ticket.appointment.as_ref().is_none_or(|a| {
        a.start.as_millisecond() - crate::db::now_ms() >= profile.change_notice_minutes * 60_000
    })
}

/// The booking part of a page: the profile's texts in the page's language and, on the booking
/// page (`windows`), the free windows grouped by day in the tenant's time zone.
async fn booking_view(
    state: &AppState,
    opened: &Opened,
    windows: bool,
    notice: Option<&str>,
    error: Option<&str>,
) -> BookingView {
    let texts = state.texts.get(&opened.language);
    let translate = |key: &str| texts.get(key).cloned().unwrap_or_default();
    let (profile, ticket, tenant) = (&opened.profile, &opened.ticket, &opened.tenant);
    let own = profile.texts_in(&opened.language);
    let mut view = BookingView {
        allowed: view::booking_allowed(profile, ticket),
        text: own.booking_text,
        disclaimer: own.booking_disclaimer,
        time_zone: tenant.time_zone.clone(),
        can_change: can_change(profile, ticket),
        phone: profile.phone.clone(),
        notice: notice.map(translate),
        error: error.map(translate),
        ..BookingView::default()
    };
    if !(windows && view.allowed && view.can_change) {
        return view;
    }
    let rules =
        match booking::service::rules_for(state, &tenant.id, &ticket.project_id, &profile.id).await
        {
            Ok(Some(rules)) => rules,
            Ok(None) => return view,
            Err(e) => {
                tracing::error!(error = ?e, "reading booking rules");
                return view;
            }
        };
    let question = booking::service::Question {
        ticket: booking::service::facts(ticket),
        created_at: ticket.created_at.as_millisecond(),
        now: crate::db::now_ms(),
        with_notice: true,
        bookings: None,
        ticket_id: &ticket.id,
    };
    let offer = match booking::service::offer(
        state,
        &tenant.id,
        Some(&rules.id),
        &rules.definition,
        question,
    )
    .await
    {
        Ok(offer) => offer,
        Err(e) => {
            tracing::error!(error = ?e, "computing booking windows");
            view.failed = true;
            return view;
        }
    };
    let Ok(slots) = offer.windows else {
        view.failed = true;
        return view;
    };
    view.available = true;
    // Grouped by day and shown in the rules' time zone, the one their days were computed in.
    let tz = offer.time_zone;
    if let Some(name) = tz.iana_name() {
        view.time_zone = name.to_string();
    }
    let intervals: Vec<_> = offer
        .request
        .days
        .into_iter()
        .flat_map(|d| d.intervals)
        .collect();
    view.days = view::days(&slots, &intervals, &tz, &opened.language, texts);
    view
}

/// Builds the view model of a page of an opened link.
async fn model<'a>(
    state: &'a AppState,
    opened: &'a Opened,
    page: &'static str,
    token: &str,
    booking: BookingView,
    feedback_error: Option<String>,
) -> ViewModel {
    let texts = state.texts.get(&opened.language);
    let (profile, ticket) = (&opened.profile, &opened.ticket);
    let booking_allowed = view::booking_allowed(profile, ticket);
    let feedback_form = view::feedback_allowed(profile, ticket);
    let base = format!("/t/{token}");
    ViewModel {
        page: page.to_string(),
        language: opened.language.clone(),
        tenant: TenantView {
            name: opened.tenant.display_name.clone(),
        },
        branding: Branding {
            logo_url: profile.logo_url.clone(),
            logo_link: profile.logo_link.clone(),
        },
        texts: texts.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
        salutation: view::salutation(profile, &opened.language, texts, ticket),
        ticket: Some(
            view::ticket_view(state, &opened.tenant, ticket, texts, &opened.language).await,
        ),
        booking,
        feedback: FeedbackView {
            allowed: feedback_form,
            submitted: ticket.feedback.as_ref().map(|f| Rating {
                rating: f.rating,
                comment: f.comment.clone(),
            }),
            error: feedback_error,
        },
        links: Links {
            booking: booking_allowed.then(|| format!("{base}/booking")),
            cancel_booking: (booking_allowed && ticket.appointment.is_some())
                .then(|| format!("{base}/booking/cancel")),
            calendar: ticket
                .appointment
                .is_some()
                .then(|| format!("{base}/appointment.ics")),
            feedback: feedback_form.then(|| format!("{base}/feedback")),
            page: base,
        },
        csrf_token: state.plugins.secrets.sign(&csrf_message(opened)),
    }
}

/// What a page says besides the ticket: the outcome of a form.
#[derive(Default)]
struct Outcome<'a> {
    feedback_error: Option<String>,
    /// Translation keys of the booking page's notice and error.
    booking_notice: Option<&'a str>,
    booking_error: Option<&'a str>,
}

/// Renders a page (tracking or booking) of an opened link.
async fn show(
    state: &AppState,
    opened: &Opened,
    token: &str,
    kind: PageKind,
    status: StatusCode,
    outcome: Outcome<'_>,
) -> Response {
    let page = match kind {
        PageKind::Booking => "booking",
        _ => "tracking",
    };
    let windows = kind == PageKind::Booking;
    let booking = booking_view(
        state,
        opened,
        windows,
        outcome.booking_notice,
        outcome.booking_error,
    )
    .await;
    let model = model(state, opened, page, token, booking, outcome.feedback_error).await;
    render::page(state, &opened.tenant, &opened.profile, kind, &model, status).await
}

async fn tracking_page(
    State(state): State<AppState>,
    Path(token): Path<String>,
    request: Request,
) -> Response {
    let visitor = Visitor::of(&state, &request);
    match open(&state, &visitor, &token).await {
        Ok(opened) => {
            show(
                &state,
                &opened,
                &token,
                PageKind::Tracking,
                StatusCode::OK,
                Outcome::default(),
            )
            .await
        }
        Err(page) => page,
    }
}

async fn booking_page(
    State(state): State<AppState>,
    Path(token): Path<String>,
    request: Request,
) -> Response {
    let visitor = Visitor::of(&state, &request);
    let opened = match open(&state, &visitor, &token).await {
        Ok(opened) => opened,
        Err(page) => return page,
    };
    if !view::booking_allowed(&opened.profile, &opened.ticket) {
        // Nothing to book (any more): the ticket's page says why.
        return Redirect::to(&format!("/t/{token}")).into_response();
    }
    // After a booking or cancellation (post/redirect/get), say what happened.
    let notice = match request.uri().query() {
        Some("done=booked") => Some("booking_booked"),
        Some("done=cancelled") => Some("booking_cancelled"),
        _ => None,
    };
    let outcome = Outcome {
        booking_notice: notice,
        ..Outcome::default()
    };
    show(
        &state,
        &opened,
        &token,
        PageKind::Booking,
        StatusCode::OK,
        outcome,
    )
    .await
}

#[derive(Deserialize)]
struct BookingForm {
    #[serde(default)]
    window: String,
    #[serde(default)]
    csrf_token: String,
}

/// `start-end` in ms, as the form's options carry it.
fn parse_window(raw: &str) -> Option<Window> {
    let (start, end) = raw.split_once('-')?;
    let window = Window {
        start: start.parse().ok()?,
        end: end.parse().ok()?,
    };
    (window.start < window.end).then_some(window)
}

/// The booking page again, with why the form was not taken.
async fn refuse_booking(
    state: &AppState,
    opened: &Opened,
    token: &str,
    status: StatusCode,
    reason: &str,
) -> Response {
    let outcome = Outcome {
        booking_error: Some(reason),
        ..Outcome::default()
    };
    show(state, opened, token, PageKind::Booking, status, outcome).await
}

/// The translation key and status of a refused booking change.
fn booking_refusal(error: &Error) -> Option<(StatusCode, &'static str)> {
    match error {
        Error::Conflict {
            code: "window_taken",
            ..
        } => Some((StatusCode::CONFLICT, "booking_taken")),
        Error::Conflict {
            code: "too_late_to_change",
            ..
        } => Some((StatusCode::CONFLICT, "booking_too_late")),
        Error::Conflict {
            code: "no_appointment",
            ..
        } => Some((StatusCode::CONFLICT, "booking_nothing_to_cancel")),
        Error::Conflict {
            code: "booking_unavailable",
            ..
        } => Some((StatusCode::SERVICE_UNAVAILABLE, "booking_unavailable_now")),
        Error::Invalid {
            code: "invalid_window",
            ..
        } => Some((StatusCode::UNPROCESSABLE_ENTITY, "booking_choose_error")),
        _ => None,
    }
}

/// Checks a booking form's origin and token and that booking is (still) offered; the page to
/// show otherwise.
async fn booking_form(
    state: &AppState,
    visitor: &Visitor,
    token: &str,
    request: Request,
) -> Result<(Opened, BookingForm), Response> {
    let opened = open(state, visitor, token).await?;
    if !view::booking_allowed(&opened.profile, &opened.ticket) {
        return Err(Redirect::to(&format!("/t/{token}")).into_response());
    }
    let Ok(Form(form)) = Form::<BookingForm>::from_request(request, state).await else {
        return Err(refuse_booking(
            state,
            &opened,
            token,
            StatusCode::BAD_REQUEST,
            "booking_choose_error",
        )
        .await);
    };
    if !same_origin(visitor)
        || !state
            .plugins
            .secrets
            .verify(&csrf_message(&opened), &form.csrf_token)
    {
        return Err(refuse_booking(
            state,
            &opened,
            token,
            StatusCode::FORBIDDEN,
            "feedback_expired",
        )
        .await);
    }
    Ok((opened, form))
}

async fn submit_booking(
    State(state): State<AppState>,
    Path(token): Path<String>,
    request: Request,
) -> Response {
    let visitor = Visitor::of(&state, &request);
    let (opened, form) = match booking_form(&state, &visitor, &token, request).await {
        Ok(taken) => taken,
        Err(page) => return page,
    };
    let Some(window) = parse_window(&form.window) else {
        return refuse_booking(
            &state,
            &opened,
            &token,
            StatusCode::UNPROCESSABLE_ENTITY,
            "booking_choose_error",
        )
        .await;
    };
    let (tenant, ticket, profile) = (&opened.tenant, &opened.ticket, &opened.profile);
    let rules = match booking::service::rules_for(
        &state,
        &tenant.id,
        &ticket.project_id,
        &profile.id,
    )
    .await
    {
        Ok(Some(rules)) => rules,
        Ok(None) => {
            return refuse_booking(
                &state,
                &opened,
                &token,
                StatusCode::SERVICE_UNAVAILABLE,
                "booking_unavailable_now",
            )
            .await;
        }
        Err(e) => return booking_failed(&state, &opened, &token, &e).await,
    };
    let booking = booking::service::Booking {
        ticket,
        rules: &rules,
        window,
        check: booking::service::Check::Offered,
        change_notice_ms: Some(profile.change_notice_minutes * 60_000),
    };
    let booked = booking::service::book(&state, END_USER, &tenant.id, booking).await;
    after_change(&state, &opened, &token, booked, "booked").await
}

/// After a booking change: the booking page saying what happened (post/redirect/get), or the
/// booking page again with why the change was refused.
async fn after_change(
    state: &AppState,
    opened: &Opened,
    token: &str,
    result: crate::error::Result<Ticket>,
    done: &str,
) -> Response {
    match result {
        Ok(_) => Redirect::to(&format!("/t/{token}/booking?done={done}")).into_response(),
        Err(e) => match booking_refusal(&e) {
            Some((status, reason)) => refuse_booking(state, opened, token, status, reason).await,
            None => booking_failed(state, opened, token, &e).await,
        },
    }
}

/// A booking form that failed for a reason the visitor cannot fix: logged, and the booking page
/// says to try again later.
async fn booking_failed(state: &AppState, opened: &Opened, token: &str, error: &Error) -> Response {
    tracing::error!(?error, ticket = %opened.ticket.id, "a booking form failed");
    refuse_booking(
        state,
        opened,
        token,
        StatusCode::SERVICE_UNAVAILABLE,
        "booking_unavailable_now",
    )
    .await
}

async fn cancel_booking(
    State(state): State<AppState>,
    Path(token): Path<String>,
    request: Request,
) -> Response {
    let visitor = Visitor::of(&state, &request);
    let (opened, _) = match booking_form(&state, &visitor, &token, request).await {
        Ok(taken) => taken,
        Err(page) => return page,
    };
    let notice = Some(opened.profile.change_notice_minutes * 60_000);
    let by = crate::tickets::service::BookedBy::Customer;
    let (tenant, ticket) = (&opened.tenant.id, &opened.ticket);
    let cancelled = booking::service::cancel(&state, END_USER, tenant, ticket, by, notice).await;
    after_change(&state, &opened, &token, cancelled, "cancelled").await
}

/// The appointment as an iCalendar file.
async fn appointment_calendar(
    State(state): State<AppState>,
    Path(token): Path<String>,
    request: Request,
) -> Response {
    let visitor = Visitor::of(&state, &request);
    let opened = match open(&state, &visitor, &token).await {
        Ok(opened) => opened,
        Err(page) => return page,
    };
    let (ticket, tenant) = (&opened.ticket, &opened.tenant);
    let Some(appointment) = &ticket.appointment else {
        return Redirect::to(&format!("/t/{token}")).into_response();
    };
    let texts = state.texts.get(&opened.language);
    let text = |key: &str| texts.get(key).cloned().unwrap_or_default();
    let time = |at| view::format_time(at, &tenant.time_zone, &opened.language);
    let summary = format!("{}: {}", text("calendar_summary"), ticket.title);
    let description = format!(
        "{} #{} – {} {} – {} ({})",
        text("ticket"),
        ticket.number,
        text("appointment"),
        time(appointment.start),
        time(appointment.end),
        tenant.time_zone
    );
    let uid = format!("{}@portico", ticket.id);
    let body = booking::ics::calendar(&booking::ics::Appointment {
        uid: &uid,
        start: appointment.start,
        end: appointment.end,
        summary: &summary,
        description: &description,
        // Grows with every change of the ticket, as calendars expect of an updated event.
        sequence: (ticket.updated_at.as_second() - ticket.created_at.as_second())
            .clamp(0, i64::from(u32::MAX)) as u32,
        time_zone: &tenant.time_zone,
    });
    (
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/calendar; charset=utf-8"),
            ),
            (
                header::CONTENT_DISPOSITION,
                HeaderValue::from_str(&format!(
                    "attachment; filename=\"appointment-{}.ics\"",
                    ticket.number
                ))
                .unwrap_or(HeaderValue::from_static("attachment")),
            ),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
            (
                header::X_CONTENT_TYPE_OPTIONS,
                HeaderValue::from_static("nosniff"),
            ),
        ],
        body,
    )
        .into_response()
}

#[derive(Deserialize)]
struct FeedbackForm {
    #[serde(default)]
    rating: String,
    #[serde(default)]
    comment: String,
    #[serde(default)]
    csrf_token: String,
}

/// Whether a form post comes from a page of this very host. Browsers say so in
/// `Sec-Fetch-Site`; older ones only send `Origin`, which is `null` under our no-referrer policy.
/// The signed CSRF token is checked as well, so a client sending neither header still needs it.
fn same_origin(visitor: &Visitor) -> bool {
    let header = |name: &str| {
        visitor
            .headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_ascii_lowercase)
    };
    if let Some(site) = header("sec-fetch-site") {
        return site == "same-origin";
    }
    match (header("origin"), &visitor.host) {
        (Some(origin), _) if origin == "null" => true,
        (Some(origin), Some(host)) => {
            origin.split_once("://").map(|(_, h)| h) == Some(&host.to_ascii_lowercase())
        }
        (Some(_), None) => false,
        (None, _) => true,
    }
}

async fn submit_feedback(
    State(state): State<AppState>,
    Path(token): Path<String>,
    request: Request,
) -> Response {
    let visitor = Visitor::of(&state, &request);
    let opened = match open(&state, &visitor, &token).await {
        Ok(opened) => opened,
        Err(page) => return page,
    };
    // The tracking page again, with the form and why it was not taken.
    let refuse = async |status: StatusCode, reason: &str| {
        let texts = state.texts.get(&opened.language);
        let outcome = Outcome {
            feedback_error: Some(texts.get(reason).cloned().unwrap_or_default()),
            ..Outcome::default()
        };
        show(&state, &opened, &token, PageKind::Tracking, status, outcome).await
    };
    let form = match Form::<FeedbackForm>::from_request(request, &state).await {
        Ok(Form(form)) => form,
        Err(_) => {
            return refuse(StatusCode::BAD_REQUEST, "feedback_rating_error").await;
        }
    };
    if !same_origin(&visitor)
        || !state
            .plugins
            .secrets
            .verify(&csrf_message(&opened), &form.csrf_token)
    {
        return refuse(StatusCode::FORBIDDEN, "feedback_expired").await;
    }
    if !view::feedback_allowed(&opened.profile, &opened.ticket) {
        // Given already, switched off, or not yet due: the page shows which.
        return Redirect::to(&format!("/t/{token}")).into_response();
    }
    let (rating, comment) = match feedback::parse(&form.rating, &form.comment) {
        Ok(parsed) => parsed,
        Err(refusal) => {
            let key = match refusal {
                Refusal::Comment => "feedback_comment_error",
                _ => "feedback_rating_error",
            };
            return refuse(StatusCode::UNPROCESSABLE_ENTITY, key).await;
        }
    };
    let tenant = &opened.tenant.id;
    match give_feedback(&state, tenant, &opened.ticket.id, rating, &comment).await {
        Ok(_) => {
            // Post/redirect/get: a reload does not send the form again.
            Redirect::to(&format!("/t/{token}#feedback")).into_response()
        }
        Err(e) => e.into_response(),
    }
}

/// The profile's logo, always as PNG (it was re-encoded on upload).
async fn logo(
    State(state): State<AppState>,
    Path(profile): Path<String>,
    request: Request,
) -> Response {
    let visitor = Visitor::of(&state, &request);
    let tenant = match portal_tenant(&state, &visitor).await {
        Ok(tenant) => tenant,
        Err(page) => return page,
    };
    let logo = match state.db.pool.acquire().await {
        Ok(mut conn) => profiles::store::logo(&mut conn, &tenant.id, &profile).await,
        Err(e) => Err(e.into()),
    };
    match logo {
        Ok(Some(logo)) => (
            [
                (header::CONTENT_TYPE, HeaderValue::from_static("image/png")),
                // The URL carries the image's hash: a new logo is a new URL.
                (
                    header::CACHE_CONTROL,
                    HeaderValue::from_static("public, max-age=86400"),
                ),
                (
                    header::CONTENT_SECURITY_POLICY,
                    HeaderValue::from_static("default-src 'none'"),
                ),
            ],
            logo.png,
        )
            .into_response(),
        Ok(None) => state.pages.not_found(),
        Err(e) => e.into_response(),
    }
}

/// The script that keeps tracking pages live, whatever their theme.
async fn live_script() -> Response {
    script(include_str!("../../assets/live.js"))
}

/// The script that enhances the booking page, whatever its theme.
async fn booking_script() -> Response {
    script(include_str!("../../assets/booking.js"))
}

fn script(source: &'static str) -> Response {
    (
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/javascript; charset=utf-8"),
            ),
            (
                header::CACHE_CONTROL,
                HeaderValue::from_static("public, max-age=300"),
            ),
        ],
        source,
    )
        .into_response()
}

/// Server-sent events: the ticket's current state at once, then again after every change.
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_language_has_every_text() {
        let texts = Texts::load().unwrap();
        let english: Vec<&String> = texts.get("en").keys().collect();
        for language in LANGUAGES {
            let mut keys: Vec<&String> = texts.get(language).keys().collect();
            keys.sort();
            let mut expected = english.clone();
            expected.sort();
            assert_eq!(keys, expected, "texts of {language}");
        }
    }
}
