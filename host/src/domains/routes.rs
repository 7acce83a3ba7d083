//! `/api/v1/tenants/{tenant}/domains`: custom domains and their verification.

use axum::extract::State;
use axum::http::StatusCode;
use base64::Engine as _;
use rand::RngCore;
use serde::{Deserialize, Serialize};
use serde_json::json;
use sqlx::FromRow;
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};

use super::{LookupError, challenge_name};
use crate::AppState;
use crate::audit::{self, Change};
use crate::db::{self, Pool, now_ms};
use crate::error::{Error, Result};
use crate::events::Event;
use crate::http::extract::{Json, Path, Query};
use crate::http::guard::Scope;
use crate::types::{DomainName, Page, PageParams, TenantId};

#[derive(FromRow)]
struct DomainRow {
    id: String,
    name: String,
    challenge_token: String,
    verified_at: Option<i64>,
    created_at: i64,
}

/// A custom domain and what to publish to verify it.
#[derive(Serialize, ToSchema)]
pub struct Domain {
    pub id: String,
    pub name: String,
    /// `pending` until the TXT record has been seen, then `verified`.
    pub status: String,
    /// Publish a TXT record with this name…
    pub challenge_record: String,
    /// …holding this value, then call `verify`.
    pub challenge_token: String,
    #[schema(value_type = Option<String>, format = DateTime)]
    pub verified_at: Option<jiff::Timestamp>,
    #[schema(value_type = String, format = DateTime)]
    pub created_at: jiff::Timestamp,
}

impl From<DomainRow> for Domain {
    fn from(r: DomainRow) -> Self {
        let name = DomainName::parse(&r.name)
            .map(|d| challenge_name(&d))
            .unwrap_or_default();
        Self {
            id: r.id,
            status: if r.verified_at.is_some() {
                "verified"
            } else {
                "pending"
            }
            .into(),
            challenge_record: name,
            name: r.name,
            challenge_token: r.challenge_token,
            verified_at: r.verified_at.map(db::timestamp),
            created_at: db::timestamp(r.created_at),
        }
    }
}

async fn find(pool: &Pool, tenant: &TenantId, id: &str) -> Result<DomainRow> {
    sqlx::query_as(
        "SELECT id, name, challenge_token, verified_at, created_at FROM domains WHERE tenant_id = $1 AND id = $2",
    )
    .bind(tenant)
    .bind(id)
    .fetch_optional(pool)
    .await?
    .ok_or(Error::NotFound("domain"))
}

#[utoipa::path(get, path = "/api/v1/tenants/{tenant}/domains", tag = "domains",
    params(("tenant" = String, Path, description = "Tenant id or slug"), PageParams),
    responses((status = 200, body = Page<Domain>)))]
async fn list_domains(
    State(state): State<AppState>,
    scope: Scope,
    Query(page): Query<PageParams>,
) -> Result<Json<Page<Domain>>> {
    let limit = page.limit()?;
    let rows: Vec<DomainRow> = sqlx::query_as(
        "SELECT id, name, challenge_token, verified_at, created_at FROM domains
         WHERE tenant_id = $1 AND id > $2 ORDER BY id LIMIT $3",
    )
    .bind(&scope.tenant.id)
    .bind(page.after())
    .bind(limit + 1)
    .fetch_all(&state.db.pool)
    .await?;
    Ok(Json(
        Page::from_rows(rows, limit, |d| &d.id).map(Domain::from),
    ))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AddDomain {
    #[schema(value_type = String, example = "service.example.com")]
    pub name: DomainName,
}

/// Adds a custom domain, pending until verified.
#[utoipa::path(post, path = "/api/v1/tenants/{tenant}/domains", tag = "domains",
    params(("tenant" = String, Path, description = "Tenant id or slug")),
    request_body = AddDomain,
    responses((status = 201, body = Domain)))]
async fn add_domain(
    State(state): State<AppState>,
    scope: Scope,
    Json(input): Json<AddDomain>,
) -> Result<(StatusCode, Json<Domain>)> {
    let base = &state.config.base_domain;
    let name = input.name.as_str();
    if name == base || name.ends_with(&format!(".{base}")) {
        return Err(Error::invalid(
            "reserved_domain",
            format!("names under {base} are the platform's own"),
        ));
    }
    let mut secret = [0u8; 24];
    rand::rng().fill_bytes(&mut secret);
    let row = DomainRow {
        id: db::new_id(),
        name: name.to_string(),
        challenge_token: format!(
            "portico-verify-{}",
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(secret)
        ),
        verified_at: None,
        created_at: now_ms(),
    };
    let tenant = &scope.tenant.id;
    let mut tx = state.events.begin().await?;
    let inserted = sqlx::query(
        "INSERT INTO domains (id, tenant_id, name, challenge_token, created_at) VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(&row.id)
    .bind(tenant)
    .bind(&row.name)
    .bind(&row.challenge_token)
    .bind(row.created_at)
    .execute(&mut *tx)
    .await;
    match inserted {
        Err(e) if db::is_unique_violation(&e) => {
            return Err(Error::conflict(
                "domain_exists",
                format!("{name} is already added"),
            ));
        }
        other => other?,
    };
    let change = Change {
        tenant: Some(tenant),
        action: "domain.create",
        target: &row.id,
        before: None,
        after: Some(json!({"name": name})),
    };
    let actor = scope.caller.actor();
    audit::record(&mut tx, &actor, change).await?;
    tx.emit(Some(tenant), &row.name, &actor, Event::DomainChanged)
        .await?;
    tx.commit().await?;
    Ok((StatusCode::CREATED, Json(row.into())))
}

#[utoipa::path(get, path = "/api/v1/tenants/{tenant}/domains/{domain}", tag = "domains",
    params(("tenant" = String, Path, description = "Tenant id or slug"), ("domain" = String, Path)),
    responses((status = 200, body = Domain)))]
