//! The only code that names the `portal_profiles` table.

use sqlx::AnyConnection;

use super::model::{Colours, Logo, Profile, ProfileChanges, ProfileRow};
use crate::db::{self, Pool, Sql, now_ms};
use crate::error::{Error, Result};
use crate::types::TenantId;

const COLUMNS: &str = "id, name, is_default, mode, feedback, logo_sha256, logo_link, salutation, booking_text, booking_disclaimer,
    colours, theme_install_id, language, link_expiry_days, change_notice_minutes, phone, translations, created_at, updated_at";

fn name_taken(written: std::result::Result<sqlx::any::AnyQueryResult, sqlx::Error>) -> Result<()> {
    match written {
        Err(e) if db::is_unique_violation(&e) => Err(Error::conflict(
            "profile_exists",
            "a portal profile with this name exists",
        )),
        other => other.map(drop).map_err(Error::from),
    }
}

fn colours_json(colours: &Colours) -> Result<String> {
    serde_json::to_string(colours).map_err(|e| Error::Internal(e.into()))
}

/// One profile of the tenant.
pub async fn find(pool: &Pool, tenant: &TenantId, id: &str) -> Result<Profile> {
    let row: Option<ProfileRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM portal_profiles WHERE tenant_id = $1 AND id = $2"
    )))
    .bind(tenant)
    .bind(id)
    .fetch_optional(pool)
    .await?;
    row.ok_or(Error::NotFound("portal profile"))?.view()
}

/// One profile, read in a write transaction and locked until it ends when `for_update` (from
/// the transaction) says so.
pub async fn lock(
    conn: &mut AnyConnection,
    tenant: &TenantId,
    id: &str,
    for_update: &str,
) -> Result<Profile> {
    let row: Option<ProfileRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM portal_profiles WHERE tenant_id = $1 AND id = $2{for_update}"
    )))
    .bind(tenant)
    .bind(id)
    .fetch_optional(conn)
    .await?;
    row.ok_or(Error::NotFound("portal profile"))?.view()
}

pub async fn list(pool: &Pool, tenant: &TenantId, after: &str, limit: i64) -> Result<Vec<Profile>> {
    let rows: Vec<ProfileRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM portal_profiles WHERE tenant_id = $1 AND id > $2 ORDER BY id LIMIT $3"
    )))
    .bind(tenant)
    .bind(after)
    .bind(limit)
    .fetch_all(pool)
    .await?;
    rows.into_iter().map(ProfileRow::view).collect()
}

/// The project's own profile, else the tenant's default; `None` when the tenant has neither.
/// (It reads the project's `profile_id` in the same query; `tickets` owns that table but
/// imports this area, so asking it would make a circle.)
pub async fn for_project(pool: &Pool, tenant: &TenantId, project: &str) -> Result<Option<Profile>> {
    let row: Option<ProfileRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM portal_profiles WHERE tenant_id = $1
           AND (id = (SELECT profile_id FROM projects WHERE tenant_id = $1 AND id = $2) OR is_default = 1)
         ORDER BY is_default LIMIT 1"
    )))
    .bind(tenant)
    .bind(project)
    .fetch_optional(pool)
    .await?;
    row.map(ProfileRow::view).transpose()
}

fn translations_json(
    translations: &std::collections::BTreeMap<String, super::model::ProfileTexts>,
) -> String {
    serde_json::to_string(translations).expect("texts serialise")
}

/// Stores a new profile, with a logo when cloning one that has it.
pub async fn insert(
    conn: &mut AnyConnection,
    tenant: &TenantId,
    profile: &Profile,
    logo: Option<Logo>,
) -> Result<()> {
    let (png, sha256) = logo.map(|l| (l.png, l.sha256)).unzip();
    let inserted = sqlx::query(
        "INSERT INTO portal_profiles (id, tenant_id, name, is_default, mode, feedback, logo, logo_sha256, logo_link, salutation,
           booking_text, booking_disclaimer, colours, theme_install_id, language, link_expiry_days, created_at, updated_at,
           change_notice_minutes, phone, translations)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $17, $18, $19, $20)",
    )
    .bind(&profile.id)
    .bind(tenant)
    .bind(&profile.name)
    .bind(i64::from(profile.is_default))
    .bind(profile.mode.as_str())
    .bind(i64::from(profile.feedback))
    .bind(png)
    .bind(sha256)
    .bind(&profile.logo_link)
    .bind(&profile.salutation)
    .bind(&profile.booking_text)
    .bind(&profile.booking_disclaimer)
    .bind(colours_json(&profile.colours)?)
    .bind(&profile.theme_install_id)
    .bind(profile.language.as_str())
    .bind(profile.link_expiry_days)
    .bind(now_ms())
    .bind(profile.change_notice_minutes)
    .bind(&profile.phone)
    .bind(translations_json(&profile.translations))
    .execute(conn)
    .await;
    name_taken(inserted)
}

