//! The back-office API: projects and tickets for dispatchers and technicians.

use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use sqlx::FromRow;
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};

use std::collections::HashMap;

use super::feedback::Feedback;
use super::{Status, fields, links};
use crate::AppState;
use crate::audit::{self, Change};
use crate::auth;
use crate::db::{self, Pool, now_ms};
use crate::error::{Error, Result};
use crate::http::extract::{Json, Path, Query};
use crate::invalidation::Invalidation;
use crate::policies::Scope;
use crate::types::{Email, Page, PageParams, TenantId};

#[derive(Serialize, FromRow, ToSchema)]
pub struct Project {
    pub id: String,
    pub name: String,
    /// The portal profile of the project's pages; absent: the tenant's default.
    pub profile_id: Option<String>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProjectInput {
    pub name: String,
    pub profile_id: Option<String>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProjectChanges {
    pub name: Option<String>,
    /// `null`: the tenant's default profile.
    #[serde(default, deserialize_with = "crate::types::double_option")]
    pub profile_id: Option<Option<String>>,
}

/// A profile assigned to a project must be the tenant's own.
async fn check_profile(pool: &Pool, tenant: &TenantId, profile: Option<&str>) -> Result<()> {
    if let Some(profile) = profile {
        crate::profiles::find(pool, tenant, profile)
            .await
            .map_err(|e| match e {
                Error::NotFound(_) => {
                    Error::invalid("unknown_profile", "no such portal profile in this tenant")
                }
                other => other,
            })?;
    }
    Ok(())
}

/// A write of a project, with a taken name told apart from other failures.
fn unique_name(written: std::result::Result<sqlx::any::AnyQueryResult, sqlx::Error>) -> Result<()> {
    match written {
        Err(e) if db::is_unique_violation(&e) => Err(Error::conflict(
            "project_exists",
            "a project with this name exists",
        )),
        other => other.map(|_| ()).map_err(Error::from),
    }
}

fn check_name(name: &str) -> Result<String> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 200 {
        return Err(Error::invalid(
            "invalid_name",
            "a name is 1 to 200 characters",
        ));
    }
    Ok(name.to_string())
}

#[utoipa::path(get, path = "/api/v1/tenants/{tenant}/projects", tag = "tickets",
    params(("tenant" = String, Path, description = "Tenant id or slug"), PageParams),
    responses((status = 200, body = Page<Project>)))]
async fn list_projects(
    State(state): State<AppState>,
    scope: Scope,
    Query(page): Query<PageParams>,
) -> Result<Json<Page<Project>>> {
    let limit = page.limit()?;
    let rows: Vec<Project> = sqlx::query_as(
        "SELECT id, name, profile_id FROM projects WHERE tenant_id = $1 AND id > $2 ORDER BY id LIMIT $3",
    )
    .bind(&scope.tenant.id)
    .bind(page.after())
    .bind(limit + 1)
    .fetch_all(&state.db.pool)
    .await?;
    Ok(Json(Page::from_rows(rows, limit, |p| &p.id)))
}

#[utoipa::path(post, path = "/api/v1/tenants/{tenant}/projects", tag = "tickets",
    params(("tenant" = String, Path, description = "Tenant id or slug")),
    request_body = ProjectInput, responses((status = 201, body = Project)))]
async fn create_project(
    State(state): State<AppState>,
    scope: Scope,
    Json(input): Json<ProjectInput>,
) -> Result<(StatusCode, Json<Project>)> {
    let tenant = &scope.tenant.id;
    let project = Project {
        id: db::new_id(),
        name: check_name(&input.name)?,
        profile_id: input.profile_id,
    };
    check_profile(&state.db.pool, tenant, project.profile_id.as_deref()).await?;
    let mut tx = state.db.pool.begin().await?;
    let inserted = sqlx::query(
        "INSERT INTO projects (id, tenant_id, name, profile_id, created_at) VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(&project.id)
    .bind(tenant)
    .bind(&project.name)
    .bind(&project.profile_id)
    .bind(now_ms())
    .execute(&mut *tx)
    .await;
    unique_name(inserted)?;
    let change = Change {
        tenant: Some(tenant),
        action: "project.create",
        target: &project.id,
        before: None,
        after: Some(json!({"name": project.name, "profile_id": project.profile_id})),
    };
    audit::record(&mut tx, &scope.caller.actor(), change).await?;
    tx.commit().await?;
    Ok((StatusCode::CREATED, Json(project)))
}

#[utoipa::path(patch, path = "/api/v1/tenants/{tenant}/projects/{project}", tag = "tickets",
    params(("tenant" = String, Path, description = "Tenant id or slug"), ("project" = String, Path)),
    request_body = ProjectChanges, responses((status = 200, body = Project)))]
