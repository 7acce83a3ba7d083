//! Notification channels.

pub use crate::bindings::exports::portico::plugin::channel::{
    Delivery, DeliveryError, Message, Recipient,
};
pub use crate::bindings::portico::plugin::smtp;
use crate::{Json, Secrets};

/// A notification channel delivers one message to one recipient.
///
/// ```ignore
/// use portico_sdk::{Channel, Delivery, DeliveryError, Json, Message, Secrets, http, register_channel};
///
/// struct Chat;
///
/// impl Channel for Chat {
///     fn deliver(message: Message, config: Json, secrets: Secrets, _key: String) -> Result<Delivery, DeliveryError> {
///         let url = config["webhook_url"].as_str().ok_or(DeliveryError::Configuration("webhook_url missing".into()))?;
///         let body = portico_sdk::serde_json::json!({"text": message.text, "token": secrets.get("token")});
///         match http::post_json(url, &body) {
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
    /// Delivers `message`. `config` is the tenant's configuration, `secrets` the secrets the
    /// manifest names; the same `idempotency_key` means the same message.
    fn deliver(
        message: Message,
        config: Json,
        secrets: Secrets,
        idempotency_key: String,
    ) -> Result<Delivery, DeliveryError>;

    /// Refuses a message before delivery. By default a message needs an email address or a
    /// phone number.
    fn check(message: &Message) -> Result<(), DeliveryError> {
        if message.recipient.email.is_none() && message.recipient.phone.is_none() {
            return Err(DeliveryError::InvalidRecipient(
                "the recipient has neither email nor phone".into(),
            ));
        }
        Ok(())
    }
}

/// Registers the type implementing [`Channel`] as this component's export.
#[macro_export]
macro_rules! register_channel {
    ($plugin:ty) => {
        struct __PorticoExport;
        impl $crate::bindings::exports::portico::plugin::channel::Guest for __PorticoExport {
            fn deliver(
                message: $crate::Message,
                config: String,
                secrets: Vec<$crate::bindings::portico::plugin::types::KeyValue>,
                idempotency_key: String,
            ) -> Result<$crate::Delivery, $crate::DeliveryError> {
                <$plugin as $crate::Channel>::check(&message)?;
                <$plugin as $crate::Channel>::deliver(
                    message,
                    $crate::parse_config(&config),
                    $crate::Secrets::new(secrets),
                    idempotency_key,
                )
            }
        }
        $crate::bindings::__export_plugin!(__PorticoExport);
    };
}
