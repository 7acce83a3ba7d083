//! Server-rendered pages: the portal entry of a tenant host, and the error pages every host can
//! show. Templates auto-escape (their names end in `.html`).

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use minijinja::{Environment, Value, context};
use rand::RngCore;

/// The compiled page templates.
pub struct Pages {
    env: Environment<'static>,
}

const TEMPLATES: &[(&str, &str)] = &[
    ("layout.html", include_str!("../../templates/layout.html")),
    (
        "not_found.html",
        include_str!("../../templates/not_found.html"),
    ),
    (
        "unavailable.html",
        include_str!("../../templates/unavailable.html"),
    ),
    (
        "portal_home.html",
        include_str!("../../templates/portal_home.html"),
    ),
    (
        "platform_home.html",
        include_str!("../../templates/platform_home.html"),
    ),
    (
        "api_docs.html",
        include_str!("../../templates/api_docs.html"),
    ),
    (
        "tracking.html",
        include_str!("../../templates/tracking.html"),
    ),
    (
        "link_invalid.html",
        include_str!("../../templates/link_invalid.html"),
    ),
    (
        "portal_layout.html",
        include_str!("../../templates/portal_layout.html"),
    ),
    ("booking.html", include_str!("../../templates/booking.html")),
];

impl Pages {
    pub fn new() -> anyhow::Result<Self> {
        let mut env = Environment::new();
        for (name, source) in TEMPLATES {
            env.add_template(name, source)?;
        }
        Ok(Self { env })
    }

    /// A fresh nonce for a page's `<script>` and `<style>` elements. Hex: nothing in it needs
    /// escaping in HTML or in the policy header.
    pub fn nonce() -> String {
        let mut bytes = [0u8; 16];
        rand::rng().fill_bytes(&mut bytes);
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    /// Renders a page with a fresh nonce and strict security headers. A rendering failure is
    /// logged and becomes a plain error page rather than a broken one.
    pub fn render(&self, status: StatusCode, template: &str, ctx: Value) -> Response {
        let nonce = &Self::nonce();
        let ctx = context! { nonce => nonce, ..ctx };
        match self.env.get_template(template).and_then(|t| t.render(ctx)) {
            Ok(html) => Self::respond(status, html, nonce),
            Err(e) => {
                tracing::error!(error = ?e, template, "page rendering failed");
                Self::respond(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "<!doctype html><title>Error</title><h1>Something went wrong</h1>".into(),
                    nonce,
                )
            }
        }
    }

    /// An HTML response with the page headers: a policy that runs only scripts and styles
    /// carrying `nonce`, no sniffing, no referrer (tracking URLs hold secrets).
    pub fn respond(status: StatusCode, html: String, nonce: &str) -> Response {
        let csp = format!(
            "default-src 'none'; style-src 'nonce-{nonce}'; script-src 'nonce-{nonce}'; connect-src 'self'; img-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
        );
        let mut response = (
            status,
            [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
            html,
        )
            .into_response();
        let headers = response.headers_mut();
        if let Ok(csp) = HeaderValue::from_str(&csp) {
            headers.insert(header::CONTENT_SECURITY_POLICY, csp);
        }
        headers.insert(
            header::REFERRER_POLICY,
            HeaderValue::from_static("no-referrer"),
        );
        // Pages may show personal data: no shared or back-button caches keep them.
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        response
    }

    pub fn not_found(&self) -> Response {
        self.render(StatusCode::NOT_FOUND, "not_found.html", context! {})
    }
}
