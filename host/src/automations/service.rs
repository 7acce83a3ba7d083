//! Automated-action and message-template operations, and the planning of deliveries: which
//! actions an event triggers, whether their conditions hold, and the rendered message each step
//! sends to each recipient. Everything a saved action names is checked when it is saved.

use serde_json::Value;
use sqlx::AnyConnection;

use super::context::{CONDITION_FIELDS, TicketFacts};
use super::model::{
    Action, ActionChanges, Combine, Condition, Conditions, Links, MessageSpec, MessageTemplate,
    MessageTemplateChanges, NewAction, NewMessageTemplate, Operator, PreviewMessage, QuietHours,
    Recipient, Rendered, Step, Trigger,
};
use super::store;
use super::templates::{self, Parts};
use crate::AppState;
use crate::audit::{self, Change};
use crate::db::{self, Pool};
use crate::deliveries::{self, NewDelivery};
use crate::error::{Error, Result};
use crate::events::{Event, Tx};
use crate::tickets::fields;
use crate::tickets::service::check_name;
use crate::types::{Caller, Email, Mobile, TenantId};

const MAX_STEPS: usize = 20;
const MAX_RECIPIENTS: usize = 20;
const MAX_CONDITIONS: usize = 50;

// ---- checks -------------------------------------------------------------------------------

fn check_language(language: &str) -> Result<()> {
    let ok = (2..=8).contains(&language.len())
        && language
            .split('-')
            .all(|part| !part.is_empty() && part.bytes().all(|b| b.is_ascii_alphanumeric()));
    if ok {
        Ok(())
    } else {
        Err(Error::invalid(
            "invalid_language",
            "a language is a tag such as en, de or pt-BR",
        ))
    }
}

async fn custom_field_keys(pool: &Pool, tenant: &TenantId) -> Result<Vec<String>> {
    Ok(fields::definitions(pool, tenant)
        .await?
        .into_iter()
        .map(|f| f.key)
        .collect())
}

async fn check_channel(pool: &Pool, tenant: &TenantId, install: &str) -> Result<()> {
    match crate::plugins::store::kind_of(pool, tenant, install).await? {
        Some(kind) if kind == "channel" => Ok(()),
        Some(_) => Err(Error::invalid(
            "not_a_channel",
            format!("install {install} is not a notification channel"),
        )),
        None => Err(Error::invalid(
            "unknown_install",
            format!("the tenant has no plugin install {install}"),
        )),
    }
}

fn check_conditions(conditions: &Conditions, custom_fields: &[String]) -> Result<()> {
    if conditions.rules.len() > MAX_CONDITIONS {
        return Err(Error::invalid(
            "invalid_conditions",
            format!("an action has at most {MAX_CONDITIONS} conditions"),
        ));
    }
    for condition in &conditions.rules {
        let field = condition.field.as_str();
        let known = CONDITION_FIELDS.contains(&field)
            || field
                .strip_prefix("custom_fields.")
                .is_some_and(|key| custom_fields.iter().any(|k| k == key));
        if !known {
            return Err(Error::invalid(
                "invalid_conditions",
                format!(
                    "{field:?} is not a field conditions can test; they test {} or custom_fields.<key>",
                    CONDITION_FIELDS.join(", ")
                ),
            ));
        }
        let value = &condition.value;
        let fits = match condition.operator {
            Operator::In | Operator::NotIn => value.is_array(),
            Operator::IsSet | Operator::IsNotSet => value.is_null(),
            Operator::GreaterThan | Operator::LessThan => value.is_number(),
            Operator::Contains => value.is_string(),
            Operator::Equals | Operator::NotEquals => !value.is_null(),
        };
        if !fits {
            return Err(Error::invalid(
                "invalid_conditions",
                format!(
                    "the condition on {field:?} needs a value that fits its operator: a list for in and not_in, none for is_set and is_not_set, a number for greater_than and less_than, text for contains"
                ),
            ));
        }
    }
    Ok(())
}

/// The fields a `field_changed` trigger may name.
const TRIGGER_FIELDS: &[&str] = &[
    "title",
    "description",
    "ticket_type",
    "priority",
    "contact",
    "address",
    "custom_fields",
    "technician_id",
    "appointment",
];

/// The trigger field a changed ticket column belongs to.
fn trigger_field(column: &str) -> &str {
    match column {
        "appointment_start" | "appointment_end" => "appointment",
        c if c.starts_with("contact_") => "contact",
        c => c,
    }
}

