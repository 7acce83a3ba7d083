//! The view model of portal pages, as the host builds it and a theme receives it in
//! [`crate::Page`]'s `view_model` (JSON). Everything is already translated, formatted in the
//! tenant's time zone and linked: a theme only lays it out. The host serialises these very
//! types, so a theme can deserialise them with [`ViewModel::parse`]; the default
//! [`crate::Theme::render`] hands the same fields to templates. The JSON Schema of these types is
//! kept in `sdk/view-model.schema.json`, and a host test fails when the two differ.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// One page's data.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct ViewModel {
    /// The page kind's name: `tracking`, `booking`, `not_found` or `unavailable`.
    pub page: String,
    /// The page's language (`en`, `de`, `es`).
    pub language: String,
    /// The service company.
    pub tenant: TenantView,
    /// The portal profile's branding.
    pub branding: Branding,
    /// Every text of the page in its language, by key (see the host's translations).
    pub texts: BTreeMap<String, String>,
    /// The greeting, with the contact's name filled in.
    pub salutation: String,
    /// The ticket, on a ticket's pages.
    pub ticket: Option<TicketView>,
    /// Appointment booking.
    pub booking: BookingView,
    /// The end user's feedback on the visit.
    pub feedback: FeedbackView,
    /// Where the page's links and forms go.
    pub links: Links,
    /// The token every form posts back in its `csrf_token` field.
    pub csrf_token: String,
}

impl ViewModel {
    /// Reads the view model a theme was given.
    pub fn parse(json: &str) -> Result<Self, String> {
        serde_json::from_str(json).map_err(|e| format!("view model: {e}"))
    }
}

/// The service company.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct TenantView {
    /// Its name.
    pub name: String,
}

/// The profile's branding.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct Branding {
    /// The logo, served by the host.
    pub logo_url: Option<String>,
    /// Where the logo links to.
    pub logo_link: Option<String>,
}

/// One step of the progress timeline.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct StepView {
    /// The step's status, such as `dispatched`.
    pub status: String,
    /// Its translated name.
    pub label: String,
    /// When the ticket last reached it, formatted.
    pub at: Option<String>,
    /// Whether the ticket reached it.
    pub reached: bool,
    /// Whether it is the ticket's current step.
    pub current: bool,
}

/// The technician's visit, while they are on the way or on site.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct VisitView {
    /// The technician's name.
    pub technician: String,
    /// The expected arrival, formatted; empty when unknown.
    pub eta: String,
    /// The last known position as `latitude, longitude`; empty when unknown.
    pub position: String,
}

/// A span of time, formatted.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct Window {
    /// Its start.
    pub start: String,
    /// Its end.
    pub end: String,
}

/// The ticket as the end user sees it; also the data of every live-update event.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct TicketView {
    /// The tenant's ticket number.
    pub number: i64,
    /// Its title.
    pub title: String,
    /// Its status, such as `on_route`.
    pub status: String,
    /// The status, translated.
    pub status_label: String,
    /// The progress timeline, every step in order.
    pub steps: Vec<StepView>,
    /// The visit, while the technician is on the way or on site.
    pub visit: Option<VisitView>,
    /// The booked appointment.
    pub appointment: Option<Window>,
    /// Information the service company posted, newest first.
    pub notices: Vec<NoticeView>,
}

/// Information the service company posted.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct NoticeView {
    /// The text.
    pub text: String,
    /// When, formatted.
    pub at: String,
}

/// Appointment booking.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct BookingView {
    /// Whether the profile offers booking for this ticket.
    pub allowed: bool,
    /// The profile's booking text in the page's language (or the profile's).
    pub text: String,
    /// The profile's booking disclaimer, likewise.
    pub disclaimer: String,
    /// The IANA time zone the windows are shown in: the booking rules' zone.
    pub time_zone: String,
    /// False when no window can be offered: the page says booking is unavailable.
    pub available: bool,
    /// Whether that is for now only: the rules exist but their windows could not be computed
    /// (a calculator failed or broke the rules), so the page says to try again later.
    pub failed: bool,
    /// Free windows grouped by local day, earliest first (booking page only).
    pub days: Vec<DayView>,
    /// Whether the end user may still change or cancel the appointment online.
    pub can_change: bool,
    /// Whom to call when it is too late to change online.
    pub phone: String,
    /// What just happened (booked, cancelled), translated.
    pub notice: Option<String>,
    /// Why the last choice was not taken, translated.
    pub error: Option<String>,
}

/// One local day of free windows.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct DayView {
    /// Such as `Monday, 07.12.2026`.
    pub label: String,
    /// Its windows, earliest first.
    pub windows: Vec<WindowOption>,
}

/// A window to choose: `value` goes back in the form's `window` field.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct WindowOption {
    /// What the form posts.
    pub value: String,
    /// Such as `08:00–10:00`, or `Morning 08:00–12:00` for a custom interval.
    pub label: String,
}

/// Feedback the end user gave.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct Rating {
    /// 1 to 5.
    pub rating: i64,
    /// Their words; may be empty.
    pub comment: String,
}

/// The end user's feedback on the visit.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct FeedbackView {
    /// Whether the form is offered (enabled, visit completed, none given yet).
    pub allowed: bool,
    /// What was given.
    pub submitted: Option<Rating>,
    /// Why the last submission was not taken, in the page's language.
    pub error: Option<String>,
}

/// Where the page's links and forms go.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct Links {
    /// This page.
    pub page: String,
    /// The booking page, where windows are chosen (a form posts back to it).
    pub booking: Option<String>,
    /// Where the cancel form posts.
    pub cancel_booking: Option<String>,
    /// The appointment as an `.ics` file, once there is one.
    pub calendar: Option<String>,
    /// Where the feedback form posts.
    pub feedback: Option<String>,
}
