//! Plugin inputs and outputs as JSON, for the invoke endpoint and `portico plugin run`. The
//! input types here are the one source of the inputs' JSON Schemas ([`input_schema`]).

use std::collections::BTreeMap;

use portico_sdk::schedule;
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::bindings::v0_1_0::action::exports::portico::plugin::steps;
use crate::bindings::v0_1_0::exports::portico::plugin::channel;
use crate::bindings::v0_1_0::portico::plugin::types;
use crate::bindings::v0_1_0::theme::exports::portico::plugin::pages;
use crate::runtime::{Call, LoadedPlugin, RunReport, Runtime};
use crate::{PluginError, PluginKind};

/// Why an input was refused before the plugin ran.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct InputError(pub String);

/// The JSON Schema of a kind's input, generated from the types [`execute`] reads.
pub fn input_schema(kind: PluginKind) -> Value {
    let schema = match kind {
        PluginKind::Theme => schemars::schema_for!(ThemeInput),
        PluginKind::SlotCalculator => schemars::schema_for!(schedule::Request),
        PluginKind::Channel => schemars::schema_for!(ChannelInput),
        PluginKind::Action => schemars::schema_for!(ActionInput),
    };
    schema.to_value()
}

/// The JSON Schema of the theme view model ([`portico_sdk::view::ViewModel`]): what a theme's
/// page input carries as `view_model`. A snapshot of it is `sdk/view-model.schema.json`.
pub fn view_model_schema() -> Value {
    schemars::schema_for!(portico_sdk::view::ViewModel).to_value()
}

/// Reads a kind's input, naming the field that does not fit.
fn parse<T: serde::de::DeserializeOwned>(kind: PluginKind, input: Value) -> Result<T, InputError> {
    serde_path_to_error::deserialize(input).map_err(|e| {
        let path = e.path().to_string();
        let at = if path == "." {
            String::new()
        } else {
            format!(" at {path}")
        };
        InputError(format!(
            "input for a {} plugin{at}: {} (`portico plugin schema {}` prints its schema)",
            kind.as_str(),
            e.inner(),
            kind.as_str()
        ))
    })
}

/// Runs `plugin` on a JSON `input` of its kind and returns its output as JSON.
pub async fn execute(
    runtime: &Runtime,
    plugin: &LoadedPlugin,
    call: Call<'_>,
    input: Value,
) -> Result<(Result<Value, PluginError>, RunReport), InputError> {
    Ok(match plugin.kind {
        PluginKind::Theme => {
            let page = theme_page(parse(plugin.kind, input)?)?;
            let done = runtime.render(plugin, &call, &page).await;
            (
                done.result
                    .map(|r| json!({"html": r.html, "stylesheet": r.stylesheet})),
                done.report,
            )
        }
        PluginKind::SlotCalculator => {
            // The same shape as the WIT's `slot-request` (see `portico_sdk::schedule`).
            let mut input = input;
            wit_day_spans(&mut input);
            let request: schedule::Request = parse(plugin.kind, input)?;
            let done = runtime.calculate(plugin, &call, &request).await;
            (done.result.map(|slots| json!(slots)), done.report)
        }
        PluginKind::Channel => {
            let message = channel_message(parse(plugin.kind, input)?);
            let done = runtime.deliver(plugin, &call, &message).await;
            let output = |result: Result<channel::Delivery, channel::DeliveryError>| match result {
                Ok(d) => json!({"delivery": {"provider_id": d.provider_id, "detail": d.detail}}),
                Err(e) => {
                    let (kind, message) = match e {
                        channel::DeliveryError::InvalidRecipient(m) => ("invalid_recipient", m),
                        channel::DeliveryError::Rejected(m) => ("rejected", m),
                        channel::DeliveryError::Temporary(m) => ("temporary", m),
                        channel::DeliveryError::Configuration(m) => ("configuration", m),
                    };
                    json!({"delivery_error": {"kind": kind, "message": message}})
                }
            };
            (done.result.map(output), done.report)
        }
        PluginKind::Action => {
            let event = action_event(parse(plugin.kind, input)?);
            let done = runtime.run_action(plugin, &call, &event).await;
            (
                done.result
                    .map(|o| json!({"summary": o.summary, "external_ref": o.external_ref})),
                done.report,
            )
        }
    })
}

