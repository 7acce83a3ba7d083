//! `portico plugin new`: a plugin crate that builds as it is, with its manifest, a matching
//! configuration and a sample input for every case of its kind. The samples are built from the
//! types the host uses ([`portico_sdk::view`], [`portico_sdk::schedule`]), so they stay valid.

use std::path::{Path, PathBuf};

use anyhow::Context;
use portico_sdk::schedule::{Day, Interval, Request, Rules, SlaRules};
use portico_sdk::time::Window;
use portico_sdk::view::{
    BookingView, Branding, DayView, FeedbackView, Links, NoticeView, StepView, TenantView,
    TicketView, ViewModel, VisitView, Window as ShownWindow, WindowOption,
};
use serde_json::{Value, json};

use crate::plugins::PluginKind;
use crate::plugins::manifest::Manifest;
use crate::portal::Texts;
use crate::tickets::Status;

/// The files of a new plugin, by path inside its folder.
pub fn files(kind: PluginKind, name: &str, sdk: &Path) -> anyhow::Result<Vec<(PathBuf, String)>> {
    let manifest = manifest(kind, name);
    Manifest::parse(&manifest).context("the plugin's name")?;
    let crate_name = name.replace('-', "_");
    let inputs = inputs(kind)?;
    let first_input = inputs
        .first()
        .map(|(file, _)| file.clone())
        .unwrap_or_default();
    let fill = |template: &str| {
        template
            .replace("@NAME@", name)
            .replace("@CRATE@", &crate_name)
            .replace("@KIND@", kind.as_str())
            .replace("@SDK@", &sdk.display().to_string().replace('\\', "/"))
            .replace("@FIRST_INPUT@", &first_input)
    };
    let (source, run_flags, publish_flags, notes) = match kind {
        PluginKind::Channel => (
            include_str!("scaffold/channel.rs.in"),
            " \\\n  --grant-http 127.0.0.1 --allow-http --allow-private-network",
            " \\\n  --grant-http <the receiver's host>",
            "\n`config.json` names a receiver on this machine (`http://127.0.0.1:8099/messages`): \
             run any HTTP server that answers a POST there. `--allow-http` and \
             `--allow-private-network` open plain HTTP and local addresses for `plugin run` only; \
             in production the tenant's URL is `https://` on the internet.\n",
        ),
        PluginKind::SlotCalculator => (
            include_str!("scaffold/slot-calculator.rs.in"),
            "",
            "",
            "\nThe host checks every window a calculator returns (sorted, no overlaps, inside the \
             offered days, capacity within the rules); `plugin run` makes the same checks.\n",
        ),
        PluginKind::Theme => (
            include_str!("scaffold/theme.rs.in"),
            "",
            "",
            "\nThe host renders the pages `tracking`, `booking`, `not_found` and `unavailable`; \
             each has a template in `templates/` and a sample in `inputs/`. A page needs a \
             `</head>`, where the host puts its styles; scripts in a theme do not run.\n",
        ),
        PluginKind::Action => (include_str!("scaffold/action.rs.in"), "", "", ""),
    };
    let readme = fill(include_str!("scaffold/README.md.in"))
        .replace("@RUN_FLAGS@", run_flags)
        .replace("@PUBLISH_FLAGS@", publish_flags)
        .replace("@NOTES@", notes);
    let mut files = vec![
        (
            PathBuf::from("Cargo.toml"),
            fill(include_str!("scaffold/Cargo.toml.in")),
        ),
        (
            PathBuf::from(".gitignore"),
            "/target\n/*.portico\n".to_string(),
        ),
        (PathBuf::from("portico-plugin.toml"), manifest),
        (PathBuf::from("src/lib.rs"), fill(source)),
        (PathBuf::from("README.md"), readme),
        (
            PathBuf::from("config.json"),
            serde_json::to_string_pretty(&config(kind))? + "\n",
        ),
    ];
    if kind == PluginKind::Theme {
        for (file, text) in [
            ("layout.html", include_str!("scaffold/theme/layout.html")),
            (
                "tracking.html",
                include_str!("scaffold/theme/tracking.html"),
            ),
            ("booking.html", include_str!("scaffold/theme/booking.html")),
            (
                "not_found.html",
                include_str!("scaffold/theme/not_found.html"),
            ),
            (
                "unavailable.html",
                include_str!("scaffold/theme/unavailable.html"),
            ),
        ] {
            files.push((PathBuf::from("templates").join(file), text.to_string()));
        }
    }
    for (file, input) in inputs {
        files.push((
            PathBuf::from("inputs").join(file),
            serde_json::to_string_pretty(&input)? + "\n",
        ));
    }
    Ok(files)
}

/// Writes the files into `dir`, which must not exist yet or be empty.
pub fn write(dir: &Path, files: &[(PathBuf, String)]) -> anyhow::Result<()> {
    if dir.exists() && dir.read_dir()?.next().is_some() {
        anyhow::bail!("{} exists and is not empty", dir.display());
    }
    for (path, text) in files {
        let path = dir.join(path);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("creating {}", parent.display()))?;
        }
        std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}

