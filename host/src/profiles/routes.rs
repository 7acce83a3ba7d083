//! The admin API of portal profiles: create, edit, clone, delete, logo upload.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::{Value, json};
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};

use super::{COLUMNS, Colours, Mode, Profile, ProfileRow, find, find_row, insert, logo};
use crate::AppState;
use crate::audit::{self, Change};
use crate::db::{self, now_ms};
use crate::error::{Error, Result};
use crate::events::Event;
use crate::http::extract::{Json, Path, Query};
use crate::http::guard::Scope;
use crate::types::{Language, Page, PageParams, TenantId};

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewProfile {
    pub name: String,
    /// Defaults to `tracking`.
    pub mode: Option<Mode>,
    #[serde(default)]
    pub feedback: bool,
    pub logo_link: Option<String>,
    #[serde(default)]
    pub salutation: String,
    #[serde(default)]
    pub booking_text: String,
    #[serde(default)]
    pub booking_disclaimer: String,
    /// Defaults to Portico's blue on white, and its dark counterpart.
    pub colours: Option<Colours>,
    pub theme_install_id: Option<String>,
    /// Defaults to the tenant's language.
    #[schema(value_type = Option<String>)]
    pub language: Option<Language>,
    pub link_expiry_days: Option<i64>,
    /// Make this the tenant's default profile.
    #[serde(default)]
    pub is_default: bool,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProfileChanges {
    pub name: Option<String>,
    pub mode: Option<Mode>,
    pub feedback: Option<bool>,
    /// `null` removes it.
    #[serde(default, deserialize_with = "crate::types::double_option")]
    pub logo_link: Option<Option<String>>,
    pub salutation: Option<String>,
    pub booking_text: Option<String>,
    pub booking_disclaimer: Option<String>,
    pub colours: Option<Colours>,
    /// `null`: the built-in look.
    #[serde(default, deserialize_with = "crate::types::double_option")]
    pub theme_install_id: Option<Option<String>>,
    #[schema(value_type = Option<String>)]
    pub language: Option<Language>,
    /// `null`: links never expire.
    #[serde(default, deserialize_with = "crate::types::double_option")]
    pub link_expiry_days: Option<Option<i64>>,
    /// `true` makes this the default (the previous default stops being one).
    pub is_default: Option<bool>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CloneRequest {
    /// The copy's name; defaults to the original's with " (copy)".
    pub name: Option<String>,
}

fn check_text(what: &str, value: &str, max: usize) -> Result<String> {
    if value.chars().count() > max {
        return Err(Error::invalid(
            "invalid_text",
            format!("{what} is at most {max} characters"),
        ));
    }
    Ok(value.trim().to_string())
}

fn check_name(name: &str) -> Result<String> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 100 {
        return Err(Error::invalid(
            "invalid_name",
            "a name is 1 to 100 characters",
        ));
    }
    Ok(name.to_string())
}

fn check_link(link: &str) -> Result<String> {
    let link = link.trim();
    let valid = link.len() <= 500
        && (link.starts_with("https://") || link.starts_with("http://"))
        && link
            .parse::<axum::http::Uri>()
            .is_ok_and(|u| u.host().is_some());
    if !valid {
        return Err(Error::invalid(
            "invalid_link",
            "the logo link is an http or https URL of at most 500 characters",
        ));
    }
    Ok(link.to_string())
}

fn check_expiry(days: i64) -> Result<i64> {
    if !(1..=3650).contains(&days) {
        return Err(Error::invalid(
            "invalid_link_expiry",
            "links expire 1 to 3650 days after the ticket is closed",
        ));
    }
    Ok(days)
}

/// A theme must be one of the tenant's own installs, of a theme plugin.
async fn check_theme(state: &AppState, tenant: &TenantId, install: &str) -> Result<String> {
    match crate::plugins::installs::kind_of(&state.db.pool, tenant, install).await? {
        Some(kind) if kind == "theme" => Ok(install.to_string()),
        Some(_) => Err(Error::invalid(
            "not_a_theme",
            "the install is not a theme plugin",
        )),
        None => Err(Error::invalid(
            "unknown_theme",
            "no such plugin install in this tenant",
        )),
    }
}

/// Checks every field of a profile about to be stored.
async fn check(state: &AppState, tenant: &TenantId, profile: &mut Profile) -> Result<()> {
    profile.name = check_name(&profile.name)?;
    profile.salutation = check_text("the salutation", &profile.salutation, 200)?;
    profile.booking_text = check_text("the booking text", &profile.booking_text, 2000)?;
    profile.booking_disclaimer =
        check_text("the booking disclaimer", &profile.booking_disclaimer, 2000)?;
    profile.logo_link = profile.logo_link.as_deref().map(check_link).transpose()?;
    profile.link_expiry_days = profile.link_expiry_days.map(check_expiry).transpose()?;
    profile.colours.check()?;
    if let Some(install) = &profile.theme_install_id {
        check_theme(state, tenant, install).await?;
    }
    Ok(())
}

fn summary(profile: &Profile) -> Value {
    json!({
        "name": profile.name, "is_default": profile.is_default, "mode": profile.mode, "feedback": profile.feedback,
        "theme_install_id": profile.theme_install_id, "language": profile.language, "link_expiry_days": profile.link_expiry_days,
    })
}

/// The current default stops being one, so that `id` can become it.
async fn clear_default(conn: &mut sqlx::AnyConnection, tenant: &TenantId) -> Result<()> {
    sqlx::query(
        "UPDATE portal_profiles SET is_default = 0 WHERE tenant_id = $1 AND is_default = 1",
    )
    .bind(tenant)
    .execute(conn)
    .await?;
    Ok(())
}

#[utoipa::path(get, path = "/api/v1/tenants/{tenant}/portal-profiles", tag = "portal",
    params(("tenant" = String, Path, description = "Tenant id or slug"), PageParams),
    responses((status = 200, body = Page<Profile>)))]
