//! Authorisation decisions and Host-header tenant resolution, at 10 and at 10,000 tenants.
//!
//! Portico keeps one small casbin enforcer per tenant in a bounded cache; the baseline is the
//! single global enforcer holding every tenant's rules that casbin-rs users usually build. Host
//! resolution is measured through its cache and with the cache dropped before every lookup.
//! Every decision and lookup is checked, so a broken path cannot pass for a fast one.
//!
//! Run with `cargo bench -p portico-host --bench authz`. The table goes to stdout as markdown,
//! progress to stderr. PostgreSQL rows are added when `PORTICO_TEST_POSTGRES_URL` (default
//! `postgres://postgres@127.0.0.1:5432/test`) is reachable.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::Context;
use casbin::{CoreApi, DefaultModel, Enforcer, MemoryAdapter, MgmtApi};
use portico::config::Config;
use portico::db::{Db, Pool, new_id, now_ms};
use portico::domains::HostResolver;
use portico::policies::{Authz, BUILT_IN_ROLES, MODEL};
use portico::types::TenantId;
use sqlx::Connection;

const SIZES: [usize; 2] = [10, 10_000];
const BASE_DOMAIN: &str = "portico.test";
const POSTGRES_URL: &str = "PORTICO_TEST_POSTGRES_URL";
const DEFAULT_POSTGRES_URL: &str = "postgres://postgres@127.0.0.1:5432/test";

/// The staff every tenant gets, one user per role.
const ROLES: [&str; 3] = ["tenant-admin", "dispatcher", "viewer"];

/// Route template, method, and whether each of [`ROLES`] may do it, per the built-in roles.
const CHECKS: [(&str, &str, [bool; 3]); 4] = [
    ("/api/v1/tenants/{tenant}/users", "GET", [true, true, true]),
    (
        "/api/v1/tenants/{tenant}/users",
        "POST",
        [true, false, false],
    ),
    ("/api/v1/tenants/{tenant}/audit", "GET", [true, false, true]),
    (
        "/api/v1/tenants/{tenant}/users/{user}",
        "DELETE",
        [true, false, false],
    ),
];

/// Decisions generated per size and then cycled through; enough to reach all 10,000 tenants.
const REQUESTS: usize = 65_536;

/// Cache hits are cheap: many calls.
const HOT: Budget = Budget {
    warmup: 1_000,
    calls: 200_000,
    time: Duration::from_secs(3),
};
/// Cache misses go to the database: fewer calls, after enough unrecorded ones to open the
/// pool's connections and prepare their statements.
const COLD: Budget = Budget {
    warmup: 100,
    calls: 2_000,
    time: Duration::from_secs(5),
};
/// The global enforcer takes tens of milliseconds per decision at 10,000 tenants, so the time
/// bound is what stops it there; it caches nothing, so there is little to warm.
const GLOBAL: Budget = Budget {
    warmup: 3,
    calls: 20_000,
    time: Duration::from_secs(10),
};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let postgres = postgres_server().await;
    if let Err(reason) = &postgres {
        eprintln!("PostgreSQL rows skipped: {reason}");
    }
    let scratch = std::env::temp_dir().join(format!("portico-bench-{}", uuid::Uuid::new_v4()));
    let mut runs = Vec::new();
    for count in SIZES {
        let mut run = Run::new(count);
        bench_sqlite(&scratch, &mut run).await?;
        if let Ok(server) = &postgres {
            bench_postgres(server, &mut run).await?;
        }
        runs.push(run);
    }
    std::fs::remove_dir_all(&scratch).ok();
    print_table(&runs);
    for run in &runs {
        println!();
        println!("{} tenants:", thousands(run.tenants));
        for note in &run.notes {
            println!("- {note}");
        }
    }
    Ok(())
}

