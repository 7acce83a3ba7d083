//! Appointment windows as plain Rust: the data of the `slot-calculator` world (`plugin@0.2.0`)
//! and the standard algorithm over it.
//!
//! These types do not depend on the plugin bindings, so the host uses them too: to build the
//! request it hands a calculator, to check what comes back, and to run the standard algorithm
//! natively in benchmarks beside the plugin.

use serde::{Deserialize, Serialize};

use crate::time::{MINUTE_MS, Window};

/// A fixed window of custom-interval rules on one day.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct Interval {
    /// The interval's name, such as `Morning`.
    pub name: String,
    /// When it is on this day.
    pub window: Window,
    /// Bookings allowed in it.
    pub capacity: u32,
}

/// One local calendar day, resolved by the host in the rule set's time zone.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct Day {
    /// `YYYY-MM-DD`.
    pub date: String,
    /// 1 = Monday … 7 = Sunday.
    pub weekday: u8,
    /// Local midnight, and the next one.
    pub span: Window,
    /// Business hours (SLA rules): merged, sorted, closures removed.
    #[serde(default)]
    pub open: Vec<Window>,
    /// Custom intervals (interval rules), sorted.
    #[serde(default)]
    pub intervals: Vec<Interval>,
    /// Whether windows may be offered on this day.
    pub offerable: bool,
}

/// Rules of a service-level agreement; durations are minutes of elapsed time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct SlaRules {
    /// Business minutes after creation before the first window may start.
    pub response_minutes: u32,
    /// Business minutes after creation by which a window must start.
    #[serde(default)]
    pub deadline_minutes: Option<u32>,
    /// A window is offered only if a visit starting at its start ends by closing time.
    pub visit_minutes: u32,
    /// Length of an arrival window.
    pub window_minutes: u32,
    /// Distance between window starts (at least the window length).
    pub step_minutes: u32,
    /// Time kept free around each booking.
    #[serde(default)]
    pub buffer_minutes: u32,
    /// Bookings allowed per window.
    pub capacity: u32,
}

/// How windows are computed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Rules {
    /// From an SLA profile and the days' business hours.
    Sla(SlaRules),
    /// From the days' custom intervals.
    Intervals,
}

/// Everything a calculation may use.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
pub struct Request {
    /// The rules to apply.
    pub rules: Rules,
    /// Bookings allowed per local day, if capped.
    #[serde(default)]
    pub max_per_day: Option<u32>,
    /// Facts about the ticket.
    #[serde(default)]
    pub ticket: serde_json::Value,
    /// When the ticket was created (ms).
    pub created_at: i64,
    /// The current instant (ms).
    pub now: i64,
    /// No window may start before this instant (now plus the minimum notice).
    pub not_before: i64,
    /// IANA name of the rule set's time zone.
    pub time_zone: String,
    /// The days from the ticket's creation (or today) to the end of the horizon.
    pub days: Vec<Day>,
    /// Existing bookings that use capacity.
    #[serde(default)]
    pub bookings: Vec<Window>,
}

/// A window the end user may book.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct Slot {
    /// When.
    #[serde(flatten)]
    pub window: Window,
    /// How many more bookings fit.
    pub capacity_left: u32,
}

/// The instant at which `minutes` of business time (the days' `open` ranges) have passed since
/// `from`; `None` when the days end first.
pub fn business_instant(days: &[Day], from: i64, minutes: u32) -> Option<i64> {
    let mut left = i64::from(minutes) * MINUTE_MS;
    if left == 0 {
        return Some(from);
    }
    for range in days.iter().flat_map(|d| &d.open) {
        let start = range.start.max(from);
        if start >= range.end {
            continue;
        }
        if range.end - start >= left {
            return Some(start + left);
        }
        left -= range.end - start;
    }
    None
}

/// Bookings that use the capacity of `window`: those closer to it than `buffer_ms`.
pub fn used(bookings: &[Window], window: &Window, buffer_ms: i64) -> u32 {
    let reach = Window {
        start: window.start - buffer_ms,
        end: window.end + buffer_ms,
    };
    bookings.iter().filter(|b| b.overlaps(&reach)).count() as u32
}

/// Bookings sorted by start, to count those near a window without reading them all: a request
/// may carry thousands.
struct Occupancy {
    sorted: Vec<Window>,
    /// The longest booking: one that starts earlier than this before a window cannot reach it.
    longest: i64,
}

impl Occupancy {
    fn new(bookings: &[Window]) -> Self {
        let mut sorted = bookings.to_vec();
        sorted.sort();
        let longest = sorted.iter().map(|b| b.end - b.start).max().unwrap_or(0);
        Self { sorted, longest }
    }

