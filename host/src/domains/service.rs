//! Adding, verifying and removing a tenant's custom domains. Each change audits and emits
//! `DomainChanged`, which the host resolvers of every replica follow.

use base64::Engine as _;
use rand::RngCore;
use serde_json::json;

use super::dns::LookupError;
use super::model::{Domain, DomainRow, challenge_name};
use super::store;
use crate::AppState;
use crate::audit::{self, Change};
use crate::db::{self, now_ms};
use crate::error::{Error, Result};
use crate::events::{Event, Tx};
use crate::types::{Caller, DomainName, TenantId};

/// Audits a domain change, announces it (the subject is the name, which is what host lookups
/// key on) and commits.
async fn finish(mut tx: Tx, actor: &str, name: &str, change: Change<'_>) -> Result<()> {
    let tenant = change.tenant.cloned();
    audit::record(&mut tx, actor, change).await?;
    tx.emit(tenant.as_ref(), name, actor, Event::DomainChanged)
        .await?;
    tx.commit().await
}

/// Adds a custom domain, pending until verified. Names under the platform's base domain are
/// refused.
pub async fn add(
    state: &AppState,
    caller: &Caller,
    tenant: &TenantId,
    name: &DomainName,
) -> Result<Domain> {
    let base = &state.config.base_domain;
    let name = name.as_str();
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
        checked_at: None,
        failing_since: None,
        problem: None,
    };
    let mut tx = state.events.begin().await?;
    store::insert(&mut tx, tenant, &row).await?;
    let change = Change {
        tenant: Some(tenant),
        action: "domain.create",
        target: &row.id,
        before: None,
        after: Some(json!({"name": name})),
    };
    finish(tx, &caller.actor(), name, change).await?;
    Ok(row.into())
}

/// Looks up the challenge TXT record; when it holds the token, the domain becomes active.
/// Verifying a verified domain changes nothing.
pub async fn verify(
    state: &AppState,
    caller: &Caller,
    tenant: &TenantId,
    id: &str,
) -> Result<Domain> {
    let pending = store::find(&state.db.pool, tenant, id).await?;
    if pending.verified_at.is_some() {
        return Ok(pending.into());
    }
    // The lookup may take seconds, so it happens before the transaction.
    let record = challenge_name(&DomainName::parse(&pending.name)?);
    let values = state.dns.txt(&record).await.map_err(|e| match e {
        LookupError::NoRecord(_) => Error::invalid("domain_verification_failed", e.to_string()),
        LookupError::Failed(_) => Error::conflict("dns_unavailable", e.to_string()),
    })?;
    if !values.iter().any(|v| v.trim() == pending.challenge_token) {
        return Err(Error::invalid(
            "domain_verification_failed",
            format!("the TXT record at {record} does not hold this domain's challenge token"),
        ));
    }
    let mut tx = state.events.begin().await?;
    let for_update = tx.for_update();
    let mut row = store::lock(&mut tx, tenant, id, for_update).await?;
    if row.verified_at.is_some() {
        // Verified by a concurrent request meanwhile.
        return Ok(row.into());
    }
    let now = now_ms();
    store::mark_verified(&mut tx, tenant, &row, now).await?;
    let change = Change {
        tenant: Some(tenant),
        action: "domain.verify",
        target: id,
        before: Some(json!({"name": row.name, "status": "pending"})),
        after: Some(json!({"name": row.name, "status": "verified"})),
    };
    finish(tx, &caller.actor(), &row.name, change).await?;
    row.verified_at = Some(now);
    row.checked_at = Some(now);
    row.failing_since = None;
    row.problem = None;
    Ok(row.into())
}

