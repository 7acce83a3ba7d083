//! The local days a calculator gets: business hours and intervals resolved to instants in the
//! rule set's time zone, closures removed, daylight-saving changes included, and the horizon
//! counted. This is where every time-zone computation of booking happens.
//!
//! A wall-clock time that does not exist (inside a spring-forward gap) is taken as the instant
//! the clocks jump (02:30 on a night that skips from 02:00 to 03:00 is 03:00); one that occurs
//! twice (a fall-back night) as its first occurrence. Ranges are then elapsed time: a range from
//! 00:00 to 04:00 on a fall-back night lasts five hours.

use jiff::civil::Date;
use jiff::tz::{AmbiguousOffset, TimeZone};
use portico_sdk::schedule::{Day, Interval};
use portico_sdk::time::Window;

use super::model::{ClockTime, Definition, HorizonUnit, Source, Weekday};
use crate::error::{Error, Result};

/// Days before today that are still given for counting business time since creation.
const MAX_DAYS_BACK: i64 = 62;

fn instant(tz: &TimeZone, date: Date, time: ClockTime) -> Result<i64> {
    let date = if time.0 == 24 * 60 {
        date.tomorrow().map_err(internal)?
    } else {
        date
    };
    let clock = jiff::civil::Time::new((time.0 / 60 % 24) as i8, (time.0 % 60) as i8, 0, 0)
        .map_err(internal)?;
    let wall = date.to_datetime(clock);
    let at = match tz.to_ambiguous_timestamp(wall).offset() {
        // Inside a gap: the instant the clocks jump, where the gap ends.
        AmbiguousOffset::Gap { after, .. } => {
            let before_jump = after.to_timestamp(wall).map_err(internal)?;
            tz.following(before_jump)
                .next()
                .map(|t| t.timestamp())
                .ok_or_else(|| {
                    Error::Internal(anyhow::anyhow!("calendar: a gap without a transition"))
                })?
        }
        // Twice (a fall-back night): the first time.
        AmbiguousOffset::Fold { before, .. } => before.to_timestamp(wall).map_err(internal)?,
        AmbiguousOffset::Unambiguous { offset } => offset.to_timestamp(wall).map_err(internal)?,
    };
    Ok(at.as_millisecond())
}

fn internal(e: jiff::Error) -> Error {
    Error::Internal(anyhow::anyhow!("calendar: {e}"))
}

fn midnight(tz: &TimeZone, date: Date) -> Result<i64> {
    Ok(date
        .to_zoned(tz.clone())
        .map_err(internal)?
        .timestamp()
        .as_millisecond())
}

/// Sorts and merges overlapping or touching windows.
fn merged(mut windows: Vec<Window>) -> Vec<Window> {
    windows.sort();
    let mut out: Vec<Window> = Vec::with_capacity(windows.len());
    for w in windows {
        match out.last_mut() {
            Some(last) if w.start <= last.end => last.end = last.end.max(w.end),
            _ => out.push(w),
        }
    }
    out
}

/// The local day of the rule set that holds the instant `at` (milliseconds).
pub fn day_at(definition: &Definition, tz: &TimeZone, at: i64) -> Result<Day> {
    let instant = jiff::Timestamp::from_millisecond(at).map_err(internal)?;
    day(definition, tz, instant.to_zoned(tz.clone()).date())
}

/// One day of the rule set, with `offerable` to be decided by the caller.
fn day(definition: &Definition, tz: &TimeZone, date: Date) -> Result<Day> {
    let weekday = Weekday::of(date);
    let closed = definition.closures.iter().any(|c| c.covers(date));
    let mut open = Vec::new();
    let mut intervals = Vec::new();
    if !closed {
        match &definition.source {
            Source::Sla { business_hours, .. } => {
                for range in business_hours.get(&weekday).into_iter().flatten() {
                    let window = Window {
                        start: instant(tz, date, range.start)?,
                        end: instant(tz, date, range.end)?,
                    };
                    if window.start < window.end {
                        open.push(window);
                    }
                }
                open = merged(open);
            }
            Source::Intervals { intervals: defined } => {
                for interval in defined.iter().filter(|i| i.weekdays.contains(&weekday)) {
                    let window = Window {
                        start: instant(tz, date, interval.start)?,
                        end: instant(tz, date, interval.end)?,
                    };
                    if window.start < window.end {
                        intervals.push(Interval {
                            name: interval.name.clone(),
                            window,
                            capacity: interval.capacity,
                        });
                    }
                }
                intervals.sort_by_key(|i| i.window);
            }
        }
    }
    Ok(Day {
        date: date.to_string(),
        weekday: date.weekday().to_monday_one_offset() as u8,
        span: Window {
            start: midnight(tz, date)?,
            end: midnight(tz, date.tomorrow().map_err(internal)?)?,
        },
        open,
        intervals,
        offerable: false,
    })
}

