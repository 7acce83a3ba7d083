//! `portico demo`: a ready-to-look-at tenant, "Easy Printer Solution GmbH", with staff and
//! tickets in different steps, set up through the host's services (so it goes through the same
//! checks, audit and events as real use). Running it again reuses what exists.

use anyhow::Context;

use crate::AppState;
use crate::auth::{self, service::NewUser};
use crate::booking::model::{
    ClockTime, Closure, Definition, Horizon, HorizonUnit, Source, TimeRange, Weekday,
};
use crate::error::{Error, Result};
use crate::profiles::model::{Colours, Mode, NewProfile, Palette, ProfileTexts};
use crate::tenants::{NewTenant, Tenant};
use crate::tickets::model::{
    Appointment, Contact, NewTicket, PositionReport, ProjectChanges, ProjectInput, TicketChanges,
};
use crate::tickets::store::Filter;
use crate::tickets::{Status, Ticket};
use crate::types::{Caller, Colour, Email, Language, Principal, Slug, TimeZoneName};
use crate::{automations, booking, plugins, profiles, tenants, tickets};

const SLUG: &str = "easy-printer";
const ADMIN_EMAIL: &str = "admin@easy-printer.example";
const TECHNICIAN_EMAIL: &str = "tom@easy-printer.example";

/// The demo tickets: title, contact, and the step each is at.
const TICKETS: &[(&str, &str, &str, Status)] = &[
    (
        "Toner warning on the office printer",
        "Anna",
        "Becker",
        Status::Received,
    ),
    ("Paper jam in tray 2", "Jonas", "Weber", Status::Scheduling),
    (
        "Annual maintenance of the copier",
        "Lena",
        "Fischer",
        Status::Dispatched,
    ),
    (
        "Printer prints blank pages",
        "Eva",
        "Schmidt",
        Status::OnRoute,
    ),
    (
        "Install new network printer",
        "Paul",
        "Wagner",
        Status::Completed,
    ),
];

/// The demo acts as the platform, as an operator's token would; the audit log names it
/// `platform token "demo" (demo)`.
fn demo_caller() -> Caller {
    Caller {
        token_id: "demo".into(),
        principal: Principal::Platform {
            token_name: "demo".into(),
        },
    }
}

/// The demo tenant with its administrator, created when missing.
async fn tenant(state: &AppState, caller: &Caller) -> Result<Tenant> {
    match tenants::store::find(&state.db.pool, SLUG).await {
        Err(Error::NotFound(_)) => {}
        found => return found,
    }
    let new = NewTenant {
        slug: Slug::parse(SLUG)?,
        display_name: "Easy Printer Solution GmbH".into(),
        time_zone: TimeZoneName::parse("Europe/Berlin")?,
        language: Language::parse("de")?,
    };
    let admin = NewUser {
        email: Email::parse(ADMIN_EMAIL)?,
        display_name: "Petra Admin".into(),
        password_hash: None,
        roles: vec!["tenant-admin".into()],
    };
    let (tenant, _) =
        tenants::service::create(&state.events, &caller.actor(), new, Some(admin)).await?;
    Ok(tenant)
}

/// The demo technician's id, created when missing.
async fn technician(state: &AppState, caller: &Caller, tenant: &Tenant) -> Result<String> {
    let email = Email::parse(TECHNICIAN_EMAIL)?;
    match auth::find_user_by_email(&state.db.pool, &tenant.id, &email).await {
        Err(Error::NotFound(_)) => {}
        found => return found.map(|user| user.id),
    }
    let new = NewUser {
        email,
        display_name: "Tom Techniker".into(),
        password_hash: None,
        roles: vec!["technician".into()],
    };
    let user =
        auth::service::create_user(&state.events, &state.authz, caller, &tenant.id, new).await?;
    Ok(user.id)
}

fn palette(main: &str, main_text: &str, secondary_button: &str, body: &str) -> Result<Palette> {
    Ok(Palette {
        main: Colour::parse(main)?,
        main_text: Colour::parse(main_text)?,
        secondary_button: Colour::parse(secondary_button)?,
        body: Colour::parse(body)?,
    })
}

