//! Builds the view model of portal pages: everything a theme (or the built-in renderer) needs,
//! already translated, formatted in the tenant's time zone, and with the page's links. Its
//! types are the SDK's ([`portico_sdk::view`]): the contract with theme plugins has one source.

use std::collections::HashMap;

pub use portico_sdk::view::*;

use crate::AppState;
use crate::profiles::{Mode, Profile};
use crate::tenants::Tenant;
use crate::tickets::Status;
use crate::tickets::Ticket;

/// Path of the script that keeps tracking pages live.
pub const LIVE_SCRIPT: &str = "/portal/assets/live.js";
/// Path of the script that enhances the booking page (which works without it).
pub const BOOKING_SCRIPT: &str = "/portal/assets/booking.js";

pub fn format_time(at: jiff::Timestamp, time_zone: &str, language: &str) -> String {
    let tz = jiff::tz::TimeZone::get(time_zone).unwrap_or(jiff::tz::TimeZone::UTC);
    let pattern = match language {
        "de" => "%d.%m.%Y %H:%M",
        "es" => "%d/%m/%Y %H:%M",
        _ => "%Y-%m-%d %H:%M",
    };
    at.to_zoned(tz).strftime(pattern).to_string()
}

/// Windows grouped by local day, labelled in `language` (`weekday_1` … `weekday_7` name the
/// days), those of custom intervals with the interval's name. A label repeated on a fall-back
/// night carries the UTC offset to tell the two apart.
pub fn days(
    slots: &[portico_sdk::schedule::Slot],
    intervals: &[portico_sdk::schedule::Interval],
    tz: &jiff::tz::TimeZone,
    language: &str,
    texts: &HashMap<String, String>,
) -> Vec<DayView> {
    let date_pattern = match language {
        "de" => "%d.%m.%Y",
        "es" => "%d/%m/%Y",
        _ => "%Y-%m-%d",
    };
    let local = |ms: i64| {
        jiff::Timestamp::from_millisecond(ms)
            .unwrap_or_default()
            .to_zoned(tz.clone())
    };
    let mut days: Vec<DayView> = Vec::new();
    let mut current_date = None;
    for slot in slots {
        let (start, end) = (local(slot.window.start), local(slot.window.end));
        if current_date != Some(start.date()) {
            current_date = Some(start.date());
            let weekday = texts
                .get(&format!(
                    "weekday_{}",
                    start.weekday().to_monday_one_offset()
                ))
                .cloned()
                .unwrap_or_default();
            days.push(DayView {
                label: format!("{weekday}, {}", start.strftime(date_pattern)),
                windows: Vec::new(),
            });
        }
        let mut label = format!("{}–{}", start.strftime("%H:%M"), end.strftime("%H:%M"));
        let day = days.last_mut().expect("a day was pushed");
        if day.windows.iter().any(|w| w.label == label) {
            label = format!("{label} ({})", start.strftime("%:z"));
        }
        // A custom interval is offered under its name.
        if let Some(interval) = intervals.iter().find(|i| i.window == slot.window) {
            label = format!("{} {label}", interval.name);
        }
        day.windows.push(WindowOption {
            value: format!("{}-{}", slot.window.start, slot.window.end),
            label,
        });
    }
    days
}

/// Booking is offered until the technician is on the way.
pub fn booking_allowed(profile: &Profile, ticket: &Ticket) -> bool {
    profile.mode == Mode::Booking && ticket.status < Status::OnRoute
}

/// Feedback is asked for once the visit is completed, once.
pub fn feedback_allowed(profile: &Profile, ticket: &Ticket) -> bool {
    profile.feedback && ticket.status >= Status::Completed && ticket.feedback.is_none()
}

