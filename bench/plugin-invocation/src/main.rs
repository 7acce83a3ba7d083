//! Per-invocation overhead of a trivial plugin, every setup in one run so that the figures share
//! the machine's state:
//!
//! - the same Rust code called natively (the floor);
//! - Portico's sandbox as the host runs it: a fresh store and instance per call, all limits on
//!   (fuel, epoch deadline, memory limiter, a WASI context granting nothing), with the pooling
//!   allocator and with on-demand allocation;
//! - Extism 1.30 with a fresh instance per call (`Plugin::new_from_compiled`), and with one
//!   instance reused across calls (Extism's usual mode; Portico never reuses an instance).
//!
//! Build the guests first (see `BENCHMARKS.md`), then `cargo run --release` here.

use std::hint::black_box;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use portico_plugin_runtime::bindings::action::exports::portico::plugin::steps::{Event, Outcome};
use portico_plugin_runtime::outbound::{Grants, Outbound, OutboundPolicy};
use portico_plugin_runtime::runtime::{Allocation, Call, Runtime};
use portico_plugin_runtime::{Limits, PluginKind};

const CALLS: usize = 20_000;
const WARM_UP: usize = 2_000;

/// What the guest does, natively.
#[inline(never)]
fn echo(event: &Event) -> Outcome {
    Outcome {
        summary: event.kind.clone(),
        external_ref: None,
    }
}

fn event() -> Event {
    Event {
        kind: "ticket.created".into(),
        occurred_at: 0,
        ticket: "{}".into(),
        contact: None,
        appointment: None,
    }
}

struct Figures {
    name: &'static str,
    samples: Vec<Duration>,
}

impl Figures {
    fn percentile(&self, p: f64) -> Duration {
        let mut sorted = self.samples.clone();
        sorted.sort();
        sorted[((sorted.len() - 1) as f64 * p) as usize]
    }

    fn per_second(&self) -> f64 {
        let total: Duration = self.samples.iter().sum();
        self.samples.len() as f64 / total.as_secs_f64()
    }
}

fn measure(name: &'static str, mut call: impl FnMut()) -> Figures {
    for _ in 0..WARM_UP {
        call();
    }
    let samples = (0..CALLS)
        .map(|_| {
            let started = Instant::now();
            call();
            started.elapsed()
        })
        .collect();
    Figures { name, samples }
}

fn read(path: PathBuf) -> Vec<u8> {
    std::fs::read(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e} (build the guests first, see BENCHMARKS.md)",
            path.display()
        )
    })
}

fn portico(
    runtime_allocation: Allocation,
    wasm: &[u8],
    tokio: &tokio::runtime::Runtime,
) -> impl FnMut() {
    let runtime = Runtime::new(
        None,
        Outbound::new(OutboundPolicy::default()),
        runtime_allocation,
    )
    .expect("runtime");
    let plugin = runtime.load(PluginKind::Action, wasm).expect("echo loads");
    let limits = Limits::for_kind(PluginKind::Action);
    let event = event();
    let handle = tokio.handle().clone();
    move || {
        let call = Call {
            limits: &limits,
            grants: Grants::none(),
            config: "{}",
            secrets: &[],
            idempotency_key: "bench",
            tenant: "",
        };
        let outcome = handle
            .block_on(runtime.run_action(&plugin, &call, &event))
            .result
            .expect("echo answers");
        assert_eq!(outcome.summary, "ticket.created");
    }
}

fn main() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let portico_wasm = read(root.join("target/guests/wasm32-wasip2/release/echo.wasm"));
    let extism_wasm =
        read(root.join("target/bench-guests/wasm32-unknown-unknown/release/extism_echo.wasm"));
    let tokio = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("tokio");

    let mut results = Vec::new();
    let native_event = event();
    results.push(measure("native Rust call", || {
        black_box(echo(black_box(&native_event)));
    }));
    results.push(measure(
        "Portico, pooling allocator (production)",
        portico(Allocation::Pooling, &portico_wasm, &tokio),
    ));
    results.push(measure(
        "Portico, on-demand allocator",
        portico(Allocation::OnDemand, &portico_wasm, &tokio),
    ));

    let manifest = extism::Manifest::new([extism::Wasm::data(extism_wasm)]);
    let compiled =
        extism::CompiledPlugin::new(extism::PluginBuilder::new(manifest).with_wasi(false))
            .expect("extism compiles");
    results.push(measure("Extism 1.30, fresh instance per call", || {
        let mut plugin = extism::Plugin::new_from_compiled(&compiled).expect("extism instantiates");
        let out: String = plugin
            .call("run", "ticket.created")
            .expect("extism answers");
        assert_eq!(out, "ticket.created");
    }));
    let mut reused = extism::Plugin::new_from_compiled(&compiled).expect("extism instantiates");
    results.push(measure("Extism 1.30, one instance reused", || {
        let out: String = reused
            .call("run", "ticket.created")
            .expect("extism answers");
        assert_eq!(out, "ticket.created");
    }));

    println!("{CALLS} calls each after {WARM_UP} warm-up calls, one thread");
    println!("| setup | median | p99 | calls/s |");
    println!("|---|---|---|---|");
    for r in &results {
        println!(
            "| {} | {:.2} µs | {:.2} µs | {:.0} |",
            r.name,
            r.percentile(0.5).as_secs_f64() * 1e6,
            r.percentile(0.99).as_secs_f64() * 1e6,
            r.per_second()
        );
    }
}
