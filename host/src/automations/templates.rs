//! Message templates in minijinja: the subject and plain-text part as text, the HTML part
//! autoescaped, and the text derived from the HTML when a template has none. A template is
//! checked when it is saved, against the placeholders a message can use, so a typo is refused
//! with its position instead of sending an empty value to thousands of people.

use std::collections::BTreeSet;

use minijinja::{AutoEscape, Environment, UndefinedBehavior};
use serde_json::Value;

use super::model::Rendered;
use crate::error::{Error, Result, TextPosition};

/// Bounds the work one render may do (loops over tenant-written ranges).
const RENDER_FUEL: u64 = 200_000;
/// Largest rendered part: a template cannot make the host build a huge string.
const MAX_OUTPUT_BYTES: usize = 256 << 10;
/// Longest template part accepted.
const MAX_PART_BYTES: usize = 64 << 10;
/// Width of the plain text derived from HTML.
const TEXT_WIDTH: usize = 78;

/// The placeholders every message can use, as dotted paths. A path's parents may be used too
/// (`ticket.appointment` in an `{% if %}`); custom fields are added per tenant.
pub const PLACEHOLDERS: &[&str] = &[
    "ticket.number",
    "ticket.title",
    "ticket.description",
    "ticket.status",
    "ticket.status_label",
    "ticket.type",
    "ticket.priority",
    "ticket.address",
    "ticket.project",
    "ticket.appointment.date",
    "ticket.appointment.start_time",
    "ticket.appointment.end_time",
    "ticket.appointment.time_zone",
    "person.first_name",
    "person.last_name",
    "person.name",
    "person.email",
    "person.mobile",
    "person.language",
    "technician.name",
    "technician.email",
    "tenant.name",
    "portal.tracking_link",
    "portal.booking_link",
];

/// The three parts of a message as written.
#[derive(Clone, Copy)]
pub struct Parts<'a> {
    pub subject: &'a str,
    pub html: &'a str,
    pub text: Option<&'a str>,
}

impl<'a> Parts<'a> {
    fn named(&self) -> Vec<(&'static str, &'a str)> {
        let mut parts = vec![("subject", self.subject), ("html", self.html)];
        if let Some(text) = self.text {
            parts.push(("text", text));
        }
        parts
    }
}

/// The template file name of a part, which decides its escaping.
fn file_name(part: &str) -> &'static str {
    match part {
        "html" => "message.html",
        "subject" => "subject.txt",
        _ => "message.txt",
    }
}

fn environment<'source>(undefined: UndefinedBehavior) -> Environment<'source> {
    let mut env = Environment::new();
    env.set_undefined_behavior(undefined);
    env.set_fuel(Some(RENDER_FUEL));
    env.set_auto_escape_callback(|name| {
        if name.ends_with(".html") {
            AutoEscape::Html
        } else {
            AutoEscape::None
        }
    });
    env
}

/// Refuses a message whose parts do not compile, name a placeholder that does not exist, or
/// fail on a sample ticket; the error carries the part, line and column.
pub fn check(parts: Parts<'_>, custom_fields: &[String]) -> Result<()> {
    if parts.subject.trim().is_empty() {
        return Err(Error::invalid(
            "invalid_template",
            "a message needs a subject",
        ));
    }
    let known = known_paths(custom_fields);
    let sample = sample_context(custom_fields);
    let env = environment(UndefinedBehavior::SemiStrict);
    for (part, source) in parts.named() {
        if source.len() > MAX_PART_BYTES {
            return Err(Error::invalid(
                "invalid_template",
                format!("the {part} part is longer than {MAX_PART_BYTES} bytes"),
            ));
        }
        let template = env
            .template_from_named_str(file_name(part), source)
            .map_err(|e| template_error(part, source, &e))?;
        let mut unknown: Vec<String> = template
            .undeclared_variables(true)
            .into_iter()
            // The engine's own functions (`range`, `namespace`…) are not placeholders.
            .filter(|name| !known.contains(name) && !env.globals().any(|(g, _)| g == name))
            .collect();
        unknown.sort();
        if let Some(name) = unknown.first() {
            return Err(Error::InvalidAt {
                code: "unknown_placeholder",
                message: format!(
                    "the {part} part names {name:?}, which is not a placeholder; known ones are {}",
                    PLACEHOLDERS.join(", ")
                ),
                position: find(source, name),
            });
        }
        render_capped(&template, &sample).map_err(|e| template_error(part, source, &e))?;
    }
    Ok(())
}

