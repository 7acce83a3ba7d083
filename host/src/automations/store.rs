//! The only writer of `automated_actions` and `message_templates`. Every query names the tenant.

use sqlx::AnyConnection;

use super::model::{Action, ActionRow, MessageTemplate};
use crate::db::Pool;
use crate::error::{Error, Result};
use crate::types::TenantId;

const ACTION_COLUMNS: &str =
    "id, name, description, active, object, trigger, conditions, steps, created_at, updated_at";

fn to_json<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_string(value).expect("action parts serialise")
}

fn name_taken(result: std::result::Result<u64, sqlx::Error>, what: &str) -> Result<u64> {
    match result {
        Err(sqlx::Error::Database(e)) if e.is_unique_violation() => Err(Error::conflict(
            "name_taken",
            format!("{what} with this name exists"),
        )),
        other => other.map_err(Error::from),
    }
}

pub async fn list_actions(
    pool: &Pool,
    tenant: &TenantId,
    after: &str,
    limit: i64,
) -> Result<Vec<Action>> {
    let rows: Vec<ActionRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {ACTION_COLUMNS} FROM automated_actions WHERE tenant_id = $1 AND id > $2 ORDER BY id LIMIT $3"
    )))
    .bind(tenant)
    .bind(after)
    .bind(limit)
    .fetch_all(pool)
    .await?;
    rows.into_iter().map(Action::try_from).collect()
}

/// The tenant's active actions, read inside the consumer's transaction.
pub async fn active_actions(conn: &mut AnyConnection, tenant: &TenantId) -> Result<Vec<Action>> {
    let rows: Vec<ActionRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {ACTION_COLUMNS} FROM automated_actions WHERE tenant_id = $1 AND active = 1 ORDER BY created_at, id"
    )))
    .bind(tenant)
    .fetch_all(conn)
    .await?;
    rows.into_iter().map(Action::try_from).collect()
}

/// Every tenant's active time-triggered actions.
pub async fn timed_actions(pool: &Pool) -> Result<Vec<(TenantId, Action)>> {
    #[derive(sqlx::FromRow)]
    struct Row {
        tenant_id: String,
        #[sqlx(flatten)]
        action: ActionRow,
    }
    let rows: Vec<Row> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT tenant_id, {ACTION_COLUMNS} FROM automated_actions
         WHERE active = 1 AND trigger LIKE '%\"before_appointment\"%' ORDER BY tenant_id, id"
    )))
    .fetch_all(pool)
    .await?;
    rows.into_iter()
        .map(|r| Ok((TenantId::from_db(r.tenant_id), Action::try_from(r.action)?)))
        .collect()
}

/// Records that an action ran for `occurrence` (such as one appointment time); false when it
/// already had, here or on another replica.
pub async fn claim_occurrence(
    conn: &mut AnyConnection,
    tenant: &TenantId,
    action_id: &str,
    occurrence: &str,
) -> Result<bool> {
    let claimed = sqlx::query(
        "INSERT INTO action_occurrences (tenant_id, action_id, occurrence, created_at) VALUES ($1, $2, $3, $4)
         ON CONFLICT DO NOTHING",
    )
    .bind(tenant)
    .bind(action_id)
    .bind(occurrence)
    .bind(crate::db::now_ms())
    .execute(conn)
    .await?;
    Ok(claimed.rows_affected() == 1)
}

pub async fn find_action(pool: &Pool, tenant: &TenantId, id: &str) -> Result<Action> {
    let mut conn = pool.acquire().await?;
    lock_action(&mut conn, tenant, id, "").await
}

pub async fn lock_action(
    conn: &mut AnyConnection,
    tenant: &TenantId,
    id: &str,
    for_update: &str,
) -> Result<Action> {
    let row: ActionRow = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {ACTION_COLUMNS} FROM automated_actions WHERE tenant_id = $1 AND id = $2{for_update}"
    )))
    .bind(tenant)
    .bind(id)
    .fetch_optional(conn)
    .await?
    .ok_or(Error::NotFound("automated action"))?;
    row.try_into()
}

pub async fn insert_action(conn: &mut AnyConnection, tenant: &TenantId, a: &Action) -> Result<()> {
    let result = sqlx::query(
        "INSERT INTO automated_actions (id, tenant_id, name, description, active, object, trigger, conditions, steps, created_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
    )
    .bind(&a.id)
    .bind(tenant)
    .bind(&a.name)
    .bind(&a.description)
    .bind(a.active as i64)
    .bind(to_json(&a.object).trim_matches('"').to_string())
    .bind(to_json(&a.trigger))
    .bind(to_json(&a.conditions))
    .bind(to_json(&a.steps))
    .bind(a.created_at.as_millisecond())
    .bind(a.updated_at.as_millisecond())
    .execute(conn)
    .await
    .map(|r| r.rows_affected());
    name_taken(result, "an automated action").map(|_| ())
}