fn check_trigger(trigger: &Trigger) -> Result<()> {
    if let Trigger::FieldChanged { field } = trigger
        && !TRIGGER_FIELDS.contains(&field.as_str())
    {
        return Err(Error::invalid(
            "invalid_trigger",
            format!(
                "a field_changed trigger names one of {}",
                TRIGGER_FIELDS.join(", ")
            ),
        ));
    }
    if let Trigger::BeforeAppointment { minutes } = trigger
        && !(1..=60 * 24 * 30).contains(minutes)
    {
        return Err(Error::invalid(
            "invalid_trigger",
            "a before_appointment trigger is 1 minute to 30 days ahead",
        ));
    }
    Ok(())
}

async fn check_message(
    conn: &mut AnyConnection,
    tenant: &TenantId,
    message: &MessageSpec,
    custom_fields: &[String],
) -> Result<()> {
    match (&message.template, &message.subject, &message.html) {
        (Some(name), None, None) if message.text.is_none() => {
            if store::template_variants(conn, tenant, name)
                .await?
                .is_empty()
            {
                return Err(Error::invalid(
                    "unknown_template",
                    format!("the tenant has no message template {name:?}"),
                ));
            }
            Ok(())
        }
        (None, Some(subject), Some(html)) => templates::check(
            Parts {
                subject,
                html,
                text: message.text.as_deref(),
            },
            custom_fields,
        ),
        _ => Err(Error::invalid(
            "invalid_message",
            "a message names a template, or gives a subject and an html part (and optionally text)",
        )),
    }
}

fn check_quiet_hours(quiet: &QuietHours) -> Result<()> {
    if quiet.start_minute >= 1440
        || quiet.end_minute >= 1440
        || quiet.start_minute == quiet.end_minute
    {
        return Err(Error::invalid(
            "invalid_quiet_hours",
            "quiet hours start and end at different minutes of the day (0 to 1439)",
        ));
    }
    Ok(())
}

async fn check_action(state: &AppState, tenant: &TenantId, action: &Action) -> Result<()> {
    let pool = &state.db.pool;
    check_trigger(&action.trigger)?;
    let custom_fields = custom_field_keys(pool, tenant).await?;
    check_conditions(&action.conditions, &custom_fields)?;
    if action.steps.is_empty() || action.steps.len() > MAX_STEPS {
        return Err(Error::invalid(
            "invalid_steps",
            format!("an action has 1 to {MAX_STEPS} steps"),
        ));
    }
    let mut conn = pool.acquire().await?;
    for step in &action.steps {
        let (channel_install_id, fallback_install_id, to, message, quiet_hours) = match step {
            Step::Notify {
                channel_install_id,
                fallback_install_id,
                to,
                message,
                quiet_hours,
                ..
            } => (
                channel_install_id,
                fallback_install_id,
                to,
                message,
                quiet_hours,
            ),
            Step::PortalNotice { text } => {
                templates::check_text(text, &custom_fields)?;
                continue;
            }
        };
        check_channel(pool, tenant, channel_install_id).await?;
        if let Some(fallback) = fallback_install_id {
            check_channel(pool, tenant, fallback).await?;
        }
        if to.is_empty() || to.len() > MAX_RECIPIENTS {
            return Err(Error::invalid(
                "invalid_recipients",
                format!("a step sends to 1 to {MAX_RECIPIENTS} recipients"),
            ));
        }
        for recipient in to {
            if let Recipient::Address(address) = recipient
                && Email::parse(address).is_err()
                && Mobile::parse(address).is_err()
            {
                return Err(Error::invalid(
                    "invalid_recipients",
                    format!(
                        "{address:?} is neither affected_person, technician, an email address nor a mobile number in E.164 form"
                    ),
                ));
            }
        }
        check_message(&mut conn, tenant, message, &custom_fields).await?;
        if let Some(quiet) = quiet_hours {
            check_quiet_hours(quiet)?;
        }
    }
    Ok(())
}

// ---- actions ------------------------------------------------------------------------------

async fn finish(mut tx: Tx, actor: &str, change: Change<'_>, event: Event) -> Result<()> {
    let (tenant, target) = (change.tenant, change.target.to_string());
    audit::record(&mut tx, actor, change).await?;
    tx.emit(tenant, &target, actor, event).await?;
    tx.commit().await
}

