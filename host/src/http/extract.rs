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

/// `axum::Json` that rejects with an [`Error`]. The body must be an object, and a number with
/// no fraction (`277.0`) counts as the integer it is, as JSON Schema's `integer` says, so a field
/// typed `u32` takes it.
pub struct Json<T>(pub T);

impl<T: serde::de::DeserializeOwned, S: Send + Sync> FromRequest<S> for Json<T> {
    type Rejection = Error;

    async fn from_request(request: axum::extract::Request, state: &S) -> Result<Self, Error> {
        let axum::Json(mut value) =
            axum::Json::<serde_json::Value>::from_request(request, state).await?;
        // Every body is an object; serde would also fill a struct from an array of its fields.
        if !value.is_object() {
            return Err(Error::invalid(
                "invalid_body",
                "the body must be a JSON object",
            ));
        }
        whole_numbers_as_integers(&mut value);
        serde_path_to_error::deserialize(value)
            .map(Json)
            .map_err(|e| {
                Error::invalid(
                    "invalid_body",
                    format!("Failed to deserialize the JSON body into the target type: {e}"),
                )
            })
    }
}

/// Rewrites every number with no fractional part, such as `277.0`, as an integer.
fn whole_numbers_as_integers(value: &mut serde_json::Value) {
    match value {
        serde_json::Value::Number(n) if !n.is_i64() && !n.is_u64() => {
            if let Some(f) = n.as_f64()
                && f.fract() == 0.0
                && f.abs() < 9.0e15
            {
                // Exact: every integer below 2^53 is a float without rounding.
                *value = serde_json::Value::from(f as i64);
            }
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(whole_numbers_as_integers),
        serde_json::Value::Object(fields) => {
            fields.values_mut().for_each(whole_numbers_as_integers)
        }
        _ => {}
    }
}

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whole_numbers_are_integers_and_fractions_stay() {
        let mut value = serde_json::json!({"a": 277.0, "b": [1.5, -3.0], "c": {"d": 1e3}});
        whole_numbers_as_integers(&mut value);
        assert_eq!(
            value,
            serde_json::json!({"a": 277, "b": [1.5, -3], "c": {"d": 1000}})
        );
        let n: u32 = serde_json::from_value(value["a"].clone()).unwrap();
        assert_eq!(n, 277);
    }
}