async fn update_project(
    State(state): State<AppState>,
    scope: Scope,
    Path((_, id)): Path<(String, String)>,
    Json(input): Json<ProjectChanges>,
) -> Result<Json<Project>> {
    let tenant = &scope.tenant.id;
    let pool = &state.db.pool;
    let before: Project = sqlx::query_as(
        "SELECT id, name, profile_id FROM projects WHERE tenant_id = $1 AND id = $2",
    )
    .bind(tenant)
    .bind(&id)
    .fetch_optional(pool)
    .await?
    .ok_or(Error::NotFound("project"))?;
    let after = Project {
        id: id.clone(),
        name: match &input.name {
            Some(name) => check_name(name)?,
            None => before.name.clone(),
        },
        profile_id: input
            .profile_id
            .unwrap_or_else(|| before.profile_id.clone()),
    };
    check_profile(pool, tenant, after.profile_id.as_deref()).await?;
    let mut tx = pool.begin().await?;
    let updated = sqlx::query(
        "UPDATE projects SET name = $3, profile_id = $4 WHERE tenant_id = $1 AND id = $2",
    )
    .bind(tenant)
    .bind(&id)
    .bind(&after.name)
    .bind(&after.profile_id)
    .execute(&mut *tx)
    .await;
    unique_name(updated)?;
    let change = Change {
        tenant: Some(tenant),
        action: "project.update",
        target: &id,
        before: Some(json!({"name": before.name, "profile_id": before.profile_id})),
        after: Some(json!({"name": after.name, "profile_id": after.profile_id})),
    };
    audit::record(&mut tx, &scope.caller.actor(), change).await?;
    tx.commit().await?;
    Ok(Json(after))
}

#[utoipa::path(delete, path = "/api/v1/tenants/{tenant}/projects/{project}", tag = "tickets",
    params(("tenant" = String, Path, description = "Tenant id or slug"), ("project" = String, Path)),
    responses((status = 204), (status = 409, body = crate::error::ErrorBody)))]
async fn delete_project(
    State(state): State<AppState>,
    scope: Scope,
    Path((_, id)): Path<(String, String)>,
) -> Result<StatusCode> {
    let tenant = &scope.tenant.id;
    let in_use: (i64,) =
        sqlx::query_as("SELECT COUNT(*) FROM tickets WHERE tenant_id = $1 AND project_id = $2")
            .bind(tenant)
            .bind(&id)
            .fetch_one(&state.db.pool)
            .await?;
    if in_use.0 > 0 {
        return Err(Error::conflict(
            "project_in_use",
            "the project still has tickets",
        ));
    }
    let mut tx = state.db.pool.begin().await?;
    let deleted = sqlx::query("DELETE FROM projects WHERE tenant_id = $1 AND id = $2")
        .bind(tenant)
        .bind(&id)
        .execute(&mut *tx)
        .await?;
    if deleted.rows_affected() == 0 {
        return Err(Error::NotFound("project"));
    }
    let change = Change {
        tenant: Some(tenant),
        action: "project.delete",
        target: &id,
        before: None,
        after: None,
    };
    audit::record(&mut tx, &scope.caller.actor(), change).await?;
    tx.commit().await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Clone, FromRow)]
struct TicketRow {
    id: String,
    project_id: String,
    number: i64,
    title: String,
    description: String,
    ticket_type: String,
    priority: String,
    contact_first_name: String,
    contact_last_name: String,
    contact_email: String,
    contact_mobile: Option<String>,
    address: String,
    custom_fields: String,
    technician_id: Option<String>,
    status: String,
    latitude_e6: Option<i64>,
    longitude_e6: Option<i64>,
    position_at: Option<i64>,
    eta_at: Option<i64>,
    appointment_start: Option<i64>,
    appointment_end: Option<i64>,
    created_at: i64,
    updated_at: i64,
}

const COLUMNS: &str = "id, project_id, number, title, description, ticket_type, priority, contact_first_name, contact_last_name,
    contact_email, contact_mobile, address, custom_fields, technician_id, status, latitude_e6, longitude_e6, position_at, eta_at,
    appointment_start, appointment_end, created_at, updated_at";

/// The person the visit is for.
#[derive(Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Contact {
    pub first_name: String,
    pub last_name: String,
    /// Required: the tracking link and notifications go here.
    pub email: String,
    pub mobile: Option<String>,
}

/// One reached step.
#[derive(Serialize, ToSchema)]
pub struct Step {
    pub status: Status,
    #[schema(value_type = String, format = DateTime)]
    pub at: jiff::Timestamp,
}

