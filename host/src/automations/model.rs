//! Automated actions as the API shows and takes them: a trigger, conditions and ordered steps,
//! and the tenant's reusable message templates.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use sqlx::FromRow;
use utoipa::ToSchema;

use crate::db;
use crate::error::{Error, Result};
use crate::tickets::Status;

/// What an action watches. Appointments and contacts arrive with booking and the login portal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Watched {
    Ticket,
}

/// When an action runs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Trigger {
    /// A ticket was created.
    Created,
    /// A ticket moved to another step; `from` and `to` narrow it to given steps.
    StatusChanged {
        #[serde(default)]
        from: Option<Status>,
        #[serde(default)]
        to: Option<Status>,
    },
    /// One of the ticket's fields changed: `title`, `description`, `ticket_type`, `priority`,
    /// `contact`, `address`, `custom_fields` (any of them), `technician_id` or `appointment`
    /// (made, moved or cancelled).
    FieldChanged {
        #[schema(
            pattern = "^(title|description|ticket_type|priority|contact|address|custom_fields|technician_id|appointment)$"
        )]
        field: String,
    },
    /// The end user rated the visit.
    FeedbackGiven,
    /// A time trigger: `minutes` before the ticket's appointment starts (a reminder). An
    /// appointment made or moved later than that runs it at once; each appointment time runs it
    /// once.
    BeforeAppointment {
        #[schema(minimum = 1, maximum = 43200)]
        minutes: u32,
    },
}

/// How the conditions combine.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Combine {
    /// Every condition holds.
    #[default]
    AllOf,
    /// At least one holds.
    AnyOf,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Operator {
    Equals,
    NotEquals,
    /// `value` is a list that holds the field's value.
    In,
    NotIn,
    /// The field's text contains `value`, ignoring case.
    Contains,
    IsSet,
    IsNotSet,
    GreaterThan,
    LessThan,
}

/// One test on the ticket. `field` is `project_id`, `ticket_type`, `priority`, `status`,
/// `title`, `language` (the affected person's) or `custom_fields.<key>`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Condition {
    pub field: String,
    pub operator: Operator,
    #[serde(default)]
    #[schema(value_type = Value)]
    pub value: Value,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Conditions {
    #[serde(default, rename = "match")]
    pub combine: Combine,
    #[serde(default)]
    pub rules: Vec<Condition>,
}

/// Who a message goes to: `affected_person`, `technician`, or a literal email address or E.164
/// mobile number.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "String", into = "String")]
pub enum Recipient {
    /// The person the visit is for: their email and mobile.
    AffectedPerson,
    /// The ticket's technician, when one is assigned.
    Technician,
    /// A fixed address or number.
    Address(String),
}

impl From<String> for Recipient {
    fn from(raw: String) -> Self {
        match raw.as_str() {
            "affected_person" => Self::AffectedPerson,
            "technician" => Self::Technician,
            _ => Self::Address(raw),
        }
    }
}

impl From<Recipient> for String {
    fn from(recipient: Recipient) -> Self {
        match recipient {
            Recipient::AffectedPerson => "affected_person".into(),
            Recipient::Technician => "technician".into(),
            Recipient::Address(address) => address,
        }
    }
}

/// Which portal links a message carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Links {
    #[default]
    Tracking,
    TrackingAndBooking,
}

/// The message of a notification: inline, or a reusable template by name (chosen in the
/// recipient's language, the tenant's as fallback).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MessageSpec {
    /// A reusable template's name; when given, the inline parts must be absent.
    #[serde(default)]
    pub template: Option<String>,
    #[serde(default)]
    pub subject: Option<String>,
    /// The HTML part (autoescaped).
    #[serde(default)]
    pub html: Option<String>,
    /// The plain-text part; derived from the HTML when absent.
    #[serde(default)]
    pub text: Option<String>,
}

/// Local times at which a non-urgent message waits, in the recipient's time zone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct QuietHours {
    /// Minutes after local midnight when quiet begins (such as 1260 for 21:00).
    #[schema(maximum = 1439)]
    pub start_minute: u16,
    /// Minutes after local midnight when it ends (such as 480 for 08:00); not the start.
    #[schema(maximum = 1439)]
    pub end_minute: u16,
}

/// One step of an action, run in order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
#[schema(as = ActionStep)]
pub enum Step {
    /// Sends a message through one of the tenant's notification channel installs.
    Notify {
        /// The channel install (email, SMS, webhook…).
        channel_install_id: String,
        /// Used when the primary channel fails permanently (SMS → email).
        #[serde(default)]
        fallback_install_id: Option<String>,
        /// `affected_person`, `technician`, email addresses or E.164 mobile numbers.
        #[schema(value_type = Vec<String>)]
        to: Vec<Recipient>,
        message: MessageSpec,
        #[serde(default)]
        links: Links,
        /// Links with 128-bit tokens (22 characters) instead of 256-bit ones, so that a link on a
        /// short portal domain fits an SMS.
        #[serde(default)]
        short_links: bool,
        #[serde(default)]
        quiet_hours: Option<QuietHours>,
    },
    /// Posts information to the ticket's tracking page ("in-portal info"); it appears live on an
    /// open page. `text` is a template of its own, like a message's text part.
    PortalNotice { text: String },
}