    /// [`used`], in logarithmic time plus the bookings that come near.
    fn used(&self, window: &Window, buffer_ms: i64) -> u32 {
        let reach = Window {
            start: window.start - buffer_ms,
            end: window.end + buffer_ms,
        };
        let from = self
            .sorted
            .partition_point(|b| b.start <= reach.start - self.longest);
        let to = self.sorted.partition_point(|b| b.start < reach.end);
        self.sorted[from..to.max(from)]
            .iter()
            .filter(|b| b.overlaps(&reach))
            .count() as u32
    }

    /// Bookings that start within `span`.
    fn starting_in(&self, span: &Window) -> u64 {
        let from = self.sorted.partition_point(|b| b.start < span.start);
        let to = self.sorted.partition_point(|b| b.start < span.end);
        to.saturating_sub(from) as u64
    }
}

/// The standard algorithm:
///
/// - **Intervals**: each offerable day's intervals, with their capacity.
/// - **SLA**: in each range of business hours of an offerable day, windows of `window_minutes`
///   every `step_minutes` from the range's start, as long as the window and a visit starting
///   with it end by the range's end. A window starts no earlier than `response_minutes` of
///   business time after the ticket was created and, with a deadline, no later than
///   `deadline_minutes` of it.
/// - Then for both: no window starts before `not_before`; a window's capacity is reduced by the
///   bookings within the buffer of it, and full windows are left out; a day with `max_per_day`
///   bookings (starting that day) offers nothing more.
pub fn standard_slots(request: &Request) -> Result<Vec<Slot>, String> {
    let mut candidates: Vec<(Window, u32)> = Vec::new();
    let offerable = request.days.iter().filter(|d| d.offerable);
    let mut buffer_ms = 0;
    match &request.rules {
        Rules::Intervals => {
            for day in offerable {
                candidates.extend(day.intervals.iter().map(|i| (i.window, i.capacity)));
            }
        }
        Rules::Sla(sla) => {
            if sla.window_minutes == 0 || sla.step_minutes < sla.window_minutes {
                return Err(
                    "window-minutes must be positive and step-minutes at least as long".into(),
                );
            }
            buffer_ms = i64::from(sla.buffer_minutes) * MINUTE_MS;
            let Some(earliest) =
                business_instant(&request.days, request.created_at, sla.response_minutes)
            else {
                return Ok(Vec::new());
            };
            let latest = sla
                .deadline_minutes
                .and_then(|m| deadline(&request.days, request.created_at, m))
                .unwrap_or(i64::MAX);
            let window_ms = i64::from(sla.window_minutes) * MINUTE_MS;
            let step_ms = i64::from(sla.step_minutes) * MINUTE_MS;
            let visit_ms = i64::from(sla.visit_minutes) * MINUTE_MS;
            for range in offerable.flat_map(|d| &d.open) {
                let mut start = range.start;
                while start + window_ms.max(visit_ms) <= range.end {
                    if (earliest..=latest).contains(&start) {
                        let window = Window {
                            start,
                            end: start + window_ms,
                        };
                        candidates.push((window, sla.capacity));
                    }
                    start += step_ms;
                }
            }
        }
    }
    let occupancy = Occupancy::new(&request.bookings);
    let full_days: Vec<Window> = match request.max_per_day {
        Some(cap) => request
            .days
            .iter()
            .filter(|d| occupancy.starting_in(&d.span) >= u64::from(cap))
            .map(|d| d.span)
            .collect(),
        None => Vec::new(),
    };
    let mut slots: Vec<Slot> = candidates
        .into_iter()
        .filter(|(w, _)| w.start >= request.not_before && w.start >= request.now)
        .filter(|(w, _)| !full_days.iter().any(|d| d.contains(w.start)))
        .filter_map(|(window, capacity)| {
            let left = capacity.saturating_sub(occupancy.used(&window, buffer_ms));
            (left > 0).then_some(Slot {
                window,
                capacity_left: left,
            })
        })
        .collect();
    slots.sort_by_key(|s| s.window);
    slots.dedup_by_key(|s| s.window);
    slots.truncate(MAX_WINDOWS);
    Ok(slots)
}

/// Most windows one calculation may offer; the standard algorithm offers the earliest ones.
pub const MAX_WINDOWS: usize = 5_000;

/// What every window of one request is checked against.
struct Bounds<'a> {
    offerable: Vec<&'a Day>,
    occupancy: Occupancy,
    horizon: Window,
    buffer_ms: i64,
    /// The response rule and the deadline (SLA rules).
    earliest: i64,
    latest: i64,
}

