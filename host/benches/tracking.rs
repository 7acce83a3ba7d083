//! The tracking page under load: requests per second and latency (p50, p99) on SQLite and on
//! PostgreSQL, rendered by the built-in native renderer and by a theme plugin (Harbour, in the
//! wasm sandbox) both with every page rendered and with theme output kept between requests
//! (the default), side by side in one run.
//!
//! Each setup runs a real host on loopback with one tenant, one ticket On Route (technician,
//! position, appointment: the fullest page) and a profile with booking and feedback on. A load
//! client in the same process keeps `CONCURRENCY` requests in flight over keep-alive
//! connections. Every response is checked (status 200, the ticket's title, the renderer
//! expected), so a broken page cannot pass for a fast one.
//!
//! Run with `cargo bench -p portico-host --bench tracking`. The table goes to stdout as
//! markdown, progress to stderr. PostgreSQL rows are added when `PORTICO_TEST_POSTGRES_URL`
//! (default `postgres://postgres@127.0.0.1:5432/test`) is reachable. Client and server share
//! the machine's cores, so the figures are lower bounds for a dedicated server.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use portico::config::Config;
use serde_json::{Value, json};
use support::{Api, drop_database, postgres_database};

mod support;

const HOST: &str = "bench.portico.test";
const CONCURRENCY: usize = 16;
const WARMUP: usize = 300;
const MEASURE: Duration = Duration::from_secs(8);

struct Row {
    backend: &'static str,
    renderer: &'static str,
    requests: usize,
    per_second: f64,
    p50: Duration,
    p99: Duration,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut rows = Vec::new();
    let scratch = std::env::temp_dir().join(format!("portico-bench-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&scratch)?;
    let sqlite = format!("sqlite://{}?mode=rwc", scratch.join("bench.db").display());
    rows.extend(run_backend("SQLite", &sqlite, &scratch).await?);
    match postgres_database().await {
        Ok((server, name, url)) => {
            let result = run_backend("PostgreSQL", &url, &scratch).await;
            drop_database(&server, &name).await;
            rows.extend(result?);
        }
        Err(reason) => eprintln!("PostgreSQL rows skipped: {reason}"),
    }
    std::fs::remove_dir_all(&scratch).ok();

    println!("| backend | renderer | requests | requests/s | p50 | p99 |");
    println!("|---|---|---|---|---|---|");
    for row in &rows {
        println!(
            "| {} | {} | {} | {:.0} | {:.2} ms | {:.2} ms |",
            row.backend,
            row.renderer,
            row.requests,
            row.per_second,
            row.p50.as_secs_f64() * 1e3,
            row.p99.as_secs_f64() * 1e3
        );
    }
    Ok(())
}

/// One host on `database_url`; the page measured with the built-in renderer, then the theme.
async fn run_backend(
    backend: &'static str,
    database_url: &str,
    scratch: &std::path::Path,
) -> anyhow::Result<Vec<Row>> {
    // Two hosts on the database: one renders every themed page in the sandbox, the other keeps
    // theme output between requests (the default).
    let uncached = serve(database_url, scratch, 0).await?;
    let cached = serve(database_url, scratch, Config::default().theme_cache_mb).await?;
    let (profile, theme, path) = fixture(&uncached).await?;
    let mut rows = Vec::new();
    for (renderer, host, install, marker) in [
        (
            "built-in (native)",
            &uncached,
            Value::Null,
            "class=\"timeline\"",
        ),
        (
            "Harbour theme (wasm), every page rendered",
            &uncached,
            theme.clone(),
            "harbour",
        ),
        (
            "Harbour theme (wasm), output kept",
            &cached,
            theme.clone(),
            "harbour",
        ),
    ] {
        uncached
            .call(
                reqwest::Method::PATCH,
                &profile,
                json!({"theme_install_id": install}),
            )
            .await?;
        eprintln!("{backend}, {renderer}: warming up");
        let url = format!("{}{path}", host.base);
        load(&url, WARMUP, Duration::MAX, marker).await?;
        eprintln!("{backend}, {renderer}: measuring for {MEASURE:?}");
        let started = Instant::now();
        let mut latencies = load(&url, usize::MAX, MEASURE, marker).await?;
        let elapsed = started.elapsed();
        latencies.sort();
        let at =
            |q: f64| latencies[((latencies.len() as f64 * q) as usize).min(latencies.len() - 1)];
        rows.push(Row {
            backend,
            renderer,
            requests: latencies.len(),
            per_second: latencies.len() as f64 / elapsed.as_secs_f64(),
            p50: at(0.50),
            p99: at(0.99),
        });
    }
    Ok(rows)
}

/// A host on `database_url`, with a platform token for its API.
async fn serve(
    database_url: &str,
    scratch: &std::path::Path,
    theme_cache_mb: u64,
) -> anyhow::Result<Api> {
    let config = Config {
        theme_cache_mb,
        ..support::config(database_url, scratch)
    };
    support::serve(config).await
}

/// Keeps [`CONCURRENCY`] requests in flight until `count` are done or `time` has passed;
/// returns every request's latency.
async fn load(
    url: &str,
    count: usize,
    time: Duration,
    marker: &str,
) -> anyhow::Result<Vec<Duration>> {
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(CONCURRENCY)
        .build()?;
    let started = Instant::now();
    let issued = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut workers = Vec::new();
    for _ in 0..CONCURRENCY {
        let (client, url, marker, issued) = (
            client.clone(),
            url.to_string(),
            marker.to_string(),
            issued.clone(),
        );
        workers.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            while issued.fetch_add(1, std::sync::atomic::Ordering::Relaxed) < count
                && started.elapsed() < time
            {
                let sent = Instant::now();
                let response = client.get(&url).header("host", HOST).send().await?;
                let status = response.status();
                let body = response.text().await?;
                latencies.push(sent.elapsed());
                if status != 200
                    || !body.contains("Printer prints blank pages")
                    || !body.contains(&marker)
                {
                    bail!("unexpected page ({status}): {:.300}", body);
                }
            }
            Ok::<_, anyhow::Error>(latencies)
        }));
    }
    let mut all = Vec::new();
    for worker in workers {
        all.extend(worker.await??);
    }
    Ok(all)
}

