//! Booking: rule sets (CRUD, audited), which rules a profile or project offers, the windows a
//! ticket may book (computed by the rule set's slot-calculator plugin, then checked by the host),
//! and booking, moving and cancelling with capacity enforced atomically.
//!
//! A booking re-reads the rule set with its row lock (`FOR UPDATE` on PostgreSQL; SQLite's write
//! transaction is exclusive) and counts the appointments that use the window's capacity inside
//! that transaction, so concurrent attempts at the last place produce exactly one booking.

use jiff::tz::TimeZone;
use portico_plugin_runtime::PluginKind;
use portico_sdk::schedule::{self, Day, Rules, SlaRules, Slot};
use portico_sdk::time::{MINUTE_MS, Window};
use serde_json::json;

use super::calendar;
use super::model::{Definition, RuleSet, Source};
use super::store;
use crate::AppState;
use crate::audit::{self, Change};
use crate::db::{self, now_ms};
use crate::error::{Error, Result};
use crate::events::{Event, Tx};
use crate::plugins::{prepared, runs};
use crate::tickets::service::{BookedBy, BookingChange, set_booking_in};
use crate::tickets::{self, Ticket};
use crate::types::{Caller, TenantId};

/// The built-in calculator every tenant has installed.
const STANDARD_CALCULATOR: &str = "standard-slots";

/// A rule set's calculator must be a slot-calculator install of the tenant.
pub async fn check_calculator(state: &AppState, tenant: &TenantId, d: &Definition) -> Result<()> {
    if let Some(install) = &d.calculator_install_id {
        let kind = crate::plugins::store::kind_of(&state.db.pool, tenant, install).await?;
        if kind.as_deref() != Some(PluginKind::SlotCalculator.as_str()) {
            return Err(Error::invalid(
                "invalid_rules",
                "calculator_install_id: not a slot-calculator install of this tenant",
            ));
        }
    }
    Ok(())
}

async fn finish(mut tx: Tx, actor: &str, tenant: &TenantId, change: Change<'_>) -> Result<()> {
    let target = change.target.to_string();
    audit::record(&mut tx, actor, change).await?;
    tx.emit(Some(tenant), &target, actor, Event::BookingRulesChanged)
        .await?;
    tx.commit().await
}

pub async fn create(
    state: &AppState,
    caller: &Caller,
    tenant: &TenantId,
    mut definition: Definition,
) -> Result<RuleSet> {
    definition.name = definition.check()?.0;
    check_calculator(state, tenant, &definition).await?;
    let now = jiff::Timestamp::now();
    let rules = RuleSet {
        id: db::new_id(),
        definition,
        created_at: now,
        updated_at: now,
    };
    let mut tx = state.events.begin().await?;
    store::insert(&mut tx, tenant, &rules).await?;
    let change = Change {
        tenant: Some(tenant),
        action: "booking_rules.create",
        target: &rules.id,
        before: None,
        after: Some(rules.summary()),
    };
    finish(tx, &caller.actor(), tenant, change).await?;
    Ok(rules)
}

/// Replaces a rule set's definition. Existing bookings stay as they are.
pub async fn replace(
    state: &AppState,
    caller: &Caller,
    tenant: &TenantId,
    id: &str,
    mut definition: Definition,
) -> Result<RuleSet> {
    definition.name = definition.check()?.0;
    check_calculator(state, tenant, &definition).await?;
    let mut tx = state.events.begin().await?;
    let for_update = tx.for_update();
    let before = store::lock(&mut tx, tenant, id, for_update).await?;
    let after = RuleSet {
        definition,
        updated_at: jiff::Timestamp::now(),
        ..before.clone()
    };
    store::replace(&mut tx, tenant, &after).await?;
    let change = Change {
        tenant: Some(tenant),
        action: "booking_rules.update",
        target: id,
        before: Some(before.summary()),
        after: Some(after.summary()),
    };
    finish(tx, &caller.actor(), tenant, change).await?;
    Ok(after)
}

pub async fn delete(state: &AppState, caller: &Caller, tenant: &TenantId, id: &str) -> Result<()> {
    let mut tx = state.events.begin().await?;
    let for_update = tx.for_update();
    let before = store::lock(&mut tx, tenant, id, for_update).await?;
    store::delete(&mut tx, tenant, id).await?;
    let change = Change {
        tenant: Some(tenant),
        action: "booking_rules.delete",
        target: id,
        before: Some(before.summary()),
        after: None,
    };
    finish(tx, &caller.actor(), tenant, change).await
}

