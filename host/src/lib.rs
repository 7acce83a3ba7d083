//! Portico host: a multi-tenant server for branded customer portals.
//!
//! The crate is a library so that tests and benchmarks can build the very application the
//! `portico` binary serves.

pub mod audit;
pub mod auth;
pub mod automations;
pub mod booking;
pub mod cli;
pub mod config;
pub mod db;
pub mod deliveries;
pub mod demo;
pub mod domains;
pub mod error;
pub mod events;
pub mod http;
pub mod plugins;
pub mod policies;
pub mod portal;
pub mod profiles;
pub mod sessions;
pub mod tenants;
pub mod tickets;
pub mod types;

use std::ops::Deref;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tower::ServiceExt;

use crate::config::Config;
use crate::db::Db;
use crate::domains::{DnsVerifier, HostResolver};
use crate::events::Bus;
use crate::http::pages::Pages;
use crate::plugins::Plugins;
use crate::policies::Authz;

/// Shared state of a running host. Cheap to clone.
#[derive(Clone)]
pub struct AppState(Arc<Services>);

pub struct Services {
    pub config: Config,
    pub db: Db,
    /// Emits domain events with each change and fans them out after commit.
    pub events: Bus,
    pub hosts: HostResolver,
    pub authz: Authz,
    pub dns: DnsVerifier,
    pub pages: Pages,
    pub plugins: Plugins,
    pub texts: portal::Texts,
    pub guesses: portal::GuessCounter,
    pub sign_ins: sessions::SignInThrottle,
    /// Tickets as they change, for live tracking pages.
    pub ticket_changes: portal::TicketChanges,
    /// Live pages' streams open now, for their caps.
    pub live_streams: portal::LiveStreams,
}

impl Deref for AppState {
    type Target = Services;
    fn deref(&self) -> &Services {
        &self.0
    }
}

impl AppState {
    /// Connects to the database, applies migrations and builds every service.
    pub async fn build(config: Config) -> anyhow::Result<Self> {
        if config.data_dir.exists() {
            portico_plugin_runtime::files::refuse_shared(&config.data_dir)?;
        }
        let db = Db::open(&config).await?;
        let events = event_bus(db.clone());
        let hosts = HostResolver::new(db.pool.clone(), config.base_domain.clone());
        let authz = Authz::new(
            db.pool.clone(),
            config.authz_cache_capacity,
            std::time::Duration::from_secs(config.authz_cache_ttl_secs.max(1)),
        );
        let ticket_changes = portal::TicketChanges::new();
        let plugins = Plugins::new(&config)?;
        events.subscribe(hosts.clone());
        events.subscribe(authz.clone());
        events.subscribe(plugins::prepared::DropPreparedInstalls(
            plugins.runnables.clone(),
        ));
        events.subscribe(ticket_changes.clone());
        match db.backend {
            db::Backend::Postgres => {
                let (authz, hosts, runnables) =
                    (authz.clone(), hosts.clone(), plugins.runnables.clone());
                // What was announced while the listener was away is unknown: empty the caches.
                let forget = move || {
                    authz.invalidate_all();
                    hosts.invalidate();
                    runnables.invalidate_all();
                };
                events::spawn_replica_listener(events.clone(), config.database_url(), forget);
            }
            db::Backend::Sqlite => events::spawn_process_watcher(events.clone()).await?,
        }
        events::spawn_pruner(events.clone(), config.event_retention());
        plugins::runs::spawn_input_sweeper(db.pool.clone());
        let loaded = plugins.load_catalogue(&db.pool).await?;
        tracing::info!(plugins = loaded, "plugin catalogue compiled");
        let state = Self(Arc::new(Services {
            plugins,
            texts: portal::Texts::load()?,
            guesses: portal::guess_counter(),
            sign_ins: sessions::SignInThrottle::default(),
            ticket_changes,
            live_streams: portal::LiveStreams::default(),
            hosts,
            authz,
            dns: DnsVerifier::new(config.dns_resolver)?,
            pages: Pages::new()?,
            events,
            db,
            config,
        }));
        plugins::builtin::publish(&state).await?;
        // From here on every event reaches the automated actions, even before `serve` runs.
        automations::consumer::consumer()
            .register(&state.events)
            .await?;
        Ok(state)
    }

    /// True for the host names the platform itself answers at (not a tenant's).
    pub fn is_platform_host(&self, host: &str) -> bool {
        let host = host
            .split(':')
            .next()
            .unwrap_or_default()
            .to_ascii_lowercase();
        let public = self
            .config
            .public_url
            .split("://")
            .nth(1)
            .unwrap_or_default();
        let public = public.split(['/', ':']).next().unwrap_or_default();
        host == self.config.base_domain || host == public
    }
}

/// The event bus with the reactions every write needs, whoever writes: the server, the command
/// line or a test. A new tenant gets its built-in plugins and its default portal profile in the
/// transaction that creates it.
pub fn event_bus(db: Db) -> Bus {
    let events = Bus::new(db);
    events.react(plugins::builtin::InstallForNewTenant);
    events.react(profiles::DefaultForNewTenant);
    events
}

/// Serves the application on `listener` until `shutdown` completes.
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let workers = if state.config.background_workers {
        vec![
            tokio::spawn(automations::consumer::consumer().run(state.events.clone())),
            tokio::spawn(deliveries::worker::run(state.clone())),
            tokio::spawn(automations::service::run_time_triggers(state.clone())),
            tokio::spawn(domains::service::run_checks(state.clone())),
        ]
    } else {
        Vec::new()
    };
    let limits = state.config.server.clone();
    let app = http::router(state);
    // Each connection holds a permit: past the cap, the next waits to be accepted.
    let permits = Arc::new(tokio::sync::Semaphore::new(limits.max_connections.max(1)));
    let mut connections = hyper::server::conn::http1::Builder::new();
    connections
        .timer(TokioTimer::new())
        .header_read_timeout(Duration::from_secs(limits.header_read_timeout_secs.max(1)));
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        let permit = tokio::select! {
            permit = permits.clone().acquire_owned() => permit?,
            () = &mut shutdown => break,
        };
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of file descriptors, say: wait a moment rather than spin.
                    tracing::warn!(error = %e, "accepting a connection failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let app = app.clone();
        let service = hyper::service::service_fn(move |mut request: hyper::Request<Incoming>| {
            request.extensions_mut().insert(ConnectInfo(peer));
            app.clone().oneshot(request.map(axum::body::Body::new))
        });
        let connection =
            graceful.watch(connections.serve_connection(TokioIo::new(stream), service));
        tokio::spawn(async move {
            let _ = connection.await;
            drop(permit);
        });
    }
    for worker in workers {
        worker.abort();
    }
    // Open requests may finish; live pages' streams are cut after a grace period.
    tokio::select! {
        () = graceful.shutdown() => {}
        () = tokio::time::sleep(Duration::from_secs(10)) => {}
    }
    Ok(())
}