fn manifest(kind: PluginKind, name: &str) -> String {
    let (wit, description, rest) = match kind {
        PluginKind::Channel => (
            "0.1.0",
            "Posts each message as JSON to the tenant's URL.",
            r#"
# Any host: each tenant grants the host of the URL it configures.
[capabilities]
http_hosts = ["*"]

[config_schema]
type = "object"
additionalProperties = false
required = ["url"]
[config_schema.properties.url]
type = "string"
format = "uri"
pattern = "^https?://"
description = "Where messages are posted."
"#,
        ),
        PluginKind::SlotCalculator => (
            "0.2.0",
            "The standard appointment windows, except on the weekdays the tenant closes.",
            r#"
[config_schema]
type = "object"
additionalProperties = false
[config_schema.properties.closed_weekdays]
type = "array"
uniqueItems = true
items = { type = "integer", minimum = 1, maximum = 7 }
description = "Weekdays without windows: 1 = Monday … 7 = Sunday."
"#,
        ),
        PluginKind::Theme => (
            "0.1.0",
            "A plain portal theme.",
            r##"
[config_schema]
type = "object"
additionalProperties = false
[config_schema.properties.accent]
type = "string"
pattern = "^#[0-9a-fA-F]{6}$"
description = "The colour of headings, such as #0b5cad."
"##,
        ),
        PluginKind::Action => (
            "0.1.0",
            "Logs the event and reports what it saw.",
            r#"
[config_schema]
type = "object"
additionalProperties = false
[config_schema.properties.prefix]
type = "string"
maxLength = 100
description = "Put in front of the summary."
"#,
        ),
    };
    format!(
        "id = \"{name}\"\nname = \"{name}\"\nversion = \"0.1.0\"\nkind = \"{}\"\nwit = \"{wit}\"\n\
         description = \"{description}\"\nauthors = [\"You <you@example.com>\"]\n{rest}",
        kind.as_str()
    )
}

fn config(kind: PluginKind) -> Value {
    match kind {
        PluginKind::Channel => json!({"url": "http://127.0.0.1:8099/messages"}),
        PluginKind::SlotCalculator => json!({"closed_weekdays": [5]}),
        PluginKind::Theme => json!({"accent": "#0b5cad"}),
        PluginKind::Action => json!({"prefix": "seen: "}),
    }
}

/// Sample inputs by file name: every case of the kind.
fn inputs(kind: PluginKind) -> anyhow::Result<Vec<(String, Value)>> {
    Ok(match kind {
        PluginKind::Channel => {
            let message = |email: Option<&str>, phone: Option<&str>| {
                json!({
                    "recipient": {"name": "Erika Mustermann", "email": email, "phone": phone, "language": "en"},
                    "subject": "Your service request 1042",
                    "text": "Follow your request: https://portal.example/t/sample",
                    "html": null,
                    "links": {"tracking": "https://portal.example/t/sample"},
                })
            };
            vec![
                (
                    "email.json".into(),
                    message(Some("erika@example.com"), None),
                ),
                ("phone.json".into(), message(None, Some("+4915112345678"))),
                ("no-address.json".into(), message(None, None)),
            ]
        }
        PluginKind::SlotCalculator => vec![
            ("sla.json".into(), serde_json::to_value(slot_request(true))?),
            (
                "intervals.json".into(),
                serde_json::to_value(slot_request(false))?,
            ),
        ],
        PluginKind::Theme => {
            let texts = Texts::load()?;
            ["tracking", "booking", "not_found", "unavailable"]
                .into_iter()
                .map(|page| {
                    let model = view_model(page, texts.get("en"));
                    Ok((
                        format!("{page}.json"),
                        json!({"page": page, "language": "en", "view_model": model}),
                    ))
                })
                .collect::<anyhow::Result<_>>()?
        }
        PluginKind::Action => {
            let ticket = json!({"number": 1042, "title": "Printer jams on every page", "status": "received"});
            vec![
                (
                    "ticket-created.json".into(),
                    json!({"kind": "ticket.created", "occurred_at": 1_799_046_000_000_i64, "ticket": ticket}),
                ),
                (
                    "appointment-booked.json".into(),
                    json!({
                        "kind": "ticket.appointment_booked",
                        "occurred_at": 1_799_046_000_000_i64,
                        "ticket": ticket,
                        "contact": {"first_name": "Erika", "last_name": "Mustermann"},
                        "appointment": {"start": "2027-01-05T09:00:00Z", "end": "2027-01-05T11:00:00Z"},
                    }),
                ),
            ]
        }
    })
}

const HOUR_MS: i64 = 3_600_000;
/// Monday 2027-01-04, 00:00 UTC.
const MONDAY_MS: i64 = 1_799_020_800_000;

