//! Custom steps of automated actions.

use crate::Secrets;
pub use crate::bindings::action::exports::portico::plugin::steps::{Event, Outcome};

/// A custom step of an automated action, such as opening an issue in another system.
///
/// ```ignore
/// use portico_sdk::{Action, Event, Json, Outcome, Secrets, register_action};
///
/// struct Note;
///
/// impl Action for Note {
///     type Config = Json;
///
///     fn run(event: Event, _config: Json, _secrets: Secrets, _key: String) -> Result<Outcome, String> {
///         portico_sdk::log::info(&format!("saw {}", event.kind));
///         Ok(Outcome { summary: format!("noted {}", event.kind), external_ref: None })
///     }
/// }
///
/// register_action!(Note);
/// ```
pub trait Action {
    /// The tenant's configuration, which the host has validated against the manifest's
    /// `config_schema`; [`crate::Json`] takes it as it is. A configuration that does not
    /// deserialise fails the step with the reason.
    type Config: serde::de::DeserializeOwned;

    /// Performs the step for `event`. A retry carries the same `idempotency_key` and must not
    /// act twice.
    fn run(
        event: Event,
        config: Self::Config,
        secrets: Secrets,
        idempotency_key: String,
    ) -> Result<Outcome, String>;
}

/// Registers the type implementing [`Action`] as this component's export.
#[macro_export]
macro_rules! register_action {
    ($plugin:ty) => {
        struct __PorticoExport;
        impl $crate::bindings::action::exports::portico::plugin::steps::Guest for __PorticoExport {
            fn run(
                event: $crate::Event,
                config: String,
                secrets: Vec<$crate::bindings::channel::portico::plugin::types::KeyValue>,
                idempotency_key: String,
            ) -> Result<$crate::Outcome, String> {
                $crate::log::__use_plugin_0_1_0();
                <$plugin as $crate::Action>::run(
                    event,
                    $crate::__config(&config)?,
                    $crate::Secrets::new(secrets),
                    idempotency_key,
                )
            }
        }
        $crate::bindings::action::export!(__PorticoExport with_types_in $crate::bindings::action);
    };
}
