//! The admin API of plugins: the platform's catalogue, a tenant's installs and invocations, and
//! its run records.

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::StatusCode;
use portico_plugin_runtime::manifest::MAX_PACKAGE_BYTES;
use utoipa_axum::{router::OpenApiRouter, routes};

use super::model::{
    ChangeInstall, Install, InvokeRequest, InvokeResult, NewInstall, PluginVersion, Replay, Run,
    RunFilter,
};
use super::{catalogue, installs, runs, store};
use crate::AppState;
use crate::error::{Error, ErrorBody, Result};
use crate::http::extract::{Json, Path, Query};
use crate::http::guard::Scope;
use crate::types::{Caller, Page, PageParams, Principal};

/// Publishes a package (the body, as `application/octet-stream`): the manifest is checked, the
/// component is compiled and checked against its world, and the version becomes immutable.
/// Platform administrators only.
#[utoipa::path(post, path = "/api/v1/plugins", tag = "plugins",
    request_body(content = Vec<u8>, content_type = "application/octet-stream", description = "A package made by `portico plugin pack`"),
    responses((status = 201, body = PluginVersion), (status = 403, body = ErrorBody),
        (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn publish(
    State(state): State<AppState>,
    caller: Caller,
    body: Bytes,
) -> Result<(StatusCode, Json<PluginVersion>)> {
    let version = catalogue::publish(&state, &caller, &body).await?;
    Ok((StatusCode::CREATED, Json(version)))
}

/// The catalogue: every published version, oldest first. Any signed-in caller may browse it.
#[utoipa::path(get, path = "/api/v1/plugins", tag = "plugins", params(PageParams),
    responses((status = 200, body = Page<PluginVersion>), (status = 400, body = ErrorBody)))]
async fn catalogue(
    State(state): State<AppState>,
    _caller: Caller,
    Query(page): Query<PageParams>,
) -> Result<Json<Page<PluginVersion>>> {
    let limit = page.limit()?;
    let versions = store::list_packages(&state.db.pool, page.after(), limit + 1).await?;
    Ok(Json(Page::from_rows(versions, limit, |v| &v.id)))
}

#[utoipa::path(get, path = "/api/v1/plugins/{plugin}/versions/{version}", tag = "plugins",
    params(("plugin" = String, Path), ("version" = String, Path)),
    responses((status = 200, body = PluginVersion), (status = 404, body = ErrorBody)))]
async fn version(
    State(state): State<AppState>,
    _caller: Caller,
    Path((plugin, version)): Path<(String, String)>,
) -> Result<Json<PluginVersion>> {
    Ok(Json(
        store::find_package(&state.db.pool, &plugin, &version).await?,
    ))
}

#[utoipa::path(get, path = "/api/v1/tenants/{tenant}/plugins", tag = "plugins",
    params(("tenant" = String, Path, description = "Tenant id or slug"), PageParams),
    responses((status = 200, body = Page<Install>), (status = 400, body = ErrorBody)))]
async fn list_installs(
    State(state): State<AppState>,
    scope: Scope,
    Query(page): Query<PageParams>,
) -> Result<Json<Page<Install>>> {
    let limit = page.limit()?;
    Ok(Json(
        installs::list(&state, &scope.tenant.id, page.after(), limit).await?,
    ))
}

#[utoipa::path(post, path = "/api/v1/tenants/{tenant}/plugins", tag = "plugins",
    params(("tenant" = String, Path, description = "Tenant id or slug")),
    request_body = NewInstall,
    responses((status = 201, body = Install), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn install(
    State(state): State<AppState>,
    scope: Scope,
    Json(input): Json<NewInstall>,
) -> Result<(StatusCode, Json<Install>)> {
    let install = installs::install(&state, &scope.caller, &scope.tenant.id, input).await?;
    Ok((StatusCode::CREATED, Json(install)))
}

#[utoipa::path(get, path = "/api/v1/tenants/{tenant}/plugins/{install}", tag = "plugins",
    params(("tenant" = String, Path, description = "Tenant id or slug"), ("install" = String, Path)),
    responses((status = 200, body = Install), (status = 404, body = ErrorBody)))]
async fn get_install(
    State(state): State<AppState>,
    scope: Scope,
    Path((_, id)): Path<(String, String)>,
) -> Result<Json<Install>> {
    Ok(Json(installs::get(&state, &scope.tenant.id, &id).await?))
}

