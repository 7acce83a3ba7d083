//! The plugin sandbox itself, without the host's API: hostile guests get typed errors, the host
//! stays healthy, and the next valid call succeeds; what the outbound guard sends on, to
//! receivers on loopback.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::response::IntoResponse;

use portico::plugins::bindings::action::exports::portico::plugin::steps::Event;
use portico::plugins::bindings::portico::plugin::http;
use portico::plugins::bindings::theme::exports::portico::plugin::pages::{Page, PageKind};
use portico::plugins::outbound::{Grants, Outbound, OutboundError, OutboundPolicy};
use portico::plugins::runtime::{Allocation, Call, CompiledCache, Runtime};
use portico::plugins::{Limits, PluginKind};
use portico_sdk::schedule::{Day, Interval, Request, Rules};
use portico_sdk::time::Window;
use serde_json::json;

use crate::support::guest_wasm;

fn runtime() -> Runtime {
    Runtime::new(
        None,
        Outbound::new(OutboundPolicy::default()),
        Allocation::Pooling,
    )
    .unwrap()
}

/// A call without grants or secrets.
fn call<'a>(limits: &'a Limits, config: &'a str) -> Call<'a> {
    Call {
        limits,
        grants: Grants::none(),
        config,
        secrets: &[],
        idempotency_key: "test",
        tenant: "",
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

fn action_limits() -> Limits {
    Limits {
        deadline_ms: 1_500,
        memory_bytes: 32 << 20,
        ..Limits::for_kind(PluginKind::Action)
    }
}

async fn act(runtime: &Runtime, behaviour: &str) -> Result<String, String> {
    let plugin = runtime
        .load(PluginKind::Action, &guest_wasm("hostile"))
        .unwrap();
    let config = json!({"behaviour": behaviour}).to_string();
    let limits = action_limits();
    let secrets = [("api_key".to_string(), "s3cr3t-key".to_string())];
    let call = Call {
        limits: &limits,
        grants: Grants::none(),
        config: &config,
        secrets: &secrets,
        idempotency_key: "key-1",
        tenant: "",
    };
    let invocation = runtime.run_action(&plugin, &call, &event()).await;
    invocation
        .result
        .map(|o| o.summary)
        .map_err(|e| e.code().to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_guests_get_typed_errors_and_the_next_call_succeeds() {
    let runtime = runtime();
    for (behaviour, code) in [
        ("loop", "plugin_timeout"),
        ("memory", "plugin_memory_limit"),
        ("recursion", "plugin_trap"),
        ("panic", "plugin_trap"),
        ("huge-output", "plugin_output_too_large"),
        ("log-flood", "plugin_output_too_large"),
        ("http", "plugin_capability_denied"),
    ] {
        assert_eq!(
            act(&runtime, behaviour).await,
            Err(code.to_string()),
            "behaviour {behaviour}"
        );
        assert_eq!(
            act(&runtime, "ok").await,
            Ok("handled ticket.created".to_string()),
            "after {behaviour}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_state_survives_between_calls() {
    let runtime = runtime();
    for _ in 0..3 {
        assert_eq!(act(&runtime, "counter").await, Ok("1".to_string()));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn guests_see_no_files_environment_or_network() {
    let runtime = runtime();
    let report: serde_json::Value =
        serde_json::from_str(&act(&runtime, "sandbox").await.unwrap()).unwrap();
    assert!(
        report["file"].as_str().unwrap().starts_with("Err"),
        "{report}"
    );
    assert!(
        report["dir"].as_str().unwrap().starts_with("Err"),
        "{report}"
    );
    assert_eq!(report["env"], json!([]));
    // An action makes outbound calls: it sees the time of day, to the second.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let seen = report["clock_secs"].as_u64().unwrap();
    assert!(seen.abs_diff(now) <= 5, "{report}");
    assert_eq!(
        report["secret_chars"],
        "s3cr3t-key".len(),
        "granted secrets do arrive"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kinds_that_hold_secrets_get_real_randomness() {
    let runtime = runtime();
    let first = act(&runtime, "random").await.unwrap();
    let second = act(&runtime, "random").await.unwrap();
    assert_eq!(first.len(), 32, "{first}");
    assert_ne!(
        first, second,
        "an action's nonces must not repeat across runs"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deterministic_kinds_run_out_of_fuel() {
    let runtime = runtime();
    let plugin = runtime
        .load(PluginKind::SlotCalculator, &guest_wasm("spinner"))
        .unwrap();
    let limits = Limits::for_kind(PluginKind::SlotCalculator);
    let midnight = 1_795_392_000_000;
    let morning = Window {
        start: midnight + 480 * 60_000,
        end: midnight + 720 * 60_000,
    };
    let monday = Day {
        date: "2026-11-23".into(),
        weekday: 1,
        span: Window {
            start: midnight,
            end: midnight + 1440 * 60_000,
        },
        open: vec![],
        intervals: vec![Interval {
            name: "Morning".into(),
            window: morning,
            capacity: 2,
        }],
        offerable: true,
    };
    let now = midnight - 3_600_000;
    let request = Request {
        rules: Rules::Intervals,
        max_per_day: None,
        ticket: serde_json::json!({}),
        created_at: now,
        now,
        not_before: now,
        time_zone: "UTC".into(),
        days: vec![monday],
        bookings: vec![],
    };
    let spun = runtime
        .calculate(
            &plugin,
            &call(&limits, r#"{"behaviour": "spin"}"#),
            &request,
        )
        .await;
    assert_eq!(spun.result.unwrap_err().code(), "plugin_fuel_exhausted");
    assert_eq!(
        spun.report.fuel_used, limits.fuel,
        "the whole budget was used"
    );

    let computed = runtime
        .calculate(&plugin, &call(&limits, "{}"), &request)
        .await;
    let slots = computed.result.unwrap();
    assert_eq!(slots.len(), 1);
    assert_eq!(slots[0].window, morning);
    assert_eq!(slots[0].capacity_left, 2);
    assert!(computed.report.fuel_used.unwrap() > 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_components_of_the_right_world_load() {
    let runtime = runtime();
    let core_module = b"\0asm\x01\x00\x00\x00".to_vec();
    let random = b"this is not WebAssembly at all".to_vec();
    for (kind, bytes) in [
        (PluginKind::Action, core_module),
        (PluginKind::Action, random),
        (PluginKind::Action, guest_wasm("spinner")),
        (PluginKind::Theme, guest_wasm("hostile")),
    ] {
        let err = runtime.load(kind, &bytes).err().expect("refused");
        assert_eq!(err.code(), "plugin_invalid", "{err}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_spinning_guest_does_not_block_others() {
    let runtime = std::sync::Arc::new(runtime());
    let theme = runtime
        .load(PluginKind::Theme, &guest_wasm("hello-theme"))
        .unwrap();
    let spinner = {
        let runtime = runtime.clone();
        tokio::spawn(async move { act(&runtime, "loop").await })
    };
    tokio::time::sleep(Duration::from_millis(50)).await;
    let page = Page {
        kind: PageKind::Tracking,
        view_model: json!({"ticket": {"title": "Printer <jam>"}}).to_string(),
        language: "de".into(),
    };
    let limits = Limits::for_kind(PluginKind::Theme);
    let rendered = runtime
        .render(&theme, &call(&limits, r##"{"accent": "#123456"}"##), &page)
        .await;
    let rendered = rendered.result.unwrap();
    assert!(
        rendered.html.contains("<h1>Printer &lt;jam&gt;</h1>"),
        "{}",
        rendered.html
    );
    assert!(rendered.html.contains("lang=\"de\""));
    assert_eq!(rendered.stylesheet, "h1 { color: #123456; }");
    assert!(
        !spinner.is_finished(),
        "the theme rendered while the loop was still running"
    );
    assert_eq!(spinner.await.unwrap(), Err("plugin_timeout".to_string()));
}

/// One request a loopback receiver saw: method, headers and body.
type Seen = Arc<Mutex<Vec<(String, axum::http::HeaderMap, Vec<u8>)>>>;

/// A loopback HTTP receiver that records every request and answers `307` to `redirect` when
/// given, else `200`.
async fn receiver(redirect: Option<String>) -> (std::net::SocketAddr, Seen) {
    let seen: Seen = Arc::default();
    let record = seen.clone();
    let app = axum::Router::new().fallback(move |request: axum::extract::Request| {
        let (record, redirect) = (record.clone(), redirect.clone());
        async move {
            let (parts, body) = request.into_parts();
            let body = axum::body::to_bytes(body, 1 << 20).await.unwrap();
            record
                .lock()
                .unwrap()
                .push((parts.method.to_string(), parts.headers, body.to_vec()));
            match redirect {
                Some(to) => (
                    axum::http::StatusCode::TEMPORARY_REDIRECT,
                    [(axum::http::header::LOCATION, to)],
                )
                    .into_response(),
                None => "ok".into_response(),
            }
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (address, seen)
}

fn loopback_outbound() -> (Outbound, Grants) {
    let policy = OutboundPolicy {
        allow_private: true,
        allow_http: true,
        smtp: None,
    };
    let grants = Grants {
        http_hosts: vec!["127.0.0.1".into()],
        smtp: false,
    };
    (Outbound::new(policy), grants)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redirect_to_another_origin_carries_no_credentials_or_body() {
    let (landing, landed) = receiver(None).await;
    let (start, started) = receiver(Some(format!("http://{landing}/land"))).await;
    let (outbound, grants) = loopback_outbound();
    let header = |name: &str, value: &str| (name.to_string(), value.to_string());
    let request = http::Request {
        method: "POST".into(),
        url: format!("http://{start}/start"),
        headers: vec![
            header("Authorization", "Bearer s3cret"),
            header("Cookie", "session=1"),
            header("Host", "internal.example"),
            header("Content-Type", "application/json"),
            header("X-Trace", "kept"),
        ],
        body: b"{\"card\": 4242}".to_vec(),
    };
    let response = outbound.http(&grants, request).await.unwrap();
    assert_eq!(response.status, 200);
    let first = &started.lock().unwrap()[0];
    assert_eq!(first.0, "POST");
    assert_eq!(first.1["authorization"], "Bearer s3cret");
    assert_eq!(
        first.1["host"],
        start.to_string(),
        "a plugin's Host header is never passed on"
    );
    assert_eq!(first.2, b"{\"card\": 4242}");
    let second = &landed.lock().unwrap()[0];
    assert_eq!(second.0, "GET", "303 semantics across origins");
    for name in ["authorization", "cookie", "content-type"] {
        assert!(second.1.get(name).is_none(), "{name} was sent on");
    }
    assert_eq!(second.1["x-trace"], "kept");
    assert!(second.2.is_empty(), "the body was sent on");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn absurd_request_headers_are_refused_before_the_host_acts() {
    let (address, seen) = receiver(None).await;
    let (outbound, grants) = loopback_outbound();
    let request = http::Request {
        method: "GET".into(),
        url: format!("http://{address}/"),
        headers: (0..40_000)
            .map(|i| (format!("x-h{i}"), "v".to_string()))
            .collect(),
        body: Vec::new(),
    };
    let refused = outbound.http(&grants, request).await.map(|r| r.status);
    assert!(
        matches!(refused, Err(OutboundError::Refused(ref m)) if m.contains("headers")),
        "{refused:?}"
    );
    assert!(seen.lock().unwrap().is_empty());
}

/// A runtime that keeps compiled components in `dir`, vouched for with `key`.
fn caching_runtime(dir: &std::path::Path, key: u8) -> Runtime {
    let cache = CompiledCache {
        dir: dir.to_path_buf(),
        key: [key; 32],
    };
    Runtime::new(
        Some(cache),
        Outbound::new(OutboundPolicy::default()),
        Allocation::Pooling,
    )
    .unwrap()
}

fn cached_files(dir: &std::path::Path) -> std::collections::BTreeSet<std::path::PathBuf> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_artefacts_this_host_wrote_for_a_component_are_loaded() {
    let dir = std::env::temp_dir().join(format!("portico-cache-{}", uuid::Uuid::new_v4().simple()));
    let first = caching_runtime(&dir, 7);
    let (hello, broken) = (guest_wasm("hello-theme"), guest_wasm("broken-theme"));
    first.load(PluginKind::Theme, &hello).unwrap();
    let hello_file = cached_files(&dir).into_iter().next().unwrap();
    first.load(PluginKind::Theme, &broken).unwrap();
    let broken_file = cached_files(&dir)
        .into_iter()
        .find(|f| *f != hello_file)
        .unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&dir), 0o700);
        assert_eq!(mode(&hello_file), 0o600);
    }
    // Someone who can write the folder puts another theme's native code under hello's name.
    std::fs::copy(&broken_file, &hello_file).unwrap();
    let page = Page {
        kind: PageKind::Tracking,
        view_model: json!({"ticket": {"title": "Paper jam"}}).to_string(),
        language: "en".into(),
    };
    let limits = Limits::for_kind(PluginKind::Theme);
    for runtime in [caching_runtime(&dir, 7), caching_runtime(&dir, 8)] {
        let theme = runtime.load(PluginKind::Theme, &hello).unwrap();
        let rendered = runtime
            .render(&theme, &call(&limits, "{}"), &page)
            .await
            .result
            .unwrap();
        assert!(
            rendered.html.contains("<h1>Paper jam</h1>") && !rendered.html.contains("<title>ok"),
            "the swapped artefact ran: {}",
            rendered.html
        );
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn other_ports_need_a_grant_that_names_them() {
    let outbound = Outbound::new(OutboundPolicy {
        allow_private: false,
        allow_http: true,
        smtp: None,
    });
    let request = |url: &str| http::Request {
        method: "GET".into(),
        url: url.into(),
        headers: Vec::new(),
        body: Vec::new(),
    };
    let host_only = Grants {
        http_hosts: vec!["hooks.example.com".into()],
        smtp: false,
    };
    let refused = outbound
        .http(&host_only, request("http://hooks.example.com:8080/"))
        .await
        .map(|r| r.status);
    assert!(
        matches!(refused, Err(OutboundError::Refused(ref m)) if m.contains("port 8080")),
        "{refused:?}"
    );
    // Named with its port, the call passes the guard (and fails later, with no network here).
    let with_port = Grants {
        http_hosts: vec!["hooks.example.com:8080".into()],
        smtp: false,
    };
    let passed = outbound
        .http(&with_port, request("http://hooks.example.com:8080/"))
        .await
        .map(|r| r.status);
    assert!(
        !matches!(passed, Err(OutboundError::Refused(ref m)) if m.contains("port")),
        "{passed:?}"
    );
}