async fn list_profiles(
    State(state): State<AppState>,
    scope: Scope,
    Query(page): Query<PageParams>,
) -> Result<Json<Page<Profile>>> {
    let limit = page.limit()?;
    let rows: Vec<ProfileRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM portal_profiles WHERE tenant_id = $1 AND id > $2 ORDER BY id LIMIT $3"
    )))
    .bind(&scope.tenant.id)
    .bind(page.after())
    .bind(limit + 1)
    .fetch_all(&state.db.pool)
    .await?;
    let profiles = rows
        .into_iter()
        .map(ProfileRow::view)
        .collect::<Result<Vec<_>>>()?;
    Ok(Json(Page::from_rows(profiles, limit, |p| &p.id)))
}

#[utoipa::path(post, path = "/api/v1/tenants/{tenant}/portal-profiles", tag = "portal",
    params(("tenant" = String, Path, description = "Tenant id or slug")),
    request_body = NewProfile, responses((status = 201, body = Profile), (status = 422, body = crate::error::ErrorBody)))]
async fn create_profile(
    State(state): State<AppState>,
    scope: Scope,
    Json(input): Json<NewProfile>,
) -> Result<(StatusCode, Json<Profile>)> {
    let tenant = &scope.tenant.id;
    let mut profile = Profile {
        id: db::new_id(),
        name: input.name,
        is_default: input.is_default,
        mode: input.mode.unwrap_or(Mode::Tracking),
        feedback: input.feedback,
        logo_url: None,
        logo_link: input.logo_link,
        salutation: input.salutation,
        booking_text: input.booking_text,
        booking_disclaimer: input.booking_disclaimer,
        colours: input.colours.unwrap_or_default(),
        theme_install_id: input.theme_install_id,
        language: match input.language {
            Some(language) => language,
            None => Language::parse(&scope.tenant.language)?,
        },
        link_expiry_days: input.link_expiry_days,
        created_at: jiff::Timestamp::now(),
        updated_at: jiff::Timestamp::now(),
    };
    check(&state, tenant, &mut profile).await?;
    let mut tx = state.events.begin().await?;
    if profile.is_default {
        clear_default(&mut tx, tenant).await?;
    }
    insert(&mut tx, tenant, &profile, None).await?;
    let change = Change {
        tenant: Some(tenant),
        action: "portal_profile.create",
        target: &profile.id,
        before: None,
        after: Some(summary(&profile)),
    };
    let actor = scope.caller.actor();
    audit::record(&mut tx, &actor, change).await?;
    tx.emit(Some(tenant), &profile.id, &actor, Event::ProfileChanged)
        .await?;
    tx.commit().await?;
    Ok((
        StatusCode::CREATED,
        Json(find(&state.db.pool, tenant, &profile.id).await?),
    ))
}