/// A day as the WIT's `local-day` has it (`start` and `end` beside the date) becomes the
/// request's (`span: {start, end}`), so `plugin run` takes either shape.
fn wit_day_spans(input: &mut Value) {
    let Some(days) = input.get_mut("days").and_then(Value::as_array_mut) else {
        return;
    };
    for day in days.iter_mut().filter_map(Value::as_object_mut) {
        if !day.contains_key("span") && day.contains_key("start") && day.contains_key("end") {
            let span = json!({"start": day.remove("start"), "end": day.remove("end")});
            day.insert("span".into(), span);
        }
    }
}

/// A page for a theme to render.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct ThemeInput {
    /// The page kind, as the view model's `page` names it: `tracking`, `booking`, `sign_in`,
    /// `tickets`, `not_found` or `unavailable` (the WIT's `not-found` and `sign-in` too).
    page: String,
    /// The view model (`portico_sdk::view::ViewModel`), as the host builds it.
    #[serde(default)]
    view_model: Value,
    /// The language to render in.
    #[serde(default = "english")]
    language: String,
}

/// Page kinds by the view model's name, the WIT's names after them.
const PAGE_NAMES: [(&str, pages::PageKind); 8] = [
    ("tracking", pages::PageKind::Tracking),
    ("booking", pages::PageKind::Booking),
    ("sign_in", pages::PageKind::SignIn),
    ("tickets", pages::PageKind::Tickets),
    ("not_found", pages::PageKind::NotFound),
    ("unavailable", pages::PageKind::Unavailable),
    ("sign-in", pages::PageKind::SignIn),
    ("not-found", pages::PageKind::NotFound),
];

fn english() -> String {
    "en".into()
}

fn theme_page(input: ThemeInput) -> Result<pages::Page, InputError> {
    let Some(&(_, kind)) = PAGE_NAMES.iter().find(|(name, _)| *name == input.page) else {
        let names: Vec<&str> = PAGE_NAMES[..6].iter().map(|(name, _)| *name).collect();
        return Err(InputError(format!(
            "unknown page {:?}: pages are {}",
            input.page,
            names.join(", ")
        )));
    };
    Ok(pages::Page {
        kind,
        view_model: input.view_model.to_string(),
        language: input.language,
    })
}

/// Who receives a message.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct RecipientInput {
    /// Display name.
    name: Option<String>,
    /// Email address.
    email: Option<String>,
    /// Mobile number in E.164 form.
    phone: Option<String>,
    /// The recipient's language.
    #[serde(default = "english")]
    language: String,
}

/// A message for a channel to deliver.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct ChannelInput {
    /// The recipient.
    recipient: RecipientInput,
    /// Subject or title.
    subject: String,
    /// Plain-text body.
    text: String,
    /// Optional HTML body.
    html: Option<String>,
    /// Portal links by name, as a map or as the WIT's list of `{key, value}`.
    #[serde(default)]
    links: LinksInput,
}

/// Links as a map, or as the WIT's list of key-value pairs.
#[derive(Deserialize, JsonSchema)]
#[serde(untagged)]
enum LinksInput {
    /// `{"tracking": "https://…"}`
    Map(BTreeMap<String, String>),
    /// `[{"key": "tracking", "value": "https://…"}]`
    List(Vec<KeyValueInput>),
}

impl Default for LinksInput {
    fn default() -> Self {
        Self::Map(BTreeMap::new())
    }
}

/// One pair of the WIT's `key-value` list.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct KeyValueInput {
    key: String,
    value: String,
}

fn channel_message(input: ChannelInput) -> channel::Message {
    channel::Message {
        recipient: channel::Recipient {
            name: input.recipient.name,
            email: input.recipient.email,
            phone: input.recipient.phone,
            language: input.recipient.language,
        },
        subject: input.subject,
        text: input.text,
        html: input.html,
        links: match input.links {
            LinksInput::Map(links) => links
                .into_iter()
                .map(|(key, value)| types::KeyValue { key, value })
                .collect(),
            LinksInput::List(links) => links
                .into_iter()
                .map(|kv| types::KeyValue {
                    key: kv.key,
                    value: kv.value,
                })
                .collect(),
        },
    }
}