/// An automated action as the API shows it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Action {
    pub id: String,
    pub name: String,
    pub description: String,
    pub active: bool,
    pub object: Watched,
    pub trigger: Trigger,
    pub conditions: Conditions,
    pub steps: Vec<Step>,
    #[schema(value_type = String, format = DateTime)]
    pub created_at: jiff::Timestamp,
    #[schema(value_type = String, format = DateTime)]
    pub updated_at: jiff::Timestamp,
}

impl Action {
    /// What the audit log keeps of it.
    pub fn summary(&self) -> Value {
        serde_json::json!({
            "name": self.name,
            "active": self.active,
            "trigger": self.trigger,
            "steps": self.steps.len(),
        })
    }
}

#[derive(FromRow)]
pub(super) struct ActionRow {
    pub id: String,
    pub name: String,
    pub description: String,
    pub active: i64,
    pub object: String,
    pub trigger: String,
    pub conditions: String,
    pub steps: String,
    pub created_at: i64,
    pub updated_at: i64,
}

impl TryFrom<ActionRow> for Action {
    type Error = Error;

    fn try_from(row: ActionRow) -> Result<Self> {
        let stored = |what: &str, e: serde_json::Error| {
            Error::Internal(anyhow::anyhow!("stored action {} {what}: {e}", row.id))
        };
        Ok(Self {
            object: serde_json::from_value(Value::String(row.object.clone()))
                .map_err(|e| stored("object", e))?,
            trigger: serde_json::from_str(&row.trigger).map_err(|e| stored("trigger", e))?,
            conditions: serde_json::from_str(&row.conditions)
                .map_err(|e| stored("conditions", e))?,
            steps: serde_json::from_str(&row.steps).map_err(|e| stored("steps", e))?,
            id: row.id,
            name: row.name,
            description: row.description,
            active: row.active != 0,
            created_at: db::timestamp(row.created_at),
            updated_at: db::timestamp(row.updated_at),
        })
    }
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewAction {
    #[schema(min_length = 1, max_length = 200, pattern = "\\S")]
    pub name: String,
    #[serde(default)]
    pub description: String,
    #[serde(default = "yes")]
    pub active: bool,
    pub object: Watched,
    pub trigger: Trigger,
    #[serde(default)]
    pub conditions: Conditions,
    #[schema(min_items = 1, max_items = 20)]
    pub steps: Vec<Step>,
}

fn yes() -> bool {
    true
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ActionChanges {
    #[schema(min_length = 1, max_length = 200, pattern = "\\S")]
    pub name: Option<String>,
    pub description: Option<String>,
    pub active: Option<bool>,
    pub trigger: Option<Trigger>,
    pub conditions: Option<Conditions>,
    #[schema(min_items = 1, max_items = 20)]
    pub steps: Option<Vec<Step>>,
}

/// A reusable message in one language.
#[derive(Debug, Clone, Serialize, FromRow, ToSchema)]
pub struct MessageTemplate {
    pub id: String,
    pub name: String,
    /// `en`, `de`, `es`…
    pub language: String,
    pub subject: String,
    pub html: String,
    /// Derived from the HTML when absent.
    pub text: Option<String>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewMessageTemplate {
    #[schema(min_length = 1, max_length = 200, pattern = "\\S")]
    pub name: String,
    /// A language tag such as `en`, `de` or `pt-BR`.
    #[schema(
        min_length = 2,
        max_length = 8,
        pattern = "^[A-Za-z0-9]+(-[A-Za-z0-9]+)*$"
    )]
    pub language: String,
    #[schema(pattern = "\\S")]
    pub subject: String,
    pub html: String,
    #[serde(default)]
    pub text: Option<String>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MessageTemplateChanges {
    pub subject: Option<String>,
    pub html: Option<String>,
    #[serde(default, deserialize_with = "crate::types::double_option")]
    pub text: Option<Option<String>>,
}

/// A message rendered for one recipient.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Rendered {
    pub subject: String,
    pub text: String,
    pub html: Option<String>,
}

/// What a step would send to one recipient, or post to the tracking page, without doing it.
#[derive(Debug, Serialize, ToSchema)]
pub struct PreviewMessage {
    pub step: usize,
    /// The channel install, or `portal` for a notice on the tracking page.
    pub channel: String,
    /// The recipient's address (`portal` for a notice).
    pub to: String,
    pub message: Rendered,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = ActionPreviewRequest)]
pub struct PreviewRequest {
    /// The ticket to render the messages for.
    pub ticket_id: String,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TestSendRequest {
    pub ticket_id: String,
    /// The email address or mobile number (E.164) that receives every step's message instead.
    #[schema(value_type = TestRecipient)]
    pub to: String,
}

/// An email address, or a mobile number in E.164 form, as the API documents a test recipient.
pub struct TestRecipient;

impl utoipa::PartialSchema for TestRecipient {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::{
            KnownFormat, ObjectBuilder, OneOfBuilder, SchemaFormat, Type,
        };
        OneOfBuilder::new()
            .item(
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .format(Some(SchemaFormat::KnownFormat(KnownFormat::Email))),
            )
            .item(
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .pattern(Some("^\\+[1-9][0-9]{7,14}$"))
                    .description(Some(
                        "A mobile number in E.164 form, valid in its country's numbering plan.",
                    )),
            )
            .into()
    }
}

impl utoipa::ToSchema for TestRecipient {
    fn name() -> std::borrow::Cow<'static, str> {
        std::borrow::Cow::Borrowed("TestRecipient")
    }
}