pub async fn update_action(conn: &mut AnyConnection, tenant: &TenantId, a: &Action) -> Result<()> {
    let result = sqlx::query(
        "UPDATE automated_actions SET name = $3, description = $4, active = $5, trigger = $6, conditions = $7, steps = $8, updated_at = $9
         WHERE tenant_id = $1 AND id = $2",
    )
    .bind(tenant)
    .bind(&a.id)
    .bind(&a.name)
    .bind(&a.description)
    .bind(a.active as i64)
    .bind(to_json(&a.trigger))
    .bind(to_json(&a.conditions))
    .bind(to_json(&a.steps))
    .bind(a.updated_at.as_millisecond())
    .execute(conn)
    .await
    .map(|r| r.rows_affected());
    name_taken(result, "an automated action").map(|_| ())
}

pub async fn delete_action(conn: &mut AnyConnection, tenant: &TenantId, id: &str) -> Result<()> {
    sqlx::query("DELETE FROM automated_actions WHERE tenant_id = $1 AND id = $2")
        .bind(tenant)
        .bind(id)
        .execute(conn)
        .await?;
    Ok(())
}

const TEMPLATE_COLUMNS: &str = "id, name, language, subject, html, text";

pub async fn list_templates(
    pool: &Pool,
    tenant: &TenantId,
    after: &str,
    limit: i64,
) -> Result<Vec<MessageTemplate>> {
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {TEMPLATE_COLUMNS} FROM message_templates WHERE tenant_id = $1 AND id > $2 ORDER BY id LIMIT $3"
    )))
    .bind(tenant)
    .bind(after)
    .bind(limit)
    .fetch_all(pool)
    .await?)
}

pub async fn find_template(pool: &Pool, tenant: &TenantId, id: &str) -> Result<MessageTemplate> {
    let mut conn = pool.acquire().await?;
    lock_template(&mut conn, tenant, id, "").await
}

pub async fn lock_template(
    conn: &mut AnyConnection,
    tenant: &TenantId,
    id: &str,
    for_update: &str,
) -> Result<MessageTemplate> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {TEMPLATE_COLUMNS} FROM message_templates WHERE tenant_id = $1 AND id = $2{for_update}"
    )))
    .bind(tenant)
    .bind(id)
    .fetch_optional(conn)
    .await?
    .ok_or(Error::NotFound("message template"))
}

/// The variants of a named template, one per language.
pub async fn template_variants(
    conn: &mut AnyConnection,
    tenant: &TenantId,
    name: &str,
) -> Result<Vec<MessageTemplate>> {
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {TEMPLATE_COLUMNS} FROM message_templates WHERE tenant_id = $1 AND name = $2 ORDER BY language"
    )))
    .bind(tenant)
    .bind(name)
    .fetch_all(conn)
    .await?)
}

pub async fn insert_template(
    conn: &mut AnyConnection,
    tenant: &TenantId,
    t: &MessageTemplate,
    now: i64,
) -> Result<()> {
    let result = sqlx::query(
        "INSERT INTO message_templates (id, tenant_id, name, language, subject, html, text, created_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8)",
    )
    .bind(&t.id)
    .bind(tenant)
    .bind(&t.name)
    .bind(&t.language)
    .bind(&t.subject)
    .bind(&t.html)
    .bind(&t.text)
    .bind(now)
    .execute(conn)
    .await
    .map(|r| r.rows_affected());
    name_taken(result, "a message template in this language").map(|_| ())
}

pub async fn update_template(
    conn: &mut AnyConnection,
    tenant: &TenantId,
    t: &MessageTemplate,
    now: i64,
) -> Result<()> {
    sqlx::query(
        "UPDATE message_templates SET subject = $3, html = $4, text = $5, updated_at = $6 WHERE tenant_id = $1 AND id = $2",
    )
    .bind(tenant)
    .bind(&t.id)
    .bind(&t.subject)
    .bind(&t.html)
    .bind(&t.text)
    .bind(now)
    .execute(conn)
    .await?;
    Ok(())
}

pub async fn delete_template(conn: &mut AnyConnection, tenant: &TenantId, id: &str) -> Result<()> {
    sqlx::query("DELETE FROM message_templates WHERE tenant_id = $1 AND id = $2")
        .bind(tenant)
        .bind(id)
        .execute(conn)
        .await?;
    Ok(())
}
