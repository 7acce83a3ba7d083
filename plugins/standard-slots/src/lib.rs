//! The built-in slot calculator: the SDK's standard algorithm, unchanged.

use portico_sdk::{SlotCalculator, register_slot_calculator};

struct StandardSlots;

impl SlotCalculator for StandardSlots {}

register_slot_calculator!(StandardSlots);