pub async fn create(
    state: &AppState,
    caller: &Caller,
    tenant: &TenantId,
    input: NewAction,
) -> Result<Action> {
    let now = jiff::Timestamp::now();
    let action = Action {
        id: db::new_id(),
        name: check_name(&input.name)?,
        description: input.description,
        active: input.active,
        object: input.object,
        trigger: input.trigger,
        conditions: input.conditions,
        steps: input.steps,
        created_at: now,
        updated_at: now,
    };
    check_action(state, tenant, &action).await?;
    let tx_change = Change {
        tenant: Some(tenant),
        action: "automated_action.create",
        target: &action.id,
        before: None,
        after: Some(action.summary()),
    };
    let mut tx = state.events.begin().await?;
    store::insert_action(&mut tx, tenant, &action).await?;
    finish(
        tx,
        &caller.actor(),
        tx_change,
        Event::AutomatedActionChanged,
    )
    .await?;
    Ok(action)
}

/// The action with `changes` made.
fn changed(mut action: Action, changes: &ActionChanges) -> Result<Action> {
    if let Some(name) = &changes.name {
        action.name = check_name(name)?;
    }
    if let Some(description) = &changes.description {
        action.description = description.clone();
    }
    if let Some(active) = changes.active {
        action.active = active;
    }
    if let Some(trigger) = &changes.trigger {
        action.trigger = trigger.clone();
    }
    if let Some(conditions) = &changes.conditions {
        action.conditions = conditions.clone();
    }
    if let Some(steps) = &changes.steps {
        action.steps = steps.clone();
    }
    action.updated_at = jiff::Timestamp::now();
    Ok(action)
}

pub async fn update(
    state: &AppState,
    caller: &Caller,
    tenant: &TenantId,
    id: &str,
    changes: ActionChanges,
) -> Result<Action> {
    // The checks read other tables, so they come before the write transaction, which on SQLite
    // holds the only write lock.
    let current = store::find_action(&state.db.pool, tenant, id).await?;
    check_action(state, tenant, &changed(current, &changes)?).await?;
    let mut tx = state.events.begin().await?;
    let for_update = tx.for_update();
    let before = store::lock_action(&mut tx, tenant, id, for_update).await?;
    let action = changed(before.clone(), &changes)?;
    store::update_action(&mut tx, tenant, &action).await?;
    let change = Change {
        tenant: Some(tenant),
        action: "automated_action.update",
        target: id,
        before: Some(before.summary()),
        after: Some(action.summary()),
    };
    finish(tx, &caller.actor(), change, Event::AutomatedActionChanged).await?;
    Ok(action)
}

pub async fn delete(state: &AppState, caller: &Caller, tenant: &TenantId, id: &str) -> Result<()> {
    let mut tx = state.events.begin().await?;
    let for_update = tx.for_update();
    let before = store::lock_action(&mut tx, tenant, id, for_update).await?;
    store::delete_action(&mut tx, tenant, id).await?;
    let change = Change {
        tenant: Some(tenant),
        action: "automated_action.delete",
        target: id,
        before: Some(before.summary()),
        after: None,
    };
    finish(tx, &caller.actor(), change, Event::AutomatedActionChanged).await
}

// ---- message templates --------------------------------------------------------------------

fn template_summary(t: &MessageTemplate) -> Value {
    serde_json::json!({"name": t.name, "language": t.language, "subject": t.subject})
}

pub async fn create_template(
    state: &AppState,
    caller: &Caller,
    tenant: &TenantId,
    input: NewMessageTemplate,
) -> Result<MessageTemplate> {
    check_language(&input.language)?;
    let template = MessageTemplate {
        id: db::new_id(),
        name: check_name(&input.name)?,
        language: input.language.to_ascii_lowercase(),
        subject: input.subject,
        html: input.html,
        text: input.text,
    };
    let custom_fields = custom_field_keys(&state.db.pool, tenant).await?;
    templates::check(parts_of(&template), &custom_fields)?;
    let mut tx = state.events.begin().await?;
    store::insert_template(&mut tx, tenant, &template, db::now_ms()).await?;
    let change = Change {
        tenant: Some(tenant),
        action: "message_template.create",
        target: &template.id,
        before: None,
        after: Some(template_summary(&template)),
    };
    finish(tx, &caller.actor(), change, Event::MessageTemplateChanged).await?;
    Ok(template)
}

