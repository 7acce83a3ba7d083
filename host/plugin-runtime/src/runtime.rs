//! The sandbox: wasmtime with the component model, a pooling allocator, and a fresh store per
//! invocation so that no state survives a call or crosses tenants.
//!
//! Limits are always on: a wall-clock deadline (epoch interruption lets a spinning guest yield,
//! and a tokio timeout covers host calls too), a memory limit per instance, fuel for the
//! deterministic kinds, and output, log and outbound-call budgets. Components are compiled when
//! they are loaded (at upload or start-up) and the compiled form is cached on disk, keyed by
//! content hash and engine compatibility, so a restart does not compile again.

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};
use wasmtime::component::{Component, HasSelf, Linker, ResourceTable};
use wasmtime::{
    Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig, ResourceLimiter, Store,
    Trap,
};
use wasmtime_wasi::{HostMonotonicClock, HostWallClock, WasiCtx, WasiCtxView, WasiView};

use crate::bindings::v0_1_0::portico::plugin::{http, log, smtp};
use crate::bindings::v0_1_0::{self as bindings, action, slots, theme};
use crate::bindings::v0_2_0;
use crate::manifest::{self, Manifest};
use crate::outbound::{Grants, MailRoute, Outbound, OutboundError};
use crate::pool::{PoolSettings, Slots};
use crate::{Limits, PluginError, PluginKind, WIT_VERSIONS};
use portico_sdk::schedule;
use portico_sdk::time::Window;

/// Epoch tick: the granularity of deadlines.
const EPOCH_TICK: Duration = Duration::from_millis(10);
/// Recipients of one email a plugin sends, and the size of its body (text and HTML).
const MAX_EMAIL_RECIPIENTS: usize = 50;
const MAX_EMAIL_BODY_BYTES: usize = 1 << 20;
/// Log lines kept per invocation, whatever their size.
const MAX_LOG_LINES: usize = 500;

/// A line a plugin logged.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct LogLine {
    pub level: &'static str,
    pub message: String,
}

/// What an invocation cost and said, whatever its outcome.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct RunReport {
    pub duration_us: u64,
    pub fuel_used: Option<u64>,
    pub logs: Vec<LogLine>,
}

/// An invocation's result and its report.
pub struct Invocation<T> {
    pub result: Result<T, PluginError>,
    pub report: RunReport,
}

/// Everything one invocation needs besides its input.
pub struct Call<'a> {
    pub limits: &'a Limits,
    /// Capabilities the tenant approved; ignored for kinds that have none.
    pub grants: Grants,
    /// The tenant's configuration (JSON).
    pub config: &'a str,
    pub secrets: &'a [(String, String)],
    pub idempotency_key: &'a str,
    /// Whose share of the pool the call uses; empty for calls of no tenant (the command line).
    pub tenant: &'a str,
}

/// A validated, compiled component, ready to instantiate.
pub struct LoadedPlugin {
    pub kind: PluginKind,
    /// The WIT package version the component was built against.
    pub wit: &'static str,
    pub sha256: String,
    pre: KindPre,
}

enum KindPre {
    Channel(bindings::NotificationChannelPre<HostState>),
    Slots(slots::SlotCalculatorPre<HostState>),
    SlotsV2(v0_2_0::SlotCalculatorPre<HostState>),
    Theme(theme::ThemePre<HostState>),
    Action(action::ActionPre<HostState>),
}

/// The engine, the linker and the compiled components.
pub struct Runtime {
    engine: Engine,
    linker: Linker<HostState>,
    cache: Option<CompiledCache>,
    loaded: Mutex<HashMap<String, Arc<LoadedPlugin>>>,
    outbound: Arc<Outbound>,
    slots: Slots,
}

/// How the runtime allocates instances.
/// Compiled components kept between starts, each file its MAC (HMAC-SHA256 under `key`, over
/// its name and bytes) followed by the bytes: only what this host wrote, for that component, is
/// ever loaded as native code.
pub struct CompiledCache {
    pub dir: PathBuf,
    pub key: [u8; 32],
}

impl CompiledCache {
    fn mac(&self, name: &str, bytes: &[u8]) -> [u8; 32] {
        use hmac::Mac;
        let mut mac =
            <hmac::Hmac<Sha256> as Mac>::new_from_slice(&self.key).expect("any key length");
        mac.update(name.as_bytes());
        mac.update(&[0]);
        mac.update(bytes);
        mac.finalize().into_bytes().into()
    }

    /// The artefact called `name`, if it is there and this host's MAC vouches for it.
    fn read(&self, name: &str) -> Option<Vec<u8>> {
        let mut file = std::fs::read(self.dir.join(name)).ok()?;
        if file.len() < 32 {
            return None;
        }
        let bytes = file.split_off(32);
        if file[..] != self.mac(name, &bytes)[..] {
            tracing::warn!(
                name,
                "a compiled plugin in the cache does not carry this host's MAC; compiling it again"
            );
            return None;
        }
        Some(bytes)
    }

