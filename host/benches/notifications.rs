//! Notifications under load: tickets per second from their creation through the API, the
//! automated-actions consumer, the delivery outbox and the email channel plugin (in the wasm
//! sandbox) to an SMTP server on loopback, on SQLite and on PostgreSQL, beside the floor: the
//! same number of messages sent to the same server from one process with lettre, once over a
//! connection pool and once with a connection per message (as the host's SMTP capability does),
//! with as many in flight as the delivery worker keeps.
//!
//! Every message is checked to have arrived, and every delivery to be recorded as sent. Run
//! with `cargo bench -p portico-host --bench notifications`; the table goes to stdout as
//! markdown, progress to stderr.

use std::time::{Duration, Instant};

use anyhow::Context;
use futures_util::StreamExt;
use lettre::message::{Mailbox, MultiPart};
use lettre::transport::smtp::client::AsyncSmtpConnection;
use lettre::transport::smtp::extension::ClientId;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use reqwest::Method;
use serde_json::{Value, json};
use support::{Api, drop_database, postgres_database};

mod support;
// The integration tests' SMTP server; the benchmark uses only part of it.
#[allow(dead_code)]
#[path = "../../tests/api/support/smtp.rs"]
mod smtp;

/// Tickets (and so messages) per run.
const MESSAGES: usize = 400;
/// Messages in flight: the delivery worker's concurrency.
const IN_FLIGHT: usize = 8;
/// Tickets created through the API at once.
const CREATING: usize = 8;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let sink = smtp::SmtpSink::start().await;
    let scratch = std::env::temp_dir().join(format!("portico-bench-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&scratch)?;
    let mut rows = Vec::new();
    for reuse in [true, false] {
        rows.push(floor(&sink, reuse).await?);
    }
    let sqlite = format!("sqlite://{}?mode=rwc", scratch.join("bench.db").display());
    rows.push(pipeline("SQLite", &sqlite, &scratch.join("sqlite"), &sink).await?);
    match postgres_database().await {
        Ok((server, name, url)) => {
            let result = pipeline("PostgreSQL", &url, &scratch.join("postgres"), &sink).await;
            drop_database(&server, &name).await;
            rows.push(result?);
        }
        Err(reason) => eprintln!("PostgreSQL row skipped: {reason}"),
    }
    std::fs::remove_dir_all(&scratch).ok();

    println!("| path | messages | seconds | messages/s |");
    println!("|---|---|---|---|");
    for (path, seconds) in rows {
        println!(
            "| {path} | {MESSAGES} | {seconds:.2} | {:.0} |",
            MESSAGES as f64 / seconds
        );
    }
    Ok(())
}

/// A message as the email channel sends it: text and HTML alternatives with a link.
fn message(i: usize) -> anyhow::Result<Message> {
    Ok(Message::builder()
        .from("portal@bench.example".parse::<Mailbox>()?)
        .to(format!("person{i}@example.com").parse::<Mailbox>()?)
        .subject(format!("Ticket {i}"))
        .multipart(MultiPart::alternative_plain_html(
            format!("Ticket {i}: https://bench.portico.test/t/token"),
            format!("<p>Ticket {i}: <a href=\"https://bench.portico.test/t/token\">track</a></p>"),
        ))?)
}

/// The floor: lettre sending the messages straight to the server, [`IN_FLIGHT`] at a time,
/// either over that many long-lived connections or with a connection per message (what the
/// transport does, and so the host's SMTP capability).
async fn floor(sink: &smtp::SmtpSink, reuse: bool) -> anyhow::Result<(String, f64)> {
    let path = if reuse {
        "lettre, 8 long-lived connections (floor)"
    } else {
        "lettre, a connection per message"
    };
    eprintln!("{path}: sending {MESSAGES}");
    let before = sink.received().len();
    let started = Instant::now();
    if reuse {
        let mut senders = Vec::new();
        for lane in 0..IN_FLIGHT {
            let port = sink.port;
            senders.push(tokio::spawn(async move {
                let mut connection = AsyncSmtpConnection::connect_tokio1(
                    ("127.0.0.1", port),
                    None,
                    &ClientId::default(),
                    None,
                    None,
                )
                .await?;
                for i in (lane..MESSAGES).step_by(IN_FLIGHT) {
                    let message = message(i)?;
                    connection
                        .send(message.envelope(), &message.formatted())
                        .await?;
                }
                connection.quit().await?;
                anyhow::Ok(())
            }));
        }
        for sender in senders {
            sender.await??;
        }
    } else {
        let transport = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous("127.0.0.1")
            .port(sink.port)
            .build();
        let results: Vec<anyhow::Result<()>> = futures_util::stream::iter(0..MESSAGES)
            .map(|i| {
                let transport = transport.clone();
                async move {
                    transport.send(message(i)?).await?;
                    Ok(())
                }
            })
            .buffer_unordered(IN_FLIGHT)
            .collect()
            .await;
        results.into_iter().collect::<anyhow::Result<Vec<()>>>()?;
    }
    let elapsed = started.elapsed().as_secs_f64();
    anyhow::ensure!(sink.received().len() - before == MESSAGES, "messages lost");
    Ok((path.to_string(), elapsed))
}

/// The whole way: tickets created through the API until every message has arrived.
async fn pipeline(
    backend: &str,
    database_url: &str,
    scratch: &std::path::Path,
    sink: &smtp::SmtpSink,
) -> anyhow::Result<(String, f64)> {
    std::fs::create_dir_all(scratch)?;
    let api = support::serve(portico::config::Config {
        smtp_server: Some(sink.address()),
        smtp_from: "portal@bench.example".into(),
        deliveries: portico::config::DeliverySettings {
            per_minute: u32::MAX,
            per_day: u32::MAX,
            ..Default::default()
        },
        ..support::config(database_url, scratch)
    })
    .await?;
    let (tenant, project) = fixture(&api).await?;
    eprintln!("{backend}: {MESSAGES} tickets through the pipeline");
    let before = sink.received().len();
    let started = Instant::now();
    let tickets = format!("{tenant}/tickets");
    let created: Vec<anyhow::Result<Value>> = futures_util::stream::iter(0..MESSAGES)
        .map(|i| {
            api.call(
                Method::POST,
                &tickets,
                json!({"project_id": project, "title": format!("Ticket {i}"),
                    "contact": {"first_name": "P", "last_name": "Q", "email": format!("person{i}@example.com")}}),
            )
        })
        .buffer_unordered(CREATING)
        .collect()
        .await;
    created.into_iter().collect::<anyhow::Result<Vec<_>>>()?;
    while sink.received().len() - before < MESSAGES {
        anyhow::ensure!(
            started.elapsed() < Duration::from_secs(600),
            "messages did not arrive"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let elapsed = started.elapsed().as_secs_f64();
    let log = api
        .call(
            Method::GET,
            &format!("{tenant}/deliveries?status=sent&limit=200"),
            Value::Null,
        )
        .await?;
    anyhow::ensure!(
        log["items"].as_array().is_some_and(|i| i.len() == 200),
        "the delivery log records the sends"
    );
    Ok((
        format!("{backend}: API → consumer → outbox → email plugin → SMTP"),
        elapsed,
    ))
}

/// A tenant with a project and the action "email the affected person a tracking link".
async fn fixture(api: &Api) -> anyhow::Result<(String, String)> {
    let tenant = api
        .call(Method::POST, "/api/v1/tenants", json!({"slug": "bench", "display_name": "Bench Printers", "time_zone": "Europe/Berlin", "language": "en"}))
        .await?;
    let t = format!(
        "/api/v1/tenants/{}",
        tenant["id"].as_str().context("tenant id")?
    );
    let project = api
        .call(
            Method::POST,
            &format!("{t}/projects"),
            json!({"name": "Printers"}),
        )
        .await?;
    let project = project["id"].as_str().context("project id")?.to_string();
    let installs = api
        .call(Method::GET, &format!("{t}/plugins"), Value::Null)
        .await?;
    let email = installs["items"]
        .as_array()
        .and_then(|i| i.iter().find(|i| i["plugin_id"] == "email"))
        .map(|i| i["id"].clone())
        .context("the email channel is installed")?;
    api.call(
        Method::POST,
        &format!("{t}/automated-actions"),
        json!({"name": "Tracking links", "object": "ticket", "trigger": {"kind": "created"},
            "steps": [{"kind": "notify", "channel_install_id": email, "to": ["affected_person"],
                "message": {"subject": "Ticket {{ ticket.number }}: {{ ticket.title }}",
                    "html": "<p>Hello {{ person.first_name }},</p><p><a href=\"{{ portal.tracking_link }}\">Follow your ticket</a></p>"}}]}),
    )
    .await?;
    Ok((t, project))
}