pub async fn ticket_view(
    state: &AppState,
    tenant: &Tenant,
    ticket: &Ticket,
    texts: &HashMap<String, String>,
    language: &str,
) -> TicketView {
    let text = |key: &str| texts.get(key).cloned().unwrap_or_else(|| key.to_string());
    let time = |at: jiff::Timestamp| format_time(at, &tenant.time_zone, language);
    let steps = Status::ALL
        .iter()
        .map(|&status| {
            let at = ticket
                .timeline
                .iter()
                .rev()
                .find(|s| s.status == status)
                .map(|s| time(s.at));
            StepView {
                status: status.as_str().to_string(),
                label: text(status.as_str()),
                reached: at.is_some(),
                at,
                current: status == ticket.status,
            }
        })
        .collect();
    let on_the_way = matches!(ticket.status, Status::OnRoute | Status::Arrived);
    let technician = match (&ticket.technician_id, on_the_way) {
        (Some(id), true) => crate::auth::find_user(&state.db.pool, &tenant.id, id)
            .await
            .ok()
            .map(|u| u.display_name),
        _ => None,
    };
    let visit = on_the_way.then(|| VisitView {
        technician: technician.unwrap_or_default(),
        eta: ticket.eta.map(time).unwrap_or_default(),
        position: ticket
            .position
            .as_ref()
            .map(|p| format!("{:.5}, {:.5}", p.latitude, p.longitude))
            .unwrap_or_default(),
    });
    TicketView {
        number: ticket.number,
        title: ticket.title.clone(),
        status: ticket.status.as_str().to_string(),
        status_label: text(ticket.status.as_str()),
        steps,
        visit,
        appointment: ticket.appointment.as_ref().map(|a| Window {
            start: time(a.start),
            end: time(a.end),
        }),
        notices: ticket
            .notices
            .iter()
            .rev()
            .map(|n| NoticeView {
                text: n.text.clone(),
                at: time(n.at),
            })
            .collect(),
    }
}

/// The profile's greeting in the page's language (or the translated default) with the
/// contact's name filled in.
pub fn salutation(
    profile: &Profile,
    language: &str,
    texts: &HashMap<String, String>,
    ticket: &Ticket,
) -> String {
    let own = profile.texts_in(language).salutation;
    let template = if own.is_empty() {
        texts.get("salutation").map(String::as_str).unwrap_or("")
    } else {
        own.as_str()
    };
    template
        .replace("{first_name}", &ticket.contact.first_name)
        .replace("{last_name}", &ticket.contact.last_name)
}

#[cfg(test)]
mod tests {
    use portico_sdk::schedule::{Interval, Slot};
    use portico_sdk::time::Window;

    use super::*;

    fn slot(start: &str, minutes: i64) -> Slot {
        let start = start.parse::<jiff::Timestamp>().unwrap().as_millisecond();
        Slot {
            window: Window {
                start,
                end: start + minutes * 60_000,
            },
            capacity_left: 1,
        }
    }

    #[test]
    fn windows_are_grouped_by_local_day_and_named() {
        let tz = jiff::tz::TimeZone::get("Europe/Berlin").unwrap();
        let texts: HashMap<String, String> = [("weekday_7", "Sonntag"), ("weekday_1", "Montag")]
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .into();
        // The fall-back night has 02:00–02:30 twice; Monday has a named interval.
        let slots = [
            slot("2026-10-25T00:00:00Z", 30),
            slot("2026-10-25T01:00:00Z", 30),
            slot("2026-10-26T07:00:00Z", 240),
        ];
        let morning = Interval {
            name: "Vormittag".into(),
            window: slots[2].window,
            capacity: 2,
        };
        let days = days(&slots, &[morning], &tz, "de", &texts);
        assert_eq!(days[0].label, "Sonntag, 25.10.2026");
        let labels: Vec<&str> = days[0].windows.iter().map(|w| w.label.as_str()).collect();
        assert_eq!(labels, ["02:00–02:30", "02:00–02:30 (+01:00)"]);
        assert_eq!(days[1].label, "Montag, 26.10.2026");
        assert_eq!(days[1].windows[0].label, "Vormittag 08:00–12:00");
    }
}
