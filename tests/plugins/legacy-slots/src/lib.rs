//! A slot calculator of the `plugin@0.1.0` world: interval rules on matching weekdays, SLA
//! working hours split into windows, minus overlapping bookings.

// The bindings wit-bindgen generates (the SDK hides them for plugins built with it).
#![allow(unsafe_code)]

wit_bindgen::generate!({
    path: "../../../sdk/wit/plugin@0.1.0",
    world: "slot-calculator",
});

use exports::portico::plugin::slots::{Guest, LocalDay, Opening, Rules, Slot, SlotRequest};
use portico::plugin::types::TimeWindow;

struct Legacy;

const MINUTE: i64 = 60_000;

fn window(day: &LocalDay, opening: &Opening) -> TimeWindow {
    TimeWindow {
        start: day.midnight + i64::from(opening.start_minute) * MINUTE,
        end: day.midnight + i64::from(opening.end_minute) * MINUTE,
    }
}

impl Guest for Legacy {
    fn calculate(request: SlotRequest, _config: String) -> Result<Vec<Slot>, String> {
        let mut candidates: Vec<(TimeWindow, u32)> = Vec::new();
        for day in &request.days {
            match &request.rules {
                Rules::Intervals(rules) => {
                    for rule in rules.iter().filter(|r| r.opening.weekday == day.weekday) {
                        candidates.push((window(day, &rule.opening), rule.capacity));
                    }
                }
                Rules::Sla(sla) => {
                    let step = i64::from(sla.window_minutes.max(1)) * MINUTE;
                    for opening in sla
                        .working_hours
                        .iter()
                        .filter(|o| o.weekday == day.weekday)
                    {
                        let hours = window(day, opening);
                        let mut start = hours.start;
                        while start + step <= hours.end {
                            let w = TimeWindow {
                                start,
                                end: start + step,
                            };
                            candidates.push((w, sla.capacity));
                            start += step;
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
                    .filter(|b| b.window.start < w.end && w.start < b.window.end)
                    .count() as u32;
                let left = capacity.saturating_sub(used);
                (left > 0).then_some(Slot {
                    window: w,
                    capacity_left: left,
                })
            })
            .collect();
        slots.sort_by_key(|s| s.window.start);
        Ok(slots)
    }
}

export!(Legacy);
