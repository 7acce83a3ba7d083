//! The booked appointment as an iCalendar file (RFC 5545), for the end user's calendar. Times
//! are in UTC, which every calendar converts to its own zone; the tenant's zone is named in the
//! description's time and in `X-WR-TIMEZONE` for calendars that show it.

use chrono::{DateTime, Utc};
use icalendar::{Calendar, Component, Event, EventLike};

/// What the file says.
pub struct Appointment<'a> {
    /// Stable per ticket, so a changed appointment replaces the old one in the calendar.
    pub uid: &'a str,
    pub start: jiff::Timestamp,
    pub end: jiff::Timestamp,
    pub summary: &'a str,
    pub description: &'a str,
    /// Incremented with every change, as calendars expect of an updated event.
    pub sequence: u32,
    pub time_zone: &'a str,
}

fn utc(at: jiff::Timestamp) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(at.as_millisecond()).unwrap_or_default()
}

pub fn calendar(appointment: &Appointment<'_>) -> String {
    let mut event = Event::new();
    event
        .uid(appointment.uid)
        .summary(appointment.summary)
        .description(appointment.description)
        .starts(utc(appointment.start))
        .ends(utc(appointment.end))
        .sequence(appointment.sequence);
    let mut calendar = Calendar::new();
    calendar
        .append_property(icalendar::Property::new(
            "X-WR-TIMEZONE",
            appointment.time_zone,
        ))
        .push(event.done());
    calendar.done().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_calendar_parser_reads_the_appointment_back() {
        let start: jiff::Timestamp = "2026-12-01T08:00:00Z".parse().unwrap();
        let end: jiff::Timestamp = "2026-12-01T10:00:00Z".parse().unwrap();
        let text = calendar(&Appointment {
            uid: "ticket-1@portico",
            start,
            end,
            summary: "Visit: printer, ticket #7",
            description: "Between 09:00 and 11:00 (Europe/Berlin)",
            sequence: 2,
            time_zone: "Europe/Berlin",
        });
        assert!(text.contains("DTSTART:20261201T080000Z"), "{text}");
        let unfolded = icalendar::parser::unfold(&text);
        let parsed = icalendar::parser::read_calendar(&unfolded).unwrap();
        let calendar: Calendar = parsed.into();
        let event = calendar.components[0].as_event().unwrap();
        assert_eq!(event.get_summary(), Some("Visit: printer, ticket #7"));
        assert!(event.get_start().is_some() && event.get_end().is_some());
    }
}