/// The agreed visit window.
#[derive(Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Appointment {
    #[schema(value_type = String, format = DateTime)]
    pub start: jiff::Timestamp,
    #[schema(value_type = String, format = DateTime)]
    pub end: jiff::Timestamp,
}

#[derive(Serialize, ToSchema)]
pub struct Position {
    pub latitude: f64,
    pub longitude: f64,
    #[schema(value_type = String, format = DateTime)]
    pub at: jiff::Timestamp,
}

/// A ticket as the back office sees it.
#[derive(Serialize, ToSchema)]
pub struct Ticket {
    pub id: String,
    /// Per-tenant number, for people.
    pub number: i64,
    pub project_id: String,
    pub title: String,
    pub description: String,
    pub ticket_type: String,
    /// `low`, `normal`, `high` or `urgent`.
    pub priority: String,
    pub contact: Contact,
    pub address: String,
    #[schema(value_type = Object)]
    pub custom_fields: Value,
    pub technician_id: Option<String>,
    pub status: Status,
    /// The steps reached so far, with their times.
    pub timeline: Vec<Step>,
    /// The technician's last reported position.
    pub position: Option<Position>,
    #[schema(value_type = Option<String>, format = DateTime)]
    pub eta: Option<jiff::Timestamp>,
    pub appointment: Option<Appointment>,
    /// The end user's rating of the visit, once given.
    pub feedback: Option<Feedback>,
    #[schema(value_type = String, format = DateTime)]
    pub created_at: jiff::Timestamp,
    #[schema(value_type = String, format = DateTime)]
    pub updated_at: jiff::Timestamp,
    /// The tracking link: present only in the answer that created or reissued it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tracking_url: Option<String>,
}

impl TicketRow {
    fn view(self, timeline: Vec<Step>, feedback: Option<Feedback>) -> Result<Ticket> {
        Ok(Ticket {
            appointment: match (self.appointment_start, self.appointment_end) {
                (Some(start), Some(end)) => Some(Appointment {
                    start: db::timestamp(start),
                    end: db::timestamp(end),
                }),
                _ => None,
            },
            feedback,
            status: Status::parse(&self.status)
                .ok_or_else(|| Error::Internal(anyhow::anyhow!("stored status {}", self.status)))?,
            custom_fields: serde_json::from_str(&self.custom_fields)
                .map_err(|e| Error::Internal(e.into()))?,
            position: match (self.latitude_e6, self.longitude_e6, self.position_at) {
                (Some(latitude), Some(longitude), Some(at)) => Some(Position {
                    latitude: from_e6(latitude),
                    longitude: from_e6(longitude),
                    at: db::timestamp(at),
                }),
                _ => None,
            },
            eta: self.eta_at.map(db::timestamp),
            id: self.id,
            number: self.number,
            project_id: self.project_id,
            title: self.title,
            description: self.description,
            ticket_type: self.ticket_type,
            priority: self.priority,
            contact: Contact {
                first_name: self.contact_first_name,
                last_name: self.contact_last_name,
                email: self.contact_email,
                mobile: self.contact_mobile,
            },
            address: self.address,
            technician_id: self.technician_id,
            timeline,
            created_at: db::timestamp(self.created_at),
            updated_at: db::timestamp(self.updated_at),
            tracking_url: None,
        })
    }
}

/// One ticket of the tenant, read through the pool or inside a transaction.
async fn find<'e>(
    executor: impl sqlx::Executor<'e, Database = sqlx::Any>,
    tenant: &TenantId,
    id: &str,
) -> Result<TicketRow> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM tickets WHERE tenant_id = $1 AND id = $2"
    )))
    .bind(tenant)
    .bind(id)
    .fetch_optional(executor)
    .await?
    .ok_or(Error::NotFound("ticket"))
}

