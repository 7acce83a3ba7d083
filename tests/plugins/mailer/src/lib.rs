//! A notification channel that sends email through the host; `config.copies` repeats the
//! recipient that many times, as a careless or hostile plugin might.

use portico_sdk::smtp::{self, Email, SmtpError};
use portico_sdk::{Channel, Delivery, DeliveryError, Json, Message, Secrets, register_channel};

struct Mailer;

impl Channel for Mailer {
    type Config = Json;

    fn deliver(
        message: Message,
        config: Json,
        _secrets: Secrets,
        key: String,
    ) -> Result<Delivery, DeliveryError> {
        let to = message
            .recipient
            .email
            .ok_or(DeliveryError::InvalidRecipient("no email address".into()))?;
        let copies = config["copies"].as_u64().unwrap_or(1) as usize;
        let email = Email {
            to: vec![to; copies],
            subject: message.subject,
            text: message.text,
            html: message.html,
            reply_to: None,
        };
        match smtp::send(&email) {
            Ok(()) => Ok(Delivery {
                provider_id: Some(key),
                detail: None,
            }),
            Err(SmtpError::InvalidAddress(a)) => Err(DeliveryError::InvalidRecipient(a)),
            Err(SmtpError::Rejected(why)) => Err(DeliveryError::Rejected(why)),
            Err(SmtpError::Failed(why)) => Err(DeliveryError::Temporary(why)),
        }
    }
}

register_channel!(Mailer);
