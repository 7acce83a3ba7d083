//! The only writer of `deliveries`, the outbox. Rows are written in the transaction that
//! consumed their event and claimed by workers under a lease, so a worker that dies mid-send
//! only delays a delivery until its lease runs out.

use sqlx::AnyConnection;

use super::model::{DeliveryRow, NewDelivery, Status};
use crate::db::{self, Backend, Pool};
use crate::error::{Error, Result};
use crate::types::TenantId;

const COLUMNS: &str = "id, tenant_id, action_id, event_seq, step_index, ticket_id, install_id, \
    fallback_install_id, recipient, subject, text_body, html_body, links, short_links, status, attempts, \
    next_attempt_at, lease_until, last_error, provider_id, detail, sent_via, created_at, sent_at";

/// Queues a delivery unless the same event already queued it for this step and recipient;
/// returns its id when it was queued.
pub async fn enqueue(
    conn: &mut AnyConnection,
    tenant: &TenantId,
    new: &NewDelivery,
) -> Result<Option<String>> {
    let id = db::new_id();
    let now = db::now_ms();
    let queued = sqlx::query(
        "INSERT INTO deliveries (id, tenant_id, action_id, event_seq, step_index, ticket_id, install_id,
            fallback_install_id, recipient, recipient_key, subject, text_body, html_body, links,
            short_links, status, attempts, next_attempt_at, created_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, 'pending', 0, $16, $17, $17)
         ON CONFLICT DO NOTHING",
    )
    .bind(&id)
    .bind(tenant)
    .bind(&new.action_id)
    .bind(new.event_seq)
    .bind(new.step_index)
    .bind(&new.ticket_id)
    .bind(&new.install_id)
    .bind(&new.fallback_install_id)
    .bind(serde_json::to_string(&new.recipient).expect("a recipient serialises"))
    .bind(new.recipient.address())
    .bind(&new.subject)
    .bind(&new.text)
    .bind(&new.html)
    .bind(serde_json::to_string(&new.links).expect("links serialise"))
    .bind(new.short_links as i64)
    .bind(new.not_before.max(now))
    .bind(now)
    .execute(conn)
    .await?;
    Ok((queued.rows_affected() == 1).then_some(id))
}

/// Claims up to `limit` due deliveries (pending and due, or sending with a lapsed lease) for
/// `lease_ms`, counting the attempt now so that a crash mid-send still counts.
pub async fn claim(
    pool: &Pool,
    backend: Backend,
    lease_ms: i64,
    limit: i64,
) -> Result<Vec<DeliveryRow>> {
    let now = db::now_ms();
    let skip_locked = match backend {
        Backend::Postgres => " FOR UPDATE SKIP LOCKED",
        Backend::Sqlite => "",
    };
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "UPDATE deliveries SET status = 'sending', lease_until = $1, attempts = attempts + 1, updated_at = $2
         WHERE id IN (
            SELECT id FROM deliveries
            WHERE (status = 'pending' AND next_attempt_at <= $2) OR (status = 'sending' AND lease_until < $2)
            ORDER BY next_attempt_at LIMIT $3{skip_locked})
         RETURNING {COLUMNS}"
    )))
    .bind(now + lease_ms)
    .bind(now)
    .bind(limit)
    .fetch_all(pool)
    .await?)
}

/// When the next pending delivery falls due, if any.
pub async fn next_due(pool: &Pool) -> Result<Option<i64>> {
    let row: (Option<i64>,) =
        sqlx::query_as("SELECT MIN(next_attempt_at) FROM deliveries WHERE status = 'pending'")
            .fetch_one(pool)
            .await?;
    Ok(row.0)
}