/// `$first, $first+1, …` for `count` values.
fn placeholders(first: usize, count: usize) -> String {
    (first..first + count)
        .map(|n| format!("${n}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The timelines and feedback of several tickets, in two queries whatever their number.
async fn details(
    pool: &Pool,
    tenant: &TenantId,
    ids: &[&str],
) -> Result<(HashMap<String, Vec<Step>>, HashMap<String, Feedback>)> {
    let mut timelines: HashMap<String, Vec<Step>> = HashMap::new();
    let mut feedback = HashMap::new();
    if ids.is_empty() {
        return Ok((timelines, feedback));
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
    for (ticket, status, at) in query.fetch_all(pool).await? {
        if let Some(status) = Status::parse(&status) {
            timelines.entry(ticket).or_default().push(Step {
                status,
                at: db::timestamp(at),
            });
        }
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
    for (ticket, rating, comment, at) in query.fetch_all(pool).await? {
        feedback.insert(
            ticket,
            Feedback {
                rating,
                comment,
                at: db::timestamp(at),
            },
        );
    }
    Ok((timelines, feedback))
}

/// Tickets with their timelines and feedback, as the API and the tracking page show them.
async fn views(pool: &Pool, tenant: &TenantId, rows: Vec<TicketRow>) -> Result<Vec<Ticket>> {
    let ids: Vec<&str> = rows.iter().map(|r| r.id.as_str()).collect();
    let (mut timelines, mut feedback) = details(pool, tenant, &ids).await?;
    rows.into_iter()
        .map(|row| {
            let steps = timelines.remove(&row.id).unwrap_or_default();
            let given = feedback.remove(&row.id);
            row.view(steps, given)
        })
        .collect()
}

/// A ticket with its timeline and feedback, as the API and the tracking page show it.
pub async fn load(pool: &Pool, tenant: &TenantId, id: &str) -> Result<Ticket> {
    let row = find(pool, tenant, id).await?;
    let mut tickets = views(pool, tenant, vec![row]).await?;
    tickets.pop().ok_or(Error::NotFound("ticket"))
}

/// Coordinates are kept in microdegrees (about 0.1 m).
fn to_e6(degrees: f64) -> i64 {
    (degrees * 1e6).round() as i64
}

fn from_e6(microdegrees: i64) -> f64 {
    microdegrees as f64 / 1e6
}

const PRIORITIES: &[&str] = &["low", "normal", "high", "urgent"];

fn check_contact(contact: &Contact) -> Result<Contact> {
    let email = Email::parse(&contact.email).map_err(|_| {
        Error::invalid(
            "invalid_email",
            "the affected person needs a valid email address for the tracking link",
        )
    })?;
    for (what, value) in [
        ("first_name", &contact.first_name),
        ("last_name", &contact.last_name),
    ] {
        if value.trim().is_empty() || value.len() > 100 {
            return Err(Error::invalid(
                "invalid_contact",
                format!("contact {what} is 1 to 100 characters"),
            ));
        }
    }
    if let Some(mobile) = &contact.mobile {
        let digits = mobile.trim_start_matches('+');
        if !mobile.starts_with('+')
            || digits.len() < 6
            || digits.len() > 15
            || !digits.bytes().all(|b| b.is_ascii_digit())
        {
            return Err(Error::invalid(
                "invalid_mobile",
                "a mobile number is in E.164 form, such as +4915112345678",
            ));
        }
    }
    Ok(Contact {
        email: email.to_string(),
        first_name: contact.first_name.trim().into(),
        last_name: contact.last_name.trim().into(),
        mobile: contact.mobile.clone(),
    })
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewTicket {
    pub project_id: String,
    pub title: String,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub ticket_type: String,
    /// Defaults to `normal`.
    pub priority: Option<String>,
    pub contact: Contact,
    #[serde(default)]
    pub address: String,
    #[serde(default)]
    #[schema(value_type = Object)]
    pub custom_fields: Map<String, Value>,
    pub technician_id: Option<String>,
}

async fn check_technician(pool: &Pool, tenant: &TenantId, technician: Option<&str>) -> Result<()> {
    if let Some(id) = technician {
        // Another tenant's staff are simply not found here.
        auth::find_user(pool, tenant, id).await?;
    }
    Ok(())
}

fn check_priority(priority: &str) -> Result<()> {
    if PRIORITIES.contains(&priority) {
        Ok(())
    } else {
        Err(Error::invalid(
            "invalid_priority",
            "priority is low, normal, high or urgent",
        ))
    }
}

async fn record_step(
    conn: &mut sqlx::AnyConnection,
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

/// Creates a ticket in step "Ticket Received" with its tracking link, shown once in the answer.
#[utoipa::path(post, path = "/api/v1/tenants/{tenant}/tickets", tag = "tickets",
    params(("tenant" = String, Path, description = "Tenant id or slug")),
    request_body = NewTicket, responses((status = 201, body = Ticket)))]
async fn create_ticket(
    State(state): State<AppState>,
    scope: Scope,
    Json(input): Json<NewTicket>,
) -> Result<(StatusCode, Json<Ticket>)> {
    let tenant = &scope.tenant.id;
    let pool = &state.db.pool;
    let title = check_name(&input.title)?;
    let contact = check_contact(&input.contact)?;
    let priority = input.priority.unwrap_or_else(|| "normal".into());
    check_priority(&priority)?;
    let definitions = fields::definitions(pool, tenant).await?;
    fields::check_values(&definitions, &input.custom_fields, true)?;
    check_technician(pool, tenant, input.technician_id.as_deref()).await?;
    let project: Option<(String,)> =
        sqlx::query_as("SELECT id FROM projects WHERE tenant_id = $1 AND id = $2")
            .bind(tenant)
            .bind(&input.project_id)
            .fetch_optional(pool)
            .await?;
    project.ok_or(Error::NotFound("project"))?;

    let now = now_ms();
    let id = db::new_id();
    let actor = scope.caller.actor();
    let mut tx = pool.begin().await?;
    let (number,): (i64,) = sqlx::query_as(
        "INSERT INTO ticket_counters (tenant_id, last_number) VALUES ($1, 1)
         ON CONFLICT (tenant_id) DO UPDATE SET last_number = ticket_counters.last_number + 1 RETURNING last_number",
    )
    .bind(tenant)
    .fetch_one(&mut *tx)
    .await?;
    sqlx::query(
        "INSERT INTO tickets (id, tenant_id, project_id, number, title, description, ticket_type, priority, contact_first_name,
         contact_last_name, contact_email, contact_mobile, address, custom_fields, technician_id, status, created_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, 'received', $16, $16)",
    )
    .bind(&id)
    .bind(tenant)
    .bind(&input.project_id)
    .bind(number)
    .bind(&title)
    .bind(&input.description)
    .bind(&input.ticket_type)
    .bind(&priority)
    .bind(&contact.first_name)
    .bind(&contact.last_name)
    .bind(&contact.email)
    .bind(&contact.mobile)
    .bind(&input.address)
    .bind(Value::Object(input.custom_fields).to_string())
    .bind(&input.technician_id)
    .bind(now)
    .execute(&mut *tx)
    .await?;
    record_step(&mut tx, tenant, &id, Status::Received, &actor, now).await?;
    let token = links::issue(&mut tx, tenant, &id).await?;
    let change = Change {
        tenant: Some(tenant),
        action: "ticket.create",
        target: &id,
        before: None,
        after: Some(json!({"number": number, "title": title})),
    };
    audit::record(&mut tx, &actor, change).await?;
    tx.commit().await?;
    let mut ticket = load(pool, tenant, &id).await?;
    ticket.tracking_url = Some(links::url(&state.config, &scope.tenant.slug, &token));
    Ok((StatusCode::CREATED, Json(ticket)))
}

/// Filters of the ticket list.
#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct TicketFilter {
    pub status: Option<String>,
    pub project_id: Option<String>,
    pub technician_id: Option<String>,
    /// Searches title, contact name and email, and the ticket number.
    pub q: Option<String>,
    /// Items per page, 1 to 200 (default 50).
    pub limit: Option<u32>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

#[utoipa::path(get, path = "/api/v1/tenants/{tenant}/tickets", tag = "tickets",
    params(("tenant" = String, Path, description = "Tenant id or slug"), TicketFilter),
    responses((status = 200, body = Page<Ticket>)))]
async fn list_tickets(
    State(state): State<AppState>,
    scope: Scope,
    Query(filter): Query<TicketFilter>,
) -> Result<Json<Page<Ticket>>> {
    let page = PageParams {
        limit: filter.limit,
        cursor: filter.cursor.clone(),
    };
    let limit = page.limit()?;
    let mut sql = format!("SELECT {COLUMNS} FROM tickets WHERE tenant_id = $1 AND id > $2");
    let mut binds: Vec<String> = vec![scope.tenant.id.to_string(), page.after().to_string()];
    // Each `?` in a clause becomes the next numbered placeholder, bound to `value`.
    fn push(sql: &mut String, binds: &mut Vec<String>, clause: &str, value: String) {
        binds.push(value);
        sql.push_str(&clause.replace('?', &format!("${}", binds.len())));
    }
    if let Some(status) = &filter.status {
        let status = Status::parse(status).ok_or_else(|| Error::BadRequest {
            code: "invalid_query",
            message: format!("unknown status {status:?}"),
        })?;
        push(
            &mut sql,
            &mut binds,
            " AND status = ?",
            status.as_str().into(),
        );
    }
    if let Some(project) = &filter.project_id {
        push(&mut sql, &mut binds, " AND project_id = ?", project.clone());
    }
    if let Some(technician) = &filter.technician_id {
        push(
            &mut sql,
            &mut binds,
            " AND technician_id = ?",
            technician.clone(),
        );
    }
    if let Some(q) = filter.q.as_deref().map(str::trim).filter(|q| !q.is_empty()) {
        let escaped = q
            .to_lowercase()
            .replace('\\', "\\\\")
            .replace('%', "\\%")
            .replace('_', "\\_");
        let like = " ESCAPE '\\'";
        push(
            &mut sql,
            &mut binds,
            &format!(" AND (LOWER(title) LIKE ?{like}"),
            format!("%{escaped}%"),
        );
        let n = binds.len();
        for column in ["contact_email", "contact_last_name", "contact_first_name"] {
            sql.push_str(&format!(" OR LOWER({column}) LIKE ${n}{like}"));
        }
        push(
            &mut sql,
            &mut binds,
            " OR CAST(number AS TEXT) = ?)",
            q.trim_start_matches('#').to_string(),
        );
    }
    sql.push_str(&format!(" ORDER BY id LIMIT {}", limit + 1));
    let mut query = sqlx::query_as::<_, TicketRow>(sqlx::AssertSqlSafe(sql));
    for value in binds {
        query = query.bind(value);
    }
    let rows = query.fetch_all(&state.db.pool).await?;
    let page = Page::from_rows(rows, limit, |r| &r.id);
    Ok(Json(Page {
        items: views(&state.db.pool, &scope.tenant.id, page.items).await?,
        next_cursor: page.next_cursor,
    }))
}

#[utoipa::path(get, path = "/api/v1/tenants/{tenant}/tickets/{ticket}", tag = "tickets",
    params(("tenant" = String, Path, description = "Tenant id or slug"), ("ticket" = String, Path)),
    responses((status = 200, body = Ticket)))]
