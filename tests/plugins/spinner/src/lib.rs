//! The standard slot calculator, unless `config.spin` asks it to compute forever.

use portico_sdk::{
    Json, Slot, SlotCalculator, SlotRequest, register_slot_calculator, standard_slots,
};

struct Spinner;

impl SlotCalculator for Spinner {
    fn calculate(request: SlotRequest, config: Json) -> Result<Vec<Slot>, String> {
        if config["spin"].as_bool() == Some(true) {
            let mut n: u64 = 0;
            loop {
                n = std::hint::black_box(n.wrapping_mul(6364136223846793005).wrapping_add(1));
            }
        }
        standard_slots(&request)
    }
}

register_slot_calculator!(Spinner);