/// What the booking rules of a profile or project are assigned to.
#[derive(Debug, Clone, Copy)]
pub enum Owner<'a> {
    Profile(&'a str),
    Project(&'a str),
}

/// Names (or with `None` removes) the rules a profile or project offers.
pub async fn assign(
    state: &AppState,
    caller: &Caller,
    tenant: &TenantId,
    owner: Owner<'_>,
    rules_id: Option<&str>,
) -> Result<()> {
    let pool = &state.db.pool;
    let target = match owner {
        Owner::Profile(id) => {
            crate::profiles::find(pool, tenant, id).await?;
            id
        }
        Owner::Project(id) => {
            let mut conn = pool.acquire().await?;
            tickets::store::lock_project(&mut conn, tenant, id, "").await?;
            id
        }
    };
    let mut tx = state.events.begin().await?;
    if let Some(rules) = rules_id {
        // Locked, so that the rules cannot be deleted before the assignment commits.
        let for_update = tx.for_update();
        store::lock(&mut tx, tenant, rules, for_update)
            .await
            .map_err(|e| match e {
                Error::NotFound(_) => {
                    Error::invalid("unknown_rules", "no such booking rules in this tenant")
                }
                other => other,
            })?;
    }
    let before = store::assigned(&mut tx, tenant, owner).await?;
    store::assign(&mut tx, tenant, owner, rules_id).await?;
    let change = Change {
        tenant: Some(tenant),
        action: "booking_rules.assign",
        target,
        before: Some(json!({"rules_id": before})),
        after: Some(json!({"rules_id": rules_id})),
    };
    finish(tx, &caller.actor(), tenant, change).await
}

/// The rules a ticket books against: its project's own, else its portal profile's (`profile`
/// is the id of the profile the project uses, empty for the built-in one).
pub async fn rules_for(
    state: &AppState,
    tenant: &TenantId,
    project: &str,
    profile: &str,
) -> Result<Option<RuleSet>> {
    let mut conn = state.db.pool.acquire().await?;
    for owner in [Owner::Project(project), Owner::Profile(profile)] {
        if let Some(id) = store::assigned(&mut conn, tenant, owner).await? {
            return Ok(Some(store::lock(&mut conn, tenant, &id, "").await?));
        }
    }
    Ok(None)
}

/// Windows as computed for one ticket (or a preview), with the request the calculator got.
pub struct Offer {
    pub request: schedule::Request,
    pub time_zone: TimeZone,
    /// The windows, or why none can be offered right now (a calculator that failed or broke
    /// the rules: recorded as a failed plugin run).
    pub windows: std::result::Result<Vec<Slot>, String>,
}

/// The ticket facts a calculator sees.
pub fn facts(ticket: &Ticket) -> serde_json::Value {
    json!({
        "number": ticket.number, "project_id": ticket.project_id, "ticket_type": ticket.ticket_type,
        "priority": ticket.priority, "status": ticket.status, "custom_fields": ticket.custom_fields,
    })
}

/// What a calculation is for.
pub struct Question<'a> {
    pub ticket: serde_json::Value,
    pub created_at: i64,
    pub now: i64,
    /// Whether the rules' minimum notice applies (not for staff).
    pub with_notice: bool,
    /// The bookings to count; `None`: the stored appointments, except `ticket_id`'s.
    pub bookings: Option<Vec<Window>>,
    pub ticket_id: &'a str,
}

fn buffer_ms(definition: &Definition) -> i64 {
    match definition.source {
        Source::Sla { buffer_minutes, .. } => i64::from(buffer_minutes) * MINUTE_MS,
        Source::Intervals { .. } => 0,
    }
}

