//! Password sign-in, timed the same whether or not the account exists.

use crate::AppState;
use crate::auth::password::{check_password, decoy_hash};
use crate::auth::{IssuedToken, service as staff, store as accounts};
use crate::error::{Error, Result};
use crate::tenants::{Tenant, store as tenants};
use crate::types::Email;

/// What a sign-in asks for.
pub struct Credentials<'a> {
    /// Tenant id or slug.
    pub tenant: &'a str,
    pub email: &'a Email,
    pub password: &'a str,
    pub token_name: &'a str,
    pub expires_in_days: u32,
    /// Where the attempt comes from, for throttling failures.
    pub client: Option<std::net::IpAddr>,
}

/// The longest a sign-in token lasts; longer-lived tokens are issued through the API.
pub const MAX_SIGN_IN_DAYS: u32 = 30;

/// Exchanges a staff user's email and password for an API token of their tenant.
pub async fn sign_in(state: &AppState, given: Credentials<'_>) -> Result<(Tenant, IssuedToken)> {
    if !(1..=MAX_SIGN_IN_DAYS).contains(&given.expires_in_days) {
        return Err(Error::invalid(
            "invalid_expiry",
            format!("a sign-in token lasts 1 to {MAX_SIGN_IN_DAYS} days"),
        ));
    }
    let account_key = format!("{} {}", given.tenant.to_ascii_lowercase(), given.email);
    state.sign_ins.attempt(given.client, &account_key).await?;
    let tenant = tenants::find(&state.db.pool, given.tenant).await.ok();
    let account = match &tenant {
        Some(t) => {
            crate::db::within_tenant(
                &t.id,
                accounts::credentials(&state.db.pool, &t.id, given.email),
            )
            .await?
        }
        None => None,
    };
    let stored = account.as_ref().and_then(|a| a.password_hash.as_deref());
    let against = match stored {
        Some(stored) => stored,
        None => decoy_hash().await?,
    };
    let matches = check_password(given.password, against).await?;
    let signed_in = match (tenant, account) {
        (Some(tenant), Some(account))
            if matches && account.disabled == 0 && account.password_hash.is_some() =>
        {
            Some((tenant, account))
        }
        _ => None,
    };
    let Some((tenant, account)) = signed_in else {
        return Err(Error::Unauthorized);
    };
    state.sign_ins.succeeded(given.client, &account_key).await;
    if tenant.is_suspended() {
        return Err(Error::TenantSuspended);
    }
    let issued = crate::db::within_tenant(&tenant.id, async {
        let mut tx = state.events.begin().await?;
        let issued = staff::issue_token(
            &mut tx,
            Some((&tenant.id, &account.id)),
            given.token_name,
            Some(given.expires_in_days),
        )
        .await?;
        tx.commit().await?;
        Ok::<_, Error>(issued)
    })
    .await?;
    Ok((tenant, issued))
}