    fn write(&self, name: &str, bytes: &[u8]) -> anyhow::Result<()> {
        let mut file = self.mac(name, bytes).to_vec();
        file.extend_from_slice(bytes);
        crate::files::write_private(&self.dir.join(name), &file)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Allocation {
    /// Pre-reserved slots: fast instantiation. What the host uses.
    Pooling,
    /// Allocate per instance; for comparison in benchmarks.
    OnDemand,
}

impl Runtime {
    /// A runtime whose compiled components are kept in `cache` between starts, with the
    /// default pool.
    pub fn new(
        cache: Option<CompiledCache>,
        outbound: Outbound,
        allocation: Allocation,
    ) -> anyhow::Result<Self> {
        Self::with_pool(cache, outbound, allocation, PoolSettings::default())
    }

    /// A runtime with a pool of its own size and shares.
    pub fn with_pool(
        cache: Option<CompiledCache>,
        outbound: Outbound,
        allocation: Allocation,
        settings: PoolSettings,
    ) -> anyhow::Result<Self> {
        let instances = settings.concurrency.max(1);
        let mut config = Config::new();
        config.wasm_component_model(true);
        config.consume_fuel(true);
        config.epoch_interruption(true);
        config.max_wasm_stack(1 << 20);
        if allocation == Allocation::Pooling {
            let mut pool = PoolingAllocationConfig::default();
            // Sized to the slots, which callers wait for: instantiation never finds it full.
            pool.total_component_instances(instances);
            pool.total_core_instances(instances * 4);
            pool.total_memories(instances * 2);
            pool.total_tables(instances * 4);
            pool.total_stacks(instances);
            pool.max_memories_per_component(2);
            pool.max_tables_per_component(8);
            pool.max_core_instances_per_component(16);
            pool.max_memory_size(settings.instance_memory);
            // Reset tables and fiber stacks by overwriting instead of returning pages to the
            // kernel: fewer system calls per invocation.
            pool.table_keep_resident(1 << 16);
            pool.async_stack_keep_resident(1 << 16);
            config.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
        }
        let engine =
            Engine::new(&config).map_err(|e| anyhow::anyhow!("configuring wasmtime: {e}"))?;
        spawn_epoch_ticker(&engine);

        let mut linker = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker).map_err(|e| anyhow::anyhow!("{e}"))?;
        log::add_to_linker::<HostState, HasSelf<HostState>>(&mut linker, |s| s)
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        http::add_to_linker::<HostState, HasSelf<HostState>>(&mut linker, |s| s)
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        smtp::add_to_linker::<HostState, HasSelf<HostState>>(&mut linker, |s| s)
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        v0_2_0::portico::plugin::log::add_to_linker::<HostState, HasSelf<HostState>>(
            &mut linker,
            |s| s,
        )
        .map_err(|e| anyhow::anyhow!("{e}"))?;

        if let Some(cache) = &cache {
            crate::files::private_dir(&cache.dir)?;
        }
        Ok(Self {
            engine,
            linker,
            cache,
            loaded: Mutex::default(),
            outbound: Arc::new(outbound),
            slots: Slots::new(settings),
        })
    }

    /// Validates a package as the catalogue does before publishing it, and `portico plugin pack`
    /// and `check` before writing or passing one: its size and manifest, that the component
    /// compiles against its kind's world, and that it was built against the WIT version the
    /// manifest names.
    pub fn check_package(
        &self,
        package: &[u8],
    ) -> Result<(Manifest, String, Arc<LoadedPlugin>), String> {
        let (manifest, text) = manifest::unpack(package).map_err(|e| e.0)?;
        let plugin = self
            .load(manifest.kind, package)
            .map_err(|e| e.to_string())?;
        if plugin.wit != manifest.wit {
            return Err(format!(
                "the manifest says WIT {} but the component was built against {}",
                manifest.wit, plugin.wit
            ));
        }
        Ok((manifest, text, plugin))
    }

    /// Validates and compiles a component of `kind` (or takes it from the caches).
    pub fn load(&self, kind: PluginKind, wasm: &[u8]) -> Result<Arc<LoadedPlugin>, PluginError> {
        let sha256 = sha256_hex(wasm);
        if let Some(plugin) = self.loaded.lock().expect("plugin map").get(&sha256) {
            if plugin.kind != kind {
                return Err(PluginError::Invalid(format!(
                    "this component is a {}, not a {}",
                    plugin.kind.as_str(),
                    kind.as_str()
                )));
            }
            return Ok(plugin.clone());
        }
        if !is_component(wasm) {
            return Err(PluginError::Invalid(
                "not a WebAssembly component (a core module or another file)".into(),
            ));
        }
        let component = self.compile_cached(&sha256, wasm)?;
        let wit = check_world(&self.engine, &component, kind)?;
        let invalid = |e: wasmtime::Error| PluginError::Invalid(format!("{e:#}"));
        let pre = self.linker.instantiate_pre(&component).map_err(invalid)?;
        let pre = match kind {
            PluginKind::Channel => {
                KindPre::Channel(bindings::NotificationChannelPre::new(pre).map_err(invalid)?)
            }
            PluginKind::SlotCalculator if wit == "0.1.0" => {
                KindPre::Slots(slots::SlotCalculatorPre::new(pre).map_err(invalid)?)
            }
            PluginKind::SlotCalculator => {
                KindPre::SlotsV2(v0_2_0::SlotCalculatorPre::new(pre).map_err(invalid)?)
            }
            PluginKind::Theme => KindPre::Theme(theme::ThemePre::new(pre).map_err(invalid)?),
            PluginKind::Action => KindPre::Action(action::ActionPre::new(pre).map_err(invalid)?),
        };
        let plugin = Arc::new(LoadedPlugin {
            kind,
            wit,
            sha256: sha256.clone(),
            pre,
        });
        self.loaded
            .lock()
            .expect("plugin map")
            .insert(sha256, plugin.clone());
        Ok(plugin)
    }

    /// An already loaded component, by content hash.
    pub fn get(&self, sha256: &str) -> Option<Arc<LoadedPlugin>> {
        self.loaded.lock().expect("plugin map").get(sha256).cloned()
    }

    #[expect(
        unsafe_code,
        reason = "wasmtime cannot check a precompiled artifact; see SAFETY"
    )]
    fn compile_cached(&self, sha256: &str, wasm: &[u8]) -> Result<Component, PluginError> {
        let name = format!("{sha256}-{}.cwasm", self.engine_key());
        if let Some(cache) = &self.cache
            && let Some(artefact) = cache.read(&name)
        {
            // SAFETY: the bytes were written by `Component::serialize` of an engine with the
            // same compatibility hash (part of the name), for this very component: they carry
            // this host's MAC over the name and the bytes, which only a holder of its key makes.
            match unsafe { Component::deserialize(&self.engine, &artefact) } {
                Ok(component) => return Ok(component),
                Err(e) => {
                    tracing::warn!(error = %e, name, "discarding unreadable compiled plugin")
                }
            }
        }
        let component = Component::new(&self.engine, wasm)
            .map_err(|e| PluginError::Invalid(format!("{e:#}")))?;
        if let Some(cache) = &self.cache {
            let written = component
                .serialize()
                .map_err(|e| anyhow::anyhow!("{e}"))
                .and_then(|bytes| cache.write(&name, &bytes));
            if let Err(e) = written {
                tracing::warn!(error = %e, "caching a compiled plugin failed; it will be compiled again next start");
            }
        }
        Ok(component)
    }

    /// Identifies the engine configuration, so a compiled artifact is only loaded by an engine
    /// that can run it.
    fn engine_key(&self) -> String {
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        self.engine
            .precompile_compatibility_hash()
            .hash(&mut hasher);
        format!("{:016x}", hasher.finish())
    }

    /// Runs a theme's `render`.
    pub async fn render(
        &self,
        plugin: &LoadedPlugin,
        call: &Call<'_>,
        page: &theme::exports::portico::plugin::pages::Page,
    ) -> Invocation<theme::exports::portico::plugin::pages::Rendered> {
        let KindPre::Theme(pre) = &plugin.pre else {
            return wrong_kind(plugin, PluginKind::Theme);
        };
        let invocation = self
            .invoke(
                plugin.kind,
                call,
                Grants::none(),
                Vec::new(),
                async |store| {
                    let instance = pre.instantiate_async(&mut *store).await?;
                    instance
                        .portico_plugin_pages()
                        .call_render(&mut *store, page, call.config)
                        .await
                },
            )
            .await;
        let mut invocation = flatten(invocation, call, |r| r.html.len() + r.stylesheet.len());
        if let Ok(rendered) = &invocation.result
            && !rendered.html.to_ascii_lowercase().contains("</head>")
        {
            invocation.result = Err(PluginError::InvalidOutput(
                "the page has no </head> to put its styles in".into(),
            ));
        }
        invocation
    }

    /// Runs a slot calculator on `request`, through whichever WIT version it was built against,
    /// and checks its windows with [`schedule::check`]: a calculator whose windows break the
    /// rules fails as a whole, so nothing it computed is offered.
    pub async fn calculate(
        &self,
        plugin: &LoadedPlugin,
        call: &Call<'_>,
        request: &schedule::Request,
    ) -> Invocation<Vec<schedule::Slot>> {
        let legacy = matches!(plugin.pre, KindPre::Slots(_));
        let invocation = match &plugin.pre {
            KindPre::SlotsV2(pre) => {
                let wit_request = slot_request_v0_2(request);
                let invocation = self
                    .invoke(
                        plugin.kind,
                        call,
                        Grants::none(),
                        Vec::new(),
                        async |store| {
                            let instance = pre.instantiate_async(&mut *store).await?;
                            instance
                                .portico_plugin_slots()
                                .call_calculate(&mut *store, &wit_request, call.config)
                                .await
                        },
                    )
                    .await;
                map_ok(invocation, |r| {
                    r.map(|list| {
                        list.into_iter()
                            .map(|s| slot(s.window.start, s.window.end, s.capacity_left))
                            .collect::<Vec<_>>()
                    })
                })
            }
            KindPre::Slots(pre) => {
                let wit_request = slot_request_v0_1(request);
                let invocation = self
                    .invoke(
                        plugin.kind,
                        call,
                        Grants::none(),
                        Vec::new(),
                        async |store| {
                            let instance = pre.instantiate_async(&mut *store).await?;
                            instance
                                .portico_plugin_slots()
                                .call_calculate(&mut *store, &wit_request, call.config)
                                .await
                        },
                    )
                    .await;
                map_ok(invocation, |r| {
                    r.map(|list| {
                        list.into_iter()
                            .map(|s| slot(s.window.start, s.window.end, s.capacity_left))
                            .collect::<Vec<_>>()
                    })
                })
            }
            _ => return wrong_kind(plugin, PluginKind::SlotCalculator),
        };
        // The output limit bounds the work below.
        let mut invocation = flatten(invocation, call, |slots| slots.len() * 24);
        // What 0.1.0 cannot express (closures, buffers, caps, the response rule as 0.2.0 states
        // it) is applied here: windows it breaks are left out, not fatal.
        if legacy && let Ok(slots) = &mut invocation.result {
            *slots = schedule::keep_valid(request, std::mem::take(slots));
        }
        if let Ok(slots) = &invocation.result
            && let Err(problem) = schedule::check(request, slots)
        {
            invocation.result = Err(PluginError::InvalidOutput(problem));
        }
        invocation
    }

    /// Runs a channel's `deliver`.
    pub async fn deliver(
        &self,
        plugin: &LoadedPlugin,
        call: &Call<'_>,
        message: &bindings::exports::portico::plugin::channel::Message,
    ) -> Invocation<
        Result<
            bindings::exports::portico::plugin::channel::Delivery,
            bindings::exports::portico::plugin::channel::DeliveryError,
        >,
    > {
        let KindPre::Channel(pre) = &plugin.pre else {
            return wrong_kind(plugin, PluginKind::Channel);
        };
        let pairs = key_values(call.secrets);
        let redact = call.secrets.iter().map(|(_, v)| v.clone()).collect();
        let invocation = self
            .invoke(
                plugin.kind,
                call,
                call.grants.clone(),
                redact,
                async |store| {
                    let instance = pre.instantiate_async(&mut *store).await?;
                    instance
                        .portico_plugin_channel()
                        .call_deliver(
                            &mut *store,
                            message,
                            call.config,
                            &pairs,
                            call.idempotency_key,
                        )
                        .await
                },
            )
            .await;
        use bindings::exports::portico::plugin::channel::DeliveryError;
        let mut invocation = invocation;
        if let Ok(Ok(delivery)) = &invocation.result {
            let size = delivery.provider_id.as_ref().map_or(0, String::len)
                + delivery.detail.as_ref().map_or(0, String::len);
            if size > call.limits.output_bytes {
                invocation.result = Err(PluginError::OutputTooLarge(call.limits.output_bytes));
            }
        }
        // What is stored and shown: the install's secrets redacted, error texts cut short.
        let clean = |text: String| truncate(redacted(call.secrets, text), MAX_ERROR_CHARS);
        invocation.result = match invocation.result {
            Ok(Ok(mut delivery)) => {
                delivery.provider_id = delivery.provider_id.map(|t| redacted(call.secrets, t));
                delivery.detail = delivery.detail.map(clean);
                Ok(Ok(delivery))
            }
            Ok(Err(error)) => Ok(Err(match error {
                DeliveryError::InvalidRecipient(m) => DeliveryError::InvalidRecipient(clean(m)),
                DeliveryError::Rejected(m) => DeliveryError::Rejected(clean(m)),
                DeliveryError::Temporary(m) => DeliveryError::Temporary(clean(m)),
                DeliveryError::Configuration(m) => DeliveryError::Configuration(clean(m)),
            })),
            Err(e) => Err(e.redacted(call.secrets)),
        };
        invocation
    }

    /// Runs an action's `run`.
    pub async fn run_action(
        &self,
        plugin: &LoadedPlugin,
        call: &Call<'_>,
        event: &action::exports::portico::plugin::steps::Event,
    ) -> Invocation<action::exports::portico::plugin::steps::Outcome> {
        let KindPre::Action(pre) = &plugin.pre else {
            return wrong_kind(plugin, PluginKind::Action);
        };
        let pairs = key_values(call.secrets);
        let redact = call.secrets.iter().map(|(_, v)| v.clone()).collect();
        let invocation = self
            .invoke(
                plugin.kind,
                call,
                call.grants.clone(),
                redact,
                async |store| {
                    let instance = pre.instantiate_async(&mut *store).await?;
                    instance
                        .portico_plugin_steps()
                        .call_run(
                            &mut *store,
                            event,
                            call.config,
                            &pairs,
                            call.idempotency_key,
                        )
                        .await
                },
            )
            .await;
        let mut invocation = flatten(invocation, call, |o| {
            o.summary.len() + o.external_ref.as_ref().map_or(0, String::len)
        });
        // What is stored and shown: the install's secrets redacted.
        invocation.result = match invocation.result {
            Ok(mut outcome) => {
                outcome.summary = redacted(call.secrets, outcome.summary);
                outcome.external_ref = outcome.external_ref.map(|r| redacted(call.secrets, r));
                Ok(outcome)
            }
            Err(e) => Err(e.redacted(call.secrets)),
        };
        invocation
    }

    /// One invocation in a fresh store, under every limit.
    async fn invoke<T>(
        &self,
        kind: PluginKind,
        call: &Call<'_>,
        grants: Grants,
        secrets: Vec<String>,
        run: impl AsyncFnOnce(&mut Store<HostState>) -> wasmtime::Result<T>,
    ) -> Invocation<T> {
        let started = Instant::now();
        let limits = call.limits;
        let deadline = Duration::from_millis(limits.deadline_ms);
        // Waiting for a slot counts against the deadline, and takes at most half of it: a slot
        // that comes free with almost no time left is of no use.
        let until = tokio::time::Instant::from_std(started + deadline);
        let wait_until = tokio::time::Instant::from_std(started + deadline / 2);
        let Some(_slots) = self.slots.acquire(call.tenant, wait_until).await else {
            return Invocation {
                result: Err(PluginError::Busy),
                report: RunReport {
                    duration_us: started.elapsed().as_micros() as u64,
                    fuel_used: None,
                    logs: Vec::new(),
                },
            };
        };
        let mut state = HostState::new(kind, limits, grants, secrets, self.outbound.clone());
        state.idempotency_key = call.idempotency_key.to_string();
        if kind == PluginKind::Channel {
            state.mail_route = MailRoute::from_install(call.config, call.secrets);
        }
        let mut store = Store::new(&self.engine, state);
        store.limiter(|s| &mut s.memory);
        let fuel = limits.fuel.unwrap_or(u64::MAX);
        let _ = store.set_fuel(fuel);
        store.epoch_deadline_async_yield_and_update(1);
        let outcome = tokio::time::timeout_at(until, run(&mut store)).await;
        let fuel_used = limits
            .fuel
            .map(|budget| budget.saturating_sub(store.get_fuel().unwrap_or(0)));
        let state = store.data_mut();
        let result = match outcome {
            Err(_elapsed) => Err(PluginError::Timeout(limits.deadline_ms)),
            Ok(Ok(value)) => match state.violation.take() {
                Some(violation) => Err(violation),
                None => Ok(value),
            },
            Ok(Err(error)) => Err(classify(error, state)),
        };
        let report = RunReport {
            duration_us: started.elapsed().as_micros() as u64,
            fuel_used,
            logs: std::mem::take(&mut state.logs),
        };
        Invocation { result, report }
    }
}

