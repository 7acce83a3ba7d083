//! Tenants: the service companies whose portals the platform hosts.

pub mod routes;

use serde::Serialize;
use sqlx::FromRow;
use utoipa::ToSchema;

use crate::db::{self, Pool};
use crate::error::{Error, Result};
use crate::types::{Language, Slug, TenantId, TimeZoneName};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum TenantStatus {
    Active,
    Suspended,
}

impl TenantStatus {
    fn as_str(&self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Suspended => "suspended",
        }
    }
}

#[derive(FromRow)]
struct TenantRow {
    id: TenantId,
    slug: String,
    display_name: String,
    time_zone: String,
    language: String,
    status: String,
    created_at: i64,
    updated_at: i64,
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
            status: if r.status == "suspended" {
                TenantStatus::Suspended
            } else {
                TenantStatus::Active
            },
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
}

const COLUMNS: &str = "id, slug, display_name, time_zone, language, status, created_at, updated_at";

/// Finds a tenant by id or slug.
pub async fn find(pool: &Pool, ident: &str) -> Result<Tenant> {
    let row: Option<TenantRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM tenants WHERE id = $1 OR slug = $1"
    )))
    .bind(ident)
    .fetch_optional(pool)
    .await?;
    row.map(Tenant::from).ok_or(Error::NotFound("tenant"))
}

pub async fn list(pool: &Pool, after: &str, limit: i64) -> Result<Vec<Tenant>> {
    let rows: Vec<TenantRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM tenants WHERE id > $1 ORDER BY id LIMIT $2"
    )))
    .bind(after)
    .bind(limit)
    .fetch_all(pool)
    .await?;
    Ok(rows.into_iter().map(Tenant::from).collect())
}

/// What a new tenant is made of.
pub struct NewTenant {
    pub slug: Slug,
    pub display_name: String,
    pub time_zone: TimeZoneName,
    pub language: Language,
}

pub fn check_display_name(name: &str) -> Result<String> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 200 {
        return Err(Error::invalid(
            "invalid_display_name",
            "a display name is 1 to 200 characters",
        ));
    }
    Ok(name.to_string())
}

pub async fn insert(conn: &mut sqlx::AnyConnection, new: &NewTenant) -> Result<Tenant> {
    let now = db::now_ms();
    let row = TenantRow {
        id: TenantId::from_db(db::new_id()),
        slug: new.slug.to_string(),
        display_name: check_display_name(&new.display_name)?,
        time_zone: new.time_zone.to_string(),
        language: new.language.to_string(),
        status: TenantStatus::Active.as_str().to_string(),
        created_at: now,
        updated_at: now,
    };
    let result = sqlx::query(
        "INSERT INTO tenants (id, slug, display_name, time_zone, language, status, created_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $7)",
    )
    .bind(&row.id)
    .bind(&row.slug)
    .bind(&row.display_name)
    .bind(&row.time_zone)
    .bind(&row.language)
    .bind(&row.status)
    .bind(now)
    .execute(&mut *conn)
    .await;
    match result {
        Err(e) if db::is_unique_violation(&e) => Err(Error::conflict(
            "slug_taken",
            format!("the slug {:?} is taken", new.slug.as_str()),
        )),
        Err(e) => Err(e.into()),
        Ok(_) => {
            // What every tenant starts with: the built-in plugins and a default portal profile.
            crate::plugins::builtin::install_for(conn, &row.id).await?;
            crate::profiles::create_default(conn, &row.id, &new.language).await?;
            Ok(row.into())
        }
    }
}

/// Writes a tenant's editable fields back.
pub async fn update(conn: &mut sqlx::AnyConnection, tenant: &Tenant) -> Result<Tenant> {
    let now = db::now_ms();
    let result = sqlx::query(
        "UPDATE tenants SET slug = $2, display_name = $3, time_zone = $4, language = $5, status = $6, updated_at = $7
         WHERE id = $1",
    )
    .bind(&tenant.id)
    .bind(&tenant.slug)
    .bind(&tenant.display_name)
    .bind(&tenant.time_zone)
    .bind(&tenant.language)
    .bind(tenant.status.as_str())
    .bind(now)
    .execute(conn)
    .await;
    match result {
        Err(e) if db::is_unique_violation(&e) => Err(Error::conflict(
            "slug_taken",
            format!("the slug {:?} is taken", tenant.slug),
        )),
        Err(e) => Err(e.into()),
        Ok(r) if r.rows_affected() == 0 => Err(Error::NotFound("tenant")),
        Ok(_) => Ok(Tenant {
            updated_at: db::timestamp(now),
            ..tenant.clone()
        }),
    }
}
