//! Lines for the tenant's plugin log.
//!
//! Each kind's world has its own `log` import (slot calculators use `plugin@0.2.0`'s). The
//! kind's `register_…!` macro points these functions at it, so a component imports only the one
//! its world offers. Outside a component, as in a plugin's native unit tests, lines go to
//! standard error.

use std::sync::OnceLock;

/// How important a line is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    /// Detail for plugin authors.
    Debug,
    /// Normal operation.
    Info,
    /// Something unexpected that the plugin handled.
    Warn,
    /// Something that failed.
    Error,
}

static SINK: OnceLock<fn(Level, &str)> = OnceLock::new();

/// Appends one line to this invocation's log.
pub fn write(level: Level, message: &str) {
    match SINK.get() {
        Some(sink) => sink(level, message),
        None => eprintln!("{level:?}: {message}"),
    }
}

/// Detail for plugin authors.
pub fn debug(message: &str) {
    write(Level::Debug, message);
}

/// Normal operation.
pub fn info(message: &str) {
    write(Level::Info, message);
}

/// Something unexpected that the plugin handled.
pub fn warn(message: &str) {
    write(Level::Warn, message);
}

/// Something that failed.
pub fn error(message: &str) {
    write(Level::Error, message);
}

/// A sink writing to one WIT version's `log` import.
macro_rules! sink {
    ($log:path) => {
        |level, message| {
            use $log as log;
            let level = match level {
                Level::Debug => log::Level::Debug,
                Level::Info => log::Level::Info,
                Level::Warn => log::Level::Warn,
                Level::Error => log::Level::Error,
            };
            log::write(level, message);
        }
    };
}

#[doc(hidden)]
pub fn __use_plugin_0_1_0() {
    let _ = SINK.set(sink!(crate::bindings::channel::portico::plugin::log));
}

#[doc(hidden)]
pub fn __use_plugin_0_2_0() {
    let _ = SINK.set(sink!(crate::bindings::slots::portico::plugin::log));
}
