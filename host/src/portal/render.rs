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
use crate::plugins::{PluginError, PluginKind, prepared, runs};
use crate::profiles::Profile;
use crate::tenants::Tenant;

/// Stands for the page's nonce in what a theme renders, so that its output can be kept and
/// served with a fresh nonce each time.
const NONCE_PLACEHOLDER: &str = "portico-page-nonce";

/// The built-in template of a page kind.
fn native_template(kind: PageKind) -> &'static str {
    match kind {
        PageKind::Booking => "booking.html",
        _ => "tracking.html",
    }
}

/// Renders `model` as a page of `kind`.
pub async fn page(
    state: &AppState,
    tenant: &Tenant,
    profile: &Profile,
    kind: PageKind,
    model: &ViewModel<'_>,
    status: StatusCode,
) -> Response {
    let branding = profile.colours.css();
    if let Some(install) = &profile.theme_install_id {
        match themed(state, tenant, install, kind, model).await {
            Ok((html, stylesheet)) => {
                let html = with_styles(&html, &branding, &stylesheet, model.nonce);
                return Pages::respond(status, html, model.nonce);
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
    let nonce = Pages::nonce();
    let model = ViewModel {
        page: match kind {
            PageKind::Unavailable => "unavailable",
            _ => "not_found",
        },
        language,
        nonce: &nonce,
        tenant: TenantView {
            name: &tenant.display_name,
        },
        branding: Branding {
            logo_url: profile.logo_url.as_deref(),
            logo_link: profile.logo_link.as_deref(),
        },
        texts,
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
            live_script: LIVE_SCRIPT,
            booking_script: BOOKING_SCRIPT,
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
                let html = with_styles(&html, &profile.colours.css(), &stylesheet, &nonce);
                return Pages::respond(status, html, &nonce);
            }
            Err(reason) => tracing::warn!(
                tenant = %tenant.id, install, reason, "theme failed; showing the built-in page"
            ),
        }
    }
    let t = minijinja::value::Serde(texts);
    match kind {
        PageKind::Unavailable => state.pages.render_with_nonce(
            status,
            "unavailable.html",
            context! { t, tenant_name => &tenant.display_name, lang => language },
            &nonce,
        ),
        _ => state.pages.render_with_nonce(
            status,
            "link_invalid.html",
            context! { heading => texts.get("invalid_title"), text => texts.get("invalid_text"), lang => language },
            &nonce,
        ),
    }
}

/// The built-in renderer, also the fallback.
pub fn native(
    state: &AppState,
    kind: PageKind,
    model: &ViewModel<'_>,
    branding: &str,
    status: StatusCode,
) -> Response {
    state.pages.render_with_nonce(
        status,
        native_template(kind),
        context! {
            m => minijinja::value::Serde(model),
            branding_css => branding,
            lang => model.language,
        },
        model.nonce,
    )
}

/// Runs the theme; its HTML and stylesheet, or why not (the failure is recorded as a run).
async fn themed(
    state: &AppState,
    tenant: &Tenant,
    install: &str,
    kind: PageKind,
    model: &ViewModel<'_>,
) -> Result<(String, String), String> {
    let runnable = prepared::runnable_cached(state, &tenant.id, install)
        .await
        .map_err(|e| format!("install unusable: {}", e.code()))?;
    if runnable.kind != PluginKind::Theme {
        return Err("the install is not a theme".into());
    }
    // The output depends only on the install and the view model, so it is kept (with a
    // placeholder for the nonce, which is fresh on every response) until either changes.
    let view_model = serde_json::to_string(model)
        .map_err(|e| e.to_string())?
        .replace(model.nonce, NONCE_PLACEHOLDER);
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
    let with_nonce = |page: &(String, String)| {
        (
            page.0.replace(NONCE_PLACEHOLDER, model.nonce),
            page.1.clone(),
        )
    };
    if let Some(cache) = &state.plugins.rendered
        && let Some(page) = cache.get(&key).await
    {
        return Ok(with_nonce(&page));
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
    let result = invocation.result.and_then(|rendered| {
        if head_end(&rendered.html).is_none() {
            return Err(PluginError::InvalidOutput(
                "the page has no </head> to put its styles in".into(),
            ));
        }
        Ok((rendered.html, rendered.stylesheet))
    });
    match result {
        Ok(page) => {
            let page = Arc::new(page);
            if let Some(cache) = &state.plugins.rendered {
                cache.insert(key, page.clone()).await;
            }
            Ok(with_nonce(&page))
        }
        Err(error) => {
            let subject = runnable.subject(&tenant.id);
            if let Err(e) =
                runs::record(&state.db.pool, subject, &invocation.report, Some(&error)).await
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

/// Puts the branding variables and the theme's stylesheet into the page's head, under the
/// page's nonce (the policy allows no other styles).
fn with_styles(html: &str, branding: &str, stylesheet: &str, nonce: &str) -> String {
    let at = head_end(html).unwrap_or(0);
    // A stylesheet cannot close its element early.
    let stylesheet = stylesheet.replace("</", "<\\/");
    format!(
        "{}<style nonce=\"{nonce}\">\n{branding}{stylesheet}\n</style>\n{}",
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
        let out = with_styles(
            html,
            ":root{}",
            "p{} </style><script>alert(1)</script>",
            "n1",
        );
        let style_at = out.find("<style nonce=\"n1\">").unwrap();
        assert!(style_at < out.find("</HEAD>").unwrap());
        assert!(style_at > out.find("<title>").unwrap());
        assert!(!out.contains("</style><script>"));
        assert_eq!(out.matches("</style>").count(), 1);
    }
}
