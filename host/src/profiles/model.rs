//! Portal profiles as the API and the portal pages see them, their colours, and the inputs that
//! create and change them.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sqlx::FromRow;
use utoipa::ToSchema;

use crate::db;
use crate::error::{Error, Result};
use crate::types::{Colour, Language};

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
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Tracking => "tracking",
            Self::Booking => "booking",
        }
    }
}

impl TryFrom<String> for Mode {
    type Error = Error;

    fn try_from(stored: String) -> Result<Self> {
        match stored.as_str() {
            "tracking" => Ok(Self::Tracking),
            "booking" => Ok(Self::Booking),
            other => Err(Error::Internal(anyhow::anyhow!(
                "stored profile mode {other:?}"
            ))),
        }
    }
}

/// Colours of one colour scheme.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Palette {
    /// Header band, primary buttons, the current step.
    #[schema(value_type = String, pattern = "^\\s*#[0-9a-fA-F]{6}\\s*$", example = "#0b5cad")]
    pub main: Colour,
    /// Text on the main colour.
    #[schema(value_type = String, pattern = "^\\s*#[0-9a-fA-F]{6}\\s*$", example = "#ffffff")]
    pub main_text: Colour,
    /// Background of secondary buttons.
    #[schema(value_type = String, pattern = "^\\s*#[0-9a-fA-F]{6}\\s*$")]
    pub secondary_button: Colour,
    /// Page background.
    #[schema(value_type = String, pattern = "^\\s*#[0-9a-fA-F]{6}\\s*$")]
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
    pub fn check(&self) -> Result<()> {
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
    /// End users may change or cancel their appointment online until this many minutes before
    /// it (0 to 43,200); after that the booking page says whom to call.
    pub change_notice_minutes: i64,
    /// Whom to call when it is too late to change online.
    pub phone: String,
    /// The salutation and booking texts in other languages, by language code. A text left
    /// empty there falls back to the profile's own (in the profile's language).
    pub translations: BTreeMap<String, ProfileTexts>,
    #[schema(value_type = String, format = DateTime)]
    pub created_at: jiff::Timestamp,
    #[schema(value_type = String, format = DateTime)]
    pub updated_at: jiff::Timestamp,
}

/// A profile's texts in one language.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProfileTexts {
    #[serde(default)]
    pub salutation: String,
    #[serde(default)]
    pub booking_text: String,
    #[serde(default)]
    pub booking_disclaimer: String,
}

impl Profile {
    /// The texts to show in `language`: its translation where one is given, else the profile's
    /// own.
    pub fn texts_in(&self, language: &str) -> ProfileTexts {
        let own = ProfileTexts {
            salutation: self.salutation.clone(),
            booking_text: self.booking_text.clone(),
            booking_disclaimer: self.booking_disclaimer.clone(),
        };
        let Some(translated) = self.translations.get(language) else {
            return own;
        };
        let pick = |t: &str, o: String| if t.is_empty() { o } else { t.to_string() };
        ProfileTexts {
            salutation: pick(&translated.salutation, own.salutation),
            booking_text: pick(&translated.booking_text, own.booking_text),
            booking_disclaimer: pick(&translated.booking_disclaimer, own.booking_disclaimer),
        }
    }

    /// What the audit log keeps of a profile.
    pub fn summary(&self) -> Value {
        json!({
            "name": self.name, "is_default": self.is_default, "mode": self.mode, "feedback": self.feedback,
            "theme_install_id": self.theme_install_id, "language": self.language, "link_expiry_days": self.link_expiry_days,
            "change_notice_minutes": self.change_notice_minutes, "phone": self.phone,
        })
    }
}

/// A profile as stored (without the logo's bytes).
#[derive(FromRow)]
pub(super) struct ProfileRow {
    pub id: String,
    pub name: String,
    pub is_default: i64,
    #[sqlx(try_from = "String")]
    pub mode: Mode,
    pub feedback: i64,
    pub logo_sha256: Option<String>,
    pub logo_link: Option<String>,
    pub salutation: String,
    pub booking_text: String,
    pub booking_disclaimer: String,
    /// JSON of [`Colours`].
    pub colours: String,
    pub theme_install_id: Option<String>,
    pub language: String,
    pub link_expiry_days: Option<i64>,
    pub change_notice_minutes: i64,
    pub phone: String,
    /// JSON of the translations.
    pub translations: String,
    pub created_at: i64,
    pub updated_at: i64,
}

impl ProfileRow {
    pub fn view(self) -> Result<Profile> {
        let corrupt = |what: &str| Error::Internal(anyhow::anyhow!("stored profile {what}"));
        Ok(Profile {
            logo_url: self
                .logo_sha256
                .as_ref()
                .map(|sha| logo_path(&self.id, sha)),
            mode: self.mode,
            colours: serde_json::from_str(&self.colours).map_err(|_| corrupt("colours"))?,
            language: Language::parse(&self.language).map_err(|_| corrupt("language"))?,
            translations: serde_json::from_str(&self.translations)
                .map_err(|_| corrupt("translations"))?,
            change_notice_minutes: self.change_notice_minutes,
            phone: self.phone,
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

/// A day's notice for customer-side changes, unless the profile says otherwise.
pub const DEFAULT_CHANGE_NOTICE_MINUTES: i64 = 24 * 60;

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
        change_notice_minutes: DEFAULT_CHANGE_NOTICE_MINUTES,
        phone: String::new(),
        translations: BTreeMap::new(),
        created_at: jiff::Timestamp::UNIX_EPOCH,
        updated_at: jiff::Timestamp::UNIX_EPOCH,
    }
}

/// A stored logo: the PNG and its SHA-256 (hex).
pub struct Logo {
    pub png: Vec<u8>,
    pub sha256: String,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewProfile {
    #[schema(min_length = 1, max_length = 100, pattern = "\\S")]
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
    #[schema(value_type = Option<String>, pattern = "^(en|de|es)$")]
    pub language: Option<Language>,
    #[schema(minimum = 1, maximum = 3650)]
    pub link_expiry_days: Option<i64>,
    /// Defaults to 1,440 (a day).
    #[schema(minimum = 0, maximum = 43200)]
    pub change_notice_minutes: Option<i64>,
    #[serde(default)]
    #[schema(max_length = 50)]
    pub phone: String,
    #[serde(default)]
    pub translations: BTreeMap<String, ProfileTexts>,
    /// Make this the tenant's default profile.
    #[serde(default)]
    pub is_default: bool,
}

/// The editable fields of a profile; `None` leaves a field as it is.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProfileChanges {
    #[schema(min_length = 1, max_length = 100, pattern = "\\S")]
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
    #[schema(value_type = Option<String>, pattern = "^(en|de|es)$")]
    pub language: Option<Language>,
    /// `null`: links never expire.
    #[serde(default, deserialize_with = "crate::types::double_option")]
    #[schema(minimum = 1, maximum = 3650)]
    pub link_expiry_days: Option<Option<i64>>,
    #[schema(minimum = 0, maximum = 43200)]
    pub change_notice_minutes: Option<i64>,
    #[schema(max_length = 50)]
    pub phone: Option<String>,
    /// Replaces all translations.
    pub translations: Option<BTreeMap<String, ProfileTexts>>,
    /// `true` makes this the default (the previous default stops being one).
    pub is_default: Option<bool>,
}
