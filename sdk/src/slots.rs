//! Appointment-slot calculators.

use crate::Json;
pub use crate::bindings::exports::portico::plugin::slots::{
    Booking, IntervalRule, LocalDay, Opening, Rules, SlaProfile, Slot, SlotRequest,
};
pub use crate::bindings::portico::plugin::types::TimeWindow;
use crate::time::{MINUTE_MS, Window};

/// Computes the windows an end user may book.
///
/// The default [`SlotCalculator::calculate`] is the standard algorithm: interval rules offer
/// their windows on matching weekdays; an SLA profile offers consecutive windows within working
/// hours once its response time (counted in working time) has passed. Windows in the past or
/// without capacity left are dropped. A calculator can override [`SlotCalculator::accept`] to
/// filter windows, or `calculate` to replace the algorithm.
///
/// ```ignore
/// use portico_sdk::{Json, Slot, SlotCalculator, SlotRequest, register_slot_calculator};
///
/// /// The standard windows, but never on Fridays.
/// struct NoFridays;
///
/// impl SlotCalculator for NoFridays {
///     fn accept(request: &SlotRequest, slot: &Slot, _config: &Json) -> bool {
///         request.days.iter().any(|d| d.weekday != 5 && d.midnight <= slot.window.start
///             && slot.window.start < d.midnight + i64::from(d.length_minutes) * 60_000)
///     }
/// }
///
/// register_slot_calculator!(NoFridays);
/// ```
pub trait SlotCalculator {
    /// Whether to offer a window the standard algorithm found. All by default.
    fn accept(request: &SlotRequest, slot: &Slot, config: &Json) -> bool {
        let _ = (request, slot, config);
        true
    }

    /// Computes the bookable windows, earliest first.
    fn calculate(request: SlotRequest, config: Json) -> Result<Vec<Slot>, String> {
        let slots = standard_slots(&request)?;
        Ok(slots
            .into_iter()
            .filter(|s| Self::accept(&request, s, &config))
            .collect())
    }
}

/// The standard algorithm described on [`SlotCalculator`].
pub fn standard_slots(request: &SlotRequest) -> Result<Vec<Slot>, String> {
    let openings = |weekday: u8, list: &[Opening]| -> Vec<Opening> {
        list.iter()
            .filter(|o| o.weekday == weekday)
            .copied()
            .collect()
    };
    let mut candidates: Vec<(Window, u32)> = Vec::new();
    match &request.rules {
        Rules::Intervals(rules) => {
            for day in &request.days {
                for rule in rules.iter().filter(|r| r.opening.weekday == day.weekday) {
                    candidates.push((opening_window(day, &rule.opening), rule.capacity));
                }
            }
        }
        Rules::Sla(profile) => {
            if profile.window_minutes == 0 {
                return Err("window-minutes must be positive".into());
            }
            let mut response_left = i64::from(profile.response_minutes) * MINUTE_MS;
            for day in &request.days {
                for opening in openings(day.weekday, &profile.working_hours) {
                    let hours = opening_window(day, &opening);
                    // Working time before now does not count towards the response time.
                    let from = hours.start.max(request.now);
                    if from >= hours.end {
                        continue;
                    }
                    let usable = hours.end - from;
                    let earliest = if response_left >= usable {
                        response_left -= usable;
                        continue;
                    } else {
                        let start = from + response_left;
                        response_left = 0;
                        start
                    };
                    for window in hours.split(profile.window_minutes) {
                        if window.start >= earliest {
                            candidates.push((window, profile.capacity));
                        }
                    }
                }
            }
        }
    }
    let mut slots: Vec<Slot> = candidates
        .into_iter()
        .filter(|(w, _)| w.start >= request.now)
        .filter_map(|(w, capacity)| {
            let used = request
                .bookings
                .iter()
                .filter(|b| {
                    Window {
                        start: b.window.start,
                        end: b.window.end,
                    }
                    .overlaps(&w)
                })
                .count() as u32;
            let left = capacity.saturating_sub(used);
            (left > 0).then_some(Slot {
                window: TimeWindow {
                    start: w.start,
                    end: w.end,
                },
                capacity_left: left,
            })
        })
        .collect();
    slots.sort_by_key(|s| s.window.start);
    Ok(slots)
}

fn opening_window(day: &LocalDay, opening: &Opening) -> Window {
    let at = |minute: u16| day.midnight + i64::from(minute) * MINUTE_MS;
    Window {
        start: at(opening.start_minute),
        end: at(opening.end_minute),
    }
}

/// Registers the type implementing [`SlotCalculator`] as this component's export.
#[macro_export]
macro_rules! register_slot_calculator {
    ($plugin:ty) => {
        struct __PorticoExport;
        impl $crate::bindings::exports::portico::plugin::slots::Guest for __PorticoExport {
            fn calculate(
                request: $crate::SlotRequest,
                config: String,
            ) -> Result<Vec<$crate::Slot>, String> {
                <$plugin as $crate::SlotCalculator>::calculate(
                    request,
                    $crate::parse_config(&config),
                )
            }
        }
        $crate::bindings::__export_plugin!(__PorticoExport);
    };
}
