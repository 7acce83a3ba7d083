//! Ticket and project operations. Each owns its transaction: it locks the ticket it reads before
//! writing, writes only the columns it changes, audits and emits, so a position report racing a
//! status change can neither undo the change nor skip its history.

use serde_json::{Map, Value, json};

use super::feedback::Refusal;
use super::model::{
    Contact, NewTicket, PositionReport, Status, Ticket, TicketChanges, TicketRow, to_e6,
};
use super::store::{self, Filter};
use super::{fields, links};
use crate::AppState;
use crate::audit::{self, Change};
use crate::db::{self, Arg, Pool, now_ms};
use crate::error::{Error, Result};
use crate::events::{Event, Tx};
use crate::types::{Caller, Email, Mobile, TenantId};

const PRIORITIES: &[&str] = &["low", "normal", "high", "urgent"];

/// Names (of projects, actions, templates) and titles of tickets: trimmed, 1 to 200 characters.
pub fn check_name(name: &str) -> Result<String> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 200 {
        return Err(Error::invalid(
            "invalid_name",
            "a name is 1 to 200 characters",
        ));
    }
    Ok(name.to_string())
}

fn check_priority(priority: &str) -> Result<()> {
    if PRIORITIES.contains(&priority) {
        Ok(())
    } else {
        Err(Error::invalid(
            "invalid_priority",
            "priority is low, normal, high or urgent",
        ))
    }
}

fn check_contact(contact: &Contact) -> Result<Contact> {
    let email = Email::parse(&contact.email).map_err(|_| {
        Error::invalid(
            "invalid_email",
            "the affected person needs a valid email address for the tracking link",
        )
    })?;
    for (what, value) in [
        ("first_name", &contact.first_name),
        ("last_name", &contact.last_name),
    ] {
        if value.trim().is_empty() || value.chars().count() > 100 {
            return Err(Error::invalid(
                "invalid_contact",
                format!("contact {what} is 1 to 100 characters"),
            ));
        }
    }
    let mobile = contact
        .mobile
        .as_deref()
        .map(Mobile::parse)
        .transpose()?
        .map(|m| m.to_string());
    Ok(Contact {
        email: email.to_string(),
        first_name: contact.first_name.trim().into(),
        last_name: contact.last_name.trim().into(),
        mobile,
    })
}

async fn check_technician(pool: &Pool, tenant: &TenantId, technician: Option<&str>) -> Result<()> {
    if let Some(id) = technician {
        // Another tenant's staff are simply not found here.
        crate::auth::find_user(pool, tenant, id).await?;
    }
    Ok(())
}

/// Posts information to a ticket's tracking page inside the caller's transaction, so that an
/// automated action's notice commits with the event that triggered it, once.
pub async fn post_notice(
    tx: &mut crate::events::Tx,
    tenant: &TenantId,
    ticket_id: &str,
    actor: &str,
    text: &str,
) -> Result<()> {
    store::insert_notice(tx, tenant, ticket_id, text).await?;
    tx.emit(Some(tenant), ticket_id, actor, Event::TicketNoticePosted)
        .await
}

/// Tickets with their timelines and feedback, as the API and the tracking page show them.
async fn views(
    conn: &mut sqlx::AnyConnection,
    tenant: &TenantId,
    rows: Vec<TicketRow>,
) -> Result<Vec<Ticket>> {
    let ids: Vec<&str> = rows.iter().map(|r| r.id.as_str()).collect();
    let mut details = store::details(conn, tenant, &ids).await?;
    rows.into_iter()
        .map(|row| {
            let steps = details.timelines.remove(&row.id).unwrap_or_default();
            let given = details.feedback.remove(&row.id);
            let notices = details.notices.remove(&row.id).unwrap_or_default();
            row.view(steps, given, notices)
        })
        .collect()
}

/// A ticket with its timeline and feedback, as the API and the tracking page show it.
pub async fn load(pool: &Pool, tenant: &TenantId, id: &str) -> Result<Ticket> {
    load_in(&mut *pool.acquire().await?, tenant, id).await
}

