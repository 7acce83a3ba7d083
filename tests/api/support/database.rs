//! The database each test runs on, removed after the test: a fresh SQLite file in a temporary
//! directory, or a PostgreSQL database cloned from a migrated template.
//!
//! On PostgreSQL the first test of a run makes sure a template database exists that holds every
//! migration in `migrations/postgres`, then each test clones it with `CREATE DATABASE … TEMPLATE`,
//! which is much faster than migrating an empty database. The template's name carries a hash of
//! the migration files, so a template made from other migrations (another branch, an older
//! checkout) is never used, and it is created under an advisory lock, so that concurrent test
//! processes create it once. The application still runs its migrations on start-up: on a clone of
//! the template they have nothing to do.
//!
//! The application connects as [`APP_ROLE`], a role that is neither superuser, owner nor
//! `BYPASSRLS`, as the README's PostgreSQL set-up has it, so every test runs behind row-level
//! security; migrations run as the server URL's role, given as the owner URL.

use std::path::PathBuf;

use sha2::{Digest, Sha256};
use sqlx::{AssertSqlSafe, Connection, PgConnection};
use tokio::sync::OnceCell;

use super::{REQUIRE_PEERS, peers_required};

const POSTGRES_URL: &str = "PORTICO_TEST_POSTGRES_URL";
const DEFAULT_POSTGRES_URL: &str = "postgres://postgres@127.0.0.1:5432/test";
/// The advisory lock held while a template database is created ("portico" in ASCII).
const TEMPLATE_LOCK: i64 = 0x0070_6f72_7469_636f;
/// The restricted role the application connects as (its password is its name).
pub const APP_ROLE: &str = "portico_app";

#[derive(Debug, Clone, Copy)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// A database that exists for one test and is removed after it.
pub(super) struct TestDatabase {
    pub url: String,
    /// PostgreSQL: the URL of the role that owns the schema and runs migrations.
    pub owner_url: Option<String>,
    /// The application's data directory, removed with the database.
    pub dir: PathBuf,
    /// The server's URL and the database's name.
    postgres: Option<(String, String)>,
}

impl TestDatabase {
    /// A new database, or `None` (with the reason printed) when the backend is missing here.
    pub async fn create(backend: Backend) -> Option<Self> {
        let dir =
            std::env::temp_dir().join(format!("portico-test-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).unwrap();
        match backend {
            Backend::Sqlite => {
                let url = format!("sqlite://{}?mode=rwc", dir.join("portico.db").display());
                Some(Self {
                    url,
                    owner_url: None,
                    dir,
                    postgres: None,
                })
            }
            Backend::Postgres => {
                let server =
                    std::env::var(POSTGRES_URL).unwrap_or_else(|_| DEFAULT_POSTGRES_URL.into());
                let mut admin = match PgConnection::connect(&server).await {
                    Ok(conn) => conn,
                    Err(e) => {
                        let _ = std::fs::remove_dir_all(&dir);
                        let reason = format!(
                            "PostgreSQL at {server} is unreachable ({e}); set {POSTGRES_URL}"
                        );
                        assert!(!peers_required(), "{reason}, and {REQUIRE_PEERS} is set");
                        eprintln!("SKIPPED: {reason}");
                        return None;
                    }
                };
                let template = template(&server).await;
                let name = format!("portico_test_{}", uuid::Uuid::new_v4().simple());
                execute(
                    &mut admin,
                    format!("CREATE DATABASE {name} TEMPLATE {template}"),
                )
                .await;
                let _ = admin.close().await;
                let owner_url = database_url(&server, &name);
                let mut url = reqwest::Url::parse(&owner_url).expect("a PostgreSQL URL");
                url.set_username(APP_ROLE).unwrap();
                url.set_password(Some(APP_ROLE)).unwrap();
                Some(Self {
                    url: url.to_string(),
                    owner_url: Some(owner_url),
                    dir,
                    postgres: Some((server, name)),
                })
            }
        }
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
        if let Some((server, name)) = self.postgres.take() {
            // Drop runs inside the test's runtime, so the clean-up gets a runtime of its own.
            let _ = std::thread::spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .unwrap();
                rt.block_on(async {
                    if let Ok(mut conn) = PgConnection::connect(&server).await {
                        let sql = format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)");
                        let _ = sqlx::query(AssertSqlSafe(sql)).execute(&mut conn).await;
                    }
                });
            })
            .join();
        }
    }
}