#[utoipa::path(get, path = "/api/v1/tenants/{tenant}/portal-profiles/{profile}", tag = "portal",
    params(("tenant" = String, Path, description = "Tenant id or slug"), ("profile" = String, Path)),
    responses((status = 200, body = Profile)))]
async fn get_profile(
    State(state): State<AppState>,
    scope: Scope,
    Path((_, id)): Path<(String, String)>,
) -> Result<Json<Profile>> {
    Ok(Json(find(&state.db.pool, &scope.tenant.id, &id).await?))
}

#[utoipa::path(patch, path = "/api/v1/tenants/{tenant}/portal-profiles/{profile}", tag = "portal",
    params(("tenant" = String, Path, description = "Tenant id or slug"), ("profile" = String, Path)),
    request_body = ProfileChanges, responses((status = 200, body = Profile), (status = 422, body = crate::error::ErrorBody)))]
async fn update_profile(
    State(state): State<AppState>,
    scope: Scope,
    Path((_, id)): Path<(String, String)>,
    Json(input): Json<ProfileChanges>,
) -> Result<Json<Profile>> {
    let tenant = &scope.tenant.id;
    let before = find(&state.db.pool, tenant, &id).await?;
    let mut profile = before.clone();
    if let Some(name) = input.name {
        profile.name = name;
    }
    if let Some(mode) = input.mode {
        profile.mode = mode;
    }
    if let Some(feedback) = input.feedback {
        profile.feedback = feedback;
    }
    if let Some(link) = input.logo_link {
        profile.logo_link = link;
    }
    if let Some(salutation) = input.salutation {
        profile.salutation = salutation;
    }
    if let Some(text) = input.booking_text {
        profile.booking_text = text;
    }
    if let Some(text) = input.booking_disclaimer {
        profile.booking_disclaimer = text;
    }
    if let Some(colours) = input.colours {
        profile.colours = colours;
    }
    if let Some(theme) = input.theme_install_id {
        profile.theme_install_id = theme;
    }
    if let Some(language) = input.language {
        profile.language = language;
    }
    if let Some(days) = input.link_expiry_days {
        profile.link_expiry_days = days;
    }
    match input.is_default {
        Some(true) => profile.is_default = true,
        Some(false) if before.is_default => {
            return Err(Error::invalid(
                "default_required",
                "a tenant always has a default profile; make another profile the default instead",
            ));
        }
        _ => {}
    }
    check(&state, tenant, &mut profile).await?;
    let colours = serde_json::to_string(&profile.colours).map_err(|e| Error::Internal(e.into()))?;
    let mut tx = state.events.begin().await?;
    if profile.is_default && !before.is_default {
        clear_default(&mut tx, tenant).await?;
    }
    let updated = sqlx::query(
        "UPDATE portal_profiles SET name = $3, is_default = $4, mode = $5, feedback = $6, logo_link = $7, salutation = $8,
           booking_text = $9, booking_disclaimer = $10, colours = $11, theme_install_id = $12, language = $13,
           link_expiry_days = $14, updated_at = $15
         WHERE tenant_id = $1 AND id = $2",
    )
    .bind(tenant)
    .bind(&id)
    .bind(&profile.name)
    .bind(i64::from(profile.is_default))
    .bind(profile.mode.as_str())
    .bind(i64::from(profile.feedback))
    .bind(&profile.logo_link)
    .bind(&profile.salutation)
    .bind(&profile.booking_text)
    .bind(&profile.booking_disclaimer)
    .bind(colours)
    .bind(&profile.theme_install_id)
    .bind(profile.language.as_str())
    .bind(profile.link_expiry_days)
    .bind(now_ms())
    .execute(&mut *tx)
    .await;
    match updated {
        Err(e) if db::is_unique_violation(&e) => {
            return Err(Error::conflict(
                "profile_exists",
                "a portal profile with this name exists",
            ));
        }
        other => other?,
    };
    let change = Change {
        tenant: Some(tenant),
        action: "portal_profile.update",
        target: &id,
        before: Some(summary(&before)),
        after: Some(summary(&profile)),
    };
    let actor = scope.caller.actor();
    audit::record(&mut tx, &actor, change).await?;
    tx.emit(Some(tenant), &id, &actor, Event::ProfileChanged)
        .await?;
    tx.commit().await?;
    Ok(Json(find(&state.db.pool, tenant, &id).await?))
}

