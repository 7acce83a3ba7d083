//! The built-in webhook channel: POSTs each notification as JSON to the tenant's URL, signed as
//! [Standard Webhooks](https://www.standardwebhooks.com/) prescribe, so that a receiver checks
//! it with any of that project's libraries.
//!
//! # Setting it up
//!
//! Every tenant has it installed, idle until the tenant sets
//! (`PATCH /api/v1/tenants/{tenant}/plugins/{install}`):
//!
//! - `config.url`: the receiver, `https://` (or `http://` where the operator allows it);
//! - `grants.http_hosts`: the URL's host. The manifest asks for any host (`"*"`), which is never
//!   granted by itself, so the install reaches no host until the tenant names one;
//! - `secrets.signing_secret`: `whsec_` followed by the base64 of the key (24 to 64 random
//!   bytes), the form Standard Webhooks libraries take;
//! - optionally `secrets.authorization`: an `Authorization` header the receiver wants (a secret,
//!   so it is stored encrypted and never shown, unlike configuration);
//! - optionally `config.headers`: more headers that are not secret.
//!
//! The URL is optional in the schema, so that the idle install stays valid while the tenant
//! changes it step by step; a delivery without URL or secret is a `configuration` error.
//!
//! # What it sends
//!
//! ```text
//! POST <url>
//! content-type: application/json
//! webhook-id: <the idempotency key: a retry has the same id, so receivers drop duplicates>
//! webhook-timestamp: <unix seconds>
//! webhook-signature: v1,<base64 of HMAC-SHA256(key, "<id>.<timestamp>.<body>")>
//!
//! {"type": "notification.delivery", "timestamp": "<RFC 3339>",
//!  "data": {"recipient": {"name", "email", "phone", "language"}, "subject", "text", "html",
//!           "links": {"<name>": "<url>"}}}
//! ```
//!
//! The timestamp is the sandbox's clock, which channels see to the second; receivers refuse one
//! more than a few minutes from their own.
//!
//! # Answers
//!
//! A 2xx is a delivery, under the `id` of a JSON answer or else the webhook id. 401 and 403 are
//! `configuration`; 408, 429, 5xx, timeouts and failed connections are `temporary`; any other
//! answer (400, 410, 422, other 4xx) is `rejected`. A host that was not granted stops the plugin
//! with `plugin_capability_denied`.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use hmac::{Hmac, Mac};
use jiff::Timestamp;
use portico_sdk::http::{self, HttpError, Request, Response};
use portico_sdk::serde_json::{Map, json};
use portico_sdk::{Channel, Delivery, DeliveryError, Json, Message, Secrets, register_channel};
use sha2::Sha256;

/// Headers the channel sets itself; `config.headers` cannot replace them.
const OWN_HEADERS: &[&str] = &[
    "content-type",
    "content-length",
    "host",
    "authorization",
    "webhook-id",
    "webhook-timestamp",
    "webhook-signature",
];

/// Longest provider id taken from a receiver's answer.
const MAX_ID_LEN: usize = 200;

struct Webhook;

impl Channel for Webhook {
    type Config = Json;

    fn deliver(
        message: Message,
        config: Json,
        secrets: Secrets,
        idempotency_key: String,
    ) -> Result<Delivery, DeliveryError> {
        let url = config["url"]
            .as_str()
            .ok_or_else(|| configuration("set config.url to the receiver's URL"))?;
        let key = signing_key(secrets.get("signing_secret"))?;
        let extra = extra_headers(&config)?;
        let now = Timestamp::now();
        let body = payload(message, now).to_string();
        let timestamp = now.as_second().to_string();
        let mut headers = vec![
            ("content-type".to_string(), "application/json".to_string()),
            ("webhook-id".into(), idempotency_key.clone()),
            (
                "webhook-signature".into(),
                sign(&key, &idempotency_key, &timestamp, &body),
            ),
            ("webhook-timestamp".into(), timestamp),
        ];
        headers.extend(extra);
        if let Some(authorization) = secrets.get("authorization") {
            headers.push(("authorization".into(), authorization.to_string()));
        }
        let response = http::send(&Request {
            method: "POST".into(),
            url: url.into(),
            headers,
            body: body.into_bytes(),
        })
        .map_err(not_reached)?;
        answer(response, idempotency_key)
    }
}