/// [`load`] on a given connection, such as a durable consumer's transaction, which on SQLite
/// holds the write lock and must not wait for a second connection.
pub async fn load_in(
    conn: &mut sqlx::AnyConnection,
    tenant: &TenantId,
    id: &str,
) -> Result<Ticket> {
    let row = store::lock(conn, tenant, id, "").await?;
    let mut tickets = views(conn, tenant, vec![row]).await?;
    tickets.pop().ok_or(Error::NotFound("ticket"))
}

/// One page of the tenant's tickets (`filter.limit` rows, the last only telling more exist).
pub async fn list(pool: &Pool, tenant: &TenantId, filter: &Filter<'_>) -> Result<Vec<Ticket>> {
    let rows = store::list(pool, tenant, filter).await?;
    views(&mut *pool.acquire().await?, tenant, rows).await
}

/// Creates a ticket in step "Ticket Received" with its tracking link, shown once in the answer.
pub async fn create(
    state: &AppState,
    caller: &Caller,
    tenant: &TenantId,
    tenant_slug: &str,
    input: NewTicket,
) -> Result<Ticket> {
    let pool = &state.db.pool;
    let title = check_name(&input.title)?;
    let contact = check_contact(&input.contact)?;
    let priority = input.priority.unwrap_or_else(|| "normal".into());
    check_priority(&priority)?;
    let definitions = fields::definitions(pool, tenant).await?;
    fields::check_values(&definitions, &input.custom_fields, true)?;
    check_technician(pool, tenant, input.technician_id.as_deref()).await?;

    let actor = caller.actor();
    let now = now_ms();
    let mut tx = state.events.begin().await?;
    let for_update = tx.for_update();
    store::lock_project(&mut tx, tenant, &input.project_id, for_update).await?;
    let number = store::next_number(&mut tx, tenant).await?;
    let row = TicketRow {
        id: db::new_id(),
        project_id: input.project_id,
        number,
        title,
        description: input.description,
        ticket_type: input.ticket_type,
        priority,
        contact_first_name: contact.first_name,
        contact_last_name: contact.last_name,
        contact_email: contact.email,
        contact_mobile: contact.mobile,
        address: input.address,
        custom_fields: Value::Object(input.custom_fields).to_string(),
        technician_id: input.technician_id,
        status: Status::Received,
        latitude_e6: None,
        longitude_e6: None,
        position_at: None,
        eta_at: None,
        appointment_start: None,
        appointment_end: None,
        appointment_rules_id: None,
        created_at: now,
        updated_at: now,
    };
    store::insert(&mut tx, tenant, &row).await?;
    store::record_step(&mut tx, tenant, &row.id, Status::Received, &actor, now).await?;
    let token = links::issue(&mut tx, tenant, &row.id).await?;
    let change = Change {
        tenant: Some(tenant),
        action: "ticket.create",
        target: &row.id,
        before: None,
        after: Some(json!({"number": number, "title": row.title})),
    };
    audit::record(&mut tx, &actor, change).await?;
    let created = Event::TicketCreated {
        project_id: row.project_id.clone(),
        number,
    };
    tx.emit(Some(tenant), &row.id, &actor, created).await?;
    tx.commit().await?;
    let mut ticket = load(pool, tenant, &row.id).await?;
    ticket.tracking_url = Some(links::url(&state.config, tenant_slug, &token));
    Ok(ticket)
}

