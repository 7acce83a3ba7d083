//! Custom fields tenant admins define for their tickets, and the checking of values against them.

use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use sqlx::FromRow;
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::AppState;
use crate::audit::{self, Change};
use crate::db::{self, Pool, now_ms};
use crate::error::{Error, ErrorBody, Result};
use crate::events::Event;
use crate::http::extract::{Json, Path};
use crate::http::guard::Scope;
use crate::types::TenantId;

/// A custom field's type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum FieldType {
    Text,
    Number,
    Boolean,
    /// `YYYY-MM-DD`
    Date,
    /// One of `choices`.
    Choice,
}

#[derive(FromRow)]
struct FieldRow {
    id: String,
    key: String,
    label: String,
    field_type: String,
    choices: String,
    required: i64,
}

/// A custom field definition.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct CustomField {
    #[serde(default)]
    pub id: String,
    /// Name used in ticket payloads: lower-case letters, digits and underscores.
    #[schema(pattern = "^[a-z0-9_]{1,40}$")]
    pub key: String,
    #[schema(max_length = 100, pattern = "\\S")]
    pub label: String,
    pub field_type: FieldType,
    /// The allowed values of a `choice` field.
    #[serde(default)]
    pub choices: Vec<String>,
    #[serde(default)]
    pub required: bool,
}

impl TryFrom<FieldRow> for CustomField {
    type Error = Error;
    fn try_from(r: FieldRow) -> Result<Self> {
        let field_type = serde_json::from_value(Value::String(r.field_type))
            .map_err(|e| Error::Internal(e.into()))?;
        Ok(Self {
            id: r.id,
            key: r.key,
            label: r.label,
            field_type,
            choices: serde_json::from_str(&r.choices).map_err(|e| Error::Internal(e.into()))?,
            required: r.required != 0,
        })
    }
}

pub async fn definitions(pool: &Pool, tenant: &TenantId) -> Result<Vec<CustomField>> {
    let rows: Vec<FieldRow> = sqlx::query_as(
        "SELECT id, key, label, field_type, choices, required FROM custom_fields WHERE tenant_id = $1 ORDER BY key",
    )
    .bind(tenant)
    .fetch_all(pool)
    .await?;
    rows.into_iter().map(CustomField::try_from).collect()
}

/// Checks ticket values against the definitions; `complete` also demands required fields.
pub fn check_values(
    definitions: &[CustomField],
    values: &Map<String, Value>,
    complete: bool,
) -> Result<()> {
    let invalid = |message: String| Err(Error::invalid("invalid_custom_field", message));
    for (key, value) in values {
        let Some(field) = definitions.iter().find(|f| &f.key == key) else {
            return invalid(format!("{key:?} is not a custom field of this tenant"));
        };
        let ok = match (field.field_type, value) {
            (_, Value::Null) => !field.required,
            (FieldType::Text, Value::String(s)) => s.chars().count() <= 2_000,
            (FieldType::Number, Value::Number(_)) | (FieldType::Boolean, Value::Bool(_)) => true,
            (FieldType::Date, Value::String(s)) => s.parse::<jiff::civil::Date>().is_ok(),
            (FieldType::Choice, Value::String(s)) => field.choices.contains(s),
            _ => false,
        };
        if !ok {
            return invalid(
                format!("{key:?} must be a valid {:?} value", field.field_type).to_lowercase(),
            );
        }
    }
    if complete
        && let Some(missing) = definitions
            .iter()
            .find(|f| f.required && !values.contains_key(&f.key))
    {
        return invalid(format!("the custom field {:?} is required", missing.key));
    }
    Ok(())
}

#[utoipa::path(get, path = "/api/v1/tenants/{tenant}/custom-fields", tag = "tickets",
    params(("tenant" = String, Path, description = "Tenant id or slug")),
    responses((status = 200, body = Vec<CustomField>)))]