async fn get_ticket(
    State(state): State<AppState>,
    scope: Scope,
    Path((_, id)): Path<(String, String)>,
) -> Result<Json<Ticket>> {
    Ok(Json(load(&state.db.pool, &scope.tenant.id, &id).await?))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TicketChanges {
    pub title: Option<String>,
    pub description: Option<String>,
    pub ticket_type: Option<String>,
    pub priority: Option<String>,
    pub contact: Option<Contact>,
    pub address: Option<String>,
    /// Values to set; `null` clears a field that is not required.
    #[schema(value_type = Option<Object>)]
    pub custom_fields: Option<Map<String, Value>>,
    /// A staff user of this tenant; `null` unassigns.
    #[serde(default, deserialize_with = "crate::types::double_option")]
    pub technician_id: Option<Option<String>>,
    /// The agreed visit window; `null` clears it.
    #[serde(default, deserialize_with = "crate::types::double_option")]
    pub appointment: Option<Option<Appointment>>,
}

async fn save(conn: &mut sqlx::AnyConnection, tenant: &TenantId, row: &TicketRow) -> Result<()> {
    sqlx::query(
        "UPDATE tickets SET title = $3, description = $4, ticket_type = $5, priority = $6, contact_first_name = $7,
         contact_last_name = $8, contact_email = $9, contact_mobile = $10, address = $11, custom_fields = $12, technician_id = $13,
         status = $14, latitude_e6 = $15, longitude_e6 = $16, position_at = $17, eta_at = $18, updated_at = $19,
         appointment_start = $20, appointment_end = $21
         WHERE tenant_id = $1 AND id = $2",
    )
    .bind(tenant)
    .bind(&row.id)
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
    .bind(&row.status)
    .bind(row.latitude_e6)
    .bind(row.longitude_e6)
    .bind(row.position_at)
    .bind(row.eta_at)
    .bind(row.updated_at)
    .bind(row.appointment_start)
    .bind(row.appointment_end)
    .execute(conn)
    .await?;
    Ok(())
}

/// Writes a changed ticket with its audit entry and announces the change to live pages.
async fn commit(
    state: &AppState,
    scope: &Scope,
    mut tx: sqlx::Transaction<'_, sqlx::Any>,
    row: TicketRow,
    action: &str,
    before: Value,
) -> Result<Ticket> {
    let tenant = &scope.tenant.id;
    save(&mut tx, tenant, &row).await?;
    let change = Change {
        tenant: Some(tenant),
        action,
        target: &row.id,
        before: Some(before),
        after: Some(summary(&row)),
    };
    audit::record(&mut tx, &scope.caller.actor(), change).await?;
    tx.commit().await?;
    state
        .invalidate(Invalidation::Ticket(tenant.clone(), row.id.clone()))
        .await;
    load(&state.db.pool, tenant, &row.id).await
}

fn summary(row: &TicketRow) -> Value {
    json!({"title": row.title, "priority": row.priority, "status": row.status, "technician_id": row.technician_id,
        "appointment": [row.appointment_start, row.appointment_end]})
}

#[utoipa::path(patch, path = "/api/v1/tenants/{tenant}/tickets/{ticket}", tag = "tickets",
    params(("tenant" = String, Path, description = "Tenant id or slug"), ("ticket" = String, Path)),
    request_body = TicketChanges, responses((status = 200, body = Ticket)))]