/// Applies `input` to what `row` holds; returns the columns to write. `definitions` are the
/// tenant's custom fields, read before the transaction.
fn changed_columns(
    definitions: &[fields::CustomField],
    row: &mut TicketRow,
    input: TicketChanges,
) -> Result<Vec<(&'static str, Arg)>> {
    let mut columns: Vec<(&'static str, Arg)> = Vec::new();
    if let Some(title) = &input.title {
        row.title = check_name(title)?;
        columns.push(("title", row.title.clone().into()));
    }
    if let Some(description) = input.description {
        columns.push(("description", description.clone().into()));
        row.description = description;
    }
    if let Some(ticket_type) = input.ticket_type {
        columns.push(("ticket_type", ticket_type.clone().into()));
        row.ticket_type = ticket_type;
    }
    if let Some(priority) = input.priority {
        check_priority(&priority)?;
        columns.push(("priority", priority.clone().into()));
        row.priority = priority;
    }
    if let Some(contact) = &input.contact {
        let contact = check_contact(contact)?;
        columns.push(("contact_first_name", contact.first_name.clone().into()));
        columns.push(("contact_last_name", contact.last_name.clone().into()));
        columns.push(("contact_email", contact.email.clone().into()));
        columns.push(("contact_mobile", contact.mobile.clone().into()));
        (
            row.contact_first_name,
            row.contact_last_name,
            row.contact_email,
            row.contact_mobile,
        ) = (
            contact.first_name,
            contact.last_name,
            contact.email,
            contact.mobile,
        );
    }
    if let Some(address) = input.address {
        columns.push(("address", address.clone().into()));
        row.address = address;
    }
    if let Some(changes) = input.custom_fields {
        let mut values: Map<String, Value> =
            serde_json::from_str(&row.custom_fields).map_err(|e| Error::Internal(e.into()))?;
        fields::check_values(definitions, &changes, false)?;
        for (key, value) in changes {
            if value.is_null() {
                values.remove(&key)
            } else {
                values.insert(key, value)
            };
        }
        row.custom_fields = Value::Object(values).to_string();
        columns.push(("custom_fields", row.custom_fields.clone().into()));
    }
    if let Some(technician) = input.technician_id {
        columns.push(("technician_id", technician.clone().into()));
        row.technician_id = technician;
    }
    if let Some(appointment) = input.appointment {
        (row.appointment_start, row.appointment_end) = match appointment {
            Some(window) => {
                let length = window.end.duration_since(window.start);
                if length <= jiff::SignedDuration::ZERO
                    || length > jiff::SignedDuration::from_hours(24 * 14)
                {
                    return Err(Error::invalid(
                        "invalid_appointment",
                        "an appointment ends after it starts, within 14 days",
                    ));
                }
                (
                    Some(window.start.as_millisecond()),
                    Some(window.end.as_millisecond()),
                )
            }
            None => (None, None),
        };
        columns.push(("appointment_start", row.appointment_start.into()));
        columns.push(("appointment_end", row.appointment_end.into()));
        // Set by hand, outside any booking rules: it uses no rule set's capacity.
        columns.push(("appointment_rules_id", Arg::Text(None)));
        row.appointment_rules_id = None;
    }
    Ok(columns)
}

/// Changes a ticket's details (not its step or position, which have their own operations).
pub async fn update(
    state: &AppState,
    caller: &Caller,
    tenant: &TenantId,
    id: &str,
    input: TicketChanges,
) -> Result<Ticket> {
    let pool = &state.db.pool;
    // Reads of other tables come first: on SQLite the transaction holds the only write lock,
    // and waiting for a pooled connection while holding it could starve everyone.
    let definitions = match input.custom_fields {
        Some(_) => fields::definitions(pool, tenant).await?,
        None => Vec::new(),
    };
    if let Some(technician) = &input.technician_id {
        check_technician(pool, tenant, technician.as_deref()).await?;
    }
    let actor = caller.actor();
    let mut tx = state.events.begin().await?;
    let for_update = tx.for_update();
    let before = store::lock(&mut tx, tenant, id, for_update).await?;
    let mut after = before.clone();
    let columns = changed_columns(&definitions, &mut after, input)?;
    let fields: Vec<String> = columns.iter().map(|(c, _)| c.to_string()).collect();
    store::update(&mut tx, tenant, id, &columns).await?;
    let change = Change {
        tenant: Some(tenant),
        action: "ticket.update",
        target: id,
        before: Some(before.summary()),
        after: Some(after.summary()),
    };
    audit::record(&mut tx, &actor, change).await?;
    tx.emit(Some(tenant), id, &actor, Event::TicketChanged { fields })
        .await?;
    tx.commit().await?;
    load(pool, tenant, id).await
}

/// Moves the ticket to another step. Steps go forward (skipping is allowed) or one step back;
/// a closed ticket stays closed. Leaving the road clears the technician's position.
pub async fn change_status(
    state: &AppState,
    caller: &Caller,
    tenant: &TenantId,
    id: &str,
    status: Status,
) -> Result<Ticket> {
    let actor = caller.actor();
    let mut tx = state.events.begin().await?;
    let for_update = tx.for_update();
    let before = store::lock(&mut tx, tenant, id, for_update).await?;
    if !before.status.can_move_to(status) {
        return Err(Error::invalid(
            "invalid_transition",
            format!(
                "a ticket cannot go from {} to {}",
                before.status.as_str(),
                status.as_str()
            ),
        ));
    }
    let now = now_ms();
    let mut columns = vec![("status", Arg::from(status.as_str()))];
    if !status.shows_position() {
        let none = Arg::Int(None);
        for column in ["latitude_e6", "longitude_e6", "position_at", "eta_at"] {
            columns.push((column, none.clone()));
        }
    }
    store::update(&mut tx, tenant, id, &columns).await?;
    store::record_step(&mut tx, tenant, id, status, &actor, now).await?;
    let after = TicketRow {
        status,
        ..before.clone()
    };
    let change = Change {
        tenant: Some(tenant),
        action: "ticket.status",
        target: id,
        before: Some(before.summary()),
        after: Some(after.summary()),
    };
    audit::record(&mut tx, &actor, change).await?;
    let changed = Event::TicketStatusChanged {
        from: before.status.as_str().into(),
        to: status.as_str().into(),
    };
    tx.emit(Some(tenant), id, &actor, changed).await?;
    tx.commit().await?;
    load(&state.db.pool, tenant, id).await
}

/// The technician's live position and ETA; the ticket keeps the last one. Positions arrive
/// often: they are not audited, but each is an event (live pages follow them).
pub async fn report_position(
    state: &AppState,
    caller: &Caller,
    tenant: &TenantId,
    id: &str,
    report: PositionReport,
) -> Result<Ticket> {
    if !(-90.0..=90.0).contains(&report.latitude) || !(-180.0..=180.0).contains(&report.longitude) {
        return Err(Error::invalid(
            "invalid_position",
            "latitude is -90 to 90 and longitude -180 to 180",
        ));
    }
    let mut tx = state.events.begin().await?;
    let for_update = tx.for_update();
    let ticket = store::lock(&mut tx, tenant, id, for_update).await?;
    if !ticket.status.shows_position() {
        return Err(Error::conflict(
            "not_on_route",
            "positions are reported while the technician is on the way",
        ));
    }
    let columns = [
        ("latitude_e6", Arg::from(to_e6(report.latitude))),
        ("longitude_e6", Arg::from(to_e6(report.longitude))),
        ("position_at", Arg::from(now_ms())),
        ("eta_at", Arg::from(report.eta.map(|t| t.as_millisecond()))),
    ];
    store::update(&mut tx, tenant, id, &columns).await?;
    tx.emit(
        Some(tenant),
        id,
        &caller.actor(),
        Event::TicketPositionReported,
    )
    .await?;
    tx.commit().await?;
    load(&state.db.pool, tenant, id).await
}

/// Who made a booking change: the end user from the tracking page, or staff through the API.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BookedBy {
    Customer,
    Staff,
}

