//! Test support: each test gets its own application on a fresh database (a temporary SQLite
//! file, or a new PostgreSQL database), listening on a loopback port, plus a platform token.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use portico::AppState;
use portico::config::Config;
use portico::types::Secret;
use reqwest::Method;
use serde_json::Value;
use sqlx::Connection;
use tokio::net::{TcpListener, UdpSocket};

/// Set (as CI does) to turn a missing peer into a failure instead of a skip.
const REQUIRE_PEERS: &str = "PORTICO_REQUIRE_PEERS";
const POSTGRES_URL: &str = "PORTICO_TEST_POSTGRES_URL";
const DEFAULT_POSTGRES_URL: &str = "postgres://postgres@127.0.0.1:5432/test";

#[derive(Debug, Clone, Copy)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Runs a test body once on SQLite and once on PostgreSQL, as two tests.
#[macro_export]
macro_rules! on_both_backends {
    ($(async fn $name:ident($app:ident: TestApp) $body:block)*) => {
        $(
            mod $name {
                #[allow(unused_imports)]
                use super::*;
                async fn run($app: $crate::support::TestApp) $body

                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn sqlite() {
                    if let Some(app) = $crate::support::TestApp::spawn($crate::support::Backend::Sqlite).await {
                        run(app).await
                    }
                }

                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn postgres() {
                    if let Some(app) = $crate::support::TestApp::spawn($crate::support::Backend::Postgres).await {
                        run(app).await
                    }
                }
            }
        )*
    };
}

pub struct TestApp {
    pub base_url: String,
    pub state: AppState,
    pub platform_token: String,
    pub dns: DnsServer,
    client: reqwest::Client,
    database: Arc<TestDatabase>,
}

/// A response, its body parsed as JSON when it is JSON.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub text: String,
    pub json: Value,
}

impl Reply {
    async fn read(response: reqwest::Response) -> Self {
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let text = response.text().await.unwrap_or_default();
        let json = serde_json::from_str(&text).unwrap_or(Value::Null);
        Self {
            status,
            headers,
            text,
            json,
        }
    }

    pub fn code(&self) -> &str {
        self.json["code"].as_str().unwrap_or_default()
    }
}

impl TestApp {
    /// A fresh application, or `None` (with the reason printed) when the backend is missing here.
    pub async fn spawn(backend: Backend) -> Option<Self> {
        Self::spawn_with(backend, |_| {}).await
    }

    pub async fn spawn_with(backend: Backend, configure: impl FnOnce(&mut Config)) -> Option<Self> {
        // The host's logs appear in a failing test's output.
        let _ = tracing_subscriber::fmt()
            .with_test_writer()
            .with_env_filter("warn,portico=info")
            .try_init();
        let database = TestDatabase::create(backend).await?;
        let dns = DnsServer::start().await;
        let mut config = Config {
            database_url: Some(Secret::new(database.url.clone())),
            base_domain: "portico.test".into(),
            public_url: "http://portico.test".into(),
            dns_resolver: Some(dns.addr),
            data_dir: database.dir.clone(),
            // Compiled plugins are keyed by content and engine, so tests can share them.
            plugin_cache_dir: Some(
                PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/test-plugin-cache"),
            ),
            ..Config::default()
        };
        configure(&mut config);
        let state = AppState::build(config).await.expect("application builds");
        let mut conn = state.db.pool.acquire().await.unwrap();
        let platform_token = portico::auth::issue_token(&mut conn, None, "tests", None)
            .await
            .unwrap()
            .token;
        drop(conn);
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(portico::serve(
            listener,
            state.clone(),
            std::future::pending(),
        ));
        Some(Self {
            base_url: format!("http://{addr}"),
            state,
            platform_token,
            dns,
            client: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                // A fresh connection per request: after refusing a body (413) the server closes
                // its side, and a pooled connection could be picked up just as it closes.
                .pool_max_idle_per_host(0)
                .build()
                .unwrap(),
            database: Arc::new(database),
        })
    }

    /// Another replica on the same database, as behind a load balancer.
    pub async fn replica(&self) -> TestApp {
        let state = AppState::build(self.state.config.clone())
            .await
            .expect("replica builds");
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(portico::serve(
            listener,
            state.clone(),
            std::future::pending(),
        ));
        TestApp {
            base_url: format!("http://{addr}"),
            state,
            platform_token: self.platform_token.clone(),
            dns: DnsServer::start().await,
            client: self.client.clone(),
            database: self.database.clone(),
        }
    }