pub async fn update_template(
    state: &AppState,
    caller: &Caller,
    tenant: &TenantId,
    id: &str,
    changes: MessageTemplateChanges,
) -> Result<MessageTemplate> {
    let custom_fields = custom_field_keys(&state.db.pool, tenant).await?;
    let mut tx = state.events.begin().await?;
    let for_update = tx.for_update();
    let before = store::lock_template(&mut tx, tenant, id, for_update).await?;
    let mut template = before.clone();
    if let Some(subject) = changes.subject {
        template.subject = subject;
    }
    if let Some(html) = changes.html {
        template.html = html;
    }
    if let Some(text) = changes.text {
        template.text = text;
    }
    templates::check(parts_of(&template), &custom_fields)?;
    store::update_template(&mut tx, tenant, &template, db::now_ms()).await?;
    let change = Change {
        tenant: Some(tenant),
        action: "message_template.update",
        target: id,
        before: Some(template_summary(&before)),
        after: Some(template_summary(&template)),
    };
    finish(tx, &caller.actor(), change, Event::MessageTemplateChanged).await?;
    Ok(template)
}

pub async fn delete_template(
    state: &AppState,
    caller: &Caller,
    tenant: &TenantId,
    id: &str,
) -> Result<()> {
    let mut tx = state.events.begin().await?;
    let for_update = tx.for_update();
    let before = store::lock_template(&mut tx, tenant, id, for_update).await?;
    let variants = store::template_variants(&mut tx, tenant, &before.name).await?;
    if variants.len() == 1 {
        // The last language of a template that an action sends would leave it nothing to send.
        let users: Vec<String> = store::active_actions(&mut tx, tenant)
            .await?
            .into_iter()
            .filter(|a| {
                a.steps.iter().any(|step| {
                    matches!(step, Step::Notify { message, .. }
                        if message.template.as_deref() == Some(before.name.as_str()))
                })
            })
            .map(|a| a.name)
            .collect();
        if !users.is_empty() {
            return Err(Error::conflict(
                "template_in_use",
                format!(
                    "the template {:?} is used by the active actions {}; change them first",
                    before.name,
                    users.join(", ")
                ),
            ));
        }
    }
    store::delete_template(&mut tx, tenant, id).await?;
    let change = Change {
        tenant: Some(tenant),
        action: "message_template.delete",
        target: id,
        before: Some(template_summary(&before)),
        after: None,
    };
    finish(tx, &caller.actor(), change, Event::MessageTemplateChanged).await
}

fn parts_of(template: &MessageTemplate) -> Parts<'_> {
    Parts {
        subject: &template.subject,
        html: &template.html,
        text: template.text.as_deref(),
    }
}

// ---- planning -----------------------------------------------------------------------------

/// The field a booking change changes.
static APPOINTMENT: std::sync::LazyLock<String> =
    std::sync::LazyLock::new(|| "appointment".to_string());

/// What happened to a ticket, as triggers see it.
pub enum Happened<'a> {
    Created,
    StatusChanged { from: &'a str, to: &'a str },
    FieldsChanged(&'a [String]),
    FeedbackGiven,
}

impl<'a> Happened<'a> {
    pub fn of(event: &'a Event) -> Option<Self> {
        Some(match event {
            Event::TicketCreated { .. } => Self::Created,
            Event::TicketStatusChanged { from, to } => Self::StatusChanged { from, to },
            Event::TicketChanged { fields } => Self::FieldsChanged(fields),
            Event::AppointmentBooked { .. } | Event::AppointmentCancelled { .. } => {
                Self::FieldsChanged(std::slice::from_ref(&*APPOINTMENT))
            }
            Event::FeedbackGiven { .. } => Self::FeedbackGiven,
            _ => return None,
        })
    }

    fn fires(&self, trigger: &Trigger) -> bool {
        match (trigger, self) {
            (Trigger::Created, Self::Created) => true,
            (Trigger::StatusChanged { from, to }, Self::StatusChanged { from: f, to: t }) => {
                from.is_none_or(|s| s.as_str() == *f) && to.is_none_or(|s| s.as_str() == *t)
            }
            (Trigger::FieldChanged { field }, Self::FieldsChanged(changed)) => {
                changed.iter().any(|c| trigger_field(c) == field)
            }
            (Trigger::FeedbackGiven, Self::FeedbackGiven) => true,
            // Time triggers are run by the clock, not by events.
            _ => false,
        }
    }
}

