//! Values parsed once at the boundary, so the code behind it can trust them.

mod caller;
mod digest;
mod secret;

pub use caller::{Caller, Principal};
pub use digest::{hash_token, sha256_hex};
pub use secret::Secret;

use std::fmt;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::error::Error;

macro_rules! string_newtype {
    ($(#[$meta:meta])* $name:ident, $parse:path) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, ToSchema, sqlx::Type)]
        #[serde(transparent)]
        #[sqlx(transparent)]
        pub struct $name(String);

        string_newtype!(@impl $name, $parse);
    };
    // With a schema of its own: the newtype's `schema()` states what parsing accepts.
    ($(#[$meta:meta])* $name:ident, $parse:path, schema = $schema:path) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, sqlx::Type)]
        #[serde(transparent)]
        #[sqlx(transparent)]
        pub struct $name(String);

        impl utoipa::PartialSchema for $name {
            fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
                $schema()
            }
        }

        impl ToSchema for $name {
            fn name() -> std::borrow::Cow<'static, str> {
                std::borrow::Cow::Borrowed(stringify!($name))
            }
        }

        string_newtype!(@impl $name, $parse);
    };
    (@impl $name:ident, $parse:path) => {
        impl $name {
            pub fn parse(raw: &str) -> Result<Self, Error> {
                $parse(raw).map(Self)
            }
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let raw = String::deserialize(d)?;
                Self::parse(&raw).map_err(serde::de::Error::custom)
            }
        }
    };
}

string_newtype!(
    /// A tenant's id (a UUID).
    TenantId,
    parse_uuid
);
string_newtype!(
    /// A tenant's short name: lower-case letters, digits and inner hyphens, at most 63
    /// characters, so it can be a DNS label.
    Slug,
    parse_slug
);
string_newtype!(
    /// An email address, trimmed and lower-cased.
    Email,
    parse_email
);
string_newtype!(
    /// A mobile number in E.164 form (`+4915112345678`), parsed from international notation
    /// with spaces, dashes or brackets and checked against the numbering plan of its country.
    Mobile,
    parse_mobile
);
string_newtype!(
    /// An IANA time-zone name such as `Europe/Berlin`.
    TimeZoneName,
    parse_time_zone,
    schema = time_zone_schema
);
string_newtype!(
    /// A language the portals are translated into: `en`, `de` or `es`.
    Language,
    parse_language
);
string_newtype!(
    /// A fully qualified host name such as `portal.example.com`, lower-cased, no trailing dot.
    DomainName,
    parse_domain_name
);

string_newtype!(
    /// A colour as `#rrggbb`, lower-cased.
    Colour,
    parse_colour
);

impl Colour {
    /// Relative luminance (WCAG 2), from 0 for black to 1 for white.
    pub fn luminance(&self) -> f64 {
        let channel = |i: usize| {
            let value = f64::from(u8::from_str_radix(&self.0[i..i + 2], 16).unwrap_or(0)) / 255.0;
            if value <= 0.03928 {
                value / 12.92
            } else {
                ((value + 0.055) / 1.055).powf(2.4)
            }
        };
        0.2126 * channel(1) + 0.7152 * channel(3) + 0.0722 * channel(5)
    }

    /// WCAG 2 contrast ratio against another colour, from 1 to 21.
    pub fn contrast(&self, other: &Colour) -> f64 {
        let (a, b) = (self.luminance(), other.luminance());
        (a.max(b) + 0.05) / (a.min(b) + 0.05)
    }
}

impl TenantId {
    /// Wraps an id read from the database, where it was written by us.
    pub fn from_db(id: String) -> Self {
        Self(id)
    }
}

/// A display name (of a tenant, a staff user): trimmed, 1 to 200 characters.
pub fn display_name(raw: &str) -> Result<String, Error> {
    let name = raw.trim();
    if name.is_empty() || name.chars().count() > 200 {
        return Err(Error::invalid(
            "invalid_display_name",
            "a display name is 1 to 200 characters",
        ));
    }
    Ok(name.to_string())
}

/// Slugs that would collide with host names the platform itself uses.
const RESERVED_SLUGS: &[&str] = &[
    "www", "api", "admin", "app", "portal", "mail", "static", "status",
];

fn parse_uuid(raw: &str) -> Result<String, Error> {
    uuid::Uuid::parse_str(raw)
        .map(|u| u.to_string())
        .map_err(|_| Error::invalid("invalid_id", format!("{raw:?} is not a valid id")))
}