/// The name of the migrated template database on `server`, made sure of once per process.
async fn template(server: &str) -> &'static str {
    static TEMPLATE: OnceCell<String> = OnceCell::const_new();
    TEMPLATE.get_or_init(|| create_template(server)).await
}

/// Creates the template database for the current migrations unless it exists already.
async fn create_template(server: &str) -> String {
    let name = format!("portico_template_{}", migrations_hash());
    let mut admin = PgConnection::connect(server)
        .await
        .expect("connecting to PostgreSQL");
    // Other test processes may be here at the same time; the lock ends with the connection.
    sqlx::query("SELECT pg_advisory_lock($1)")
        .bind(TEMPLATE_LOCK)
        .execute(&mut admin)
        .await
        .expect("taking the template lock");
    // The role is the server's, made once by whichever test process comes first.
    let role_exists: Option<i32> = sqlx::query_scalar("SELECT 1 FROM pg_roles WHERE rolname = $1")
        .bind(APP_ROLE)
        .fetch_optional(&mut admin)
        .await
        .expect("looking for the application's role");
    if role_exists.is_none() {
        execute(
            &mut admin,
            format!("CREATE ROLE {APP_ROLE} LOGIN PASSWORD '{APP_ROLE}' NOSUPERUSER NOBYPASSRLS"),
        )
        .await;
    }
    let exists: Option<i32> = sqlx::query_scalar("SELECT 1 FROM pg_database WHERE datname = $1")
        .bind(&name)
        .fetch_optional(&mut admin)
        .await
        .expect("looking for the template database");
    if exists.is_none() {
        // Migrated under another name and renamed when complete: a template that exists is whole.
        let partial = format!("{name}_partial");
        execute(
            &mut admin,
            format!("DROP DATABASE IF EXISTS {partial} WITH (FORCE)"),
        )
        .await;
        execute(&mut admin, format!("CREATE DATABASE {partial}")).await;
        let db = portico::db::Db::connect(&database_url(server, &partial))
            .await
            .expect("connecting to the new template database");
        db.migrate().await.expect("migrating the template database");
        db.pool.close().await;
        execute(
            &mut admin,
            format!("ALTER DATABASE {partial} RENAME TO {name}"),
        )
        .await;
    }
    let _ = admin.close().await;
    name
}

/// A short hash of the PostgreSQL migrations' names and contents.
fn migrations_hash() -> String {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../migrations/postgres");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
        .map(|entry| entry.unwrap().path())
        .collect();
    files.sort();
    let mut hash = Sha256::new();
    for file in files {
        hash.update(file.file_name().unwrap().as_encoded_bytes());
        hash.update([0]);
        hash.update(std::fs::read(&file).unwrap());
        hash.update([0]);
    }
    hash.finalize()[..8]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The URL of database `name` on the server that `server` (a URL of another database) is on.
fn database_url(server: &str, name: &str) -> String {
    let (path, query) = server
        .split_once('?')
        .map_or((server, ""), |(path, query)| (path, query));
    let base = path.rsplit_once('/').map_or(path, |(base, _)| base);
    if query.is_empty() {
        format!("{base}/{name}")
    } else {
        format!("{base}/{name}?{query}")
    }
}

async fn execute(conn: &mut PgConnection, sql: String) {
    sqlx::query(AssertSqlSafe(sql.clone()))
        .execute(conn)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
}