async fn update_ticket(
    State(state): State<AppState>,
    scope: Scope,
    Path((_, id)): Path<(String, String)>,
    Json(input): Json<TicketChanges>,
) -> Result<Json<Ticket>> {
    let tenant = &scope.tenant.id;
    let pool = &state.db.pool;
    let before = find(pool, tenant, &id).await?;
    let mut row = before.clone();
    if let Some(title) = &input.title {
        row.title = check_name(title)?;
    }
    if let Some(description) = input.description {
        row.description = description;
    }
    if let Some(ticket_type) = input.ticket_type {
        row.ticket_type = ticket_type;
    }
    if let Some(priority) = input.priority {
        check_priority(&priority)?;
        row.priority = priority;
    }
    if let Some(contact) = &input.contact {
        let contact = check_contact(contact)?;
        (
            row.contact_first_name,
            row.contact_last_name,
            row.contact_email,
            row.contact_mobile,
        ) = (
            contact.first_name,
            contact.last_name,
            contact.email,
            contact.mobile,
        );
    }
    if let Some(address) = input.address {
        row.address = address;
    }
    if let Some(changes) = input.custom_fields {
        let mut values: Map<String, Value> =
            serde_json::from_str(&row.custom_fields).map_err(|e| Error::Internal(e.into()))?;
        fields::check_values(&fields::definitions(pool, tenant).await?, &changes, false)?;
        for (key, value) in changes {
            if value.is_null() {
                values.remove(&key)
            } else {
                values.insert(key, value)
            };
        }
        row.custom_fields = Value::Object(values).to_string();
    }
    if let Some(technician) = input.technician_id {
        check_technician(pool, tenant, technician.as_deref()).await?;
        row.technician_id = technician;
    }
    if let Some(appointment) = input.appointment {
        (row.appointment_start, row.appointment_end) = match appointment {
            Some(window) => {
                let length = window.end.duration_since(window.start);
                if length <= jiff::SignedDuration::ZERO
                    || length > jiff::SignedDuration::from_hours(24 * 14)
                {
                    return Err(Error::invalid(
                        "invalid_appointment",
                        "an appointment ends after it starts, within 14 days",
                    ));
                }
                (
                    Some(window.start.as_millisecond()),
                    Some(window.end.as_millisecond()),
                )
            }
            None => (None, None),
        };
    }
    row.updated_at = now_ms();
    let tx = pool.begin().await?;
    Ok(Json(
        commit(&state, &scope, tx, row, "ticket.update", summary(&before)).await?,
    ))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StatusChange {
    pub status: Status,
}

/// Moves the ticket to another step. Steps go forward (skipping is allowed) or one step back;
/// a closed ticket stays closed.
#[utoipa::path(post, path = "/api/v1/tenants/{tenant}/tickets/{ticket}/status", tag = "tickets",
    params(("tenant" = String, Path, description = "Tenant id or slug"), ("ticket" = String, Path)),
    request_body = StatusChange, responses((status = 200, body = Ticket), (status = 422, body = crate::error::ErrorBody)))]