/// Copies a profile, logo included, under a new name. The copy is never the default.
#[utoipa::path(post, path = "/api/v1/tenants/{tenant}/portal-profiles/{profile}/clone", tag = "portal",
    params(("tenant" = String, Path, description = "Tenant id or slug"), ("profile" = String, Path)),
    request_body = CloneRequest, responses((status = 201, body = Profile), (status = 409, body = crate::error::ErrorBody)))]
async fn clone_profile(
    State(state): State<AppState>,
    scope: Scope,
    Path((_, id)): Path<(String, String)>,
    Json(input): Json<CloneRequest>,
) -> Result<(StatusCode, Json<Profile>)> {
    let tenant = &scope.tenant.id;
    let original = find(&state.db.pool, tenant, &id).await?;
    let logo: Option<(Option<Vec<u8>>, Option<String>)> = sqlx::query_as(
        "SELECT logo, logo_sha256 FROM portal_profiles WHERE tenant_id = $1 AND id = $2",
    )
    .bind(tenant)
    .bind(&id)
    .fetch_optional(&state.db.pool)
    .await?;
    let logo = match logo {
        Some((Some(bytes), Some(sha))) => Some((bytes, sha)),
        _ => None,
    };
    let name = match input.name {
        Some(name) => check_name(&name)?,
        None => check_name(&format!("{} (copy)", original.name))?,
    };
    let copy = Profile {
        id: db::new_id(),
        name,
        is_default: false,
        ..original
    };
    let mut tx = state.events.begin().await?;
    insert(&mut tx, tenant, &copy, logo).await?;
    let change = Change {
        tenant: Some(tenant),
        action: "portal_profile.clone",
        target: &copy.id,
        before: None,
        after: Some(json!({"from": id, "name": copy.name})),
    };
    let actor = scope.caller.actor();
    audit::record(&mut tx, &actor, change).await?;
    tx.emit(Some(tenant), &copy.id, &actor, Event::ProfileChanged)
        .await?;
    tx.commit().await?;
    Ok((
        StatusCode::CREATED,
        Json(find(&state.db.pool, tenant, &copy.id).await?),
    ))
}

/// Deletes a profile; its projects fall back to the default. The default cannot be deleted.
#[utoipa::path(delete, path = "/api/v1/tenants/{tenant}/portal-profiles/{profile}", tag = "portal",
    params(("tenant" = String, Path, description = "Tenant id or slug"), ("profile" = String, Path)),
    responses((status = 204), (status = 409, body = crate::error::ErrorBody)))]
