//! Portal profile operations. Each owns its transaction: it reads what it changes with a lock,
//! writes only the columns it changes, audits and emits. A tenant always has exactly one
//! default profile: another can take its place, but it cannot be demoted or deleted.

use serde_json::json;

use super::logo;
use std::collections::BTreeMap;

use super::model::{
    DEFAULT_CHANGE_NOTICE_MINUTES, Logo, Mode, NewProfile, Profile, ProfileChanges, ProfileTexts,
    built_in,
};
use super::store;
use crate::AppState;
use crate::audit::{self, Change};
use crate::db::{self, Pool};
use crate::error::{Error, Result};
use crate::events::{BoxFuture, Event, Reaction, Recorded, Tx};
use crate::types::{Caller, Language, TenantId, sha256_hex};

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

fn check_notice(minutes: i64) -> Result<()> {
    if !(0..=43_200).contains(&minutes) {
        return Err(Error::invalid(
            "invalid_notice",
            "change_notice_minutes is 0 to 43200 (30 days)",
        ));
    }
    Ok(())
}

/// Translations are keyed by a supported language and bounded like the profile's own texts.
fn check_translations(translations: &mut BTreeMap<String, ProfileTexts>) -> Result<()> {
    for (language, texts) in translations.iter_mut() {
        Language::parse(language)?;
        texts.salutation = check_text("a translated salutation", &texts.salutation, 200)?;
        texts.booking_text = check_text("a translated booking text", &texts.booking_text, 2000)?;
        texts.booking_disclaimer = check_text(
            "a translated booking disclaimer",
            &texts.booking_disclaimer,
            2000,
        )?;
    }
    Ok(())
}

/// A theme must be one of the tenant's own installs, of a theme plugin.
async fn check_theme(pool: &Pool, tenant: &TenantId, install: &str) -> Result<()> {
    match crate::plugins::installs::kind_of(pool, tenant, install).await? {
        Some(kind) if kind == "theme" => Ok(()),
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

/// Checks and tidies every field of a new profile.
async fn check_new(pool: &Pool, tenant: &TenantId, profile: &mut Profile) -> Result<()> {
    profile.name = check_name(&profile.name)?;
    profile.salutation = check_text("the salutation", &profile.salutation, 200)?;
    profile.booking_text = check_text("the booking text", &profile.booking_text, 2000)?;
    profile.booking_disclaimer =
        check_text("the booking disclaimer", &profile.booking_disclaimer, 2000)?;
    profile.logo_link = profile.logo_link.as_deref().map(check_link).transpose()?;
    profile.link_expiry_days = profile.link_expiry_days.map(check_expiry).transpose()?;
    check_notice(profile.change_notice_minutes)?;
    profile.phone = check_text("the phone number", &profile.phone, 50)?;
    check_translations(&mut profile.translations)?;
    profile.colours.check()?;
    if let Some(install) = &profile.theme_install_id {
        check_theme(pool, tenant, install).await?;
    }
    Ok(())
}

/// Checks and tidies the fields a change sets, in the order `check_new` checks them.
async fn check_changes(pool: &Pool, tenant: &TenantId, changes: &mut ProfileChanges) -> Result<()> {
    if let Some(name) = &mut changes.name {
        *name = check_name(name)?;
    }
    for (what, text, max) in [
        ("the salutation", &mut changes.salutation, 200),
        ("the booking text", &mut changes.booking_text, 2000),
        (
            "the booking disclaimer",
            &mut changes.booking_disclaimer,
            2000,
        ),
    ] {
        if let Some(text) = text {
            *text = check_text(what, text, max)?;
        }
    }
    if let Some(Some(link)) = &mut changes.logo_link {
        *link = check_link(link)?;
    }
    if let Some(Some(days)) = changes.link_expiry_days {
        check_expiry(days)?;
    }
    if let Some(minutes) = changes.change_notice_minutes {
        check_notice(minutes)?;
    }
    if let Some(phone) = &mut changes.phone {
        *phone = check_text("the phone number", phone, 50)?;
    }
    if let Some(translations) = &mut changes.translations {
        check_translations(translations)?;
    }
    if let Some(colours) = &changes.colours {
        colours.check()?;
    }
    if let Some(Some(install)) = &changes.theme_install_id {
        check_theme(pool, tenant, install).await?;
    }
    Ok(())
}

/// Audits a profile change, announces it and commits.
async fn finish(mut tx: Tx, actor: &str, change: Change<'_>) -> Result<()> {
    let (tenant, target) = (change.tenant.cloned(), change.target.to_string());
    audit::record(&mut tx, actor, change).await?;
    tx.emit(tenant.as_ref(), &target, actor, Event::ProfileChanged)
        .await?;
    tx.commit().await
}

/// The profile a project's pages use: its own, else the tenant's default, else the built-in one.
pub async fn for_project(
    pool: &Pool,
    tenant: &TenantId,
    project: &str,
    tenant_language: &Language,
) -> Result<Profile> {
    Ok(store::for_project(pool, tenant, project)
        .await?
        .unwrap_or_else(|| built_in(tenant_language.clone())))
}

/// Creates a profile; `tenant_language` is its language unless the input names one.
pub async fn create(
    state: &AppState,
    caller: &Caller,
    tenant: &TenantId,
    tenant_language: &str,
    input: NewProfile,
) -> Result<Profile> {
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
            None => Language::parse(tenant_language)?,
        },
        link_expiry_days: input.link_expiry_days,
        change_notice_minutes: input
            .change_notice_minutes
            .unwrap_or(DEFAULT_CHANGE_NOTICE_MINUTES),
        phone: input.phone,
        translations: input.translations,
        created_at: jiff::Timestamp::now(),
        updated_at: jiff::Timestamp::now(),
    };
    check_new(&state.db.pool, tenant, &mut profile).await?;
    let mut tx = state.events.begin().await?;
    if profile.is_default {
        store::clear_default(&mut tx, tenant).await?;
    }
    store::insert(&mut tx, tenant, &profile, None).await?;
    let created = store::lock(&mut tx, tenant, &profile.id, "").await?;
    let change = Change {
        tenant: Some(tenant),
        action: "portal_profile.create",
        target: &profile.id,
        before: None,
        after: Some(profile.summary()),
    };
    finish(tx, &caller.actor(), change).await?;
    Ok(created)
}

