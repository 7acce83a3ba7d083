//! Signal: a bold, high-contrast portal theme. A full-width band in the tenant's main colour
//! carries the logo and the ticket, a large headline names the current status, and a numbered
//! stepper shows the progress: across the page on wide screens, down it on narrow ones.
//! `{"compact": true}` tightens the spacing and the headline.

use portico_sdk::serde::{Deserialize, Serialize};
use portico_sdk::{Theme, register_theme};

struct Signal;

/// What a tenant may set (the manifest's `config_schema`).
#[derive(Deserialize, Serialize, Default)]
#[serde(crate = "portico_sdk::serde", default)]
struct Config {
    /// Tighter spacing and a smaller headline.
    compact: bool,
}

const STYLE: &str = include_str!("../style.css");

/// Appended when the tenant asks for the compact variant.
const COMPACT: &str = "
body { --gap: 1.25rem; --pad: 1rem; --band-pad: 1.25rem; --dot: 2rem; --headline: clamp(1.75rem, 1.3rem + 2.5vw, 2.75rem); font-size: 1rem; }
.band h1 { margin-top: 1rem; font-size: clamp(1.3rem, 1.1rem + 1vw, 1.85rem); }
.stepper li { padding-bottom: .75rem; min-height: calc(var(--dot) + .75rem); }
.technician { font-size: 1.25rem; }
.appointment { font-size: 1.15rem; }
.button { min-height: 2.75rem; padding: .5rem 1.125rem; }
.stars label { width: 2.75rem; height: 2.75rem; font-size: 1.5rem; }
@media (min-width: 64rem) { body { --pad: 1.25rem; --band-pad: 1.5rem; } }
";

impl Theme for Signal {
    type Config = Config;

    fn templates() -> &'static [(&'static str, &'static str)] {
        &[
            ("layout.html", include_str!("../templates/layout.html")),
            ("brand.html", include_str!("../templates/brand.html")),
            ("header.html", include_str!("../templates/header.html")),
            (
                "appointment.html",
                include_str!("../templates/appointment.html"),
            ),
            ("notices.html", include_str!("../templates/notices.html")),
            ("tracking.html", include_str!("../templates/tracking.html")),
            ("booking.html", include_str!("../templates/booking.html")),
            (
                "booking_form.html",
                include_str!("../templates/booking_form.html"),
            ),
            (
                "not_found.html",
                include_str!("../templates/not_found.html"),
            ),
            (
                "unavailable.html",
                include_str!("../templates/unavailable.html"),
            ),
        ]
    }

    fn stylesheet(config: &Config) -> String {
        let mut css = String::from(STYLE);
        if config.compact {
            css.push_str(COMPACT);
        }
        css
    }
}

register_theme!(Signal);