/// Refuses a text-only template (a tracking-page notice) as [`check`] does.
pub fn check_text(source: &str, custom_fields: &[String]) -> Result<()> {
    if source.trim().is_empty() {
        return Err(Error::invalid("invalid_template", "a notice needs a text"));
    }
    check(
        Parts {
            subject: "-",
            html: "",
            text: Some(source),
        },
        custom_fields,
    )
}

/// Renders a checked text-only template.
pub fn render_text(source: &str, context: &Value) -> Result<String> {
    render_part(
        &environment(UndefinedBehavior::Lenient),
        "text",
        source,
        context,
    )
}

/// Renders one part, its output capped at [`MAX_OUTPUT_BYTES`].
fn render_part(env: &Environment<'_>, part: &str, source: &str, context: &Value) -> Result<String> {
    env.template_from_named_str(file_name(part), source)
        .and_then(|template| render_capped(&template, context))
        .map_err(|e| template_error(part, source, &e))
}

fn render_capped(
    template: &minijinja::Template<'_, '_>,
    context: &Value,
) -> std::result::Result<String, minijinja::Error> {
    let mut out = CappedWriter(Vec::new());
    match template.render_captured_to(minijinja::value::Serde(context), &mut out) {
        Ok(_) => Ok(String::from_utf8_lossy(&out.0).into_owned()),
        Err(_) if out.0.len() >= MAX_OUTPUT_BYTES => Err(minijinja::Error::new(
            minijinja::ErrorKind::InvalidOperation,
            format!("the rendered text is longer than {MAX_OUTPUT_BYTES} bytes"),
        )),
        Err(e) => Err(e),
    }
}

/// A buffer that refuses to grow past [`MAX_OUTPUT_BYTES`] (and then reads as full).
struct CappedWriter(Vec<u8>);

