//! The built-in email channel: sends each notification through the host's SMTP capability,
//! which takes the tenant's own relay (`config.smtp`, `config.from`, the `smtp_password`
//! secret) and DKIM key (`config.dkim`, the `dkim_private_key` secret) from this install's
//! settings, or else the host's server.

use portico_sdk::smtp::{self, Email, SmtpError};
use portico_sdk::{Channel, Delivery, DeliveryError, Json, Message, Secrets, register_channel};

struct EmailChannel;

impl Channel for EmailChannel {
    type Config = Json;

    fn deliver(
        message: Message,
        config: Json,
        _secrets: Secrets,
        idempotency_key: String,
    ) -> Result<Delivery, DeliveryError> {
        let to = message.recipient.email.ok_or_else(|| {
            DeliveryError::InvalidRecipient("the recipient has no email address".into())
        })?;
        let email = Email {
            to: vec![to],
            subject: message.subject,
            text: message.text,
            html: message.html,
            reply_to: config["reply_to"].as_str().map(str::to_string),
        };
        match smtp::send(&email) {
            Ok(()) => Ok(Delivery {
                provider_id: Some(idempotency_key),
                detail: None,
            }),
            Err(SmtpError::InvalidAddress(address)) => {
                Err(DeliveryError::InvalidRecipient(address))
            }
            Err(SmtpError::Rejected(why)) => Err(DeliveryError::Rejected(why)),
            Err(SmtpError::Failed(why)) => Err(DeliveryError::Temporary(why)),
        }
    }
}

register_channel!(EmailChannel);