fn holds(condition: &Condition, facts: &TicketFacts) -> bool {
    let actual = facts.field(&condition.field);
    let expected = &condition.value;
    let same = |a: &Value, b: &Value| match (a, b) {
        (Value::String(x), Value::String(y)) => x.eq_ignore_ascii_case(y),
        _ => a == b,
    };
    match condition.operator {
        Operator::IsSet => actual.is_some(),
        Operator::IsNotSet => actual.is_none(),
        Operator::Equals => actual.is_some_and(|a| same(&a, expected)),
        Operator::NotEquals => !actual.is_some_and(|a| same(&a, expected)),
        Operator::In => actual.is_some_and(|a| {
            expected
                .as_array()
                .is_some_and(|list| list.iter().any(|e| same(&a, e)))
        }),
        Operator::NotIn => !actual.is_some_and(|a| {
            expected
                .as_array()
                .is_some_and(|list| list.iter().any(|e| same(&a, e)))
        }),
        Operator::Contains => actual.is_some_and(|a| {
            let haystack = match &a {
                Value::String(s) => s.to_lowercase(),
                other => other.to_string().to_lowercase(),
            };
            expected
                .as_str()
                .is_some_and(|needle| haystack.contains(&needle.to_lowercase()))
        }),
        Operator::GreaterThan | Operator::LessThan => {
            let (Some(a), Some(b)) = (actual.as_ref().and_then(Value::as_f64), expected.as_f64())
            else {
                return false;
            };
            if condition.operator == Operator::GreaterThan {
                a > b
            } else {
                a < b
            }
        }
    }
}

fn conditions_hold(conditions: &Conditions, facts: &TicketFacts) -> bool {
    let mut results = conditions.rules.iter().map(|c| holds(c, facts));
    match conditions.combine {
        Combine::AllOf => results.all(|r| r),
        Combine::AnyOf => conditions.rules.is_empty() || results.any(|r| r),
    }
}

/// One step's message for one recipient, before it is queued or shown.
pub struct Planned {
    pub step_index: usize,
    pub install_id: String,
    pub fallback_install_id: Option<String>,
    pub recipient: deliveries::Recipient,
    pub message: Rendered,
    pub links: Vec<(String, String)>,
    pub short_links: bool,
    pub not_before: i64,
}

impl Planned {
    /// The outbox row for this message, caused by `event_seq` (none for a test send).
    fn into_delivery(
        self,
        action_id: &str,
        event_seq: Option<i64>,
        ticket_id: &str,
    ) -> NewDelivery {
        NewDelivery {
            action_id: Some(action_id.to_string()),
            event_seq,
            step_index: self.step_index as i64,
            ticket_id: Some(ticket_id.to_string()),
            install_id: self.install_id,
            fallback_install_id: self.fallback_install_id,
            recipient: self.recipient,
            subject: self.message.subject,
            text: self.message.text,
            html: self.message.html,
            links: self.links,
            short_links: self.short_links,
            not_before: self.not_before,
        }
    }
}

/// The recipients a step names, resolved on the ticket; a technician who is not assigned and
/// duplicates are left out.
fn recipients(to: &[Recipient], facts: &TicketFacts) -> Vec<deliveries::Recipient> {
    let language = facts.language().to_string();
    let mut resolved: Vec<deliveries::Recipient> = Vec::new();
    for recipient in to {
        let next = match recipient {
            Recipient::AffectedPerson => {
                let contact = &facts.ticket.contact;
                Some(deliveries::Recipient {
                    name: Some(format!("{} {}", contact.first_name, contact.last_name)),
                    email: Some(contact.email.clone()),
                    phone: contact.mobile.clone(),
                    language: language.clone(),
                })
            }
            Recipient::Technician => {
                facts
                    .technician
                    .as_ref()
                    .map(|(name, email)| deliveries::Recipient {
                        name: Some(name.clone()),
                        email: Some(email.clone()),
                        phone: None,
                        language: language.clone(),
                    })
            }
            Recipient::Address(address) => Some(deliveries::Recipient {
                name: None,
                email: Email::parse(address).ok().map(|e| e.to_string()),
                phone: Mobile::parse(address).ok().map(|m| m.to_string()),
                language: language.clone(),
            }),
        };
        if let Some(next) = next
            && !resolved.iter().any(|r| r.address() == next.address())
        {
            resolved.push(next);
        }
    }
    resolved
}

/// The template parts for a language: the variant in that language, else the tenant's, else
/// any.
fn pick<'t>(
    variants: &'t [MessageTemplate],
    language: &str,
    tenant_language: &str,
) -> Option<&'t MessageTemplate> {
    variants
        .iter()
        .find(|t| t.language == language)
        .or_else(|| variants.iter().find(|t| t.language == tenant_language))
        .or_else(|| variants.first())
}

