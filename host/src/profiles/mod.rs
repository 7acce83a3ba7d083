//! Portal profiles: how a project's portal looks and what it offers end users. Every tenant has
//! a default profile; a project may be assigned another.

pub mod logo;
pub mod routes;

use serde::{Deserialize, Serialize};
use sqlx::FromRow;
use utoipa::ToSchema;

use crate::db::{self, Pool};
use crate::error::{Error, Result};
use crate::events::{BoxFuture, Event, Reaction, Recorded};
use crate::types::{Colour, Language, TenantId};

/// What the portal offers besides tracking.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// The tracking page only.
    Tracking,
    /// Tracking, and end users may book or change their appointment.
    Booking,
}

impl Mode {
    fn as_str(self) -> &'static str {
        match self {
            Self::Tracking => "tracking",
            Self::Booking => "booking",
        }
    }
}

/// Colours of one colour scheme.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Palette {
    /// Header band, primary buttons, the current step.
    #[schema(value_type = String, example = "#0b5cad")]
    pub main: Colour,
    /// Text on the main colour.
    #[schema(value_type = String, example = "#ffffff")]
    pub main_text: Colour,
    /// Background of secondary buttons.
    #[schema(value_type = String)]
    pub secondary_button: Colour,
    /// Page background.
    #[schema(value_type = String)]
    pub body: Colour,
}

/// Colours for light and for dark mode; the page follows the visitor's `prefers-color-scheme`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Colours {
    pub light: Palette,
    pub dark: Palette,
}

/// Body text colours the portal pages use on the profile's backgrounds.
pub const LIGHT_TEXT: &str = "#1b1f24";
pub const DARK_TEXT: &str = "#e6edf3";

/// WCAG AA for normal text.
const MIN_CONTRAST: f64 = 4.5;

impl Default for Colours {
    fn default() -> Self {
        let c = |s: &str| Colour::parse(s).expect("valid built-in colour");
        Self {
            light: Palette {
                main: c("#0b5cad"),
                main_text: c("#ffffff"),
                secondary_button: c("#e8eef5"),
                body: c("#ffffff"),
            },
            dark: Palette {
                main: c("#58a6ff"),
                main_text: c("#0d1117"),
                secondary_button: c("#21262d"),
                body: c("#0d1117"),
            },
        }
    }
}

impl Colours {
    /// Refuses combinations people cannot read: text on the main colour, and body text on the
    /// page and on secondary buttons, must reach WCAG AA contrast (4.5:1).
    fn check(&self) -> Result<()> {
        for (scheme, palette, text) in [
            ("light", &self.light, LIGHT_TEXT),
            ("dark", &self.dark, DARK_TEXT),
        ] {
            let text = Colour::parse(text)?;
            for (what, a, b) in [
                ("main_text on main", &palette.main_text, &palette.main),
                ("text on body", &text, &palette.body),
                ("text on secondary_button", &text, &palette.secondary_button),
            ] {
                let ratio = a.contrast(b);
                if ratio < MIN_CONTRAST {
                    return Err(Error::invalid(
                        "low_contrast",
                        format!(
                            "{scheme} mode: {what} has a contrast of {ratio:.2}:1; at least {MIN_CONTRAST}:1 is needed so people can read it"
                        ),
                    ));
                }
            }
        }
        Ok(())
    }

    /// CSS custom properties for both schemes, the contract between the host and themes.
    pub fn css(&self) -> String {
        let vars = |p: &Palette, text: &str| {
            format!(
                "--portico-main: {}; --portico-main-text: {}; --portico-secondary: {}; --portico-body: {}; --portico-text: {text};",
                p.main, p.main_text, p.secondary_button, p.body
            )
        };
        format!(
            ":root {{ color-scheme: light dark; {} }}\n@media (prefers-color-scheme: dark) {{ :root {{ {} }} }}\n",
            vars(&self.light, LIGHT_TEXT),
            vars(&self.dark, DARK_TEXT)
        )
    }
}

/// A portal profile as the API shows it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Profile {
    pub id: String,
    pub name: String,
    /// Projects without a profile of their own use the default.
    pub is_default: bool,
    pub mode: Mode,
    /// Whether end users may rate the visit after it is completed.
    pub feedback: bool,
    /// Where the logo is served on the tenant's portal hosts; absent without a logo.
    pub logo_url: Option<String>,
    /// Where a click on the logo leads.
    pub logo_link: Option<String>,
    /// Greeting above the ticket; `{first_name}` and `{last_name}` are replaced. Empty: the
    /// translated default.
    pub salutation: String,
    /// Shown in the booking window.
    pub booking_text: String,
    pub booking_disclaimer: String,
    pub colours: Colours,
    /// An installed theme plugin; absent: the built-in look.
    pub theme_install_id: Option<String>,
    /// The portal's language unless the visitor's browser prefers another supported one.
    #[schema(value_type = String, example = "de")]
    pub language: Language,
    /// Tracking links stop working this many days after the ticket is closed; absent: never.
    pub link_expiry_days: Option<i64>,
    #[schema(value_type = String, format = DateTime)]
    pub created_at: jiff::Timestamp,
    #[schema(value_type = String, format = DateTime)]
    pub updated_at: jiff::Timestamp,
}

#[derive(Clone, FromRow)]
struct ProfileRow {
    id: String,
    name: String,
    is_default: i64,
    mode: String,
    feedback: i64,
    logo_sha256: Option<String>,
    logo_link: Option<String>,
    salutation: String,
    booking_text: String,
    booking_disclaimer: String,
    colours: String,
    theme_install_id: Option<String>,
    language: String,
    link_expiry_days: Option<i64>,
    created_at: i64,
    updated_at: i64,
}

