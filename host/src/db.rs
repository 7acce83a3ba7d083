//! Storage: one sqlx pool over SQLite or PostgreSQL, chosen by the URL scheme.
//!
//! Queries are written once in the common SQL dialect (`$n` placeholders work on both), ids are
//! text UUIDs, times are unix milliseconds in `BIGINT` columns and flags are integers, so the
//! same code behaves the same on both backends.
//!
//! On PostgreSQL row-level security is a second wall behind the tenant-scoped queries: every
//! table with a tenant shows a connection only the rows of the tenant named in the setting
//! `portico.tenant` (`*`: the platform's own work, across tenants). Work done in a tenant's name
//! (tenant API routes, portal pages and their live streams, sign-in, each delivery sent) runs
//! [`within_tenant`], and each event a durable consumer handles runs [`wall_transaction`]; what runs outside any is the platform's (claiming work across tenants,
//! resolving which tenant a request is for, platform admins' routes, the command line). The
//! pool writes the task's tenant into each connection as it hands it out (`acquire` and
//! `begin`; `try_acquire` and `try_begin` would skip that and are refused by `clippy.toml`), so
//! a pooled connection never carries one request's tenant into another's. The wall holds a
//! query that forgets its tenant; it is no defence against SQL injection, which could change
//! the setting.

use std::future::Future;
use std::time::Duration;

use anyhow::Context;
use sqlx::any::{AnyPoolOptions, install_default_drivers};
use sqlx::migrate::Migrator;
use sqlx::{AnyConnection, AssertSqlSafe};
use uuid::Uuid;

use crate::config::Config;
use crate::types::TenantId;

tokio::task_local! {
    /// The tenant whose rows the current task's queries may see; unset for the platform's own
    /// work (background workers, resolving which tenant a request is for, platform admins).
    static TENANT_WALL: String;
}

/// The value of `portico.tenant` that lets a connection see every tenant's rows.
const ALL_TENANTS: &str = "*";

/// Serialises the grants of hosts starting together (PostgreSQL refuses concurrent GRANTs on one
/// object): "grants" in ASCII.
const GRANT_LOCK: i64 = 0x0000_6772_616e_7473;

/// Runs `work` in `tenant`'s name: on PostgreSQL its queries see and write that tenant's rows only.
pub async fn within_tenant<F: Future>(tenant: &TenantId, work: F) -> F::Output {
    TENANT_WALL.scope(tenant.as_str().to_owned(), work).await
}

/// Runs `work` in no tenant's name: on PostgreSQL its queries see no tenant's rows.
pub async fn within_no_tenant<F: Future>(work: F) -> F::Output {
    TENANT_WALL.scope(String::new(), work).await
}

/// Runs `work` for the platform, across tenants, even within a tenant's request: for what a
/// cache shared by every tenant loads (which tenant a host name serves), never a tenant's view.
pub async fn across_tenants<F: Future>(work: F) -> F::Output {
    TENANT_WALL.scope(ALL_TENANTS.to_owned(), work).await
}

/// Wraps a stream so that each step runs in `tenant`'s name, as [`within_tenant`] does for a
/// future: a response body is polled after its handler has returned.
pub fn stream_within_tenant<S: futures_util::Stream + Unpin>(
    tenant: &TenantId,
    mut stream: S,
) -> impl futures_util::Stream<Item = S::Item> + use<S> {
    let tenant = tenant.as_str().to_owned();
    futures_util::stream::poll_fn(move |cx| {
        TENANT_WALL.sync_scope(tenant.clone(), || {
            std::pin::Pin::new(&mut stream).poll_next(cx)
        })
    })
}

/// Writes the current task's tenant (or `*`) into a connection the pool hands out.
async fn raise_wall(conn: &mut AnyConnection, tenant: String) -> Result<(), sqlx::Error> {
    write_wall(conn, tenant, false).await
}

/// Names the tenant (`None`: the platform) that the rest of the PostgreSQL transaction on
/// `conn` works for, where one transaction does work for several tenants in turn.
pub async fn wall_transaction(
    conn: &mut AnyConnection,
    tenant: Option<&TenantId>,
) -> Result<(), sqlx::Error> {
    let tenant = tenant.map_or(ALL_TENANTS, TenantId::as_str).to_owned();
    write_wall(conn, tenant, true).await
}

/// Sets `portico.tenant` for the session, or for the transaction under way only.
async fn write_wall(
    conn: &mut AnyConnection,
    tenant: String,
    transaction_only: bool,
) -> Result<(), sqlx::Error> {
    sqlx::query("SELECT set_config('portico.tenant', $1, $2)")
        .bind(tenant)
        .bind(transaction_only)
        .execute(conn)
        .await
        .map(drop)
}

