//! # Portico plugin SDK
//!
//! Portico runs plugins as sandboxed WebAssembly components. This crate is everything a plugin
//! author needs: one trait per plugin kind, one registration macro, and helpers.
//!
//! | kind | trait | macro | WIT |
//! |---|---|---|---|
//! | notification channel | [`Channel`] | [`register_channel!`] | `plugin@0.1.0` |
//! | appointment-slot calculator | [`SlotCalculator`] | [`register_slot_calculator!`] | `plugin@0.2.0` |
//! | portal theme | [`Theme`] | [`register_theme!`] | `plugin@0.1.0` |
//! | custom automated-action step | [`Action`] | [`register_action!`] | `plugin@0.1.0` |
//!
//! Every kind is always available: one crate, or one workspace, can hold plugins of several
//! kinds, and each component imports only what its own code calls. Each trait names its
//! typed `Config`, which the SDK deserialises from the tenant's configuration.
//!
//! ## From an empty folder to a running plugin
//!
//! `portico plugin new <kind> <name>` writes a crate that builds as it is, with a sample input
//! for every case of its kind; its README lists the next commands:
//!
//! ```text
//! portico plugin new theme hello-theme && cd hello-theme
//! cargo build --release --target wasm32-wasip2
//! portico plugin run target/wasm32-wasip2/release/hello_theme.wasm --input inputs/tracking.json
//! portico plugin pack --wasm target/wasm32-wasip2/release/hello_theme.wasm
//! portico plugin publish hello-theme-0.1.0.portico --install easy-printer
//! ```
//!
//! A theme is as short as this (`src/lib.rs`):
//!
//! ```ignore
//! use portico_sdk::{Json, Theme, register_theme};
//!
//! struct Hello;
//!
//! impl Theme for Hello {
//!     type Config = Json;
//!
//!     fn templates() -> &'static [(&'static str, &'static str)] {
//!         &[("tracking.html", "<h1>Ticket {{ ticket.number }}</h1>")]
//!     }
//! }
//!
//! register_theme!(Hello);
//! ```
//!
//! `portico plugin schema <kind>` prints the JSON Schema of `plugin run`'s input for a kind,
//! and [`view`] holds the theme view model as the host builds it.
//!
//! ## The sandbox
//!
//! Each call runs in a fresh instance: nothing survives between calls. There is no file
//! system, no environment and no network. Slot calculators and themes see no real clock or
//! randomness (the clock reads the epoch, randomness is a fixed sequence): time and everything
//! else come in as input, so their results are reproducible. Channels and action steps, which
//! talk to the world, read the time of day to the second and get real randomness (for
//! timestamps, nonces and signatures). Plugins that need the outside world ask for it in their manifest (`http`
//! hosts, `smtp`), and the tenant approves. Every call has a deadline, a memory limit, an output
//! limit and a log limit; slot calculators and themes also have an instruction budget.

#![deny(missing_docs)]

pub mod html;
pub mod http;
pub mod log;
pub mod schedule;
pub mod time;
pub mod view;

#[doc(hidden)]
pub mod bindings;

mod action;
mod channel;
mod secrets;
mod slots;
mod theme;

pub use action::*;
pub use channel::*;
pub use secrets::Secrets;
pub use slots::*;
pub use theme::*;

pub use serde;
pub use serde_json::{self, Value as Json};

/// Deserialises the tenant's configuration, which the host has already validated against the
/// manifest's schema, into a plugin's `Config`. An empty string is an empty object. A plugin
/// without configuration says `type Config = serde::de::IgnoredAny;`.
#[doc(hidden)]
pub fn __config<C: serde::de::DeserializeOwned>(config: &str) -> Result<C, String> {
    let text = if config.trim().is_empty() {
        "{}"
    } else {
        config
    };
    serde_json::from_str(text)
        .map_err(|e| format!("the configuration does not fit this plugin: {e}"))
}
