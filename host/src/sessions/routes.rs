//! `POST /api/v1/auth/token`.

use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};

use super::service::{self, Credentials};
use crate::AppState;
use crate::auth::IssuedToken;
use crate::error::Result;
use crate::http::extract::Json;
use crate::types::Email;

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SignIn {
    /// Tenant id or slug.
    pub tenant: String,
    #[schema(value_type = String)]
    pub email: Email,
    pub password: String,
    /// What the token is for; defaults to "sign-in".
    pub name: Option<String>,
    /// Defaults to 30 days.
    pub expires_in_days: Option<u32>,
}

#[derive(Serialize, ToSchema)]
pub struct SignedIn {
    #[serde(flatten)]
    pub issued: IssuedToken,
    /// The tenant's id, for use in `/api/v1/tenants/{tenant}/…` paths.
    pub tenant_id: String,
}

/// Exchanges a staff user's email and password for an API token.
#[utoipa::path(post, path = "/api/v1/auth/token", tag = "staff", request_body = SignIn,
    security(()),
    responses((status = 201, body = SignedIn), (status = 401, body = crate::error::ErrorBody)))]
async fn sign_in(
    State(state): State<AppState>,
    Json(input): Json<SignIn>,
) -> Result<(StatusCode, Json<SignedIn>)> {
    let given = Credentials {
        tenant: &input.tenant,
        email: &input.email,
        password: &input.password,
        token_name: input.name.as_deref().unwrap_or("sign-in"),
        expires_in_days: input.expires_in_days.unwrap_or(30),
    };
    let (tenant, issued) = service::sign_in(&state, given).await?;
    Ok((
        StatusCode::CREATED,
        Json(SignedIn {
            issued,
            tenant_id: tenant.id.to_string(),
        }),
    ))
}

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(sign_in))
}
