//! Harbour: a calm portal theme. Cards on a quiet background, a vertical timeline with dots
//! joined by a line, and generous whitespace. `{"rounded": false}` squares the corners.

use portico_sdk::{Json, Theme, register_theme};

struct Harbour;

const STYLE: &str = include_str!("../style.css");

/// Appended when the tenant asks for square corners.
const SQUARE: &str = "\nbody { --radius: 0; --radius-small: 0; --radius-dot: 0; }\n";

impl Theme for Harbour {
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

    fn stylesheet(config: &Json) -> String {
        let rounded = config["rounded"].as_bool().unwrap_or(true);
        let mut css = String::from(STYLE);
        if !rounded {
            css.push_str(SQUARE);
        }
        css
    }
}

register_theme!(Harbour);