impl std::io::Write for CappedWriter {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        if self.0.len() + bytes.len() > MAX_OUTPUT_BYTES {
            self.0.resize(MAX_OUTPUT_BYTES, 0);
            return Err(std::io::Error::other("output limit"));
        }
        self.0.extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Renders a checked message for one recipient's context.
pub fn render(parts: Parts<'_>, context: &Value) -> Result<Rendered> {
    let env = environment(UndefinedBehavior::Lenient);
    let one = |part: &str, source: &str| render_part(&env, part, source, context);
    let subject = one("subject", parts.subject)?;
    let html = one("html", parts.html)?;
    let text = match parts.text {
        Some(text) => one("text", text)?,
        None => html_to_text(&html),
    };
    Ok(Rendered {
        // A subject is one line whatever the template's line breaks.
        subject: subject.split_whitespace().collect::<Vec<_>>().join(" "),
        text,
        html: Some(html).filter(|h| !h.trim().is_empty()),
    })
}

/// The plain-text alternative of an HTML part, links kept as footnotes.
fn html_to_text(html: &str) -> String {
    html2text::from_read(html.as_bytes(), TEXT_WIDTH).unwrap_or_else(|_| html.to_string())
}

fn known_paths(custom_fields: &[String]) -> BTreeSet<String> {
    let mut known: BTreeSet<String> = BTreeSet::new();
    let paths = PLACEHOLDERS.iter().map(|p| p.to_string()).chain(
        custom_fields
            .iter()
            .map(|k| format!("ticket.custom_fields.{k}")),
    );
    for path in paths {
        // Every parent of a placeholder may be named too.
        let mut end = 0;
        for segment in path.split('.') {
            end += segment.len();
            known.insert(path[..end].to_string());
            end += 1;
        }
    }
    known
}

/// A context with every placeholder set, to find errors a real message would hit.
fn sample_context(custom_fields: &[String]) -> Value {
    let mut root = serde_json::Map::new();
    for path in PLACEHOLDERS.iter().map(|p| p.to_string()).chain(
        custom_fields
            .iter()
            .map(|k| format!("ticket.custom_fields.{k}")),
    ) {
        let mut node = &mut root;
        let segments: Vec<&str> = path.split('.').collect();
        for (i, segment) in segments.iter().enumerate() {
            if i + 1 == segments.len() {
                node.insert(segment.to_string(), Value::String("sample".into()));
            } else {
                node = node
                    .entry(segment.to_string())
                    .or_insert_with(|| Value::Object(Default::default()))
                    .as_object_mut()
                    .expect("placeholder parents are objects");
            }
        }
    }
    Value::Object(root)
}

fn template_error(part: &str, source: &str, error: &minijinja::Error) -> Error {
    let line = error.line().unwrap_or(1);
    let column = error
        .range()
        .map(|range| column_at(source, range.start))
        .unwrap_or(1);
    Error::InvalidAt {
        code: "invalid_template",
        message: format!(
            "the {part} part has an error at line {line}, column {column}: {}",
            error.detail().unwrap_or("it cannot be rendered")
        ),
        position: TextPosition {
            line: line as u32,
            column,
        },
    }
}

/// The 1-based column of a byte offset, in characters.
fn column_at(source: &str, offset: usize) -> u32 {
    let offset = offset.min(source.len());
    let line_start = source[..offset].rfind('\n').map_or(0, |i| i + 1);
    source[line_start..offset].chars().count() as u32 + 1
}

/// Where a dotted name first appears in the source (its last segment when written otherwise).
fn find(source: &str, name: &str) -> TextPosition {
    let last = name.rsplit('.').next().unwrap_or(name);
    let offset = source.find(name).or_else(|| source.find(last)).unwrap_or(0);
    let line = source[..offset].matches('\n').count() as u32 + 1;
    TextPosition {
        line,
        column: column_at(source, offset),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(html: &str) -> Parts<'_> {
        Parts {
            subject: "Ticket {{ ticket.number }}",
            html,
            text: None,
        }
    }

    #[test]
    fn an_unknown_placeholder_is_refused_with_its_position() {
        let html = "<p>Hello {{ person.first_name }}</p>\n<p>{{ ticket.bogus }}</p>";
        let Err(Error::InvalidAt { code, position, .. }) = check(parts(html), &[]) else {
            panic!("accepted an unknown placeholder");
        };
        assert_eq!(code, "unknown_placeholder");
        assert_eq!(position, TextPosition { line: 2, column: 7 });
    }

    #[test]
    fn an_unknown_placeholder_in_a_branch_not_taken_is_refused_too() {
        let html = "{% if false %}{{ techniciann.name }}{% endif %}";
        assert!(check(parts(html), &[]).is_err());
    }

    #[test]
    fn a_syntax_error_is_refused_with_its_line() {
        let html = "<p>one</p>\n<p>{{ ticket.title </p>";
        let Err(Error::InvalidAt { code, position, .. }) = check(parts(html), &[]) else {
            panic!("accepted a syntax error");
        };
        assert_eq!(code, "invalid_template");
        assert_eq!(position.line, 2);
    }

    #[test]
    fn a_template_cannot_build_a_huge_text() {
        let html = r#"{% for i in range(100) %}{{ "x" * 100000 }}{% endfor %}"#;
        let Err(Error::InvalidAt { message, .. }) = check(parts(html), &[]) else {
            panic!("accepted a template that renders 10 MB");
        };
        assert!(message.contains("longer than"), "{message}");
    }

    #[test]
    fn custom_fields_of_the_tenant_are_placeholders() {
        let html = "{{ ticket.custom_fields.serial }}";
        assert!(check(parts(html), &[]).is_err());
        check(parts(html), &["serial".into()]).unwrap();
    }

    #[test]
    fn the_html_part_is_escaped_and_the_text_derived() {
        let context = serde_json::json!({"ticket": {"title": "<b>Printer</b> & co", "number": 7},
            "portal": {"tracking_link": "https://acme.example/t/x"}});
        let html = r#"<p>{{ ticket.title }}</p><a href="{{ portal.tracking_link }}">Track</a>"#;
        let rendered = render(parts(html), &context).unwrap();
        assert_eq!(rendered.subject, "Ticket 7");
        let html = rendered.html.unwrap();
        assert!(
            html.contains("&lt;b&gt;Printer&lt;&#x2f;b&gt; &amp; co"),
            "{html}"
        );
        assert!(
            rendered.text.contains("<b>Printer</b> & co"),
            "{}",
            rendered.text
        );
        assert!(rendered.text.contains("https://acme.example/t/x"));
    }
}
