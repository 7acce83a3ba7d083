//! Renders portal pages through the profile's theme plugin, or the built-in templates. A theme
//! that fails in any way (trap, timeout, fuel, bad output, disabled or uninstalled) is
//! recorded as a failed plugin run and the built-in page is shown instead: the end user always
//! sees their ticket.

use std::sync::Arc;

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use minijinja::context;

use super::view::{
    BOOKING_SCRIPT, BookingView, Branding, FeedbackView, LIVE_SCRIPT, Links, TenantView, ViewModel,
};
use crate::AppState;
use crate::http::pages::Pages;
use crate::plugins::bindings::theme::exports::portico::plugin::pages::{Page, PageKind};
use crate::plugins::{PluginKind, prepared, runs};
use crate::profiles::Profile;
use crate::tenants::Tenant;

/// The built-in template of a page kind.
fn native_template(kind: PageKind) -> &'static str {
    match kind {
        PageKind::Booking => "booking.html",
        _ => "tracking.html",
    }
}

/// The host's script for a page kind, if it has one. Only the host's script carries the page's
/// nonce: a theme never sees the nonce, so no script in its output runs.
fn host_script(kind: PageKind) -> Option<&'static str> {
    match kind {
        PageKind::Tracking => Some(LIVE_SCRIPT),
        PageKind::Booking => Some(BOOKING_SCRIPT),
        _ => None,
    }
}

/// Renders `model` as a page of `kind`.
pub async fn page(
    state: &AppState,
    tenant: &Tenant,
    profile: &Profile,
    kind: PageKind,
    model: &ViewModel,
    status: StatusCode,
) -> Response {
    let branding = profile.colours.css();
    if let Some(install) = &profile.theme_install_id {
        match themed(state, tenant, install, kind, model).await {
            Ok((html, stylesheet)) => {
                let nonce = Pages::nonce();
                let html = into_head(&html, &branding, &stylesheet, host_script(kind), &nonce);
                return Pages::respond(status, html, &nonce);
            }
            Err(reason) => tracing::warn!(
                tenant = %tenant.id, install, reason, "theme failed; showing the built-in page"
            ),
        }
    }
    native(state, kind, model, &branding, status)
}

/// A page without a ticket (`NotFound`: an unknown, revoked or expired link; `Unavailable`: a
/// suspended portal) in the look of the tenant's default profile, so that it reveals nothing
/// about any ticket.
pub async fn message(
    state: &AppState,
    tenant: &Tenant,
    kind: PageKind,
    status: StatusCode,
    language: &str,
) -> Response {
    let profile = match crate::profiles::for_project(
        &state.db.pool,
        &tenant.id,
        "",
        &super::default_language(tenant),
    )
    .await
    {
        Ok(profile) => profile,
        Err(e) => return e.into_response(),
    };
    let texts = state.texts.get(language);
    let model = ViewModel {
        page: match kind {
            PageKind::Unavailable => "unavailable",
            _ => "not_found",
        }
        .to_string(),
        language: language.to_string(),
        tenant: TenantView {
            name: tenant.display_name.clone(),
        },
        branding: Branding {
            logo_url: profile.logo_url.clone(),
            logo_link: profile.logo_link.clone(),
        },
        texts: texts.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
        salutation: String::new(),
        ticket: None,
        booking: BookingView::default(),
        feedback: FeedbackView {
            allowed: false,
            submitted: None,
            error: None,
        },
        links: Links {
            page: String::new(),
            booking: None,
            cancel_booking: None,
            calendar: None,
            feedback: None,
        },
        csrf_token: String::new(),
    };
    if let Some(install) = &profile.theme_install_id {
        match themed(state, tenant, install, kind, &model).await {
            Ok((html, stylesheet)) => {
                let nonce = Pages::nonce();
                let html = into_head(&html, &profile.colours.css(), &stylesheet, None, &nonce);
                return Pages::respond(status, html, &nonce);
            }
            Err(reason) => tracing::warn!(
                tenant = %tenant.id, install, reason, "theme failed; showing the built-in page"
            ),
        }
    }
    let t = minijinja::value::Serde(texts);
    match kind {
        PageKind::Unavailable => state.pages.render(
            status,
            "unavailable.html",
            context! { t, tenant_name => &tenant.display_name, lang => language },
        ),
        _ => state.pages.render(
            status,
            "link_invalid.html",
            context! { heading => texts.get("invalid_title"), text => texts.get("invalid_text"), lang => language },
        ),
    }
}

