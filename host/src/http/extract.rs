//! Extractors whose rejections are our JSON errors instead of axum's plain-text ones.

use axum::extract::{FromRequest, FromRequestParts};

use crate::error::Error;

/// The client's address as [`super::client_address`] reads it (behind a trusted proxy, from
/// `X-Forwarded-For`); `None` where the server has no peer address, as in some tests.
pub struct ClientAddress(pub Option<std::net::IpAddr>);

impl FromRequestParts<crate::AppState> for ClientAddress {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &crate::AppState,
    ) -> Result<Self, Self::Rejection> {
        Ok(Self(super::client_address(
            state,
            &parts.headers,
            &parts.extensions,
        )))
    }
}

/// `axum::Json` that rejects with an [`Error`].
#[derive(FromRequest)]
#[from_request(via(axum::Json), rejection(Error))]
pub struct Json<T>(pub T);

/// `axum::extract::Query` that rejects with an [`Error`].
#[derive(FromRequestParts)]
#[from_request(via(axum::extract::Query), rejection(Error))]
pub struct Query<T>(pub T);

/// `axum::extract::Path` that rejects with an [`Error`].
#[derive(FromRequestParts)]
#[from_request(via(axum::extract::Path), rejection(Error))]
pub struct Path<T>(pub T);

impl<T: serde::Serialize> axum::response::IntoResponse for Json<T> {
    fn into_response(self) -> axum::response::Response {
        axum::Json(self.0).into_response()
    }
}
