//! A tenant: a service company whose portals the platform hosts.

use serde::Serialize;
use sqlx::FromRow;
use utoipa::ToSchema;

use crate::db;
use crate::error::Error;
use crate::types::{Language, Slug, TenantId, TimeZoneName};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum TenantStatus {
    Active,
    Suspended,
}

impl TenantStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Suspended => "suspended",
        }
    }
}

impl TryFrom<String> for TenantStatus {
    type Error = Error;

    fn try_from(stored: String) -> Result<Self, Error> {
        match stored.as_str() {
            "active" => Ok(Self::Active),
            "suspended" => Ok(Self::Suspended),
            other => Err(Error::Internal(anyhow::anyhow!(
                "stored tenant status {other:?}"
            ))),
        }
    }
}

#[derive(FromRow)]
pub(super) struct TenantRow {
    pub id: TenantId,
    pub slug: String,
    pub display_name: String,
    pub time_zone: String,
    pub language: String,
    #[sqlx(try_from = "String")]
    pub status: TenantStatus,
    pub created_at: i64,
    pub updated_at: i64,
}

/// A tenant as the API shows it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Tenant {
    #[schema(value_type = String)]
    pub id: TenantId,
    pub slug: String,
    pub display_name: String,
    /// Default IANA time zone of the tenant's portals.
    pub time_zone: String,
    /// Default language of the tenant's portals.
    pub language: String,
    pub status: TenantStatus,
    #[schema(value_type = String, format = DateTime)]
    pub created_at: jiff::Timestamp,
    #[schema(value_type = String, format = DateTime)]
    pub updated_at: jiff::Timestamp,
}

impl From<TenantRow> for Tenant {
    fn from(r: TenantRow) -> Self {
        Self {
            id: r.id,
            slug: r.slug,
            display_name: r.display_name,
            time_zone: r.time_zone,
            language: r.language,
            status: r.status,
            created_at: db::timestamp(r.created_at),
            updated_at: db::timestamp(r.updated_at),
        }
    }
}

impl Tenant {
    pub fn is_suspended(&self) -> bool {
        self.status == TenantStatus::Suspended
    }

    /// True when `ident` (an id or a slug, as in API paths) names this tenant.
    pub fn is_named_by(&self, ident: &str) -> bool {
        self.id.as_str() == ident || self.slug == ident
    }

    /// What the audit log keeps of a tenant.
    pub fn summary(&self) -> serde_json::Value {
        serde_json::json!({"slug": self.slug, "display_name": self.display_name, "time_zone": self.time_zone,
            "language": self.language, "status": self.status})
    }
}

/// What a new tenant is made of.
pub struct NewTenant {
    pub slug: Slug,
    pub display_name: String,
    pub time_zone: TimeZoneName,
    pub language: Language,
}

/// The editable fields of a tenant; `None` leaves a field as it is.
#[derive(Default)]
pub struct TenantChanges {
    pub slug: Option<Slug>,
    pub display_name: Option<String>,
    pub time_zone: Option<TimeZoneName>,
    pub language: Option<Language>,
    pub status: Option<TenantStatus>,
}