fn map_ok<T, U>(invocation: Invocation<T>, f: impl FnOnce(T) -> U) -> Invocation<U> {
    Invocation {
        result: invocation.result.map(f),
        report: invocation.report,
    }
}

fn slot(start: i64, end: i64, capacity_left: u32) -> schedule::Slot {
    schedule::Slot {
        window: Window { start, end },
        capacity_left,
    }
}

/// The request in the `plugin@0.2.0` shape.
fn slot_request_v0_2(
    request: &schedule::Request,
) -> v0_2_0::exports::portico::plugin::slots::SlotRequest {
    use v0_2_0::exports::portico::plugin::slots as wit;
    use v0_2_0::portico::plugin::types::TimeWindow;
    let window = |w: &Window| TimeWindow {
        start: w.start,
        end: w.end,
    };
    wit::SlotRequest {
        rules: match request.rules {
            schedule::Rules::Sla(s) => wit::Rules::Sla(wit::SlaRules {
                response_minutes: s.response_minutes,
                deadline_minutes: s.deadline_minutes,
                visit_minutes: s.visit_minutes,
                window_minutes: s.window_minutes,
                step_minutes: s.step_minutes,
                buffer_minutes: s.buffer_minutes,
                capacity: s.capacity,
            }),
            schedule::Rules::Intervals => wit::Rules::Intervals,
        },
        max_per_day: request.max_per_day,
        ticket: request.ticket.to_string(),
        created_at: request.created_at,
        now: request.now,
        not_before: request.not_before,
        time_zone: request.time_zone.clone(),
        days: request
            .days
            .iter()
            .map(|d| wit::LocalDay {
                date: d.date.clone(),
                weekday: d.weekday,
                start: d.span.start,
                end: d.span.end,
                open: d.open.iter().map(window).collect(),
                intervals: d
                    .intervals
                    .iter()
                    .map(|i| wit::Interval {
                        name: i.name.clone(),
                        window: window(&i.window),
                        capacity: i.capacity,
                    })
                    .collect(),
                offerable: d.offerable,
            })
            .collect(),
        bookings: request.bookings.iter().map(window).collect(),
    }
}