/// Changes what `changes` sets. Making a profile the default takes the role from the previous
/// one; the default cannot give it up by itself.
pub async fn update(
    state: &AppState,
    caller: &Caller,
    tenant: &TenantId,
    id: &str,
    mut changes: ProfileChanges,
) -> Result<Profile> {
    // The theme is looked up before the transaction: on SQLite it holds the only write lock.
    check_changes(&state.db.pool, tenant, &mut changes).await?;
    let mut tx = state.events.begin().await?;
    let for_update = tx.for_update();
    let before = store::lock(&mut tx, tenant, id, for_update).await?;
    match changes.is_default {
        Some(false) if before.is_default => {
            return Err(Error::invalid(
                "default_required",
                "a tenant always has a default profile; make another profile the default instead",
            ));
        }
        Some(true) if !before.is_default => store::clear_default(&mut tx, tenant).await?,
        // Already so: nothing to write.
        _ => changes.is_default = None,
    }
    store::update(&mut tx, tenant, id, &changes).await?;
    let after = store::lock(&mut tx, tenant, id, "").await?;
    let change = Change {
        tenant: Some(tenant),
        action: "portal_profile.update",
        target: id,
        before: Some(before.summary()),
        after: Some(after.summary()),
    };
    finish(tx, &caller.actor(), change).await?;
    Ok(after)
}

