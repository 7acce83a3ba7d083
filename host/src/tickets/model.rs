//! Tickets and projects as the back office and the tracking page see them, and the inputs that
//! create and change them.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use sqlx::FromRow;
use utoipa::ToSchema;

use super::feedback::Feedback;
use crate::db;
use crate::error::{Error, Result};

/// The steps of a service visit, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Ticket Received
    Received,
    /// Ticket Scheduling
    Scheduling,
    /// Ticket Dispatched
    Dispatched,
    /// On Route to You
    OnRoute,
    /// Arrived Onsite
    Arrived,
    /// Visit Completed
    Completed,
    /// Closed
    Closed,
}

impl Status {
    pub const ALL: [Status; 7] = [
        Self::Received,
        Self::Scheduling,
        Self::Dispatched,
        Self::OnRoute,
        Self::Arrived,
        Self::Completed,
        Self::Closed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Received => "received",
            Self::Scheduling => "scheduling",
            Self::Dispatched => "dispatched",
            Self::OnRoute => "on_route",
            Self::Arrived => "arrived",
            Self::Completed => "completed",
            Self::Closed => "closed",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == raw)
    }

    /// True while the technician is on the way or on site: the only time positions are kept.
    pub fn shows_position(self) -> bool {
        (Self::OnRoute..=Self::Arrived).contains(&self)
    }

    /// Steps move forward, skipping any; one step back corrects a mistake (the technician
    /// turned around); a closed ticket stays closed.
    pub fn can_move_to(self, next: Status) -> bool {
        self != Self::Closed && next != self && (next > self || next as u8 + 1 == self as u8)
    }
}

impl TryFrom<String> for Status {
    type Error = Error;

    fn try_from(stored: String) -> Result<Self> {
        Self::parse(&stored)
            .ok_or_else(|| Error::Internal(anyhow::anyhow!("stored ticket status {stored:?}")))
    }
}

#[derive(Serialize, FromRow, ToSchema)]
pub struct Project {
    pub id: String,
    pub name: String,
    /// The portal profile of the project's pages; absent: the tenant's default.
    pub profile_id: Option<String>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProjectInput {
    #[schema(min_length = 1, max_length = 200, pattern = "\\S")]
    pub name: String,
    pub profile_id: Option<String>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProjectChanges {
    #[schema(min_length = 1, max_length = 200, pattern = "\\S")]
    pub name: Option<String>,
    /// `null`: the tenant's default profile.
    #[serde(default, deserialize_with = "crate::types::double_option")]
    pub profile_id: Option<Option<String>>,
}

/// A ticket as stored.
#[derive(Clone, FromRow)]
pub(super) struct TicketRow {
    pub id: String,
    pub project_id: String,
    pub number: i64,
    pub title: String,
    pub description: String,
    pub ticket_type: String,
    pub priority: String,
    pub contact_first_name: String,
    pub contact_last_name: String,
    pub contact_email: String,
    pub contact_mobile: Option<String>,
    pub address: String,
    pub custom_fields: String,
    pub technician_id: Option<String>,
    #[sqlx(try_from = "String")]
    pub status: Status,
    pub latitude_e6: Option<i64>,
    pub longitude_e6: Option<i64>,
    pub position_at: Option<i64>,
    pub eta_at: Option<i64>,
    pub appointment_start: Option<i64>,
    pub appointment_end: Option<i64>,
    /// The booking rules whose capacity the appointment uses; none when set by hand.
    pub appointment_rules_id: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
}

/// The person the visit is for.
#[derive(Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Contact {
    #[schema(min_length = 1, max_length = 100, pattern = "\\S")]
    pub first_name: String,
    #[schema(min_length = 1, max_length = 100, pattern = "\\S")]
    pub last_name: String,
    /// Required: the tracking link and notifications go here.
    #[schema(format = Email)]
    pub email: String,
    pub mobile: Option<String>,
}

/// One reached step.
#[derive(Serialize, ToSchema)]
#[schema(as = TimelineStep)]
pub struct Step {
    pub status: Status,
    #[schema(value_type = String, format = DateTime)]
    pub at: jiff::Timestamp,
}

/// Information an automated action posted to the tracking page.
#[derive(Clone, Serialize, ToSchema)]
pub struct Notice {
    pub text: String,
    #[schema(value_type = String, format = DateTime)]
    pub at: jiff::Timestamp,
}

/// The agreed visit window.
#[derive(Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Appointment {
    #[schema(value_type = String, format = DateTime)]
    pub start: jiff::Timestamp,
    #[schema(value_type = String, format = DateTime)]
    pub end: jiff::Timestamp,
}

#[derive(Serialize, ToSchema)]
pub struct Position {
    pub latitude: f64,
    pub longitude: f64,
    #[schema(value_type = String, format = DateTime)]
    pub at: jiff::Timestamp,
}

