//! The platform's plugin catalogue: packages uploaded by platform administrators, validated on
//! upload, immutable once published.

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::StatusCode;
use portico_plugin_runtime::PluginKind;
use portico_plugin_runtime::manifest::{MAX_PACKAGE_BYTES, Manifest, unpack};
use portico_plugin_runtime::outbound::Grants;
use serde::Serialize;
use serde_json::json;
use sqlx::FromRow;
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::AppState;
use crate::audit::{self, Change};
use crate::db::{self, Pool, now_ms};
use crate::error::{Error, Result};
use crate::events::Event;
use crate::http::extract::{Json, Path, Query};
use crate::types::{Caller, Page, PageParams};

#[derive(FromRow)]
struct PackageRow {
    id: String,
    manifest: String,
    sha256: String,
    size: i64,
    created_at: i64,
}

/// A published plugin version.
#[derive(Serialize, ToSchema)]
pub struct PluginVersion {
    pub id: String,
    pub plugin_id: String,
    pub version: String,
    pub kind: PluginKind,
    pub name: String,
    pub description: String,
    pub authors: Vec<String>,
    /// What it asks for; tenants approve these per install.
    pub capabilities: Grants,
    #[schema(value_type = Option<Object>)]
    pub config_schema: Option<serde_json::Value>,
    /// Names of the secrets it needs.
    pub secrets: Vec<String>,
    /// SHA-256 of the package file.
    pub sha256: String,
    pub size: i64,
    #[schema(value_type = String, format = DateTime)]
    pub published_at: jiff::Timestamp,
}

impl PackageRow {
    fn view(self) -> Result<PluginVersion> {
        let manifest = Manifest::parse(&self.manifest)
            .map_err(|e| Error::Internal(anyhow::anyhow!("stored manifest: {e}")))?;
        Ok(PluginVersion {
            id: self.id,
            plugin_id: manifest.id,
            version: manifest.version,
            kind: manifest.kind,
            name: manifest.name,
            description: manifest.description,
            authors: manifest.authors,
            capabilities: manifest.capabilities,
            config_schema: manifest.config_schema,
            secrets: manifest.secrets,
            sha256: self.sha256,
            size: self.size,
            published_at: db::timestamp(self.created_at),
        })
    }
}

/// One version's manifest, or not found.
pub async fn manifest(pool: &Pool, plugin_id: &str, version: &str) -> Result<(Manifest, String)> {
    let row: Option<(String, String)> = sqlx::query_as(
        "SELECT manifest, sha256 FROM plugin_packages WHERE plugin_id = $1 AND version = $2",
    )
    .bind(plugin_id)
    .bind(version)
    .fetch_optional(pool)
    .await?;
    let (text, sha256) = row.ok_or(Error::NotFound("plugin version"))?;
    let manifest = Manifest::parse(&text)
        .map_err(|e| Error::Internal(anyhow::anyhow!("stored manifest: {e}")))?;
    Ok((manifest, sha256))
}

/// The newest version of a plugin, by publication.
pub async fn latest_version(pool: &Pool, plugin_id: &str) -> Result<String> {
    let row: Option<(String,)> =
        sqlx::query_as("SELECT version FROM plugin_packages WHERE plugin_id = $1 ORDER BY created_at DESC, id DESC LIMIT 1")
            .bind(plugin_id)
            .fetch_optional(pool)
            .await?;
    row.map(|r| r.0).ok_or(Error::NotFound("plugin"))
}

/// A package's bytes, by content hash.
pub async fn package_bytes(pool: &Pool, sha256: &str) -> Result<Vec<u8>> {
    let row: Option<(Vec<u8>,)> =
        sqlx::query_as("SELECT package FROM plugin_packages WHERE sha256 = $1 LIMIT 1")
            .bind(sha256)
            .fetch_optional(pool)
            .await?;
    row.map(|r| r.0).ok_or(Error::NotFound("plugin package"))
}

/// Every catalogued package, for compiling at start-up.
pub async fn all_packages(pool: &Pool) -> anyhow::Result<Vec<(PluginKind, Vec<u8>)>> {
    let rows: Vec<(String, Vec<u8>)> = sqlx::query_as("SELECT kind, package FROM plugin_packages")
        .fetch_all(pool)
        .await?;
    Ok(rows
        .into_iter()
        .filter_map(|(kind, bytes)| Some((PluginKind::parse(&kind)?, bytes)))
        .collect())
}

/// Adds a validated package to the catalogue.
async fn store(
    conn: &mut sqlx::AnyConnection,
    manifest: &Manifest,
    row: &PackageRow,
    package: &[u8],
) -> std::result::Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO plugin_packages (id, plugin_id, version, kind, name, manifest, sha256, size, package, created_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
    )
    .bind(&row.id)
    .bind(&manifest.id)
    .bind(&manifest.version)
    .bind(manifest.kind.as_str())
    .bind(&manifest.name)
    .bind(&row.manifest)
    .bind(&row.sha256)
    .bind(row.size)
    .bind(package.to_vec())
    .bind(row.created_at)
    .execute(conn)
    .await?;
    Ok(())
}

