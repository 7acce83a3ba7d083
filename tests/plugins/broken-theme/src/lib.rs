//! A theme that fails the way `config.fail` asks, to prove the host survives it and falls back:
//! `"trap"` panics, `"loop"` never returns, `"empty"` returns an empty page and stylesheet.
//! Anything else renders a minimal valid tracking page, with a script that must not run: a theme
//! gets no nonce, so it writes the one it finds, or `none`.

use std::sync::atomic::{AtomicU32, Ordering};

use portico_sdk::{Json, Page, Rendered, Theme, register_theme};

static SPINS: AtomicU32 = AtomicU32::new(0);

/// The well-behaved part: one tracking template.
struct Minimal;

impl Theme for Minimal {
    type Config = Json;

    fn templates() -> &'static [(&'static str, &'static str)] {
        &[(
            "tracking.html",
            "<!doctype html><html><head><title>ok</title></head><body><h1>{{ ticket.title }}</h1>\
             <script id=\"theme-script\" nonce=\"{{ nonce | default('none') }}\">document.title = 'ran';</script></body></html>",
        )]
    }
}

struct Broken;

impl Theme for Broken {
    type Config = Json;

    fn templates() -> &'static [(&'static str, &'static str)] {
        Minimal::templates()
    }

    fn render(page: Page, config: Json) -> Result<Rendered, String> {
        match config["fail"].as_str().unwrap_or_default() {
            "trap" => panic!("the theme panicked on purpose"),
            "loop" => loop {
                std::hint::black_box(SPINS.fetch_add(1, Ordering::Relaxed));
            },
            "empty" => Ok(Rendered {
                html: String::new(),
                stylesheet: String::new(),
            }),
            _ => Minimal::render(page, config),
        }
    }
}

register_theme!(Broken);
