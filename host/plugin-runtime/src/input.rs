//! Plugin inputs and outputs as JSON, for the invoke endpoint and `portico plugin run`.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::{Value, json};

use crate::bindings::v0_1_0::action::exports::portico::plugin::steps;
use crate::bindings::v0_1_0::exports::portico::plugin::channel;
use crate::bindings::v0_1_0::portico::plugin::types;
use crate::bindings::v0_1_0::slots::exports::portico::plugin::slots;
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
            let request = slot_request(serde_json::from_value(input).map_err(parse_error)?)?;
            let done = runtime.calculate(plugin, &call, &request).await;
            let slots = |list: Vec<slots::Slot>| {
                Value::Array(
                    list.into_iter()
                        .map(|s| json!({"start": s.window.start, "end": s.window.end, "capacity_left": s.capacity_left}))
                        .collect(),
                )
            };
            (done.result.map(slots), done.report)
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

#[derive(Deserialize, Clone, Copy)]
#[serde(deny_unknown_fields)]
struct OpeningInput {
    weekday: u8,
    start_minute: u16,
    end_minute: u16,
}

impl From<OpeningInput> for slots::Opening {
    fn from(o: OpeningInput) -> Self {
        Self {
            weekday: o.weekday,
            start_minute: o.start_minute,
            end_minute: o.end_minute,
        }
    }
}

#[derive(Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case", deny_unknown_fields)]
enum RulesInput {
    Sla {
        response_minutes: u32,
        working_hours: Vec<OpeningInput>,
        window_minutes: u32,
        capacity: u32,
    },
    Intervals {
        intervals: Vec<IntervalInput>,
    },
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct IntervalInput {
    #[serde(flatten)]
    opening: OpeningInput,
    capacity: u32,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct WindowInput {
    start: i64,
    end: i64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SlotsInput {
    rules: RulesInput,
    #[serde(default)]
    ticket: Value,
    now: i64,
    time_zone: String,
    /// Days to offer, from today in the time zone.
    #[serde(default = "two_weeks")]
    horizon_days: u16,
    #[serde(default)]
    bookings: Vec<WindowInput>,
}

fn two_weeks() -> u16 {
    14
}

fn slot_request(input: SlotsInput) -> Result<slots::SlotRequest, InputError> {
    let rules = match input.rules {
        RulesInput::Sla {
            response_minutes,
            working_hours,
            window_minutes,
            capacity,
        } => slots::Rules::Sla(slots::SlaProfile {
            response_minutes,
            working_hours: working_hours.into_iter().map(Into::into).collect(),
            window_minutes,
            capacity,
        }),
        RulesInput::Intervals { intervals } => slots::Rules::Intervals(
            intervals
                .into_iter()
                .map(|i| slots::IntervalRule {
                    opening: i.opening.into(),
                    capacity: i.capacity,
                })
                .collect(),
        ),
    };
    Ok(slots::SlotRequest {
        rules,
        ticket: if input.ticket.is_null() {
            "{}".into()
        } else {
            input.ticket.to_string()
        },
        now: input.now,
        days: local_days(&input.time_zone, input.now, input.horizon_days)?,
        time_zone: input.time_zone,
        bookings: input
            .bookings
            .into_iter()
            .map(|b| slots::Booking {
                window: types::TimeWindow {
                    start: b.start,
                    end: b.end,
                },
            })
            .collect(),
    })
}

/// The calendar days from `now` on, in `time_zone`, with their local midnights.
pub fn local_days(
    time_zone: &str,
    now: i64,
    count: u16,
) -> Result<Vec<slots::LocalDay>, InputError> {
    let tz = jiff::tz::TimeZone::get(time_zone)
        .map_err(|_| InputError(format!("unknown time zone {time_zone:?}")))?;
    let now =
        jiff::Timestamp::from_millisecond(now).map_err(|e| InputError(format!("now: {e}")))?;
    let mut date = now.to_zoned(tz.clone()).date();
    let mut days = Vec::with_capacity(usize::from(count));
    for _ in 0..count {
        let start = date
            .to_zoned(tz.clone())
            .map_err(|e| InputError(e.to_string()))?;
        let next = date.tomorrow().map_err(|e| InputError(e.to_string()))?;
        let end = next
            .to_zoned(tz.clone())
            .map_err(|e| InputError(e.to_string()))?;
        days.push(slots::LocalDay {
            date: date.to_string(),
            weekday: date.weekday().to_monday_one_offset() as u8,
            midnight: start.timestamp().as_millisecond(),
            length_minutes: ((end.timestamp().as_millisecond()
                - start.timestamp().as_millisecond())
                / 60_000) as u32,
        });
        date = next;
    }
    Ok(days)
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

#[cfg(test)]
mod tests {
    use super::local_days;

    #[test]
    fn days_follow_the_time_zone_across_a_clock_change() {
        // 2026-10-24 12:00 UTC; Berlin leaves summer time on 2026-10-25.
        let days = local_days("Europe/Berlin", 1_792_843_200_000, 3).unwrap();
        assert_eq!(days[0].date, "2026-10-24");
        assert_eq!(days[0].weekday, 6);
        assert_eq!(days[0].length_minutes, 1440);
        assert_eq!(
            days[1].length_minutes, 1500,
            "the day the clocks go back has 25 hours"
        );
        assert_eq!(days[1].midnight - days[0].midnight, 1440 * 60_000);
        assert!(local_days("Nowhere/Else", 0, 1).is_err());
    }
}