fn is_dns_label(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

fn parse_slug(raw: &str) -> Result<String, Error> {
    if !is_dns_label(raw) {
        return Err(Error::invalid(
            "invalid_slug",
            "a slug is 1 to 63 lower-case letters, digits or inner hyphens",
        ));
    }
    if RESERVED_SLUGS.contains(&raw) {
        return Err(Error::invalid(
            "invalid_slug",
            format!("the slug {raw:?} is reserved"),
        ));
    }
    Ok(raw.to_string())
}

fn parse_email(raw: &str) -> Result<String, Error> {
    let email = raw.trim().to_lowercase();
    let invalid = || {
        Error::invalid(
            "invalid_email",
            format!("{raw:?} is not a valid email address"),
        )
    };
    let (local, domain) = email.rsplit_once('@').ok_or_else(invalid)?;
    let domain_ok = domain.contains('.') && domain.split('.').all(is_dns_label);
    let local_ok = !local.is_empty()
        && local.len() <= 64
        && !local.contains('@')
        && local
            .bytes()
            .all(|b| b.is_ascii_graphic() && !b"\"(),:;<>[\\]".contains(&b));
    if email.len() > 254 || !domain_ok || !local_ok {
        return Err(invalid());
    }
    Ok(email)
}

fn parse_mobile(raw: &str) -> Result<String, Error> {
    let invalid = || {
        Error::invalid(
            "invalid_mobile",
            format!(
                "{raw:?} is not a valid phone number in international form, such as +4915112345678"
            ),
        )
    };
    // Without a country to assume, only international notation parses.
    let number = phonenumber::parse(None, raw.trim()).map_err(|_| invalid())?;
    if !phonenumber::is_valid(&number) {
        return Err(invalid());
    }
    Ok(number.format().mode(phonenumber::Mode::E164).to_string())
}

/// The zones this host's time-zone database knows, which are exactly those parsing accepts.
fn time_zone_schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
    let mut names: Vec<String> = jiff::tz::db()
        .available()
        .map(|name| name.as_str().to_string())
        .collect();
    names.sort();
    utoipa::openapi::ObjectBuilder::new()
        .schema_type(utoipa::openapi::schema::Type::String)
        .description(Some(
            "An IANA time-zone name such as `Europe/Berlin`, known to this host's time-zone \
             database.",
        ))
        .enum_values(Some(names))
        .into()
}

/// A role's name as the API documents it; `policies::service` holds the rule itself.
pub struct RoleName;

impl utoipa::PartialSchema for RoleName {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::Type::String)
            .description(Some("1 to 40 lower-case letters, digits or hyphens."))
            .pattern(Some("^[a-z0-9-]{1,40}$"))
            .into()
    }
}

impl ToSchema for RoleName {
    fn name() -> std::borrow::Cow<'static, str> {
        std::borrow::Cow::Borrowed("RoleName")
    }
}

fn parse_time_zone(raw: &str) -> Result<String, Error> {
    jiff::tz::TimeZone::get(raw)
        .map(|_| raw.to_string())
        .map_err(|_| {
            Error::invalid(
                "invalid_time_zone",
                format!("{raw:?} is not a known IANA time zone"),
            )
        })
}

fn parse_colour(raw: &str) -> Result<String, Error> {
    let colour = raw.trim().to_ascii_lowercase();
    let valid = colour.len() == 7
        && colour.starts_with('#')
        && colour[1..].bytes().all(|b| b.is_ascii_hexdigit());
    if valid {
        Ok(colour)
    } else {
        Err(Error::invalid(
            "invalid_colour",
            format!("{raw:?} is not a colour in the form #rrggbb"),
        ))
    }
}

/// For `Option<Option<T>>` fields of changes: tells "absent" (outer `None`, with
/// `#[serde(default)]`) from "null" (`Some(None)`).
pub fn double_option<'de, D: serde::Deserializer<'de>, T: Deserialize<'de>>(
    d: D,
) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(d).map(Some)
}

/// Languages the portal texts are translated into.
pub const LANGUAGES: &[&str] = &["en", "de", "es"];

fn parse_language(raw: &str) -> Result<String, Error> {
    if LANGUAGES.contains(&raw) {
        Ok(raw.to_string())
    } else {
        Err(Error::invalid(
            "invalid_language",
            format!("{raw:?} is not a supported language (en, de, es)"),
        ))
    }
}

fn parse_domain_name(raw: &str) -> Result<String, Error> {
    let name = raw.trim().trim_end_matches('.').to_ascii_lowercase();
    let labels: Vec<&str> = name.split('.').collect();
    let valid = name.len() <= 253
        && labels.len() >= 2
        && labels.iter().all(|l| is_dns_label(l))
        && !labels
            .last()
            .is_some_and(|tld| tld.bytes().all(|b| b.is_ascii_digit()));
    if valid {
        Ok(name)
    } else {
        Err(Error::invalid(
            "invalid_domain",
            format!("{raw:?} is not a valid domain name"),
        ))
    }
}

