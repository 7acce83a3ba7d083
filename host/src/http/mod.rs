//! The HTTP layer: routes of every domain area assembled into one router, with request ids,
//! tracing, body limits, health checks, API docs and the page fallback for portal hosts.

pub mod docs;
pub mod extract;
pub mod guard;
pub mod pages;

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use axum::Router;
use axum::extract::{ConnectInfo, DefaultBodyLimit, Request, State};
use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::middleware::from_fn_with_state;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use minijinja::context;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::set_header::SetResponseHeaderLayer;
use tower_http::trace::TraceLayer;
use utoipa_axum::router::OpenApiRouter;

use crate::error::Error;
use crate::{
    AppState, audit, auth, automations, booking, deliveries, domains, events, plugins, policies,
    profiles, sessions, tenants, tickets,
};

const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The whole application, ready to serve.
pub fn router(state: AppState) -> Router {
    let (guarded, tenant_api) = OpenApiRouter::new()
        .merge(tenants::routes::tenant_routes())
        .merge(auth::routes::tenant_routes())
        .merge(domains::routes::routes())
        .merge(policies::routes::routes())
        .merge(audit::tenant_routes())
        .merge(plugins::routes::tenant_routes())
        .merge(tickets::routes::routes())
        .merge(profiles::routes::routes())
        .merge(events::routes::routes())
        .merge(automations::routes::routes())
        .merge(deliveries::routes::routes())
        .merge(booking::routes::routes())
        .split_for_parts();
    let guarded = guarded.route_layer(from_fn_with_state(state.clone(), guard::guard));
    let (open, mut api) = OpenApiRouter::new()
        .merge(tenants::routes::platform_routes())
        .merge(sessions::routes::routes())
        .merge(audit::platform_routes())
        .merge(plugins::routes::platform_routes())
        .split_for_parts();
    api.merge(tenant_api);
    let api = Arc::new(docs::finish(api));

    let spec = api.clone();
    let docs_api = api.clone();
    Router::new()
        .merge(open)
        .merge(guarded)
        .route("/api/v1/openapi.json", get(move || async move { axum::Json(spec.as_ref().clone()) }))
        .route(
            "/api/v1/docs",
            get(move |State(state): State<AppState>| async move {
                let groups = minijinja::value::Serde(docs::groups(&docs_api));
                let version = env!("CARGO_PKG_VERSION");
                state.pages.render(StatusCode::OK, "api_docs.html", context! { groups, version })
            }),
        )
        .route("/healthz", get(|| async { axum::Json(serde_json::json!({"status": "ok"})) }))
        .route("/readyz", get(ready))
        .merge(crate::portal::routes(&state))
        .fallback(fallback)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(state.config.max_body_bytes))
        .layer(from_fn_with_state(state.clone(), within_request_timeout))
        .layer(SetResponseHeaderLayer::if_not_present(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ))
        .layer(PropagateRequestIdLayer::new(REQUEST_ID))
        .layer(TraceLayer::new_for_http().make_span_with(|req: &Request| {
            let id = req.headers().get(REQUEST_ID).and_then(|v| v.to_str().ok()).unwrap_or("-");
            tracing::info_span!("request", method = %req.method(), path = %loggable_path(req.uri()), request_id = %id)
        }))
        .layer(SetRequestIdLayer::new(REQUEST_ID, MakeRequestUuid))
        .with_state(state)
}

/// Answers `408` to a request not answered in time (reading a slow body included). A response
/// that has started, such as a live page's stream, is not cut.
async fn within_request_timeout(
    State(state): State<AppState>,
    request: Request,
    next: axum::middleware::Next,
) -> Response {
    let limit = std::time::Duration::from_secs(state.config.server.request_timeout_secs.max(1));
    match tokio::time::timeout(limit, next.run(request)).await {
        Ok(response) => response,
        Err(_) => Error::Timeout.into_response(),
    }
}

async fn ready(State(state): State<AppState>) -> Response {
    if state.db.is_reachable().await {
        axum::Json(serde_json::json!({"status": "ready"})).into_response()
    } else {
        let body = serde_json::json!({"status": "unavailable", "reason": "database unreachable"});
        (StatusCode::SERVICE_UNAVAILABLE, axum::Json(body)).into_response()
    }
}

async fn method_not_allowed() -> Response {
    let body = crate::error::ErrorBody {
        code: "method_not_allowed".into(),
        message: "this route does not accept that method".into(),
        position: None,
    };
    (StatusCode::METHOD_NOT_ALLOWED, axum::Json(body)).into_response()
}

