//! Harbour: a calm portal theme. Cards on a quiet background, a vertical timeline with dots
//! joined by a line, and generous whitespace. `{"rounded": false}` squares the corners.

use portico_sdk::serde::{Deserialize, Serialize};
use portico_sdk::{Theme, register_theme};

struct Harbour;

/// What a tenant may set (the manifest's `config_schema`).
#[derive(Deserialize, Serialize)]
#[serde(crate = "portico_sdk::serde", default)]
struct Config {
    /// Rounded corners; square when false.
    rounded: bool,
}

impl Default for Config {
    fn default() -> Self {
        Self { rounded: true }
    }
}

const STYLE: &str = include_str!("../style.css");

/// Appended when the tenant asks for square corners.
const SQUARE: &str = "\nbody { --radius: 0; --radius-small: 0; --radius-dot: 0; }\n";

impl Theme for Harbour {
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
        if !config.rounded {
            css.push_str(SQUARE);
        }
        css
    }
}

register_theme!(Harbour);