/// Checks again, as of `now`, the verified domains not checked for `interval_ms`: a domain whose
/// TXT record no longer holds its token is marked failing, and once it has failed for
/// `grace_ms` it stops serving the tenant (it is pending again, with the reason). A DNS server
/// that does not answer counts against no one. Returns how many domains were checked.
pub async fn recheck_due(
    state: &AppState,
    now: i64,
    interval_ms: i64,
    grace_ms: i64,
) -> Result<usize> {
    let due = store::due_for_check(&state.db.pool, now - interval_ms, 100).await?;
    for (tenant, id) in &due {
        // One domain's trouble never stops the others' checks.
        if let Err(e) = recheck(state, tenant, id, now, grace_ms).await {
            tracing::warn!(error = ?e, domain = id, "re-verifying a domain failed");
        }
    }
    Ok(due.len())
}

/// One domain's check; every outcome moves its `checked_at` on, so that failing domains take
/// their turn like the others.
async fn recheck(
    state: &AppState,
    tenant: &TenantId,
    id: &str,
    now: i64,
    grace_ms: i64,
) -> Result<()> {
    let current = store::find(&state.db.pool, tenant, id).await?;
    let record = challenge_name(&DomainName::parse(&current.name)?);
    let holds = match state.dns.txt(&record).await {
        Ok(values) => Some(values.iter().any(|v| v.trim() == current.challenge_token)),
        Err(LookupError::NoRecord(_)) => Some(false),
        Err(LookupError::Failed(e)) => {
            tracing::warn!(domain = current.name, error = %e, "re-verifying a domain: DNS did not answer");
            None
        }
    };
    let mut tx = state.events.begin().await?;
    let for_update = tx.for_update();
    let mut row = store::lock(&mut tx, tenant, id, for_update).await?;
    if row.verified_at.is_none() {
        return Ok(());
    }
    row.checked_at = Some(now);
    match holds {
        // Unknown: counts against no one, and is asked again next time.
        None => {
            store::record_check(&mut tx, tenant, &row).await?;
            return tx.commit().await;
        }
        Some(true) => {
            row.failing_since = None;
            row.problem = None;
            store::record_check(&mut tx, tenant, &row).await?;
            return tx.commit().await;
        }
        Some(false) => {}
    }
    let since = row.failing_since.unwrap_or(now);
    let since_text = db::timestamp(since).to_string();
    row.failing_since = Some(since);
    if now - since < grace_ms {
        row.problem = Some(format!(
            "the TXT record at {record} has not held the challenge token since {since_text}; the domain stops serving if it is not back within the grace period"
        ));
        store::record_check(&mut tx, tenant, &row).await?;
        return tx.commit().await;
    }
    row.verified_at = None;
    row.problem = Some(format!(
        "stopped serving on {}: the TXT record at {record} has not held the challenge token since {since_text}; publish it again and verify",
        db::timestamp(now)
    ));
    store::record_check(&mut tx, tenant, &row).await?;
    let change = Change {
        tenant: Some(tenant),
        action: "domain.unverify",
        target: id,
        before: Some(json!({"name": row.name, "status": "verified"})),
        after: Some(json!({"name": row.name, "status": "pending", "problem": row.problem})),
    };
    finish(tx, "domain check", &row.name, change).await
}

/// Re-verifies domains in the background, every few minutes, for as long as the host runs.
pub async fn run_checks(state: AppState) {
    let interval = state.config.domain_check_interval();
    let grace = state.config.domain_grace();
    loop {
        tokio::time::sleep(std::time::Duration::from_secs(300)).await;
        if let Err(e) = recheck_due(
            &state,
            now_ms(),
            interval.as_millis() as i64,
            grace.as_millis() as i64,
        )
        .await
        {
            tracing::warn!(error = ?e, "re-verifying domains failed; trying again later");
        }
    }
}

/// Removes a domain; it stops serving the tenant at once.
pub async fn delete(state: &AppState, caller: &Caller, tenant: &TenantId, id: &str) -> Result<()> {
    let mut tx = state.events.begin().await?;
    let for_update = tx.for_update();
    let before = store::lock(&mut tx, tenant, id, for_update).await?;
    store::delete(&mut tx, tenant, id).await?;
    let change = Change {
        tenant: Some(tenant),
        action: "domain.delete",
        target: id,
        before: Some(json!({"name": before.name})),
        after: None,
    };
    finish(tx, &caller.actor(), &before.name, change).await
}
