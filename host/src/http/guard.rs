//! Who is calling and in which tenant: the bearer token resolved to a [`Caller`], and for
//! tenant routes the [`Scope`] the guard builds after asking the tenant's enforcer.

use axum::extract::{FromRequestParts, MatchedPath, RawPathParams, Request, State};
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use axum::middleware::Next;
use axum::response::Response;

use crate::AppState;
use crate::error::{Error, Result};
use crate::tenants::{self, Tenant};
use crate::types::{Caller, Principal};

impl FromRequestParts<AppState> for Caller {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self> {
        if let Some(caller) = parts.extensions.get::<Caller>() {
            return Ok(caller.clone());
        }
        let header = parts
            .headers
            .get(AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        let token = header
            .strip_prefix("Bearer ")
            .or_else(|| header.strip_prefix("bearer "))
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .ok_or(Error::Unauthorized)?;
        let caller = crate::auth::authenticate(&state.db.pool, token).await?;
        parts.extensions.insert(caller.clone());
        Ok(caller)
    }
}

/// The tenant a request acts in, and who is acting. Only the [`guard`] creates it.
#[derive(Debug, Clone)]
pub struct Scope {
    pub tenant: Tenant,
    pub caller: Caller,
}

impl FromRequestParts<AppState> for Scope {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, _: &AppState) -> Result<Self> {
        parts.extensions.get::<Scope>().cloned().ok_or_else(|| {
            Error::Internal(anyhow::anyhow!(
                "tenant route registered without the tenant guard"
            ))
        })
    }
}

/// Guards every tenant-scoped route: authenticates, resolves `{tenant}`, refuses other tenants'
/// staff and suspended tenants, asks the tenant's enforcer about the matched route template, and
/// runs the route within the tenant (see [`crate::db::within_tenant`]).
pub async fn guard(
    State(state): State<AppState>,
    matched: MatchedPath,
    params: RawPathParams,
    caller: Caller,
    mut request: Request,
    next: Next,
) -> Result<Response> {
    let ident = params
        .iter()
        .find_map(|(name, value)| (name == "tenant").then_some(value))
        .ok_or_else(|| {
            Error::Internal(anyhow::anyhow!(
                "tenant route without a {{tenant}} parameter"
            ))
        })?;
    let tenant = match &caller.principal {
        Principal::Platform { .. } => tenants::store::find(&state.db.pool, ident).await?,
        Principal::Staff {
            tenant_id, user_id, ..
        } => {
            let tenant = tenants::store::find(&state.db.pool, tenant_id.as_str()).await?;
            // Staff of another tenant learn nothing, not even whether the tenant exists.
            if !tenant.is_named_by(ident) {
                return Err(Error::Forbidden("this token belongs to another tenant"));
            }
            if tenant.is_suspended() {
                return Err(Error::TenantSuspended);
            }
            let action = request.method().as_str();
            if !state
                .authz
                .is_allowed(&tenant.id, user_id, matched.as_str(), action)
                .await
            {
                return Err(Error::Forbidden("your roles do not allow this"));
            }
            tenant
        }
    };
    let wall = tenant.id.clone();
    request.extensions_mut().insert(Scope { tenant, caller });
    // What the route does, it does in the tenant's name: the database's wall holds it there.
    Ok(crate::db::within_tenant(&wall, next.run(request)).await)
}
