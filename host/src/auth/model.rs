//! Staff accounts and API tokens as the host and the API see them.

use serde::Serialize;
use sqlx::FromRow;
use utoipa::ToSchema;

use crate::db;

/// A staff account as the API shows it.
#[derive(Debug, Clone, Serialize, FromRow, ToSchema)]
pub struct StaffUser {
    pub id: String,
    pub email: String,
    pub display_name: String,
    #[serde(skip)]
    pub disabled: i64,
    #[serde(skip)]
    pub created_at: i64,
}

#[derive(Serialize, ToSchema)]
pub struct StaffUserView {
    pub id: String,
    pub email: String,
    pub display_name: String,
    pub disabled: bool,
    #[schema(value_type = String, format = DateTime)]
    pub created_at: jiff::Timestamp,
}

impl From<StaffUser> for StaffUserView {
    fn from(u: StaffUser) -> Self {
        Self {
            id: u.id,
            email: u.email,
            display_name: u.display_name,
            disabled: u.disabled != 0,
            created_at: db::timestamp(u.created_at),
        }
    }
}

/// An API token's metadata; the secret itself is shown once, at creation.
#[derive(Debug, Clone, Serialize, FromRow)]
pub struct TokenRecord {
    pub id: String,
    pub user_id: Option<String>,
    pub name: String,
    pub created_at: i64,
    pub expires_at: Option<i64>,
    pub revoked_at: Option<i64>,
}

#[derive(Serialize, ToSchema)]
pub struct TokenView {
    pub id: String,
    pub user_id: Option<String>,
    pub name: String,
    #[schema(value_type = String, format = DateTime)]
    pub created_at: jiff::Timestamp,
    #[schema(value_type = Option<String>, format = DateTime)]
    pub expires_at: Option<jiff::Timestamp>,
    #[schema(value_type = Option<String>, format = DateTime)]
    pub revoked_at: Option<jiff::Timestamp>,
}

impl From<TokenRecord> for TokenView {
    fn from(t: TokenRecord) -> Self {
        Self {
            id: t.id,
            user_id: t.user_id,
            name: t.name,
            created_at: db::timestamp(t.created_at),
            expires_at: t.expires_at.map(db::timestamp),
            revoked_at: t.revoked_at.map(db::timestamp),
        }
    }
}

/// A newly issued token, including the secret.
#[derive(Serialize, ToSchema)]
pub struct IssuedToken {
    /// The bearer token. It is shown only this once.
    pub token: String,
    #[serde(flatten)]
    pub record: TokenView,
}

/// Longest lifetime a token may be given.
pub const MAX_TOKEN_DAYS: u32 = 3650;
