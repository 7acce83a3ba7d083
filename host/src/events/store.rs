//! The only code that names the `events` and `event_cursors` tables.

use sqlx::{AnyConnection, FromRow};

use super::model::{Event, Recorded};
use crate::db::{self, Backend, Pool, Sql};
use crate::error::{Error, Result};
use crate::types::TenantId;

#[derive(FromRow)]
struct Row {
    seq: i64,
    tx: i64,
    id: String,
    tenant_id: Option<String>,
    subject: String,
    actor: String,
    payload: String,
    created_at: i64,
}

impl TryFrom<Row> for Recorded {
    type Error = Error;

    fn try_from(r: Row) -> Result<Self> {
        Ok(Self {
            event: serde_json::from_str(&r.payload).map_err(|e| Error::Internal(e.into()))?,
            seq: r.seq,
            tx: r.tx,
            id: r.id,
            tenant: r.tenant_id.map(TenantId::from_db),
            subject: r.subject,
            actor: r.actor,
            at: r.created_at,
        })
    }
}

const COLUMNS: &str = "seq, tx, id, tenant_id, subject, actor, payload, created_at";

fn recorded(rows: Vec<Row>) -> Result<Vec<Recorded>> {
    rows.into_iter().map(Recorded::try_from).collect()
}

/// Writes an event in the caller's transaction.
pub async fn insert(
    conn: &mut AnyConnection,
    tenant: Option<&TenantId>,
    subject: &str,
    actor: &str,
    event: Event,
) -> Result<Recorded> {
    let payload = serde_json::to_string(&event).map_err(|e| Error::Internal(e.into()))?;
    let id = db::new_id();
    let at = db::now_ms();
    let (seq, tx): (i64, i64) = sqlx::query_as(
        "INSERT INTO events (id, tenant_id, kind, subject, actor, payload, created_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING seq, tx",
    )
    .bind(&id)
    .bind(tenant.map(TenantId::as_str))
    .bind(event.kind())
    .bind(subject)
    .bind(actor)
    .bind(&payload)
    .bind(at)
    .fetch_one(conn)
    .await?;
    Ok(Recorded {
        seq,
        tx,
        id,
        tenant: tenant.cloned(),
        subject: subject.to_string(),
        actor: actor.to_string(),
        event,
        at,
    })
}

/// One event by its position, as a replica reads another's after a notification.
pub async fn by_seq(pool: &Pool, seq: i64) -> Result<Option<Recorded>> {
    let row: Option<Row> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM events WHERE seq = $1"
    )))
    .bind(seq)
    .fetch_optional(pool)
    .await?;
    row.map(Recorded::try_from).transpose()
}

/// The position of the newest event (0 when there is none).
pub async fn last_seq(pool: &Pool) -> Result<i64> {
    let (seq,): (i64,) = sqlx::query_as("SELECT COALESCE(MAX(seq), 0) FROM events")
        .fetch_one(pool)
        .await?;
    Ok(seq)
}

/// Events after `seq`, in order (on SQLite, commit order).
pub async fn after_seq(pool: &Pool, seq: i64, limit: i64) -> Result<Vec<Recorded>> {
    let rows: Vec<Row> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM events WHERE seq > $1 ORDER BY seq LIMIT $2"
    )))
    .bind(seq)
    .bind(limit)
    .fetch_all(pool)
    .await?;
    recorded(rows)
}

/// What a tenant's event list may be narrowed to.
#[derive(Debug, Default)]
pub struct Filter<'a> {
    pub kind: Option<&'a str>,
    pub subject: Option<&'a str>,
    /// The id of the last event of the previous page.
    pub after: &'a str,
    pub limit: i64,
}

/// A tenant's events, oldest first.
pub async fn list(pool: &Pool, tenant: &TenantId, filter: &Filter<'_>) -> Result<Vec<Recorded>> {
    let mut sql = Sql::new(&format!("SELECT {COLUMNS} FROM events WHERE tenant_id = "));
    sql.push_bind(tenant)
        .push(" AND id > ")
        .push_bind(filter.after);
    if let Some(kind) = filter.kind {
        sql.push(" AND kind = ").push_bind(kind);
    }
    if let Some(subject) = filter.subject {
        sql.push(" AND subject = ").push_bind(subject);
    }
    sql.push(" ORDER BY id LIMIT ").push_bind(filter.limit);
    let rows: Vec<Row> = sql.query_as().fetch_all(pool).await?;
    recorded(rows)
}

