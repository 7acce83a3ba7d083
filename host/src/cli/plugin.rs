//! `portico plugin`: the plugin author's path from an empty folder to an install in a tenant,
//! `new`, `cargo build`, `run`, `pack`, `publish --install`, with the checks production makes.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::{Args, Subcommand};
use serde_json::{Value, json};

use super::scaffold;
use crate::config::Config;
use crate::plugins::input;
use crate::plugins::manifest::{self, Manifest};
use crate::plugins::outbound::{Grants, MailSettings, MailTransport, Outbound, OutboundPolicy};
use crate::plugins::runtime::{Allocation, Call, LoadedPlugin, RunReport, Runtime};
use crate::plugins::{PluginError, PluginKind, Plugins};

#[derive(Subcommand)]
pub enum PluginCommand {
    /// Start a plugin: a crate that builds as it is, its manifest, sample inputs for every case
    /// of its kind, and a README with the next commands.
    New(NewArgs),
    /// Print the JSON Schema of `plugin run`'s input for a kind, or of the theme view model.
    Schema {
        /// channel, slot-calculator, theme or action; or view-model.
        kind: String,
    },
    /// Make a package: the component with its manifest, in one file named after it. Refuses what
    /// `check` and the catalogue refuse.
    Pack(PackArgs),
    /// Validate a package as the catalogue does: size, manifest, world, WIT version, and that it
    /// compiles.
    Check {
        /// The package file.
        package: PathBuf,
    },
    /// Run a plugin once with the production checks and limits and print its output, logs,
    /// duration and fuel used.
    Run(RunArgs),
    /// Upload a package to a Portico host's catalogue (platform-admin token), and with
    /// --install, install (or upgrade) it in a tenant.
    Publish(PublishArgs),
    /// Fetch a failed production run's kept input from a host and run it against a local build,
    /// printing the outcome then and now side by side.
    Replay(ReplayArgs),
}

#[derive(Args)]
pub struct NewArgs {
    /// channel, slot-calculator, theme or action.
    kind: String,
    /// The plugin's id and crate name: lower-case letters, digits and dashes.
    name: String,
    /// Where to create it (default: ./<name>).
    #[arg(long)]
    path: Option<PathBuf>,
    /// The `sdk/` folder of a Portico checkout, for the crate's dependency (default: the one
    /// this `portico` was built from).
    #[arg(long)]
    sdk: Option<PathBuf>,
}

