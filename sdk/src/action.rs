//! Custom steps of automated actions.

pub use crate::bindings::exports::portico::plugin::steps::{Event, Outcome};
use crate::{Json, Secrets};

/// A custom step of an automated action, such as opening an issue in another system.
///
/// ```ignore
/// use portico_sdk::{Action, Event, Json, Outcome, Secrets, register_action};
///
/// struct Note;
///
/// impl Action for Note {
///     fn run(event: Event, _config: Json, _secrets: Secrets, _key: String) -> Result<Outcome, String> {
///         portico_sdk::log::info(&format!("saw {}", event.kind));
///         Ok(Outcome { summary: format!("noted {}", event.kind), external_ref: None })
///     }
/// }
///
/// register_action!(Note);
/// ```
pub trait Action {
    /// Performs the step for `event`. A retry carries the same `idempotency_key` and must not
    /// act twice.
    fn run(
        event: Event,
        config: Json,
        secrets: Secrets,
        idempotency_key: String,
    ) -> Result<Outcome, String>;
}

/// Registers the type implementing [`Action`] as this component's export.
#[macro_export]
macro_rules! register_action {
    ($plugin:ty) => {
        struct __PorticoExport;
        impl $crate::bindings::exports::portico::plugin::steps::Guest for __PorticoExport {
            fn run(
                event: $crate::Event,
                config: String,
                secrets: Vec<$crate::bindings::portico::plugin::types::KeyValue>,
                idempotency_key: String,
            ) -> Result<$crate::Outcome, String> {
                <$plugin as $crate::Action>::run(
                    event,
                    $crate::parse_config(&config),
                    $crate::Secrets::new(secrets),
                    idempotency_key,
                )
            }
        }
        $crate::bindings::__export_plugin!(__PorticoExport);
    };
}
