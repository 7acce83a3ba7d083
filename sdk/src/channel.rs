//! Notification channels.

use crate::Secrets;
pub use crate::bindings::channel::exports::portico::plugin::channel::{
    Delivery, DeliveryError, Message, Recipient,
};
pub use crate::bindings::channel::portico::plugin::smtp;

/// A notification channel delivers one message to one recipient.
///
/// ```ignore
/// use portico_sdk::{Channel, Delivery, DeliveryError, Message, Secrets, http, register_channel};
///
/// struct Chat;
///
/// #[derive(serde::Deserialize)]
/// struct Config {
///     webhook_url: String,
/// }
///
/// impl Channel for Chat {
///     type Config = Config;
///
///     fn deliver(message: Message, config: Config, secrets: Secrets, _key: String) -> Result<Delivery, DeliveryError> {
///         let body = portico_sdk::serde_json::json!({"text": message.text, "token": secrets.get("token")});
///         match http::post_json(&config.webhook_url, &body) {
///             Ok(r) if r.status < 300 => Ok(Delivery { provider_id: None, detail: None }),
///             Ok(r) => Err(DeliveryError::Rejected(format!("status {}", r.status))),
///             Err(e) => Err(DeliveryError::Temporary(format!("{e:?}"))),
///         }
///     }
/// }
///
/// register_channel!(Chat);
/// ```
pub trait Channel {
    /// The tenant's configuration, which the host has validated against the manifest's
    /// `config_schema`; [`crate::Json`] takes it as it is. A configuration that does not
    /// deserialise is a [`DeliveryError::Configuration`].
    type Config: serde::de::DeserializeOwned;

    /// Delivers `message`. `secrets` are the secrets the manifest names; the same
    /// `idempotency_key` means the same message.
    fn deliver(
        message: Message,
        config: Self::Config,
        secrets: Secrets,
        idempotency_key: String,
    ) -> Result<Delivery, DeliveryError>;

    /// Refuses a message before delivery, such as one without the address this channel
    /// needs. Accepts every message by default, since a webhook needs no address at all. (Earlier
    /// SDKs refused a message without email or phone by default: a channel that needs an
    /// address says so here.)
    fn check(message: &Message) -> Result<(), DeliveryError> {
        let _ = message;
        Ok(())
    }
}

/// Registers the type implementing [`Channel`] as this component's export.
#[macro_export]
macro_rules! register_channel {
    ($plugin:ty) => {
        struct __PorticoExport;
        impl $crate::bindings::channel::exports::portico::plugin::channel::Guest
            for __PorticoExport
        {
            fn deliver(
                message: $crate::Message,
                config: String,
                secrets: Vec<$crate::bindings::channel::portico::plugin::types::KeyValue>,
                idempotency_key: String,
            ) -> Result<$crate::Delivery, $crate::DeliveryError> {
                $crate::log::__use_plugin_0_1_0();
                <$plugin as $crate::Channel>::check(&message)?;
                let config =
                    $crate::__config(&config).map_err($crate::DeliveryError::Configuration)?;
                <$plugin as $crate::Channel>::deliver(
                    message,
                    config,
                    $crate::Secrets::new(secrets),
                    idempotency_key,
                )
            }
        }
        $crate::bindings::channel::export!(__PorticoExport with_types_in $crate::bindings::channel);
    };
}