/// A ticket as the back office sees it.
#[derive(Serialize, ToSchema)]
pub struct Ticket {
    pub id: String,
    /// Per-tenant number, for people.
    pub number: i64,
    pub project_id: String,
    pub title: String,
    pub description: String,
    pub ticket_type: String,
    /// `low`, `normal`, `high` or `urgent`.
    pub priority: String,
    pub contact: Contact,
    pub address: String,
    #[schema(value_type = Object)]
    pub custom_fields: Value,
    pub technician_id: Option<String>,
    pub status: Status,
    /// The steps reached so far, with their times.
    pub timeline: Vec<Step>,
    /// The technician's last reported position.
    pub position: Option<Position>,
    #[schema(value_type = Option<String>, format = DateTime)]
    pub eta: Option<jiff::Timestamp>,
    pub appointment: Option<Appointment>,
    /// The end user's rating of the visit, once given.
    pub feedback: Option<Feedback>,
    /// Information posted to the tracking page, oldest first.
    pub notices: Vec<Notice>,
    #[schema(value_type = String, format = DateTime)]
    pub created_at: jiff::Timestamp,
    #[schema(value_type = String, format = DateTime)]
    pub updated_at: jiff::Timestamp,
    /// The tracking link: present only in the answer that created or reissued it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tracking_url: Option<String>,
}

/// Coordinates are kept in microdegrees (about 0.1 m).
pub(super) fn to_e6(degrees: f64) -> i64 {
    (degrees * 1e6).round() as i64
}

fn from_e6(microdegrees: i64) -> f64 {
    microdegrees as f64 / 1e6
}

impl TicketRow {
    pub(super) fn view(
        self,
        timeline: Vec<Step>,
        feedback: Option<Feedback>,
        notices: Vec<Notice>,
    ) -> Result<Ticket> {
        Ok(Ticket {
            notices,
            appointment: match (self.appointment_start, self.appointment_end) {
                (Some(start), Some(end)) => Some(Appointment {
                    start: db::timestamp(start),
                    end: db::timestamp(end),
                }),
                _ => None,
            },
            feedback,
            status: self.status,
            custom_fields: serde_json::from_str(&self.custom_fields)
                .map_err(|e| Error::Internal(e.into()))?,
            position: match (self.latitude_e6, self.longitude_e6, self.position_at) {
                (Some(latitude), Some(longitude), Some(at)) => Some(Position {
                    latitude: from_e6(latitude),
                    longitude: from_e6(longitude),
                    at: db::timestamp(at),
                }),
                _ => None,
            },
            eta: self.eta_at.map(db::timestamp),
            id: self.id,
            number: self.number,
            project_id: self.project_id,
            title: self.title,
            description: self.description,
            ticket_type: self.ticket_type,
            priority: self.priority,
            contact: Contact {
                first_name: self.contact_first_name,
                last_name: self.contact_last_name,
                email: self.contact_email,
                mobile: self.contact_mobile,
            },
            address: self.address,
            technician_id: self.technician_id,
            timeline,
            created_at: db::timestamp(self.created_at),
            updated_at: db::timestamp(self.updated_at),
            tracking_url: None,
        })
    }

    /// What the audit log keeps of a ticket.
    pub(super) fn summary(&self) -> Value {
        serde_json::json!({"title": self.title, "priority": self.priority, "status": self.status,
            "technician_id": self.technician_id, "appointment": [self.appointment_start, self.appointment_end]})
    }
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewTicket {
    pub project_id: String,
    #[schema(min_length = 1, max_length = 200, pattern = "\\S")]
    pub title: String,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub ticket_type: String,
    /// Defaults to `normal`.
    pub priority: Option<String>,
    pub contact: Contact,
    #[serde(default)]
    pub address: String,
    #[serde(default)]
    #[schema(value_type = Object)]
    pub custom_fields: Map<String, Value>,
    pub technician_id: Option<String>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TicketChanges {
    pub title: Option<String>,
    pub description: Option<String>,
    pub ticket_type: Option<String>,
    pub priority: Option<String>,
    pub contact: Option<Contact>,
    pub address: Option<String>,
    /// Values to set; `null` clears a field that is not required.
    #[schema(value_type = Option<Object>)]
    pub custom_fields: Option<Map<String, Value>>,
    /// A staff user of this tenant; `null` unassigns.
    #[serde(default, deserialize_with = "crate::types::double_option")]
    pub technician_id: Option<Option<String>>,
    /// The agreed visit window; `null` clears it.
    #[serde(default, deserialize_with = "crate::types::double_option")]
    pub appointment: Option<Option<Appointment>>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StatusChange {
    pub status: Status,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PositionReport {
    #[schema(minimum = -90, maximum = 90)]
    pub latitude: f64,
    #[schema(minimum = -180, maximum = 180)]
    pub longitude: f64,
    /// Expected arrival.
    #[schema(value_type = Option<String>, format = DateTime)]
    pub eta: Option<jiff::Timestamp>,
}

#[cfg(test)]
mod tests {
    use super::Status::*;

    #[test]
    fn transitions() {
        assert!(Received.can_move_to(Scheduling));
        assert!(Received.can_move_to(OnRoute), "steps may be skipped");
        assert!(OnRoute.can_move_to(Dispatched), "one step back");
        assert!(!OnRoute.can_move_to(Received), "but no further");
        assert!(!Closed.can_move_to(Completed));
        assert!(!Arrived.can_move_to(Arrived));
        assert!(Completed.can_move_to(Closed));
    }
}
