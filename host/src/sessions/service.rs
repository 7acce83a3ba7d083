//! Password sign-in, timed the same whether or not the account exists.

use crate::AppState;
use crate::auth::password::{hash_password, verify_password};
use crate::auth::{IssuedToken, service as staff, store as accounts};
use crate::error::{Error, Result};
use crate::tenants::{Tenant, store as tenants};
use crate::types::Email;

/// A hash of a random password, checked when no account matches, so that a wrong email costs as
/// much time as a wrong password and response times reveal nothing.
static DECOY_HASH: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    hash_password("decoy password that never matches").unwrap_or_default()
});

/// What a sign-in asks for.
pub struct Credentials<'a> {
    /// Tenant id or slug.
    pub tenant: &'a str,
    pub email: &'a Email,
    pub password: &'a str,
    pub token_name: &'a str,
    pub expires_in_days: u32,
}

/// Exchanges a staff user's email and password for an API token of their tenant.
pub async fn sign_in(state: &AppState, given: Credentials<'_>) -> Result<(Tenant, IssuedToken)> {
    let tenant = tenants::find(&state.db.pool, given.tenant).await.ok();
    let account = match &tenant {
        Some(t) => accounts::credentials(&state.db.pool, &t.id, given.email).await?,
        None => None,
    };
    let stored = account.as_ref().and_then(|a| a.password_hash.clone());
    let password = given.password.to_string();
    let matches = tokio::task::spawn_blocking(move || {
        verify_password(&password, stored.as_deref().unwrap_or(&DECOY_HASH))
    })
    .await
    .map_err(|e| Error::Internal(e.into()))?;
    let (Some(tenant), Some(account)) = (tenant, account) else {
        return Err(Error::Unauthorized);
    };
    if !matches || account.disabled != 0 || account.password_hash.is_none() {
        return Err(Error::Unauthorized);
    }
    if tenant.is_suspended() {
        return Err(Error::TenantSuspended);
    }
    let mut tx = state.events.begin().await?;
    let issued = staff::issue_token(
        &mut tx,
        Some((&tenant.id, &account.id)),
        given.token_name,
        Some(given.expires_in_days),
    )
    .await?;
    tx.commit().await?;
    Ok((tenant, issued))
}