#[derive(Args)]
pub struct PackArgs {
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
pub struct RunArgs {
    /// A package, or a bare component with its manifest (--manifest).
    plugin: PathBuf,
    /// The input, as JSON, of the plugin's kind (`portico plugin schema <kind>`).
    #[arg(long)]
    input: PathBuf,
    /// The manifest of a bare component (default: ./portico-plugin.toml, if there is one).
    #[arg(long)]
    manifest: Option<PathBuf>,
    /// The kind of a bare component without a manifest: then the configuration is not checked.
    #[arg(long)]
    kind: Option<String>,
    /// The tenant configuration, as JSON, checked against the manifest's `config_schema`.
    #[arg(long)]
    config: Option<PathBuf>,
    #[command(flatten)]
    local: LocalFlags,
}

/// What a local run is given besides its input and configuration: secrets, the tenant's
/// grants, and what the operator of a host would open.
#[derive(Args)]
pub struct LocalFlags {
    /// Secrets, as a JSON object of names to values (a run record never keeps the install's).
    #[arg(long)]
    secrets: Option<PathBuf>,
    /// Grant HTTP to this host (repeatable), as a tenant would; within the manifest's
    /// `http_hosts`.
    #[arg(long = "grant-http")]
    grant_http: Vec<String>,
    /// Grant email sending, as a tenant would.
    #[arg(long)]
    grant_smtp: bool,
    /// Local only: allow plain `http://` URLs, as an operator's `plugins_allow_http` does.
    #[arg(long)]
    allow_http: bool,
    /// Local only: allow loopback and private addresses (a receiver on this machine), as an
    /// operator's `plugins_allow_private_network` does.
    #[arg(long)]
    allow_private_network: bool,
}

impl LocalFlags {
    fn grants(&self) -> Grants {
        Grants {
            http_hosts: self.grant_http.clone(),
            smtp: self.grant_smtp,
        }
    }
}

#[derive(Args)]
pub struct PublishArgs {
    /// The package file.
    package: PathBuf,
    /// The host's URL.
    #[arg(long, env = "PORTICO_URL", default_value = "http://127.0.0.1:8080")]
    url: String,
    /// A platform-admin token.
    #[arg(long, env = "PORTICO_TOKEN")]
    token: String,
    /// Then install the version in this tenant (slug or id), or upgrade its install.
    #[arg(long)]
    install: Option<String>,
    /// A token of that tenant's administrator, if not the platform token.
    #[arg(long, env = "PORTICO_TENANT_TOKEN")]
    tenant_token: Option<String>,
    /// The install's configuration, as JSON (with --install).
    #[arg(long, requires = "install")]
    config: Option<PathBuf>,
    /// The install's secrets, as a JSON object of names to values (with --install).
    #[arg(long, requires = "install")]
    secrets: Option<PathBuf>,
    /// Approve HTTP to this host (repeatable; with --install).
    #[arg(long = "grant-http", requires = "install")]
    grant_http: Vec<String>,
    /// Approve email sending (with --install).
    #[arg(long, requires = "install")]
    grant_smtp: bool,
    /// Keep the input of each failed run for `plugin replay` (with --install).
    #[arg(long, requires = "install")]
    keep_failed_inputs: bool,
}

#[derive(Args)]
pub struct ReplayArgs {
    /// The run's id (from the run records: GET /api/v1/tenants/{tenant}/plugin-runs).
    run: String,
    /// The new build: a package, or a bare component.
    plugin: PathBuf,
    /// The tenant the run belongs to (slug or id).
    #[arg(long)]
    tenant: String,
    /// The host's URL.
    #[arg(long, env = "PORTICO_URL", default_value = "http://127.0.0.1:8080")]
    url: String,
    /// A token of staff who may change the tenant's plugins (kept inputs hold customers' data).
    #[arg(long, env = "PORTICO_TOKEN")]
    token: String,
    /// The manifest of a bare component (default: ./portico-plugin.toml, if there is one).
    #[arg(long)]
    manifest: Option<PathBuf>,
    #[command(flatten)]
    local: LocalFlags,
}

pub async fn run(command: PluginCommand, config: &Config) -> anyhow::Result<()> {
    match command {
        PluginCommand::New(args) => {
            let kind = parse_kind(&args.kind)?;
            let dir = args.path.unwrap_or_else(|| PathBuf::from(&args.name));
            let sdk = match args.sdk {
                Some(sdk) => sdk,
                None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../sdk"),
            };
            let sdk = std::fs::canonicalize(&sdk).with_context(|| {
                format!(
                    "the SDK is not at {}; pass --sdk with the sdk/ folder of a Portico checkout",
                    sdk.display()
                )
            })?;
            let files = scaffold::files(kind, &args.name, &sdk)?;
            scaffold::write(&dir, &files)?;
            println!(
                "created {} ({} plugin {}): see {}",
                dir.display(),
                kind.as_str(),
                args.name,
                dir.join("README.md").display()
            );
            Ok(())
        }
        PluginCommand::Schema { kind } => {
            let schema = if kind == "view-model" {
                input::view_model_schema()
            } else {
                input::input_schema(parse_kind(&kind)?)
            };
            println!("{}", serde_json::to_string_pretty(&schema)?);
            Ok(())
        }
        PluginCommand::Pack(args) => {
            let manifest_text = read_text(&args.manifest)?;
            let wasm = read_bytes(&args.wasm)?;
            let package = manifest::pack(&manifest_text, &wasm)?;
            let (manifest, _, _) = sandbox(config, false, false)?
                .check_package(&package)
                .map_err(|why| anyhow::anyhow!("not packed: {why}"))?;
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
            let bytes = read_bytes(&package)?;
            let (manifest, _, _) = sandbox(config, false, false)?
                .check_package(&bytes)
                .map_err(anyhow::Error::msg)?;
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
        PluginCommand::Publish(args) => publish(args).await,
        PluginCommand::Replay(args) => replay(args, config).await,
    }
}

fn parse_kind(kind: &str) -> anyhow::Result<PluginKind> {
    PluginKind::parse(kind).with_context(|| {
        format!("unknown kind {kind:?}: kinds are channel, slot-calculator, theme and action")
    })
}

fn read_text(path: &Path) -> anyhow::Result<String> {
    std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))
}

