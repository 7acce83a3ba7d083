//! The tracking page end users open from a link: `/t/<token>` on the tenant's portal host,
//! with live updates over server-sent events. No login; the token opens one ticket of one
//! tenant, and failed guesses are rate-limited per client address.

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use axum::Router;
use axum::extract::{ConnectInfo, Path, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use minijinja::context;
use moka::future::Cache;
use serde::Serialize;
use tokio_stream::StreamExt;
use tokio_stream::wrappers::BroadcastStream;

use crate::AppState;
use crate::tenants::Tenant;
use crate::tickets::routes::{Ticket, load};
use crate::tickets::{Status, links};
use crate::types::{LANGUAGES, TenantId};

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

    fn get(&self, language: &str) -> &HashMap<String, String> {
        self.0
            .get(language)
            .or_else(|| self.0.get("en"))
            .expect("English texts are built in")
    }
}

/// Failed guesses per client address.
pub type GuessCounter = Cache<IpAddr, u32>;

pub fn guess_counter() -> GuessCounter {
    Cache::builder()
        .max_capacity(100_000)
        .time_to_live(GUESS_WINDOW)
        .build()
}

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/t/{token}", get(tracking_page))
        .route("/t/{token}/events", get(tracking_events))
}

/// The tenant's language, unless the browser prefers another one we have.
fn language(tenant: &Tenant, headers: &HeaderMap) -> String {
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
        .unwrap_or_else(|| tenant.language.clone())
}

#[derive(Serialize)]
struct StepView {
    status: &'static str,
    label: String,
    at: Option<String>,
    current: bool,
}

#[derive(Serialize)]
struct VisitView {
    technician: String,
    eta: String,
    position: String,
}

#[derive(Serialize)]
struct TrackingView {
    status: &'static str,
    steps: Vec<StepView>,
    visit: Option<VisitView>,
}

fn format_time(at: jiff::Timestamp, time_zone: &str, language: &str) -> String {
    let tz = jiff::tz::TimeZone::get(time_zone).unwrap_or(jiff::tz::TimeZone::UTC);
    let pattern = match language {
        "de" => "%d.%m.%Y %H:%M",
        "es" => "%d/%m/%Y %H:%M",
        _ => "%Y-%m-%d %H:%M",
    };
    at.to_zoned(tz).strftime(pattern).to_string()
}

async fn view(
    state: &AppState,
    tenant: &Tenant,
    ticket: &Ticket,
    texts: &HashMap<String, String>,
    language: &str,
) -> TrackingView {
    let text = |key: &str| texts.get(key).cloned().unwrap_or_else(|| key.to_string());
    let steps = Status::ALL
        .iter()
        .map(|&status| StepView {
            status: status.as_str(),
            label: text(status.as_str()),
            at: ticket
                .timeline
                .iter()
                .rev()
                .find(|s| s.status == status)
                .map(|s| format_time(s.at, &tenant.time_zone, language)),
            current: status == ticket.status,
        })
        .collect();
    let on_the_way = matches!(ticket.status, Status::OnRoute | Status::Arrived);
    let technician = match (&ticket.technician_id, on_the_way) {
        (Some(id), true) => crate::auth::find_user(&state.db.pool, &tenant.id, id)
            .await
            .ok()
            .map(|u| u.display_name),
        _ => None,
    };
    let visit = on_the_way.then(|| VisitView {
        technician: technician.unwrap_or_default(),
        eta: ticket
            .eta
            .map(|t| format_time(t, &tenant.time_zone, language))
            .unwrap_or_default(),
        position: ticket
            .position
            .as_ref()
            .map(|p| format!("{:.5}, {:.5}", p.latitude, p.longitude))
            .unwrap_or_default(),
    });
    TrackingView {
        status: ticket.status.as_str(),
        steps,
        visit,
    }
}

/// Who asks: the host they asked for, their headers and address.
struct Visitor {
    host: Option<String>,
    headers: HeaderMap,
    client: Option<IpAddr>,
}

impl Visitor {
    fn of(state: &AppState, request: Request) -> Self {
        Self {
            host: crate::http::request_host(state, &request),
            client: request
                .extensions()
                .get::<ConnectInfo<SocketAddr>>()
                .map(|c| c.0.ip()),
            headers: request.into_parts().0.headers,
        }
    }
}

