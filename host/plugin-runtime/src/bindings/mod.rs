//! Host-side bindings of the `portico:plugin` worlds, one module per WIT package version. The
//! host runs every released version side by side, so a plugin built against an older one keeps
//! working.

pub mod v0_1_0;
pub mod v0_2_0;

/// The bindings of the worlds that are still at 0.1.0 (all but the slot calculator).
pub use v0_1_0::*;
