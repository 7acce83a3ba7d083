//! What the benchmarks share: a host on loopback with a platform token, its API, and a fresh
//! PostgreSQL database.

use std::time::Duration;

use anyhow::bail;
use portico::AppState;
use portico::config::Config;
use serde_json::Value;
use sqlx::Connection;
use tokio::net::TcpListener;

const POSTGRES_URL: &str = "PORTICO_TEST_POSTGRES_URL";
const DEFAULT_POSTGRES_URL: &str = "postgres://postgres@127.0.0.1:5432/test";

/// A host's configuration on `database_url`, its files in `scratch`.
pub fn config(database_url: &str, scratch: &std::path::Path) -> Config {
    Config {
        database_url: Some(portico::types::Secret::new(database_url.to_string())),
        base_domain: "portico.test".into(),
        public_url: "http://portico.test".into(),
        data_dir: scratch.to_path_buf(),
        plugin_cache_dir: Some(scratch.join("plugin-cache")),
        ..Config::default()
    }
}

/// Starts a host with `config` on loopback; returns its API with a platform token.
pub async fn serve(config: Config) -> anyhow::Result<Api> {
    let state = AppState::build(config).await?;
    let mut conn = state.db.pool.acquire().await?;
    let token = portico::auth::issue_token(&mut conn, None, "bench", None)
        .await?
        .token;
    drop(conn);
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}", listener.local_addr()?);
    tokio::spawn(portico::serve(listener, state, std::future::pending()));
    Ok(Api {
        client: reqwest::Client::new(),
        base,
        token,
    })
}

pub struct Api {
    pub client: reqwest::Client,
    pub base: String,
    pub token: String,
}

impl Api {
    pub async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Value,
    ) -> anyhow::Result<Value> {
        let response = self
            .client
            .request(method.clone(), format!("{}{path}", self.base))
            .bearer_auth(&self.token)
            .json(&body)
            .send()
            .await?;
        let status = response.status();
        let json: Value = response.json().await.unwrap_or(Value::Null);
        if !status.is_success() {
            bail!("{method} {path}: {status} {json}");
        }
        Ok(json)
    }
}

/// A fresh database on the PostgreSQL server: (server URL, database name, database URL).
pub async fn postgres_database() -> Result<(String, String, String), String> {
    let server = std::env::var(POSTGRES_URL).unwrap_or_else(|_| DEFAULT_POSTGRES_URL.into());
    let mut conn =
        match tokio::time::timeout(Duration::from_secs(5), sqlx::PgConnection::connect(&server))
            .await
        {
            Ok(Ok(conn)) => conn,
            Ok(Err(e)) => return Err(format!("{server} is unreachable ({e}); set {POSTGRES_URL}")),
            Err(_) => {
                return Err(format!(
                    "{server} did not answer within 5 s; set {POSTGRES_URL}"
                ));
            }
        };
    let name = format!("portico_bench_{}", uuid::Uuid::new_v4().simple());
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&mut conn)
        .await
        .map_err(|e| format!("creating a database: {e}"))?;
    let base = server.rsplit_once('/').map_or(server.as_str(), |(b, _)| b);
    Ok((server.clone(), name.clone(), format!("{base}/{name}")))
}

pub async fn drop_database(server: &str, name: &str) {
    if let Ok(mut conn) = sqlx::PgConnection::connect(server).await {
        let sql = format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)");
        let _ = sqlx::query(sqlx::AssertSqlSafe(sql))
            .execute(&mut conn)
            .await;
    }
}