/// Unknown API routes get a JSON 404; everything else is a page on a portal host.
async fn fallback(State(state): State<AppState>, request: Request) -> Response {
    let path = request.uri().path();
    if path == "/api" || path.starts_with("/api/") {
        return Error::NotFound("route").into_response();
    }
    let Some(host) = request_host(&state, &request) else {
        return state.pages.not_found();
    };
    let tenant = match state.hosts.resolve(&host).await {
        Ok(tenant) => tenant,
        Err(e) => {
            tracing::error!(error = ?e, "host resolution failed");
            return state.pages.render(
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable.html",
                context! { t => minijinja::value::Serde(state.texts.get("en")) },
            );
        }
    };
    match tenant {
        Some(tenant) if tenant.is_suspended() => state.pages.render(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable.html",
            context! {
                t => minijinja::value::Serde(state.texts.get(&tenant.language)),
                tenant_name => tenant.display_name,
                lang => tenant.language,
            },
        ),
        Some(tenant) if path == "/" => state.pages.render(
            StatusCode::OK,
            "portal_home.html",
            context! { tenant_name => tenant.display_name, lang => tenant.language },
        ),
        None if path == "/" && state.is_platform_host(&host) => {
            state
                .pages
                .render(StatusCode::OK, "platform_home.html", context! {})
        }
        _ => state.pages.not_found(),
    }
}

/// A request's path as logs may hold it: the secret in a tracking link (`/t/{token}/…`) is
/// replaced by `…`, and a query string by `?…`, since either can carry a credential.
pub fn loggable_path(uri: &axum::http::Uri) -> String {
    let path = uri.path();
    let mut shown = match path.strip_prefix("/t/") {
        Some(rest) => match rest.find('/') {
            Some(at) => format!("/t/…{}", &rest[at..]),
            None => "/t/…".to_string(),
        },
        None => path.to_string(),
    };
    if uri.query().is_some() {
        shown.push_str("?…");
    }
    shown
}

fn peer(extensions: &axum::http::Extensions) -> Option<IpAddr> {
    extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip())
}

/// The client's address: the socket peer, or, when the peer is a configured proxy, the
/// right-most hop of `X-Forwarded-For` that is not one (the left-most hops are whatever the
/// client wrote). IPv4-mapped IPv6 addresses are read as IPv4.
pub fn client_address(
    state: &AppState,
    headers: &axum::http::HeaderMap,
    extensions: &axum::http::Extensions,
) -> Option<IpAddr> {
    let trusted = &state.config.trusted_proxies;
    let mut client = peer(extensions)?.to_canonical();
    if !trusted.contains(&client) {
        return Some(client);
    }
    let mut vouched = false;
    let hops = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .collect::<Vec<_>>();
    for hop in hops.into_iter().rev() {
        match hop.trim().parse::<IpAddr>() {
            Ok(ip) => {
                client = ip.to_canonical();
                if !trusted.contains(&client) {
                    vouched = true;
                    break;
                }
            }
            Err(_) => break,
        }
    }
    // A proxy that named no client (no header, or a hop it did not write): nobody is known,
    // rather than the proxy itself, which would make every client one.
    vouched.then_some(client)
}

/// The network a client address stands for in limits: an IPv4 address, or an IPv6 /64 (one
/// subscriber's network).
pub fn network_of(address: IpAddr) -> IpAddr {
    match address {
        IpAddr::V6(v6) => IpAddr::V6(std::net::Ipv6Addr::from_bits(
            v6.to_bits() & !((1u128 << 64) - 1),
        )),
        v4 => v4,
    }
}

/// The host the client asked for. `X-Forwarded-Host` counts only from a configured proxy.
pub fn request_host(state: &AppState, request: &Request) -> Option<String> {
    let from_proxy = peer(request.extensions())
        .is_some_and(|ip| state.config.trusted_proxies.contains(&ip.to_canonical()));
    let forwarded = from_proxy
        .then(|| request.headers().get("x-forwarded-host"))
        .flatten()
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(',').next())
        .map(str::trim);
    let host = forwarded.or_else(|| {
        request
            .headers()
            .get(header::HOST)
            .and_then(|v| v.to_str().ok())
    });
    host.or_else(|| request.uri().host()).map(str::to_string)
}