/// The request in the `plugin@0.1.0` shape, for calculators built against it: business hours and
/// intervals as minutes after each day's midnight (elapsed time, as 0.1.0 counts them), and only
/// the offerable days that are open, so closures are kept. Its windows then go through
/// [`schedule::keep_valid`], which leaves out what 0.1.0 could not know to avoid.
fn slot_request_v0_1(
    request: &schedule::Request,
) -> slots::exports::portico::plugin::slots::SlotRequest {
    use slots::exports::portico::plugin::slots as wit;
    let minute = |day: &schedule::Day, at: i64| {
        ((at - day.span.start) / 60_000).clamp(0, i64::from(u16::MAX)) as u16
    };
    let open_days: Vec<&schedule::Day> = request
        .days
        .iter()
        .filter(|d| d.offerable && !(d.open.is_empty() && d.intervals.is_empty()))
        .collect();
    let opening = |day: &schedule::Day, w: &Window| wit::Opening {
        weekday: day.weekday,
        start_minute: minute(day, w.start),
        end_minute: minute(day, w.end),
    };
    let mut working_hours: Vec<wit::Opening> = Vec::new();
    let mut intervals: Vec<wit::IntervalRule> = Vec::new();
    for day in &open_days {
        for w in &day.open {
            let o = opening(day, w);
            let key = (o.weekday, o.start_minute, o.end_minute);
            if !working_hours
                .iter()
                .any(|h| (h.weekday, h.start_minute, h.end_minute) == key)
            {
                working_hours.push(o);
            }
        }
        for i in &day.intervals {
            let rule = wit::IntervalRule {
                opening: opening(day, &i.window),
                capacity: i.capacity,
            };
            let o = &rule.opening;
            let key = (o.weekday, o.start_minute, o.end_minute, rule.capacity);
            if !intervals.iter().any(|r| {
                let p = &r.opening;
                (p.weekday, p.start_minute, p.end_minute, r.capacity) == key
            }) {
                intervals.push(rule);
            }
        }
    }
    wit::SlotRequest {
        rules: match request.rules {
            schedule::Rules::Sla(s) => wit::Rules::Sla(wit::SlaProfile {
                response_minutes: s.response_minutes,
                working_hours,
                window_minutes: s.window_minutes,
                capacity: s.capacity,
            }),
            schedule::Rules::Intervals => wit::Rules::Intervals(intervals),
        },
        ticket: request.ticket.to_string(),
        now: request.now.max(request.not_before),
        time_zone: request.time_zone.clone(),
        days: open_days
            .iter()
            .map(|d| wit::LocalDay {
                date: d.date.clone(),
                weekday: d.weekday,
                midnight: d.span.start,
                length_minutes: ((d.span.end - d.span.start) / 60_000) as u32,
            })
            .collect(),
        bookings: request
            .bookings
            .iter()
            .map(|b| wit::Booking {
                window: slots::portico::plugin::types::TimeWindow {
                    start: b.start,
                    end: b.end,
                },
            })
            .collect(),
    }
}