    /// Sends a request with extra headers (such as `host`).
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<&Value>,
        headers: &[(&str, &str)],
    ) -> Reply {
        let mut request = self
            .client
            .request(method, format!("{}{path}", self.base_url));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(body);
        }
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        Reply::read(request.send().await.expect("request sent")).await
    }

    /// Sends a raw body (a form, an image) with extra headers.
    pub async fn send_bytes(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Vec<u8>,
        headers: &[(&str, &str)],
    ) -> Reply {
        let mut request = self
            .client
            .request(method, format!("{}{path}", self.base_url))
            .body(body);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        Reply::read(request.send().await.expect("request sent")).await
    }

    pub async fn get(&self, path: &str, token: &str) -> Reply {
        self.send(Method::GET, path, Some(token), None, &[]).await
    }

    pub async fn post(&self, path: &str, token: &str, body: Value) -> Reply {
        self.send(Method::POST, path, Some(token), Some(&body), &[])
            .await
    }

    pub async fn patch(&self, path: &str, token: &str, body: Value) -> Reply {
        self.send(Method::PATCH, path, Some(token), Some(&body), &[])
            .await
    }

    pub async fn delete(&self, path: &str, token: &str) -> Reply {
        self.send(Method::DELETE, path, Some(token), None, &[])
            .await
    }

    /// A page as a browser on `host` would ask for it.
    pub async fn page(&self, path: &str, host: &str) -> Reply {
        self.send(Method::GET, path, None, None, &[("host", host)])
            .await
    }

    /// Packs a guest from `tests/plugins` with its manifest (version replaced when given) and
    /// publishes it to the catalogue.
    pub async fn publish(&self, package: &str, version: Option<&str>) -> Reply {
        let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/plugins");
        let mut manifest =
            std::fs::read_to_string(root.join(package).join("portico-plugin.toml")).unwrap();
        if let Some(version) = version {
            manifest = manifest.replace("version = \"0.1.0\"", &format!("version = \"{version}\""));
        }
        let bytes = portico::plugins::manifest::pack(&manifest, &guest_wasm(package)).unwrap();
        self.upload(&bytes, &self.platform_token).await
    }

    /// Uploads raw bytes as a package.
    pub async fn upload(&self, bytes: &[u8], token: &str) -> Reply {
        let response = self
            .client
            .post(format!("{}/api/v1/plugins", self.base_url))
            .bearer_auth(token)
            .header("content-type", "application/octet-stream")
            .body(bytes.to_vec())
            .send()
            .await
            .unwrap();
        Reply::read(response).await
    }

    /// Creates a tenant with an admin, returning the tenant's id and a token of that admin.
    pub async fn tenant_with_admin(&self, slug: &str) -> (String, String) {
        let created = self
            .post(
                "/api/v1/tenants",
                &self.platform_token,
                serde_json::json!({
                    "slug": slug,
                    "display_name": format!("{slug} Ltd"),
                    "time_zone": "Europe/Berlin",
                    "language": "de",
                    "admin": {"email": format!("admin@{slug}.example"), "display_name": "Admin"}
                }),
            )
            .await;
        assert_eq!(created.status, 201, "{}", created.text);
        let tenant = created.json["id"].as_str().unwrap().to_string();
        let admin = created.json["admin"]["id"].as_str().unwrap();
        let token = self.token_for(&tenant, admin).await;
        (tenant, token)
    }

    /// Creates a staff user with the given roles and returns (user id, token).
    pub async fn staff(&self, tenant: &str, email: &str, roles: &[&str]) -> (String, String) {
        let user = self
            .post(
                &format!("/api/v1/tenants/{tenant}/users"),
                &self.platform_token,
                serde_json::json!({"email": email, "display_name": email, "roles": roles}),
            )
            .await;
        assert_eq!(user.status, 201, "{}", user.text);
        let id = user.json["id"].as_str().unwrap().to_string();
        let token = self.token_for(tenant, &id).await;
        (id, token)
    }

    pub async fn token_for(&self, tenant: &str, user: &str) -> String {
        let issued = self
            .post(
                &format!("/api/v1/tenants/{tenant}/tokens"),
                &self.platform_token,
                serde_json::json!({"user_id": user, "name": "test"}),
            )
            .await;
        assert_eq!(issued.status, 201, "{}", issued.text);
        issued.json["token"].as_str().unwrap().to_string()
    }
}

fn peers_required() -> bool {
    std::env::var(REQUIRE_PEERS).is_ok_and(|v| !v.is_empty() && v != "0")
}

/// The compiled guest component `package` from `tests/plugins` (built on first use, for
/// wasm32-wasip2, into `target/guests`).
pub fn guest_wasm(package: &str) -> Vec<u8> {
    static BUILT: Mutex<Vec<String>> = Mutex::new(Vec::new());
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let target = root.join("target/guests");
    let mut built = BUILT.lock().unwrap_or_else(|e| e.into_inner());
    if !built.iter().any(|p| p == package) {
        // One package at a time: each enables a different plugin kind of the SDK.
        let status =
            std::process::Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
                .args([
                    "build",
                    "--quiet",
                    "--release",
                    "--target",
                    "wasm32-wasip2",
                    "-p",
                    package,
                    "--target-dir",
                ])
                .arg(&target)
                .current_dir(root.join("tests/plugins"))
                .env_remove("RUSTFLAGS")
                .env_remove("CARGO_TARGET_DIR")
                .status()
                .expect("running cargo to build a guest plugin");
        assert!(
            status.success(),
            "building guest {package} failed; is the target installed (rustup target add wasm32-wasip2)?"
        );
        built.push(package.to_string());
    }
    let file = target.join(format!(
        "wasm32-wasip2/release/{}.wasm",
        package.replace('-', "_")
    ));
    std::fs::read(&file).unwrap_or_else(|e| panic!("reading {}: {e}", file.display()))
}

