//! Booking rules as the API takes and shows them: an SLA profile or custom intervals, with the
//! time zone, closures, notice, horizon and caps both share.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sqlx::FromRow;
use utoipa::ToSchema;

use crate::db;
use crate::error::{Error, Result};

/// A day of the week.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, ToSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Weekday {
    Monday,
    Tuesday,
    Wednesday,
    Thursday,
    Friday,
    Saturday,
    Sunday,
}

impl Weekday {
    pub fn of(date: jiff::civil::Date) -> Self {
        match date.weekday() {
            jiff::civil::Weekday::Monday => Self::Monday,
            jiff::civil::Weekday::Tuesday => Self::Tuesday,
            jiff::civil::Weekday::Wednesday => Self::Wednesday,
            jiff::civil::Weekday::Thursday => Self::Thursday,
            jiff::civil::Weekday::Friday => Self::Friday,
            jiff::civil::Weekday::Saturday => Self::Saturday,
            jiff::civil::Weekday::Sunday => Self::Sunday,
        }
    }
}

/// A wall-clock time `HH:MM`, `24:00` meaning the end of the day; minutes after midnight.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, ToSchema)]
#[schema(value_type = String, pattern = r"^([01][0-9]|2[0-3]):[0-5][0-9]$|^24:00$", example = "08:00")]
pub struct ClockTime(pub u16);

impl ClockTime {
    pub fn parse(raw: &str) -> Option<Self> {
        let (h, m) = raw.split_once(':')?;
        if h.len() != 2 || m.len() != 2 {
            return None;
        }
        let (h, m): (u16, u16) = (h.parse().ok()?, m.parse().ok()?);
        (m < 60 && (h < 24 || (h == 24 && m == 0))).then_some(Self(h * 60 + m))
    }
}

impl Serialize for ClockTime {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_str(&format!("{:02}:{:02}", self.0 / 60, self.0 % 60))
    }
}

impl<'de> Deserialize<'de> for ClockTime {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let raw = String::deserialize(d)?;
        Self::parse(&raw).ok_or_else(|| {
            serde::de::Error::custom(format!("{raw:?} is not a time such as 08:00 (or 24:00)"))
        })
    }
}

/// A range of wall-clock time on one day.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TimeRange {
    pub start: ClockTime,
    pub end: ClockTime,
}

/// Days without business hours: one date or a range of dates (inclusive), optionally every
/// year (a range may then cross New Year).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Closure {
    #[serde(default)]
    pub name: String,
    #[schema(value_type = String, format = Date, example = "2026-12-24")]
    pub from: jiff::civil::Date,
    /// Last closed day; absent: only `from`.
    #[schema(value_type = Option<String>, format = Date)]
    pub to: Option<jiff::civil::Date>,
    /// Repeats on the same dates every year.
    #[serde(default)]
    pub yearly: bool,
}

impl Closure {
    pub fn covers(&self, date: jiff::civil::Date) -> bool {
        let to = self.to.unwrap_or(self.from);
        if !self.yearly {
            return self.from <= date && date <= to;
        }
        let key = |d: jiff::civil::Date| (d.month(), d.day());
        let (from, to, day) = (key(self.from), key(to), key(date));
        if from <= to {
            from <= day && day <= to
        } else {
            day >= from || day <= to
        }
    }
}

/// How far ahead windows are offered. Today is the first day; fully booked days count.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Horizon {
    /// 1 to 90.
    #[schema(minimum = 1, maximum = 90)]
    pub days: u16,
    /// `calendar` counts every day, `business` only days with business hours or intervals.
    #[serde(default)]
    pub unit: HorizonUnit,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum HorizonUnit {
    #[default]
    Calendar,
    Business,
}

/// A named fixed window on chosen weekdays.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct IntervalDefinition {
    #[schema(min_length = 1, max_length = 100)]
    pub name: String,
    #[schema(min_items = 1)]
    pub weekdays: Vec<Weekday>,
    pub start: ClockTime,
    pub end: ClockTime,
    /// Bookings allowed in it, 1 to 10,000.
    #[schema(minimum = 1, maximum = 10000)]
    pub capacity: u32,
}

