//! Lines for the tenant's plugin log.

use crate::bindings::portico::plugin::log::{Level, write};

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
