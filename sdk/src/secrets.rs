//! The decrypted secrets a plugin's manifest names.

use crate::bindings::channel::portico::plugin::types::KeyValue;

/// Secrets by name, such as an API key the tenant entered.
pub struct Secrets(Vec<KeyValue>);

impl Secrets {
    #[doc(hidden)]
    pub fn new(pairs: Vec<KeyValue>) -> Self {
        Self(pairs)
    }

    /// The secret called `name`, if the tenant set it.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|kv| kv.key == name)
            .map(|kv| kv.value.as_str())
    }
}
