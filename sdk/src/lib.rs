//! # Portico plugin SDK
//!
//! Portico runs plugins as sandboxed WebAssembly components. This crate is everything a plugin
//! author needs: one trait per plugin kind, one registration macro, and helpers.
//!
//! | kind | feature | trait | macro |
//! |---|---|---|---|
//! | notification channel | `channel` | [`Channel`] | `register_channel!` |
//! | appointment-slot calculator | `slot-calculator` | [`SlotCalculator`] | `register_slot_calculator!` |
//! | portal theme | `theme` | [`Theme`] | `register_theme!` |
//! | custom automated-action step | `action` | [`Action`] | `register_action!` |
//!
//! ## From an empty folder to a running plugin
//!
//! ```text
//! cargo new --lib hello-theme && cd hello-theme
//! ```
//!
//! `Cargo.toml`:
//!
//! ```toml
//! [lib]
//! crate-type = ["cdylib"]
//!
//! [dependencies]
//! # The `sdk/` folder of a Portico checkout (or a git dependency on it).
//! portico-sdk = { path = "../portico/sdk", features = ["theme"] }
//! ```
//!
//! `src/lib.rs`:
//!
//! ```ignore
//! use portico_sdk::{Theme, register_theme};
//!
//! struct Hello;
//!
//! impl Theme for Hello {
//!     fn templates() -> &'static [(&'static str, &'static str)] {
//!         &[("tracking.html", "<h1>Ticket {{ ticket.number }}</h1>")]
//!     }
//! }
//!
//! register_theme!(Hello);
//! ```
//!
//! `portico-plugin.toml` beside `Cargo.toml`:
//!
//! ```toml
//! id = "hello-theme"
//! name = "Hello theme"
//! version = "0.1.0"
//! kind = "theme"
//! wit = "0.1.0"
//! description = "Says hello."
//! authors = ["You <you@example.com>"]
//! ```
//!
//! Then build, run it under the production limits, pack and publish:
//!
//! ```text
//! rustup target add wasm32-wasip2
//! cargo build --release --target wasm32-wasip2
//! portico plugin run target/wasm32-wasip2/release/hello_theme.wasm --kind theme --input page.json
//! portico plugin pack --manifest portico-plugin.toml --wasm target/wasm32-wasip2/release/hello_theme.wasm
//! portico plugin publish hello-theme-0.1.0.portico --url http://portico.example --token $TOKEN
//! ```
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

#[cfg(any(
    all(
        feature = "channel",
        any(feature = "slot-calculator", feature = "theme", feature = "action")
    ),
    all(
        feature = "slot-calculator",
        any(feature = "theme", feature = "action")
    ),
    all(feature = "theme", feature = "action"),
))]
compile_error!("enable exactly one plugin kind feature: channel, slot-calculator, theme or action");

pub mod html;
pub mod schedule;
pub mod time;

#[doc(hidden)]
pub mod bindings;

#[cfg(any(
    feature = "channel",
    feature = "slot-calculator",
    feature = "theme",
    feature = "action"
))]
pub mod log;

#[cfg(any(feature = "channel", feature = "action"))]
pub mod http;

#[cfg(feature = "channel")]
mod channel;
#[cfg(feature = "channel")]
pub use channel::*;

#[cfg(feature = "slot-calculator")]
mod slots;
#[cfg(feature = "slot-calculator")]
pub use slots::*;

#[cfg(feature = "theme")]
mod theme;
#[cfg(feature = "theme")]
pub use theme::*;

#[cfg(feature = "action")]
mod action;
#[cfg(feature = "action")]
pub use action::*;

#[cfg(any(feature = "channel", feature = "action"))]
mod secrets;
#[cfg(any(feature = "channel", feature = "action"))]
pub use secrets::Secrets;

pub use serde_json::{self, Value as Json};

/// Parses the tenant's configuration, which the host has already validated against the
/// manifest's schema. An empty string is an empty object.
pub fn parse_config(config: &str) -> Json {
    if config.trim().is_empty() {
        return Json::Object(Default::default());
    }
    serde_json::from_str(config).unwrap_or(Json::Null)
}