async fn delete_profile(
    State(state): State<AppState>,
    scope: Scope,
    Path((_, id)): Path<(String, String)>,
) -> Result<StatusCode> {
    let tenant = &scope.tenant.id;
    let before = find(&state.db.pool, tenant, &id).await?;
    if before.is_default {
        return Err(Error::conflict(
            "default_profile",
            "the default profile cannot be deleted; make another profile the default first",
        ));
    }
    let mut tx = state.events.begin().await?;
    // Its projects fall back to the default profile: `projects.profile_id` is `ON DELETE SET NULL`.
    sqlx::query("DELETE FROM portal_profiles WHERE tenant_id = $1 AND id = $2")
        .bind(tenant)
        .bind(&id)
        .execute(&mut *tx)
        .await?;
    let change = Change {
        tenant: Some(tenant),
        action: "portal_profile.delete",
        target: &id,
        before: Some(summary(&before)),
        after: None,
    };
    let actor = scope.caller.actor();
    audit::record(&mut tx, &actor, change).await?;
    tx.emit(Some(tenant), &id, &actor, Event::ProfileChanged)
        .await?;
    tx.commit().await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Sets the logo. The body is the image itself (PNG or JPEG, at most 20 KB, within the
/// configured pixel size); it is decoded and stored re-encoded as PNG.
#[utoipa::path(put, path = "/api/v1/tenants/{tenant}/portal-profiles/{profile}/logo", tag = "portal",
    params(("tenant" = String, Path, description = "Tenant id or slug"), ("profile" = String, Path)),
    request_body(content = Vec<u8>, content_type = "image/png"),
    responses((status = 200, body = Profile), (status = 413, body = crate::error::ErrorBody), (status = 422, body = crate::error::ErrorBody)))]
async fn put_logo(
    State(state): State<AppState>,
    scope: Scope,
    Path((_, id)): Path<(String, String)>,
    body: Bytes,
) -> Result<Json<Profile>> {
    let tenant = &scope.tenant.id;
    find_row(&state.db.pool, tenant, &id).await?;
    let (width, height) = (state.config.logo_max_width, state.config.logo_max_height);
    let png = tokio::task::spawn_blocking(move || logo::normalise(&body, width, height))
        .await
        .map_err(|e| Error::Internal(e.into()))??;
    let sha256 = crate::types::sha256_hex(&png);
    set_logo(&state, &scope, &id, Some((png, sha256))).await
}

#[utoipa::path(delete, path = "/api/v1/tenants/{tenant}/portal-profiles/{profile}/logo", tag = "portal",
    params(("tenant" = String, Path, description = "Tenant id or slug"), ("profile" = String, Path)),
    responses((status = 200, body = Profile)))]
async fn delete_logo(
    State(state): State<AppState>,
    scope: Scope,
    Path((_, id)): Path<(String, String)>,
) -> Result<Json<Profile>> {
    find_row(&state.db.pool, &scope.tenant.id, &id).await?;
    set_logo(&state, &scope, &id, None).await
}

async fn set_logo(
    state: &AppState,
    scope: &Scope,
    id: &str,
    logo: Option<(Vec<u8>, String)>,
) -> Result<Json<Profile>> {
    let tenant = &scope.tenant.id;
    let (bytes, sha256) = logo.unzip();
    let mut tx = state.events.begin().await?;
    sqlx::query(
        "UPDATE portal_profiles SET logo = $3, logo_sha256 = $4, updated_at = $5 WHERE tenant_id = $1 AND id = $2",
    )
    .bind(tenant)
    .bind(id)
    .bind(bytes)
    .bind(&sha256)
    .bind(now_ms())
    .execute(&mut *tx)
    .await?;
    let change = Change {
        tenant: Some(tenant),
        action: "portal_profile.logo",
        target: id,
        before: None,
        after: Some(json!({"logo_sha256": sha256})),
    };
    let actor = scope.caller.actor();
    audit::record(&mut tx, &actor, change).await?;
    tx.emit(Some(tenant), id, &actor, Event::ProfileChanged)
        .await?;
    tx.commit().await?;
    Ok(Json(find(&state.db.pool, tenant, id).await?))
}

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_profiles, create_profile))
        .routes(routes!(get_profile, update_profile, delete_profile))
        .routes(routes!(clone_profile))
        .routes(routes!(put_logo, delete_logo))
}
