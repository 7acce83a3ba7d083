//! Host configuration: an optional TOML file overlaid by `PORTICO_*` environment variables.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use serde::Deserialize;

use crate::types::Secret;
use portico_plugin_runtime::outbound::{MailSettings, MailTransport};
use portico_plugin_runtime::pool::PoolSettings;
use portico_plugin_runtime::{LimitsOverride, PluginKind};

/// Everything the host needs to start. Every field has a default, so no configuration at all
/// gives a working single-machine install on SQLite.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// `sqlite://…` or `postgres://…`; absent means a SQLite file inside `data_dir`. It may hold
    /// a password, so it is kept out of logs.
    pub database_url: Option<Secret<String>>,
    /// PostgreSQL only: a role that owns the schema, for migrations, which then grants the
    /// `database_url` role the use of the tables. Absent: migrations run as `database_url`.
    pub database_owner_url: Option<Secret<String>>,
    /// Address the HTTP server binds to.
    pub listen: SocketAddr,
    /// Where the SQLite file and other local state live.
    pub data_dir: PathBuf,
    /// Tenants are reachable at `<slug>.<base_domain>`.
    pub base_domain: String,
    /// The URL users reach this host at; used in generated links. Empty: `http://localhost:<port>`.
    pub public_url: String,
    /// Nameserver (`ip:port`) for domain-verification lookups; absent: the system resolver.
    pub dns_resolver: Option<SocketAddr>,
    /// Peers whose `X-Forwarded-Host` and `X-Forwarded-For` headers are believed. Empty: the
    /// headers are ignored.
    pub trusted_proxies: Vec<IpAddr>,
    /// How many tenants' authorisation enforcers stay in memory.
    pub authz_cache_capacity: u64,
    /// Seconds a tenant's enforcer is used before it is rebuilt from the database, whatever
    /// announcements arrived: the longest a replica that missed one stays stale.
    pub authz_cache_ttl_secs: u64,
    /// Largest accepted request body, in bytes.
    pub max_body_bytes: usize,
    /// Key that encrypts plugin secrets at rest: 32 bytes, base64. Absent: a key is generated
    /// into `data_dir/secret.key` (replicas sharing a database must all be given the same key).
    pub secret_key: Option<Secret<String>>,
    /// Where compiled plugins are cached; absent means `data_dir/plugin-cache`.
    pub plugin_cache_dir: Option<PathBuf>,
    /// Let plugins reach loopback and private addresses (for tests and private networks).
    pub plugins_allow_private_network: bool,
    /// Let plugins use plain `http://` URLs as well as `https://`.
    pub plugins_allow_http: bool,
    /// SMTP server (`host:port`) plugins send email through; absent: plugins cannot send email.
    pub smtp_server: Option<String>,
    /// Sender address of plugins' email.
    pub smtp_from: String,
    /// Without an SMTP server, email is written here as `.eml` files instead of being sent:
    /// the demo's zero-set-up mode. Ignored when `smtp_server` is set.
    pub email_outbox_dir: Option<PathBuf>,
    /// Per plugin kind, limits that replace the built-in defaults.
    pub plugin_limits: HashMap<PluginKind, LimitsOverride>,
    /// Memory for pages rendered by theme plugins, kept until the ticket or the install changes
    /// (MiB); 0 renders every page in the sandbox.
    pub theme_cache_mb: u64,
    /// Largest logo accepted for a portal profile, in pixels.
    pub logo_max_width: u32,
    pub logo_max_height: u32,
    /// Days domain events are kept (read by every durable consumer first) before pruning.
    pub event_retention_days: u32,
    /// How notifications are delivered: sending limits per tenant, retries and leases.
    pub deliveries: DeliverySettings,
    /// How often time-triggered actions ("24 h before the appointment") are looked for.
    pub time_trigger_interval_ms: u64,
    /// Calls of a tenant's plugin invoke endpoint allowed per minute.
    pub plugin_invocations_per_minute: u32,
    /// Whether this process runs the background work (the automated-actions consumer and the
    /// delivery worker) beside the server; replicas share it safely, so only an API-only
    /// replica turns it off.
    pub background_workers: bool,
    /// Limits of the HTTP server itself.
    pub server: ServerSettings,
    /// How often a verified domain's TXT record is checked again.
    pub domain_recheck_hours: u64,
    /// How long a domain whose TXT record is gone keeps serving before it stops.
    pub domain_grace_hours: u64,
    /// How many plugin instances run at once, and how many of them one tenant may hold.
    pub plugin_pool: PluginPoolSettings,
}

