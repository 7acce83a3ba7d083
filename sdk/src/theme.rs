//! Portal themes, with minijinja templates compiled into the component.

use crate::Json;
pub use crate::bindings::exports::portico::plugin::pages::{Page, PageKind, Rendered};

/// The template a page kind renders with by default.
pub fn template_name(kind: PageKind) -> &'static str {
    match kind {
        PageKind::Tracking => "tracking.html",
        PageKind::Booking => "booking.html",
        PageKind::SignIn => "sign_in.html",
        PageKind::Tickets => "tickets.html",
        PageKind::NotFound => "not_found.html",
        PageKind::Unavailable => "unavailable.html",
    }
}

/// A portal theme. Most themes only list their templates and a stylesheet: the default
/// [`Theme::render`] picks the template named after the page kind (`tracking.html`,
/// `booking.html`, `sign_in.html`, `tickets.html`, `not_found.html`, `unavailable.html`) and
/// renders it with the view model's fields, `config` and `language` in its context. Templates
/// ending in `.html` are auto-escaped.
///
/// ```ignore
/// use portico_sdk::{Json, Theme, register_theme};
///
/// struct Plain;
///
/// impl Theme for Plain {
///     fn templates() -> &'static [(&'static str, &'static str)] {
///         &[
///             ("layout.html", "<!doctype html><html lang=\"{{ language }}\"><body>{% block body %}{% endblock %}</body></html>"),
///             ("tracking.html", "{% extends \"layout.html\" %}{% block body %}<h1>{{ ticket.title }}</h1>{% endblock %}"),
///         ]
///     }
///
///     fn stylesheet(config: &Json) -> String {
///         format!("body {{ color: {}; }}", config["text_colour"].as_str().unwrap_or("#222"))
///     }
/// }
///
/// register_theme!(Plain);
/// ```
pub trait Theme {
    /// Template sources by name.
    fn templates() -> &'static [(&'static str, &'static str)];

    /// The stylesheet served with every page. None by default.
    fn stylesheet(config: &Json) -> String {
        let _ = config;
        String::new()
    }

    /// Renders a page.
    fn render(page: Page, config: Json) -> Result<Rendered, String> {
        let mut env = minijinja::Environment::new();
        // Every call runs in a fresh instance, so parsing is paid per page: only the templates
        // the page uses are parsed, when first referenced.
        let templates = Self::templates();
        env.set_loader(move |name| {
            Ok(templates
                .iter()
                .find(|(candidate, _)| *candidate == name)
                .map(|(_, source)| source.to_string()))
        });
        let model: Json =
            serde_json::from_str(&page.view_model).map_err(|e| format!("view model: {e}"))?;
        let ctx = minijinja::context! {
            config => minijinja::Value::from(minijinja::value::Serde(&config)),
            language => page.language,
            ..minijinja::Value::from(minijinja::value::Serde(&model))
        };
        let name = template_name(page.kind);
        let html = env
            .get_template(name)
            .and_then(|t| t.render(ctx))
            .map_err(|e| format!("rendering {name}: {e}"))?;
        Ok(Rendered {
            html,
            stylesheet: Self::stylesheet(&config),
        })
    }
}

/// Registers the type implementing [`Theme`] as this component's export.
#[macro_export]
macro_rules! register_theme {
    ($plugin:ty) => {
        struct __PorticoExport;
        impl $crate::bindings::exports::portico::plugin::pages::Guest for __PorticoExport {
            fn render(page: $crate::Page, config: String) -> Result<$crate::Rendered, String> {
                <$plugin as $crate::Theme>::render(page, $crate::parse_config(&config))
            }
        }
        $crate::bindings::__export_plugin!(__PorticoExport);
    };
}