/// The current task's tenant, or `*` outside any.
fn wall() -> String {
    TENANT_WALL
        .try_with(Clone::clone)
        .unwrap_or_else(|_| ALL_TENANTS.to_owned())
}

pub use sqlx::AnyPool as Pool;

static SQLITE_MIGRATIONS: Migrator = sqlx::migrate!("../migrations/sqlite");
static POSTGRES_MIGRATIONS: Migrator = sqlx::migrate!("../migrations/postgres");

/// Which database engine a pool talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    /// The backend a URL names, or an error for anything else.
    pub fn from_url(url: &str) -> anyhow::Result<Self> {
        if url.starts_with("sqlite:") {
            Ok(Self::Sqlite)
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            Ok(Self::Postgres)
        } else {
            anyhow::bail!(
                "database URL must start with sqlite: or postgres: (got {:?})",
                redact(url)
            )
        }
    }
}

/// A connected database.
#[derive(Clone, Debug)]
pub struct Db {
    pub pool: Pool,
    pub backend: Backend,
}

impl Db {
    /// Connects, creating the SQLite file's directory (private to this user) when needed.
    pub async fn connect(url: &str) -> anyhow::Result<Self> {
        install_default_drivers();
        let backend = Backend::from_url(url)?;
        let sqlite_file = match backend {
            Backend::Sqlite => sqlite_path(url),
            Backend::Postgres => None,
        };
        if let Some(dir) = sqlite_file
            .as_deref()
            .and_then(std::path::Path::parent)
            .filter(|d| !d.as_os_str().is_empty())
        {
            portico_plugin_runtime::files::private_dir(dir)?;
        }
        let mut options = AnyPoolOptions::new()
            .max_connections(if backend == Backend::Sqlite { 8 } else { 16 })
            .acquire_timeout(Duration::from_secs(10));
        if backend == Backend::Postgres {
            // Every hand-out writes the tenant, which also proves the connection alive, so the
            // default test query would be a second round trip for nothing.
            options = options
                .test_before_acquire(false)
                .after_connect(|conn, _| {
                    let tenant = wall();
                    Box::pin(raise_wall(conn, tenant))
                })
                .before_acquire(|conn, _| {
                    let tenant = wall();
                    Box::pin(async move { raise_wall(conn, tenant).await.map(|()| true) })
                });
        }
        let pool = options
            .connect(url)
            .await
            .with_context(|| format!("connecting to database {}", redact(url)))?;
        if let Some(file) = &sqlite_file {
            // Its journal and shared-memory files take the database file's permissions.
            portico_plugin_runtime::files::make_private(file)?;
        }
        if backend == Backend::Sqlite {
            // WAL lets readers proceed while one writer commits; the setting persists in the file.
            sqlx::query("PRAGMA journal_mode = WAL")
                .execute(&pool)
                .await?;
        }
        Ok(Self { pool, backend })
    }

    /// Connects the host to its database and brings the schema up to date. With an owner URL
    /// (PostgreSQL), migrations run as that role, which then grants the host's own role the use
    /// of every table; without one, a schema that is up to date is left alone (so a restricted
    /// role needs no owner's credentials once the owner has migrated), else the migrations run
    /// as `database_url`. The host's role should be one row-level security binds (see
    /// [`Db::wall_gaps`]), and a warning says so when it is not.
    pub async fn open(config: &Config) -> anyhow::Result<Self> {
        let db = Self::connect(config.database_url().expose()).await?;
        match (&config.database_owner_url, db.backend) {
            (Some(owner_url), Backend::Postgres) => {
                let owner = Self::connect(owner_url.expose()).await?;
                owner.migrate().await?;
                let role_of = |pool: Pool| async move {
                    sqlx::query_as::<_, (String, String)>(
                        "SELECT CAST(current_user AS TEXT), CAST(current_database() AS TEXT)",
                    )
                    .fetch_one(&pool)
                    .await
                };
                let (role, database) = role_of(db.pool.clone()).await?;
                let (owner_role, owner_database) = role_of(owner.pool.clone()).await?;
                if database != owner_database {
                    anyhow::bail!(
                        "database_owner_url names database {owner_database:?}, database_url {database:?}"
                    );
                }
                if role != owner_role {
                    owner.grant_tables_to(&role).await?;
                }
                owner.pool.close().await;
            }
            (Some(_), Backend::Sqlite) => {
                anyhow::bail!("database_owner_url is for PostgreSQL; SQLite has no roles")
            }
            // The owner checks applied migrations against their files; a restricted role
            // only reads that they ran.
            (None, Backend::Postgres) if db.is_migrated().await => {}
            (None, _) => db.migrate().await.context(
                "migrating as database_url; a restricted role cannot: run `portico migrate` with database_owner_url set",
            )?,
        }
        for gap in db.wall_gaps().await? {
            tracing::warn!(
                "row-level security does not bind this host's database role: it {gap}; connect as a restricted role (README, \"PostgreSQL\")"
            );
        }
        Ok(db)
    }

