//! The built-in SMS channel: sends each notification's text part as a text message through an
//! HTTP gateway.
//!
//! Two kinds of gateway:
//! - `twilio` (the default): `POST {url}/2010-04-01/Accounts/{account_sid}/Messages.json` as a
//!   form with `To`, `From` and `Body`, HTTP basic authentication with the account SID and the
//!   `auth_token` secret. `url` is `https://api.twilio.com` unless a compatible service is used.
//!   The idempotency key goes in `I-Twilio-Idempotency-Token` for services that honour it;
//!   Twilio's own Messages API may not, so a retry after a lost answer can send a text twice.
//! - `generic`: `POST {url}` with a JSON object (or a form, `format = "form"`) whose fields are
//!   named by `fields.to`, `fields.text` and `fields.from` (`to`, `text` and `from` by default),
//!   the `api_key` secret as a bearer token when set, and the idempotency key in
//!   `Idempotency-Key`.
//!
//! The recipient's number must be in E.164 form (the host checks numbers it is given). Before
//! sending, the text is counted in SMS segments, GSM-7 (160 characters, 153 per part) or UCS-2
//! (70 code units, 67 per part), and a message longer than `max_segments` (3 by default) is
//! refused rather than sent as a costly string of parts. The segment count is recorded with the
//! delivery.
//!
//! A 2xx answer is a delivery, under the gateway's message id (`sid`, `id` or `message_id`).
//! Twilio's error 21211 or 21614 (an invalid or non-mobile `To`) is `invalid-recipient`; 401 and
//! 403 are `configuration`; 408, 429 and 5xx are `temporary`; other answers are `rejected`.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use portico_sdk::http::{self, HttpError, Request, Response};
use portico_sdk::serde_json::{Map, Value};
use portico_sdk::{Channel, Delivery, DeliveryError, Json, Message, Secrets, register_channel};

mod segments;

use segments::Count;

const TWILIO: &str = "https://api.twilio.com";
const DEFAULT_MAX_SEGMENTS: u64 = 3;

struct Sms;

impl Channel for Sms {
    type Config = Json;

    fn deliver(
        message: Message,
        config: Json,
        secrets: Secrets,
        idempotency_key: String,
    ) -> Result<Delivery, DeliveryError> {
        let to = message
            .recipient
            .phone
            .filter(|p| is_e164(p))
            .ok_or_else(|| {
                DeliveryError::InvalidRecipient("the recipient has no mobile number".into())
            })?;
        let text = message.text.trim();
        if text.is_empty() {
            return Err(DeliveryError::Rejected("the message has no text".into()));
        }
        let count = segments::count(text);
        let allowed = config["max_segments"]
            .as_u64()
            .unwrap_or(DEFAULT_MAX_SEGMENTS);
        if count.segments as u64 > allowed {
            return Err(DeliveryError::Rejected(format!(
                "the text needs {} ({allowed} allowed); shorten the step's text part",
                count.describe()
            )));
        }
        let from = config["from"].as_str().unwrap_or_default();
        let request = match config["provider"].as_str().unwrap_or("twilio") {
            "twilio" => twilio(&config, &secrets, &to, from, text, &idempotency_key)?,
            _ => generic(&config, &secrets, &to, from, text, &idempotency_key)?,
        };
        let response = http::send(&request).map_err(not_reached)?;
        answer(&response, &count)
    }
}

fn configuration(why: &str) -> DeliveryError {
    DeliveryError::Configuration(why.into())
}

/// `+` and 6 to 15 digits.
fn is_e164(number: &str) -> bool {
    number.strip_prefix('+').is_some_and(|digits| {
        (6..=15).contains(&digits.len()) && digits.bytes().all(|b| b.is_ascii_digit())
    })
}

fn form(pairs: &[(&str, &str)]) -> Vec<u8> {
    let mut body = form_urlencoded::Serializer::new(String::new());
    for (name, value) in pairs {
        if !value.is_empty() {
            body.append_pair(name, value);
        }
    }
    body.finish().into_bytes()
}

