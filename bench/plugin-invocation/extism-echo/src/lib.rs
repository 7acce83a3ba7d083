//! The trivial plugin for Extism: answers with its input, like Portico's `echo`.

use extism_pdk::{FnResult, plugin_fn};

#[plugin_fn]
pub fn run(kind: String) -> FnResult<String> {
    Ok(kind)
}