/// Validates a package (manifest, world, compilation) and adds it to the catalogue with its
/// audit entry. `Ok(None)` when that version is catalogued already.
async fn add_to_catalogue(
    state: &AppState,
    package: &[u8],
    actor: &str,
) -> Result<Option<PackageRow>> {
    let (manifest, text) = unpack(package).map_err(|e| Error::invalid("invalid_package", e.0))?;
    let plugin = state
        .plugins
        .runtime
        .load(manifest.kind, package)
        .map_err(|e| Error::invalid("invalid_package", e.to_string()))?;
    let row = PackageRow {
        id: db::new_id(),
        manifest: text,
        sha256: plugin.sha256.clone(),
        size: package.len() as i64,
        created_at: now_ms(),
    };
    let mut tx = state.events.begin().await?;
    match store(&mut tx, &manifest, &row, package).await {
        Err(e) if db::is_unique_violation(&e) => return Ok(None),
        other => other?,
    }
    let change = Change {
        tenant: None,
        action: "plugin.publish",
        target: &row.id,
        before: None,
        after: Some(
            json!({"plugin_id": manifest.id, "version": manifest.version, "sha256": row.sha256}),
        ),
    };
    audit::record(&mut tx, actor, change).await?;
    let subject = format!("{}@{}", manifest.id, manifest.version);
    tx.emit(None, &subject, actor, Event::PluginPublished)
        .await?;
    tx.commit().await?;
    Ok(Some(row))
}

/// Publishes a built-in package at start-up unless that version is catalogued already (by this
/// or another replica).
pub async fn publish_built_in(state: &AppState, package: &[u8]) -> anyhow::Result<()> {
    add_to_catalogue(state, package, "built-in plugins").await?;
    Ok(())
}

/// Publishes a package (the body, as `application/octet-stream`): the manifest is checked, the
/// component is compiled and checked against its world, and the version becomes immutable.
/// Platform administrators only.
#[utoipa::path(post, path = "/api/v1/plugins", tag = "plugins",
    request_body(content = Vec<u8>, content_type = "application/octet-stream", description = "A package made by `portico plugin pack`"),
    responses((status = 201, body = PluginVersion), (status = 422, body = crate::error::ErrorBody), (status = 409, body = crate::error::ErrorBody)))]
async fn publish(
    State(state): State<AppState>,
    caller: Caller,
    body: Bytes,
) -> Result<(StatusCode, Json<PluginVersion>)> {
    caller.require_platform()?;
    match add_to_catalogue(&state, &body, &caller.actor()).await? {
        Some(row) => Ok((StatusCode::CREATED, Json(row.view()?))),
        None => {
            let (manifest, _) =
                unpack(&body).map_err(|e| Error::invalid("invalid_package", e.0))?;
            Err(Error::conflict(
                "version_exists",
                format!(
                    "{} {} is already published; versions are immutable, publish a new one",
                    manifest.id, manifest.version
                ),
            ))
        }
    }
}

/// The catalogue: every published version, oldest first. Any signed-in caller may browse it.
#[utoipa::path(get, path = "/api/v1/plugins", tag = "plugins", params(PageParams),
    responses((status = 200, body = Page<PluginVersion>)))]
async fn catalogue(
    State(state): State<AppState>,
    _caller: Caller,
    Query(page): Query<PageParams>,
) -> Result<Json<Page<PluginVersion>>> {
    let limit = page.limit()?;
    let rows: Vec<PackageRow> = sqlx::query_as(
        "SELECT id, manifest, sha256, size, created_at FROM plugin_packages WHERE id > $1 ORDER BY id LIMIT $2",
    )
    .bind(page.after())
    .bind(limit + 1)
    .fetch_all(&state.db.pool)
    .await?;
    let page = Page::from_rows(rows, limit, |r| &r.id);
    let items = page
        .items
        .into_iter()
        .map(PackageRow::view)
        .collect::<Result<Vec<_>>>()?;
    Ok(Json(Page {
        items,
        next_cursor: page.next_cursor,
    }))
}

#[utoipa::path(get, path = "/api/v1/plugins/{plugin}/versions/{version}", tag = "plugins",
    params(("plugin" = String, Path), ("version" = String, Path)),
    responses((status = 200, body = PluginVersion)))]
async fn version(
    State(state): State<AppState>,
    _caller: Caller,
    Path((plugin, version)): Path<(String, String)>,
) -> Result<Json<PluginVersion>> {
    let row: PackageRow = sqlx::query_as(
        "SELECT id, manifest, sha256, size, created_at FROM plugin_packages WHERE plugin_id = $1 AND version = $2",
    )
    .bind(&plugin)
    .bind(&version)
    .fetch_optional(&state.db.pool)
    .await?
    .ok_or(Error::NotFound("plugin version"))?;
    Ok(Json(row.view()?))
}

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(publish, catalogue))
        .routes(routes!(version))
        .layer(DefaultBodyLimit::max(MAX_PACKAGE_BYTES))
}