/// A working week in UTC, opening 08:00 to 17:00, with morning and afternoon intervals; the
/// ticket was created on Monday at 07:00 and one window on Tuesday is booked.
fn slot_request(sla: bool) -> Request {
    let days = (0..5)
        .map(|i| {
            let midnight = MONDAY_MS + i * 24 * HOUR_MS;
            let at = |hour: i64| midnight + hour * HOUR_MS;
            let interval = |name: &str, from: i64, to: i64| Interval {
                name: name.into(),
                window: Window {
                    start: at(from),
                    end: at(to),
                },
                capacity: 2,
            };
            Day {
                date: format!("2027-01-{:02}", 4 + i),
                weekday: u8::try_from(i + 1).unwrap_or(1),
                span: Window {
                    start: midnight,
                    end: at(24),
                },
                open: if sla {
                    vec![Window {
                        start: at(8),
                        end: at(17),
                    }]
                } else {
                    Vec::new()
                },
                intervals: if sla {
                    Vec::new()
                } else {
                    vec![interval("Morning", 8, 12), interval("Afternoon", 13, 17)]
                },
                offerable: true,
            }
        })
        .collect();
    let now = MONDAY_MS + 7 * HOUR_MS;
    Request {
        rules: if sla {
            Rules::Sla(SlaRules {
                response_minutes: 120,
                deadline_minutes: None,
                visit_minutes: 60,
                window_minutes: 120,
                step_minutes: 120,
                buffer_minutes: 0,
                capacity: 1,
            })
        } else {
            Rules::Intervals
        },
        max_per_day: None,
        ticket: json!({"type": "repair", "priority": "normal"}),
        created_at: now,
        now,
        not_before: now + HOUR_MS,
        time_zone: "UTC".into(),
        days,
        bookings: vec![Window {
            start: MONDAY_MS + 24 * HOUR_MS + 8 * HOUR_MS,
            end: MONDAY_MS + 24 * HOUR_MS + 10 * HOUR_MS,
        }],
    }
}

/// A page's view model for a sample ticket on its way, in English.
fn view_model(page: &str, texts: &std::collections::HashMap<String, String>) -> ViewModel {
    let text = |key: &str| texts.get(key).cloned().unwrap_or_default();
    let with_ticket = matches!(page, "tracking" | "booking");
    let current = Status::OnRoute;
    let steps = Status::ALL
        .iter()
        .map(|&status| StepView {
            status: status.as_str().to_string(),
            label: text(status.as_str()),
            at: (status <= current).then(|| "2027-01-04 09:00".to_string()),
            reached: status <= current,
            current: status == current,
        })
        .collect();
    let ticket = TicketView {
        number: 1042,
        title: "Printer jams on every page".into(),
        status: current.as_str().to_string(),
        status_label: text(current.as_str()),
        steps,
        visit: Some(VisitView {
            technician: "Jonas Weber".into(),
            eta: "2027-01-05 09:40".into(),
            position: "52.52000, 13.40500".into(),
        }),
        appointment: Some(ShownWindow {
            start: "2027-01-05 09:00".into(),
            end: "2027-01-05 11:00".into(),
        }),
        notices: vec![NoticeView {
            text: "The replacement roller is on board.".into(),
            at: "2027-01-04 16:12".into(),
        }],
    };
    let base = "/t/sample-token";
    ViewModel {
        page: page.to_string(),
        language: "en".into(),
        tenant: TenantView {
            name: "Easy Printer Solution GmbH".into(),
        },
        branding: Branding {
            logo_url: None,
            logo_link: None,
        },
        texts: texts.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
        salutation: if with_ticket {
            "Hello Erika Mustermann,".into()
        } else {
            String::new()
        },
        ticket: with_ticket.then_some(ticket),
        booking: BookingView {
            allowed: with_ticket,
            time_zone: "Europe/Berlin".into(),
            available: with_ticket,
            days: if page == "booking" {
                vec![DayView {
                    label: "Tuesday, 2027-01-05".into(),
                    windows: vec![
                        WindowOption {
                            value: "1799139600000-1799146800000".into(),
                            label: "10:00–12:00".into(),
                        },
                        WindowOption {
                            value: "1799150400000-1799157600000".into(),
                            label: "13:00–15:00".into(),
                        },
                    ],
                }]
            } else {
                Vec::new()
            },
            can_change: with_ticket,
            phone: "+49 30 1234567".into(),
            ..BookingView::default()
        },
        feedback: FeedbackView {
            allowed: false,
            submitted: None,
            error: None,
        },
        links: Links {
            page: if with_ticket {
                base.into()
            } else {
                String::new()
            },
            booking: with_ticket.then(|| format!("{base}/booking")),
            cancel_booking: with_ticket.then(|| format!("{base}/booking/cancel")),
            calendar: with_ticket.then(|| format!("{base}/appointment.ics")),
            feedback: None,
        },
        csrf_token: if with_ticket {
            "sample-csrf-token".into()
        } else {
            String::new()
        },
    }
}