/// Copies a profile, logo included, under a new name (by default the original's with
/// " (copy)"). The copy is never the default.
pub async fn clone(
    state: &AppState,
    caller: &Caller,
    tenant: &TenantId,
    id: &str,
    name: Option<String>,
) -> Result<Profile> {
    let mut tx = state.events.begin().await?;
    // Locked, so the settings and the logo are copied from the same version.
    let for_update = tx.for_update();
    let original = store::lock(&mut tx, tenant, id, for_update).await?;
    let logo = store::logo(&mut tx, tenant, id).await?;
    let name = match name {
        Some(name) => check_name(&name)?,
        None => check_name(&format!("{} (copy)", original.name))?,
    };
    let copy = Profile {
        id: db::new_id(),
        name,
        is_default: false,
        ..original
    };
    store::insert(&mut tx, tenant, &copy, logo).await?;
    let created = store::lock(&mut tx, tenant, &copy.id, "").await?;
    let change = Change {
        tenant: Some(tenant),
        action: "portal_profile.clone",
        target: &copy.id,
        before: None,
        after: Some(json!({"from": id, "name": copy.name})),
    };
    finish(tx, &caller.actor(), change).await?;
    Ok(created)
}

/// Deletes a profile; its projects fall back to the default. The default cannot be deleted.
pub async fn delete(state: &AppState, caller: &Caller, tenant: &TenantId, id: &str) -> Result<()> {
    let mut tx = state.events.begin().await?;
    let for_update = tx.for_update();
    let before = store::lock(&mut tx, tenant, id, for_update).await?;
    if before.is_default {
        return Err(Error::conflict(
            "default_profile",
            "the default profile cannot be deleted; make another profile the default first",
        ));
    }
    store::delete(&mut tx, tenant, id).await?;
    let change = Change {
        tenant: Some(tenant),
        action: "portal_profile.delete",
        target: id,
        before: Some(before.summary()),
        after: None,
    };
    finish(tx, &caller.actor(), change).await
}

/// Sets the logo from an uploaded image (PNG or JPEG, at most 20 KB, within the configured
/// pixel size), stored re-encoded as PNG.
pub async fn set_logo(
    state: &AppState,
    caller: &Caller,
    tenant: &TenantId,
    id: &str,
    image: Vec<u8>,
) -> Result<Profile> {
    // An unknown profile is refused before any time goes into decoding.
    store::find(&state.db.pool, tenant, id).await?;
    let (width, height) = (state.config.logo_max_width, state.config.logo_max_height);
    let png = tokio::task::spawn_blocking(move || logo::normalise(&image, width, height))
        .await
        .map_err(|e| Error::Internal(e.into()))??;
    let sha256 = sha256_hex(&png);
    write_logo(state, caller, tenant, id, Some(Logo { png, sha256 })).await
}

pub async fn remove_logo(
    state: &AppState,
    caller: &Caller,
    tenant: &TenantId,
    id: &str,
) -> Result<Profile> {
    write_logo(state, caller, tenant, id, None).await
}

async fn write_logo(
    state: &AppState,
    caller: &Caller,
    tenant: &TenantId,
    id: &str,
    logo: Option<Logo>,
) -> Result<Profile> {
    let sha256 = logo.as_ref().map(|l| l.sha256.clone());
    let mut tx = state.events.begin().await?;
    let for_update = tx.for_update();
    store::lock(&mut tx, tenant, id, for_update).await?;
    store::set_logo(&mut tx, tenant, id, logo).await?;
    let after = store::lock(&mut tx, tenant, id, "").await?;
    let change = Change {
        tenant: Some(tenant),
        action: "portal_profile.logo",
        target: id,
        before: None,
        after: Some(json!({"logo_sha256": sha256})),
    };
    finish(tx, &caller.actor(), change).await?;
    Ok(after)
}

/// Gives a new tenant its default profile, in the transaction that creates it.
pub struct DefaultForNewTenant;

impl Reaction for DefaultForNewTenant {
    fn react<'a>(
        &'a self,
        conn: &'a mut sqlx::AnyConnection,
        event: &'a Recorded,
    ) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            match (&event.event, &event.tenant) {
                (Event::TenantCreated { language, .. }, Some(tenant)) => {
                    let profile = Profile {
                        id: db::new_id(),
                        ..built_in(Language::parse(language)?)
                    };
                    store::insert(conn, tenant, &profile, None).await
                }
                _ => Ok(()),
            }
        })
    }
}