impl<'a> Bounds<'a> {
    fn of(request: &'a Request) -> Option<Self> {
        let offerable: Vec<&Day> = request.days.iter().filter(|d| d.offerable).collect();
        let horizon = Window {
            start: offerable.first()?.span.start,
            end: offerable.last()?.span.end,
        };
        let (buffer_ms, earliest, latest) = match request.rules {
            Rules::Sla(sla) => (
                i64::from(sla.buffer_minutes) * MINUTE_MS,
                business_instant(&request.days, request.created_at, sla.response_minutes)
                    .unwrap_or(i64::MAX),
                sla.deadline_minutes
                    .and_then(|m| deadline(&request.days, request.created_at, m))
                    .unwrap_or(i64::MAX),
            ),
            Rules::Intervals => (0, i64::MIN, i64::MAX),
        };
        Some(Self {
            occupancy: Occupancy::new(&request.bookings),
            offerable,
            horizon,
            buffer_ms,
            earliest,
            latest,
        })
    }

    /// The places the rules leave in `w`, or why it may not be offered at all.
    fn places(&self, request: &Request, w: &Window) -> Result<u32, String> {
        let fail = |problem: &str| Err(format!("window {}–{}: {problem}", w.start, w.end));
        if w.start >= w.end {
            return fail("it does not start before it ends");
        }
        if w.start < self.horizon.start || w.end > self.horizon.end {
            return fail("it is outside the days that may be offered");
        }
        if w.start < request.now {
            return fail("it starts in the past");
        }
        if w.start < request.not_before {
            return fail("it starts inside the minimum notice");
        }
        let capacity = match request.rules {
            Rules::Sla(sla) => {
                let window_ms = i64::from(sla.window_minutes) * MINUTE_MS;
                if w.end - w.start != window_ms {
                    return fail("it is not as long as the rules' windows");
                }
                // The visit, if longer than the window, must also end by closing.
                let busy_until = w.start + window_ms.max(i64::from(sla.visit_minutes) * MINUTE_MS);
                let open = self.offerable.iter().flat_map(|d| &d.open);
                if !open
                    .into_iter()
                    .any(|r| r.start <= w.start && busy_until <= r.end)
                {
                    return fail("it is not within business hours");
                }
                if w.start < self.earliest || w.start > self.latest {
                    return fail("it is outside the response time or the deadline");
                }
                sla.capacity
            }
            Rules::Intervals => match self
                .offerable
                .iter()
                .flat_map(|d| &d.intervals)
                .find(|i| i.window == *w)
            {
                Some(interval) => interval.capacity,
                None => return fail("it is not one of the day's intervals"),
            },
        };
        if let Some(cap) = request.max_per_day
            && let Some(day) = self.offerable.iter().find(|d| d.span.contains(w.start))
            && self.occupancy.starting_in(&day.span) >= u64::from(cap)
        {
            return fail("its day is fully booked");
        }
        Ok(capacity.saturating_sub(self.occupancy.used(w, self.buffer_ms)))
    }
}

/// The deadline: like [`business_instant`], but business time that ends exactly at closing
/// reaches on to the next opening, which is the same business time.
fn deadline(days: &[Day], from: i64, minutes: u32) -> Option<i64> {
    let mut left = i64::from(minutes) * MINUTE_MS;
    for range in days.iter().flat_map(|d| &d.open) {
        let start = range.start.max(from);
        if start >= range.end {
            continue;
        }
        if range.end - start > left {
            return Some(start + left);
        }
        left -= range.end - start;
    }
    None
}

/// Checks windows a calculator returned for `request`, as the host does before it shows or
/// books any: no more than [`MAX_WINDOWS`]; each starts before it ends; sorted by start, with
/// no overlaps or duplicates; inside the offerable days; not before `now` or `not_before`; for
/// SLA rules within business hours and the response time and deadline, for interval rules one of
/// the day's intervals; at least one place left and no more than the rules leave once existing
/// bookings are counted; nothing on a day that is fully booked under `max_per_day`. A calculator
/// may offer fewer windows or places, never more. The error names the first window at fault.
pub fn check(request: &Request, slots: &[Slot]) -> Result<(), String> {
    if slots.len() > MAX_WINDOWS {
        return Err(format!(
            "{} windows, more than the {MAX_WINDOWS} allowed",
            slots.len()
        ));
    }
    let Some(bounds) = Bounds::of(request) else {
        return match slots.is_empty() {
            true => Ok(()),
            false => Err("windows offered, but no day is offerable".into()),
        };
    };
    let mut previous: Option<&Window> = None;
    for slot in slots {
        let w = &slot.window;
        let at = |problem: &str| Err(format!("window {}–{}: {problem}", w.start, w.end));
        if let Some(p) = previous
            && p.end > w.start
        {
            return at(if p == w {
                "it is offered twice"
            } else if p.start > w.start {
                "the windows are not sorted by start"
            } else {
                "it overlaps the window before it"
            });
        }
        previous = Some(w);
        let left = bounds.places(request, w)?;
        if slot.capacity_left == 0 || slot.capacity_left > left {
            return at(&format!(
                "it claims {} places left where the rules leave {left}",
                slot.capacity_left
            ));
        }
    }
    Ok(())
}