/// Computes the windows `rules` offer: the calendar here, the windows by the rule set's
/// calculator plugin, then every window checked ([`schedule::check`]).
pub async fn offer(
    state: &AppState,
    tenant: &TenantId,
    rules_id: Option<&str>,
    definition: &Definition,
    question: Question<'_>,
) -> Result<Offer> {
    let (_, tz) = definition.check()?;
    let days = calendar::days(definition, &tz, question.now, question.created_at)?;
    let bookings = match (question.bookings, rules_id) {
        (Some(given), _) => given,
        (None, Some(rules)) => {
            let (from, to) = horizon(&days);
            let reach = buffer_ms(definition);
            let mut conn = state.db.pool.acquire().await?;
            tickets::store::appointments_using(
                &mut conn,
                tenant,
                rules,
                from - reach,
                to + reach,
                question.ticket_id,
            )
            .await?
            .into_iter()
            .map(|(start, end)| Window { start, end })
            .collect()
        }
        (None, None) => Vec::new(),
    };
    let notice = if question.with_notice {
        i64::from(definition.notice_minutes) * MINUTE_MS
    } else {
        0
    };
    let request = schedule::Request {
        rules: rules_of(definition),
        max_per_day: definition.max_per_day,
        ticket: question.ticket,
        created_at: question.created_at,
        now: question.now,
        not_before: question.now + notice,
        time_zone: definition.time_zone.clone(),
        days,
        bookings,
    };
    let windows = calculate(state, tenant, definition, &request).await?;
    Ok(Offer {
        request,
        time_zone: tz,
        windows,
    })
}

fn horizon(days: &[Day]) -> (i64, i64) {
    let offerable = || days.iter().filter(|d| d.offerable);
    (
        offerable().map(|d| d.span.start).min().unwrap_or(0),
        offerable().map(|d| d.span.end).max().unwrap_or(0),
    )
}

fn rules_of(definition: &Definition) -> Rules {
    match &definition.source {
        Source::Sla {
            response_minutes,
            deadline_minutes,
            visit_minutes,
            window_minutes,
            step_minutes,
            buffer_minutes,
            capacity,
            ..
        } => Rules::Sla(SlaRules {
            response_minutes: *response_minutes,
            deadline_minutes: *deadline_minutes,
            visit_minutes: *visit_minutes,
            window_minutes: *window_minutes,
            step_minutes: step_minutes.unwrap_or(*window_minutes),
            buffer_minutes: *buffer_minutes,
            capacity: *capacity,
        }),
        Source::Intervals { .. } => Rules::Intervals,
    }
}

/// Runs the rule set's calculator (or the tenant's standard one). A failure is recorded as a
/// failed run, which admins see with the install's runs, and offers nothing.
async fn calculate(
    state: &AppState,
    tenant: &TenantId,
    definition: &Definition,
    request: &schedule::Request,
) -> Result<std::result::Result<Vec<Slot>, String>> {
    let install = match &definition.calculator_install_id {
        Some(id) => id.clone(),
        None => {
            match crate::plugins::store::install_of(&state.db.pool, tenant, STANDARD_CALCULATOR)
                .await?
            {
                Some(id) => id,
                None => return Ok(Err("the tenant has no slot calculator installed".into())),
            }
        }
    };
    let runnable = match prepared::runnable_cached(state, tenant, &install).await {
        Ok(runnable) => runnable,
        Err(Error::NotFound(_) | Error::Conflict { .. }) => {
            return Ok(Err("the slot calculator is uninstalled or disabled".into()));
        }
        Err(e) => return Err(e),
    };
    let key = db::new_id();
    let done = state
        .plugins
        .runtime
        .calculate(&runnable.plugin, &runnable.call(&key), request)
        .await;
    match done.result {
        Ok(windows) => Ok(Ok(windows)),
        Err(error) => {
            tracing::warn!(%tenant, install, error = %error, "slot calculator failed; no windows offered");
            // The request is `portico plugin run`'s input for a calculator, for replay.
            let input = serde_json::to_value(request).ok();
            if let Err(e) = runs::record(
                &state.db.pool,
                runnable.subject(tenant),
                &done.report,
                Some(&error),
                input.as_ref(),
            )
            .await
            {
                tracing::warn!(error = ?e, "recording a failed calculator run");
            }
            Ok(Err(error.to_string()))
        }
    }
}

/// How a booking is checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Check {
    /// The window must be one offered right now, with the rules' notice (customers).
    Offered,
    /// The window must be one offered right now, without the notice (staff).
    OfferedWithoutNotice,
    /// Any window; it still uses the rule set's capacity (staff overriding).
    Override,
}

/// A booking to make.
pub struct Booking<'a> {
    pub ticket: &'a Ticket,
    pub rules: &'a RuleSet,
    pub window: Window,
    pub check: Check,
    /// Customers may not move an appointment that starts sooner than this (ms).
    pub change_notice_ms: Option<i64>,
}

