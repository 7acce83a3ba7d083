//! Tracking links: one per ticket, `<portal host>/t/<token>`. The token carries 256 random bits
//! and only its SHA-256 is stored, so a leaked database opens no ticket.

use base64::Engine as _;
use rand::RngCore;

use crate::config::Config;
use crate::db::{self, Pool, now_ms};
use crate::error::Result;
use crate::types::{TenantId, hash_token};

/// A fresh token of 256 random bits and its stored hash.
fn generate() -> (String, String) {
    generate_of(32)
}

/// A fresh token of `len` random bytes and its stored hash.
fn generate_of(len: usize) -> (String, String) {
    let mut bytes = vec![0u8; len];
    rand::rng().fill_bytes(&mut bytes);
    let token = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
    let hash = hash_token(&token);
    (token, hash)
}

/// The link's URL on the tenant's portal host, shaped like the configured public URL.
pub fn url(config: &Config, slug: &str, token: &str) -> String {
    let (scheme, rest) = config
        .public_url
        .split_once("://")
        .unwrap_or(("https", &config.public_url));
    let authority = rest.split('/').next().unwrap_or_default();
    let port = authority
        .rsplit_once(':')
        .map(|(_, p)| format!(":{p}"))
        .unwrap_or_default();
    format!("{scheme}://{slug}.{}{port}/t/{token}", config.base_domain)
}

/// Revokes the ticket's live links and issues a new one; returns its token.
pub async fn issue(
    conn: &mut sqlx::AnyConnection,
    tenant: &TenantId,
    ticket_id: &str,
) -> Result<String> {
    revoke(&mut *conn, tenant, ticket_id).await?;
    let (token, hash) = generate();
    sqlx::query("INSERT INTO tracking_links (id, tenant_id, ticket_id, token_hash, created_at) VALUES ($1, $2, $3, $4, $5)")
        .bind(db::new_id())
        .bind(tenant)
        .bind(ticket_id)
        .bind(hash)
        .bind(now_ms())
        .execute(conn)
        .await?;
    Ok(token)
}

/// Issues one more live link for a message, leaving the ticket's other links alone: each
/// message carries a link of its own, and an earlier message's link keeps working. `short`
/// links carry 128 random bits (22 characters), enough against guessing at the portal's
/// limit, and short enough for an SMS.
pub async fn issue_for_message(
    pool: &Pool,
    tenant: &TenantId,
    ticket_id: &str,
    short: bool,
) -> Result<String> {
    let (token, hash) = generate_of(if short { 16 } else { 32 });
    sqlx::query("INSERT INTO tracking_links (id, tenant_id, ticket_id, token_hash, created_at) SELECT $1, $2, id, $4, $5 FROM tickets WHERE tenant_id = $2 AND id = $3")
        .bind(db::new_id())
        .bind(tenant)
        .bind(ticket_id)
        .bind(hash)
        .bind(now_ms())
        .execute(pool)
        .await?;
    Ok(token)
}

/// Revokes the ticket's live links; returns how many there were.
pub async fn revoke(
    conn: &mut sqlx::AnyConnection,
    tenant: &TenantId,
    ticket_id: &str,
) -> Result<u64> {
    let revoked = sqlx::query("UPDATE tracking_links SET revoked_at = $3 WHERE tenant_id = $1 AND ticket_id = $2 AND revoked_at IS NULL")
        .bind(tenant)
        .bind(ticket_id)
        .bind(now_ms())
        .execute(conn)
        .await?;
    Ok(revoked.rows_affected())
}

/// Revokes one link by its token, within one tenant only.
pub async fn revoke_token(pool: &Pool, tenant: &TenantId, token: &str) -> Result<()> {
    sqlx::query("UPDATE tracking_links SET revoked_at = $3 WHERE tenant_id = $1 AND token_hash = $2 AND revoked_at IS NULL")
        .bind(tenant)
        .bind(hash_token(token))
        .bind(now_ms())
        .execute(pool)
        .await?;
    Ok(())
}

/// The ticket a live token opens, within one tenant only.
pub async fn resolve(pool: &Pool, tenant: &TenantId, token: &str) -> Result<Option<String>> {
    let row: Option<(String,)> = sqlx::query_as(
        "SELECT ticket_id FROM tracking_links WHERE tenant_id = $1 AND token_hash = $2 AND revoked_at IS NULL",
    )
    .bind(tenant)
    .bind(hash_token(token))
    .fetch_optional(pool)
    .await?;
    Ok(row.map(|r| r.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_follow_the_public_url() {
        let config = Config {
            public_url: "http://localhost:8080".into(),
            base_domain: "localhost".into(),
            ..Config::default()
        };
        assert_eq!(
            url(&config, "acme", "tok"),
            "http://acme.localhost:8080/t/tok"
        );
        let config = Config {
            public_url: "https://portico.example".into(),
            base_domain: "portico.example".into(),
            ..Config::default()
        };
        assert_eq!(
            url(&config, "acme", "tok"),
            "https://acme.portico.example/t/tok"
        );
        let (token, hash) = generate();
        assert_eq!(token.len(), 43, "256 bits");
        assert_eq!(hash, hash_token(&token));
    }
}