async fn change_status(
    State(state): State<AppState>,
    scope: Scope,
    Path((_, id)): Path<(String, String)>,
    Json(input): Json<StatusChange>,
) -> Result<Json<Ticket>> {
    let tenant = &scope.tenant.id;
    let mut tx = state.db.pool.begin().await?;
    let before = find(&mut *tx, tenant, &id).await?;
    let current = Status::parse(&before.status)
        .ok_or_else(|| Error::Internal(anyhow::anyhow!("stored status")))?;
    if !current.can_move_to(input.status) {
        return Err(Error::invalid(
            "invalid_transition",
            format!(
                "a ticket cannot go from {} to {}",
                current.as_str(),
                input.status.as_str()
            ),
        ));
    }
    let now = now_ms();
    let mut row = TicketRow {
        status: input.status.as_str().into(),
        updated_at: now,
        ..before.clone()
    };
    if input.status < Status::OnRoute || input.status > Status::Arrived {
        // The position is only shown while the technician is on the way.
        (
            row.latitude_e6,
            row.longitude_e6,
            row.position_at,
            row.eta_at,
        ) = (None, None, None, None);
    }
    record_step(
        &mut tx,
        tenant,
        &id,
        input.status,
        &scope.caller.actor(),
        now,
    )
    .await?;
    Ok(Json(
        commit(&state, &scope, tx, row, "ticket.status", summary(&before)).await?,
    ))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PositionReport {
    pub latitude: f64,
    pub longitude: f64,
    /// Expected arrival.
    #[schema(value_type = Option<String>, format = DateTime)]
    pub eta: Option<jiff::Timestamp>,
}

/// The technician's live position and ETA; the ticket keeps the last one.
#[utoipa::path(post, path = "/api/v1/tenants/{tenant}/tickets/{ticket}/position", tag = "tickets",
    params(("tenant" = String, Path, description = "Tenant id or slug"), ("ticket" = String, Path)),
    request_body = PositionReport, responses((status = 200, body = Ticket)))]
