//! The only code that names the `projects`, `tickets`, `ticket_counters`,
//! `ticket_status_history` and `ticket_feedback` tables.

use std::collections::HashMap;

use sqlx::AnyConnection;

use super::feedback::Feedback;
use super::model::{Notice, Project, Status, Step, TicketRow};
use crate::db::{self, Arg, Pool, Sql, now_ms};
use crate::error::{Error, Result};
use crate::types::TenantId;

fn project_name_taken(
    written: std::result::Result<sqlx::any::AnyQueryResult, sqlx::Error>,
) -> Result<u64> {
    match written {
        Err(e) if db::is_unique_violation(&e) => Err(Error::conflict(
            "project_exists",
            "a project with this name exists",
        )),
        other => other.map(|r| r.rows_affected()).map_err(Error::from),
    }
}

pub async fn list_projects(
    pool: &Pool,
    tenant: &TenantId,
    after: &str,
    limit: i64,
) -> Result<Vec<Project>> {
    Ok(sqlx::query_as(
        "SELECT id, name, profile_id FROM projects WHERE tenant_id = $1 AND id > $2 ORDER BY id LIMIT $3",
    )
    .bind(tenant)
    .bind(after)
    .bind(limit)
    .fetch_all(pool)
    .await?)
}

/// A project of the tenant, locked for the transaction when `for_update` says so.
pub async fn lock_project(
    conn: &mut AnyConnection,
    tenant: &TenantId,
    id: &str,
    for_update: &str,
) -> Result<Project> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT id, name, profile_id FROM projects WHERE tenant_id = $1 AND id = $2{for_update}"
    )))
    .bind(tenant)
    .bind(id)
    .fetch_optional(conn)
    .await?
    .ok_or(Error::NotFound("project"))
}

pub async fn insert_project(
    conn: &mut AnyConnection,
    tenant: &TenantId,
    project: &Project,
) -> Result<()> {
    let written = sqlx::query(
        "INSERT INTO projects (id, tenant_id, name, profile_id, created_at) VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(&project.id)
    .bind(tenant)
    .bind(&project.name)
    .bind(&project.profile_id)
    .bind(now_ms())
    .execute(conn)
    .await;
    project_name_taken(written).map(drop)
}

pub async fn update_project(
    conn: &mut AnyConnection,
    tenant: &TenantId,
    id: &str,
    name: Option<&str>,
    profile_id: Option<Option<&str>>,
) -> Result<()> {
    if name.is_none() && profile_id.is_none() {
        return Ok(());
    }
    let mut sql = Sql::new("UPDATE projects SET id = id");
    if let Some(name) = name {
        sql.push(", name = ").push_bind(name);
    }
    if let Some(profile) = profile_id {
        sql.push(", profile_id = ")
            .push_bind(profile.map(str::to_string));
    }
    sql.push(" WHERE tenant_id = ").push_bind(tenant);
    sql.push(" AND id = ").push_bind(id);
    project_name_taken(sql.execute(conn).await).map(drop)
}

/// Deletes a project without tickets; `project_in_use` otherwise.
pub async fn delete_project(conn: &mut AnyConnection, tenant: &TenantId, id: &str) -> Result<()> {
    let (in_use,): (i64,) =
        sqlx::query_as("SELECT COUNT(*) FROM tickets WHERE tenant_id = $1 AND project_id = $2")
            .bind(tenant)
            .bind(id)
            .fetch_one(&mut *conn)
            .await?;
    if in_use > 0 {
        return Err(Error::conflict(
            "project_in_use",
            "the project still has tickets",
        ));
    }
    let deleted = sqlx::query("DELETE FROM projects WHERE tenant_id = $1 AND id = $2")
        .bind(tenant)
        .bind(id)
        .execute(conn)
        .await?;
    if deleted.rows_affected() == 0 {
        return Err(Error::NotFound("project"));
    }
    Ok(())
}

const COLUMNS: &str = "id, project_id, number, title, description, ticket_type, priority, contact_first_name, contact_last_name,
    contact_email, contact_mobile, address, custom_fields, technician_id, status, latitude_e6, longitude_e6, position_at, eta_at,
    appointment_start, appointment_end, appointment_rules_id, created_at, updated_at";

/// One ticket, read in a write transaction and locked until it ends (`for_update` from the
/// transaction), so a change decided on what was read cannot be overtaken by another.
pub(super) async fn lock(
    conn: &mut AnyConnection,
    tenant: &TenantId,
    id: &str,
    for_update: &str,
) -> Result<TicketRow> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM tickets WHERE tenant_id = $1 AND id = $2{for_update}"
    )))
    .bind(tenant)
    .bind(id)
    .fetch_optional(conn)
    .await?
    .ok_or(Error::NotFound("ticket"))
}