/// Everything measured on SQLite for one tenant count, Portico and baseline side by side.
async fn bench_sqlite(scratch: &Path, run: &mut Run) -> anyhow::Result<()> {
    let count = run.tenants;
    let url = format!("sqlite://{}/bench-{count}.db?mode=rwc", scratch.display());
    let db = Db::connect(&url).await?;
    db.migrate().await?;
    let started = Instant::now();
    let tenants = populate(&db.pool, count).await?;
    run.note(format!(
        "populated {count} tenants, {} staff and role assignments in {:.1} s",
        count * ROLES.len(),
        started.elapsed().as_secs_f64()
    ));
    let requests = requests(&tenants);

    let authz = Authz::new(db.pool.clone(), count as u64, Duration::from_secs(3600));
    let rss_before = rss_kib();
    let started = Instant::now();
    for tenant in &tenants {
        // Admins may list staff in every tenant; this loads each tenant's enforcer once.
        assert!(
            authz
                .is_allowed(&tenant.id, &tenant.users[0], CHECKS[0].0, CHECKS[0].1)
                .await
        );
    }
    let warmed = started.elapsed();
    let grown = rss_kib().saturating_sub(rss_before);
    run.note(format!(
        "warming all {count} per-tenant enforcers took {:.2} s ({} each); VmRSS grew {} KiB (≈ {:.0} KiB per enforcer)",
        warmed.as_secs_f64(),
        duration(warmed / count as u32),
        thousands(grown as usize),
        grown as f64 / count as f64,
    ));
    run.row(
        "Portico: per-tenant enforcer, cache hit",
        per_tenant_decisions(&authz, &tenants, &requests).await,
    );

    let rss_before = rss_kib();
    let started = Instant::now();
    let global = global_enforcer(&tenants).await?;
    run.note(format!(
        "building the global enforcer ({} policies, {} groupings) took {:.2} s; VmRSS grew {} KiB",
        count
            * BUILT_IN_ROLES
                .iter()
                .map(|(_, _, p)| p.len())
                .sum::<usize>(),
        count * ROLES.len(),
        started.elapsed().as_secs_f64(),
        thousands(rss_kib().saturating_sub(rss_before) as usize),
    ));
    run.row(
        "Baseline: one global casbin enforcer",
        global_decisions(&global, &tenants, &requests),
    );
    drop(global);

    run.row(
        "Portico: per-tenant enforcer, cold build (SQLite)",
        per_tenant_cold(&authz, &tenants, &requests).await,
    );
    drop(authz);

    // What an install with the shipped configuration sees when every tenant is busy.
    let capacity = Config::default().authz_cache_capacity;
    let authz = Authz::new(db.pool.clone(), capacity, Duration::from_secs(3600));
    run.row(
        format!(
            "Portico: per-tenant enforcer, default cache capacity ({})",
            thousands(capacity as usize)
        ),
        per_tenant_decisions(&authz, &tenants, &requests).await,
    );

    let resolver = HostResolver::new(db.pool.clone(), BASE_DOMAIN.to_string());
    for tenant in &tenants {
        resolve(&resolver, tenant).await;
    }
    run.row(
        "Host → tenant, cached",
        host_lookups(&resolver, &tenants, false).await,
    );
    run.row(
        "Host → tenant, uncached (SQLite)",
        host_lookups(&resolver, &tenants, true).await,
    );
    db.pool.close().await;
    Ok(())
}

/// The database-bound measurements again, on a PostgreSQL database created for the purpose.
async fn bench_postgres(server: &str, run: &mut Run) -> anyhow::Result<()> {
    let name = format!("portico_bench_{}", uuid::Uuid::new_v4().simple());
    let mut admin = sqlx::PgConnection::connect(server).await?;
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&mut admin)
        .await?;
    let base = server.rsplit_once('/').map_or(server, |(base, _)| base);
    let measured = async {
        let db = Db::connect(&format!("{base}/{name}")).await?;
        db.migrate().await?;
        let tenants = populate(&db.pool, run.tenants).await?;
        let requests = requests(&tenants);
        let authz = Authz::new(
            db.pool.clone(),
            run.tenants as u64,
            Duration::from_secs(3600),
        );
        run.row(
            "Portico: per-tenant enforcer, cold build (PostgreSQL)",
            per_tenant_cold(&authz, &tenants, &requests).await,
        );
        let resolver = HostResolver::new(db.pool.clone(), BASE_DOMAIN.to_string());
        run.row(
            "Host → tenant, uncached (PostgreSQL)",
            host_lookups(&resolver, &tenants, true).await,
        );
        db.pool.close().await;
        anyhow::Ok(())
    }
    .await;
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
    )))
    .execute(&mut admin)
    .await?;
    measured
}

