//! Plugin packages, installs and run records as stored and as the API shows them, and the inputs
//! that publish, install, change and invoke them.

use std::collections::BTreeMap;

use portico_plugin_runtime::manifest::Manifest;
use portico_plugin_runtime::outbound::Grants;
use portico_plugin_runtime::runtime::LogLine;
use portico_plugin_runtime::{LimitsOverride, PluginKind};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sqlx::FromRow;
use utoipa::ToSchema;

use crate::db;
use crate::error::{Error, Result};
use crate::types::TenantId;

// The catalogue.

/// A catalogued package, without its bytes.
#[derive(FromRow)]
pub(super) struct PackageRow {
    pub id: String,
    pub manifest: String,
    pub sha256: String,
    pub size: i64,
    pub created_at: i64,
}

/// A published plugin version.
#[derive(Serialize, ToSchema)]
pub struct PluginVersion {
    pub id: String,
    pub plugin_id: String,
    pub version: String,
    pub kind: PluginKind,
    pub name: String,
    pub description: String,
    pub authors: Vec<String>,
    /// What it asks for; tenants approve these per install.
    pub capabilities: Grants,
    #[schema(value_type = Option<Object>)]
    pub config_schema: Option<serde_json::Value>,
    /// Names of the secrets it needs.
    pub secrets: Vec<String>,
    /// SHA-256 of the package file.
    pub sha256: String,
    pub size: i64,
    #[schema(value_type = String, format = DateTime)]
    pub published_at: jiff::Timestamp,
}

/// A manifest as the catalogue stored it (it was checked on upload).
pub(super) fn stored_manifest(text: &str) -> Result<Manifest> {
    Manifest::parse(text).map_err(|e| Error::Internal(anyhow::anyhow!("stored manifest: {e}")))
}

impl PackageRow {
    pub fn view(self) -> Result<PluginVersion> {
        let manifest = stored_manifest(&self.manifest)?;
        Ok(PluginVersion {
            id: self.id,
            plugin_id: manifest.id,
            version: manifest.version,
            kind: manifest.kind,
            name: manifest.name,
            description: manifest.description,
            authors: manifest.authors,
            capabilities: manifest.capabilities,
            config_schema: manifest.config_schema,
            secrets: manifest.secrets,
            sha256: self.sha256,
            size: self.size,
            published_at: db::timestamp(self.created_at),
        })
    }
}

// Installs.

/// An install as stored; `secrets` is sealed.
#[derive(Clone, PartialEq, FromRow)]
pub(super) struct InstallRow {
    pub id: String,
    pub plugin_id: String,
    pub version: String,
    pub previous_version: Option<String>,
    pub enabled: i64,
    pub config: String,
    pub grants: String,
    pub secrets: Option<Vec<u8>>,
    pub keep_failed_inputs: i64,
    pub limits: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
}

/// An install as the API shows it. Secret values are never shown, only which are set.
#[derive(Serialize, ToSchema)]
pub struct Install {
    pub id: String,
    pub plugin_id: String,
    pub version: String,
    /// What `rollback` returns to.
    pub previous_version: Option<String>,
    pub kind: PluginKind,
    pub enabled: bool,
    /// Whether failed runs keep their input (never secrets) for replay, for
    /// [`crate::plugins::runs::KEPT_INPUT_DAYS`] days.
    pub keep_failed_inputs: bool,
    #[schema(value_type = Object)]
    pub config: Value,
    /// Approved capabilities.
    pub grants: Grants,
    /// Names of the secrets that are set.
    pub secrets_set: Vec<String>,
    /// Limits a platform administrator set for this install.
    pub limits: Option<LimitsOverride>,
    #[schema(value_type = String, format = DateTime)]
    pub created_at: jiff::Timestamp,
    #[schema(value_type = String, format = DateTime)]
    pub updated_at: jiff::Timestamp,
}

