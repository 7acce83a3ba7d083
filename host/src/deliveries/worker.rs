//! The delivery worker: claims due deliveries under a lease, issues each message's portal links,
//! hands it to its channel plugin with the delivery's id as idempotency key, and records what
//! happened: sent; retried later with exponential backoff and jitter; or dead, at once for a
//! permanent failure (after the fallback channel, if any) or after the last attempt.

use std::time::Duration;

use futures_util::StreamExt;
use rand::Rng;
use serde_json::json;

use super::model::DeliveryRow;
use super::store;
use crate::AppState;
use crate::error::{Error, Result};
use crate::plugins::runs::{self, ChannelOutcome};
use crate::tickets::links;
use crate::types::TenantId;

/// Deliveries one worker claims and sends at once: no more than it sends at the same time, so
/// none waits out its lease in the worker's queue.
const CONCURRENCY: usize = 8;
/// Longest wait between retries.
const MAX_BACKOFF_MS: u64 = 60 * 60 * 1000;
/// Longest a worker idles before it looks at the queue again.
const IDLE_POLL: Duration = Duration::from_secs(1);
/// Longest error text kept with a delivery.
const MAX_ERROR_CHARS: usize = 1_000;

/// Runs until the task is dropped.
pub async fn run(state: AppState) {
    loop {
        let woken = state.events.committed(IDLE_POLL);
        match run_once(&state).await {
            Ok(0) => {
                let due = store::next_due(&state.db.pool).await.ok().flatten();
                let wait = due
                    .map(|at| Duration::from_millis((at - crate::db::now_ms()).max(0) as u64))
                    .unwrap_or(IDLE_POLL)
                    .min(IDLE_POLL);
                tokio::select! {
                    _ = woken => {}
                    _ = tokio::time::sleep(wait) => {}
                }
            }
            Ok(_) => {}
            Err(e) => {
                tracing::error!(error = ?e, "delivery worker failed; retrying");
                tokio::time::sleep(IDLE_POLL).await;
            }
        }
    }
}

/// Claims and sends one batch; returns how many deliveries it handled.
pub async fn run_once(state: &AppState) -> Result<usize> {
    let settings = &state.config.deliveries;
    let claimed = store::claim(
        &state.db.pool,
        state.db.backend,
        settings.lease_ms as i64,
        CONCURRENCY as i64,
    )
    .await?;
    let count = claimed.len();
    futures_util::stream::iter(claimed)
        .for_each_concurrent(CONCURRENCY, |row| async move {
            // Claimed across tenants; each is sent in its own tenant's name.
            let tenant = TenantId::from_db(row.tenant_id.clone());
            if let Err(e) = crate::db::within_tenant(&tenant, send(state, &row)).await {
                // The lease runs out and another attempt picks the delivery up.
                tracing::error!(delivery = %row.id, error = ?e, "delivery failed in the host");
            }
        })
        .await;
    Ok(count)
}

/// How long the tenant must wait before sending more, if a sending limit is reached: what it
/// sent in the window and is sending now (other than the delivery `except`) counts.
pub async fn limit_wait(
    state: &AppState,
    tenant: &str,
    except: &str,
) -> Result<Option<(u64, &'static str)>> {
    let settings = &state.config.deliveries;
    let now = crate::db::now_ms();
    let pool = &state.db.pool;
    let used = |since| store::sent_since(pool, tenant, since, except);
    if used(now - 60_000).await? >= i64::from(settings.per_minute) {
        return Ok(Some((60, "per minute")));
    }
    if used(now - 86_400_000).await? >= i64::from(settings.per_day) {
        return Ok(Some((3_600, "per day")));
    }
    Ok(None)
}

async fn send(state: &AppState, row: &DeliveryRow) -> Result<()> {
    let pool = &state.db.pool;
    if row
        .lease_until
        .is_none_or(|lease| lease <= crate::db::now_ms())
    {
        // Claimed too long ago: another worker may own it by now.
        return Ok(());
    }
    if let Some((wait_secs, which)) = limit_wait(state, &row.tenant_id, &row.id).await? {
        let message = format!("the tenant's sending limit {which} is reached; waiting");
        let at = crate::db::now_ms() + wait_secs as i64 * 1000;
        return store::retry_at(pool, row, at, &message, true).await;
    }
    let tenant = TenantId::from_db(row.tenant_id.clone());
    let (token, urls) = issue_links(state, &tenant, row).await?;
    let (subject, text, html) = row.message_with(|name| {
        urls.iter()
            .find(|(n, _)| n == name)
            .map(|(_, url)| url.clone())
            .unwrap_or_default()
    });
    let message = json!({
        "recipient": row.recipient(),
        "subject": subject,
        "text": text,
        "html": html,
        "links": urls.iter().cloned().collect::<std::collections::BTreeMap<_, _>>(),
    });
    let primary = attempt(state, &tenant, &row.install_id, &message, &row.id).await;
    let (outcome, via) = match (primary, &row.fallback_install_id) {
        (
            ChannelOutcome::Failed {
                permanent: true, ..
            },
            Some(fallback),
        ) => {
            let key = format!("{}:fallback", row.id);
            (
                attempt(state, &tenant, fallback, &message, &key).await,
                fallback,
            )
        }
        (outcome, _) => (outcome, &row.install_id),
    };
    match outcome {
        ChannelOutcome::Delivered {
            provider_id,
            detail,
        } => {
            let detail = detail.as_deref().map(truncate);
            record_sent(state, row, via, provider_id.as_deref(), detail.as_deref()).await
        }
        ChannelOutcome::Failed {
            permanent,
            code,
            message,
        } => {
            // The message did not go out, so its link must not stay open; a retry gets its own.
            if let Some(token) = &token {
                links::revoke_token(pool, &tenant, token).await?;
            }
            let error = truncate(&format!("{code}: {message}"));
            let settings = &state.config.deliveries;
            if permanent || row.attempts >= i64::from(settings.max_attempts) {
                store::mark_dead(pool, row, &error).await
            } else {
                let at = crate::db::now_ms() + backoff_ms(settings.retry_base_ms, row.attempts);
                store::retry_at(pool, row, at, &error, false).await
            }
        }
    }
}