#[utoipa::path(patch, path = "/api/v1/tenants/{tenant}/plugins/{install}", tag = "plugins",
    params(("tenant" = String, Path, description = "Tenant id or slug"), ("install" = String, Path)),
    request_body = ChangeInstall,
    responses((status = 200, body = Install), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn change_install(
    State(state): State<AppState>,
    scope: Scope,
    Path((_, id)): Path<(String, String)>,
    Json(input): Json<ChangeInstall>,
) -> Result<Json<Install>> {
    let install = installs::change(&state, &scope.caller, &scope.tenant.id, &id, input).await?;
    Ok(Json(install))
}

/// Returns to the version before the last upgrade.
#[utoipa::path(post, path = "/api/v1/tenants/{tenant}/plugins/{install}/rollback", tag = "plugins",
    params(("tenant" = String, Path, description = "Tenant id or slug"), ("install" = String, Path)),
    responses((status = 200, body = Install), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
async fn rollback(
    State(state): State<AppState>,
    scope: Scope,
    Path((_, id)): Path<(String, String)>,
) -> Result<Json<Install>> {
    let install = installs::rollback(&state, &scope.caller, &scope.tenant.id, &id).await?;
    Ok(Json(install))
}

#[utoipa::path(delete, path = "/api/v1/tenants/{tenant}/plugins/{install}", tag = "plugins",
    params(("tenant" = String, Path, description = "Tenant id or slug"), ("install" = String, Path)),
    responses((status = 204), (status = 404, body = ErrorBody)))]
async fn uninstall(
    State(state): State<AppState>,
    scope: Scope,
    Path((_, id)): Path<(String, String)>,
) -> Result<StatusCode> {
    installs::uninstall(&state, &scope.caller, &scope.tenant.id, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Runs the installed plugin once on the given input, under its production limits, and records
/// the run. A plugin's failure is a result here, not an API error.
#[utoipa::path(post, path = "/api/v1/tenants/{tenant}/plugins/{install}/invoke", tag = "plugins",
    params(("tenant" = String, Path, description = "Tenant id or slug"), ("install" = String, Path)),
    request_body = InvokeRequest,
    responses((status = 200, body = InvokeResult), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody),
        (status = 422, body = ErrorBody), (status = 429, body = ErrorBody, description = "The tenant's invocations per minute are used up; see Retry-After")))]
async fn invoke(
    State(state): State<AppState>,
    scope: Scope,
    Path((_, id)): Path<(String, String)>,
    Json(request): Json<InvokeRequest>,
) -> Result<Json<InvokeResult>> {
    if let Err(not_until) = state.plugins.invocations.check_key(&scope.tenant.id) {
        let clock = governor::clock::DefaultClock::default();
        let wait = not_until.wait_time_from(governor::clock::Clock::now(&clock));
        return Err(Error::TooManyRequests {
            code: "invocation_limit_reached",
            message: "this tenant's plugin invocations per minute are used up; try again shortly"
                .into(),
            retry_after_secs: wait.as_secs_f64().ceil().max(1.0) as u64,
        });
    }
    Ok(Json(
        runs::invoke(&state, &scope.tenant.id, &id, request).await?,
    ))
}

/// This tenant's plugin runs, oldest first.
#[utoipa::path(get, path = "/api/v1/tenants/{tenant}/plugin-runs", tag = "plugins",
    params(("tenant" = String, Path, description = "Tenant id or slug"), RunFilter),
    responses((status = 200, body = Page<Run>), (status = 400, body = ErrorBody)))]
async fn list_runs(
    State(state): State<AppState>,
    scope: Scope,
    Query(filter): Query<RunFilter>,
) -> Result<Json<Page<Run>>> {
    let page = PageParams {
        limit: filter.limit,
        cursor: filter.cursor,
    };
    let limit = page.limit()?;
    let pool = &state.db.pool;
    let plugin = filter.plugin_id.as_deref();
    let items = store::list_runs(pool, &scope.tenant.id, plugin, page.after(), limit + 1).await?;
    Ok(Json(Page::from_rows(items, limit, |r| &r.id)))
}

/// A failed run with the input it kept, for `portico plugin replay`: 404 when it kept none.
/// Kept inputs hold customers' data, so only staff who may change the tenant's installs read
/// them (403 for others, such as viewers).
#[utoipa::path(get, path = "/api/v1/tenants/{tenant}/plugin-runs/{run}/replay", tag = "plugins",
    params(("tenant" = String, Path, description = "Tenant id or slug"),
           ("run" = String, Path, description = "Run id")),
    responses((status = 200, body = Replay), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody)))]
async fn replay(
    State(state): State<AppState>,
    scope: Scope,
    Path((_, run)): Path<(String, String)>,
) -> Result<Json<Replay>> {
    if let Principal::Staff { user_id, .. } = &scope.caller.principal {
        let route = "/api/v1/tenants/{tenant}/plugins/{install}";
        if !state
            .authz
            .is_allowed(&scope.tenant.id, user_id, route, "PATCH")
            .await
        {
            return Err(Error::Forbidden(
                "kept inputs are for staff who may change the tenant's plugins",
            ));
        }
    }
    Ok(Json(runs::replay(&state, &scope.tenant.id, &run).await?))
}

/// The catalogue, for every signed-in caller; publishing is for platform administrators.
pub fn platform_routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(publish, catalogue))
        .routes(routes!(version))
        .layer(DefaultBodyLimit::max(MAX_PACKAGE_BYTES))
}

/// A tenant's installs, invocations and run records, behind the tenant guard.
pub fn tenant_routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_installs, install))
        .routes(routes!(get_install, change_install, uninstall))
        .routes(routes!(rollback))
        .routes(routes!(invoke))
        .routes(routes!(list_runs))
        .routes(routes!(replay))
}
