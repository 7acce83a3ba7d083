//! Outbound HTTP through the host, to hosts the manifest lists and the tenant approved.

pub use crate::bindings::channel::portico::plugin::http::{HttpError, Request, Response};

/// Sends a request through the host and waits for the response.
pub fn send(request: &Request) -> Result<Response, HttpError> {
    crate::bindings::channel::portico::plugin::http::send(request)
}

/// A `GET` request without headers.
pub fn get(url: &str) -> Result<Response, HttpError> {
    send(&Request {
        method: "GET".into(),
        url: url.into(),
        headers: Vec::new(),
        body: Vec::new(),
    })
}

/// A `POST` of a JSON body.
pub fn post_json(url: &str, body: &serde_json::Value) -> Result<Response, HttpError> {
    send(&Request {
        method: "POST".into(),
        url: url.into(),
        headers: vec![("content-type".into(), "application/json".into())],
        body: body.to_string().into_bytes(),
    })
}