/// The tenant's open tickets whose appointment starts after `from` and no later than `until`
/// (ms): (ticket id, appointment start).
pub async fn appointments_between(
    pool: &Pool,
    tenant: &TenantId,
    from: i64,
    until: i64,
) -> Result<Vec<(String, i64)>> {
    Ok(sqlx::query_as(
        "SELECT id, appointment_start FROM tickets
         WHERE tenant_id = $1 AND appointment_start > $2 AND appointment_start <= $3 AND status <> 'closed'
         ORDER BY appointment_start",
    )
    .bind(tenant)
    .bind(from)
    .bind(until)
    .fetch_all(pool)
    .await?)
}

/// Appointments that use the capacity of booking rules `rules` and come within `[from, to)`
/// (ms), of open tickets other than `except`: (start, end).
pub async fn appointments_using(
    conn: &mut AnyConnection,
    tenant: &TenantId,
    rules: &str,
    from: i64,
    to: i64,
    except: &str,
) -> Result<Vec<(i64, i64)>> {
    Ok(sqlx::query_as(
        "SELECT appointment_start, appointment_end FROM tickets
         WHERE tenant_id = $1 AND appointment_rules_id = $2 AND appointment_start < $4
           AND appointment_end > $3 AND id <> $5 AND status <> 'closed'
         ORDER BY appointment_start",
    )
    .bind(tenant)
    .bind(rules)
    .bind(from)
    .bind(to)
    .bind(except)
    .fetch_all(conn)
    .await?)
}

/// What the ticket list may be narrowed to.
pub struct Filter<'a> {
    pub status: Option<Status>,
    pub project_id: Option<&'a str>,
    pub technician_id: Option<&'a str>,
    /// Title, contact names and email (substring, any case) or the number.
    pub q: Option<&'a str>,
    pub after: &'a str,
    pub limit: i64,
}

pub(super) async fn list(
    pool: &Pool,
    tenant: &TenantId,
    filter: &Filter<'_>,
) -> Result<Vec<TicketRow>> {
    let mut sql = Sql::new(&format!("SELECT {COLUMNS} FROM tickets WHERE tenant_id = "));
    sql.push_bind(tenant)
        .push(" AND id > ")
        .push_bind(filter.after);
    if let Some(status) = filter.status {
        sql.push(" AND status = ").push_bind(status.as_str());
    }
    if let Some(project) = filter.project_id {
        sql.push(" AND project_id = ").push_bind(project);
    }
    if let Some(technician) = filter.technician_id {
        sql.push(" AND technician_id = ").push_bind(technician);
    }
    if let Some(q) = filter.q {
        let escaped = q
            .to_lowercase()
            .replace('\\', "\\\\")
            .replace('%', "\\%")
            .replace('_', "\\_");
        let like = format!("%{escaped}%");
        sql.push(" AND (");
        for (i, column) in [
            "title",
            "contact_email",
            "contact_last_name",
            "contact_first_name",
        ]
        .iter()
        .enumerate()
        {
            let or = if i == 0 { "" } else { " OR " };
            sql.push(&format!("{or}LOWER({column}) LIKE "))
                .push_bind(like.as_str())
                .push(" ESCAPE '\\'");
        }
        sql.push(" OR CAST(number AS TEXT) = ")
            .push_bind(q.trim_start_matches('#'))
            .push(")");
    }
    sql.push(" ORDER BY id LIMIT ").push_bind(filter.limit);
    Ok(sql.query_as().fetch_all(pool).await?)
}

/// The next per-tenant ticket number, taken in the creating transaction.
pub(super) async fn next_number(conn: &mut AnyConnection, tenant: &TenantId) -> Result<i64> {
    let (number,): (i64,) = sqlx::query_as(
        "INSERT INTO ticket_counters (tenant_id, last_number) VALUES ($1, 1)
         ON CONFLICT (tenant_id) DO UPDATE SET last_number = ticket_counters.last_number + 1 RETURNING last_number",
    )
    .bind(tenant)
    .fetch_one(conn)
    .await?;
    Ok(number)
}

pub(super) async fn insert(
    conn: &mut AnyConnection,
    tenant: &TenantId,
    row: &TicketRow,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO tickets (id, tenant_id, project_id, number, title, description, ticket_type, priority, contact_first_name,
         contact_last_name, contact_email, contact_mobile, address, custom_fields, technician_id, status, created_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $17)",
    )
    .bind(&row.id)
    .bind(tenant)
    .bind(&row.project_id)
    .bind(row.number)
    .bind(&row.title)
    .bind(&row.description)
    .bind(&row.ticket_type)
    .bind(&row.priority)
    .bind(&row.contact_first_name)
    .bind(&row.contact_last_name)
    .bind(&row.contact_email)
    .bind(&row.contact_mobile)
    .bind(&row.address)
    .bind(&row.custom_fields)
    .bind(&row.technician_id)
    .bind(row.status.as_str())
    .bind(row.created_at)
    .execute(conn)
    .await?;
    Ok(())
}

