//! The `portico` command line.

use std::path::PathBuf;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use serde_json::json;

use crate::audit::{self, Change};
use crate::config::Config;
use crate::db::Db;
use crate::plugins::input;
use crate::plugins::manifest;
use crate::plugins::outbound::{Grants, Outbound, OutboundPolicy};
use crate::plugins::runtime::{Allocation, Call, Runtime};
use crate::plugins::{PluginKind, Plugins};
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
    Plugin(PluginCommand),
}

#[derive(Subcommand)]
enum PluginCommand {
    /// Make a package: the component with its manifest, in one file named after it.
    Pack(PackArgs),
    /// Validate a package: manifest, world, and that it compiles.
    Check {
        /// The package file.
        package: PathBuf,
    },
    /// Run a plugin once under the production limits and print its output, logs, duration and
    /// fuel used.
    Run(RunArgs),
    /// Upload a package to a Portico host's catalogue (platform-admin token).
    Publish(PublishArgs),
}

#[derive(Args)]
struct PackArgs {
    /// The manifest.
    #[arg(long, default_value = "portico-plugin.toml")]
    manifest: PathBuf,
    /// The component, from `cargo build --release --target wasm32-wasip2`.
    #[arg(long)]
    wasm: PathBuf,
    /// Where to write `<id>-<version>.portico`.
    #[arg(long, default_value = ".")]
    out: PathBuf,
}

#[derive(Args)]
struct RunArgs {
    /// A package, or a bare component (then --kind is required).
    plugin: PathBuf,
    /// The input, as JSON, of the plugin's kind.
    #[arg(long)]
    input: PathBuf,
    /// The tenant configuration, as JSON.
    #[arg(long)]
    config: Option<PathBuf>,
    /// Secrets, as a JSON object of names to values.
    #[arg(long)]
    secrets: Option<PathBuf>,
    /// The kind of a bare component: channel, slot-calculator, theme or action.
    #[arg(long)]
    kind: Option<String>,
    /// Grant HTTP to this host (repeatable), as a tenant would.
    #[arg(long = "grant-http")]
    grant_http: Vec<String>,
    /// Grant email sending.
    #[arg(long)]
    grant_smtp: bool,
}

#[derive(Args)]
struct PublishArgs {
    /// The package file.
    package: PathBuf,
    /// The host's URL.
    #[arg(long, env = "PORTICO_URL", default_value = "http://127.0.0.1:8080")]
    url: String,
    /// A platform-admin token.
    #[arg(long, env = "PORTICO_TOKEN")]
    token: String,
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
        Command::Plugin(command) => plugin(command, &config).await,
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

async fn plugin(command: PluginCommand, config: &Config) -> anyhow::Result<()> {
    match command {
        PluginCommand::Pack(args) => {
            let manifest_text = std::fs::read_to_string(&args.manifest)
                .with_context(|| format!("reading {}", args.manifest.display()))?;
            let wasm = std::fs::read(&args.wasm)
                .with_context(|| format!("reading {}", args.wasm.display()))?;
            let package = manifest::pack(&manifest_text, &wasm)?;
            let manifest = manifest::Manifest::parse(&manifest_text)?;
            let path = args
                .out
                .join(format!("{}-{}.portico", manifest.id, manifest.version));
            std::fs::write(&path, &package)
                .with_context(|| format!("writing {}", path.display()))?;
            println!(
                "{}\nsha256 {}",
                path.display(),
                crate::types::sha256_hex(&package)
            );
            Ok(())
        }
        PluginCommand::Check { package } => {
            let bytes = std::fs::read(&package)
                .with_context(|| format!("reading {}", package.display()))?;
            let (manifest, _) = manifest::unpack(&bytes)?;
            let runtime = sandbox(config)?;
            let plugin = runtime.load(manifest.kind, &bytes)?;
            anyhow::ensure!(
                plugin.wit == manifest.wit,
                "the manifest says WIT {} but the component was built against {}",
                manifest.wit,
                plugin.wit
            );
            println!(
                "ok: {} {} ({}), sha256 {}",
                manifest.id,
                manifest.version,
                manifest.kind.as_str(),
                crate::types::sha256_hex(&bytes)
            );
            Ok(())
        }
        PluginCommand::Run(args) => run_plugin(args, config).await,
        PluginCommand::Publish(args) => {
            let bytes = std::fs::read(&args.package)
                .with_context(|| format!("reading {}", args.package.display()))?;
            let response = reqwest::Client::new()
                .post(format!("{}/api/v1/plugins", args.url.trim_end_matches('/')))
                .bearer_auth(&args.token)
                .header("content-type", "application/octet-stream")
                .body(bytes)
                .send()
                .await?;
            let status = response.status();
            let body: serde_json::Value = response.json().await.unwrap_or_default();
            anyhow::ensure!(
                status.is_success(),
                "publishing failed ({status}): {}",
                body["message"].as_str().unwrap_or("no message")
            );
            println!(
                "published {} {} (sha256 {})",
                body["plugin_id"], body["version"], body["sha256"]
            );
            Ok(())
        }
    }
}

/// The sandbox `plugin check` and `plugin run` use: the host's own, with the host's outbound
/// policy, but no compile cache.
fn sandbox(config: &Config) -> anyhow::Result<Runtime> {
    let policy = OutboundPolicy {
        allow_private: config.plugins_allow_private_network,
        allow_http: config.plugins_allow_http,
        smtp: config.smtp()?,
    };
    Runtime::new(None, Outbound::new(policy), Allocation::Pooling)
}

async fn run_plugin(args: RunArgs, config: &Config) -> anyhow::Result<()> {
    let read = |path: &PathBuf| {
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))
    };
    let bytes = std::fs::read(&args.plugin)
        .with_context(|| format!("reading {}", args.plugin.display()))?;
    let kind = match (manifest::unpack(&bytes), &args.kind) {
        (Ok((manifest, _)), _) => manifest.kind,
        (Err(_), Some(kind)) => {
            PluginKind::parse(kind).with_context(|| format!("unknown kind {kind:?}"))?
        }
        (Err(e), None) => anyhow::bail!("{e}; for a bare component, pass --kind"),
    };
    let input: serde_json::Value =
        serde_json::from_str(&read(&args.input)?).context("the input is not JSON")?;
    let plugin_config = match &args.config {
        Some(path) => read(path)?,
        None => "{}".into(),
    };
    let secrets: Vec<(String, String)> = match &args.secrets {
        Some(path) => {
            serde_json::from_str::<std::collections::BTreeMap<String, String>>(&read(path)?)
                .context("secrets must be a JSON object of strings")?
                .into_iter()
                .collect()
        }
        None => Vec::new(),
    };
    let grants = Grants {
        http_hosts: args.grant_http,
        smtp: args.grant_smtp,
    };
    let runtime = sandbox(config)?;
    let plugin = runtime.load(kind, &bytes)?;
    let limits = Plugins::limits_for(config, kind);
    let call = Call {
        limits: &limits,
        grants,
        config: &plugin_config,
        secrets: &secrets,
        idempotency_key: "portico-plugin-run",
        tenant: "",
    };
    let (result, report) = input::execute(&runtime, &plugin, call, input).await?;
    for line in &report.logs {
        eprintln!("log {}: {}", line.level, line.message);
    }
    eprintln!(
        "duration {} µs, fuel used {}",
        report.duration_us,
        report.fuel_used.map_or("n/a".into(), |f| f.to_string())
    );
    match result {
        Ok(output) => {
            println!("{}", serde_json::to_string_pretty(&output)?);
            Ok(())
        }
        Err(e) => anyhow::bail!("{} ({})", e, e.code()),
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