fn twilio(
    config: &Json,
    secrets: &Secrets,
    to: &str,
    from: &str,
    text: &str,
    key: &str,
) -> Result<Request, DeliveryError> {
    let sid = config["account_sid"]
        .as_str()
        .ok_or_else(|| configuration("set config.account_sid to the Twilio account's SID"))?;
    let token = secrets
        .get("auth_token")
        .ok_or_else(|| configuration("set the auth_token secret"))?;
    if from.is_empty() {
        return Err(configuration("set config.from to the sending number"));
    }
    let base = config["url"]
        .as_str()
        .unwrap_or(TWILIO)
        .trim_end_matches('/');
    let credentials = BASE64.encode(format!("{sid}:{token}"));
    Ok(Request {
        method: "POST".into(),
        url: format!("{base}/2010-04-01/Accounts/{sid}/Messages.json"),
        headers: vec![
            (
                "content-type".into(),
                "application/x-www-form-urlencoded".into(),
            ),
            ("authorization".into(), format!("Basic {credentials}")),
            ("i-twilio-idempotency-token".into(), key.into()),
        ],
        body: form(&[("To", to), ("From", from), ("Body", text)]),
    })
}

fn generic(
    config: &Json,
    secrets: &Secrets,
    to: &str,
    from: &str,
    text: &str,
    key: &str,
) -> Result<Request, DeliveryError> {
    let url = config["url"]
        .as_str()
        .ok_or_else(|| configuration("set config.url to the gateway's endpoint"))?;
    let field = |name: &str| config["fields"][name].as_str().unwrap_or(name).to_string();
    let pairs = [
        (field("to"), to),
        (field("text"), text),
        (field("from"), from),
    ];
    let (content_type, body) = if config["format"].as_str() == Some("form") {
        let pairs: Vec<(&str, &str)> = pairs.iter().map(|(n, v)| (n.as_str(), *v)).collect();
        ("application/x-www-form-urlencoded", form(&pairs))
    } else {
        let object: Map<String, Value> = pairs
            .iter()
            .filter(|(_, v)| !v.is_empty())
            .map(|(n, v)| (n.clone(), Value::String(v.to_string())))
            .collect();
        (
            "application/json",
            Value::Object(object).to_string().into_bytes(),
        )
    };
    let mut headers = vec![
        ("content-type".to_string(), content_type.to_string()),
        ("idempotency-key".into(), key.into()),
    ];
    if let Some(api_key) = secrets.get("api_key") {
        headers.push(("authorization".into(), format!("Bearer {api_key}")));
    }
    Ok(Request {
        method: "POST".into(),
        url: url.into(),
        headers,
        body,
    })
}

fn not_reached(error: HttpError) -> DeliveryError {
    DeliveryError::Temporary(match error {
        HttpError::Timeout => "the gateway did not answer in time".into(),
        HttpError::Failed(why) => format!("the gateway could not be reached: {why}"),
    })
}

fn answer(response: &Response, count: &Count) -> Result<Delivery, DeliveryError> {
    let status = response.status;
    let body: Json = portico_sdk::serde_json::from_slice(&response.body).unwrap_or_default();
    let why = match body["message"].as_str() {
        Some(message) => format!("the gateway answered {status}: {}", clip(message)),
        None => format!("the gateway answered {status}"),
    };
    match status {
        200..=299 => Ok(Delivery {
            provider_id: ["sid", "id", "message_id"]
                .iter()
                .find_map(|k| body[*k].as_str())
                .map(clip),
            detail: Some(count.describe()),
        }),
        // Twilio: 21211 the 'To' number is invalid, 21614 it is not a mobile number.
        400 if matches!(body["code"].as_u64(), Some(21211 | 21614)) => {
            Err(DeliveryError::InvalidRecipient(why))
        }
        401 | 403 => Err(DeliveryError::Configuration(why)),
        408 | 429 | 500..=599 => Err(DeliveryError::Temporary(why)),
        _ => Err(DeliveryError::Rejected(why)),
    }
}

/// A gateway's text, cut to a length worth recording.
fn clip(text: &str) -> String {
    text.chars().take(200).collect()
}

register_channel!(Sms);
