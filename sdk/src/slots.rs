//! Appointment-slot calculators (`plugin@0.2.0`).

use crate::Json;
pub use crate::bindings::slots::exports::portico::plugin::slots::{
    Interval, LocalDay, Rules, SlaRules, Slot, SlotRequest,
};
pub use crate::bindings::slots::portico::plugin::types::TimeWindow;
use crate::schedule;
use crate::time::Window;

/// Computes the windows an end user may book.
///
/// The default [`SlotCalculator::calculate`] is the standard algorithm,
/// [`schedule::standard_slots`]. A calculator can override [`SlotCalculator::accept`] to filter
/// its windows, or `calculate` to replace it. Whatever it returns, the host checks: sorted, no
/// overlaps, inside the offered days, not before `not-before`, no more capacity than the rules
/// give. Anything else offers no window at all.
///
/// ```ignore
/// use portico_sdk::{Json, Slot, SlotCalculator, SlotRequest, register_slot_calculator};
///
/// /// The standard windows, but never on Fridays.
/// struct NoFridays;
///
/// impl SlotCalculator for NoFridays {
///     type Config = Json;
///
///     fn accept(request: &SlotRequest, slot: &Slot, _config: &Json) -> bool {
///         request.days.iter().any(|d| d.weekday != 5 && d.start <= slot.window.start
///             && slot.window.start < d.end)
///     }
/// }
///
/// register_slot_calculator!(NoFridays);
/// ```
pub trait SlotCalculator {
    /// The tenant's configuration, which the host has validated against the manifest's
    /// `config_schema`; [`Json`] takes it as it is. A configuration that does not deserialise
    /// fails the calculation with the reason.
    type Config: serde::de::DeserializeOwned;

    /// Whether to offer a window the standard algorithm found. All by default.
    fn accept(request: &SlotRequest, slot: &Slot, config: &Self::Config) -> bool {
        let _ = (request, slot, config);
        true
    }

    /// Computes the bookable windows, earliest first.
    fn calculate(request: SlotRequest, config: Self::Config) -> Result<Vec<Slot>, String> {
        Ok(standard_slots(&request)?
            .into_iter()
            .filter(|s| Self::accept(&request, s, &config))
            .collect())
    }
}

/// The standard algorithm ([`schedule::standard_slots`]) on the WIT's types.
pub fn standard_slots(request: &SlotRequest) -> Result<Vec<Slot>, String> {
    Ok(schedule::standard_slots(&plain(request))?
        .into_iter()
        .map(|s| Slot {
            window: TimeWindow {
                start: s.window.start,
                end: s.window.end,
            },
            capacity_left: s.capacity_left,
        })
        .collect())
}

fn window(w: &TimeWindow) -> Window {
    Window {
        start: w.start,
        end: w.end,
    }
}

/// The request as the plain types of [`schedule`].
pub fn plain(request: &SlotRequest) -> schedule::Request {
    schedule::Request {
        rules: match request.rules {
            Rules::Sla(s) => schedule::Rules::Sla(schedule::SlaRules {
                response_minutes: s.response_minutes,
                deadline_minutes: s.deadline_minutes,
                visit_minutes: s.visit_minutes,
                window_minutes: s.window_minutes,
                step_minutes: s.step_minutes,
                buffer_minutes: s.buffer_minutes,
                capacity: s.capacity,
            }),
            Rules::Intervals => schedule::Rules::Intervals,
        },
        max_per_day: request.max_per_day,
        ticket: serde_json::from_str(&request.ticket).unwrap_or(Json::Null),
        created_at: request.created_at,
        now: request.now,
        not_before: request.not_before,
        time_zone: request.time_zone.clone(),
        days: request
            .days
            .iter()
            .map(|d| schedule::Day {
                date: d.date.clone(),
                weekday: d.weekday,
                span: Window {
                    start: d.start,
                    end: d.end,
                },
                open: d.open.iter().map(window).collect(),
                intervals: d
                    .intervals
                    .iter()
                    .map(|i| schedule::Interval {
                        name: i.name.clone(),
                        window: window(&i.window),
                        capacity: i.capacity,
                    })
                    .collect(),
                offerable: d.offerable,
            })
            .collect(),
        bookings: request.bookings.iter().map(window).collect(),
    }
}

/// Registers the type implementing [`SlotCalculator`] as this component's export.
#[macro_export]
macro_rules! register_slot_calculator {
    ($plugin:ty) => {
        struct __PorticoExport;
        impl $crate::bindings::slots::exports::portico::plugin::slots::Guest for __PorticoExport {
            fn calculate(
                request: $crate::SlotRequest,
                config: String,
            ) -> Result<Vec<$crate::Slot>, String> {
                $crate::log::__use_plugin_0_2_0();
                <$plugin as $crate::SlotCalculator>::calculate(request, $crate::__config(&config)?)
            }
        }
        $crate::bindings::slots::export!(__PorticoExport with_types_in $crate::bindings::slots);
    };
}