const COLUMNS: &str = "id, name, is_default, mode, feedback, logo_sha256, logo_link, salutation, booking_text, booking_disclaimer,
    colours, theme_install_id, language, link_expiry_days, created_at, updated_at";

impl ProfileRow {
    fn view(self) -> Result<Profile> {
        let corrupt = |what: &str| Error::Internal(anyhow::anyhow!("stored profile {what}"));
        Ok(Profile {
            logo_url: self
                .logo_sha256
                .as_ref()
                .map(|sha| logo_path(&self.id, sha)),
            mode: match self.mode.as_str() {
                "booking" => Mode::Booking,
                "tracking" => Mode::Tracking,
                _ => return Err(corrupt("mode")),
            },
            colours: serde_json::from_str(&self.colours).map_err(|_| corrupt("colours"))?,
            language: Language::parse(&self.language).map_err(|_| corrupt("language"))?,
            id: self.id,
            name: self.name,
            is_default: self.is_default != 0,
            feedback: self.feedback != 0,
            logo_link: self.logo_link,
            salutation: self.salutation,
            booking_text: self.booking_text,
            booking_disclaimer: self.booking_disclaimer,
            theme_install_id: self.theme_install_id,
            link_expiry_days: self.link_expiry_days,
            created_at: db::timestamp(self.created_at),
            updated_at: db::timestamp(self.updated_at),
        })
    }
}

/// The logo's path on a portal host; the hash makes a new logo a new URL, so it can be cached.
fn logo_path(profile: &str, sha256: &str) -> String {
    format!(
        "/portal/logo/{profile}?v={}",
        &sha256[..16.min(sha256.len())]
    )
}

/// The profile a tenant's pages use when it has none stored (tenants created before profiles).
pub fn built_in(language: Language) -> Profile {
    Profile {
        id: String::new(),
        name: "Default".into(),
        is_default: true,
        mode: Mode::Tracking,
        feedback: false,
        logo_url: None,
        logo_link: None,
        salutation: String::new(),
        booking_text: String::new(),
        booking_disclaimer: String::new(),
        colours: Colours::default(),
        theme_install_id: None,
        language,
        link_expiry_days: None,
        created_at: jiff::Timestamp::UNIX_EPOCH,
        updated_at: jiff::Timestamp::UNIX_EPOCH,
    }
}

pub async fn find(pool: &Pool, tenant: &TenantId, id: &str) -> Result<Profile> {
    find_row(pool, tenant, id).await?.view()
}

async fn find_row<'e>(
    executor: impl sqlx::Executor<'e, Database = sqlx::Any>,
    tenant: &TenantId,
    id: &str,
) -> Result<ProfileRow> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM portal_profiles WHERE tenant_id = $1 AND id = $2"
    )))
    .bind(tenant)
    .bind(id)
    .fetch_optional(executor)
    .await?
    .ok_or(Error::NotFound("portal profile"))
}

/// The profile a project's pages use: its own, else the tenant's default, else the built-in one.
pub async fn for_project(
    pool: &Pool,
    tenant: &TenantId,
    project: &str,
    tenant_language: &Language,
) -> Result<Profile> {
    let row: Option<ProfileRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM portal_profiles WHERE tenant_id = $1
           AND (id = (SELECT profile_id FROM projects WHERE tenant_id = $1 AND id = $2) OR is_default = 1)
         ORDER BY is_default LIMIT 1"
    )))
    .bind(tenant)
    .bind(project)
    .fetch_optional(pool)
    .await?;
    match row {
        Some(row) => row.view(),
        None => Ok(built_in(tenant_language.clone())),
    }
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
                    create_default(conn, tenant, &Language::parse(language)?).await
                }
                _ => Ok(()),
            }
        })
    }
}

/// Creates a tenant's default profile.
async fn create_default(
    conn: &mut sqlx::AnyConnection,
    tenant: &TenantId,
    language: &Language,
) -> Result<()> {
    let profile = Profile {
        id: db::new_id(),
        ..built_in(language.clone())
    };
    insert(conn, tenant, &profile, None).await
}

/// Stores a new profile; `logo` is the stored PNG with its hash, for clones.
async fn insert(
    conn: &mut sqlx::AnyConnection,
    tenant: &TenantId,
    profile: &Profile,
    logo: Option<(Vec<u8>, String)>,
) -> Result<()> {
    let now = db::now_ms();
    let (logo, logo_sha256) = logo.unzip();
    let colours = serde_json::to_string(&profile.colours).map_err(|e| Error::Internal(e.into()))?;
    let inserted = sqlx::query(
        "INSERT INTO portal_profiles (id, tenant_id, name, is_default, mode, feedback, logo, logo_sha256, logo_link, salutation,
           booking_text, booking_disclaimer, colours, theme_install_id, language, link_expiry_days, created_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $17)",
    )
    .bind(&profile.id)
    .bind(tenant)
    .bind(&profile.name)
    .bind(i64::from(profile.is_default))
    .bind(profile.mode.as_str())
    .bind(i64::from(profile.feedback))
    .bind(logo)
    .bind(logo_sha256)
    .bind(&profile.logo_link)
    .bind(&profile.salutation)
    .bind(&profile.booking_text)
    .bind(&profile.booking_disclaimer)
    .bind(colours)
    .bind(&profile.theme_install_id)
    .bind(profile.language.as_str())
    .bind(profile.link_expiry_days)
    .bind(now)
    .execute(conn)
    .await;
    match inserted {
        Err(e) if db::is_unique_violation(&e) => Err(Error::conflict(
            "profile_exists",
            "a portal profile with this name exists",
        )),
        other => other.map(|_| ()).map_err(Error::from),
    }
}
