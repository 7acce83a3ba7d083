//! Plugin inputs and outputs as JSON, for the invoke endpoint and `portico plugin run`.

use std::collections::BTreeMap;

use portico_sdk::schedule;
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

/// Runs `plugin` on a JSON `input` of its kind and returns its output as JSON.
pub async fn execute(
    runtime: &Runtime,
    plugin: &LoadedPlugin,
    call: Call<'_>,
    input: Value,
) -> Result<(Result<Value, PluginError>, RunReport), InputError> {
    let parse_error = |e: serde_json::Error| {
        InputError(format!("input for a {} plugin: {e}", plugin.kind.as_str()))
    };
    Ok(match plugin.kind {
        PluginKind::Theme => {
            let page = theme_page(serde_json::from_value(input).map_err(parse_error)?)?;
            let done = runtime.render(plugin, &call, &page).await;
            (
                done.result
                    .map(|r| json!({"html": r.html, "stylesheet": r.stylesheet})),
                done.report,
            )
        }
        PluginKind::SlotCalculator => {
            // The same shape as the WIT's `slot-request` (see `portico_sdk::schedule`).
            let request: schedule::Request = serde_json::from_value(input).map_err(parse_error)?;
            let done = runtime.calculate(plugin, &call, &request).await;
            (done.result.map(|slots| json!(slots)), done.report)
        }
        PluginKind::Channel => {
            let message = channel_message(serde_json::from_value(input).map_err(parse_error)?);
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
            let event = action_event(serde_json::from_value(input).map_err(parse_error)?);
            let done = runtime.run_action(plugin, &call, &event).await;
            (
                done.result
                    .map(|o| json!({"summary": o.summary, "external_ref": o.external_ref})),
                done.report,
            )
        }
    })
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ThemeInput {
    page: String,
    #[serde(default)]
    view_model: Value,
    #[serde(default = "english")]
    language: String,
}

fn english() -> String {
    "en".into()
}

fn theme_page(input: ThemeInput) -> Result<pages::Page, InputError> {
    let kind = match input.page.as_str() {
        "tracking" => pages::PageKind::Tracking,
        "booking" => pages::PageKind::Booking,
        "sign-in" => pages::PageKind::SignIn,
        "tickets" => pages::PageKind::Tickets,
        "not-found" => pages::PageKind::NotFound,
        "unavailable" => pages::PageKind::Unavailable,
        other => return Err(InputError(format!("unknown page {other:?}"))),
    };
    Ok(pages::Page {
        kind,
        view_model: input.view_model.to_string(),
        language: input.language,
    })
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RecipientInput {
    name: Option<String>,
    email: Option<String>,
    phone: Option<String>,
    #[serde(default = "english")]
    language: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ChannelInput {
    recipient: RecipientInput,
    subject: String,
    text: String,
    html: Option<String>,
    #[serde(default)]
    links: BTreeMap<String, String>,
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
        links: input
            .links
            .into_iter()
            .map(|(key, value)| types::KeyValue { key, value })
            .collect(),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ActionInput {
    kind: String,
    #[serde(default)]
    occurred_at: i64,
    #[serde(default)]
    ticket: Value,
    contact: Option<Value>,
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