/// A JSON column of an install.
pub(super) fn stored<T: serde::de::DeserializeOwned>(text: &str) -> Result<T> {
    serde_json::from_str(text)
        .map_err(|e| Error::Internal(anyhow::anyhow!("stored install field: {e}")))
}

/// A value as an install's JSON column keeps it.
pub(super) fn to_column<T: Serialize>(value: &T) -> Result<String> {
    serde_json::to_string(value).map_err(|e| Error::Internal(e.into()))
}

impl InstallRow {
    /// The API's view, given the version's kind and the names of the secrets that are set.
    pub fn view(&self, kind: PluginKind, secrets_set: Vec<String>) -> Result<Install> {
        Ok(Install {
            id: self.id.clone(),
            plugin_id: self.plugin_id.clone(),
            version: self.version.clone(),
            previous_version: self.previous_version.clone(),
            kind,
            enabled: self.enabled != 0,
            keep_failed_inputs: self.keep_failed_inputs != 0,
            config: stored(&self.config)?,
            grants: stored(&self.grants)?,
            secrets_set,
            limits: self.limits.as_deref().map(stored).transpose()?,
            created_at: db::timestamp(self.created_at),
            updated_at: db::timestamp(self.updated_at),
        })
    }

    /// What the audit log keeps: everything but secret values.
    pub fn summary(&self) -> Value {
        json!({"plugin_id": self.plugin_id, "version": self.version, "enabled": self.enabled != 0,
               "keep_failed_inputs": self.keep_failed_inputs != 0,
               "config": serde_json::from_str::<Value>(&self.config).unwrap_or_default(),
               "grants": serde_json::from_str::<Value>(&self.grants).unwrap_or_default()})
    }
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewInstall {
    pub plugin_id: String,
    /// Defaults to the newest published version.
    pub version: Option<String>,
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub config: Option<Value>,
    /// Capabilities to approve, among those the manifest asks for.
    #[serde(default)]
    pub grants: Grants,
    /// Secret values by name; stored encrypted and never shown again.
    #[serde(default)]
    pub secrets: BTreeMap<String, String>,
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Keep the input of each failed run (never secrets) for replay; off by default, since
    /// inputs may hold personal data.
    #[serde(default)]
    pub keep_failed_inputs: bool,
}

fn yes() -> bool {
    true
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChangeInstall {
    /// Another published version: an upgrade (or downgrade); the current one becomes the
    /// rollback target.
    pub version: Option<String>,
    #[schema(value_type = Option<Object>)]
    pub config: Option<Value>,
    pub grants: Option<Grants>,
    /// Secrets to set; a `null` value removes one.
    pub secrets: Option<BTreeMap<String, Option<String>>>,
    pub enabled: Option<bool>,
    /// Keep the input of each failed run (never secrets) for replay.
    pub keep_failed_inputs: Option<bool>,
    /// Platform administrators only.
    pub limits: Option<LimitsOverride>,
}

/// The columns of an install a change writes (`None`: unchanged), as stored.
#[derive(Default)]
pub(super) struct InstallChanges {
    /// The new version and the one it replaces, which becomes the rollback target.
    pub version: Option<(String, String)>,
    pub enabled: Option<i64>,
    pub keep_failed_inputs: Option<i64>,
    pub config: Option<String>,
    pub grants: Option<String>,
    /// Sealed; `Some(None)` removes every secret.
    pub secrets: Option<Option<Vec<u8>>>,
    pub limits: Option<String>,
}

impl InstallChanges {
    /// The install as it is once the changes are written at `now`.
    pub fn applied_to(&self, row: &InstallRow, now: i64) -> InstallRow {
        let mut after = row.clone();
        if let Some((version, previous)) = &self.version {
            after.version = version.clone();
            after.previous_version = Some(previous.clone());
        }
        if let Some(enabled) = self.enabled {
            after.enabled = enabled;
        }
        if let Some(keep) = self.keep_failed_inputs {
            after.keep_failed_inputs = keep;
        }
        if let Some(config) = &self.config {
            after.config = config.clone();
        }
        if let Some(grants) = &self.grants {
            after.grants = grants.clone();
        }
        if let Some(secrets) = &self.secrets {
            after.secrets = secrets.clone();
        }
        if let Some(limits) = &self.limits {
            after.limits = Some(limits.clone());
        }
        after.updated_at = now;
        after
    }
}

// Invocations and run records.

/// What ran.
pub struct RunSubject<'a> {
    pub tenant: &'a TenantId,
    pub install_id: Option<&'a str>,
    pub plugin_id: &'a str,
    pub version: &'a str,
    pub kind: &'a str,
    /// The install's configuration, when a failed run keeps its input for replay.
    pub keep_input_with: Option<&'a str>,
}

#[derive(FromRow)]
pub(super) struct RunRow {
    pub id: String,
    pub install_id: Option<String>,
    pub plugin_id: String,
    pub version: String,
    pub kind: String,
    pub outcome: String,
    pub message: Option<String>,
    pub duration_us: i64,
    pub fuel_used: Option<i64>,
    pub logs: String,
    pub created_at: i64,
}

#[derive(Serialize, Deserialize, ToSchema)]
pub struct LogLineView {
    pub level: String,
    pub message: String,
}

/// One invocation.
#[derive(Serialize, Deserialize, ToSchema)]
pub struct Run {
    pub id: String,
    pub install_id: Option<String>,
    pub plugin_id: String,
    pub version: String,
    pub kind: String,
    /// `ok`, or an error code such as `plugin_timeout`.
    pub outcome: String,
    pub message: Option<String>,
    pub duration_us: i64,
    /// Instructions used, for kinds with a budget.
    pub fuel_used: Option<i64>,
    /// What the plugin logged, secrets redacted.
    pub logs: Vec<LogLineView>,
    #[schema(value_type = String, format = DateTime)]
    pub at: jiff::Timestamp,
}

/// A failed run with the input it kept: what `portico plugin replay` runs again.
#[derive(Serialize, Deserialize, ToSchema)]
pub struct Replay {
    pub run: Run,
    /// What the plugin was given, as `portico plugin run` takes it.
    #[schema(value_type = Object)]
    pub input: Value,
    /// The install's configuration at the time; secrets are never kept.
    #[schema(value_type = Object)]
    pub config: Value,
    /// When the kept input is forgotten.
    #[schema(value_type = String, format = DateTime)]
    pub expires_at: jiff::Timestamp,
}

impl From<RunRow> for Run {
    fn from(r: RunRow) -> Self {
        Self {
            id: r.id,
            install_id: r.install_id,
            plugin_id: r.plugin_id,
            version: r.version,
            kind: r.kind,
            outcome: r.outcome,
            message: r.message,
            duration_us: r.duration_us,
            fuel_used: r.fuel_used,
            logs: serde_json::from_str(&r.logs).unwrap_or_default(),
            at: db::timestamp(r.created_at),
        }
    }
}

impl From<&LogLine> for LogLineView {
    fn from(l: &LogLine) -> Self {
        Self {
            level: l.level.to_string(),
            message: l.message.clone(),
        }
    }
}

/// Filters of the run list.
#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct RunFilter {
    /// Only runs of this plugin.
    pub plugin_id: Option<String>,
    /// Items per page, 1 to 200 (default 50).
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<u32>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct InvokeRequest {
    /// The input of the plugin's kind, as JSON (see the plugin documentation).
    #[schema(value_type = Object)]
    pub input: Value,
    /// Defaults to a fresh id.
    pub idempotency_key: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct InvokeResult {
    /// `ok`, or the error code, such as `plugin_timeout`.
    pub outcome: String,
    pub message: Option<String>,
    #[schema(value_type = Option<Object>)]
    pub output: Option<Value>,
    /// The run record.
    pub run_id: String,
    pub duration_us: u64,
    pub fuel_used: Option<u64>,
    pub logs: Vec<LogLineView>,
}
