//! Host configuration: an optional TOML file overlaid by `PORTICO_*` environment variables.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use serde::Deserialize;

use portico_plugin_runtime::{LimitsOverride, PluginKind};

/// Everything the host needs to start. Every field has a default, so no configuration at all
/// gives a working single-machine install on SQLite.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// `sqlite://…` or `postgres://…`; empty means a SQLite file inside `data_dir`.
    pub database_url: String,
    /// Address the HTTP server binds to.
    pub listen: SocketAddr,
    /// Where the SQLite file and other local state live.
    pub data_dir: PathBuf,
    /// Tenants are reachable at `<slug>.<base_domain>`.
    pub base_domain: String,
    /// The URL users reach this host at; used in generated links. Empty: `http://localhost:<port>`.
    pub public_url: String,
    /// Nameserver (`ip:port`) for domain-verification lookups; empty uses the system resolver.
    pub dns_resolver: String,
    /// Peers whose `X-Forwarded-Host` header is believed. Empty: the header is ignored.
    pub trusted_proxies: Vec<IpAddr>,
    /// How many tenants' authorisation enforcers stay in memory.
    pub authz_cache_capacity: u64,
    /// Largest accepted request body, in bytes.
    pub max_body_bytes: usize,
    /// Key that encrypts plugin secrets at rest: 32 bytes, base64. Empty: a key is generated
    /// into `data_dir/secret.key` (replicas sharing a database must all be given the same key).
    pub secret_key: String,
    /// Where compiled plugins are cached; empty means `data_dir/plugin-cache`.
    pub plugin_cache_dir: String,
    /// Let plugins reach loopback and private addresses (for tests and private networks).
    pub plugins_allow_private_network: bool,
    /// Let plugins use plain `http://` URLs as well as `https://`.
    pub plugins_allow_http: bool,
    /// SMTP server (`host:port`) plugins send email through; empty: plugins cannot send email.
    pub smtp_server: String,
    /// Sender address of plugins' email.
    pub smtp_from: String,
    /// Per plugin kind, limits that replace the built-in defaults.
    pub plugin_limits: HashMap<PluginKind, LimitsOverride>,
    /// Memory for pages rendered by theme plugins, kept until the ticket or the install changes
    /// (MiB); 0 renders every page in the sandbox.
    pub theme_cache_mb: u64,
    /// Largest logo accepted for a portal profile, in pixels.
    pub logo_max_width: u32,
    pub logo_max_height: u32,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            database_url: String::new(),
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            data_dir: PathBuf::from("data"),
            base_domain: "localhost".into(),
            public_url: String::new(),
            dns_resolver: String::new(),
            trusted_proxies: Vec::new(),
            authz_cache_capacity: 1_000,
            max_body_bytes: 1024 * 1024,
            secret_key: String::new(),
            plugin_cache_dir: String::new(),
            plugins_allow_private_network: false,
            plugins_allow_http: false,
            smtp_server: String::new(),
            smtp_from: "portico@localhost".into(),
            plugin_limits: HashMap::new(),
            theme_cache_mb: 64,
            logo_max_width: 800,
            logo_max_height: 400,
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
            self.database_url = v;
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
            self.dns_resolver = v;
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
            self.secret_key = v;
        }
        if let Some(v) = var("PORTICO_SMTP_SERVER") {
            self.smtp_server = v;
        }
        if let Some(v) = var("PORTICO_PLUGINS_ALLOW_PRIVATE_NETWORK") {
            self.plugins_allow_private_network = matches!(v.as_str(), "1" | "true" | "yes");
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
    pub fn database_url(&self) -> String {
        if self.database_url.is_empty() {
            format!(
                "sqlite://{}?mode=rwc",
                self.data_dir.join("portico.db").display()
            )
        } else {
            self.database_url.clone()
        }
    }

    /// Where compiled plugins are cached.
    pub fn plugin_cache_dir(&self) -> PathBuf {
        if self.plugin_cache_dir.is_empty() {
            self.data_dir.join("plugin-cache")
        } else {
            PathBuf::from(&self.plugin_cache_dir)
        }
    }

    /// The SMTP server and sender for plugins' email, if one is configured.
    pub fn smtp(&self) -> anyhow::Result<Option<(String, u16, String)>> {
        if self.smtp_server.is_empty() {
            return Ok(None);
        }
        let (host, port) = self
            .smtp_server
            .rsplit_once(':')
            .and_then(|(h, p)| Some((h.to_string(), p.parse().ok()?)))
            .with_context(|| format!("smtp_server {:?} is not host:port", self.smtp_server))?;
        Ok(Some((host, port, self.smtp_from.clone())))
    }

    /// The nameserver for verification lookups, if one is configured.
    pub fn dns_resolver(&self) -> anyhow::Result<Option<SocketAddr>> {
        if self.dns_resolver.is_empty() {
            return Ok(None);
        }
        self.dns_resolver.parse().map(Some).with_context(|| {
            format!(
                "dns_resolver {:?} is not an ip:port address",
                self.dns_resolver
            )
        })
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
                .starts_with("sqlite:///srv/portico/portico.db")
        );
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