fn read_bytes(path: &Path) -> anyhow::Result<Vec<u8>> {
    std::fs::read(path).with_context(|| format!("reading {}", path.display()))
}

fn read_json(path: &Path, what: &str) -> anyhow::Result<Value> {
    serde_json::from_str(&read_text(path)?)
        .with_context(|| format!("{what} ({}) is not JSON", path.display()))
}

fn read_secrets(path: Option<&PathBuf>) -> anyhow::Result<BTreeMap<String, String>> {
    match path {
        Some(path) => serde_json::from_str(&read_text(path)?)
            .context("secrets must be a JSON object of names to strings"),
        None => Ok(BTreeMap::new()),
    }
}

/// The sandbox `plugin check`, `pack` and `run` use: the host's own, with the host's outbound
/// policy (opened further by `run`'s local-only flags), but no compile cache.
fn sandbox(config: &Config, allow_http: bool, allow_private: bool) -> anyhow::Result<Runtime> {
    sandbox_for(config, allow_http, allow_private, config.smtp()?)
}

/// The sandbox `plugin replay` uses: email goes to `outbox` as files, never to anyone.
fn sandbox_with_outbox(
    config: &Config,
    allow_http: bool,
    allow_private: bool,
    outbox: &Path,
) -> anyhow::Result<Runtime> {
    let smtp = MailSettings {
        transport: MailTransport::Directory(outbox.to_path_buf()),
        from: "replay@portico.invalid".into(),
    };
    std::fs::create_dir_all(outbox).with_context(|| format!("creating {}", outbox.display()))?;
    sandbox_for(config, allow_http, allow_private, Some(smtp))
}

fn sandbox_for(
    config: &Config,
    allow_http: bool,
    allow_private: bool,
    smtp: Option<MailSettings>,
) -> anyhow::Result<Runtime> {
    let policy = OutboundPolicy {
        allow_private: config.plugins_allow_private_network || allow_private,
        allow_http: config.plugins_allow_http || allow_http,
        smtp,
    };
    Runtime::new(None, Outbound::new(policy), Allocation::Pooling)
}

async fn run_plugin(args: RunArgs, config: &Config) -> anyhow::Result<()> {
    let bytes = read_bytes(&args.plugin)?;
    let runtime = sandbox(
        config,
        args.local.allow_http,
        args.local.allow_private_network,
    )?;
    let manifest = manifest_of(&bytes, args.manifest.as_ref())?;
    let kind = match (&manifest, &args.kind) {
        (Some(manifest), Some(kind)) if parse_kind(kind)? != manifest.kind => anyhow::bail!(
            "--kind {kind} contradicts the manifest, which says {}",
            manifest.kind.as_str()
        ),
        (Some(manifest), _) => manifest.kind,
        (None, Some(kind)) => parse_kind(kind)?,
        (None, None) => anyhow::bail!(
            "a bare component needs its manifest (--manifest, or portico-plugin.toml here) or --kind"
        ),
    };
    let plugin = runtime.load(kind, &bytes)?;
    let plugin_config = match &args.config {
        Some(path) => read_json(path, "the configuration")?,
        None => json!({}),
    };
    let grants = args.local.grants();
    let secrets = read_secrets(args.local.secrets.as_ref())?;
    check_like_production(
        manifest.as_ref(),
        &plugin,
        &plugin_config,
        &grants,
        &secrets,
    )?;
    let input = read_json(&args.input, "the input")?;
    let local = Local {
        runtime: &runtime,
        config,
        grants,
        secrets,
    };
    let (result, report) = local.execute(&plugin, &plugin_config, input).await?;
    report_on_stderr(&report);
    match result {
        Ok(output) => {
            println!("{}", serde_json::to_string_pretty(&output)?);
            Ok(())
        }
        Err(e) => anyhow::bail!("{} ({})", e, e.code()),
    }
}