    /// Lets `role` read and write every table of the schema (not the migrations' own), in one
    /// transaction under a lock, since hosts may start together.
    async fn grant_tables_to(&self, role: &str) -> anyhow::Result<()> {
        let quoted = |name: &str| format!("\"{}\"", name.replace('"', "\"\""));
        let mut tx = self.pool.begin().await?;
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(GRANT_LOCK)
            .execute(&mut *tx)
            .await?;
        let schema: String = sqlx::query_scalar("SELECT CAST(current_schema() AS TEXT)")
            .fetch_one(&mut *tx)
            .await?;
        let (schema, role) = (quoted(&schema), quoted(role));
        for grant in [
            format!("GRANT USAGE ON SCHEMA {schema} TO {role}"),
            format!(
                "GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA {schema} TO {role}"
            ),
            format!("GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA {schema} TO {role}"),
            // It reads which migrations ran, to start without the owner; it changes none.
            format!("REVOKE ALL ON {schema}._sqlx_migrations FROM {role}"),
            format!("GRANT SELECT ON {schema}._sqlx_migrations TO {role}"),
        ] {
            sqlx::query(AssertSqlSafe(grant))
                .execute(&mut *tx)
                .await
                .context("granting the host's role the use of the tables")?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Why row-level security would not bind this connection's role: empty on SQLite (which has
    /// no roles) and for a restricted role.
    pub async fn wall_gaps(&self) -> anyhow::Result<Vec<&'static str>> {
        if self.backend == Backend::Sqlite {
            return Ok(Vec::new());
        }
        let (superuser, bypass, owner): (bool, bool, bool) = sqlx::query_as(
            "SELECT r.rolsuper, r.rolbypassrls, EXISTS (SELECT 1 FROM pg_tables t WHERE t.schemaname = current_schema() AND t.rowsecurity AND pg_has_role(current_user, t.tableowner, 'MEMBER')) FROM pg_roles r WHERE r.rolname = current_user",
        )
        .fetch_one(&self.pool)
        .await?;
        let mut gaps = Vec::new();
        if superuser {
            gaps.push("is a superuser");
        }
        if bypass {
            gaps.push("may bypass row-level security");
        }
        if owner {
            gaps.push(
                "owns the tables (or may act as their owner), so it could switch the wall off",
            );
        }
        Ok(gaps)
    }

    /// Whether every migration of this build has run (false also when that cannot be read).
    async fn is_migrated(&self) -> bool {
        let applied: Vec<i64> =
            match sqlx::query_scalar("SELECT version FROM _sqlx_migrations WHERE success")
                .fetch_all(&self.pool)
                .await
            {
                Ok(applied) => applied,
                Err(_) => return false,
            };
        self.migrator()
            .iter()
            .all(|migration| applied.contains(&migration.version))
    }

    fn migrator(&self) -> &'static Migrator {
        match self.backend {
            Backend::Sqlite => &SQLITE_MIGRATIONS,
            Backend::Postgres => &POSTGRES_MIGRATIONS,
        }
    }

    /// Applies pending migrations for this backend.
    pub async fn migrate(&self) -> anyhow::Result<()> {
        self.migrator()
            .run(&self.pool)
            .await
            .context("applying database migrations")
    }

    /// True when a trivial query succeeds.
    pub async fn is_reachable(&self) -> bool {
        sqlx::query("SELECT 1").execute(&self.pool).await.is_ok()
    }
}

/// The file of a SQLite URL; `None` for an in-memory database.
fn sqlite_path(url: &str) -> Option<std::path::PathBuf> {
    let path = url
        .trim_start_matches("sqlite:")
        .trim_start_matches("//")
        .split('?')
        .next()
        .unwrap_or_default();
    (!path.is_empty() && path != ":memory:").then(|| std::path::PathBuf::from(path))
}

/// The URL with any password replaced, for logs and errors.
pub fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            let userinfo = &url[scheme_end + 3..at];
            match userinfo.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..scheme_end + 3], &url[at..]),
                None => url.to_string(),
            }
        }
        _ => url.to_string(),
    }
}