fn wrong_kind<T>(plugin: &LoadedPlugin, wanted: PluginKind) -> Invocation<T> {
    Invocation {
        result: Err(PluginError::Invalid(format!(
            "a plugin of kind {} cannot act as {}",
            plugin.kind.as_str(),
            wanted.as_str()
        ))),
        report: RunReport::default(),
    }
}

/// Turns a guest-level `Err(message)` into [`PluginError::Failed`] and checks the output size.
fn flatten<T>(
    invocation: Invocation<Result<T, String>>,
    call: &Call<'_>,
    size: impl Fn(&T) -> usize,
) -> Invocation<T> {
    let limits = call.limits;
    let result = match invocation.result {
        Ok(Ok(value)) if size(&value) > limits.output_bytes => {
            Err(PluginError::OutputTooLarge(limits.output_bytes))
        }
        Ok(Ok(value)) => Ok(value),
        // Redacted before it is cut, so that no part of a secret survives at the cut.
        Ok(Err(message)) => Err(PluginError::Failed(truncate(
            redacted(call.secrets, message),
            MAX_ERROR_CHARS,
        ))),
        Err(e) => Err(e),
    };
    Invocation {
        result,
        report: invocation.report,
    }
}

fn classify(error: wasmtime::Error, state: &mut HostState) -> PluginError {
    if let Some(violation) = state.violation.take() {
        return violation;
    }
    match error.downcast_ref::<Trap>() {
        Some(Trap::OutOfFuel) => PluginError::FuelExhausted,
        _ if state.memory.denied => PluginError::MemoryLimit(state.memory.limit),
        Some(Trap::StackOverflow) => PluginError::Trap("stack overflow".into()),
        Some(trap) => PluginError::Trap(trap.to_string()),
        // Redacted before it is cut, so that no part of a secret survives at the cut.
        None => PluginError::Trap(truncate(
            state.redact(format!("{error:#}")),
            MAX_ERROR_CHARS,
        )),
    }
}

