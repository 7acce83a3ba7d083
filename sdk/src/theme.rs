//! Portal themes, with minijinja templates compiled into the component.

use crate::Json;
pub use crate::bindings::theme::exports::portico::plugin::pages::{Page, PageKind, Rendered};

/// The page kind's name: the view model's `page` field, and its template's name without
/// `.html`. The host renders `tracking`, `booking`, `not_found` and `unavailable` today;
/// `sign_in` and `tickets` belong to the customer login portal and are not rendered yet.
pub fn page_name(kind: PageKind) -> &'static str {
    match kind {
        PageKind::Tracking => "tracking",
        PageKind::Booking => "booking",
        PageKind::SignIn => "sign_in",
        PageKind::Tickets => "tickets",
        PageKind::NotFound => "not_found",
        PageKind::Unavailable => "unavailable",
    }
}

/// The template a page kind renders with by default: its name with `.html`.
pub fn template_name(kind: PageKind) -> String {
    format!("{}.html", page_name(kind))
}

/// A portal theme. Most themes only list their templates and a stylesheet: the default
/// [`Theme::render`] picks the template named after the page kind (`tracking.html`,
/// `booking.html`, `sign_in.html`, `tickets.html`, `not_found.html`, `unavailable.html`) and
/// renders it with the view model's fields, `config` and `language` in its context. Templates
/// ending in `.html` are auto-escaped.
///
/// ```ignore
/// use portico_sdk::{Theme, register_theme};
///
/// struct Plain;
///
/// /// What a tenant may set, as the manifest's `config_schema` describes it.
/// #[derive(serde::Deserialize, serde::Serialize, Default)]
/// #[serde(default)]
/// struct Config {
///     text_colour: Option<String>,
/// }
///
/// impl Theme for Plain {
///     type Config = Config;
///
///     fn templates() -> &'static [(&'static str, &'static str)] {
///         &[
///             ("layout.html", "<!doctype html><html lang=\"{{ language }}\"><body>{% block body %}{% endblock %}</body></html>"),
///             ("tracking.html", "{% extends \"layout.html\" %}{% block body %}<h1>{{ ticket.title }}</h1>{% endblock %}"),
///         ]
///     }
///
///     fn stylesheet(config: &Config) -> String {
///         format!("body {{ color: {}; }}", config.text_colour.as_deref().unwrap_or("#222"))
///     }
/// }
///
/// register_theme!(Plain);
/// ```
pub trait Theme {
    /// The tenant's configuration, which the host has validated against the manifest's
    /// `config_schema`; [`Json`] takes it as it is. Templates see it as `config`. A
    /// configuration that does not deserialise fails the page, and the host falls back to its
    /// built-in one.
    type Config: serde::de::DeserializeOwned + serde::Serialize;

    /// Template sources by name.
    fn templates() -> &'static [(&'static str, &'static str)];

    /// The stylesheet served with every page. None by default.
    fn stylesheet(config: &Self::Config) -> String {
        let _ = config;
        String::new()
    }

    /// Renders a page.
    fn render(page: Page, config: Self::Config) -> Result<Rendered, String> {
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
            .get_template(&name)
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
        impl $crate::bindings::theme::exports::portico::plugin::pages::Guest for __PorticoExport {
            fn render(page: $crate::Page, config: String) -> Result<$crate::Rendered, String> {
                $crate::log::__use_plugin_0_1_0();
                <$plugin as $crate::Theme>::render(page, $crate::__config(&config)?)
            }
        }
        $crate::bindings::theme::export!(__PorticoExport with_types_in $crate::bindings::theme);
    };
}