/// The plugin pool. Unset numbers are sized to the machine: instances of the largest memory
/// filling at most half of it (1 to 64), a quarter of them per tenant.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PluginPoolSettings {
    pub concurrency: Option<u32>,
    pub per_tenant: Option<u32>,
    /// Memory one instance may grow to, in MiB (default 256); per-install limits sit below it.
    pub instance_memory_mb: Option<u32>,
}

impl PluginPoolSettings {
    /// The pool for a machine with `memory` bytes (when known); refused when its worst case,
    /// every instance at its largest, does not fit.
    pub fn resolve(&self, memory: Option<u64>) -> anyhow::Result<PoolSettings> {
        let instance_mb = u64::from(self.instance_memory_mb.unwrap_or(256).max(1));
        let instance = instance_mb << 20;
        let concurrency = match (self.concurrency, memory) {
            (Some(configured), _) => configured.max(1),
            (None, Some(memory)) => (memory / 2 / instance).clamp(1, 64) as u32,
            (None, None) => 16,
        };
        let settings = PoolSettings {
            concurrency,
            per_tenant: self
                .per_tenant
                .unwrap_or(concurrency / 4)
                .clamp(1, concurrency),
            instance_memory: usize::try_from(instance).context("plugin_pool.instance_memory_mb")?,
        };
        if let Some(memory) = memory
            && settings.worst_case_bytes() > memory
        {
            bail!(
                "plugin_pool: {} instances of up to {instance_mb} MiB could need {} MiB, more than this machine's {} MiB; lower plugin_pool.concurrency or plugin_pool.instance_memory_mb",
                settings.concurrency,
                settings.worst_case_bytes() >> 20,
                memory >> 20
            );
        }
        Ok(settings)
    }
}

/// The machine's memory in bytes, where the system says (`MemTotal` on Linux).
pub fn machine_memory() -> Option<u64> {
    let info = std::fs::read_to_string("/proc/meminfo").ok()?;
    let kib: u64 = info
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some(kib * 1024)
}

/// Limits that keep slow, idle or numerous clients from holding the server.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerSettings {
    /// Time a client has to send a request's headers; past it the connection is closed.
    pub header_read_timeout_secs: u64,
    /// Time a request has to be answered (a live page's stream, once started, is not cut);
    /// past it the answer is `408`.
    pub request_timeout_secs: u64,
    /// Connections served at once; more wait to be accepted.
    pub max_connections: usize,
}

impl Default for ServerSettings {
    fn default() -> Self {
        Self {
            header_read_timeout_secs: 10,
            request_timeout_secs: 60,
            max_connections: 10_000,
        }
    }
}

/// Delivery of notifications. The sending limits keep any tenant from using the platform as a
/// mail relay; deliveries over a limit wait, they are not dropped.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DeliverySettings {
    /// Messages one tenant may send per minute.
    pub per_minute: u32,
    /// Messages one tenant may send per day (a rolling 24 hours).
    pub per_day: u32,
    /// Attempts before a delivery is dead.
    pub max_attempts: u32,
    /// Wait before the second attempt; it doubles with each attempt (with jitter), up to an hour.
    pub retry_base_ms: u64,
    /// How long a worker owns a claimed delivery; past it another worker takes it over.
    pub lease_ms: u64,
}

impl Default for DeliverySettings {
    fn default() -> Self {
        Self {
            per_minute: 120,
            per_day: 10_000,
            max_attempts: 8,
            retry_base_ms: 30_000,
            lease_ms: 60_000,
        }
    }
}