impl BookedBy {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Customer => "customer",
            Self::Staff => "staff",
        }
    }
}

/// A change of a ticket's booking.
pub struct BookingChange<'a> {
    /// The new window (ms), or `None` to cancel.
    pub window: Option<(i64, i64)>,
    /// The rules whose capacity it uses.
    pub rules_id: Option<&'a str>,
    pub by: BookedBy,
}

/// Books, moves or (with `window` `None`) cancels the ticket's appointment in the booking
/// service's transaction, which holds the rule set's lock. `allow` sees the appointment as it
/// is under the ticket's lock (start, end) and may refuse the change (the customer notice).
/// Booking a ticket that is still Received moves it to Scheduling. Audited; emits
/// `appointment_booked` or `appointment_cancelled` (and the step change).
pub async fn set_booking_in(
    tx: &mut Tx,
    actor: &str,
    tenant: &TenantId,
    id: &str,
    change: BookingChange<'_>,
    allow: impl FnOnce(Option<(i64, i64)>) -> Result<()>,
) -> Result<()> {
    let BookingChange {
        window,
        rules_id,
        by,
    } = change;
    let for_update = tx.for_update();
    let before = store::lock(tx, tenant, id, for_update).await?;
    let current = before.appointment_start.zip(before.appointment_end);
    allow(current)?;
    if window.is_none() && current.is_none() {
        return Err(Error::conflict(
            "no_appointment",
            "the ticket has no appointment to cancel",
        ));
    }
    let columns = [
        ("appointment_start", Arg::from(window.map(|w| w.0))),
        ("appointment_end", Arg::from(window.map(|w| w.1))),
        (
            "appointment_rules_id",
            Arg::Text(window.and(rules_id).map(str::to_string)),
        ),
    ];
    store::update(tx, tenant, id, &columns).await?;
    let mut after = before.clone();
    (after.appointment_start, after.appointment_end) = (window.map(|w| w.0), window.map(|w| w.1));
    let change = Change {
        tenant: Some(tenant),
        action: if window.is_some() {
            "ticket.book"
        } else {
            "ticket.cancel_booking"
        },
        target: id,
        before: Some(before.summary()),
        after: Some(after.summary()),
    };
    audit::record(tx, actor, change).await?;
    let event = match (window, current) {
        (Some((start, end)), previous) => Event::AppointmentBooked {
            start,
            end,
            previous: previous.map(|(s, e)| [s, e]),
            by: by.as_str().into(),
        },
        (None, Some((start, end))) => Event::AppointmentCancelled {
            start,
            end,
            by: by.as_str().into(),
        },
        (None, None) => unreachable!("refused above"),
    };
    tx.emit(Some(tenant), id, actor, event).await?;
    if window.is_some() && before.status == Status::Received {
        store::update(
            tx,
            tenant,
            id,
            &[("status", Arg::from(Status::Scheduling.as_str()))],
        )
        .await?;
        store::record_step(tx, tenant, id, Status::Scheduling, actor, now_ms()).await?;
        let changed = Event::TicketStatusChanged {
            from: Status::Received.as_str().into(),
            to: Status::Scheduling.as_str().into(),
        };
        tx.emit(Some(tenant), id, actor, changed).await?;
    }
    Ok(())
}