/// The windows of a calculator built against `plugin@0.1.0`, which knows nothing of closures,
/// buffers, caps or the response rule as 0.2.0 states them: each window that [`check`] would
/// refuse is left out instead (places are cut to what the rules leave), and of overlapping
/// windows the earlier stays. What remains passes [`check`].
pub fn keep_valid(request: &Request, mut slots: Vec<Slot>) -> Vec<Slot> {
    let Some(bounds) = Bounds::of(request) else {
        return Vec::new();
    };
    slots.sort_by_key(|s| s.window);
    let mut kept: Vec<Slot> = Vec::new();
    for mut slot in slots {
        let Ok(left) = bounds.places(request, &slot.window) else {
            continue;
        };
        slot.capacity_left = slot.capacity_left.min(left);
        let overlaps = kept
            .last()
            .is_some_and(|k| k.window.end > slot.window.start);
        if slot.capacity_left > 0 && !overlaps {
            kept.push(slot);
        }
    }
    kept.truncate(MAX_WINDOWS);
    kept
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOUR: i64 = 60 * MINUTE_MS;

    fn day(date: &str, start: i64, open: &[(i64, i64)]) -> Day {
        Day {
            date: date.into(),
            weekday: 1,
            span: Window {
                start,
                end: start + 24 * HOUR,
            },
            open: open
                .iter()
                .map(|&(s, e)| Window {
                    start: start + s * HOUR,
                    end: start + e * HOUR,
                })
                .collect(),
            intervals: Vec::new(),
            offerable: true,
        }
    }

    fn sla(window: u32, step: u32) -> SlaRules {
        SlaRules {
            response_minutes: 0,
            deadline_minutes: None,
            visit_minutes: 60,
            window_minutes: window,
            step_minutes: step,
            buffer_minutes: 0,
            capacity: 2,
        }
    }

    fn request(rules: SlaRules, days: Vec<Day>) -> Request {
        Request {
            rules: Rules::Sla(rules),
            max_per_day: None,
            ticket: serde_json::Value::Null,
            created_at: 0,
            now: 0,
            not_before: 0,
            time_zone: "UTC".into(),
            days,
            bookings: Vec::new(),
        }
    }

    #[test]
    fn the_last_window_of_a_range_is_offered_when_it_fits() {
        let r = request(
            sla(120, 120),
            vec![day("1970-01-01", 0, &[(8, 12), (13, 17)])],
        );
        let starts: Vec<i64> = standard_slots(&r)
            .unwrap()
            .iter()
            .map(|s| s.window.start / HOUR)
            .collect();
        assert_eq!(starts, vec![8, 10, 13, 15]);
    }

    #[test]
    fn response_time_counts_business_hours_only() {
        let mut r = request(
            sla(60, 60),
            vec![
                day("1970-01-01", 0, &[(8, 12)]),
                day("1970-01-02", 24 * HOUR, &[(8, 12)]),
            ],
        );
        r.rules = Rules::Sla(SlaRules {
            response_minutes: 6 * 60,
            ..sla(60, 60)
        });
        r.created_at = 9 * HOUR;
        // 3 hours on the first day, 3 on the second: the first window starts at 11:00.
        assert_eq!(standard_slots(&r).unwrap()[0].window.start, 35 * HOUR);
    }

    #[test]
    fn bookings_within_the_buffer_use_capacity_and_full_days_offer_nothing() {
        let mut r = request(
            SlaRules {
                buffer_minutes: 30,
                capacity: 1,
                ..sla(60, 60)
            },
            vec![day("1970-01-01", 0, &[(8, 12)])],
        );
        r.bookings = vec![Window {
            start: 9 * HOUR + 30 * MINUTE_MS,
            end: 10 * HOUR + 30 * MINUTE_MS,
        }];
        let starts: Vec<i64> = standard_slots(&r)
            .unwrap()
            .iter()
            .map(|s| s.window.start / MINUTE_MS)
            .collect();
        // 09:30–10:30 with 30 minutes either side reaches into 09:00 and 10:00, not 08:00 or 11:00.
        assert_eq!(starts, vec![8 * 60, 11 * 60]);
        r.max_per_day = Some(1);
        assert!(standard_slots(&r).unwrap().is_empty());
    }

    #[test]
    fn the_standard_windows_pass_the_check_and_bad_ones_do_not() {
        let r = request(sla(60, 60), vec![day("1970-01-01", 0, &[(8, 12)])]);
        let good = standard_slots(&r).unwrap();
        assert_eq!(check(&r, &good), Ok(()));
        let with = |f: &dyn Fn(&mut Vec<Slot>)| {
            let mut slots = good.clone();
            f(&mut slots);
            check(&r, &slots).unwrap_err()
        };
        assert!(with(&|s| s.swap(0, 1)).contains("not sorted"));
        assert!(with(&|s| s[1] = s[0]).contains("twice"));
        assert!(with(&|s| s[1].window.start -= 1).contains("overlaps"));
        assert!(with(&|s| s[0].window.end = s[0].window.start).contains("does not start before"));
        assert!(with(&|s| s[0].capacity_left = 3).contains("places left"));
        // Shorter windows would multiply the places an hour holds.
        assert!(with(&|s| s[0].window.end -= MINUTE_MS).contains("as long as"));
        assert!(
            with(&|s| s.push(Slot {
                window: Window {
                    start: 30 * HOUR,
                    end: 31 * HOUR
                },
                capacity_left: 1
            }))
            .contains("outside")
        );
    }

    #[test]
    fn windows_outside_business_hours_or_the_deadline_are_refused() {
        let mut r = request(
            sla(60, 60),
            vec![day("1970-01-01", 0, &[(8, 12), (13, 15)])],
        );
        let lunch = Slot {
            window: Window {
                start: 12 * HOUR,
                end: 13 * HOUR,
            },
            capacity_left: 1,
        };
        assert!(check(&r, &[lunch]).unwrap_err().contains("business hours"));
        // A two-hour visit in a one-hour window must also end by closing.
        let long_visits = request(
            SlaRules {
                visit_minutes: 120,
                ..sla(60, 60)
            },
            vec![day("1970-01-01", 0, &[(8, 12)])],
        );
        let last = Slot {
            window: Window {
                start: 11 * HOUR,
                end: 12 * HOUR,
            },
            capacity_left: 1,
        };
        assert!(
            check(&long_visits, &[last])
                .unwrap_err()
                .contains("business hours")
        );
        // A deadline of four business hours ends at 12:00 closing: it reaches to 13:00.
        r.rules = Rules::Sla(SlaRules {
            deadline_minutes: Some(4 * 60),
            ..sla(60, 60)
        });
        let starts: Vec<i64> = standard_slots(&r)
            .unwrap()
            .iter()
            .map(|s| s.window.start / HOUR)
            .collect();
        assert_eq!(starts, vec![8, 9, 10, 11, 13]);
        let late = Slot {
            window: Window {
                start: 14 * HOUR,
                end: 15 * HOUR,
            },
            capacity_left: 1,
        };
        assert!(check(&r, &[late]).unwrap_err().contains("deadline"));
        assert_eq!(keep_valid(&r, vec![late, lunch]), vec![]);
    }

    #[test]
    fn the_sorted_count_agrees_with_the_plain_one() {
        let mut seed: i64 = 17;
        let mut next = |modulo: i64| {
            seed = (seed * 1_103_515_245 + 12_345) % 2_147_483_648;
            seed % modulo
        };
        let bookings: Vec<Window> = (0..500)
            .map(|_| {
                let start = next(1_000) * MINUTE_MS;
                Window {
                    start,
                    end: start + (1 + next(240)) * MINUTE_MS,
                }
            })
            .collect();
        let occupancy = Occupancy::new(&bookings);
        for _ in 0..300 {
            let start = next(1_200) * MINUTE_MS;
            let window = Window::from_minutes(start, 1 + next(120) as u32);
            let buffer = next(60) * MINUTE_MS;
            assert_eq!(
                occupancy.used(&window, buffer),
                used(&bookings, &window, buffer)
            );
            let span = Window::from_minutes(start, 600);
            let plain = bookings.iter().filter(|b| span.contains(b.start)).count() as u64;
            assert_eq!(occupancy.starting_in(&span), plain);
        }
    }

    #[test]
    fn nothing_starts_before_the_notice() {
        let mut r = request(sla(60, 60), vec![day("1970-01-01", 0, &[(8, 12)])]);
        r.not_before = 10 * HOUR;
        assert_eq!(standard_slots(&r).unwrap()[0].window.start, 10 * HOUR);
    }
}
