//! What happened, as the areas announce it. The tenant, the subject (the id of what changed) and
//! the actor travel beside the event, so each variant carries only what is particular to it.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use crate::types::TenantId;

/// A change one area announces and others react to.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Event {
    /// Subject: the tenant.
    TenantCreated { slug: String, language: String },
    /// Slug, name, settings or status; subject: the tenant.
    TenantChanged,
    /// A platform event (no tenant); subject: the deleted tenant.
    TenantDeleted,
    /// Added, verified or removed; subject: the domain name.
    DomainChanged,
    /// Role assignments or custom policies; subject: the assignment or policy.
    RolesChanged,
    /// Subject: the staff user.
    StaffUserCreated,
    /// Subject: the staff user.
    StaffUserChanged,
    /// Subject: the staff user (their assignments went with them).
    StaffUserDeleted,
    /// Subject: the API token.
    TokenIssued,
    /// Subject: the API token.
    TokenRevoked,
    /// A platform event; subject: `plugin@version`.
    PluginPublished,
    /// Installed, configured, enabled, disabled or removed; subject: the install.
    PluginInstallChanged,
    /// Subject: the portal profile.
    ProfileChanged,
    /// Subject: the project.
    ProjectCreated,
    /// Subject: the project.
    ProjectChanged,
    /// Subject: the project.
    ProjectDeleted,
    /// Subject: the custom field's key.
    CustomFieldChanged,
    /// Subject: the ticket.
    TicketCreated { project_id: String, number: i64 },
    /// Subject: the ticket; `fields` names what changed.
    TicketChanged { fields: Vec<String> },
    /// Subject: the ticket.
    TicketStatusChanged { from: String, to: String },
    /// Subject: the ticket.
    TicketPositionReported,
    /// Subject: the ticket.
    TrackingLinkIssued,
    /// Subject: the ticket.
    TrackingLinkRevoked,
    /// Subject: the ticket.
    FeedbackGiven { rating: i64 },
    /// An automated action posted information to the tracking page; subject: the ticket.
    TicketNoticePosted,
    /// An appointment was booked or moved (from `previous`) within booking rules, by the
    /// `customer` or `staff`; times in ms. Subject: the ticket.
    AppointmentBooked {
        start: i64,
        end: i64,
        previous: Option<[i64; 2]>,
        by: String,
    },
    /// Subject: the ticket.
    AppointmentCancelled { start: i64, end: i64, by: String },
    /// Subject: the booking rules, or the profile or project they were assigned to.
    BookingRulesChanged,
    /// Subject: the automated action.
    AutomatedActionChanged,
    /// Subject: the message template.
    MessageTemplateChanged,
    /// Subject: the delivery, put back in the queue by an administrator.
    DeliveryRetried,
}

impl Event {
    /// The stable name stored in the `kind` column and used to filter.
    pub fn kind(&self) -> String {
        match serde_json::to_value(self) {
            Ok(Value::Object(map)) => map
                .get("kind")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string(),
            _ => String::new(),
        }
    }

    /// True for the events that change a ticket as its tracking page shows it.
    pub fn touches_ticket(&self) -> bool {
        matches!(
            self,
            Self::TicketChanged { .. }
                | Self::TicketStatusChanged { .. }
                | Self::TicketPositionReported
                | Self::TrackingLinkIssued
                | Self::TrackingLinkRevoked
                | Self::FeedbackGiven { .. }
                | Self::TicketNoticePosted
                | Self::AppointmentBooked { .. }
                | Self::AppointmentCancelled { .. }
        )
    }
}

/// An event as it was committed.
#[derive(Debug, Clone)]
pub struct Recorded {
    /// Order of insertion (commit order on SQLite).
    pub seq: i64,
    /// The id of the writing transaction on PostgreSQL (0 on SQLite): consumers read in
    /// `(tx, seq)` order.
    pub tx: i64,
    pub id: String,
    pub tenant: Option<TenantId>,
    pub subject: String,
    pub actor: String,
    pub event: Event,
    pub at: i64,
}

/// An event as the API shows it.
#[derive(Debug, Serialize, ToSchema)]
pub struct EventView {
    pub id: String,
    /// Such as `ticket_status_changed`.
    pub kind: String,
    /// The id of what changed.
    pub subject: String,
    /// Who made the change.
    pub actor: String,
    /// The event's own fields (for a status change: `from` and `to`).
    #[schema(value_type = Object)]
    pub data: Value,
    #[schema(value_type = String, format = DateTime)]
    pub at: jiff::Timestamp,
}

impl From<&Recorded> for EventView {
    fn from(r: &Recorded) -> Self {
        let mut data = serde_json::to_value(&r.event).unwrap_or(Value::Null);
        let kind = match data.as_object_mut().and_then(|m| m.remove("kind")) {
            Some(Value::String(kind)) => kind,
            _ => String::new(),
        };
        Self {
            id: r.id.clone(),
            kind,
            subject: r.subject.clone(),
            actor: r.actor.clone(),
            data,
            at: crate::db::timestamp(r.at),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Event;

    #[test]
    fn kinds_are_snake_case_names() {
        let event = Event::TicketStatusChanged {
            from: "received".into(),
            to: "dispatched".into(),
        };
        assert_eq!(event.kind(), "ticket_status_changed");
        assert_eq!(Event::TenantChanged.kind(), "tenant_changed");
        let text = serde_json::to_string(&event).unwrap();
        assert_eq!(serde_json::from_str::<Event>(&text).unwrap(), event);
    }
}
