//! The only code that names the `plugin_packages`, `plugin_installs` and `plugin_runs` tables.
//! Packages belong to the platform; installs and runs are the tenant's.

use portico_plugin_runtime::PluginKind;
use portico_plugin_runtime::manifest::Manifest;
use sqlx::AnyConnection;

use super::model::{
    InstallChanges, InstallRow, PackageRow, PluginVersion, Run, RunRow, stored_manifest,
};
use crate::db::{self, Pool, Sql};
use crate::error::{Error, Result};
use crate::types::TenantId;

// plugin_packages: the platform's catalogue.

const PACKAGE_COLUMNS: &str = "id, manifest, sha256, size, created_at";

/// One version's manifest and package hash, or not found.
pub async fn manifest(pool: &Pool, plugin_id: &str, version: &str) -> Result<(Manifest, String)> {
    let row: Option<(String, String)> = sqlx::query_as(
        "SELECT manifest, sha256 FROM plugin_packages WHERE plugin_id = $1 AND version = $2",
    )
    .bind(plugin_id)
    .bind(version)
    .fetch_optional(pool)
    .await?;
    let (text, sha256) = row.ok_or(Error::NotFound("plugin version"))?;
    Ok((stored_manifest(&text)?, sha256))
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

/// Published versions in id order, after the cursor `after`.
pub async fn list_packages(pool: &Pool, after: &str, limit: i64) -> Result<Vec<PluginVersion>> {
    let rows: Vec<PackageRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {PACKAGE_COLUMNS} FROM plugin_packages WHERE id > $1 ORDER BY id LIMIT $2"
    )))
    .bind(after)
    .bind(limit)
    .fetch_all(pool)
    .await?;
    rows.into_iter().map(PackageRow::view).collect()
}

/// One published version, or not found.
pub async fn find_package(pool: &Pool, plugin_id: &str, version: &str) -> Result<PluginVersion> {
    let row: PackageRow = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {PACKAGE_COLUMNS} FROM plugin_packages WHERE plugin_id = $1 AND version = $2"
    )))
    .bind(plugin_id)
    .bind(version)
    .fetch_optional(pool)
    .await?
    .ok_or(Error::NotFound("plugin version"))?;
    row.view()
}

/// Adds a validated package to the catalogue; `false` when that version is catalogued already.
pub(super) async fn insert_package(
    conn: &mut AnyConnection,
    manifest: &Manifest,
    row: &PackageRow,
    package: &[u8],
) -> Result<bool> {
    let inserted = sqlx::query(
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
    .await;
    match inserted {
        Err(e) if db::is_unique_violation(&e) => Ok(false),
        other => other.map(|_| true).map_err(Error::from),
    }
}

// plugin_installs: a tenant's installs.

const INSTALL_COLUMNS: &str = "id, plugin_id, version, previous_version, enabled, config, grants, secrets, limits, keep_failed_inputs, created_at, updated_at";

/// One install of the tenant, or not found.
pub(super) async fn find(pool: &Pool, tenant: &TenantId, id: &str) -> Result<InstallRow> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {INSTALL_COLUMNS} FROM plugin_installs WHERE tenant_id = $1 AND id = $2"
    )))
    .bind(tenant)
    .bind(id)
    .fetch_optional(pool)
    .await?
    .ok_or(Error::NotFound("plugin install"))
}

/// One install, read in a write transaction and locked until it ends when `for_update` (from
/// the transaction) says so.
pub(super) async fn lock(
    conn: &mut AnyConnection,
    tenant: &TenantId,
    id: &str,
    for_update: &str,
) -> Result<InstallRow> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {INSTALL_COLUMNS} FROM plugin_installs WHERE tenant_id = $1 AND id = $2{for_update}"
    )))
    .bind(tenant)
    .bind(id)
    .fetch_optional(conn)
    .await?
    .ok_or(Error::NotFound("plugin install"))
}

/// The tenant's installs in id order, after the cursor `after`.
pub(super) async fn list(
    pool: &Pool,
    tenant: &TenantId,
    after: &str,
    limit: i64,
) -> Result<Vec<InstallRow>> {
    Ok(sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT {INSTALL_COLUMNS} FROM plugin_installs WHERE tenant_id = $1 AND id > $2 ORDER BY id LIMIT $3"
    )))
    .bind(tenant)
    .bind(after)
    .bind(limit)
    .fetch_all(pool)
    .await?)
}