/// Writes only the fields `changes` sets (and `updated_at`).
pub async fn update(
    conn: &mut AnyConnection,
    tenant: &TenantId,
    id: &str,
    changes: &ProfileChanges,
) -> Result<()> {
    let mut sql = Sql::new("UPDATE portal_profiles SET updated_at = ");
    sql.push_bind(now_ms());
    if let Some(name) = &changes.name {
        sql.push(", name = ").push_bind(name.as_str());
    }
    if let Some(is_default) = changes.is_default {
        sql.push(", is_default = ").push_bind(i64::from(is_default));
    }
    if let Some(mode) = changes.mode {
        sql.push(", mode = ").push_bind(mode.as_str());
    }
    if let Some(feedback) = changes.feedback {
        sql.push(", feedback = ").push_bind(i64::from(feedback));
    }
    if let Some(link) = &changes.logo_link {
        sql.push(", logo_link = ").push_bind(link.clone());
    }
    if let Some(salutation) = &changes.salutation {
        sql.push(", salutation = ").push_bind(salutation.as_str());
    }
    if let Some(text) = &changes.booking_text {
        sql.push(", booking_text = ").push_bind(text.as_str());
    }
    if let Some(text) = &changes.booking_disclaimer {
        sql.push(", booking_disclaimer = ").push_bind(text.as_str());
    }
    if let Some(colours) = &changes.colours {
        sql.push(", colours = ").push_bind(colours_json(colours)?);
    }
    if let Some(theme) = &changes.theme_install_id {
        sql.push(", theme_install_id = ").push_bind(theme.clone());
    }
    if let Some(language) = &changes.language {
        sql.push(", language = ").push_bind(language.as_str());
    }
    if let Some(days) = changes.link_expiry_days {
        sql.push(", link_expiry_days = ").push_bind(days);
    }
    if let Some(minutes) = changes.change_notice_minutes {
        sql.push(", change_notice_minutes = ").push_bind(minutes);
    }
    if let Some(phone) = &changes.phone {
        sql.push(", phone = ").push_bind(phone.as_str());
    }
    if let Some(translations) = &changes.translations {
        sql.push(", translations = ")
            .push_bind(translations_json(translations));
    }
    sql.push(" WHERE tenant_id = ").push_bind(tenant);
    sql.push(" AND id = ").push_bind(id);
    name_taken(sql.execute(conn).await)
}

/// The current default stops being one, so that another profile can become it.
pub async fn clear_default(conn: &mut AnyConnection, tenant: &TenantId) -> Result<()> {
    sqlx::query(
        "UPDATE portal_profiles SET is_default = 0 WHERE tenant_id = $1 AND is_default = 1",
    )
    .bind(tenant)
    .execute(conn)
    .await?;
    Ok(())
}

/// Deletes a profile. Its projects fall back to the default profile: `projects.profile_id` is
/// `ON DELETE SET NULL`.
pub async fn delete(conn: &mut AnyConnection, tenant: &TenantId, id: &str) -> Result<()> {
    sqlx::query("DELETE FROM portal_profiles WHERE tenant_id = $1 AND id = $2")
        .bind(tenant)
        .bind(id)
        .execute(conn)
        .await?;
    Ok(())
}

/// The profile's logo, if it has one.
pub async fn logo(conn: &mut AnyConnection, tenant: &TenantId, id: &str) -> Result<Option<Logo>> {
    let stored: Option<(Option<Vec<u8>>, Option<String>)> = sqlx::query_as(
        "SELECT logo, logo_sha256 FROM portal_profiles WHERE tenant_id = $1 AND id = $2",
    )
    .bind(tenant)
    .bind(id)
    .fetch_optional(conn)
    .await?;
    Ok(match stored {
        Some((Some(png), Some(sha256))) => Some(Logo { png, sha256 }),
        _ => None,
    })
}

/// Stores the logo, or removes it with `None`.
pub async fn set_logo(
    conn: &mut AnyConnection,
    tenant: &TenantId,
    id: &str,
    logo: Option<Logo>,
) -> Result<()> {
    let (png, sha256) = logo.map(|l| (l.png, l.sha256)).unzip();
    sqlx::query(
        "UPDATE portal_profiles SET logo = $3, logo_sha256 = $4, updated_at = $5 WHERE tenant_id = $1 AND id = $2",
    )
    .bind(tenant)
    .bind(id)
    .bind(png)
    .bind(sha256)
    .bind(now_ms())
    .execute(conn)
    .await?;
    Ok(())
}