/// Books or moves a ticket's appointment within its rules.
pub async fn book(
    state: &AppState,
    actor: &str,
    tenant: &TenantId,
    booking: Booking<'_>,
) -> Result<Ticket> {
    let Booking {
        ticket,
        rules,
        window,
        check,
        change_notice_ms,
    } = booking;
    if window.start >= window.end {
        return Err(Error::invalid(
            "invalid_window",
            "a window ends after it starts",
        ));
    }
    // The places the calculator offered, on top of the bookings it saw: a calculator may offer
    // fewer places than the rules, and that limit holds under concurrency too.
    let mut offered_limit = None;
    if check != Check::Override {
        let offer = offer(
            state,
            tenant,
            Some(&rules.id),
            &rules.definition,
            Question {
                ticket: facts(ticket),
                created_at: ticket.created_at.as_millisecond(),
                now: now_ms(),
                with_notice: check == Check::Offered,
                bookings: None,
                ticket_id: &ticket.id,
            },
        )
        .await?;
        let windows = offer.windows.map_err(|_| {
            Error::conflict(
                "booking_unavailable",
                "booking is unavailable right now; please try again later",
            )
        })?;
        let Some(slot) = windows.iter().find(|s| s.window == window) else {
            return Err(taken());
        };
        let seen = schedule::used(
            &offer.request.bookings,
            &window,
            buffer_ms(&rules.definition),
        );
        offered_limit = Some(seen + slot.capacity_left);
    }
    let mut tx = state.events.begin().await?;
    let for_update = tx.for_update();
    // The rule set's lock serialises bookings against it; the rules as locked decide.
    let locked = store::lock(&mut tx, tenant, &rules.id, for_update).await?;
    let d = &locked.definition;
    let reach = buffer_ms(d);
    let (_, tz) = d.check()?;
    // Only the window's own day: this runs under the write lock.
    let day = calendar::day_at(d, &tz, window.start)?;
    let capacity = match &d.source {
        Source::Sla { capacity, .. } => Some(*capacity),
        Source::Intervals { .. } => day
            .intervals
            .iter()
            .find(|i| i.window == window)
            .map(|i| i.capacity),
    };
    let span = day.span;
    let nearby: Vec<Window> = tickets::store::appointments_using(
        &mut tx,
        tenant,
        &locked.id,
        span.start.min(window.start - reach),
        span.end.max(window.end + reach),
        &ticket.id,
    )
    .await?
    .into_iter()
    .map(|(start, end)| Window { start, end })
    .collect();
    if check != Check::Override {
        let used = schedule::used(&nearby, &window, reach);
        let same_day = nearby.iter().filter(|b| span.contains(b.start)).count() as u64;
        let limit = capacity.map(|c| offered_limit.map_or(c, |offered| c.min(offered)));
        if limit.is_none_or(|c| used >= c)
            || d.max_per_day.is_some_and(|cap| same_day >= u64::from(cap))
        {
            return Err(taken());
        }
    }
    let by = if check == Check::Offered {
        BookedBy::Customer
    } else {
        BookedBy::Staff
    };
    let change = BookingChange {
        window: Some((window.start, window.end)),
        rules_id: Some(&locked.id),
        by,
    };
    set_booking_in(&mut tx, actor, tenant, &ticket.id, change, |current| {
        customer_may_change(current, change_notice_ms)
    })
    .await?;
    tx.commit().await?;
    tickets::service::load(&state.db.pool, tenant, &ticket.id).await
}

fn taken() -> Error {
    Error::conflict(
        "window_taken",
        "this window was just taken or is no longer offered; please choose another",
    )
}

/// Customers change or cancel only while the appointment is further away than the notice.
fn customer_may_change(current: Option<(i64, i64)>, change_notice_ms: Option<i64>) -> Result<()> {
    if let (Some(notice), Some((start, _))) = (change_notice_ms, current)
        && start - now_ms() < notice
    {
        return Err(Error::conflict(
            "too_late_to_change",
            "the appointment is too close to change online; please call us",
        ));
    }
    Ok(())
}

/// Cancels the ticket's appointment.
pub async fn cancel(
    state: &AppState,
    actor: &str,
    tenant: &TenantId,
    ticket: &Ticket,
    by: BookedBy,
    change_notice_ms: Option<i64>,
) -> Result<Ticket> {
    let mut tx = state.events.begin().await?;
    let change = BookingChange {
        window: None,
        rules_id: None,
        by,
    };
    set_booking_in(&mut tx, actor, tenant, &ticket.id, change, |current| {
        customer_may_change(current, change_notice_ms)
    })
    .await?;
    tx.commit().await?;
    tickets::service::load(&state.db.pool, tenant, &ticket.id).await
}
