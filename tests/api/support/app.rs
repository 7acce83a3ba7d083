//! The application under test: started on a loopback port with its own database and DNS server,
//! and spoken to over HTTP.

use std::path::PathBuf;
use std::sync::Arc;

use portico::AppState;
use portico::config::Config;
use portico::types::Secret;
use reqwest::Method;
use serde_json::Value;
use tokio::net::TcpListener;

use super::database::{Backend, TestDatabase};
use super::dns::DnsServer;
use super::guests::guest_wasm;

/// The host key of every test application: compiled plugins in the shared cache carry a MAC
/// under a key derived from it, so tests can share them.
pub const TEST_SECRET_KEY: &str = "cG9ydGljbyB0ZXN0cyBzaGFyZSB0aGlzIGtleSAzMmI=";

/// A running application with its own database, DNS server and platform token.
pub struct TestApp {
    pub base_url: String,
    pub state: AppState,
    pub platform_token: String,
    /// The DNS server the application resolves through (shared with its replicas).
    pub dns: Arc<DnsServer>,
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
    /// Creates a table only a test uses, as the schema's owner would (the application's role
    /// may not), and lets the application's role use it.
    pub async fn create_table(&self, name: &str, sql: &'static str) {
        let Some(owner) = &self.state.config.database_owner_url else {
            sqlx::query(sql).execute(&self.state.db.pool).await.unwrap();
            return;
        };
        use sqlx::Connection;
        let mut conn = sqlx::PgConnection::connect(owner.expose()).await.unwrap();
        sqlx::query(sql).execute(&mut conn).await.unwrap();
        let grant = format!(
            "GRANT SELECT, INSERT, UPDATE, DELETE ON {name} TO {}",
            super::database::APP_ROLE
        );
        sqlx::query(sqlx::AssertSqlSafe(grant))
            .execute(&mut conn)
            .await
            .unwrap();
    }

    /// The environment that points `portico` in another process at this test's database, as
    /// the application's role (and, on PostgreSQL, its owner for migrations).
    pub fn database_env(&self) -> Vec<(&'static str, String)> {
        let config = &self.state.config;
        let mut env = vec![(
            "PORTICO_DATABASE_URL",
            config.database_url().expose().clone(),
        )];
        if let Some(owner) = &config.database_owner_url {
            env.push(("PORTICO_DATABASE_OWNER_URL", owner.expose().clone()));
        }
        env
    }

    /// A fresh application, or `None` (with the reason printed) when the backend is missing here.
    pub async fn spawn(backend: Backend) -> Option<Self> {
        Self::spawn_with(backend, |_| {}).await
    }

    /// A fresh application whose configuration `configure` may change before it starts.
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
            database_owner_url: database.owner_url.clone().map(Secret::new),
            base_domain: "portico.test".into(),
            public_url: "http://portico.test".into(),
            dns_resolver: Some(dns.addr),
            data_dir: database.dir.clone(),
            // Compiled plugins are keyed by content and engine, so tests can share them.
            plugin_cache_dir: Some(test_plugin_cache()),
            secret_key: Some(Secret::new(TEST_SECRET_KEY.to_string())),
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
        Some(Self {
            base_url: serve(&state).await,
            state,
            platform_token,
            dns: Arc::new(dns),
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

    /// Another replica on the same database (and DNS server), as behind a load balancer.
    pub async fn replica(&self) -> TestApp {
        let state = AppState::build(self.state.config.clone())
            .await
            .expect("replica builds");
        TestApp {
            base_url: serve(&state).await,
            state,
            platform_token: self.platform_token.clone(),
            dns: self.dns.clone(),
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

    /// Creates a project and a ticket in it for Eva; returns the ticket's id and the path of
    /// its tracking link.
    pub async fn ticket_with_link(
        &self,
        tenant: &str,
        admin: &str,
        title: &str,
    ) -> (String, String) {
        let project = self
            .post(
                &format!("/api/v1/tenants/{tenant}/projects"),
                admin,
                serde_json::json!({"name": "Printers"}),
            )
            .await;
        let ticket = self
            .post(
                &format!("/api/v1/tenants/{tenant}/tickets"),
                admin,
                serde_json::json!({"project_id": project.json["id"], "title": title,
                    "contact": {"first_name": "Eva", "last_name": "Schmidt", "email": "eva@example.com"}}),
            )
            .await;
        assert_eq!(ticket.status, 201, "{}", ticket.text);
        let path = link_path(&ticket.json["tracking_url"]);
        (ticket.json["id"].as_str().unwrap().to_string(), path)
    }

    /// The id of the tenant's install of `plugin`.
    pub async fn install_of(&self, tenant: &str, token: &str, plugin: &str) -> String {
        let installs = self
            .get(
                &format!("/api/v1/tenants/{tenant}/plugins?limit=200"),
                token,
            )
            .await;
        installs.json["items"]
            .as_array()
            .and_then(|items| items.iter().find(|i| i["plugin_id"] == plugin))
            .unwrap_or_else(|| panic!("the tenant has no install of {plugin}: {}", installs.text))
            ["id"]
            .as_str()
            .unwrap()
            .to_string()
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

/// Serves `state` on a fresh loopback port until the test ends; returns its base URL.
async fn serve(state: &AppState) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(portico::serve(
        listener,
        state.clone(),
        std::future::pending(),
    ));
    format!("http://{addr}")
}

/// The path of a tracking link the API answered with (`http://<tenant>.portico.test/t/…`).
pub fn link_path(url: &Value) -> String {
    let url = url.as_str().expect("a tracking URL");
    url.split("portico.test")
        .nth(1)
        .expect("on the test domain")
        .to_string()
}

/// The compiled-plugin cache the tests share.
pub fn test_plugin_cache() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/test-plugin-cache")
}