/// Where a durable consumer has read up to: `(tx, seq)` of the last event it processed.
pub type Position = (i64, i64);

/// Creates a consumer's cursor at the current end of the table, unless it exists: a new
/// consumer handles what happens from now on, not the retained past. (`WHERE true` keeps
/// SQLite from reading `ON CONFLICT` as a join constraint.)
pub async fn register_cursor(pool: &Pool, consumer: &str) -> Result<()> {
    sqlx::query(
        "INSERT INTO event_cursors (consumer, tx, seq, updated_at)
         SELECT $1, COALESCE(MAX(tx), 0), COALESCE(MAX(seq), 0), $2 FROM events WHERE true
         ON CONFLICT (consumer) DO NOTHING",
    )
    .bind(consumer)
    .bind(db::now_ms())
    .execute(pool)
    .await?;
    Ok(())
}

/// Takes the consumer's cursor for this transaction. On PostgreSQL the row stays locked until
/// commit and another replica's attempt skips it (`None`): one reader per consumer at a time.
pub async fn lease_cursor(
    conn: &mut AnyConnection,
    backend: Backend,
    consumer: &str,
) -> Result<Option<Position>> {
    let sql = match backend {
        Backend::Postgres => {
            "SELECT tx, seq FROM event_cursors WHERE consumer = $1 FOR UPDATE SKIP LOCKED"
        }
        // The write transaction (BEGIN IMMEDIATE) already excludes every other writer.
        Backend::Sqlite => "SELECT tx, seq FROM event_cursors WHERE consumer = $1",
    };
    Ok(sqlx::query_as(sql)
        .bind(consumer)
        .fetch_optional(conn)
        .await?)
}

/// The events after `position`, in `(tx, seq)` order. On PostgreSQL only transactions older
/// than every running one are read, so no event can later commit behind the cursor.
pub async fn after(
    conn: &mut AnyConnection,
    backend: Backend,
    position: Position,
    limit: i64,
) -> Result<Vec<Recorded>> {
    let horizon = match backend {
        Backend::Postgres => " AND tx < pg_snapshot_xmin(pg_current_snapshot())::text::bigint",
        Backend::Sqlite => "",
    };
    let rows: Vec<Row> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM events WHERE (tx > $1 OR (tx = $1 AND seq > $2)){horizon}
         ORDER BY tx, seq LIMIT $3"
    )))
    .bind(position.0)
    .bind(position.1)
    .bind(limit)
    .fetch_all(conn)
    .await?;
    recorded(rows)
}

pub async fn move_cursor(conn: &mut AnyConnection, consumer: &str, to: Position) -> Result<()> {
    sqlx::query("UPDATE event_cursors SET tx = $2, seq = $3, updated_at = $4 WHERE consumer = $1")
        .bind(consumer)
        .bind(to.0)
        .bind(to.1)
        .bind(db::now_ms())
        .execute(conn)
        .await?;
    Ok(())
}

/// Deletes events older than `before` (unix ms) that every durable consumer has read.
pub async fn prune(pool: &Pool, before: i64) -> Result<u64> {
    let deleted = sqlx::query(
        "DELETE FROM events WHERE created_at < $1 AND NOT EXISTS (
             SELECT 1 FROM event_cursors c
             WHERE events.tx > c.tx OR (events.tx = c.tx AND events.seq > c.seq))",
    )
    .bind(before)
    .execute(pool)
    .await?;
    Ok(deleted.rows_affected())
}

/// Deletes a tenant's history, in the transaction that deletes the tenant.
pub async fn delete_for_tenant(conn: &mut AnyConnection, tenant: &TenantId) -> Result<()> {
    sqlx::query("DELETE FROM events WHERE tenant_id = $1")
        .bind(tenant)
        .execute(conn)
        .await?;
    Ok(())
}
