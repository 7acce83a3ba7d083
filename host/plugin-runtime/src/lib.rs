//! The plugin sandbox: WebAssembly components of the `portico:plugin` worlds, run under limits,
//! with outbound HTTP and SMTP behind the operator's policy. A crate of its own so that it
//! cannot reach into the host: it knows nothing of tenants, tickets or portals, and domain
//! code hands it plain data and validates what comes back.

pub mod bindings;
pub mod files;
pub mod input;
pub mod manifest;
pub mod outbound;
pub mod pool;
pub mod runtime;
pub mod secrets;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// The WIT package versions this host implements, oldest first. Every released version stays.
pub const WIT_VERSIONS: [&str; 2] = ["0.1.0", "0.2.0"];

/// What a plugin does, which decides its world.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum PluginKind {
    /// Delivers notifications (`notification-channel` world).
    Channel,
    /// Computes appointment windows (`slot-calculator` world).
    SlotCalculator,
    /// Renders portal pages (`theme` world).
    Theme,
    /// A custom step of an automated action (`action` world).
    Action,
}

impl PluginKind {
    pub const ALL: [PluginKind; 4] = [
        Self::Channel,
        Self::SlotCalculator,
        Self::Theme,
        Self::Action,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Channel => "channel",
            Self::SlotCalculator => "slot-calculator",
            Self::Theme => "theme",
            Self::Action => "action",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == raw)
    }

    /// The WIT versions that define this kind's world: slot calculators changed in 0.2.0.
    pub fn wit_versions(self) -> &'static [&'static str] {
        match self {
            Self::SlotCalculator => &WIT_VERSIONS,
            _ => &WIT_VERSIONS[..1],
        }
    }

    /// The interface a component of this kind exports, in WIT version `version`.
    pub fn export_name(self, version: &str) -> String {
        let interface = match self {
            Self::Channel => "channel",
            Self::SlotCalculator => "slots",
            Self::Theme => "pages",
            Self::Action => "steps",
        };
        format!("portico:plugin/{interface}@{version}")
    }

    /// Deterministic kinds get an instruction budget; the others wait on the network.
    pub fn is_deterministic(self) -> bool {
        matches!(self, Self::SlotCalculator | Self::Theme)
    }
}

/// Limits every invocation runs under. All are always on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Limits {
    /// Wall-clock deadline, including time spent in host calls.
    pub deadline_ms: u64,
    /// Linear memory an instance may grow to.
    pub memory_bytes: usize,
    /// Instruction budget (fuel); `None` for kinds that are not deterministic.
    pub fuel: Option<u64>,
    /// Largest output accepted.
    pub output_bytes: usize,
    /// Log volume per invocation.
    pub log_bytes: usize,
    /// Outbound HTTP requests or emails per invocation.
    pub outbound_calls: u32,
}

impl Limits {
    /// Production defaults for a kind.
    pub fn for_kind(kind: PluginKind) -> Self {
        let deterministic = kind.is_deterministic();
        Self {
            deadline_ms: if deterministic { 1_000 } else { 10_000 },
            memory_bytes: 64 << 20,
            fuel: deterministic.then_some(2_000_000_000),
            output_bytes: if kind == PluginKind::Theme {
                1 << 20
            } else {
                256 << 10
            },
            log_bytes: 64 << 10,
            outbound_calls: if deterministic { 0 } else { 8 },
        }
    }
}

/// Limits that replace some defaults: per kind in the host's configuration, per install by a
/// platform administrator.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LimitsOverride {
    pub deadline_ms: Option<u64>,
    pub memory_bytes: Option<usize>,
    pub fuel: Option<u64>,
    pub output_bytes: Option<usize>,
    pub log_bytes: Option<usize>,
    pub outbound_calls: Option<u32>,
}

impl Limits {
    /// These limits with `changes` applied. Fuel stays off for kinds without a budget.
    pub fn with(&self, changes: &LimitsOverride) -> Self {
        Self {
            deadline_ms: changes.deadline_ms.unwrap_or(self.deadline_ms),
            memory_bytes: changes.memory_bytes.unwrap_or(self.memory_bytes),
            fuel: self.fuel.map(|f| changes.fuel.unwrap_or(f)),
            output_bytes: changes.output_bytes.unwrap_or(self.output_bytes),
            log_bytes: changes.log_bytes.unwrap_or(self.log_bytes),
            outbound_calls: changes.outbound_calls.unwrap_or(self.outbound_calls),
        }
    }
}

/// The typed outcome of an invocation that did not succeed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PluginError {
    #[error("the plugin ran past its deadline of {0} ms")]
    Timeout(u64),
    #[error("the plugin exceeded its memory limit of {0} bytes")]
    MemoryLimit(usize),
    #[error("the plugin used up its instruction budget")]
    FuelExhausted,
    #[error("the plugin trapped: {0}")]
    Trap(String),
    #[error("the plugin's output exceeded {0} bytes")]
    OutputTooLarge(usize),
    #[error("the plugin used a capability it was not granted: {0}")]
    CapabilityDenied(String),
    #[error("the plugin reported an error: {0}")]
    Failed(String),
    #[error("the plugin's output is invalid: {0}")]
    InvalidOutput(String),
    #[error("the plugin cannot be loaded: {0}")]
    Invalid(String),
    #[error("no plugin slot came free for this tenant before the deadline")]
    Busy,
    #[error("the plugin passed the host more than it accepts: {0}")]
    LimitExceeded(String),
}

impl PluginError {
    pub fn code(&self) -> &'static str {
        match self {
            Self::Timeout(_) => "plugin_timeout",
            Self::MemoryLimit(_) => "plugin_memory_limit",
            Self::FuelExhausted => "plugin_fuel_exhausted",
            Self::Trap(_) => "plugin_trap",
            Self::OutputTooLarge(_) => "plugin_output_too_large",
            Self::CapabilityDenied(_) => "plugin_capability_denied",
            Self::Failed(_) => "plugin_failed",
            Self::InvalidOutput(_) => "plugin_invalid_output",
            Self::Invalid(_) => "plugin_invalid",
            Self::Busy => "plugin_busy",
            Self::LimitExceeded(_) => "plugin_limit_exceeded",
        }
    }
}
