//! A custom domain of a tenant and what to publish to verify it.

use serde::Serialize;
use sqlx::FromRow;
use utoipa::ToSchema;

use crate::db;
use crate::types::DomainName;

/// The TXT record name that proves control of `domain`.
pub fn challenge_name(domain: &DomainName) -> String {
    format!("_portico-challenge.{domain}")
}

/// A domain as stored.
#[derive(FromRow)]
pub(super) struct DomainRow {
    pub id: String,
    pub name: String,
    pub challenge_token: String,
    pub verified_at: Option<i64>,
    pub created_at: i64,
    pub checked_at: Option<i64>,
    pub failing_since: Option<i64>,
    pub problem: Option<String>,
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
    /// When the TXT record was last checked (at verification, then periodically).
    #[schema(value_type = Option<String>, format = DateTime)]
    pub checked_at: Option<jiff::Timestamp>,
    /// Since when a verified domain's TXT record has been missing; it stops serving once the
    /// grace period has passed.
    #[schema(value_type = Option<String>, format = DateTime)]
    pub failing_since: Option<jiff::Timestamp>,
    /// What is wrong, for the admin: a record gone, or a domain that stopped serving and why.
    pub problem: Option<String>,
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
            checked_at: r.checked_at.map(db::timestamp),
            failing_since: r.failing_since.map(db::timestamp),
            problem: r.problem,
        }
    }
}