/// When quiet hours that hold at `now` end, in the tenant's time zone (DST included).
fn quiet_until(quiet: &QuietHours, time_zone: &str, now: jiff::Timestamp) -> Option<i64> {
    let zone = jiff::tz::TimeZone::get(time_zone).ok()?;
    let local = now.to_zoned(zone.clone());
    let minute = local.hour() as u16 * 60 + local.minute() as u16;
    let (start, end) = (quiet.start_minute, quiet.end_minute);
    let quiet_now = if start < end {
        (start..end).contains(&minute)
    } else {
        minute >= start || minute < end
    };
    if !quiet_now {
        return None;
    }
    let mut date = local.date();
    if minute >= end {
        date = date.tomorrow().ok()?;
    }
    let end_time = jiff::civil::Time::new((end / 60) as i8, (end % 60) as i8, 0, 0).ok()?;
    let ends = date.to_datetime(end_time).to_zoned(zone).ok()?;
    Some(ends.timestamp().as_millisecond())
}

/// The messages an action sends for a ticket. `links` maps a link name to what stands for it
/// in the message (a marker the worker replaces, or a preview text); `to` replaces every
/// step's recipients (a test send).
pub async fn plan(
    conn: &mut AnyConnection,
    tenant: &TenantId,
    action: &Action,
    facts: &TicketFacts,
    link_text: &(dyn Fn(&str) -> String + Sync),
    to: Option<&Recipient>,
) -> Result<Vec<Planned>> {
    let mut planned = Vec::new();
    let now = jiff::Timestamp::now();
    for (index, step) in action.steps.iter().enumerate() {
        let Step::Notify {
            channel_install_id,
            fallback_install_id,
            to: step_to,
            message,
            links,
            short_links,
            quiet_hours,
        } = step
        else {
            continue;
        };
        let names: &[&str] = match links {
            Links::Tracking => &["tracking"],
            Links::TrackingAndBooking => &["tracking", "booking"],
        };
        let variants = match &message.template {
            Some(name) => store::template_variants(conn, tenant, name).await?,
            None => Vec::new(),
        };
        let overridden = to.map(std::slice::from_ref);
        for recipient in recipients(overridden.unwrap_or(step_to), facts) {
            let links: Vec<(String, String)> = names
                .iter()
                .map(|n| (n.to_string(), link_text(n)))
                .collect();
            let link_refs: Vec<(&str, String)> =
                links.iter().map(|(n, m)| (n.as_str(), m.clone())).collect();
            let context = facts.context(&link_refs);
            let parts = match &message.template {
                Some(name) => {
                    let Some(chosen) = pick(&variants, &recipient.language, facts.language())
                    else {
                        return Err(Error::invalid(
                            "unknown_template",
                            format!("the message template {name:?} no longer exists"),
                        ));
                    };
                    parts_of(chosen)
                }
                None => Parts {
                    subject: message.subject.as_deref().unwrap_or_default(),
                    html: message.html.as_deref().unwrap_or_default(),
                    text: message.text.as_deref(),
                },
            };
            let rendered = templates::render(parts, &context)?;
            let not_before = quiet_hours
                .as_ref()
                .and_then(|q| quiet_until(q, &facts.tenant.time_zone, now))
                .unwrap_or(0);
            planned.push(Planned {
                short_links: *short_links,
                step_index: index,
                install_id: channel_install_id.clone(),
                fallback_install_id: fallback_install_id.clone(),
                recipient,
                message: rendered,
                links,
                not_before,
            });
        }
    }
    Ok(planned)
}

/// The tracking-page notices an action posts for a ticket, rendered, by step.
fn notices(action: &Action, facts: &TicketFacts) -> Result<Vec<(usize, String)>> {
    let context = facts.context(&[]);
    action
        .steps
        .iter()
        .enumerate()
        .filter_map(|(index, step)| match step {
            Step::PortalNotice { text } => Some((index, text)),
            Step::Notify { .. } => None,
        })
        .map(|(index, text)| Ok((index, templates::render_text(text, &context)?)))
        .collect()
}

/// A marker for a link in a stored message: letters and digits only, so escaping leaves it
/// alone, and random, so no message text can contain it by chance.
fn marker(name: &str) -> String {
    format!("PorticoLink{name}{}", uuid::Uuid::new_v4().simple())
}

