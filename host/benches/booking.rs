//! Booking windows: 14 days of windows for a rule set with 50 technicians (capacity 50 per
//! window) and 2,000 existing bookings, computed by the built-in `standard-slots` plugin in the
//! wasm sandbox (a fresh instance per call, the host's window checks included) beside the same
//! algorithm compiled natively, with and without the checks, in one run.
//!
//! Run with `cargo bench -p portico-host --bench booking`; the table goes to stdout as markdown.

use std::time::{Duration, Instant};

use portico::booking::calendar;
use portico::booking::model::{
    ClockTime, Definition, Horizon, HorizonUnit, Source, TimeRange, Weekday,
};
use portico::plugins::outbound::{Grants, Outbound, OutboundPolicy};
use portico::plugins::runtime::{Allocation, Call, Runtime};
use portico::plugins::{Limits, PluginKind};
use portico_sdk::schedule::{self, Request, Rules, SlaRules};
use portico_sdk::time::Window;

const TECHNICIANS: u32 = 50;
const BOOKINGS: usize = 2_000;
const ROUNDS: usize = 300;

fn rules() -> Definition {
    let day = vec![TimeRange {
        start: ClockTime::parse("07:00").unwrap(),
        end: ClockTime::parse("19:00").unwrap(),
    }];
    let weekdays = [
        Weekday::Monday,
        Weekday::Tuesday,
        Weekday::Wednesday,
        Weekday::Thursday,
        Weekday::Friday,
        Weekday::Saturday,
    ];
    Definition {
        name: "Fleet".into(),
        time_zone: "Europe/Berlin".into(),
        source: Source::Sla {
            business_hours: weekdays.into_iter().map(|d| (d, day.clone())).collect(),
            response_minutes: 0,
            deadline_minutes: None,
            visit_minutes: 60,
            window_minutes: 60,
            step_minutes: None,
            buffer_minutes: 15,
            capacity: TECHNICIANS,
        },
        closures: Vec::new(),
        notice_minutes: 120,
        horizon: Horizon {
            days: 14,
            unit: HorizonUnit::Calendar,
        },
        max_per_day: None,
        calculator_install_id: None,
    }
}

fn request() -> Request {
    let definition = rules();
    let tz = jiff::tz::TimeZone::get(&definition.time_zone).unwrap();
    // Monday 2026-11-30, 06:00 in Berlin.
    let now = "2026-11-30T05:00:00Z"
        .parse::<jiff::Timestamp>()
        .unwrap()
        .as_millisecond();
    let days = calendar::days(&definition, &tz, now, now).unwrap();
    // 2,000 one-hour bookings spread over the business hours of the fortnight.
    let open: Vec<Window> = days.iter().flat_map(|d| d.open.iter().copied()).collect();
    let hours: Vec<i64> = open
        .iter()
        .flat_map(|w| (0..(w.end - w.start) / 3_600_000).map(move |h| w.start + h * 3_600_000))
        .collect();
    let bookings = (0..BOOKINGS)
        .map(|i| {
            let start = hours[(i * 7) % hours.len()];
            Window {
                start,
                end: start + 3_600_000,
            }
        })
        .collect();
    Request {
        rules: Rules::Sla(SlaRules {
            response_minutes: 0,
            deadline_minutes: None,
            visit_minutes: 60,
            window_minutes: 60,
            step_minutes: 60,
            buffer_minutes: 15,
            capacity: TECHNICIANS,
        }),
        max_per_day: None,
        ticket: serde_json::json!({"priority": "normal"}),
        created_at: now,
        now,
        not_before: now + 120 * 60_000,
        time_zone: definition.time_zone,
        days,
        bookings,
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

fn row(name: &str, mut times: Vec<Duration>, windows: usize) -> (String, Duration) {
    times.sort();
    let median = percentile(&times, 0.5);
    println!(
        "| {name} | {windows} | {:.1} µs | {:.1} µs |",
        median.as_secs_f64() * 1e6,
        percentile(&times, 0.99).as_secs_f64() * 1e6
    );
    (name.to_string(), median)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let request = request();
    let native = schedule::standard_slots(&request).map_err(anyhow::Error::msg)?;
    let runtime = Runtime::new(
        None,
        Outbound::new(OutboundPolicy::default()),
        Allocation::Pooling,
    )?;
    let plugin = runtime.load(
        PluginKind::SlotCalculator,
        include_bytes!(env!("PORTICO_BUILTIN_STANDARD_SLOTS")),
    )?;
    let limits = Limits::for_kind(PluginKind::SlotCalculator);
    let call = Call {
        limits: &limits,
        grants: Grants::none(),
        config: "{}",
        secrets: &[],
        idempotency_key: "bench",
        tenant: "",
    };
    let sandboxed = runtime.calculate(&plugin, &call, &request).await.result?;
    assert_eq!(sandboxed, native, "the plugin and the native build agree");
    eprintln!(
        "{} windows, {} bookings, {} days",
        native.len(),
        request.bookings.len(),
        request.days.len()
    );

    // The fixed cost of a call: one day, no bookings.
    let mut small = request.clone();
    small.days.truncate(1);
    small.bookings.clear();
    let small_windows = schedule::standard_slots(&small)
        .map_err(anyhow::Error::msg)?
        .len();
    let mut small_native = Vec::new();
    let mut small_wasm = Vec::new();
    let mut plain = Vec::new();
    let mut checked = Vec::new();
    let mut wasm = Vec::new();
    for _ in 0..ROUNDS {
        let started = Instant::now();
        std::hint::black_box(schedule::standard_slots(std::hint::black_box(&request)).unwrap());
        plain.push(started.elapsed());
        let started = Instant::now();
        let slots = schedule::standard_slots(std::hint::black_box(&request)).unwrap();
        schedule::check(&request, &slots).unwrap();
        checked.push(started.elapsed());
        let started = Instant::now();
        std::hint::black_box(runtime.calculate(&plugin, &call, &request).await.result?);
        wasm.push(started.elapsed());
        let started = Instant::now();
        let slots = schedule::standard_slots(std::hint::black_box(&small)).unwrap();
        schedule::check(&small, &slots).unwrap();
        small_native.push(started.elapsed());
        let started = Instant::now();
        std::hint::black_box(runtime.calculate(&plugin, &call, &small).await.result?);
        small_wasm.push(started.elapsed());
    }
    println!("| path | windows | median | p99 |");
    println!("|---|---|---|---|");
    let (_, floor) = row("native: standard algorithm", plain, native.len());
    let (_, native_checked) = row(
        "native: standard algorithm + host checks",
        checked,
        native.len(),
    );
    let (_, plugin_time) = row(
        "plugin `standard-slots` in the sandbox (fresh instance, host checks)",
        wasm,
        native.len(),
    );
    row(
        "native, one day without bookings: algorithm + host checks",
        small_native,
        small_windows,
    );
    row(
        "plugin, one day without bookings (the fixed cost of a call)",
        small_wasm,
        small_windows,
    );
    println!();
    println!(
        "plugin / native with the same checks: {:.2}×; plugin / bare native algorithm: {:.2}×",
        plugin_time.as_secs_f64() / native_checked.as_secs_f64(),
        plugin_time.as_secs_f64() / floor.as_secs_f64()
    );
    Ok(())
}