async fn report_position(
    State(state): State<AppState>,
    scope: Scope,
    Path((_, id)): Path<(String, String)>,
    Json(input): Json<PositionReport>,
) -> Result<Json<Ticket>> {
    if !(-90.0..=90.0).contains(&input.latitude) || !(-180.0..=180.0).contains(&input.longitude) {
        return Err(Error::invalid(
            "invalid_position",
            "latitude is -90 to 90 and longitude -180 to 180",
        ));
    }
    let tenant = &scope.tenant.id;
    let before = find(&state.db.pool, tenant, &id).await?;
    let status = Status::parse(&before.status)
        .ok_or_else(|| Error::Internal(anyhow::anyhow!("stored status")))?;
    if !(Status::OnRoute..=Status::Arrived).contains(&status) {
        return Err(Error::conflict(
            "not_on_route",
            "positions are reported while the technician is on the way",
        ));
    }
    let now = now_ms();
    let row = TicketRow {
        latitude_e6: Some(to_e6(input.latitude)),
        longitude_e6: Some(to_e6(input.longitude)),
        position_at: Some(now),
        eta_at: input.eta.map(|t| t.as_millisecond()),
        updated_at: now,
        ..before.clone()
    };
    // Positions arrive often; they are not audited, the ticket keeps only the last.
    let mut tx = state.db.pool.begin().await?;
    save(&mut tx, tenant, &row).await?;
    tx.commit().await?;
    state
        .invalidate(Invalidation::Ticket(tenant.clone(), id.clone()))
        .await;
    Ok(Json(load(&state.db.pool, tenant, &id).await?))
}

/// Revokes the ticket's tracking link and issues a new one, returned in `tracking_url`.
#[utoipa::path(post, path = "/api/v1/tenants/{tenant}/tickets/{ticket}/tracking-link", tag = "tickets",
    params(("tenant" = String, Path, description = "Tenant id or slug"), ("ticket" = String, Path)),
    responses((status = 200, body = Ticket)))]
async fn reissue_link(
    State(state): State<AppState>,
    scope: Scope,
    Path((_, id)): Path<(String, String)>,
) -> Result<Json<Ticket>> {
    let tenant = &scope.tenant.id;
    find(&state.db.pool, tenant, &id).await?;
    let mut tx = state.db.pool.begin().await?;
    let token = links::issue(&mut tx, tenant, &id).await?;
    let change = Change {
        tenant: Some(tenant),
        action: "tracking_link.reissue",
        target: &id,
        before: None,
        after: None,
    };
    audit::record(&mut tx, &scope.caller.actor(), change).await?;
    tx.commit().await?;
    let mut ticket = load(&state.db.pool, tenant, &id).await?;
    ticket.tracking_url = Some(links::url(&state.config, &scope.tenant.slug, &token));
    Ok(Json(ticket))
}

/// Revokes the ticket's tracking link; the page then says the link is not valid.
#[utoipa::path(delete, path = "/api/v1/tenants/{tenant}/tickets/{ticket}/tracking-link", tag = "tickets",
    params(("tenant" = String, Path, description = "Tenant id or slug"), ("ticket" = String, Path)),
    responses((status = 204)))]
async fn revoke_link(
    State(state): State<AppState>,
    scope: Scope,
    Path((_, id)): Path<(String, String)>,
) -> Result<StatusCode> {
    let tenant = &scope.tenant.id;
    find(&state.db.pool, tenant, &id).await?;
    let mut tx = state.db.pool.begin().await?;
    links::revoke(&mut tx, tenant, &id).await?;
    let change = Change {
        tenant: Some(tenant),
        action: "tracking_link.revoke",
        target: &id,
        before: None,
        after: None,
    };
    audit::record(&mut tx, &scope.caller.actor(), change).await?;
    tx.commit().await?;
    Ok(StatusCode::NO_CONTENT)
}

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_projects, create_project))
        .routes(routes!(update_project, delete_project))
        .routes(routes!(list_tickets, create_ticket))
        .routes(routes!(get_ticket, update_ticket))
        .routes(routes!(change_status))
        .routes(routes!(report_position))
        .routes(routes!(reissue_link, revoke_link))
        .merge(fields::routes())
}
