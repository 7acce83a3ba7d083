//! Host-side bindings of the `portico:plugin` worlds, one module per WIT package version, so
//! that a new version can be added beside the ones published plugins were built against.

pub mod v0_1_0;

/// The bindings of the version this host implements ([`crate::WIT_VERSION`]).
pub use v0_1_0::*;