/// Longest error or detail text kept from a plugin.
const MAX_ERROR_CHARS: usize = 1_000;

/// `text` without any of the secret values (those of four characters or more; a shorter one
/// would blank out ordinary text).
fn without_secrets<'a>(mut text: String, secrets: impl Iterator<Item = &'a str>) -> String {
    for secret in secrets.filter(|s| s.len() >= 4) {
        text = text.replace(secret, "[redacted]");
    }
    text
}

/// `text` without any of the install's secrets.
fn redacted(secrets: &[(String, String)], text: String) -> String {
    without_secrets(text, secrets.iter().map(|(_, v)| v.as_str()))
}

impl PluginError {
    /// The error with the install's secrets redacted from its text.
    fn redacted(self, secrets: &[(String, String)]) -> Self {
        let clean = |text: String| redacted(secrets, text);
        match self {
            Self::Trap(m) => Self::Trap(clean(m)),
            Self::CapabilityDenied(m) => Self::CapabilityDenied(clean(m)),
            Self::Failed(m) => Self::Failed(clean(m)),
            Self::InvalidOutput(m) => Self::InvalidOutput(clean(m)),
            Self::Invalid(m) => Self::Invalid(clean(m)),
            other => other,
        }
    }
}

fn truncate(mut text: String, max: usize) -> String {
    if text.len() > max {
        let mut cut = max;
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        text.truncate(cut);
        text.push('…');
    }
    text
}

fn key_values(pairs: &[(String, String)]) -> Vec<bindings::portico::plugin::types::KeyValue> {
    pairs
        .iter()
        .map(|(key, value)| bindings::portico::plugin::types::KeyValue {
            key: key.clone(),
            value: value.clone(),
        })
        .collect()
}

/// A component's content hash (hex), which names it in the caches and the catalogue.
fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// True for a component binary (as opposed to a core module or anything else).
pub fn is_component(wasm: &[u8]) -> bool {
    wasm.len() >= 8 && wasm[0..4] == *b"\0asm" && wasm[6..8] == [0x01, 0x00]
}

