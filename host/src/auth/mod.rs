//! Staff accounts, password hashing and bearer API tokens.
//!
//! Passwords are hashed with argon2id at OWASP's recommended cost. API tokens carry 256 random
//! bits, so a fast SHA-256 of the token is a safe lookup key; only that hash is stored.

pub mod routes;

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use axum::extract::FromRequestParts;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use base64::Engine as _;
use rand::RngCore;
use serde::Serialize;
use sha2::{Digest, Sha256};
use sqlx::FromRow;
use utoipa::ToSchema;

use crate::AppState;
use crate::db::{self, Pool, now_ms};
use crate::error::{Error, Result};
use crate::types::{Email, TenantId};

/// Prefix that makes leaked Portico tokens easy to recognise in logs and secret scanners.
const TOKEN_PREFIX: &str = "ptk_";

/// Shortest password accepted for a staff account.
pub const MIN_PASSWORD_LEN: usize = 12;

fn argon2() -> Argon2<'static> {
    // OWASP: argon2id, 19 MiB memory, 2 iterations, 1 lane.
    let params = Params::new(19 * 1024, 2, 1, None).expect("valid argon2 parameters");
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

/// Hashes a password into a PHC string (algorithm, parameters and salt included).
pub fn hash_password(password: &str) -> anyhow::Result<String> {
    let salt = SaltString::generate(&mut argon2::password_hash::rand_core::OsRng);
    argon2()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| anyhow::anyhow!("hashing password: {e}"))
}

/// Checks a password against a stored PHC string; a malformed hash never matches.
pub fn verify_password(password: &str, phc: &str) -> bool {
    PasswordHash::new(phc)
        .is_ok_and(|hash| argon2().verify_password(password.as_bytes(), &hash).is_ok())
}

/// Checks a new password's strength and hashes it on the blocking pool, since a hash takes
/// tens of milliseconds of CPU by design.
pub async fn hash_new_password(password: &str) -> Result<String> {
    if password.chars().count() < MIN_PASSWORD_LEN {
        return Err(Error::invalid(
            "weak_password",
            format!("a password needs at least {MIN_PASSWORD_LEN} characters"),
        ));
    }
    let password = password.to_string();
    let hash = tokio::task::spawn_blocking(move || hash_password(&password))
        .await
        .map_err(|e| Error::Internal(e.into()))??;
    Ok(hash)
}