/// A tenant with a profile (booking and feedback on), a project using it, a technician and a
/// ticket On Route. Returns the profile's API path, the Harbour install and the link's path.
async fn fixture(api: &Api) -> anyhow::Result<(String, Value, String)> {
    use reqwest::Method;
    let tenant = api
        .call(Method::POST, "/api/v1/tenants", json!({"slug": "bench", "display_name": "Bench Printers", "time_zone": "Europe/Berlin", "language": "en"}))
        .await?;
    let t = format!(
        "/api/v1/tenants/{}",
        tenant["id"].as_str().context("tenant id")?
    );
    let installs = api
        .call(Method::GET, &format!("{t}/plugins"), Value::Null)
        .await?;
    let theme = installs["items"]
        .as_array()
        .and_then(|i| i.iter().find(|i| i["plugin_id"] == "harbour"))
        .map(|i| i["id"].clone())
        .context("Harbour is installed")?;
    let profile = api
        .call(
            Method::POST,
            &format!("{t}/portal-profiles"),
            json!({"name": "Bench", "mode": "booking", "feedback": true,
            "booking_text": "Choose a window.", "salutation": "Hello {first_name},"}),
        )
        .await?;
    let profile = format!(
        "{t}/portal-profiles/{}",
        profile["id"].as_str().context("profile id")?
    );
    let profile_id = profile.rsplit('/').next().unwrap_or_default().to_string();
    let project = api
        .call(
            Method::POST,
            &format!("{t}/projects"),
            json!({"name": "Printers", "profile_id": profile_id}),
        )
        .await?;
    let technician = api
        .call(Method::POST, &format!("{t}/users"), json!({"email": "tom@bench.example", "display_name": "Tom Techniker", "roles": ["technician"]}))
        .await?;
    let ticket = api
        .call(
            Method::POST,
            &format!("{t}/tickets"),
            json!({"project_id": project["id"], "title": "Printer prints blank pages",
            "technician_id": technician["id"],
            "contact": {"first_name": "Eva", "last_name": "Schmidt", "email": "eva@example.com"}}),
        )
        .await?;
    let path = ticket["tracking_url"]
        .as_str()
        .and_then(|u| u.split("portico.test").nth(1))
        .context("tracking url")?
        .to_string();
    let ticket = format!(
        "{t}/tickets/{}",
        ticket["id"].as_str().context("ticket id")?
    );
    api.call(
        Method::PATCH,
        &ticket,
        json!({"appointment": {"start": "2026-11-24T08:00:00Z", "end": "2026-11-24T10:00:00Z"}}),
    )
    .await?;
    api.call(
        Method::POST,
        &format!("{ticket}/status"),
        json!({"status": "on_route"}),
    )
    .await?;
    api.call(
        Method::POST,
        &format!("{ticket}/position"),
        json!({"latitude": 52.52, "longitude": 13.405, "eta": "2026-11-24T08:30:00Z"}),
    )
    .await?;
    Ok((profile, theme, path))
}