/// The PostgreSQL server URL when one answers, else why the PostgreSQL rows are skipped.
async fn postgres_server() -> Result<String, String> {
    let url = std::env::var(POSTGRES_URL).unwrap_or_else(|_| DEFAULT_POSTGRES_URL.into());
    match tokio::time::timeout(Duration::from_secs(5), sqlx::PgConnection::connect(&url)).await {
        Ok(Ok(conn)) => {
            conn.close().await.ok();
            Ok(url)
        }
        Ok(Err(e)) => Err(format!("{url} is unreachable ({e}); set {POSTGRES_URL}")),
        Err(_) => Err(format!(
            "{url} did not answer within 5 s; set {POSTGRES_URL}"
        )),
    }
}

/// A tenant as the benchmark knows it: its id, its Host header and one staff user per role.
struct TenantFixture {
    id: TenantId,
    host: String,
    users: [String; ROLES.len()],
}

/// Inserts `count` tenants with one staff user per role, in one transaction.
async fn populate(pool: &Pool, count: usize) -> anyhow::Result<Vec<TenantFixture>> {
    let now = now_ms();
    let mut tx = pool.begin().await?;
    let mut tenants = Vec::with_capacity(count);
    for i in 0..count {
        let id = new_id();
        let slug = format!("tenant-{i}");
        sqlx::query(
            "INSERT INTO tenants (id, slug, display_name, time_zone, language, status, \
             created_at, updated_at) VALUES ($1, $2, $3, 'UTC', 'en', 'active', $4, $4)",
        )
        .bind(id.as_str())
        .bind(slug.as_str())
        .bind(format!("Tenant {i}"))
        .bind(now)
        .execute(&mut *tx)
        .await
        .context("inserting a tenant")?;
        let users = ROLES.map(|_| new_id());
        for (user, role) in users.iter().zip(ROLES) {
            sqlx::query(
                "INSERT INTO staff_users (id, tenant_id, email, display_name, password_hash, \
                 disabled, created_at, updated_at) VALUES ($1, $2, $3, $4, NULL, 0, $5, $5)",
            )
            .bind(user.as_str())
            .bind(id.as_str())
            .bind(format!("{role}@{slug}.example.com"))
            .bind(format!("{role} of {slug}"))
            .bind(now)
            .execute(&mut *tx)
            .await
            .context("inserting a staff user")?;
            sqlx::query(
                "INSERT INTO role_assignments (id, tenant_id, user_id, role, created_at) \
                 VALUES ($1, $2, $3, $4, $5)",
            )
            .bind(new_id())
            .bind(id.as_str())
            .bind(user.as_str())
            .bind(role)
            .bind(now)
            .execute(&mut *tx)
            .await
            .context("inserting a role assignment")?;
        }
        tenants.push(TenantFixture {
            id: TenantId::from_db(id),
            host: format!("{slug}.{BASE_DOMAIN}"),
            users,
        });
    }
    tx.commit().await?;
    Ok(tenants)
}

/// One decision to ask for: a user (of `user_tenant`, with role `ROLES[role]`) acting in
/// `tenant`, and the answer the built-in roles demand.
struct Request {
    tenant: usize,
    user_tenant: usize,
    role: usize,
    check: usize,
    expected: bool,
}

impl Request {
    fn user<'a>(&self, tenants: &'a [TenantFixture]) -> &'a str {
        &tenants[self.user_tenant].users[self.role]
    }

    fn object(&self) -> &'static str {
        CHECKS[self.check].0
    }

    fn action(&self) -> &'static str {
        CHECKS[self.check].1
    }
}

/// Tenants drawn uniformly, about half the requests allowed; one in eight comes from another
/// tenant's staff and must be denied whatever the role.
fn requests(tenants: &[TenantFixture]) -> Vec<Request> {
    let mut rng = XorShift::new(tenants.len() as u64);
    (0..REQUESTS)
        .map(|_| {
            let tenant = rng.below(tenants.len());
            let role = rng.below(ROLES.len());
            let check = rng.below(CHECKS.len());
            let foreign = tenants.len() > 1 && rng.below(8) == 0;
            let user_tenant = if foreign {
                (tenant + 1 + rng.below(tenants.len() - 1)) % tenants.len()
            } else {
                tenant
            };
            Request {
                tenant,
                user_tenant,
                role,
                check,
                expected: !foreign && CHECKS[check].2[role],
            }
        })
        .collect()
}