/// The kind of plugin an install of the tenant runs (`None`: no such install).
pub async fn kind_of(pool: &Pool, tenant: &TenantId, install: &str) -> Result<Option<String>> {
    let kind: Option<(String,)> = sqlx::query_as(
        "SELECT p.kind FROM plugin_installs i JOIN plugin_packages p ON p.plugin_id = i.plugin_id AND p.version = i.version
         WHERE i.tenant_id = $1 AND i.id = $2",
    )
    .bind(tenant)
    .bind(install)
    .fetch_optional(pool)
    .await?;
    Ok(kind.map(|(kind,)| kind))
}

/// The id of the tenant's install of `plugin` (a tenant installs a plugin at most once).
pub async fn install_of(pool: &Pool, tenant: &TenantId, plugin: &str) -> Result<Option<String>> {
    let id: Option<(String,)> =
        sqlx::query_as("SELECT id FROM plugin_installs WHERE tenant_id = $1 AND plugin_id = $2")
            .bind(tenant)
            .bind(plugin)
            .fetch_optional(pool)
            .await?;
    Ok(id.map(|(id,)| id))
}

/// Stores a new install; `already_installed` when the tenant has one of that plugin.
pub(super) async fn insert(
    conn: &mut AnyConnection,
    tenant: &TenantId,
    row: &InstallRow,
) -> Result<()> {
    let inserted = sqlx::query(
        "INSERT INTO plugin_installs (id, tenant_id, plugin_id, version, previous_version, enabled, config, grants,
           secrets, limits, keep_failed_inputs, created_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
    )
    .bind(&row.id)
    .bind(tenant)
    .bind(&row.plugin_id)
    .bind(&row.version)
    .bind(&row.previous_version)
    .bind(row.enabled)
    .bind(&row.config)
    .bind(&row.grants)
    .bind(row.secrets.clone())
    .bind(&row.limits)
    .bind(row.keep_failed_inputs)
    .bind(row.created_at)
    .bind(row.updated_at)
    .execute(conn)
    .await;
    match inserted {
        Err(e) if db::is_unique_violation(&e) => Err(Error::conflict(
            "already_installed",
            format!(
                "{} is already installed; change or upgrade that install",
                row.plugin_id
            ),
        )),
        other => other.map(drop).map_err(Error::from),
    }
}

/// Writes only the columns `changes` sets, and `updated_at`.
pub(super) async fn update(
    conn: &mut AnyConnection,
    tenant: &TenantId,
    id: &str,
    changes: &InstallChanges,
    now: i64,
) -> Result<()> {
    let mut sql = Sql::new("UPDATE plugin_installs SET updated_at = ");
    sql.push_bind(now);
    if let Some((version, previous)) = &changes.version {
        sql.push(", version = ").push_bind(version.as_str());
        sql.push(", previous_version = ")
            .push_bind(previous.as_str());
    }
    if let Some(enabled) = changes.enabled {
        sql.push(", enabled = ").push_bind(enabled);
    }
    if let Some(keep) = changes.keep_failed_inputs {
        sql.push(", keep_failed_inputs = ").push_bind(keep);
        if keep == 0 {
            forget_inputs_of(&mut *conn, tenant, id).await?;
        }
    }
    if let Some(config) = &changes.config {
        sql.push(", config = ").push_bind(config.as_str());
    }
    if let Some(grants) = &changes.grants {
        sql.push(", grants = ").push_bind(grants.as_str());
    }
    if let Some(limits) = &changes.limits {
        sql.push(", limits = ").push_bind(limits.as_str());
    }
    sql.push(" WHERE tenant_id = ").push_bind(tenant);
    sql.push(" AND id = ").push_bind(id);
    sql.execute(&mut *conn).await?;
    // `Sql` binds text and integers only: the sealed secrets have their own statement.
    if let Some(sealed) = &changes.secrets {
        sqlx::query("UPDATE plugin_installs SET secrets = $3 WHERE tenant_id = $1 AND id = $2")
            .bind(tenant)
            .bind(id)
            .bind(sealed.clone())
            .execute(conn)
            .await?;
    }
    Ok(())
}