/// The demo portal: the Harbour theme, booking and feedback on, a logo. Found by name when it
/// exists; returns its id.
async fn portal_profile(
    state: &AppState,
    caller: &Caller,
    tenant: &Tenant,
) -> anyhow::Result<String> {
    const NAME: &str = "Easy Printer portal";
    let profiles = profiles::store::list(&state.db.pool, &tenant.id, "", 200).await?;
    if let Some(found) = profiles.into_iter().find(|p| p.name == NAME) {
        // A demo made before booking existed gets its rules now.
        if booking::service::rules_for(state, &tenant.id, "", &found.id)
            .await?
            .is_none()
        {
            let rules = booking_rules(state, caller, tenant).await?;
            let owner = booking::service::Owner::Profile(&found.id);
            booking::service::assign(state, caller, &tenant.id, owner, Some(&rules)).await?;
        }
        return Ok(found.id);
    }
    let theme = plugins::installs::install_of(&state.db.pool, &tenant.id, "harbour")
        .await?
        .context("the built-in Harbour theme is installed")?;
    let input = NewProfile {
        name: NAME.into(),
        mode: Some(Mode::Booking),
        feedback: true,
        logo_link: Some("https://easy-printer.example".into()),
        salutation: String::new(),
        booking_text: "Wählen Sie ein Zeitfenster, in dem jemand vor Ort ist. Unsere Techniker kommen werktags zwischen 8 und 18 Uhr.".into(),
        booking_disclaimer: "Termine können bis 24 Stunden vorher kostenlos geändert werden.".into(),
        colours: Some(Colours {
            light: palette("#b3261e", "#ffffff", "#f6e7e5", "#fffbfa")?,
            dark: palette("#f2b8b5", "#3b0a08", "#3a2a29", "#1a1110")?,
        }),
        theme_install_id: Some(theme),
        language: None,
        link_expiry_days: None,
        change_notice_minutes: None,
        phone: "+49 30 1234567".into(),
        translations: [
            ("en", "Choose a window in which someone is on site. Our technicians come on weekdays between 8 am and 6 pm.", "Appointments can be changed free of charge up to 24 hours before."),
            ("es", "Elija un intervalo en el que haya alguien presente. Nuestros técnicos acuden los días laborables entre las 8 y las 18 h.", "Las citas pueden cambiarse sin coste hasta 24 horas antes."),
        ]
        .into_iter()
        .map(|(language, text, disclaimer)| {
            let texts = ProfileTexts {
                salutation: String::new(),
                booking_text: text.into(),
                booking_disclaimer: disclaimer.into(),
            };
            (language.to_string(), texts)
        })
        .collect(),
        is_default: false,
    };
    let profile =
        profiles::service::create(state, caller, &tenant.id, &tenant.language, input).await?;
    let rules = booking_rules(state, caller, tenant).await?;
    let owner = booking::service::Owner::Profile(&profile.id);
    booking::service::assign(state, caller, &tenant.id, owner, Some(&rules)).await?;
    profiles::service::set_logo(state, caller, &tenant.id, &profile.id, logo_png())
        .await
        .context("the demo logo was refused")?;
    Ok(profile.id)
}

/// The demo's booking rules: two-hour windows on weekdays from 8 to 18, two technicians, two
/// hours' notice, ten business days ahead, closed over Christmas. Found by name when they
/// exist; returns their id.
async fn booking_rules(
    state: &AppState,
    caller: &Caller,
    tenant: &Tenant,
) -> anyhow::Result<String> {
    const NAME: &str = "Weekday visits";
    let existing = booking::store::list(&state.db.pool, &tenant.id, "", 200).await?;
    if let Some(found) = existing.into_iter().find(|r| r.definition.name == NAME) {
        return Ok(found.id);
    }
    let time = |raw: &str| ClockTime::parse(raw).context("a clock time");
    let day = vec![TimeRange {
        start: time("08:00")?,
        end: time("18:00")?,
    }];
    let weekdays = [
        Weekday::Monday,
        Weekday::Tuesday,
        Weekday::Wednesday,
        Weekday::Thursday,
        Weekday::Friday,
    ];
    let definition = Definition {
        name: NAME.into(),
        time_zone: tenant.time_zone.clone(),
        source: Source::Sla {
            business_hours: weekdays.into_iter().map(|d| (d, day.clone())).collect(),
            response_minutes: 0,
            deadline_minutes: None,
            visit_minutes: 60,
            window_minutes: 120,
            step_minutes: None,
            buffer_minutes: 0,
            capacity: 2,
        },
        closures: vec![Closure {
            name: "Christmas".into(),
            from: jiff::civil::date(2026, 12, 24),
            to: Some(jiff::civil::date(2026, 12, 26)),
            yearly: true,
        }],
        notice_minutes: 120,
        horizon: Horizon {
            days: 10,
            unit: HorizonUnit::Business,
        },
        max_per_day: None,
        calculator_install_id: None,
    };
    Ok(
        booking::service::create(state, caller, &tenant.id, definition)
            .await?
            .id,
    )
}