/// Records a send, trying again a few times (a busy database), since a delivery left claimed
/// would be sent again when its lease runs out.
async fn record_sent(
    state: &AppState,
    row: &DeliveryRow,
    via: &str,
    provider_id: Option<&str>,
    detail: Option<&str>,
) -> Result<()> {
    let mut pause = Duration::from_millis(50);
    for _ in 0..5 {
        match store::mark_sent(&state.db.pool, row, via, provider_id, detail).await {
            Ok(true) => return Ok(()),
            Ok(false) => {
                tracing::warn!(delivery = %row.id, "sent after its lease ran out; another worker may send it again");
                return Ok(());
            }
            Err(e) => {
                tracing::warn!(delivery = %row.id, error = ?e, "recording a send failed; trying again");
                tokio::time::sleep(pause).await;
                pause *= 2;
            }
        }
    }
    store::mark_sent(&state.db.pool, row, via, provider_id, detail)
        .await
        .map(drop)
}

/// One channel's answer; a host-side refusal (install gone, disabled, not a channel) is a
/// permanent failure of that channel.
async fn attempt(
    state: &AppState,
    tenant: &TenantId,
    install_id: &str,
    message: &serde_json::Value,
    key: &str,
) -> ChannelOutcome {
    match runs::deliver(state, tenant, install_id, message.clone(), key).await {
        Ok(outcome) => outcome,
        Err(Error::Internal(e)) => ChannelOutcome::Failed {
            permanent: false,
            code: "internal".into(),
            message: format!("the host could not run the channel: {e}"),
        },
        Err(e) => ChannelOutcome::Failed {
            permanent: true,
            code: e.code().into(),
            message: e.to_string(),
        },
    }
}

/// Issues the link a message carries, fresh for this attempt (only its hash is stored, so a
/// retry cannot read an earlier token back): its token, if any, and the URL of each named link.
async fn issue_links(
    state: &AppState,
    tenant: &TenantId,
    row: &DeliveryRow,
) -> Result<(Option<String>, Vec<(String, String)>)> {
    let names = row.links();
    let Some(ticket) = row.ticket_id.as_deref().filter(|_| !names.is_empty()) else {
        return Ok((None, Vec::new()));
    };
    let slug = crate::tenants::store::find(&state.db.pool, tenant.as_str())
        .await?
        .slug;
    let token =
        links::issue_for_message(&state.db.pool, tenant, ticket, row.short_links != 0).await?;
    let tracking = links::url(&state.config, &slug, &token);
    let urls = names
        .into_iter()
        .map(|(name, _)| {
            let url = match name.as_str() {
                "booking" => format!("{tracking}/booking"),
                _ => tracking.clone(),
            };
            (name, url)
        })
        .collect();
    Ok((Some(token), urls))
}

/// The wait before the attempt after `attempts`: doubling from `base`, capped, with "equal"
/// jitter (a random point in its upper half) so that a burst of failures does not retry in step.
pub fn backoff_ms(base: u64, attempts: i64) -> i64 {
    let exponent = attempts.clamp(1, 30) as u32 - 1;
    let ceiling = base
        .saturating_mul(1u64 << exponent.min(20))
        .min(MAX_BACKOFF_MS);
    rand::rng().random_range(ceiling / 2..=ceiling.max(1)) as i64
}

fn truncate(text: &str) -> String {
    text.chars().take(MAX_ERROR_CHARS).collect()
}

#[cfg(test)]
mod tests {
    use super::backoff_ms;

    #[test]
    fn backoff_grows_and_stays_capped() {
        for attempts in 1..12 {
            let wait = backoff_ms(1_000, attempts);
            let ceiling = (1_000i64 << (attempts - 1)).min(3_600_000);
            assert!(wait >= ceiling / 2 && wait <= ceiling, "{attempts}: {wait}");
        }
        assert!(backoff_ms(1_000, 40) <= 3_600_000);
    }
}
