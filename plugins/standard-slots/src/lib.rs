//! The built-in slot calculator: the SDK's standard algorithm, unchanged.

use portico_sdk::{Json, SlotCalculator, register_slot_calculator};

struct StandardSlots;

impl SlotCalculator for StandardSlots {
    type Config = Json;
}

register_slot_calculator!(StandardSlots);