/// What a link resolves to, or the page to show instead.
async fn open(
    state: &AppState,
    visitor: &Visitor,
    token: &str,
) -> Result<(Tenant, Ticket, String), Response> {
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
    let language = language(&tenant, &visitor.headers);
    let texts = state.texts.get(&language);
    if tenant.is_suspended() {
        return Err(state.pages.render(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable.html",
            context! { tenant_name => tenant.display_name, lang => language },
        ));
    }
    let client = visitor.client;
    let failures = match client {
        Some(ip) => state.guesses.get(&ip).await.unwrap_or(0),
        None => 0,
    };
    let invalid = |status: StatusCode, heading: &str, text: &str| {
        state.pages.render(
            status,
            "link_invalid.html",
            context! { heading => texts.get(heading), text => texts.get(text), lang => &language },
        )
    };
    if failures >= MAX_FAILED_GUESSES {
        return Err(invalid(
            StatusCode::TOO_MANY_REQUESTS,
            "too_many_title",
            "too_many_text",
        ));
    }
    let ticket_id = match links::resolve(&state.db.pool, &tenant.id, token).await {
        Ok(Some(id)) => id,
        Ok(None) => {
            if let Some(ip) = client {
                state.guesses.insert(ip, failures + 1).await;
            }
            return Err(invalid(
                StatusCode::NOT_FOUND,
                "invalid_title",
                "invalid_text",
            ));
        }
        Err(e) => return Err(e.into_response()),
    };
    match load(&state.db.pool, &tenant.id, &ticket_id).await {
        Ok(ticket) => Ok((tenant, ticket, language)),
        Err(e) => Err(e.into_response()),
    }
}

async fn tracking_page(
    State(state): State<AppState>,
    Path(token): Path<String>,
    request: Request,
) -> Response {
    let visitor = Visitor::of(&state, request);
    let (tenant, ticket, language) = match open(&state, &visitor, &token).await {
        Ok(opened) => opened,
        Err(page) => return page,
    };
    let texts = state.texts.get(&language);
    let view = view(&state, &tenant, &ticket, texts, &language).await;
    state.pages.render(
        StatusCode::OK,
        "tracking.html",
        context! {
            t => minijinja::value::Serde(texts),
            tenant_name => tenant.display_name,
            ticket => context! { number => ticket.number, title => ticket.title },
            steps => minijinja::value::Serde(&view.steps),
            visit => minijinja::value::Serde(&view.visit),
            lang => language,
        },
    )
}

/// Server-sent events: the current state at once, then again after every change.
async fn tracking_events(
    State(state): State<AppState>,
    Path(token): Path<String>,
    request: Request,
) -> Response {
    let visitor = Visitor::of(&state, request);
    let (tenant, ticket, language) = match open(&state, &visitor, &token).await {
        Ok(opened) => opened,
        Err(page) => return page,
    };
    let watched = (tenant.id.clone(), ticket.id.clone());
    let changes = BroadcastStream::new(state.ticket_changes.subscribe()).filter_map(
        move |change| match change {
            Ok(changed) if changed == watched => Some(()),
            Ok(_) => None,
            // Missed messages: send the current state anyway.
            Err(_) => Some(()),
        },
    );
    let first = tokio_stream::once(());
    let stream = first.chain(changes).then(move |()| {
        let state = state.clone();
        let tenant = tenant.clone();
        let language = language.clone();
        let ticket_id = ticket.id.clone();
        async move {
            let data = match load(&state.db.pool, &tenant.id, &ticket_id).await {
                Ok(ticket) => {
                    let view = view(
                        &state,
                        &tenant,
                        &ticket,
                        state.texts.get(&language),
                        &language,
                    )
                    .await;
                    serde_json::to_string(&view).unwrap_or_default()
                }
                Err(_) => "{}".into(),
            };
            Ok::<_, Infallible>(Event::default().event("ticket").data(data))
        }
    });
    Sse::new(stream)
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
        .into_response()
}

/// A ticket changed: live pages of it refresh. (Published through [`crate::invalidation`].)
pub type TicketChange = (TenantId, String);