/// A fresh token: what the client keeps, and the hash we store.
pub fn generate_token() -> (String, String) {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    let token = format!(
        "{TOKEN_PREFIX}{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    );
    let hash = hash_token(&token);
    (token, hash)
}

/// The stored form of a token.
pub fn hash_token(token: &str) -> String {
    sha256_hex(token.as_bytes())
}

/// SHA-256 as lower-case hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Who is calling the API.
#[derive(Debug, Clone)]
pub struct Caller {
    pub token_id: String,
    pub principal: Principal,
}

#[derive(Debug, Clone)]
pub enum Principal {
    /// A platform operator: manages tenants and may act inside any of them.
    Platform { token_name: String },
    /// A staff user of one tenant, limited by that tenant's role policies.
    Staff {
        tenant_id: TenantId,
        user_id: String,
        email: String,
    },
}

impl Caller {
    pub fn is_platform(&self) -> bool {
        matches!(self.principal, Principal::Platform { .. })
    }

    /// How the audit log names this caller.
    pub fn actor(&self) -> String {
        match &self.principal {
            Principal::Platform { token_name } => {
                format!("platform token {token_name:?} ({})", self.token_id)
            }
            Principal::Staff { email, user_id, .. } => format!("user {email} ({user_id})"),
        }
    }

    pub fn require_platform(&self) -> Result<()> {
        if self.is_platform() {
            Ok(())
        } else {
            Err(Error::Forbidden("only platform administrators may do this"))
        }
    }
}

#[derive(FromRow)]
struct TokenRow {
    id: String,
    name: String,
    tenant_id: Option<String>,
    user_id: Option<String>,
    email: Option<String>,
    disabled: Option<i64>,
}

/// Resolves a presented bearer token to its caller: unknown, expired, revoked tokens and tokens
/// of disabled users are all simply unauthorised.
pub async fn authenticate(pool: &Pool, token: &str) -> Result<Caller> {
    let row: Option<TokenRow> = sqlx::query_as(
        "SELECT t.id, t.name, t.tenant_id, t.user_id, u.email, u.disabled
         FROM api_tokens t LEFT JOIN staff_users u ON u.id = t.user_id AND u.tenant_id = t.tenant_id
         WHERE t.token_hash = $1 AND t.revoked_at IS NULL AND (t.expires_at IS NULL OR t.expires_at > $2)",
    )
    .bind(hash_token(token))
    .bind(now_ms())
    .fetch_optional(pool)
    .await?;
    let row = row.ok_or(Error::Unauthorized)?;
    let principal = match (row.tenant_id, row.user_id, row.email) {
        (None, None, _) => Principal::Platform {
            token_name: row.name,
        },
        (Some(tenant_id), Some(user_id), Some(email)) if row.disabled == Some(0) => {
            Principal::Staff {
                tenant_id: TenantId::from_db(tenant_id),
                user_id,
                email,
            }
        }
        _ => return Err(Error::Unauthorized),
    };
    Ok(Caller {
        token_id: row.id,
        principal,
    })
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self> {
        if let Some(caller) = parts.extensions.get::<Caller>() {
            return Ok(caller.clone());
        }
        let header = parts
            .headers
            .get(AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        let token = header
            .strip_prefix("Bearer ")
            .or_else(|| header.strip_prefix("bearer "))
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .ok_or(Error::Unauthorized)?;
        let caller = authenticate(&state.db.pool, token).await?;
        parts.extensions.insert(caller.clone());
        Ok(caller)
    }
}

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

/// Creates a staff user; the email is unique within the tenant.
pub async fn create_user(
    conn: &mut sqlx::AnyConnection,
    tenant: &TenantId,
    email: &Email,
    display_name: &str,
    password_hash: Option<&str>,
) -> Result<StaffUser> {
    let id = db::new_id();
    let now = now_ms();
    let result = sqlx::query(
        "INSERT INTO staff_users (id, tenant_id, email, display_name, password_hash, disabled, created_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, 0, $6, $6)",
    )
    .bind(&id)
    .bind(tenant.as_str())
    .bind(email.as_str())
    .bind(display_name)
    .bind(password_hash)
    .bind(now)
    .execute(&mut *conn)
    .await;
    match result {
        Err(e) if db::is_unique_violation(&e) => Err(Error::conflict(
            "email_taken",
            format!("a staff user with email {email} already exists"),
        )),
        Err(e) => Err(e.into()),
        Ok(_) => Ok(StaffUser {
            id,
            email: email.to_string(),
            display_name: display_name.to_string(),
            disabled: 0,
            created_at: now,
        }),
    }
}

pub async fn find_user(pool: &Pool, tenant: &TenantId, user_id: &str) -> Result<StaffUser> {
    sqlx::query_as(
        "SELECT id, email, display_name, disabled, created_at FROM staff_users WHERE tenant_id = $1 AND id = $2",
    )
    .bind(tenant.as_str())
    .bind(user_id)
    .fetch_optional(pool)
    .await?
    .ok_or(Error::NotFound("staff user"))
}

pub async fn find_user_by_email(
    pool: &Pool,
    tenant: &TenantId,
    email: &Email,
) -> Result<StaffUser> {
    sqlx::query_as(
        "SELECT id, email, display_name, disabled, created_at FROM staff_users WHERE tenant_id = $1 AND email = $2",
    )
    .bind(tenant.as_str())
    .bind(email.as_str())
    .fetch_optional(pool)
    .await?
    .ok_or(Error::NotFound("staff user"))
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

/// Issues a token for a staff user (`owner = Some((tenant, user))`) or for the platform (`None`).
pub async fn issue_token(
    conn: &mut sqlx::AnyConnection,
    owner: Option<(&TenantId, &str)>,
    name: &str,
    expires_in_days: Option<u32>,
) -> Result<IssuedToken> {
    if name.trim().is_empty() || name.len() > 100 {
        return Err(Error::invalid(
            "invalid_name",
            "a token name is 1 to 100 characters",
        ));
    }
    if let Some(days) = expires_in_days
        && !(1..=MAX_TOKEN_DAYS).contains(&days)
    {
        return Err(Error::invalid(
            "invalid_expiry",
            format!("expires_in_days must be between 1 and {MAX_TOKEN_DAYS}"),
        ));
    }
    let (token, hash) = generate_token();
    let now = now_ms();
    let record = TokenRecord {
        id: db::new_id(),
        user_id: owner.map(|(_, user)| user.to_string()),
        name: name.trim().to_string(),
        created_at: now,
        expires_at: expires_in_days.map(|d| now + i64::from(d) * 86_400_000),
        revoked_at: None,
    };
    sqlx::query(
        "INSERT INTO api_tokens (id, tenant_id, user_id, name, token_hash, created_at, expires_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(&record.id)
    .bind(owner.map(|(tenant, _)| tenant.as_str()))
    .bind(&record.user_id)
    .bind(&record.name)
    .bind(&hash)
    .bind(now)
    .bind(record.expires_at)
    .execute(&mut *conn)
    .await?;
    Ok(IssuedToken {
        token,
        record: record.into(),
    })
}