/// A small generated logo: a printer-ish mark in the brand red on white.
fn logo_png() -> Vec<u8> {
    let image = image::RgbaImage::from_fn(120, 40, |x, y| {
        let paper = (10..30).contains(&x) && (4..16).contains(&y);
        let body = (4..36).contains(&x) && (14..30).contains(&y);
        let tray = (10..30).contains(&x) && (30..36).contains(&y);
        let bar = (44..116).contains(&x) && (14..26).contains(&y) && (x / 8) % 2 == 0;
        if body || bar {
            image::Rgba([179, 38, 30, 255])
        } else if paper || tray {
            image::Rgba([90, 90, 90, 255])
        } else {
            image::Rgba([0, 0, 0, 0])
        }
    });
    let mut png = Vec::new();
    image
        .write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
        .expect("encoding a PNG in memory");
    png
}

/// The tenant's first project, created when it has none, showing the demo portal.
async fn project(
    state: &AppState,
    caller: &Caller,
    tenant: &Tenant,
    profile: String,
) -> Result<String> {
    let existing = tickets::store::list_projects(&state.db.pool, &tenant.id, "", 1).await?;
    let id = match existing.into_iter().next() {
        Some(project) => project.id,
        None => {
            let input = ProjectInput {
                name: "Printer service".into(),
                profile_id: None,
            };
            tickets::projects::create(state, caller, &tenant.id, input)
                .await?
                .id
        }
    };
    let changes = ProjectChanges {
        name: None,
        profile_id: Some(Some(profile)),
    };
    tickets::projects::update(state, caller, &tenant.id, &id, changes).await?;
    Ok(id)
}

/// The Fieldcode-style action "Tracking links": on a ticket created in the demo project, email
/// the affected person a tracking link. Kept as it is when it exists.
async fn tracking_links_action(
    state: &AppState,
    caller: &Caller,
    tenant: &Tenant,
    project: &str,
) -> anyhow::Result<()> {
    let existing = automations::store::list_actions(&state.db.pool, &tenant.id, "", 200).await?;
    if existing.iter().any(|a| a.name == TRACKING_LINKS) {
        return Ok(());
    }
    let email = plugins::store::install_of(&state.db.pool, &tenant.id, "email")
        .await?
        .context("the demo tenant's email channel")?;
    let action = serde_json::json!({
        "name": TRACKING_LINKS,
        "description": "Emails the affected person a tracking link when a ticket is created.",
        "object": "ticket",
        "trigger": {"kind": "created"},
        "conditions": {"match": "all_of", "rules": [
            {"field": "project_id", "operator": "equals", "value": project}
        ]},
        "steps": [{
            "kind": "notify",
            "channel_install_id": email,
            "to": ["affected_person"],
            "links": "tracking_and_booking",
            "message": {
                "subject": "{{ tenant.name }}: ticket {{ ticket.number }}, {{ ticket.title }}",
                "html": TRACKING_LINKS_HTML,
            }
        }]
    });
    let input: automations::NewAction = serde_json::from_value(action)?;
    automations::service::create(state, caller, &tenant.id, input).await?;
    Ok(())
}

const TRACKING_LINKS: &str = "Tracking links";
const TRACKING_LINKS_HTML: &str = r#"<p>Hello {{ person.first_name }},</p>
<p>we have received your request "{{ ticket.title }}" (ticket {{ ticket.number }}).</p>
<p><a href="{{ portal.tracking_link }}">Follow your ticket</a>: you see each step, and your technician's approach on the day of the visit.</p>
{% if ticket.appointment %}<p>Your appointment: {{ ticket.appointment.date }}, {{ ticket.appointment.start_time }} to {{ ticket.appointment.end_time }}.</p>{% endif %}
<p>{{ tenant.name }}</p>"#;

/// Tomorrow, 9 to 11 in Berlin.
fn tomorrow_morning() -> anyhow::Result<Appointment> {
    let start = jiff::Zoned::now()
        .with_time_zone(jiff::tz::TimeZone::get("Europe/Berlin")?)
        .tomorrow()?
        .with()
        .hour(9)
        .minute(0)
        .second(0)
        .subsec_nanosecond(0)
        .build()?
        .timestamp();
    Ok(Appointment {
        start,
        end: start + jiff::SignedDuration::from_hours(2),
    })
}