/// Queues the deliveries of every active action this event triggers, in the consumer's
/// transaction.
pub async fn queue_for_event(
    tx: &mut Tx,
    tenant: &TenantId,
    ticket_id: &str,
    event_seq: i64,
    happened: &Happened<'_>,
) -> Result<usize> {
    let actions: Vec<Action> = store::active_actions(tx, tenant)
        .await?
        .into_iter()
        .filter(|a| happened.fires(&a.trigger))
        .collect();
    if actions.is_empty() {
        return Ok(0);
    }
    let facts = match TicketFacts::load(tx, tenant, ticket_id).await {
        Ok(facts) => facts,
        // Deleted since: nothing to tell anyone.
        Err(Error::NotFound(_)) => return Ok(0),
        Err(e) => return Err(e),
    };
    let mut queued = 0;
    for action in actions
        .iter()
        .filter(|a| conditions_hold(&a.conditions, &facts))
    {
        queued += run_action(tx, tenant, action, &facts, Some(event_seq)).await?;
    }
    Ok(queued)
}

/// Posts an action's notices and queues its deliveries for one ticket; returns how many
/// deliveries it queued.
async fn run_action(
    tx: &mut Tx,
    tenant: &TenantId,
    action: &Action,
    facts: &TicketFacts,
    event_seq: Option<i64>,
) -> Result<usize> {
    let ticket_id = facts.ticket.id.as_str();
    let rendered = match plan(tx, tenant, action, facts, &marker, None).await {
        Ok(planned) => notices(action, facts).map(|notices| (planned, notices)),
        Err(e) => Err(e),
    };
    let (planned, notices) = match rendered {
        Ok(rendered) => rendered,
        Err(e @ Error::Internal(_)) => return Err(e),
        Err(e) => {
            // Something the action names was removed since it was saved (a template), or this
            // ticket's values do not render: skip the action with a warning rather than hold
            // up every later event.
            tracing::warn!(action = %action.id, error = %e, "automated action cannot be rendered");
            return Ok(0);
        }
    };
    for (_, text) in notices {
        let actor = format!("automated action {:?} ({})", action.name, action.id);
        crate::tickets::service::post_notice(tx, tenant, ticket_id, &actor, text.trim()).await?;
    }
    let mut queued = 0;
    for p in planned {
        let delivery = p.into_delivery(&action.id, event_seq, ticket_id);
        if deliveries::store::enqueue(tx, tenant, &delivery)
            .await?
            .is_some()
        {
            queued += 1;
        }
    }
    Ok(queued)
}

/// Runs the time-triggered actions that are due: each active "before the appointment" action,
/// for each ticket whose appointment starts within its lead time. Each (action, ticket,
/// appointment start) runs once, whichever replica gets there first; a moved appointment is a
/// new one. Returns how many deliveries were queued.
pub async fn run_due_time_triggers(state: &AppState) -> Result<usize> {
    let pool = &state.db.pool;
    let now = db::now_ms();
    let mut queued = 0;
    for (tenant, action) in store::timed_actions(pool).await? {
        let Trigger::BeforeAppointment { minutes } = action.trigger else {
            continue;
        };
        let until = now + i64::from(minutes) * 60_000;
        for (ticket_id, start) in
            crate::tickets::store::appointments_between(pool, &tenant, now, until).await?
        {
            let occurrence = format!("appointment:{ticket_id}:{start}");
            let mut tx = state.events.begin().await?;
            if !store::claim_occurrence(&mut tx, &tenant, &action.id, &occurrence).await? {
                continue;
            }
            let facts = match TicketFacts::load(&mut tx, &tenant, &ticket_id).await {
                Ok(facts) => facts,
                Err(Error::NotFound(_)) => continue,
                Err(e) => return Err(e),
            };
            if conditions_hold(&action.conditions, &facts) {
                queued += run_action(&mut tx, &tenant, &action, &facts, None).await?;
            }
            tx.commit().await?;
        }
    }
    Ok(queued)
}

/// Runs [`run_due_time_triggers`] every `time_trigger_interval_ms` until the task is dropped.
pub async fn run_time_triggers(state: AppState) {
    let every = std::time::Duration::from_millis(state.config.time_trigger_interval_ms.max(10));
    loop {
        if let Err(e) = run_due_time_triggers(&state).await {
            tracing::error!(error = ?e, "time-triggered actions failed; retrying");
        }
        tokio::time::sleep(every).await;
    }
}

