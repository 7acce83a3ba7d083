//! The `portico` command line.

mod plugin;
mod scaffold;

use std::path::PathBuf;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use serde_json::json;

use crate::audit::{self, Change};
use crate::config::Config;
use crate::db::Db;
use crate::tenants::{self, NewTenant};
use crate::types::{Email, Language, Slug, TimeZoneName};
use crate::{AppState, auth};

/// Portico: branded customer portals for service companies, on one host.
#[derive(Parser)]
#[command(name = "portico", version, about, long_about = None)]
pub struct Cli {
    /// TOML configuration file; PORTICO_* environment variables override it.
    #[arg(long, env = "PORTICO_CONFIG")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Apply migrations and serve HTTP (default: SQLite in ./data, 127.0.0.1:8080).
    Serve,
    /// Set up (or reuse) the demo tenant "Easy Printer Solution GmbH" with tickets in different
    /// steps, print their tracking links and an admin token, and serve.
    Demo,
    /// Apply pending database migrations and exit.
    Migrate,
    /// Manage tenants.
    #[command(subcommand)]
    Tenant(TenantCommand),
    /// Manage API tokens.
    #[command(subcommand)]
    Token(TokenCommand),
    /// Build, check, run and publish plugins.
    #[command(subcommand)]
    Plugin(plugin::PluginCommand),
}

#[derive(Subcommand)]
enum TenantCommand {
    /// Create a tenant.
    Create(CreateTenantArgs),
    /// List tenants.
    List,
}

#[derive(Args)]
struct CreateTenantArgs {
    /// Short name; the tenant's portals answer at <slug>.<base domain>.
    #[arg(long)]
    slug: String,
    /// Name shown to end users.
    #[arg(long)]
    name: String,
    /// Default IANA time zone of the tenant's portals.
    #[arg(long, default_value = "UTC")]
    time_zone: String,
    /// Default portal language: en, de or es.
    #[arg(long, default_value = "en")]
    language: String,
}

#[derive(Subcommand)]
enum TokenCommand {
    /// Issue an API token and print it once. With --platform, this bootstraps the first
    /// platform-admin token of a fresh install.
    Create(CreateTokenArgs),
}

#[derive(Args)]
#[group(id = "owner", required = true, args = ["platform", "tenant"])]
struct CreateTokenArgs {
    /// A platform-admin token: manages tenants and acts in any tenant.
    #[arg(long)]
    platform: bool,
    /// Slug or id of the tenant whose staff user gets the token (with --user).
    #[arg(long, requires = "user")]
    tenant: Option<String>,
    /// Email of that staff user.
    #[arg(long)]
    user: Option<String>,
    /// What the token is for.
    #[arg(long, default_value = "cli")]
    name: String,
    /// Days until it expires; without it, it lasts until revoked.
    #[arg(long)]
    expires_in_days: Option<u32>,
}

/// How the audit log names changes made from the command line.
const CLI_ACTOR: &str = "command line";

/// Parses arguments and runs the command.
pub async fn run() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let config = Config::load(cli.config.as_deref())?;
    match cli.command {
        Command::Serve => serve(config, false).await,
        Command::Demo => serve(config, true).await,
        Command::Migrate => {
            Db::open(&config).await?;
            let url = config
                .database_owner_url
                .clone()
                .unwrap_or_else(|| config.database_url());
            println!("migrations applied to {}", crate::db::redact(url.expose()));
            Ok(())
        }
        Command::Tenant(TenantCommand::Create(args)) => {
            let db = Db::open(&config).await?;
            let new = NewTenant {
                slug: Slug::parse(&args.slug)?,
                display_name: args.name,
                time_zone: TimeZoneName::parse(&args.time_zone)?,
                language: Language::parse(&args.language)?,
            };
            // The same service the API calls: a running host hears of the new tenant through
            // its event (NOTIFY on PostgreSQL; the events table on SQLite).
            let (tenant, _) =
                tenants::service::create(&crate::event_bus(db), CLI_ACTOR, new, None).await?;
            println!("{}", serde_json::to_string_pretty(&tenant)?);
            Ok(())
        }
        Command::Tenant(TenantCommand::List) => {
            let db = Db::open(&config).await?;
            let mut after = String::new();
            loop {
                let page = tenants::store::list(&db.pool, &after, 200).await?;
                for t in &page {
                    println!("{}\t{}\t{:?}\t{}", t.id, t.slug, t.status, t.display_name);
                }
                match page.last() {
                    Some(last) if page.len() == 200 => after = last.id.to_string(),
                    _ => return Ok(()),
                }
            }
        }
        Command::Plugin(command) => plugin::run(command, &config).await,
        Command::Token(TokenCommand::Create(args)) => {
            let db = Db::open(&config).await?;
            let events = crate::event_bus(db.clone());
            let mut tx = events.begin().await?;
            let issued = if args.platform {
                auth::issue_token(&mut tx, None, &args.name, args.expires_in_days).await?
            } else {
                let ident = args
                    .tenant
                    .context("--tenant is required without --platform")?;
                let tenant = tenants::store::find(&db.pool, &ident).await?;
                let email = Email::parse(&args.user.context("--user is required with --tenant")?)?;
                let user = auth::find_user_by_email(&db.pool, &tenant.id, &email).await?;
                auth::issue_token(
                    &mut tx,
                    Some((&tenant.id, &user.id)),
                    &args.name,
                    args.expires_in_days,
                )
                .await?
            };
            let change = Change {
                tenant: None,
                action: "api_token.create",
                target: &issued.record.id,
                before: None,
                after: Some(json!({"name": issued.record.name, "platform": args.platform})),
            };
            audit::record(&mut tx, CLI_ACTOR, change).await?;
            tx.commit().await?;
            println!("{}", issued.token);
            Ok(())
        }
    }
}

async fn serve(mut config: Config, demo: bool) -> anyhow::Result<()> {
    if demo && config.smtp_server.is_none() && config.email_outbox_dir.is_none() {
        // Zero set-up: the demo's emails are kept as files, and shown in the delivery log.
        config.email_outbox_dir = Some(config.data_dir.join("outbox"));
    }
    let listen = config.listen;
    let state = AppState::build(config).await?;
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("binding {listen}"))?;
    let address = listener.local_addr()?;
    tracing::info!(%address, "serving");
    let server = tokio::spawn(crate::serve(listener, state.clone(), async {
        let _ = tokio::signal::ctrl_c().await;
    }));
    if demo {
        print!(
            "{}",
            crate::demo::set_up(&state, &format!("http://{address}")).await?
        );
    }
    println!("Portico is serving on http://{address}");
    server.await?
}