/// A new time-ordered id; its text form sorts by creation time, which keyset pagination uses.
pub fn new_id() -> String {
    Uuid::now_v7().to_string()
}

/// Now, in unix milliseconds.
pub fn now_ms() -> i64 {
    jiff::Timestamp::now().as_millisecond()
}

/// Unix milliseconds as a timestamp for API output.
pub fn timestamp(ms: i64) -> jiff::Timestamp {
    jiff::Timestamp::from_millisecond(ms).unwrap_or(jiff::Timestamp::UNIX_EPOCH)
}

/// A value bound to a [`Sql`] query (`None` binds NULL).
#[derive(Debug, Clone)]
pub enum Arg {
    Text(Option<String>),
    Int(Option<i64>),
}

impl From<&str> for Arg {
    fn from(v: &str) -> Self {
        Self::Text(Some(v.to_string()))
    }
}

impl From<String> for Arg {
    fn from(v: String) -> Self {
        Self::Text(Some(v))
    }
}

impl From<Option<String>> for Arg {
    fn from(v: Option<String>) -> Self {
        Self::Text(v)
    }
}

impl From<&crate::types::TenantId> for Arg {
    fn from(v: &crate::types::TenantId) -> Self {
        Self::Text(Some(v.to_string()))
    }
}

impl From<i64> for Arg {
    fn from(v: i64) -> Self {
        Self::Int(Some(v))
    }
}

impl From<Option<i64>> for Arg {
    fn from(v: Option<i64>) -> Self {
        Self::Int(v)
    }
}

/// SQL assembled from optional parts, with each bound value numbered as it is pushed. sqlx's
/// `QueryBuilder` writes `?` placeholders under the `Any` driver, which PostgreSQL rejects, so
/// this does the one thing it would: `push_bind` appends `$n` and keeps the value.
#[derive(Debug, Default)]
pub struct Sql {
    text: String,
    args: Vec<Arg>,
}

impl Sql {
    pub fn new(text: &str) -> Self {
        Self {
            text: text.to_string(),
            args: Vec::new(),
        }
    }

    /// Appends SQL text (never user input).
    pub fn push(&mut self, text: &str) -> &mut Self {
        self.text.push_str(text);
        self
    }

    /// Appends a placeholder for `value`.
    pub fn push_bind(&mut self, value: impl Into<Arg>) -> &mut Self {
        self.args.push(value.into());
        self.text.push_str(&format!("${}", self.args.len()));
        self
    }

    /// The query, ready to run.
    pub fn query_as<T>(&self) -> sqlx::query::QueryAs<'_, sqlx::Any, T, sqlx::any::AnyArguments>
    where
        T: for<'r> sqlx::FromRow<'r, sqlx::any::AnyRow>,
    {
        let query = sqlx::query_as(sqlx::AssertSqlSafe(self.text.clone()));
        self.args.iter().fold(query, |query, arg| match arg {
            Arg::Text(v) => query.bind(v.clone()),
            Arg::Int(v) => query.bind(*v),
        })
    }

    /// Runs the statement.
    pub async fn execute(
        &self,
        conn: &mut sqlx::AnyConnection,
    ) -> Result<sqlx::any::AnyQueryResult, sqlx::Error> {
        let query = sqlx::query(sqlx::AssertSqlSafe(self.text.clone()));
        let query = self.args.iter().fold(query, |query, arg| match arg {
            Arg::Text(v) => query.bind(v.clone()),
            Arg::Int(v) => query.bind(*v),
        });
        query.execute(conn).await
    }
}

/// True when a database error is a unique-constraint violation.
pub fn is_unique_violation(err: &sqlx::Error) -> bool {
    err.as_database_error()
        .is_some_and(|e| e.kind() == sqlx::error::ErrorKind::UniqueViolation)
}

pub fn is_foreign_key_violation(err: &sqlx::Error) -> bool {
    err.as_database_error()
        .is_some_and(|e| e.kind() == sqlx::error::ErrorKind::ForeignKeyViolation)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_redacted() {
        assert_eq!(redact("postgres://u:secret@h/db"), "postgres://u:***@h/db");
        assert_eq!(redact("postgres://u@h/db"), "postgres://u@h/db");
        assert_eq!(redact("sqlite://data/p.db"), "sqlite://data/p.db");
    }

    #[test]
    fn backend_follows_scheme() {
        assert_eq!(Backend::from_url("sqlite://x.db").unwrap(), Backend::Sqlite);
        assert_eq!(
            Backend::from_url("postgresql://h/db").unwrap(),
            Backend::Postgres
        );
        assert!(Backend::from_url("mysql://h/db").is_err());
    }
}