/// Keyset pagination: `limit` items after the `cursor` (the last id of the previous page).
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageParams {
    /// Items per page, 1 to 200 (default 50).
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<u32>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

impl PageParams {
    pub const DEFAULT_LIMIT: u32 = 50;
    pub const MAX_LIMIT: u32 = 200;

    /// The page size, checked.
    pub fn limit(&self) -> Result<i64, Error> {
        match self.limit.unwrap_or(Self::DEFAULT_LIMIT) {
            n @ 1..=Self::MAX_LIMIT => Ok(i64::from(n)),
            _ => Err(Error::BadRequest {
                code: "invalid_query",
                message: format!("limit must be between 1 and {}", Self::MAX_LIMIT),
            }),
        }
    }

    /// The cursor to continue after; the empty string sorts before every id.
    pub fn after(&self) -> &str {
        self.cursor.as_deref().unwrap_or("")
    }
}

/// One page of a list.
#[derive(Debug, Serialize, ToSchema)]
pub struct Page<T> {
    pub items: Vec<T>,
    /// Pass as `cursor` to get the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

impl<T> Page<T> {
    /// Builds a page from `limit + 1` fetched rows: the extra row only says more exist.
    pub fn from_rows(mut rows: Vec<T>, limit: i64, id: impl Fn(&T) -> &str) -> Self {
        let more = rows.len() as i64 > limit;
        rows.truncate(limit as usize);
        let next_cursor = if more {
            rows.last().map(|r| id(r).to_string())
        } else {
            None
        };
        Self {
            items: rows,
            next_cursor,
        }
    }

    pub fn map<U>(self, f: impl FnMut(T) -> U) -> Page<U> {
        Page {
            items: self.items.into_iter().map(f).collect(),
            next_cursor: self.next_cursor,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugs() {
        assert!(Slug::parse("easy-printer").is_ok());
        for bad in ["", "-a", "a-", "Upper", "has space", "www", &"x".repeat(64)] {
            assert!(Slug::parse(bad).is_err(), "{bad:?} should be refused");
        }
    }

    #[test]
    fn emails() {
        assert_eq!(
            Email::parse(" Anna@Example.COM ").unwrap().as_str(),
            "anna@example.com"
        );
        for bad in [
            "",
            "anna",
            "anna@",
            "@example.com",
            "anna@example",
            "a b@example.com",
            "anna@-x.com",
        ] {
            assert!(Email::parse(bad).is_err(), "{bad:?} should be refused");
        }
    }

    #[test]
    fn mobiles_are_normalised_to_e164_and_checked() {
        assert_eq!(
            Mobile::parse(" +49 (151) 1234-5678 ").unwrap().as_str(),
            "+4915112345678"
        );
        for bad in ["015112345678", "+49 1", "+999 123456789", "call me", ""] {
            assert!(Mobile::parse(bad).is_err(), "{bad:?} should be refused");
        }
    }

    #[test]
    fn colours_and_contrast() {
        let white = Colour::parse("#FFFFFF").unwrap();
        let black = Colour::parse("#000000").unwrap();
        assert_eq!(white.as_str(), "#ffffff");
        assert!((white.contrast(&black) - 21.0).abs() < 1e-9);
        assert!((white.contrast(&white) - 1.0).abs() < 1e-9);
        // WCAG's own example: #767676 on white is just above 4.5:1.
        let grey = Colour::parse("#767676").unwrap();
        assert!((4.5..4.6).contains(&grey.contrast(&white)));
        for bad in ["", "fff", "#fff", "#ggg000", "#1234567", "red"] {
            assert!(Colour::parse(bad).is_err(), "{bad:?} should be refused");
        }
    }

    #[test]
    fn domains() {
        assert_eq!(
            DomainName::parse("Portal.Example.com.").unwrap().as_str(),
            "portal.example.com"
        );
        for bad in ["localhost", "10.0.0.1", "a..b", "-a.com", "exa mple.com"] {
            assert!(DomainName::parse(bad).is_err(), "{bad:?} should be refused");
        }
    }

    #[test]
    fn time_zones_and_languages() {
        assert!(TimeZoneName::parse("Europe/Berlin").is_ok());
        assert!(TimeZoneName::parse("Mars/Olympus").is_err());
        assert!(Language::parse("de").is_ok());
        assert!(Language::parse("fr").is_err());
    }

    #[test]
    fn page_limits() {
        let page = PageParams {
            limit: Some(0),
            cursor: None,
        };
        assert!(page.limit().is_err());
        let rows = vec!["a".to_string(), "b".into(), "c".into()];
        let page = Page::from_rows(rows, 2, |s| s.as_str());
        assert_eq!(page.items.len(), 2);
        assert_eq!(page.next_cursor.as_deref(), Some("b"));
    }
}
