//! A minimal theme: the ticket's title in a heading, in the page's language.

use portico_sdk::{Json, Theme, register_theme};

struct Hello;

impl Theme for Hello {
    type Config = Json;

    fn templates() -> &'static [(&'static str, &'static str)] {
        &[
            (
                "layout.html",
                "<!doctype html><html lang=\"{{ language }}\"><head><title>Hello</title></head><body>{% block body %}{% endblock %}</body></html>",
            ),
            (
                "tracking.html",
                "{% extends \"layout.html\" %}{% block body %}<h1>{{ ticket.title }}</h1>{% endblock %}",
            ),
            (
                "not_found.html",
                "{% extends \"layout.html\" %}{% block body %}<h1>Not found</h1>{% endblock %}",
            ),
        ]
    }

    fn stylesheet(config: &Json) -> String {
        format!(
            "h1 {{ color: {}; }}",
            config["accent"].as_str().unwrap_or("#0b5cad")
        )
    }
}

register_theme!(Hello);