/// The manifest a package carries; for a bare component, the one named, or the one beside it.
fn manifest_of(bytes: &[u8], named: Option<&PathBuf>) -> anyhow::Result<Option<Manifest>> {
    if let Ok((manifest, _)) = manifest::unpack(bytes) {
        return Ok(Some(manifest));
    }
    let beside = PathBuf::from("portico-plugin.toml");
    let path = match named {
        Some(path) => path.clone(),
        None if beside.exists() => beside,
        None => return Ok(None),
    };
    let manifest =
        Manifest::parse(&read_text(&path)?).with_context(|| format!("in {}", path.display()))?;
    Ok(Some(manifest))
}

/// What the catalogue and an install check before a plugin runs in production: the kind and WIT
/// version the manifest names, and what an install must fit ([`Manifest::check_install`]).
fn check_like_production(
    manifest: Option<&Manifest>,
    plugin: &LoadedPlugin,
    plugin_config: &Value,
    grants: &Grants,
    secrets: &BTreeMap<String, String>,
) -> anyhow::Result<()> {
    let Some(manifest) = manifest else {
        eprintln!("note: without a manifest, the configuration is not checked against a schema");
        return Ok(());
    };
    anyhow::ensure!(
        plugin.kind == manifest.kind,
        "the component is a {}, but the manifest says {}",
        plugin.kind.as_str(),
        manifest.kind.as_str()
    );
    anyhow::ensure!(
        plugin.wit == manifest.wit,
        "the manifest says WIT {} but the component was built against {}",
        manifest.wit,
        plugin.wit
    );
    manifest
        .check_install(plugin_config, grants, secrets.keys())
        .map_err(|problem| {
            anyhow::anyhow!(
                "{} ({}): a tenant could not install it so",
                problem.message,
                problem.code
            )
        })
}

/// A run on this machine, as production would make it.
struct Local<'a> {
    runtime: &'a Runtime,
    config: &'a Config,
    grants: Grants,
    secrets: BTreeMap<String, String>,
}

impl Local<'_> {
    async fn execute(
        self,
        plugin: &LoadedPlugin,
        plugin_config: &Value,
        input: Value,
    ) -> anyhow::Result<(Result<Value, PluginError>, RunReport)> {
        let limits = Plugins::limits_for(self.config, plugin.kind);
        let plugin_config = plugin_config.to_string();
        let secrets: Vec<(String, String)> = self.secrets.into_iter().collect();
        let call = Call {
            limits: &limits,
            grants: self.grants,
            config: &plugin_config,
            secrets: &secrets,
            idempotency_key: "portico-plugin-run",
            tenant: "",
        };
        Ok(input::execute(self.runtime, plugin, call, input).await?)
    }
}

fn report_on_stderr(report: &RunReport) {
    for line in &report.logs {
        eprintln!("log {}: {}", line.level, line.message);
    }
    eprintln!(
        "duration {} µs, fuel used {}",
        report.duration_us,
        report.fuel_used.map_or("n/a".into(), |f| f.to_string())
    );
}

/// What `plugin replay` reads of a kept run.
#[derive(serde::Deserialize)]
struct KeptRun {
    run: KeptRunRecord,
    input: Value,
    config: Value,
}

