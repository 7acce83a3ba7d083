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
use crate::http::extract::{ClientAddress, Json};
use crate::types::Email;

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SignIn {
    /// Tenant id or slug.
    pub tenant: String,
    #[schema(value_type = String, format = Email)]
    pub email: Email,
    pub password: String,
    /// What the token is for; defaults to "sign-in".
    pub name: Option<String>,
    /// 1 to 30; defaults to 30.
    #[schema(minimum = 1, maximum = 30)]
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
    responses((status = 201, body = SignedIn),
        (status = 400, body = crate::error::ErrorBody, description = "Malformed JSON"),
        (status = 401, body = crate::error::ErrorBody, description = "Unknown tenant or account, wrong password, or a disabled account: the same answer for each"),
        (status = 403, body = crate::error::ErrorBody, description = "The tenant is suspended (`tenant_suspended`)"),
        (status = 422, body = crate::error::ErrorBody, description = "`expires_in_days` out of range (`invalid_expiry`) or an invalid token name"),
        (status = 429, body = crate::error::ErrorBody, description = "Too many failed sign-ins from this address, or to this account from it (`too_many_attempts`), or too many passwords being checked at once (`busy`); `Retry-After` says when to try again")))]
async fn sign_in(
    State(state): State<AppState>,
    ClientAddress(client): ClientAddress,
    Json(input): Json<SignIn>,
) -> Result<(StatusCode, Json<SignedIn>)> {
    let given = Credentials {
        tenant: &input.tenant,
        email: &input.email,
        password: &input.password,
        token_name: input.name.as_deref().unwrap_or("sign-in"),
        expires_in_days: input.expires_in_days.unwrap_or(service::MAX_SIGN_IN_DAYS),
        client,
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
