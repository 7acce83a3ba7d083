//! Deliveries: one message to one recipient through one channel install, with its attempts.

use serde::{Deserialize, Serialize};
use sqlx::FromRow;
use utoipa::ToSchema;

use crate::db;
use crate::error::{Error, Result};

/// Where a delivery is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
#[schema(as = DeliveryStatus)]
pub enum Status {
    /// Waiting for its next attempt (or for quiet hours or a sending limit to pass).
    Pending,
    /// Claimed by a worker; a lease that runs out puts it back in the queue.
    Sending,
    Sent,
    /// Failed permanently or too often; an administrator may retry it.
    Dead,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Sending => "sending",
            Self::Sent => "sent",
            Self::Dead => "dead",
        }
    }
}

impl TryFrom<String> for Status {
    type Error = Error;

    fn try_from(stored: String) -> Result<Self> {
        [Self::Pending, Self::Sending, Self::Sent, Self::Dead]
            .into_iter()
            .find(|s| s.as_str() == stored)
            .ok_or_else(|| Error::Internal(anyhow::anyhow!("stored delivery status {stored:?}")))
    }
}

/// Who receives a delivery, as the channel plugin gets it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Recipient {
    pub name: Option<String>,
    pub email: Option<String>,
    /// E.164.
    pub phone: Option<String>,
    pub language: String,
}

impl Recipient {
    /// The address a delivery to this recipient is known by, for deduplication and the log.
    pub fn address(&self) -> String {
        self.email
            .as_deref()
            .map(str::to_ascii_lowercase)
            .or_else(|| self.phone.clone())
            .unwrap_or_default()
    }

    /// The address with most of it hidden, for people who may read the log but not the
    /// customers' contact details.
    pub fn masked(&self) -> String {
        let address = self.address();
        match address.split_once('@') {
            Some((local, domain)) => {
                format!("{}***@{domain}", local.chars().next().unwrap_or('*'))
            }
            None => {
                let keep = address.len().saturating_sub(3);
                format!("{}{}", "*".repeat(keep.min(12)), &address[keep..])
            }
        }
    }
}

/// A message to queue, rendered, with markers standing for the portal links.
pub struct NewDelivery {
    pub action_id: Option<String>,
    pub event_seq: Option<i64>,
    pub step_index: i64,
    pub ticket_id: Option<String>,
    pub install_id: String,
    pub fallback_install_id: Option<String>,
    pub recipient: Recipient,
    pub subject: String,
    pub text: String,
    pub html: Option<String>,
    /// Link name (`tracking`, `booking`) → the marker in the bodies.
    pub links: Vec<(String, String)>,
    /// Links with 128-bit tokens, for SMS.
    pub short_links: bool,
    /// Not sent before this instant (quiet hours).
    pub not_before: i64,
}

#[derive(Clone, FromRow)]
pub struct DeliveryRow {
    pub id: String,
    pub tenant_id: String,
    pub action_id: Option<String>,
    pub event_seq: Option<i64>,
    pub step_index: i64,
    pub ticket_id: Option<String>,
    pub install_id: String,
    pub fallback_install_id: Option<String>,
    pub recipient: String,
    pub subject: String,
    pub text_body: String,
    pub html_body: Option<String>,
    pub links: String,
    pub short_links: i64,
    #[sqlx(try_from = "String")]
    pub status: Status,
    pub attempts: i64,
    pub next_attempt_at: i64,
    /// Until when the claiming worker owns the delivery; also the claim's fencing token.
    pub lease_until: Option<i64>,
    pub last_error: Option<String>,
    pub provider_id: Option<String>,
    pub detail: Option<String>,
    pub sent_via: Option<String>,
    pub created_at: i64,
    pub sent_at: Option<i64>,
}

impl DeliveryRow {
    pub fn recipient(&self) -> Recipient {
        serde_json::from_str(&self.recipient).unwrap_or(Recipient {
            name: None,
            email: None,
            phone: None,
            language: "en".into(),
        })
    }

    pub fn links(&self) -> Vec<(String, String)> {
        serde_json::from_str(&self.links).unwrap_or_default()
    }

    /// The message as stored, each link marker replaced by `with(name)`.
    pub fn message_with(&self, with: impl Fn(&str) -> String) -> (String, String, Option<String>) {
        let mut subject = self.subject.clone();
        let mut text = self.text_body.clone();
        let mut html = self.html_body.clone();
        for (name, marker) in self.links() {
            let link = with(&name);
            subject = subject.replace(&marker, &link);
            text = text.replace(&marker, &link);
            html = html.map(|h| h.replace(&marker, &link));
        }
        (subject, text, html)
    }

    pub fn view(&self, masked: bool, with_message: bool) -> Delivery {
        let recipient = self.recipient();
        let message = with_message.then(|| {
            let (subject, text, html) =
                self.message_with(|name| format!("[{name} link, issued when sent]"));
            DeliveredMessage {
                subject,
                text,
                html,
            }
        });
        Delivery {
            id: self.id.clone(),
            action_id: self.action_id.clone(),
            event_seq: self.event_seq,
            step_index: self.step_index,
            ticket_id: self.ticket_id.clone(),
            channel_install_id: self.install_id.clone(),
            fallback_install_id: self.fallback_install_id.clone(),
            sent_via: self.sent_via.clone(),
            to: if masked {
                recipient.masked()
            } else {
                recipient.address()
            },
            status: self.status,
            attempts: self.attempts,
            next_attempt_at: (self.status == Status::Pending)
                .then(|| db::timestamp(self.next_attempt_at)),
            // Providers' answers may quote the address.
            last_error: self.last_error.clone().filter(|_| !masked),
            provider_id: self.provider_id.clone(),
            detail: self.detail.clone().filter(|_| !masked),
            created_at: db::timestamp(self.created_at),
            sent_at: self.sent_at.map(db::timestamp),
            message: if masked { None } else { message },
        }
    }
}

/// A delivery in the tenant's log.
#[derive(Debug, Serialize, ToSchema)]
pub struct Delivery {
    pub id: String,
    /// Absent for a test send.
    pub action_id: Option<String>,
    /// The domain event that caused it.
    pub event_seq: Option<i64>,
    pub step_index: i64,
    pub ticket_id: Option<String>,
    pub channel_install_id: String,
    pub fallback_install_id: Option<String>,
    /// The install that delivered it (the fallback when the primary failed for good).
    pub sent_via: Option<String>,
    /// The recipient's address, masked (with `last_error` and `detail` left out) for roles that
    /// may not change deliveries.
    pub to: String,
    pub status: Status,
    pub attempts: i64,
    #[schema(value_type = Option<String>, format = DateTime)]
    pub next_attempt_at: Option<jiff::Timestamp>,
    pub last_error: Option<String>,
    /// The provider's id of the sent message.
    pub provider_id: Option<String>,
    pub detail: Option<String>,
    #[schema(value_type = String, format = DateTime)]
    pub created_at: jiff::Timestamp,
    #[schema(value_type = Option<String>, format = DateTime)]
    pub sent_at: Option<jiff::Timestamp>,
    /// The rendered message (one delivery only; links are issued when it is sent).
    pub message: Option<DeliveredMessage>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DeliveredMessage {
    pub subject: String,
    pub text: String,
    pub html: Option<String>,
}