/// Writes only the given columns (and `updated_at`). Column names come from the service, never
/// from input.
pub(super) async fn update(
    conn: &mut AnyConnection,
    tenant: &TenantId,
    id: &str,
    columns: &[(&'static str, Arg)],
) -> Result<()> {
    let mut sql = Sql::new("UPDATE tickets SET updated_at = ");
    sql.push_bind(now_ms());
    for (column, value) in columns {
        sql.push(&format!(", {column} = ")).push_bind(value.clone());
    }
    sql.push(" WHERE tenant_id = ").push_bind(tenant);
    sql.push(" AND id = ").push_bind(id);
    sql.execute(conn).await?;
    Ok(())
}

pub(super) async fn record_step(
    conn: &mut AnyConnection,
    tenant: &TenantId,
    ticket: &str,
    status: Status,
    actor: &str,
    at: i64,
) -> Result<()> {
    sqlx::query("INSERT INTO ticket_status_history (id, tenant_id, ticket_id, status, actor, at) VALUES ($1, $2, $3, $4, $5, $6)")
        .bind(db::new_id())
        .bind(tenant)
        .bind(ticket)
        .bind(status.as_str())
        .bind(actor)
        .bind(at)
        .execute(conn)
        .await?;
    Ok(())
}

/// Stores feedback; `false` when some was given already.
pub(super) async fn insert_feedback(
    conn: &mut AnyConnection,
    tenant: &TenantId,
    ticket: &str,
    rating: i64,
    comment: &str,
) -> Result<bool> {
    let inserted = sqlx::query(
        "INSERT INTO ticket_feedback (ticket_id, tenant_id, rating, comment, created_at) VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(ticket)
    .bind(tenant)
    .bind(rating)
    .bind(comment)
    .bind(now_ms())
    .execute(conn)
    .await;
    match inserted {
        Ok(_) => Ok(true),
        Err(e) if db::is_unique_violation(&e) => Ok(false),
        Err(e) => Err(Error::from(e)),
    }
}

/// `$first, $first+1, …` for `count` values.
fn placeholders(first: usize, count: usize) -> String {
    (first..first + count)
        .map(|n| format!("${n}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// What a ticket's view shows besides its row.
#[derive(Default)]
pub(super) struct Details {
    pub timelines: HashMap<String, Vec<Step>>,
    pub feedback: HashMap<String, Feedback>,
    pub notices: HashMap<String, Vec<Notice>>,
}

/// The timelines, feedback and notices of several tickets, in three queries whatever their
/// number.
pub(super) async fn details(
    conn: &mut AnyConnection,
    tenant: &TenantId,
    ids: &[&str],
) -> Result<Details> {
    let mut timelines: HashMap<String, Vec<Step>> = HashMap::new();
    let mut feedback = HashMap::new();
    let mut notices: HashMap<String, Vec<Notice>> = HashMap::new();
    if ids.is_empty() {
        return Ok(Details::default());
    }
    let sql = format!(
        "SELECT ticket_id, status, at FROM ticket_status_history WHERE tenant_id = $1 AND ticket_id IN ({}) ORDER BY at, id",
        placeholders(2, ids.len())
    );
    let mut query =
        sqlx::query_as::<_, (String, String, i64)>(sqlx::AssertSqlSafe(sql)).bind(tenant);
    for id in ids {
        query = query.bind(*id);
    }
    for (ticket, status, at) in query.fetch_all(&mut *conn).await? {
        timelines.entry(ticket).or_default().push(Step {
            status: Status::try_from(status)?,
            at: db::timestamp(at),
        });
    }
    let sql = format!(
        "SELECT ticket_id, rating, comment, created_at FROM ticket_feedback WHERE tenant_id = $1 AND ticket_id IN ({})",
        placeholders(2, ids.len())
    );
    let mut query =
        sqlx::query_as::<_, (String, i64, String, i64)>(sqlx::AssertSqlSafe(sql)).bind(tenant);
    for id in ids {
        query = query.bind(*id);
    }
    for (ticket, rating, comment, at) in query.fetch_all(&mut *conn).await? {
        feedback.insert(
            ticket,
            Feedback {
                rating,
                comment,
                at: db::timestamp(at),
            },
        );
    }
    let sql = format!(
        "SELECT ticket_id, text, created_at FROM ticket_notices WHERE tenant_id = $1 AND ticket_id IN ({}) ORDER BY created_at, id",
        placeholders(2, ids.len())
    );
    let mut query =
        sqlx::query_as::<_, (String, String, i64)>(sqlx::AssertSqlSafe(sql)).bind(tenant);
    for id in ids {
        query = query.bind(*id);
    }
    for (ticket, text, at) in query.fetch_all(&mut *conn).await? {
        notices.entry(ticket).or_default().push(Notice {
            text,
            at: db::timestamp(at),
        });
    }
    Ok(Details {
        timelines,
        feedback,
        notices,
    })
}

/// Posts information to a ticket's tracking page.
pub(super) async fn insert_notice(
    conn: &mut AnyConnection,
    tenant: &TenantId,
    ticket_id: &str,
    text: &str,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO ticket_notices (id, tenant_id, ticket_id, text, created_at) VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(db::new_id())
    .bind(tenant)
    .bind(ticket_id)
    .bind(text)
    .bind(db::now_ms())
    .execute(conn)
    .await?;
    Ok(())
}