#[derive(serde::Deserialize)]
struct KeptRunRecord {
    plugin_id: String,
    version: String,
    kind: String,
    outcome: String,
    message: Option<String>,
    at: String,
}

async fn replay(args: ReplayArgs, config: &Config) -> anyhow::Result<()> {
    let url = format!(
        "{}/api/v1/tenants/{}/plugin-runs/{}/replay",
        args.url.trim_end_matches('/'),
        args.tenant,
        args.run
    );
    let (status, body) = call_api(
        reqwest::Client::new().get(url).bearer_auth(&args.token),
        "fetching the run",
    )
    .await?;
    anyhow::ensure!(
        status.is_success(),
        "fetching the run failed ({status}): {}",
        body["message"].as_str().unwrap_or("no message")
    );
    let kept: KeptRun = serde_json::from_value(body).context("the host's answer")?;
    let kind = parse_kind(&kept.run.kind)?;
    let bytes = read_bytes(&args.plugin)?;
    let manifest = manifest_of(&bytes, args.manifest.as_ref())?;
    if let Some(manifest) = &manifest
        && manifest.id != kept.run.plugin_id
    {
        eprintln!(
            "note: the run was of {}, this build is {}",
            kept.run.plugin_id, manifest.id
        );
    }
    // The kept input names a real customer: whatever a replayed channel sends goes to a folder.
    let outbox = std::env::temp_dir().join(format!("portico-replay-{}", args.run));
    let runtime = sandbox_with_outbox(
        config,
        args.local.allow_http,
        args.local.allow_private_network,
        &outbox,
    )?;
    let plugin = runtime.load(kind, &bytes)?;
    let grants = args.local.grants();
    let secrets = read_secrets(args.local.secrets.as_ref())?;
    check_like_production(manifest.as_ref(), &plugin, &kept.config, &grants, &secrets)?;
    let local = Local {
        runtime: &runtime,
        config,
        grants,
        secrets,
    };
    let (result, report) = local.execute(&plugin, &kept.config, kept.input).await?;
    report_on_stderr(&report);
    println!(
        "run {} of {} {} ({}), at {}",
        args.run, kept.run.plugin_id, kept.run.version, kept.run.kind, kept.run.at
    );
    println!(
        "then: {}{}",
        kept.run.outcome,
        kept.run
            .message
            .map(|m| format!(": {m}"))
            .unwrap_or_default()
    );
    if args.local.grant_smtp {
        eprintln!("email it sent is in {}", outbox.display());
    }
    match result {
        Ok(output) => {
            println!("now:  ok: {output}");
            Ok(())
        }
        Err(e) => {
            println!("now:  {}: {e}", e.code());
            anyhow::bail!("the new build fails too ({})", e.code())
        }
    }
}

/// Sends a request to the host's API and returns the JSON answer, or the API's error message.
async fn call_api(
    request: reqwest::RequestBuilder,
    what: &str,
) -> anyhow::Result<(reqwest::StatusCode, Value)> {
    let response = request
        .send()
        .await
        .with_context(|| format!("{what}: the host did not answer"))?;
    let status = response.status();
    let body: Value = response.json().await.unwrap_or_default();
    Ok((status, body))
}