/// Imports a plugin may have: our interfaces, and the WASI interfaces a std guest imports
/// (served by a context that grants nothing).
fn import_allowed(name: &str) -> bool {
    let ours = ["types", "log", "http", "smtp"].iter().any(|i| {
        WIT_VERSIONS
            .iter()
            .any(|v| name == format!("portico:plugin/{i}@{v}"))
    });
    ours || name.starts_with("wasi:cli/")
        || name.starts_with("wasi:io/")
        || name.starts_with("wasi:clocks/")
        || name.starts_with("wasi:random/")
        || name.starts_with("wasi:filesystem/")
}

/// Checks that the component exports the interface of `kind` (in one of the WIT versions that
/// define it) and imports nothing else than plugins may; returns that version.
fn check_world(
    engine: &Engine,
    component: &Component,
    kind: PluginKind,
) -> Result<&'static str, PluginError> {
    let ty = component.component_type();
    let Some(version) = kind.wit_versions().iter().copied().find(|version| {
        let export = kind.export_name(version);
        ty.exports(engine).any(|(name, _)| name == export)
    }) else {
        let found: Vec<String> = ty
            .exports(engine)
            .map(|(name, _)| name.to_string())
            .collect();
        let wanted: Vec<String> = kind
            .wit_versions()
            .iter()
            .map(|v| kind.export_name(v))
            .collect();
        return Err(PluginError::Invalid(format!(
            "a plugin of kind {} must export {}; this component exports {}",
            kind.as_str(),
            wanted.join(" or "),
            if found.is_empty() {
                "nothing".into()
            } else {
                found.join(", ")
            }
        )));
    };
    if let Some((name, _)) = ty.imports(engine).find(|(name, _)| !import_allowed(name)) {
        return Err(PluginError::Invalid(format!(
            "the component imports {name}, which plugins cannot use"
        )));
    }
    Ok(version)
}

fn spawn_epoch_ticker(engine: &Engine) {
    let weak = engine.weak();
    std::thread::Builder::new()
        .name("plugin-epoch".into())
        .spawn(move || {
            while let Some(engine) = weak.upgrade() {
                engine.increment_epoch();
                drop(engine);
                std::thread::sleep(EPOCH_TICK);
            }
        })
        .expect("spawning the epoch ticker");
}

/// Per-invocation state: an empty WASI context, limits, logs, grants.
pub struct HostState {
    wasi: WasiCtx,
    table: ResourceTable,
    memory: MemoryLimit,
    logs: Vec<LogLine>,
    log_bytes_left: usize,
    outbound_calls_left: u32,
    grants: Grants,
    secrets: Vec<String>,
    outbound: Arc<Outbound>,
    /// The invocation's idempotency key: the emails it sends get Message-IDs derived from it,
    /// so a retried delivery repeats its Message-ID and receivers can drop the duplicate.
    idempotency_key: String,
    emails_sent: u32,
    /// A channel's mail relay and DKIM key, from its install; why not, when they are wrong.
    mail_route: Result<MailRoute, String>,
    /// A limit or grant the plugin broke; it decides the invocation's error.
    violation: Option<PluginError>,
}

/// The epoch: plugins see no real time.
struct FrozenClock;

impl HostWallClock for FrozenClock {
    fn resolution(&self) -> Duration {
        Duration::from_secs(1)
    }
    fn now(&self) -> Duration {
        Duration::ZERO
    }
}

impl HostMonotonicClock for FrozenClock {
    fn resolution(&self) -> u64 {
        1_000_000_000
    }
    fn now(&self) -> u64 {
        0
    }
}

/// The time of day to the second, for kinds that talk to the world: a webhook's signature
/// carries a timestamp its receiver checks against its own clock. Whole seconds only, so the
/// clock times nothing of the host's finer than the deadline does.
struct SecondsClock;

impl HostWallClock for SecondsClock {
    fn resolution(&self) -> Duration {
        Duration::from_secs(1)
    }
    fn now(&self) -> Duration {
        let since_epoch = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        Duration::from_secs(since_epoch.as_secs())
    }
}

impl HostState {
    fn new(
        kind: PluginKind,
        limits: &Limits,
        grants: Grants,
        secrets: Vec<String>,
        outbound: Arc<Outbound>,
    ) -> Self {
        // No files, environment, arguments or network. Deterministic kinds (themes, slot
        // calculators) see the epoch and a fixed random sequence, so the same input gives the
        // same output; kinds that make outbound calls and hold secrets see the time to the
        // second and get real randomness (nonces, signatures). Only what a std guest needs.
        let mut wasi = WasiCtx::builder();
        wasi.monotonic_clock(FrozenClock)
            .insecure_random(wasmtime_wasi::Deterministic::new(vec![13, 17, 19, 23]))
            .insecure_random_seed(0)
            .allow_ip_name_lookup(false);
        if kind.is_deterministic() {
            wasi.wall_clock(FrozenClock)
                .secure_random(wasmtime_wasi::Deterministic::new(vec![7, 3, 5, 11]));
        } else {
            wasi.wall_clock(SecondsClock);
        }
        let wasi = wasi.build();
        Self {
            wasi,
            table: ResourceTable::new(),
            memory: MemoryLimit {
                limit: limits.memory_bytes,
                denied: false,
            },
            logs: Vec::new(),
            log_bytes_left: limits.log_bytes,
            outbound_calls_left: limits.outbound_calls,
            grants,
            secrets,
            outbound,
            idempotency_key: String::new(),
            emails_sent: 0,
            mail_route: Ok(MailRoute::default()),
            violation: None,
        }
    }