/// Decisions through the enforcer cache: all hits when it holds every tenant and the caller has
/// warmed it, otherwise whatever mix of hits and rebuilds its capacity allows.
async fn per_tenant_decisions(
    authz: &Authz,
    tenants: &[TenantFixture],
    requests: &[Request],
) -> Stats {
    let mut samples = Samples::new(HOT);
    while let Some(i) = samples.next_call() {
        let r = &requests[i % requests.len()];
        let started = Instant::now();
        let allowed = authz
            .is_allowed(
                &tenants[r.tenant].id,
                r.user(tenants),
                r.object(),
                r.action(),
            )
            .await;
        samples.record(started);
        assert_eq!(allowed, r.expected, "per-tenant enforcer decided wrongly");
    }
    samples.stats()
}

/// Decisions that each load one tenant's rules from the database and build its enforcer.
async fn per_tenant_cold(authz: &Authz, tenants: &[TenantFixture], requests: &[Request]) -> Stats {
    let mut samples = Samples::new(COLD);
    while let Some(i) = samples.next_call() {
        let r = &requests[i % requests.len()];
        let tenant = &tenants[r.tenant].id;
        authz.invalidate(tenant).await;
        let started = Instant::now();
        let allowed = authz
            .is_allowed(tenant, r.user(tenants), r.object(), r.action())
            .await;
        samples.record(started);
        assert_eq!(allowed, r.expected, "per-tenant enforcer decided wrongly");
    }
    samples.stats()
}

/// The baseline: one enforcer with every tenant's built-in policies and role assignments.
async fn global_enforcer(tenants: &[TenantFixture]) -> casbin::Result<Enforcer> {
    let model = DefaultModel::from_str(MODEL).await?;
    let mut enforcer = Enforcer::new(model, MemoryAdapter::default()).await?;
    let policies = tenants
        .iter()
        .flat_map(|t| {
            BUILT_IN_ROLES.iter().flat_map(move |(role, _, perms)| {
                perms.iter().map(move |p| {
                    vec![
                        role.to_string(),
                        t.id.to_string(),
                        p.object.into(),
                        p.action.into(),
                    ]
                })
            })
        })
        .collect();
    enforcer.add_policies(policies).await?;
    let groupings = tenants
        .iter()
        .flat_map(|t| {
            t.users
                .iter()
                .zip(ROLES)
                .map(|(user, role)| vec![user.clone(), role.into(), t.id.to_string()])
        })
        .collect();
    enforcer.add_grouping_policies(groupings).await?;
    Ok(enforcer)
}

fn global_decisions(enforcer: &Enforcer, tenants: &[TenantFixture], requests: &[Request]) -> Stats {
    let mut samples = Samples::new(GLOBAL);
    while let Some(i) = samples.next_call() {
        let r = &requests[i % requests.len()];
        let started = Instant::now();
        let allowed = enforcer
            .enforce((
                r.user(tenants),
                tenants[r.tenant].id.as_str(),
                r.object(),
                r.action(),
            ))
            .expect("the global enforcer evaluates");
        samples.record(started);
        assert_eq!(allowed, r.expected, "global enforcer decided wrongly");
    }
    samples.stats()
}

/// Lookups of uniformly drawn tenants' hosts; `uncached` drops the whole cache before each.
async fn host_lookups(resolver: &HostResolver, tenants: &[TenantFixture], uncached: bool) -> Stats {
    let mut rng = XorShift::new(tenants.len() as u64);
    let mut samples = Samples::new(if uncached { COLD } else { HOT });
    while samples.next_call().is_some() {
        let tenant = &tenants[rng.below(tenants.len())];
        if uncached {
            resolver.invalidate();
        }
        let started = Instant::now();
        resolve(resolver, tenant).await;
        samples.record(started);
    }
    samples.stats()
}

async fn resolve(resolver: &HostResolver, tenant: &TenantFixture) {
    let found = resolver
        .resolve(&tenant.host)
        .await
        .expect("resolving a host")
        .expect("every tenant's host resolves");
    assert_eq!(found.id, tenant.id, "host resolved to the wrong tenant");
}

/// How many calls one measurement makes unrecorded first, then how many it may record and for
/// how long (warm-up included).
#[derive(Clone, Copy)]
struct Budget {
    warmup: usize,
    calls: usize,
    time: Duration,
}