/// What an action would send for a ticket, without sending anything or issuing links.
pub async fn preview(
    state: &AppState,
    tenant: &TenantId,
    action_id: &str,
    ticket_id: &str,
) -> Result<Vec<PreviewMessage>> {
    let action = store::find_action(&state.db.pool, tenant, action_id).await?;
    let mut conn = state.db.pool.acquire().await?;
    let facts = TicketFacts::load(&mut conn, tenant, ticket_id).await?;
    let slug = facts.tenant.slug.clone();
    let base = crate::tickets::links::url(&state.config, &slug, "preview-link");
    let link_text = |name: &str| match name {
        "booking" => format!("{base}/booking"),
        _ => base.clone(),
    };
    let planned = plan(&mut conn, tenant, &action, &facts, &link_text, None).await?;
    let mut previews: Vec<PreviewMessage> = planned
        .into_iter()
        .map(|p| PreviewMessage {
            step: p.step_index,
            channel: p.install_id,
            to: p.recipient.address(),
            message: p.message,
        })
        .collect();
    for (step, text) in notices(&action, &facts)? {
        previews.push(PreviewMessage {
            step,
            channel: "portal".into(),
            to: "portal".into(),
            message: Rendered {
                subject: String::new(),
                text,
                html: None,
            },
        });
    }
    previews.sort_by_key(|p| p.step);
    Ok(previews)
}

/// Sends every step's message for a ticket to one given address now, with real links;
/// returns the queued deliveries' ids.
pub async fn test_send(
    state: &AppState,
    caller: &Caller,
    tenant: &TenantId,
    action_id: &str,
    ticket_id: &str,
    to: &str,
) -> Result<Vec<String>> {
    if Email::parse(to).is_err() && Mobile::parse(to).is_err() {
        return Err(Error::invalid(
            "invalid_recipients",
            "a test send goes to an email address or a mobile number in E.164 form",
        ));
    }
    if let Some((wait, which)) = deliveries::worker::limit_wait(state, tenant.as_str(), "").await? {
        return Err(Error::TooManyRequests {
            code: "sending_limit_reached",
            message: format!("the tenant's sending limit {which} is reached; try again later"),
            retry_after_secs: wait,
        });
    }
    let action = store::find_action(&state.db.pool, tenant, action_id).await?;
    let recipient = Recipient::Address(to.to_string());
    let mut tx = state.events.begin().await?;
    let facts = TicketFacts::load(&mut tx, tenant, ticket_id).await?;
    let planned = plan(&mut tx, tenant, &action, &facts, &marker, Some(&recipient)).await?;
    let mut ids = Vec::new();
    for p in planned {
        // A test send goes now, whatever the quiet hours.
        let delivery = Planned { not_before: 0, ..p }.into_delivery(&action.id, None, ticket_id);
        ids.extend(deliveries::store::enqueue(&mut tx, tenant, &delivery).await?);
    }
    let change = Change {
        tenant: Some(tenant),
        action: "automated_action.test_send",
        target: action_id,
        before: None,
        after: Some(serde_json::json!({"ticket_id": ticket_id, "deliveries": ids.len()})),
    };
    audit::record(&mut tx, &caller.actor(), change).await?;
    tx.commit().await?;
    Ok(ids)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(instant: &str) -> jiff::Timestamp {
        instant.parse().unwrap()
    }

    #[test]
    fn quiet_hours_end_at_local_time_across_a_clock_change() {
        let quiet = QuietHours {
            start_minute: 21 * 60,
            end_minute: 8 * 60,
        };
        // 23:30 in Berlin (+01:00); clocks go forward that night, so 08:00 is 06:00Z.
        let until = quiet_until(&quiet, "Europe/Berlin", at("2026-03-28T22:30:00Z"));
        assert_eq!(until, Some(at("2026-03-29T06:00:00Z").as_millisecond()));
        // 06:00 local: quiet until 08:00 the same day.
        let until = quiet_until(&quiet, "Europe/Berlin", at("2026-03-30T04:00:00Z"));
        assert_eq!(until, Some(at("2026-03-30T06:00:00Z").as_millisecond()));
        // Noon is not quiet.
        assert_eq!(
            quiet_until(&quiet, "Europe/Berlin", at("2026-03-28T11:00:00Z")),
            None
        );
    }

    #[test]
    fn quiet_hours_within_one_day() {
        let quiet = QuietHours {
            start_minute: 12 * 60,
            end_minute: 13 * 60,
        };
        let until = quiet_until(&quiet, "UTC", at("2026-06-01T12:30:00Z"));
        assert_eq!(until, Some(at("2026-06-01T13:00:00Z").as_millisecond()));
        assert_eq!(quiet_until(&quiet, "UTC", at("2026-06-01T13:00:00Z")), None);
    }
}