pub async fn delete(conn: &mut AnyConnection, tenant: &TenantId, id: &str) -> Result<()> {
    forget_inputs_of(&mut *conn, tenant, id).await?;
    sqlx::query("DELETE FROM plugin_installs WHERE tenant_id = $1 AND id = $2")
        .bind(tenant)
        .bind(id)
        .execute(conn)
        .await?;
    Ok(())
}

// plugin_runs: a tenant's run records.

/// Stores a run record, with the input kept for replay (input, configuration, until when).
pub(super) async fn insert_run(
    pool: &Pool,
    tenant: &TenantId,
    run: &RunRow,
    kept: Option<(&str, &str, i64)>,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO plugin_runs (id, tenant_id, install_id, plugin_id, version, kind, outcome, message, duration_us, fuel_used, logs, created_at,
           input, input_config, input_expires_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)",
    )
    .bind(&run.id)
    .bind(tenant)
    .bind(&run.install_id)
    .bind(&run.plugin_id)
    .bind(&run.version)
    .bind(&run.kind)
    .bind(&run.outcome)
    .bind(&run.message)
    .bind(run.duration_us)
    .bind(run.fuel_used)
    .bind(&run.logs)
    .bind(run.created_at)
    .bind(kept.map(|(input, _, _)| input))
    .bind(kept.map(|(_, config, _)| config))
    .bind(kept.map(|(_, _, until)| until))
    .execute(pool)
    .await?;
    Ok(())
}

/// Forgets kept inputs whose time is up, in every tenant: the platform's sweep. Returns how
/// many.
pub(super) async fn forget_expired_inputs(pool: &Pool, now: i64) -> Result<u64> {
    let done = sqlx::query(
        "UPDATE plugin_runs SET input = NULL, input_config = NULL, input_expires_at = NULL
         WHERE input_expires_at < $1",
    )
    .bind(now)
    .execute(pool)
    .await?;
    Ok(done.rows_affected())
}

/// Forgets the inputs an install's runs kept: it stopped keeping them, or it is uninstalled.
async fn forget_inputs_of(
    conn: &mut AnyConnection,
    tenant: &TenantId,
    install: &str,
) -> Result<()> {
    sqlx::query(
        "UPDATE plugin_runs SET input = NULL, input_config = NULL, input_expires_at = NULL
         WHERE tenant_id = $1 AND install_id = $2 AND input IS NOT NULL",
    )
    .bind(tenant)
    .bind(install)
    .execute(conn)
    .await?;
    Ok(())
}

/// A run of the tenant with its kept input, if it has one that has not expired at `now`.
pub(super) async fn replay_of(
    pool: &Pool,
    tenant: &TenantId,
    run: &str,
    now: i64,
) -> Result<Option<(RunRow, String, String, i64)>> {
    #[derive(sqlx::FromRow)]
    struct Kept {
        #[sqlx(flatten)]
        run: RunRow,
        input: String,
        input_config: String,
        input_expires_at: i64,
    }
    let kept: Option<Kept> = sqlx::query_as(
        "SELECT id, install_id, plugin_id, version, kind, outcome, message, duration_us, fuel_used, logs, created_at,
           input, input_config, input_expires_at
         FROM plugin_runs
         WHERE tenant_id = $1 AND id = $2 AND input IS NOT NULL AND input_expires_at >= $3",
    )
    .bind(tenant)
    .bind(run)
    .bind(now)
    .fetch_optional(pool)
    .await?;
    Ok(kept.map(|k| (k.run, k.input, k.input_config, k.input_expires_at)))
}

/// The tenant's runs in id order, after the cursor `after`, of one plugin when given.
pub async fn list_runs(
    pool: &Pool,
    tenant: &TenantId,
    plugin_id: Option<&str>,
    after: &str,
    limit: i64,
) -> Result<Vec<Run>> {
    let mut sql = Sql::new(
        "SELECT id, install_id, plugin_id, version, kind, outcome, message, duration_us, fuel_used, logs, created_at
         FROM plugin_runs WHERE tenant_id = ",
    );
    sql.push_bind(tenant);
    sql.push(" AND id > ").push_bind(after);
    if let Some(plugin_id) = plugin_id {
        sql.push(" AND plugin_id = ").push_bind(plugin_id);
    }
    sql.push(" ORDER BY id LIMIT ").push_bind(limit);
    let rows: Vec<RunRow> = sql.query_as().fetch_all(pool).await?;
    Ok(rows.into_iter().map(Run::from).collect())
}