/// Creates a demo ticket and walks it through every step up to `target`.
async fn demo_ticket(
    state: &AppState,
    caller: &Caller,
    tenant: &Tenant,
    project: &str,
    technician: &str,
    (title, first, last, target): (&str, &str, &str, Status),
) -> anyhow::Result<Ticket> {
    let input = NewTicket {
        project_id: project.into(),
        title: title.into(),
        description: String::new(),
        ticket_type: "repair".into(),
        priority: None,
        contact: Contact {
            first_name: first.into(),
            last_name: last.into(),
            email: format!("{}@customer.example", first.to_lowercase()),
            mobile: None,
        },
        address: "Friedrichstraße 100, 10117 Berlin".into(),
        custom_fields: Default::default(),
        technician_id: Some(technician.into()),
    };
    let ticket = tickets::service::create(state, caller, &tenant.id, &tenant.slug, input).await?;
    if target >= Status::Scheduling {
        let changes = TicketChanges {
            title: None,
            description: None,
            ticket_type: None,
            priority: None,
            contact: None,
            address: None,
            custom_fields: None,
            technician_id: None,
            appointment: Some(Some(tomorrow_morning()?)),
        };
        tickets::service::update(state, caller, &tenant.id, &ticket.id, changes).await?;
    }
    for status in Status::ALL.iter().skip(1).take_while(|s| **s <= target) {
        tickets::service::change_status(state, caller, &tenant.id, &ticket.id, *status).await?;
        if *status == Status::OnRoute {
            let report = PositionReport {
                latitude: 52.5200,
                longitude: 13.4050,
                eta: Some(jiff::Timestamp::now() + jiff::SignedDuration::from_mins(25)),
            };
            tickets::service::report_position(state, caller, &tenant.id, &ticket.id, report)
                .await?;
        }
    }
    Ok(ticket)
}

/// What a run of the demo set up: each ticket's fresh tracking link, an admin token, and how
/// the tracking-links action sends its mail.
pub struct SetUp {
    /// (title, tracking link) for each demo ticket, issued by this run.
    pub tracking_links: Vec<(String, String)>,
    /// A 30-day API token of the demo admin.
    pub admin_token: String,
    /// One line per thing to read: the API reference and the automated action.
    pub notes: Vec<String>,
}

impl std::fmt::Display for SetUp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (title, url) in &self.tracking_links {
            writeln!(f, "tracking link: {url}  ({title})")?;
        }
        writeln!(f, "admin token: {}", self.admin_token)?;
        for note in &self.notes {
            writeln!(f, "{note}")?;
        }
        Ok(())
    }
}

/// Sets the demo up in the host whose API is served at `base`.
pub async fn set_up(state: &AppState, base: &str) -> anyhow::Result<SetUp> {
    let caller = demo_caller();
    let tenant = tenant(state, &caller).await?;
    let email = Email::parse(ADMIN_EMAIL)?;
    let admin = auth::find_user_by_email(&state.db.pool, &tenant.id, &email)
        .await
        .context("the demo admin")?;
    let technician = technician(state, &caller, &tenant).await?;
    let profile = portal_profile(state, &caller, &tenant).await?;
    let project = project(state, &caller, &tenant, profile).await?;
    tracking_links_action(state, &caller, &tenant, &project).await?;

    let everything = Filter {
        status: None,
        project_id: None,
        technician_id: None,
        q: None,
        after: "",
        limit: 200,
    };
    let mut existing = tickets::service::list(&state.db.pool, &tenant.id, &everything).await?;
    if existing.is_empty() {
        for ticket in TICKETS {
            let ticket =
                demo_ticket(state, &caller, &tenant, &project, &technician, *ticket).await?;
            existing.push(ticket);
        }
    }

    // Links are stored hashed, so each run issues fresh ones (and revokes the last run's).
    let mut tracking_links = Vec::new();
    for ticket in &existing {
        let reissued =
            tickets::service::reissue_link(state, &caller, &tenant.id, &tenant.slug, &ticket.id)
                .await?;
        tracking_links.push((reissued.title, reissued.tracking_url.unwrap_or_default()));
    }
    let admin_token = auth::service::issue_for(
        &state.events,
        &state.authz,
        &caller,
        &tenant.id,
        &admin.id,
        "demo",
        Some(30),
    )
    .await?;
    let base = base.trim_end_matches('/');
    let mut notes = vec![format!(
        "API reference: {base}/api/v1/docs (use the admin token as a bearer token)"
    )];
    let mail = match (&state.config.smtp_server, &state.config.email_outbox_dir) {
        (Some(server), _) => format!("through the SMTP server {server}"),
        (None, Some(folder)) => format!("as files in {} (no SMTP server is set)", folder.display()),
        (None, None) => "nowhere: no SMTP server is set".to_string(),
    };
    notes.push(format!(
        "automated action \"{TRACKING_LINKS}\": a ticket created in project {project} emails its tracking link {mail}; the delivery log is at {base}/api/v1/tenants/{}/deliveries",
        tenant.slug
    ));
    Ok(SetUp {
        tracking_links,
        admin_token: admin_token.token,
        notes,
    })
}