/// Records the send. Only the claim that is still current may finish a delivery: its lease is
/// the fencing token, so a worker whose lease lapsed (and whose delivery another worker took
/// over) changes nothing; returns whether it did.
pub async fn mark_sent(
    pool: &Pool,
    row: &DeliveryRow,
    via: &str,
    provider_id: Option<&str>,
    detail: Option<&str>,
) -> Result<bool> {
    let now = db::now_ms();
    let done = sqlx::query(
        "UPDATE deliveries SET status = 'sent', lease_until = NULL, sent_at = $3, sent_via = $4,
            provider_id = $5, detail = $6, last_error = NULL, updated_at = $3
         WHERE tenant_id = $1 AND id = $2 AND status = 'sending' AND lease_until = $7",
    )
    .bind(&row.tenant_id)
    .bind(&row.id)
    .bind(now)
    .bind(via)
    .bind(provider_id)
    .bind(detail)
    .bind(row.lease_until)
    .execute(pool)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Puts a claimed delivery back in the queue until `at`. `refund` gives the attempt back (a
/// sending limit, not a failure, held it).
pub async fn retry_at(
    pool: &Pool,
    row: &DeliveryRow,
    at: i64,
    error: &str,
    refund: bool,
) -> Result<()> {
    sqlx::query(
        "UPDATE deliveries SET status = 'pending', lease_until = NULL, next_attempt_at = $3,
            last_error = $4, attempts = attempts - $5, updated_at = $6
         WHERE tenant_id = $1 AND id = $2 AND status = 'sending' AND lease_until = $7",
    )
    .bind(&row.tenant_id)
    .bind(&row.id)
    .bind(at)
    .bind(error)
    .bind(refund as i64)
    .bind(db::now_ms())
    .bind(row.lease_until)
    .execute(pool)
    .await?;
    Ok(())
}

/// Gives up on a delivery, keeping its last error.
pub async fn mark_dead(pool: &Pool, row: &DeliveryRow, error: &str) -> Result<()> {
    sqlx::query(
        "UPDATE deliveries SET status = 'dead', lease_until = NULL, last_error = $3, updated_at = $4
         WHERE tenant_id = $1 AND id = $2 AND status = 'sending' AND lease_until = $5",
    )
    .bind(&row.tenant_id)
    .bind(&row.id)
    .bind(error)
    .bind(db::now_ms())
    .bind(row.lease_until)
    .execute(pool)
    .await?;
    Ok(())
}

/// Puts a dead delivery back in the queue with fresh attempts.
pub async fn requeue(conn: &mut AnyConnection, tenant: &TenantId, id: &str) -> Result<()> {
    let now = db::now_ms();
    let changed = sqlx::query(
        "UPDATE deliveries SET status = 'pending', attempts = 0, next_attempt_at = $3, updated_at = $3
         WHERE tenant_id = $1 AND id = $2 AND status = 'dead'",
    )
    .bind(tenant)
    .bind(id)
    .bind(now)
    .execute(conn)
    .await?;
    if changed.rows_affected() == 0 {
        return Err(Error::conflict(
            "delivery_not_dead",
            "only a dead delivery can be retried",
        ));
    }
    Ok(())
}

/// Deliveries the tenant sent since `since` (ms), and those other than `except` being sent now,
/// for the sending limits.
pub async fn sent_since(pool: &Pool, tenant: &str, since: i64, except: &str) -> Result<i64> {
    let row: (i64,) = sqlx::query_as(
        "SELECT COUNT(*) FROM deliveries
         WHERE tenant_id = $1 AND (sent_at >= $2 OR (status = 'sending' AND id <> $3))",
    )
    .bind(tenant)
    .bind(since)
    .bind(except)
    .fetch_one(pool)
    .await?;
    Ok(row.0)
}

pub struct Filter<'a> {
    pub status: Option<Status>,
    pub action_id: Option<&'a str>,
    pub ticket_id: Option<&'a str>,
    pub after: &'a str,
    pub limit: i64,
}

/// The tenant's deliveries, newest first.
pub async fn list(pool: &Pool, tenant: &TenantId, filter: &Filter<'_>) -> Result<Vec<DeliveryRow>> {
    let mut sql = db::Sql::new(&format!(
        "SELECT {COLUMNS} FROM deliveries WHERE tenant_id = "
    ));
    sql.push_bind(tenant);
    if !filter.after.is_empty() {
        sql.push(" AND id < ");
        sql.push_bind(filter.after);
    }
    if let Some(status) = filter.status {
        sql.push(" AND status = ");
        sql.push_bind(status.as_str());
    }
    if let Some(action) = filter.action_id {
        sql.push(" AND action_id = ");
        sql.push_bind(action);
    }
    if let Some(ticket) = filter.ticket_id {
        sql.push(" AND ticket_id = ");
        sql.push_bind(ticket);
    }
    sql.push(" ORDER BY id DESC LIMIT ");
    sql.push_bind(filter.limit);
    Ok(sql.query_as().fetch_all(pool).await?)
}

pub async fn find(pool: &Pool, tenant: &TenantId, id: &str) -> Result<DeliveryRow> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM deliveries WHERE tenant_id = $1 AND id = $2"
    )))
    .bind(tenant)
    .bind(id)
    .fetch_optional(pool)
    .await?
    .ok_or(Error::NotFound("delivery"))
}