async fn publish(args: PublishArgs) -> anyhow::Result<()> {
    let bytes = read_bytes(&args.package)?;
    let (manifest, _) = manifest::unpack(&bytes)?;
    let sha256 = crate::types::sha256_hex(&bytes);
    let base = args.url.trim_end_matches('/');
    let client = reqwest::Client::new();
    let (status, body) = call_api(
        client
            .post(format!("{base}/api/v1/plugins"))
            .bearer_auth(&args.token)
            .header("content-type", "application/octet-stream")
            .body(bytes),
        "publishing",
    )
    .await?;
    let already = status == reqwest::StatusCode::CONFLICT && body["code"] == "version_exists";
    if already && args.install.is_some() {
        // Installing "that version" must not install another package than this one.
        let (_, published) = call_api(
            client
                .get(format!(
                    "{base}/api/v1/plugins/{}/versions/{}",
                    manifest.id, manifest.version
                ))
                .bearer_auth(&args.token),
            "reading the published version",
        )
        .await?;
        anyhow::ensure!(
            published["sha256"].as_str() == Some(sha256.as_str()),
            "{} {} is already published, from another package; versions are immutable: raise \
             the version in portico-plugin.toml",
            manifest.id,
            manifest.version
        );
    }
    anyhow::ensure!(
        status.is_success() || (already && args.install.is_some()),
        "publishing failed ({status}): {}",
        body["message"].as_str().unwrap_or("no message")
    );
    if already {
        println!(
            "{} {} is already published; installing that version",
            manifest.id, manifest.version
        );
    } else {
        println!(
            "published {} {} (sha256 {})",
            manifest.id,
            manifest.version,
            body["sha256"].as_str().unwrap_or_default()
        );
    }
    let Some(tenant) = args.install else {
        return Ok(());
    };
    let token = args.tenant_token.as_deref().unwrap_or(&args.token);
    let installs = format!("{base}/api/v1/tenants/{tenant}/plugins");
    let config = match &args.config {
        Some(path) => Some(read_json(path, "the configuration")?),
        None => None,
    };
    let secrets = read_secrets(args.secrets.as_ref())?;
    // An upgrade changes only what the flags name: the tenant's approvals stay as they are.
    let grants = (!args.grant_http.is_empty() || args.grant_smtp)
        .then(|| json!({"http_hosts": args.grant_http, "smtp": args.grant_smtp}));
    // An install of this plugin in the tenant is upgraded; otherwise the plugin is installed.
    let mut cursor = String::new();
    let existing = loop {
        let (status, page) = call_api(
            client
                .get(&installs)
                .query(&[("limit", "100"), ("cursor", cursor.as_str())])
                .bearer_auth(token),
            "listing the tenant's plugins",
        )
        .await?;
        anyhow::ensure!(
            status.is_success(),
            "listing the tenant's plugins failed ({status}): {}",
            page["message"].as_str().unwrap_or("no message")
        );
        let items = page["items"].as_array().cloned().unwrap_or_default();
        let found = items
            .iter()
            .find(|i| i["plugin_id"] == manifest.id.as_str())
            .and_then(|i| i["id"].as_str().map(str::to_string));
        match page["next_cursor"].as_str() {
            Some(next) if found.is_none() => cursor = next.to_string(),
            _ => break found,
        }
    };
    let (status, body) = match &existing {
        Some(id) => {
            let mut change = json!({"version": manifest.version});
            if let Some(grants) = grants {
                change["grants"] = grants;
            }
            if args.keep_failed_inputs {
                change["keep_failed_inputs"] = json!(true);
            }
            if let Some(config) = config {
                change["config"] = config;
            }
            if !secrets.is_empty() {
                change["secrets"] = json!(secrets);
            }
            call_api(
                client
                    .patch(format!("{installs}/{id}"))
                    .bearer_auth(token)
                    .json(&change),
                "upgrading the install",
            )
            .await?
        }
        None => {
            let new = json!({
                "plugin_id": manifest.id,
                "version": manifest.version,
                "config": config,
                "grants": grants.unwrap_or_else(|| json!({})),
                "secrets": secrets,
                "keep_failed_inputs": args.keep_failed_inputs,
            });
            call_api(
                client.post(&installs).bearer_auth(token).json(&new),
                "installing",
            )
            .await?
        }
    };
    anyhow::ensure!(
        status.is_success(),
        "installing in {tenant} failed ({status}): {}",
        body["message"].as_str().unwrap_or("no message")
    );
    println!(
        "{} {} {} in {tenant} as install {}",
        if existing.is_some() {
            "upgraded to"
        } else {
            "installed"
        },
        manifest.id,
        manifest.version,
        body["id"].as_str().unwrap_or_default()
    );
    Ok(())
}