impl Default for Config {
    fn default() -> Self {
        Self {
            database_url: None,
            database_owner_url: None,
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            data_dir: PathBuf::from("data"),
            base_domain: "localhost".into(),
            public_url: String::new(),
            dns_resolver: None,
            trusted_proxies: Vec::new(),
            authz_cache_capacity: 1_000,
            authz_cache_ttl_secs: 30,
            max_body_bytes: 1024 * 1024,
            secret_key: None,
            plugin_cache_dir: None,
            plugins_allow_private_network: false,
            plugins_allow_http: false,
            smtp_server: None,
            smtp_from: "portico@localhost".into(),
            email_outbox_dir: None,
            plugin_limits: HashMap::new(),
            theme_cache_mb: 64,
            logo_max_width: 800,
            logo_max_height: 400,
            event_retention_days: 90,
            deliveries: DeliverySettings::default(),
            background_workers: true,
            plugin_invocations_per_minute: 120,
            time_trigger_interval_ms: 30_000,
            server: ServerSettings::default(),
            domain_recheck_hours: 6,
            domain_grace_hours: 72,
            plugin_pool: PluginPoolSettings::default(),
        }
    }
}

impl Config {
    /// Reads the optional file, then applies the environment on top.
    pub fn load(file: Option<&Path>) -> anyhow::Result<Self> {
        let mut config = match file {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .with_context(|| format!("reading configuration file {}", path.display()))?;
                toml::from_str(&text)
                    .with_context(|| format!("parsing configuration file {}", path.display()))?
            }
            None => Config::default(),
        };
        config.apply_env(|name| std::env::var(name).ok())?;
        Ok(config)
    }

    fn apply_env(&mut self, var: impl Fn(&str) -> Option<String>) -> anyhow::Result<()> {
        if let Some(v) = var("PORTICO_DATABASE_URL") {
            self.database_url = Some(Secret::new(v));
        }
        if let Some(v) = var("PORTICO_DATABASE_OWNER_URL") {
            self.database_owner_url = Some(Secret::new(v));
        }
        if let Some(v) = var("PORTICO_LISTEN") {
            self.listen = v
                .parse()
                .with_context(|| format!("PORTICO_LISTEN={v:?} is not an ip:port address"))?;
        }
        if let Some(v) = var("PORTICO_DATA_DIR") {
            self.data_dir = v.into();
        }
        if let Some(v) = var("PORTICO_BASE_DOMAIN") {
            self.base_domain = v;
        }
        if let Some(v) = var("PORTICO_PUBLIC_URL") {
            self.public_url = v;
        }
        if let Some(v) = var("PORTICO_DNS_RESOLVER") {
            self.dns_resolver = Some(v.parse().with_context(|| {
                format!("PORTICO_DNS_RESOLVER={v:?} is not an ip:port address")
            })?);
        }
        if let Some(v) = var("PORTICO_TRUSTED_PROXIES") {
            self.trusted_proxies = v
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(|s| {
                    s.parse().with_context(|| {
                        format!("PORTICO_TRUSTED_PROXIES: {s:?} is not an IP address")
                    })
                })
                .collect::<anyhow::Result<_>>()?;
        }
        if let Some(v) = var("PORTICO_SECRET_KEY") {
            self.secret_key = Some(Secret::new(v));
        }
        if let Some(v) = var("PORTICO_SMTP_SERVER") {
            self.smtp_server = Some(v);
        }
        if let Some(v) = var("PORTICO_BACKGROUND_WORKERS") {
            self.background_workers = v.parse().with_context(|| {
                format!("PORTICO_BACKGROUND_WORKERS={v:?} is not true or false")
            })?;
        }
        if let Some(v) = var("PORTICO_EMAIL_OUTBOX_DIR") {
            self.email_outbox_dir = Some(v.into());
        }
        if let Some(v) = var("PORTICO_PLUGINS_ALLOW_PRIVATE_NETWORK") {
            self.plugins_allow_private_network = matches!(v.as_str(), "1" | "true" | "yes");
        }
        if let Some(v) = var("PORTICO_PLUGINS_ALLOW_HTTP") {
            self.plugins_allow_http = matches!(v.as_str(), "1" | "true" | "yes");
        }
        self.base_domain = self.base_domain.trim_matches('.').to_ascii_lowercase();
        if self.public_url.is_empty() {
            self.public_url = format!("http://localhost:{}", self.listen.port());
        }
        if self.base_domain.is_empty() {
            bail!("base_domain must not be empty");
        }
        Ok(())
    }

    /// The database URL, defaulting to a SQLite file in the data directory.
    pub fn database_url(&self) -> Secret<String> {
        self.database_url.clone().unwrap_or_else(|| {
            Secret::new(format!(
                "sqlite://{}?mode=rwc",
                self.data_dir.join("portico.db").display()
            ))
        })
    }

    /// Where compiled plugins are cached.
    pub fn plugin_cache_dir(&self) -> PathBuf {
        self.plugin_cache_dir
            .clone()
            .unwrap_or_else(|| self.data_dir.join("plugin-cache"))
    }

    /// How long events are kept.
    pub fn event_retention(&self) -> std::time::Duration {
        std::time::Duration::from_secs(u64::from(self.event_retention_days) * 86_400)
    }

    /// The SMTP server and sender for plugins' email, if one is configured.
    pub fn domain_check_interval(&self) -> std::time::Duration {
        std::time::Duration::from_secs(self.domain_recheck_hours.max(1) * 3600)
    }

    pub fn domain_grace(&self) -> std::time::Duration {
        std::time::Duration::from_secs(self.domain_grace_hours * 3600)
    }

    pub fn smtp(&self) -> anyhow::Result<Option<MailSettings>> {
        let transport = match (&self.smtp_server, &self.email_outbox_dir) {
            (Some(server), _) => {
                let (host, port) = server
                    .rsplit_once(':')
                    .and_then(|(h, p)| Some((h.to_string(), p.parse().ok()?)))
                    .with_context(|| format!("smtp_server {server:?} is not host:port"))?;
                MailTransport::Smtp { host, port }
            }
            (None, Some(folder)) => {
                std::fs::create_dir_all(folder).with_context(|| {
                    format!("creating the email outbox folder {}", folder.display())
                })?;
                MailTransport::Directory(folder.clone())
            }
            (None, None) => return Ok(None),
        };
        Ok(Some(MailSettings {
            transport,
            from: self.smtp_from.clone(),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn environment_overrides_file_values() {
        let mut config: Config =
            toml::from_str("listen = \"0.0.0.0:9000\"\nbase_domain = \"Portal.Example.\"").unwrap();
        config
            .apply_env(|name| (name == "PORTICO_DATA_DIR").then(|| "/srv/portico".to_string()))
            .unwrap();
        assert_eq!(config.listen.port(), 9000);
        assert_eq!(config.base_domain, "portal.example");
        assert_eq!(config.data_dir, PathBuf::from("/srv/portico"));
        assert!(
            config
                .database_url()
                .expose()
                .starts_with("sqlite:///srv/portico/portico.db")
        );
    }

    #[test]
    fn secrets_stay_out_of_debug_output() {
        let mut config: Config = toml::from_str(
            "database_url = \"postgres://portico:hunter2@db/portico\"\nsecret_key = \"c2VjcmV0\"",
        )
        .unwrap();
        config.apply_env(|_| None).unwrap();
        let printed = format!("{config:?}");
        assert!(!printed.contains("hunter2"), "{printed}");
        assert!(!printed.contains("c2VjcmV0"), "{printed}");
        assert_eq!(
            config.smtp_server, None,
            "none is None, not an empty string"
        );
    }

    #[test]
    fn the_plugin_pool_fits_the_machine_or_is_refused() {
        const GIB: u64 = 1 << 30;
        let sized = PluginPoolSettings::default()
            .resolve(Some(24 * GIB))
            .unwrap();
        assert_eq!((sized.concurrency, sized.per_tenant), (48, 12));
        assert!(sized.worst_case_bytes() <= 12 * GIB);
        let small = PluginPoolSettings::default()
            .resolve(Some(2 * GIB))
            .unwrap();
        assert_eq!(small.concurrency, 4);
        let too_big = PluginPoolSettings {
            concurrency: Some(256),
            ..PluginPoolSettings::default()
        };
        let refused = too_big.resolve(Some(24 * GIB)).unwrap_err().to_string();
        assert!(refused.contains("plugin_pool.concurrency"), "{refused}");
    }

    #[test]
    fn unknown_keys_and_bad_values_are_refused() {
        assert!(toml::from_str::<Config>("listn = \"x\"").is_err());
        let mut config = Config::default();
        let err = config
            .apply_env(|name| (name == "PORTICO_LISTEN").then(|| "nowhere".to_string()))
            .unwrap_err();
        assert!(err.to_string().contains("PORTICO_LISTEN"));
    }
}