/// What computes the windows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Source {
    /// An SLA profile: windows in business hours, after the response time.
    Sla {
        /// Ranges per weekday, in any order; overlapping ranges merge. A weekday left out is
        /// closed.
        business_hours: BTreeMap<Weekday, Vec<TimeRange>>,
        /// Business minutes after the ticket was created before the first window (at most a
        /// year's minutes).
        #[serde(default)]
        #[schema(maximum = 525600)]
        response_minutes: u32,
        /// Business minutes after creation by which a window must start; absent: none.
        #[serde(default)]
        #[schema(maximum = 525600)]
        deadline_minutes: Option<u32>,
        /// Length of the visit (5 to 1,440); a window is offered when a visit starting at its
        /// start ends by closing time.
        #[schema(minimum = 5, maximum = 1440)]
        visit_minutes: u32,
        /// Length of an arrival window (5 to 1,440).
        #[schema(minimum = 5, maximum = 1440)]
        window_minutes: u32,
        /// Distance between window starts; at least the window length (windows never
        /// overlap). Defaults to the window length.
        #[serde(default)]
        #[schema(minimum = 5, maximum = 1440)]
        step_minutes: Option<u32>,
        /// Time kept free around each booking (at most 1,440).
        #[serde(default)]
        #[schema(maximum = 1440)]
        buffer_minutes: u32,
        /// Bookings per window (jobs, or the technicians of the team), 1 to 10,000.
        #[schema(minimum = 1, maximum = 10000)]
        capacity: u32,
    },
    /// Custom intervals: fixed windows per weekday.
    Intervals {
        /// 1 to 100, no two overlapping on a weekday.
        #[schema(min_items = 1, max_items = 100)]
        intervals: Vec<IntervalDefinition>,
    },
}

impl Source {
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Sla { .. } => "sla",
            Self::Intervals { .. } => "intervals",
        }
    }
}

/// Everything a rule set says: a new rule set, or all of an existing one (`PUT` replaces it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Definition {
    /// 1 to 200 characters, unique in the tenant.
    #[schema(min_length = 1, max_length = 200)]
    pub name: String,
    /// IANA time zone of the business hours, such as `Europe/Berlin`.
    #[schema(value_type = crate::types::TimeZoneName, example = "Europe/Berlin")]
    pub time_zone: String,
    /// What computes the windows: an SLA profile or custom intervals.
    pub source: Source,
    #[serde(default)]
    #[schema(max_items = 500)]
    pub closures: Vec<Closure>,
    /// No window starts sooner than this after now (0 to 43,200).
    #[serde(default)]
    #[schema(minimum = 0, maximum = 43200)]
    pub notice_minutes: u32,
    pub horizon: Horizon,
    /// Bookings per local day across all windows; absent: no cap.
    #[serde(default)]
    #[schema(minimum = 1, maximum = 100000)]
    pub max_per_day: Option<u32>,
    /// A slot-calculator install of the tenant; absent: the built-in standard calculator.
    #[serde(default)]
    pub calculator_install_id: Option<String>,
}

const MAX_NOTICE_MINUTES: u32 = 30 * 24 * 60;
const MAX_BUSINESS_MINUTES: u32 = 365 * 24 * 60;

fn invalid(message: impl Into<String>) -> Error {
    Error::invalid("invalid_rules", message)
}