async fn list_fields(
    State(state): State<AppState>,
    scope: Scope,
) -> Result<Json<Vec<CustomField>>> {
    Ok(Json(definitions(&state.db.pool, &scope.tenant.id).await?))
}

#[utoipa::path(post, path = "/api/v1/tenants/{tenant}/custom-fields", tag = "tickets",
    params(("tenant" = String, Path, description = "Tenant id or slug")),
    request_body = CustomField,
    responses((status = 201, body = CustomField),
        (status = 409, description = "A field with this key exists (`field_exists`)", body = ErrorBody)))]
async fn create_field(
    State(state): State<AppState>,
    scope: Scope,
    Json(mut field): Json<CustomField>,
) -> Result<(StatusCode, Json<CustomField>)> {
    let key_ok = !field.key.is_empty()
        && field.key.len() <= 40
        && field
            .key
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
    if !key_ok {
        return Err(Error::invalid(
            "invalid_key",
            "a field key is 1 to 40 lower-case letters, digits or underscores",
        ));
    }
    if field.label.trim().is_empty() || field.label.chars().count() > 100 {
        return Err(Error::invalid(
            "invalid_label",
            "a label is 1 to 100 characters",
        ));
    }
    if (field.field_type == FieldType::Choice) == field.choices.is_empty() {
        return Err(Error::invalid(
            "invalid_choices",
            "choice fields, and only they, list their choices",
        ));
    }
    let tenant = &scope.tenant.id;
    field.id = db::new_id();
    let mut tx = state.events.begin().await?;
    let inserted = sqlx::query(
        "INSERT INTO custom_fields (id, tenant_id, key, label, field_type, choices, required, created_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(&field.id)
    .bind(tenant)
    .bind(&field.key)
    .bind(&field.label)
    .bind(json!(field.field_type).as_str().unwrap_or_default().to_string())
    .bind(json!(field.choices).to_string())
    .bind(i64::from(field.required))
    .bind(now_ms())
    .execute(&mut *tx)
    .await;
    match inserted {
        Err(e) if db::is_unique_violation(&e) => {
            return Err(Error::conflict(
                "field_exists",
                format!("{:?} exists already", field.key),
            ));
        }
        other => other?,
    };
    let change = Change {
        tenant: Some(tenant),
        action: "custom_field.create",
        target: &field.id,
        before: None,
        after: Some(json!(field)),
    };
    let actor = scope.caller.actor();
    audit::record(&mut tx, &actor, change).await?;
    tx.emit(Some(tenant), &field.id, &actor, Event::CustomFieldChanged)
        .await?;
    tx.commit().await?;
    Ok((StatusCode::CREATED, Json(field)))
}

#[utoipa::path(delete, path = "/api/v1/tenants/{tenant}/custom-fields/{field}", tag = "tickets",
    params(("tenant" = String, Path, description = "Tenant id or slug"), ("field" = String, Path)),
    responses((status = 204)))]
async fn delete_field(
    State(state): State<AppState>,
    scope: Scope,
    Path((_, id)): Path<(String, String)>,
) -> Result<StatusCode> {
    let tenant = &scope.tenant.id;
    let mut tx = state.events.begin().await?;
    let deleted = sqlx::query("DELETE FROM custom_fields WHERE tenant_id = $1 AND id = $2")
        .bind(tenant)
        .bind(&id)
        .execute(&mut *tx)
        .await?;
    if deleted.rows_affected() == 0 {
        return Err(Error::NotFound("custom field"));
    }
    let change = Change {
        tenant: Some(tenant),
        action: "custom_field.delete",
        target: &id,
        before: None,
        after: None,
    };
    let actor = scope.caller.actor();
    audit::record(&mut tx, &actor, change).await?;
    tx.emit(Some(tenant), &id, &actor, Event::CustomFieldChanged)
        .await?;
    tx.commit().await?;
    Ok(StatusCode::NO_CONTENT)
}

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_fields, create_field))
        .routes(routes!(delete_field))
}
