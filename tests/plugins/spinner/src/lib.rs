//! The standard slot calculator, unless `config.behaviour` asks it to misbehave: compute
//! forever (`spin`), or return windows the host must refuse (`overlapping`, `past`,
//! `out_of_horizon`, `reversed`, `duplicate`, `excess_capacity`, `million`, `fail`).

use portico_sdk::{
    Json, Slot, SlotCalculator, SlotRequest, TimeWindow, register_slot_calculator, standard_slots,
};

struct Spinner;

const HOUR: i64 = 3_600_000;

fn slot(start: i64, end: i64, capacity_left: u32) -> Slot {
    Slot {
        window: TimeWindow { start, end },
        capacity_left,
    }
}

impl SlotCalculator for Spinner {
    type Config = Json;

    fn calculate(request: SlotRequest, config: Json) -> Result<Vec<Slot>, String> {
        let mut slots = standard_slots(&request)?;
        let first = slots
            .first()
            .map_or(request.not_before + HOUR, |s| s.window.start);
        match config["behaviour"].as_str().unwrap_or("standard") {
            "spin" => {
                let mut n: u64 = 0;
                loop {
                    n = std::hint::black_box(n.wrapping_mul(6364136223846793005).wrapping_add(1));
                }
            }
            "overlapping" => slots.insert(1.min(slots.len()), slot(first + 1, first + HOUR, 1)),
            "past" => slots.insert(0, slot(request.now - 2 * HOUR, request.now - HOUR, 1)),
            "out_of_horizon" => {
                let last = request.days.last().map_or(first, |d| d.end);
                slots.push(slot(last + HOUR, last + 2 * HOUR, 1));
            }
            "reversed" => slots.insert(0, slot(first + HOUR, first, 1)),
            "duplicate" => {
                if let Some(s) = slots.first().copied() {
                    slots.insert(0, s);
                }
            }
            "excess_capacity" => {
                if let Some(s) = slots.first_mut() {
                    s.capacity_left += 1_000;
                }
            }
            "million" => {
                slots = (0..1_000_000)
                    .map(|i| slot(first + i * 60_000, first + i * 60_000 + 30_000, 1))
                    .collect();
            }
            "fail" => return Err("the calculator gave up".into()),
            _ => {}
        }
        Ok(slots)
    }
}

register_slot_calculator!(Spinner);