register_channel!(Webhook);

fn configuration(why: &str) -> DeliveryError {
    DeliveryError::Configuration(why.into())
}

/// The HMAC key of a `whsec_` secret. The texts never quote the secret.
fn signing_key(secret: Option<&str>) -> Result<Vec<u8>, DeliveryError> {
    let secret = secret.ok_or_else(|| configuration("set the secret signing_secret"))?;
    secret
        .strip_prefix("whsec_")
        .and_then(|encoded| BASE64.decode(encoded).ok())
        .filter(|key| !key.is_empty())
        .ok_or_else(|| configuration("signing_secret must be whsec_ followed by base64"))
}

fn extra_headers(config: &Json) -> Result<Vec<(String, String)>, DeliveryError> {
    let Some(headers) = config["headers"].as_object() else {
        return Ok(Vec::new());
    };
    let mut out = Vec::with_capacity(headers.len());
    for (name, value) in headers {
        if OWN_HEADERS.iter().any(|own| own.eq_ignore_ascii_case(name)) {
            return Err(DeliveryError::Configuration(format!(
                "config.headers cannot set {name}"
            )));
        }
        let value = value
            .as_str()
            .ok_or_else(|| configuration("config.headers values must be strings"))?;
        out.push((name.clone(), value.to_string()));
    }
    Ok(out)
}

fn payload(message: Message, now: Timestamp) -> Json {
    let links: Map<String, Json> = message
        .links
        .into_iter()
        .map(|link| (link.key, Json::String(link.value)))
        .collect();
    let recipient = message.recipient;
    json!({
        "type": "notification.delivery",
        "timestamp": now.to_string(),
        "data": {
            "recipient": {
                "name": recipient.name,
                "email": recipient.email,
                "phone": recipient.phone,
                "language": recipient.language,
            },
            "subject": message.subject,
            "text": message.text,
            "html": message.html,
            "links": links,
        },
    })
}

/// `v1,` and the base64 HMAC-SHA256 of `{id}.{timestamp}.{body}`.
fn sign(key: &[u8], id: &str, timestamp: &str, body: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes keys of any length");
    mac.update(format!("{id}.{timestamp}.{body}").as_bytes());
    format!("v1,{}", BASE64.encode(mac.finalize().into_bytes()))
}

fn not_reached(error: HttpError) -> DeliveryError {
    DeliveryError::Temporary(match error {
        HttpError::Timeout => "the receiver did not answer in time".into(),
        HttpError::Failed(why) => format!("the receiver could not be reached: {why}"),
    })
}

fn answer(response: Response, webhook_id: String) -> Result<Delivery, DeliveryError> {
    let status = response.status;
    let why = format!("the receiver answered {status}");
    match status {
        200..=299 => Ok(Delivery {
            provider_id: Some(receiver_id(&response.body).unwrap_or(webhook_id)),
            detail: Some(status.to_string()),
        }),
        401 | 403 => Err(DeliveryError::Configuration(why)),
        408 | 429 | 500..=599 => Err(DeliveryError::Temporary(why)),
        _ => Err(DeliveryError::Rejected(why)),
    }
}

/// The `id` of a JSON answer such as `{"id": "evt_123"}`, when short enough to keep.
fn receiver_id(body: &[u8]) -> Option<String> {
    let answer: Json = portico_sdk::serde_json::from_slice(body).ok()?;
    let id = match &answer["id"] {
        Json::String(id) => id.clone(),
        Json::Number(id) => id.to_string(),
        _ => return None,
    };
    (!id.is_empty() && id.len() <= MAX_ID_LEN).then_some(id)
}