/// Revokes the ticket's tracking link and issues a new one, returned in `tracking_url`.
pub async fn reissue_link(
    state: &AppState,
    caller: &Caller,
    tenant: &TenantId,
    tenant_slug: &str,
    id: &str,
) -> Result<Ticket> {
    let actor = caller.actor();
    let mut tx = state.events.begin().await?;
    let for_update = tx.for_update();
    store::lock(&mut tx, tenant, id, for_update).await?;
    let token = links::issue(&mut tx, tenant, id).await?;
    let change = Change {
        tenant: Some(tenant),
        action: "tracking_link.reissue",
        target: id,
        before: None,
        after: None,
    };
    audit::record(&mut tx, &actor, change).await?;
    tx.emit(Some(tenant), id, &actor, Event::TrackingLinkIssued)
        .await?;
    tx.commit().await?;
    let mut ticket = load(&state.db.pool, tenant, id).await?;
    ticket.tracking_url = Some(links::url(&state.config, tenant_slug, &token));
    Ok(ticket)
}

/// Revokes the ticket's tracking link; the page then says the link is not valid.
pub async fn revoke_link(
    state: &AppState,
    caller: &Caller,
    tenant: &TenantId,
    id: &str,
) -> Result<()> {
    let actor = caller.actor();
    let mut tx = state.events.begin().await?;
    let for_update = tx.for_update();
    store::lock(&mut tx, tenant, id, for_update).await?;
    links::revoke(&mut tx, tenant, id).await?;
    let change = Change {
        tenant: Some(tenant),
        action: "tracking_link.revoke",
        target: id,
        before: None,
        after: None,
    };
    audit::record(&mut tx, &actor, change).await?;
    tx.emit(Some(tenant), id, &actor, Event::TrackingLinkRevoked)
        .await?;
    tx.commit().await
}

/// Stores an end user's feedback unless some was given already. (Whether the page offers it is
/// the portal's decision.)
pub async fn give_feedback(
    state: &AppState,
    tenant: &TenantId,
    ticket: &str,
    rating: i64,
    comment: &str,
) -> Result<std::result::Result<(), Refusal>> {
    let mut tx = state.events.begin().await?;
    if !store::insert_feedback(&mut tx, tenant, ticket, rating, comment).await? {
        return Ok(Err(Refusal::AlreadyGiven));
    }
    tx.emit(
        Some(tenant),
        ticket,
        "end user",
        Event::FeedbackGiven { rating },
    )
    .await?;
    tx.commit().await?;
    Ok(Ok(()))
}