    /// Records a violation and returns the trap that stops the guest.
    fn stop(&mut self, violation: PluginError) -> wasmtime::Error {
        let message = violation.to_string();
        self.violation = Some(violation);
        wasmtime::Error::msg(message)
    }

    fn redact(&self, text: String) -> String {
        without_secrets(text, self.secrets.iter().map(String::as_str))
    }

    fn take_outbound_call(&mut self, what: &str) -> wasmtime::Result<()> {
        if self.outbound_calls_left == 0 {
            return Err(self.stop(PluginError::CapabilityDenied(format!(
                "{what}: no outbound calls left in this invocation"
            ))));
        }
        self.outbound_calls_left -= 1;
        Ok(())
    }
}

impl WasiView for HostState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

/// Refuses memory growth past the invocation's limit and remembers that it did, so the trap
/// that usually follows is reported as `plugin_memory_limit`.
struct MemoryLimit {
    limit: usize,
    denied: bool,
}

impl ResourceLimiter for MemoryLimit {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > self.limit {
            self.denied = true;
            return Ok(false);
        }
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= 100_000)
    }
}

impl bindings::portico::plugin::types::Host for HostState {}
impl v0_2_0::portico::plugin::types::Host for HostState {}

impl v0_2_0::portico::plugin::log::Host for HostState {
    async fn write(
        &mut self,
        level: v0_2_0::portico::plugin::log::Level,
        message: String,
    ) -> wasmtime::Result<()> {
        use v0_2_0::portico::plugin::log::Level;
        let level = match level {
            Level::Debug => log::Level::Debug,
            Level::Info => log::Level::Info,
            Level::Warn => log::Level::Warn,
            Level::Error => log::Level::Error,
        };
        log::Host::write(self, level, message).await
    }
}

impl log::Host for HostState {
    async fn write(&mut self, level: log::Level, message: String) -> wasmtime::Result<()> {
        let cost = message.len().max(1);
        if cost > self.log_bytes_left || self.logs.len() >= MAX_LOG_LINES {
            return Err(self.stop(PluginError::OutputTooLarge(self.log_bytes_left)));
        }
        self.log_bytes_left -= cost;
        let level = match level {
            log::Level::Debug => "debug",
            log::Level::Info => "info",
            log::Level::Warn => "warn",
            log::Level::Error => "error",
        };
        let message = self.redact(message);
        self.logs.push(LogLine { level, message });
        Ok(())
    }
}

impl http::Host for HostState {
    async fn send(
        &mut self,
        request: http::Request,
    ) -> wasmtime::Result<Result<http::Response, http::HttpError>> {
        let host = crate::outbound::url_host(&request.url).unwrap_or_default();
        if !self.grants.allows_http(&host) {
            return Err(self.stop(PluginError::CapabilityDenied(format!(
                "HTTP to {host:?} was not granted: the manifest must ask for it (http_hosts) and \
                 the tenant approve it (`portico plugin run --grant-http {host}`)"
            ))));
        }
        self.take_outbound_call("http")?;
        match self.outbound.http(&self.grants, request).await {
            Ok(response) => Ok(Ok(response)),
            Err(OutboundError::Refused(why)) => Err(self.stop(PluginError::CapabilityDenied(why))),
            Err(OutboundError::Timeout) => Ok(Err(http::HttpError::Timeout)),
            Err(OutboundError::Failed(why)) => Ok(Err(http::HttpError::Failed(why))),
        }
    }
}

impl smtp::Host for HostState {
    async fn send(&mut self, email: smtp::Email) -> wasmtime::Result<Result<(), smtp::SmtpError>> {
        if !self.grants.smtp {
            return Err(self.stop(PluginError::CapabilityDenied(
                "sending email was not granted: the manifest must ask for it (smtp) and the \
                 tenant approve it (`portico plugin run --grant-smtp`)"
                    .into(),
            )));
        }
        // Checked before any work is done for it: the host never builds an absurd message.
        let body = email.text.len() + email.html.as_ref().map_or(0, String::len);
        let over = if email.to.len() > MAX_EMAIL_RECIPIENTS {
            Some(format!(
                "an email to {} recipients; at most {MAX_EMAIL_RECIPIENTS}",
                email.to.len()
            ))
        } else if email.to.iter().any(|a| a.len() > 320) || email.subject.len() > 998 {
            Some("an address over 320 bytes or a subject over 998".into())
        } else if body > MAX_EMAIL_BODY_BYTES {
            Some(format!(
                "an email body of {body} bytes; at most {MAX_EMAIL_BODY_BYTES}"
            ))
        } else {
            None
        };
        if let Some(what) = over {
            return Err(self.stop(PluginError::LimitExceeded(what)));
        }
        self.take_outbound_call("smtp")?;
        self.emails_sent += 1;
        let key = format!("{}/{}", self.idempotency_key, self.emails_sent);
        let route = match &self.mail_route {
            Ok(route) => route,
            Err(why) => {
                return Ok(Err(smtp::SmtpError::Rejected(format!(
                    "the install's mail settings: {why}"
                ))));
            }
        };
        Ok(self.outbound.email(email, &key, route).await)
    }
}