/// The built-in renderer, also the fallback.
pub fn native(
    state: &AppState,
    kind: PageKind,
    model: &ViewModel,
    branding: &str,
    status: StatusCode,
) -> Response {
    state.pages.render(
        status,
        native_template(kind),
        context! {
            m => minijinja::value::Serde(model),
            branding_css => branding,
            script => host_script(kind),
            lang => model.language.as_str(),
        },
    )
}

/// Runs the theme; its HTML and stylesheet, or why not (the failure is recorded as a run).
async fn themed(
    state: &AppState,
    tenant: &Tenant,
    install: &str,
    kind: PageKind,
    model: &ViewModel,
) -> Result<(String, String), String> {
    let runnable = prepared::runnable_cached(state, &tenant.id, install)
        .await
        .map_err(|e| format!("install unusable: {}", e.code()))?;
    if runnable.kind != PluginKind::Theme {
        return Err("the install is not a theme".into());
    }
    // The output depends only on the install and the view model (which holds no nonce), so it
    // is kept until either changes.
    let view_model = serde_json::to_string(model).map_err(|e| e.to_string())?;
    let key = crate::types::sha256_hex(
        format!(
            "{}\0{}\0{}\0{}\0{}\0{view_model}",
            runnable.install_id,
            runnable.version,
            runnable.config(),
            model.page,
            model.language
        )
        .as_bytes(),
    );
    if let Some(cache) = &state.plugins.rendered
        && let Some(page) = cache.get(&key).await
    {
        return Ok((*page).clone());
    }
    let page = Page {
        kind,
        view_model,
        language: model.language.to_string(),
    };
    let invocation = state
        .plugins
        .runtime
        .render(&runnable.plugin, &runnable.call(""), &page)
        .await;
    let result = invocation
        .result
        .map(|rendered| (rendered.html, rendered.stylesheet));
    match result {
        Ok(page) => {
            let page = Arc::new(page);
            if let Some(cache) = &state.plugins.rendered {
                cache.insert(key, page.clone()).await;
            }
            Ok(Arc::unwrap_or_clone(page))
        }
        Err(error) => {
            let subject = runnable.subject(&tenant.id);
            // As `portico plugin run` takes a page, for replay.
            let input = serde_json::json!({
                "page": model.page, "language": model.language, "view_model": model,
            });
            let report = &invocation.report;
            if let Err(e) =
                runs::record(&state.db.pool, subject, report, Some(&error), Some(&input)).await
            {
                tracing::error!(error = ?e, "recording a theme failure failed");
            }
            Err(error.code().to_string())
        }
    }
}

fn head_end(html: &str) -> Option<usize> {
    html.to_ascii_lowercase().find("</head>")
}

/// Puts the branding variables, the theme's stylesheet and the host's script into the page's
/// head, under the page's nonce (the policy allows no other styles or scripts).
fn into_head(
    html: &str,
    branding: &str,
    stylesheet: &str,
    script: Option<&str>,
    nonce: &str,
) -> String {
    let at = head_end(html).unwrap_or(0);
    // A stylesheet cannot close its element early.
    let stylesheet = stylesheet.replace("</", "<\\/");
    let script = script
        .map(|src| format!("<script nonce=\"{nonce}\" src=\"{src}\" defer></script>\n"))
        .unwrap_or_default();
    format!(
        "{}<style nonce=\"{nonce}\">\n{branding}{stylesheet}\n</style>\n{script}{}",
        &html[..at],
        &html[at..]
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn styles_go_into_the_head_and_cannot_escape() {
        let html = "<!doctype html><html><HEAD><title>x</title></HEAD><body></body></html>";
        let out = into_head(
            html,
            ":root{}",
            "p{} </style><script>alert(1)</script>",
            Some("/portal/assets/live.js"),
            "n1",
        );
        let style_at = out.find("<style nonce=\"n1\">").unwrap();
        assert!(style_at < out.find("</HEAD>").unwrap());
        assert!(style_at > out.find("<title>").unwrap());
        assert!(!out.contains("</style><script>"));
        assert_eq!(out.matches("</style>").count(), 1);
        let script_at = out
            .find("<script nonce=\"n1\" src=\"/portal/assets/live.js\"")
            .unwrap();
        assert!(style_at < script_at && script_at < out.find("</HEAD>").unwrap());
    }
}