async fn get_domain(
    State(state): State<AppState>,
    scope: Scope,
    Path((_, id)): Path<(String, String)>,
) -> Result<Json<Domain>> {
    Ok(Json(
        find(&state.db.pool, &scope.tenant.id, &id).await?.into(),
    ))
}

/// Looks up the challenge TXT record; when it holds the token, the domain becomes active.
#[utoipa::path(post, path = "/api/v1/tenants/{tenant}/domains/{domain}/verify", tag = "domains",
    params(("tenant" = String, Path, description = "Tenant id or slug"), ("domain" = String, Path)),
    responses((status = 200, body = Domain), (status = 422, body = crate::error::ErrorBody)))]
async fn verify_domain(
    State(state): State<AppState>,
    scope: Scope,
    Path((_, id)): Path<(String, String)>,
) -> Result<Json<Domain>> {
    let tenant = &scope.tenant.id;
    let mut row = find(&state.db.pool, tenant, &id).await?;
    if row.verified_at.is_some() {
        return Ok(Json(row.into()));
    }
    let record = challenge_name(&DomainName::parse(&row.name)?);
    let values = state.dns.txt(&record).await.map_err(|e| match e {
        LookupError::NoRecord(_) => Error::invalid("domain_verification_failed", e.to_string()),
        LookupError::Failed(_) => Error::conflict("dns_unavailable", e.to_string()),
    })?;
    if !values.iter().any(|v| v.trim() == row.challenge_token) {
        return Err(Error::invalid(
            "domain_verification_failed",
            format!("the TXT record at {record} does not hold this domain's challenge token"),
        ));
    }
    let now = now_ms();
    let mut tx = state.events.begin().await?;
    let updated =
        sqlx::query("UPDATE domains SET verified_at = $3 WHERE tenant_id = $1 AND id = $2")
            .bind(tenant)
            .bind(&id)
            .bind(now)
            .execute(&mut *tx)
            .await;
    match updated {
        Err(e) if db::is_unique_violation(&e) => {
            return Err(Error::conflict(
                "domain_taken",
                format!("{} is already verified by another tenant", row.name),
            ));
        }
        other => other?,
    };
    let change = Change {
        tenant: Some(tenant),
        action: "domain.verify",
        target: &id,
        before: Some(json!({"name": row.name, "status": "pending"})),
        after: Some(json!({"name": row.name, "status": "verified"})),
    };
    let actor = scope.caller.actor();
    audit::record(&mut tx, &actor, change).await?;
    tx.emit(Some(tenant), &row.name, &actor, Event::DomainChanged)
        .await?;
    tx.commit().await?;
    row.verified_at = Some(now);
    Ok(Json(row.into()))
}

#[utoipa::path(delete, path = "/api/v1/tenants/{tenant}/domains/{domain}", tag = "domains",
    params(("tenant" = String, Path, description = "Tenant id or slug"), ("domain" = String, Path)),
    responses((status = 204)))]
async fn delete_domain(
    State(state): State<AppState>,
    scope: Scope,
    Path((_, id)): Path<(String, String)>,
) -> Result<StatusCode> {
    let tenant = &scope.tenant.id;
    let row = find(&state.db.pool, tenant, &id).await?;
    let mut tx = state.events.begin().await?;
    sqlx::query("DELETE FROM domains WHERE tenant_id = $1 AND id = $2")
        .bind(tenant)
        .bind(&id)
        .execute(&mut *tx)
        .await?;
    let change = Change {
        tenant: Some(tenant),
        action: "domain.delete",
        target: &id,
        before: Some(json!({"name": row.name})),
        after: None,
    };
    let actor = scope.caller.actor();
    audit::record(&mut tx, &actor, change).await?;
    tx.emit(Some(tenant), &row.name, &actor, Event::DomainChanged)
        .await?;
    tx.commit().await?;
    Ok(StatusCode::NO_CONTENT)
}

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_domains, add_domain))
        .routes(routes!(get_domain, delete_domain))
        .routes(routes!(verify_domain))
}
