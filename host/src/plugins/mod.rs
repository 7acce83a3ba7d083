//! Plugins: the platform's catalogue, tenants' installs, run records and the built-ins, on top
//! of the sandbox in `portico-plugin-runtime`.
//!
//! `model` holds the types, `store` every statement on the area's tables; the operations are
//! `catalogue` (publishing), `installs` (install, change, roll back, uninstall), `prepared`
//! (installs ready to run, cached) and `runs` (invoking, run records); `routes` is the admin API.

pub mod builtin;
pub mod catalogue;
pub mod installs;
pub mod model;
pub mod prepared;
pub mod routes;
pub mod runs;
pub mod store;

// Where the rest of the host and the API tests have always found the sandbox's items.
pub use portico_plugin_runtime::{
    Limits, LimitsOverride, PluginError, PluginKind, bindings, input, manifest, outbound, runtime,
};

use std::collections::HashMap;
use std::sync::Arc;

use anyhow::Context;
use portico_plugin_runtime::secrets;

use crate::config::Config;
use crate::db::Pool;
use crate::types::TenantId;

fn kind_limits(configured: &HashMap<PluginKind, LimitsOverride>, kind: PluginKind) -> Limits {
    let defaults = Limits::for_kind(kind);
    match configured.get(&kind) {
        Some(changes) => defaults.with(changes),
        None => defaults,
    }
}

/// The plugin platform of a running host: the sandbox, the secret box and the limits.
pub struct Plugins {
    pub runtime: runtime::Runtime,
    pub secrets: secrets::SecretBox,
    /// Installs prepared to run, so that pages rendered by a theme do not read the install,
    /// its manifest and its secrets on every request. Any install change empties it, on every
    /// replica (a `PluginInstallChanged` event).
    pub runnables: prepared::RunnableCache,
    /// Theme output by what went into it (see `portal::render`); absent when switched off.
    pub rendered: Option<moka::future::Cache<String, Arc<(String, String)>>>,
    /// Calls of the invoke endpoint per tenant, so that it cannot be used to run plugins (and
    /// their outbound calls) without bound.
    pub invocations: governor::DefaultKeyedRateLimiter<TenantId>,
    kind_limits: HashMap<PluginKind, LimitsOverride>,
}

impl Plugins {
    pub fn new(config: &Config) -> anyhow::Result<Self> {
        let policy = outbound::OutboundPolicy {
            allow_private: config.plugins_allow_private_network,
            allow_http: config.plugins_allow_http,
            smtp: config.smtp()?,
        };
        let secrets = secrets::SecretBox::load(
            config.secret_key.as_ref().map(|k| k.expose().as_str()),
            &config.data_dir.join("secret.key"),
        )?;
        let cache = runtime::CompiledCache {
            dir: config.plugin_cache_dir(),
            key: secrets.derived_key("compiled plugin cache"),
        };
        let pool = config
            .plugin_pool
            .resolve(crate::config::machine_memory())?;
        let runtime = runtime::Runtime::with_pool(
            Some(cache),
            outbound::Outbound::new(policy),
            runtime::Allocation::Pooling,
            pool,
        )?;
        let per_minute = std::num::NonZeroU32::new(config.plugin_invocations_per_minute)
            .context("plugin_invocations_per_minute must be at least 1")?;
        Ok(Self {
            runtime,
            secrets,
            invocations: governor::RateLimiter::keyed(governor::Quota::per_minute(per_minute)),
            runnables: moka::future::Cache::builder()
                .max_capacity(10_000)
                .time_to_idle(std::time::Duration::from_secs(3600))
                .build(),
            rendered: (config.theme_cache_mb > 0).then(|| {
                moka::future::Cache::builder()
                    .max_capacity(config.theme_cache_mb * 1024 * 1024)
                    .weigher(|_, page: &Arc<(String, String)>| {
                        u32::try_from(page.0.len() + page.1.len()).unwrap_or(u32::MAX)
                    })
                    .time_to_idle(std::time::Duration::from_secs(3600))
                    .build()
            }),
            kind_limits: config.plugin_limits.clone(),
        })
    }

    /// The limits of one install: the kind's defaults, the host's configuration, then the
    /// install's own override.
    pub fn limits(&self, kind: PluginKind, install: Option<&LimitsOverride>) -> Limits {
        let configured = kind_limits(&self.kind_limits, kind);
        match install {
            Some(own) => configured.with(own),
            None => configured,
        }
    }

    /// The production limits of a kind under `config`, as `portico plugin run` applies them.
    pub fn limits_for(config: &Config, kind: PluginKind) -> Limits {
        kind_limits(&config.plugin_limits, kind)
    }

    /// Compiles every catalogued package at start-up (from the disk cache when possible), so no
    /// request waits for a compilation.
    pub async fn load_catalogue(&self, pool: &Pool) -> anyhow::Result<usize> {
        let packages = store::all_packages(pool).await?;
        let mut loaded = 0;
        for (kind, bytes) in packages {
            match self.runtime.load(kind, &bytes) {
                Ok(_) => loaded += 1,
                Err(e) => tracing::error!(error = %e, "a catalogued plugin no longer loads"),
            }
        }
        Ok(loaded)
    }

    /// A package's compiled form: loaded at upload or start-up, or (when another replica took
    /// the upload) compiled now.
    pub async fn loaded(
        &self,
        pool: &Pool,
        kind: PluginKind,
        sha256: &str,
    ) -> Result<Arc<runtime::LoadedPlugin>, crate::error::Error> {
        if let Some(plugin) = self.runtime.get(sha256) {
            return Ok(plugin);
        }
        tracing::warn!(
            sha256,
            "compiling a plugin on demand; it was published through another replica"
        );
        let bytes = store::package_bytes(pool, sha256).await?;
        self.runtime.load(kind, &bytes).map_err(|e| {
            crate::error::Error::Internal(anyhow::anyhow!("loading a catalogued plugin: {e}"))
        })
    }
}