/// The event an action step runs for.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct ActionInput {
    /// Such as `ticket.status_changed`.
    kind: String,
    /// When it happened, in milliseconds since 1970.
    #[serde(default)]
    occurred_at: i64,
    /// The ticket.
    #[serde(default)]
    ticket: Value,
    /// The contact involved, if any.
    contact: Option<Value>,
    /// The appointment involved, if any.
    appointment: Option<Value>,
}

fn action_event(input: ActionInput) -> steps::Event {
    steps::Event {
        kind: input.kind,
        occurred_at: input.occurred_at,
        ticket: if input.ticket.is_null() {
            "{}".into()
        } else {
            input.ticket.to_string()
        },
        contact: input.contact.map(|c| c.to_string()),
        appointment: input.appointment.map(|a| a.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The view model's schema is kept beside the SDK, so that a change to the contract with
    /// themes shows in review. `PORTICO_UPDATE_SNAPSHOTS=1` rewrites it.
    #[test]
    fn the_view_model_matches_its_snapshot() {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../sdk/view-model.schema.json"
        );
        let current = serde_json::to_string_pretty(&view_model_schema()).unwrap() + "\n";
        if std::env::var("PORTICO_UPDATE_SNAPSHOTS").as_deref() == Ok("1") {
            std::fs::write(path, &current).unwrap();
        }
        let kept = std::fs::read_to_string(path).unwrap_or_default();
        assert!(
            kept == current,
            "the theme view model changed: review it, then run with PORTICO_UPDATE_SNAPSHOTS=1"
        );
    }

    #[test]
    fn an_input_error_names_the_field() {
        let input = json!({"recipient": {"email": 5}, "subject": "s", "text": "t"});
        let error = parse::<ChannelInput>(PluginKind::Channel, input)
            .err()
            .unwrap()
            .0;
        assert!(error.contains("at recipient.email"), "{error}");
        let input = json!({"page": "tracking", "language": "en", "colour": "red"});
        let error = parse::<ThemeInput>(PluginKind::Theme, input)
            .err()
            .unwrap()
            .0;
        assert!(error.contains("unknown field `colour`"), "{error}");
    }

    #[test]
    fn a_theme_page_is_named_as_the_view_model_or_the_wit_names_it() {
        for (name, kind) in [
            ("not_found", pages::PageKind::NotFound),
            ("not-found", pages::PageKind::NotFound),
        ] {
            let input = ThemeInput {
                page: name.into(),
                view_model: json!({}),
                language: "en".into(),
            };
            assert_eq!(theme_page(input).unwrap().kind, kind);
        }
        let input = ThemeInput {
            page: "home".into(),
            view_model: json!({}),
            language: "en".into(),
        };
        let error = theme_page(input).err().unwrap().0;
        assert!(
            error.contains("tracking, booking, sign_in, tickets, not_found, unavailable"),
            "{error}"
        );
    }

    #[test]
    fn a_day_comes_with_a_span_or_as_the_wits_start_and_end() {
        let mut input = json!({"days": [{"date": "2027-01-04", "start": 1, "end": 2}]});
        wit_day_spans(&mut input);
        assert_eq!(input["days"][0]["span"], json!({"start": 1, "end": 2}));
        assert!(input["days"][0].get("start").is_none());
    }

    #[test]
    fn links_come_as_a_map_or_as_the_wits_list() {
        for links in [
            json!({"tracking": "https://p/t/x"}),
            json!([{"key": "tracking", "value": "https://p/t/x"}]),
        ] {
            let input = json!({"recipient": {}, "subject": "s", "text": "t", "links": links});
            let message = channel_message(parse(PluginKind::Channel, input).unwrap());
            assert_eq!(message.links.len(), 1);
            assert_eq!(message.links[0].key, "tracking");
        }
    }
}
