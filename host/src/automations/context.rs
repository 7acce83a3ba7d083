//! What a message template sees: the ticket, the affected person, the technician, the tenant
//! and the portal links. Links are markers here; the delivery worker swaps each for a link
//! issued for that message when it sends it.

use serde_json::{Value, json};

use sqlx::AnyConnection;

use crate::error::Result;
use crate::tenants::Tenant;
use crate::tickets::{self, Status, Ticket};
use crate::types::TenantId;

/// The facts about one ticket that messages and conditions use.
pub struct TicketFacts {
    pub ticket: Ticket,
    pub project_name: String,
    pub technician: Option<(String, String)>,
    pub tenant: Tenant,
}

impl TicketFacts {
    /// Reads everything through `conn` alone: in the consumer it is the transaction that holds
    /// SQLite's write lock, and waiting for another pooled connection could starve the pool.
    pub async fn load(
        conn: &mut AnyConnection,
        tenant: &TenantId,
        ticket_id: &str,
    ) -> Result<Self> {
        let ticket = tickets::service::load_in(conn, tenant, ticket_id).await?;
        let project = tickets::store::lock_project(conn, tenant, &ticket.project_id, "").await?;
        let technician = match &ticket.technician_id {
            Some(id) => crate::auth::store::lock_user(conn, tenant, id, "")
                .await
                .ok()
                .map(|u| (u.display_name, u.email)),
            None => None,
        };
        let tenant = crate::tenants::store::lock(conn, tenant, "").await?;
        Ok(Self {
            ticket,
            project_name: project.name,
            technician,
            tenant,
        })
    }

    /// The affected person's language: the tenant's until contacts carry their own.
    pub fn language(&self) -> &str {
        &self.tenant.language
    }

    /// The template context, with `links` standing for the portal links.
    pub fn context(&self, links: &[(&str, String)]) -> Value {
        let ticket = &self.ticket;
        let time_zone = &self.tenant.time_zone;
        let appointment = ticket.appointment.as_ref().and_then(|a| {
            let zone = jiff::tz::TimeZone::get(time_zone).ok()?;
            let start = a.start.to_zoned(zone.clone());
            let end = a.end.to_zoned(zone);
            Some(json!({
                "date": start.strftime("%Y-%m-%d").to_string(),
                "start_time": start.strftime("%H:%M").to_string(),
                "end_time": end.strftime("%H:%M").to_string(),
                "time_zone": time_zone,
            }))
        });
        let contact = &ticket.contact;
        let link = |name: &str| {
            links
                .iter()
                .find(|(n, _)| *n == name)
                .map(|(_, marker)| marker.clone())
        };
        json!({
            "ticket": {
                "number": ticket.number,
                "title": ticket.title,
                "description": ticket.description,
                "status": ticket.status,
                "status_label": status_label(ticket.status),
                "type": ticket.ticket_type,
                "priority": ticket.priority,
                "address": ticket.address,
                "project": self.project_name,
                "custom_fields": ticket.custom_fields,
                "appointment": appointment,
            },
            "person": {
                "first_name": contact.first_name,
                "last_name": contact.last_name,
                "name": format!("{} {}", contact.first_name, contact.last_name),
                "email": contact.email,
                "mobile": contact.mobile,
                "language": self.language(),
            },
            "technician": self.technician.as_ref().map(|(name, email)| json!({"name": name, "email": email})),
            "tenant": {"name": self.tenant.display_name},
            "portal": {
                "tracking_link": link("tracking"),
                "booking_link": link("booking"),
            },
        })
    }

    /// A field's value for conditions, `None` when it is not set.
    pub fn field(&self, name: &str) -> Option<Value> {
        let ticket = &self.ticket;
        let value = match name {
            "project_id" => json!(ticket.project_id),
            "project" => json!(self.project_name),
            "ticket_type" | "type" => json!(ticket.ticket_type),
            "priority" => json!(ticket.priority),
            "status" => json!(ticket.status),
            "title" => json!(ticket.title),
            "address" => json!(ticket.address),
            "technician_id" => json!(ticket.technician_id),
            "language" => json!(self.language()),
            other => {
                let key = other.strip_prefix("custom_fields.")?;
                ticket.custom_fields.get(key)?.clone()
            }
        };
        Some(value).filter(|v| !v.is_null())
    }
}

/// The names of the steps as the tracking page shows them.
pub fn status_label(status: Status) -> &'static str {
    match status {
        Status::Received => "Ticket Received",
        Status::Scheduling => "Scheduling",
        Status::Dispatched => "Dispatched",
        Status::OnRoute => "On Route to You",
        Status::Arrived => "Arrived Onsite",
        Status::Completed => "Visit Completed",
        Status::Closed => "Closed",
    }
}

/// Fields a condition may name besides `custom_fields.<key>`.
pub const CONDITION_FIELDS: &[&str] = &[
    "project_id",
    "project",
    "ticket_type",
    "priority",
    "status",
    "title",
    "address",
    "technician_id",
    "language",
];