impl Definition {
    /// Checks what the types cannot say; returns the name, trimmed, and the time zone.
    pub fn check(&self) -> Result<(String, jiff::tz::TimeZone)> {
        let name = crate::tickets::service::check_name(&self.name)?;
        let tz = jiff::tz::TimeZone::get(&self.time_zone).map_err(|_| {
            invalid(format!(
                "time_zone: {:?} is not an IANA time zone",
                self.time_zone
            ))
        })?;
        if !(1..=90).contains(&self.horizon.days) {
            return Err(invalid("horizon.days: from 1 to 90"));
        }
        if self.notice_minutes > MAX_NOTICE_MINUTES {
            return Err(invalid("notice_minutes: at most 43200 (30 days)"));
        }
        if self
            .max_per_day
            .is_some_and(|cap| !(1..=100_000).contains(&cap))
        {
            return Err(invalid("max_per_day: 1 to 100000, or absent"));
        }
        if self.closures.len() > 500 {
            return Err(invalid("closures: at most 500"));
        }
        for (i, c) in self.closures.iter().enumerate() {
            if c.to.is_some_and(|to| to < c.from) {
                return Err(invalid(format!("closures[{i}]: `to` is before `from`")));
            }
        }
        let range = |at: &str, start: ClockTime, end: ClockTime| {
            if start >= end {
                Err(invalid(format!("{at}: the start must be before the end")))
            } else {
                Ok(())
            }
        };
        let capacity = |at: &str, capacity: u32| {
            if (1..=10_000).contains(&capacity) {
                Ok(())
            } else {
                Err(invalid(format!("{at}: capacity from 1 to 10000")))
            }
        };
        match &self.source {
            Source::Sla {
                business_hours,
                visit_minutes,
                window_minutes,
                step_minutes,
                capacity: places,
                response_minutes,
                deadline_minutes,
                buffer_minutes,
            } => {
                for (day, ranges) in business_hours {
                    if ranges.len() > 24 {
                        return Err(invalid("business_hours: at most 24 ranges a day"));
                    }
                    for r in ranges {
                        range(&format!("business_hours.{day:?}"), r.start, r.end)?;
                    }
                }
                for (name, value) in [
                    ("visit_minutes", *visit_minutes),
                    ("window_minutes", *window_minutes),
                ] {
                    if !(5..=1440).contains(&value) {
                        return Err(invalid(format!("{name}: from 5 to 1440")));
                    }
                }
                if step_minutes.is_some_and(|s| s < *window_minutes || s > 1440) {
                    return Err(invalid(
                        "step_minutes: at least window_minutes (windows never overlap), at most 1440",
                    ));
                }
                if *buffer_minutes > 1440 {
                    return Err(invalid("buffer_minutes: at most 1440"));
                }
                if *response_minutes > MAX_BUSINESS_MINUTES
                    || deadline_minutes.is_some_and(|d| d > MAX_BUSINESS_MINUTES)
                {
                    return Err(invalid(
                        "response_minutes, deadline_minutes: at most 525600 (a year)",
                    ));
                }
                if deadline_minutes.is_some_and(|d| d < *response_minutes) {
                    return Err(invalid("deadline_minutes: not before response_minutes"));
                }
                capacity("capacity", *places)?;
            }
            Source::Intervals { intervals } => {
                if intervals.is_empty() || intervals.len() > 100 {
                    return Err(invalid("intervals: from 1 to 100"));
                }
                for (i, interval) in intervals.iter().enumerate() {
                    let at = format!("intervals[{i}]");
                    if interval.name.trim().is_empty() || interval.name.chars().count() > 100 {
                        return Err(invalid(format!("{at}.name: 1 to 100 characters")));
                    }
                    if interval.weekdays.is_empty() {
                        return Err(invalid(format!("{at}.weekdays: name at least one")));
                    }
                    range(&at, interval.start, interval.end)?;
                    capacity(&at, interval.capacity)?;
                }
                // Windows never overlap: two intervals on one weekday must not either.
                for (i, a) in intervals.iter().enumerate() {
                    for b in &intervals[i + 1..] {
                        let same_day = a.weekdays.iter().any(|d| b.weekdays.contains(d));
                        if same_day && a.start < b.end && b.start < a.end {
                            return Err(invalid(format!(
                                "intervals: {:?} and {:?} overlap on a weekday",
                                a.name, b.name
                            )));
                        }
                    }
                }
            }
        }
        Ok((name, tz))
    }
}

/// A rule set as the API shows it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct RuleSet {
    pub id: String,
    #[serde(flatten)]
    pub definition: Definition,
    #[schema(value_type = String, format = DateTime)]
    pub created_at: jiff::Timestamp,
    #[schema(value_type = String, format = DateTime)]
    pub updated_at: jiff::Timestamp,
}

impl RuleSet {
    pub fn summary(&self) -> Value {
        json!(self.definition)
    }
}

#[derive(FromRow)]
pub struct RuleSetRow {
    pub id: String,
    pub definition: String,
    pub calculator_install_id: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
}

impl TryFrom<RuleSetRow> for RuleSet {
    type Error = Error;

    fn try_from(row: RuleSetRow) -> Result<Self> {
        let mut definition: Definition = serde_json::from_str(&row.definition)
            .map_err(|e| Error::Internal(anyhow::anyhow!("stored booking rules: {e}")))?;
        // The column is the truth: an uninstalled calculator sets it to NULL.
        definition.calculator_install_id = row.calculator_install_id;
        Ok(Self {
            id: row.id,
            definition,
            created_at: db::timestamp(row.created_at),
            updated_at: db::timestamp(row.updated_at),
        })
    }
}