/// The days from the ticket's creation (at most [`MAX_DAYS_BACK`] before today) to the end of
/// the horizon, which starts today (in the rule set's time zone) and counts calendar days or
/// business days (days with business hours or intervals).
pub fn days(definition: &Definition, tz: &TimeZone, now: i64, created_at: i64) -> Result<Vec<Day>> {
    let date_of = |ms: i64| -> Result<Date> {
        Ok(jiff::Timestamp::from_millisecond(ms)
            .map_err(internal)?
            .to_zoned(tz.clone())
            .date())
    };
    let today = date_of(now)?;
    let earliest = today
        .checked_sub(jiff::Span::new().days(MAX_DAYS_BACK))
        .map_err(internal)?;
    let mut date = date_of(created_at)?.max(earliest).min(today);
    let mut days = Vec::new();
    while date < today {
        days.push(day(definition, tz, date)?);
        date = date.tomorrow().map_err(internal)?;
    }
    let mut counted = 0;
    // Business days may be few: a year of calendar days at most.
    for _ in 0..366 {
        if counted >= definition.horizon.days {
            break;
        }
        let mut d = day(definition, tz, date)?;
        d.offerable = true;
        let business = !(d.open.is_empty() && d.intervals.is_empty());
        if definition.horizon.unit == HorizonUnit::Calendar || business {
            counted += 1;
        }
        days.push(d);
        date = date.tomorrow().map_err(internal)?;
    }
    Ok(days)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::booking::model::{Closure, Horizon, TimeRange};

    fn definition(time_zone: &str, unit: HorizonUnit, days: u16) -> Definition {
        let hours = |s: u16, e: u16| TimeRange {
            start: ClockTime(s * 60),
            end: ClockTime(e * 60),
        };
        let mut business_hours = BTreeMap::new();
        for day in [
            Weekday::Monday,
            Weekday::Tuesday,
            Weekday::Wednesday,
            Weekday::Thursday,
            Weekday::Friday,
            Weekday::Sunday,
        ] {
            business_hours.insert(
                day,
                vec![hours(13, 17), hours(0, 4), hours(8, 12), hours(11, 13)],
            );
        }
        Definition {
            name: "test".into(),
            time_zone: time_zone.into(),
            source: Source::Sla {
                business_hours,
                response_minutes: 0,
                deadline_minutes: None,
                visit_minutes: 60,
                window_minutes: 60,
                step_minutes: None,
                buffer_minutes: 0,
                capacity: 1,
            },
            closures: vec![Closure {
                name: "Christmas".into(),
                from: jiff::civil::date(2020, 12, 24),
                to: Some(jiff::civil::date(2020, 12, 26)),
                yearly: true,
            }],
            notice_minutes: 0,
            horizon: Horizon { days, unit },
            max_per_day: None,
            calculator_install_id: None,
        }
    }

    fn ms(raw: &str) -> i64 {
        raw.parse::<jiff::Timestamp>().unwrap().as_millisecond()
    }

    #[test]
    fn ranges_merge_and_follow_the_clock_change() {
        let d = definition("Europe/Berlin", HorizonUnit::Calendar, 1);
        let tz = TimeZone::get("Europe/Berlin").unwrap();
        // Sunday 2026-10-25: Berlin goes from CEST to CET at 03:00.
        let now = ms("2026-10-24T23:00:00Z");
        let days = days(&d, &tz, now, now).unwrap();
        assert_eq!(days.len(), 1);
        let day = &days[0];
        assert_eq!(day.date, "2026-10-25");
        assert_eq!(
            day.span.end - day.span.start,
            25 * 3_600_000,
            "a 25-hour day"
        );
        // 00:00–04:00 lasts five hours; 08:00–12:00 and 11:00–13:00 and 13:00–17:00 merge.
        assert_eq!(
            day.open[0],
            Window {
                start: ms("2026-10-24T22:00:00Z"),
                end: ms("2026-10-25T03:00:00Z")
            }
        );
        assert_eq!(
            day.open[1],
            Window {
                start: ms("2026-10-25T07:00:00Z"),
                end: ms("2026-10-25T16:00:00Z")
            }
        );
        assert_eq!(day.open.len(), 2);
    }

    #[test]
    fn a_time_inside_the_spring_forward_gap_is_the_jump() {
        let tz = TimeZone::get("Europe/Berlin").unwrap();
        let at = instant(&tz, jiff::civil::date(2026, 3, 29), ClockTime(2 * 60 + 30)).unwrap();
        assert_eq!(at, ms("2026-03-29T01:00:00Z"), "03:00 CEST");
        let twice = instant(&tz, jiff::civil::date(2026, 10, 25), ClockTime(2 * 60 + 30)).unwrap();
        assert_eq!(
            twice,
            ms("2026-10-25T00:30:00Z"),
            "the first 02:30, in summer time"
        );
    }

    #[test]
    fn the_business_day_horizon_skips_closures_and_weekends() {
        let d = definition("America/New_York", HorizonUnit::Business, 3);
        let tz = TimeZone::get("America/New_York").unwrap();
        // Wednesday 2026-12-23, noon in New York.
        let now = ms("2026-12-23T17:00:00Z");
        let days = days(&d, &tz, now, now).unwrap();
        let dates: Vec<(&str, bool)> = days
            .iter()
            .map(|d| (d.date.as_str(), d.open.is_empty()))
            .collect();
        // 23rd (Wed) open; 24th–26th closed (Christmas, yearly); 27th Sunday open; 28th Monday.
        assert_eq!(
            dates,
            vec![
                ("2026-12-23", false),
                ("2026-12-24", true),
                ("2026-12-25", true),
                ("2026-12-26", true),
                ("2026-12-27", false),
                ("2026-12-28", false)
            ]
        );
    }

    #[test]
    fn days_since_creation_are_given_but_not_offerable() {
        let d = definition("UTC", HorizonUnit::Calendar, 2);
        let tz = TimeZone::UTC;
        let now = ms("2026-03-04T10:00:00Z");
        let days = days(&d, &tz, now, ms("2026-03-02T10:00:00Z")).unwrap();
        let offerable: Vec<bool> = days.iter().map(|d| d.offerable).collect();
        assert_eq!(offerable, vec![false, false, true, true]);
    }
}
