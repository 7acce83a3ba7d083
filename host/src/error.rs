//! The host's error type: each variant has a stable code and an HTTP status. Internal causes are
//! logged, never shown to the client.

use axum::Json;
use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

/// The JSON body of every API error.
#[derive(Debug, Serialize, serde::Deserialize, ToSchema)]
pub struct ErrorBody {
    /// Stable, machine-readable code such as `not_found` or `tenant_suspended`.
    pub code: String,
    /// Human-readable explanation.
    pub message: String,
    /// Where in a submitted text (a message template) the error is, counted from 1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub position: Option<TextPosition>,
}

/// A line and column in a submitted text, both counted from 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize, ToSchema)]
pub struct TextPosition {
    pub line: u32,
    pub column: u32,
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Malformed request: bad JSON, bad query string, bad path parameter.
    #[error("{message}")]
    BadRequest { code: &'static str, message: String },
    /// Well-formed but invalid input.
    #[error("{message}")]
    Invalid { code: &'static str, message: String },
    #[error("authentication required")]
    Unauthorized,
    #[error("{0}")]
    Forbidden(&'static str),
    #[error("tenant is suspended")]
    TenantSuspended,
    #[error("{0} not found")]
    NotFound(&'static str),
    /// Invalid input at a position in a submitted text.
    #[error("{message}")]
    InvalidAt {
        code: &'static str,
        message: String,
        position: TextPosition,
    },
    #[error("{message}")]
    Conflict { code: &'static str, message: String },
    /// A limit was reached; the request may be repeated after `retry_after_secs`.
    #[error("{message}")]
    TooManyRequests {
        code: &'static str,
        message: String,
        retry_after_secs: u64,
    },
    #[error("request body too large")]
    PayloadTooLarge,
    /// The request was not answered within the server's request timeout.
    #[error("the request took too long to answer")]
    Timeout,
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn invalid(code: &'static str, message: impl Into<String>) -> Self {
        Self::Invalid {
            code,
            message: message.into(),
        }
    }

    pub fn conflict(code: &'static str, message: impl Into<String>) -> Self {
        Self::Conflict {
            code,
            message: message.into(),
        }
    }

    pub fn status(&self) -> StatusCode {
        match self {
            Self::BadRequest { .. } => StatusCode::BAD_REQUEST,
            Self::Invalid { .. } | Self::InvalidAt { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            Self::Unauthorized => StatusCode::UNAUTHORIZED,
            Self::Forbidden(_) | Self::TenantSuspended => StatusCode::FORBIDDEN,
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::Conflict { .. } => StatusCode::CONFLICT,
            Self::TooManyRequests { .. } => StatusCode::TOO_MANY_REQUESTS,
            Self::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Self::Timeout => StatusCode::REQUEST_TIMEOUT,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    pub fn code(&self) -> &'static str {
        match self {
            Self::BadRequest { code, .. }
            | Self::Invalid { code, .. }
            | Self::InvalidAt { code, .. }
            | Self::Conflict { code, .. }
            | Self::TooManyRequests { code, .. } => code,
            Self::Unauthorized => "unauthorized",
            Self::Forbidden(_) => "forbidden",
            Self::TenantSuspended => "tenant_suspended",
            Self::NotFound(_) => "not_found",
            Self::PayloadTooLarge => "payload_too_large",
            Self::Timeout => "request_timeout",
            Self::Internal(_) => "internal",
        }
    }
}

impl From<sqlx::Error> for Error {
    fn from(err: sqlx::Error) -> Self {
        Self::Internal(err.into())
    }
}

impl IntoResponse for Error {
    fn into_response(self) -> Response {
        let message = match &self {
            Self::Internal(cause) => {
                tracing::error!(error = ?cause, "internal error");
                "something went wrong on our side; the request id in the x-request-id header helps us find it".to_string()
            }
            other => other.to_string(),
        };
        let position = match &self {
            Self::InvalidAt { position, .. } => Some(*position),
            _ => None,
        };
        let body = ErrorBody {
            code: self.code().to_string(),
            message,
            position,
        };
        let mut response = (self.status(), Json(body)).into_response();
        if let Self::TooManyRequests {
            retry_after_secs, ..
        } = &self
        {
            response
                .headers_mut()
                .insert(axum::http::header::RETRY_AFTER, (*retry_after_secs).into());
        }
        response
    }
}

impl From<JsonRejection> for Error {
    fn from(rejection: JsonRejection) -> Self {
        match rejection {
            JsonRejection::JsonDataError(e) => Self::invalid("invalid_body", e.body_text()),
            JsonRejection::MissingJsonContentType(_) => Self::BadRequest {
                code: "unsupported_content_type",
                message: "expected a request body with content-type application/json".into(),
            },
            JsonRejection::BytesRejection(e) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => {
                Self::PayloadTooLarge
            }
            other => Self::BadRequest {
                code: "malformed_body",
                message: other.body_text(),
            },
        }
    }
}

impl From<QueryRejection> for Error {
    fn from(rejection: QueryRejection) -> Self {
        Self::BadRequest {
            code: "invalid_query",
            message: rejection.body_text(),
        }
    }
}

impl From<PathRejection> for Error {
    fn from(rejection: PathRejection) -> Self {
        Self::BadRequest {
            code: "invalid_path",
            message: rejection.body_text(),
        }
    }
}