/// Per-call latencies of one measurement.
struct Samples {
    budget: Budget,
    started: Instant,
    made: usize,
    durations: Vec<Duration>,
}

impl Samples {
    fn new(budget: Budget) -> Self {
        Self {
            budget,
            started: Instant::now(),
            made: 0,
            durations: Vec::with_capacity(budget.calls),
        }
    }

    /// The next call's index, or `None` once the budget is spent; the warm-up and one recorded
    /// call are always made, however slow.
    fn next_call(&mut self) -> Option<usize> {
        let left = self.durations.len() < self.budget.calls
            && (self.durations.is_empty() || self.started.elapsed() < self.budget.time);
        self.made += 1;
        left.then_some(self.made - 1)
    }

    fn record(&mut self, started: Instant) {
        if self.made > self.budget.warmup {
            self.durations.push(started.elapsed());
        }
    }

    fn stats(mut self) -> Stats {
        self.durations.sort_unstable();
        let n = self.durations.len();
        let total: Duration = self.durations.iter().sum();
        let at = |q: f64| self.durations[((n as f64 * q) as usize).min(n - 1)];
        Stats {
            per_sec: n as f64 / total.as_secs_f64(),
            p50: at(0.50),
            p99: at(0.99),
            samples: n,
        }
    }
}

/// Throughput is calls over the summed call latencies, so setup between calls is excluded.
struct Stats {
    per_sec: f64,
    p50: Duration,
    p99: Duration,
    samples: usize,
}

/// The figures for one tenant count.
struct Run {
    tenants: usize,
    rows: Vec<(String, Stats)>,
    notes: Vec<String>,
}

impl Run {
    fn new(tenants: usize) -> Self {
        eprintln!("== {tenants} tenants");
        Self {
            tenants,
            rows: Vec::new(),
            notes: Vec::new(),
        }
    }

    fn row(&mut self, name: impl Into<String>, stats: Stats) {
        let name = name.into();
        eprintln!(
            "{name}: {}/s, p50 {}, p99 {} ({} calls recorded)",
            rate(stats.per_sec),
            duration(stats.p50),
            duration(stats.p99),
            stats.samples
        );
        self.rows.push((name, stats));
    }

    fn note(&mut self, note: String) {
        eprintln!("{note}");
        self.notes.push(note);
    }
}

/// One markdown row per measurement, the tenant counts side by side.
fn print_table(runs: &[Run]) {
    let mut header = String::from("| Measurement |");
    let mut rule = String::from("|---|");
    for run in runs {
        let n = thousands(run.tenants);
        header.push_str(&format!(" {n} tenants: ops/s | p50 | p99 | calls |"));
        rule.push_str("---:|---:|---:|---:|");
    }
    println!("{header}\n{rule}");
    for (i, (name, _)) in runs[0].rows.iter().enumerate() {
        let mut line = format!("| {name} |");
        for run in runs {
            let (other, s) = &run.rows[i];
            assert_eq!(name, other, "every run measures the same rows in order");
            line.push_str(&format!(
                " {} | {} | {} | {} |",
                rate(s.per_sec),
                duration(s.p50),
                duration(s.p99),
                thousands(s.samples)
            ));
        }
        println!("{line}");
    }
}

/// Calls per second, with one decimal when there are few.
fn rate(per_sec: f64) -> String {
    if per_sec < 100.0 {
        format!("{per_sec:.1}")
    } else {
        thousands(per_sec.round() as usize)
    }
}

/// `1234567` as `1,234,567`.
fn thousands(n: usize) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn duration(d: Duration) -> String {
    let nanos = d.as_nanos();
    match nanos {
        1_000_000.. => format!("{:.2} ms", nanos as f64 / 1e6),
        1_000.. => format!("{:.1} µs", nanos as f64 / 1e3),
        _ => format!("{nanos} ns"),
    }
}

/// The resident set size, from `/proc/self/status`; 0 where there is no procfs.
fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
            line.split_whitespace().nth(1)?.parse().ok()
        })
        .unwrap_or(0)
}

/// xorshift64*: deterministic, so every run asks the same questions of the same tenants.
struct XorShift(u64);

impl XorShift {
    fn new(seed: u64) -> Self {
        Self(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) % n as u64) as usize
    }
}