/// A database that exists for one test and is removed after it.
struct TestDatabase {
    url: String,
    dir: PathBuf,
    postgres: Option<(String, String)>,
}

impl TestDatabase {
    async fn create(backend: Backend) -> Option<Self> {
        let dir =
            std::env::temp_dir().join(format!("portico-test-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).unwrap();
        match backend {
            Backend::Sqlite => {
                let url = format!("sqlite://{}?mode=rwc", dir.join("portico.db").display());
                Some(Self {
                    url,
                    dir,
                    postgres: None,
                })
            }
            Backend::Postgres => {
                let server =
                    std::env::var(POSTGRES_URL).unwrap_or_else(|_| DEFAULT_POSTGRES_URL.into());
                let mut admin = match sqlx::PgConnection::connect(&server).await {
                    Ok(conn) => conn,
                    Err(e) => {
                        let reason = format!(
                            "PostgreSQL at {server} is unreachable ({e}); set {POSTGRES_URL}"
                        );
                        assert!(!peers_required(), "{reason}, and {REQUIRE_PEERS} is set");
                        eprintln!("SKIPPED: {reason}");
                        return None;
                    }
                };
                let name = format!("portico_test_{}", uuid::Uuid::new_v4().simple());
                sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
                    .execute(&mut admin)
                    .await
                    .expect("creating a test database");
                let base = server.rsplit_once('/').map_or(server.as_str(), |(b, _)| b);
                let url = format!("{base}/{name}");
                Some(Self {
                    url,
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
                    if let Ok(mut conn) = sqlx::PgConnection::connect(&server).await {
                        let sql = format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)");
                        let _ = sqlx::query(sqlx::AssertSqlSafe(sql))
                            .execute(&mut conn)
                            .await;
                    }
                });
            })
            .join();
        }
    }
}

/// A small authoritative DNS server on loopback that answers TXT queries from a table the test
/// fills, and NXDOMAIN for everything else.
pub struct DnsServer {
    pub addr: SocketAddr,
    records: Arc<Mutex<HashMap<String, Vec<String>>>>,
}

impl DnsServer {
    async fn start() -> Self {
        let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let addr = socket.local_addr().unwrap();
        let records: Arc<Mutex<HashMap<String, Vec<String>>>> = Arc::default();
        let table = records.clone();
        tokio::spawn(async move {
            let mut buf = [0u8; 1500];
            while let Ok((len, peer)) = socket.recv_from(&mut buf).await {
                let reply = answer(&buf[..len], &table.lock().unwrap());
                if let Some(reply) = reply {
                    let _ = socket.send_to(&reply, peer).await;
                }
            }
        });
        Self { addr, records }
    }

    /// Publishes a TXT record (name without trailing dot).
    pub fn set_txt(&self, name: &str, value: &str) {
        self.records
            .lock()
            .unwrap()
            .entry(name.to_ascii_lowercase())
            .or_default()
            .push(value.to_string());
    }
}

fn answer(query: &[u8], records: &HashMap<String, Vec<String>>) -> Option<Vec<u8>> {
    if query.len() < 12 {
        return None;
    }
    // Question: labels, then type and class.
    let mut pos = 12;
    let mut labels = Vec::new();
    loop {
        let len = *query.get(pos)? as usize;
        pos += 1;
        if len == 0 {
            break;
        }
        labels.push(String::from_utf8_lossy(query.get(pos..pos + len)?).to_ascii_lowercase());
        pos += len;
    }
    let qtype = u16::from_be_bytes([*query.get(pos)?, *query.get(pos + 1)?]);
    let question_end = pos + 4;
    let name = labels.join(".");
    let values = records.get(&name).filter(|_| qtype == 16);
    let mut reply = Vec::with_capacity(512);
    reply.extend_from_slice(&query[0..2]);
    let rcode = if records.contains_key(&name) { 0 } else { 3 };
    reply.extend_from_slice(&[0x84 | (query[2] & 0x01), 0x80 | rcode]);
    reply.extend_from_slice(&[0, 1]);
    reply.extend_from_slice(&(values.map_or(0, Vec::len) as u16).to_be_bytes());
    reply.extend_from_slice(&[0, 0, 0, 0]);
    reply.extend_from_slice(query.get(12..question_end)?);
    for value in values.into_iter().flatten() {
        reply.extend_from_slice(&[0xc0, 0x0c, 0, 16, 0, 1, 0, 0, 0, 30]);
        let bytes = value.as_bytes();
        reply.extend_from_slice(&((bytes.len() + 1) as u16).to_be_bytes());
        reply.push(bytes.len() as u8);
        reply.extend_from_slice(bytes);
    }
    Some(reply)
}
