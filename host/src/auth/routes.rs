//! Staff accounts and API tokens of a tenant, the caller's own tokens, and password sign-in.

use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};

use super::{IssuedToken, Principal, StaffUser, StaffUserView, TokenRecord, TokenView};
use crate::AppState;
use crate::audit::{self, Change};
use crate::db::{self, now_ms};
use crate::error::{Error, Result};
use crate::http::extract::{Json, Path, Query};
use crate::invalidation::Invalidation;
use crate::policies::Scope;
use crate::tenants;
use crate::types::{Email, Page, PageParams, TenantId};

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateUser {
    #[schema(value_type = String)]
    pub email: Email,
    pub display_name: String,
    /// At least 12 characters. Without one, the user works with API tokens only.
    pub password: Option<String>,
    /// Built-in or custom roles to give right away.
    #[serde(default)]
    pub roles: Vec<String>,
}

#[utoipa::path(get, path = "/api/v1/tenants/{tenant}/users", tag = "staff",
    params(("tenant" = String, Path, description = "Tenant id or slug"), PageParams),
    responses((status = 200, body = Page<StaffUserView>)))]
async fn list_users(
    State(state): State<AppState>,
    scope: Scope,
    Query(page): Query<PageParams>,
) -> Result<Json<Page<StaffUserView>>> {
    let limit = page.limit()?;
    let rows: Vec<StaffUser> = sqlx::query_as(
        "SELECT id, email, display_name, disabled, created_at FROM staff_users
         WHERE tenant_id = $1 AND id > $2 ORDER BY id LIMIT $3",
    )
    .bind(&scope.tenant.id)
    .bind(page.after())
    .bind(limit + 1)
    .fetch_all(&state.db.pool)
    .await?;
    Ok(Json(
        Page::from_rows(rows, limit, |u| &u.id).map(StaffUserView::from),
    ))
}

#[utoipa::path(post, path = "/api/v1/tenants/{tenant}/users", tag = "staff",
    params(("tenant" = String, Path, description = "Tenant id or slug")),
    request_body = CreateUser,
    responses((status = 201, body = StaffUserView)))]
async fn create_user(
    State(state): State<AppState>,
    scope: Scope,
    Json(input): Json<CreateUser>,
) -> Result<(StatusCode, Json<StaffUserView>)> {
    let name = tenants::check_display_name(&input.display_name)?;
    let password_hash = match &input.password {
        Some(p) => Some(super::hash_new_password(p).await?),
        None => None,
    };
    for role in &input.roles {
        if role.is_empty() || role.len() > 40 {
            return Err(Error::invalid(
                "invalid_role",
                format!("{role:?} is not a valid role name"),
            ));
        }
    }
    let tenant = &scope.tenant.id;
    let mut tx = state.db.pool.begin().await?;
    let user = super::create_user(
        &mut tx,
        tenant,
        &input.email,
        &name,
        password_hash.as_deref(),
    )
    .await?;
    for role in &input.roles {
        sqlx::query(
            "INSERT INTO role_assignments (id, tenant_id, user_id, role, created_at) VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT DO NOTHING",
        )
        .bind(db::new_id())
        .bind(tenant)
        .bind(&user.id)
        .bind(role)
        .bind(now_ms())
        .execute(&mut *tx)
        .await?;
    }
    let change = Change {
        tenant: Some(tenant),
        action: "staff_user.create",
        target: &user.id,
        before: None,
        after: Some(
            json!({"email": user.email, "display_name": user.display_name, "roles": input.roles}),
        ),
    };
    audit::record(&mut tx, &scope.caller.actor(), change).await?;
    tx.commit().await?;
    state
        .invalidate(Invalidation::Policies(tenant.clone()))
        .await;
    Ok((StatusCode::CREATED, Json(user.into())))
}

#[utoipa::path(get, path = "/api/v1/tenants/{tenant}/users/{user}", tag = "staff",
    params(("tenant" = String, Path, description = "Tenant id or slug"), ("user" = String, Path)),
    responses((status = 200, body = StaffUserView)))]
async fn get_user(
    State(state): State<AppState>,
    scope: Scope,
    Path((_, user_id)): Path<(String, String)>,
) -> Result<Json<StaffUserView>> {
    Ok(Json(
        super::find_user(&state.db.pool, &scope.tenant.id, &user_id)
            .await?
            .into(),
    ))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateUser {
    pub display_name: Option<String>,
    /// A disabled user's tokens stop working at once.
    pub disabled: Option<bool>,
    pub password: Option<String>,
}

#[utoipa::path(patch, path = "/api/v1/tenants/{tenant}/users/{user}", tag = "staff",
    params(("tenant" = String, Path, description = "Tenant id or slug"), ("user" = String, Path)),
    request_body = UpdateUser,
    responses((status = 200, body = StaffUserView)))]
async fn update_user(
    State(state): State<AppState>,
    scope: Scope,
    Path((_, user_id)): Path<(String, String)>,
    Json(input): Json<UpdateUser>,
) -> Result<Json<StaffUserView>> {
    let tenant = &scope.tenant.id;
    let before = super::find_user(&state.db.pool, tenant, &user_id).await?;
    let display_name = match &input.display_name {
        Some(n) => tenants::check_display_name(n)?,
        None => before.display_name.clone(),
    };
    let disabled = input.disabled.map_or(before.disabled, i64::from);
    let password_hash = match &input.password {
        Some(p) => Some(super::hash_new_password(p).await?),
        None => None,
    };
    let mut tx = state.db.pool.begin().await?;
    sqlx::query(
        "UPDATE staff_users SET display_name = $3, disabled = $4, password_hash = COALESCE($5, password_hash), updated_at = $6
         WHERE tenant_id = $1 AND id = $2",
    )
    .bind(tenant)
    .bind(&user_id)
    .bind(&display_name)
    .bind(disabled)
    .bind(password_hash.as_deref())
    .bind(now_ms())
    .execute(&mut *tx)
    .await?;
    let after = StaffUser {
        display_name,
        disabled,
        ..before.clone()
    };
    let change = Change {
        tenant: Some(tenant),
        action: "staff_user.update",
        target: &user_id,
        before: Some(
            json!({"display_name": before.display_name, "disabled": before.disabled != 0}),
        ),
        after: Some(
            json!({"display_name": after.display_name, "disabled": after.disabled != 0, "password_changed": password_hash.is_some()}),
        ),
    };
    audit::record(&mut tx, &scope.caller.actor(), change).await?;
    tx.commit().await?;
    Ok(Json(after.into()))
}

#[utoipa::path(delete, path = "/api/v1/tenants/{tenant}/users/{user}", tag = "staff",
    params(("tenant" = String, Path, description = "Tenant id or slug"), ("user" = String, Path)),
    responses((status = 204)))]
async fn delete_user(
    State(state): State<AppState>,
    scope: Scope,
    Path((_, user_id)): Path<(String, String)>,
) -> Result<StatusCode> {
    let tenant = &scope.tenant.id;
    let before = super::find_user(&state.db.pool, tenant, &user_id).await?;
    let mut tx = state.db.pool.begin().await?;
    sqlx::query("DELETE FROM staff_users WHERE tenant_id = $1 AND id = $2")
        .bind(tenant)
        .bind(&user_id)
        .execute(&mut *tx)
        .await?;
    let change = Change {
        tenant: Some(tenant),
        action: "staff_user.delete",
        target: &user_id,
        before: Some(json!({"email": before.email, "display_name": before.display_name})),
        after: None,
    };
    audit::record(&mut tx, &scope.caller.actor(), change).await?;
    tx.commit().await?;
    state
        .invalidate(Invalidation::Policies(tenant.clone()))
        .await;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateToken {
    /// Whose token this is; defaults to the calling staff user.
    pub user_id: Option<String>,
    /// What the token is for, e.g. "dispatch app".
    pub name: String,
    /// Days until it expires; without it, it lasts until revoked.
    pub expires_in_days: Option<u32>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewToken {
    /// What the token is for, e.g. "dispatch app".
    pub name: String,
    /// Days until it expires; without it, it lasts until revoked.
    pub expires_in_days: Option<u32>,
}

async fn list_tokens_of(
    state: &AppState,
    tenant: &TenantId,
    user: Option<&str>,
    page: &PageParams,
) -> Result<Page<TokenView>> {
    let limit = page.limit()?;
    let rows: Vec<TokenRecord> = sqlx::query_as(
        "SELECT id, user_id, name, created_at, expires_at, revoked_at FROM api_tokens
         WHERE tenant_id = $1 AND (user_id = $2 OR $3 = 1) AND id > $4 ORDER BY id LIMIT $5",
    )
    .bind(tenant)
    .bind(user.unwrap_or_default())
    .bind(i64::from(user.is_none()))
    .bind(page.after())
    .bind(limit + 1)
    .fetch_all(&state.db.pool)
    .await?;
    Ok(Page::from_rows(rows, limit, |t| &t.id).map(TokenView::from))
}

async fn issue_for(
    state: &AppState,
    scope: &Scope,
    user_id: &str,
    input: &NewToken,
) -> Result<IssuedToken> {
    let tenant = &scope.tenant.id;
    let user = super::find_user(&state.db.pool, tenant, user_id).await?;
    if user.disabled != 0 {
        return Err(Error::invalid(
            "user_disabled",
            "tokens cannot be issued to a disabled user",
        ));
    }
    let mut tx = state.db.pool.begin().await?;
    let issued = super::issue_token(
        &mut tx,
        Some((tenant, &user.id)),
        &input.name,
        input.expires_in_days,
    )
    .await?;
    let change = Change {
        tenant: Some(tenant),
        action: "api_token.create",
        target: &issued.record.id,
        before: None,
        after: Some(
            json!({"user_id": user.id, "name": issued.record.name, "expires_at": issued.record.expires_at}),
        ),
    };
    audit::record(&mut tx, &scope.caller.actor(), change).await?;
    tx.commit().await?;
    Ok(issued)
}

async fn revoke(
    state: &AppState,
    scope: &Scope,
    token_id: &str,
    only_user: Option<&str>,
) -> Result<StatusCode> {
    let tenant = &scope.tenant.id;
    let mut tx = state.db.pool.begin().await?;
    let token: TokenRecord = sqlx::query_as(
        "SELECT id, user_id, name, created_at, expires_at, revoked_at FROM api_tokens WHERE tenant_id = $1 AND id = $2",
    )
    .bind(tenant)
    .bind(token_id)
    .fetch_optional(&mut *tx)
    .await?
    .filter(|t: &TokenRecord| only_user.is_none() || t.user_id.as_deref() == only_user)
    .ok_or(Error::NotFound("token"))?;
    if token.revoked_at.is_none() {
        sqlx::query("UPDATE api_tokens SET revoked_at = $3 WHERE tenant_id = $1 AND id = $2")
            .bind(tenant)
            .bind(token_id)
            .bind(now_ms())
            .execute(&mut *tx)
            .await?;
        let change = Change {
            tenant: Some(tenant),
            action: "api_token.revoke",
            target: token_id,
            before: Some(json!({"user_id": token.user_id, "name": token.name})),
            after: None,
        };
        audit::record(&mut tx, &scope.caller.actor(), change).await?;
    }
    tx.commit().await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(get, path = "/api/v1/tenants/{tenant}/tokens", tag = "staff",
    params(("tenant" = String, Path, description = "Tenant id or slug"), PageParams),
    responses((status = 200, body = Page<TokenView>)))]
async fn list_tokens(
    State(state): State<AppState>,
    scope: Scope,
    Query(page): Query<PageParams>,
) -> Result<Json<Page<TokenView>>> {
    Ok(Json(
        list_tokens_of(&state, &scope.tenant.id, None, &page).await?,
    ))
}

/// Issues a token for a staff user of this tenant. The secret is in the response only.
#[utoipa::path(post, path = "/api/v1/tenants/{tenant}/tokens", tag = "staff",
    params(("tenant" = String, Path, description = "Tenant id or slug")),
    request_body = CreateToken,
    responses((status = 201, body = IssuedToken)))]
async fn create_token(
    State(state): State<AppState>,
    scope: Scope,
    Json(input): Json<CreateToken>,
) -> Result<(StatusCode, Json<IssuedToken>)> {
    let user_id = match (&input.user_id, &scope.caller.principal) {
        (Some(id), _) => id.clone(),
        (None, Principal::Staff { user_id, .. }) => user_id.clone(),
        (None, Principal::Platform { .. }) => {
            return Err(Error::invalid(
                "user_required",
                "user_id is required when a platform token issues tokens",
            ));
        }
    };
    let token = NewToken {
        name: input.name,
        expires_in_days: input.expires_in_days,
    };
    let issued = issue_for(&state, &scope, &user_id, &token).await?;
    Ok((StatusCode::CREATED, Json(issued)))
}

#[utoipa::path(delete, path = "/api/v1/tenants/{tenant}/tokens/{token}", tag = "staff",
    params(("tenant" = String, Path, description = "Tenant id or slug"), ("token" = String, Path)),
    responses((status = 204)))]
async fn revoke_token(
    State(state): State<AppState>,
    scope: Scope,
    Path((_, token_id)): Path<(String, String)>,
) -> Result<StatusCode> {
    revoke(&state, &scope, &token_id, None).await
}

fn own_user_id(scope: &Scope) -> Result<&str> {
    match &scope.caller.principal {
        Principal::Staff { user_id, .. } => Ok(user_id),
        Principal::Platform { .. } => Err(Error::Forbidden(
            "platform tokens have no staff account here",
        )),
    }
}

/// The calling staff user.
#[utoipa::path(get, path = "/api/v1/tenants/{tenant}/me", tag = "staff",
    params(("tenant" = String, Path, description = "Tenant id or slug")),
    responses((status = 200, body = StaffUserView)))]
async fn me(State(state): State<AppState>, scope: Scope) -> Result<Json<StaffUserView>> {
    let user_id = own_user_id(&scope)?;
    Ok(Json(
        super::find_user(&state.db.pool, &scope.tenant.id, user_id)
            .await?
            .into(),
    ))
}

#[utoipa::path(get, path = "/api/v1/tenants/{tenant}/me/tokens", tag = "staff",
    params(("tenant" = String, Path, description = "Tenant id or slug"), PageParams),
    responses((status = 200, body = Page<TokenView>)))]
async fn list_my_tokens(
    State(state): State<AppState>,
    scope: Scope,
    Query(page): Query<PageParams>,
) -> Result<Json<Page<TokenView>>> {
    let user_id = own_user_id(&scope)?;
    Ok(Json(
        list_tokens_of(&state, &scope.tenant.id, Some(user_id), &page).await?,
    ))
}

#[utoipa::path(post, path = "/api/v1/tenants/{tenant}/me/tokens", tag = "staff",
    params(("tenant" = String, Path, description = "Tenant id or slug")),
    request_body = NewToken,
    responses((status = 201, body = IssuedToken)))]
async fn create_my_token(
    State(state): State<AppState>,
    scope: Scope,
    Json(input): Json<NewToken>,
) -> Result<(StatusCode, Json<IssuedToken>)> {
    let user_id = own_user_id(&scope)?.to_string();
    let issued = issue_for(&state, &scope, &user_id, &input).await?;
    Ok((StatusCode::CREATED, Json(issued)))
}

#[utoipa::path(delete, path = "/api/v1/tenants/{tenant}/me/tokens/{token}", tag = "staff",
    params(("tenant" = String, Path, description = "Tenant id or slug"), ("token" = String, Path)),
    responses((status = 204)))]
async fn revoke_my_token(
    State(state): State<AppState>,
    scope: Scope,
    Path((_, token_id)): Path<(String, String)>,
) -> Result<StatusCode> {
    let user_id = own_user_id(&scope)?.to_string();
    revoke(&state, &scope, &token_id, Some(&user_id)).await
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SignIn {
    /// Tenant id or slug.
    pub tenant: String,
    #[schema(value_type = String)]
    pub email: Email,
    pub password: String,
    /// What the token is for; defaults to "sign-in".
    pub name: Option<String>,
    /// Defaults to 30 days.
    pub expires_in_days: Option<u32>,
}

#[derive(Serialize, ToSchema)]
pub struct SignedIn {
    #[serde(flatten)]
    pub issued: IssuedToken,
    /// The tenant's id, for use in `/api/v1/tenants/{tenant}/…` paths.
    pub tenant_id: String,
}

#[derive(sqlx::FromRow)]
struct Credentials {
    id: String,
    password_hash: Option<String>,
    disabled: i64,
}

/// A hash of a random password, checked when no account matches, so that a wrong email costs as
/// much time as a wrong password and response times reveal nothing.
static DECOY_HASH: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    super::hash_password("decoy password that never matches").unwrap_or_default()
});

/// Exchanges a staff user's email and password for an API token.
#[utoipa::path(post, path = "/api/v1/auth/token", tag = "staff", request_body = SignIn,
    security(()),
    responses((status = 201, body = SignedIn), (status = 401, body = crate::error::ErrorBody)))]
async fn sign_in(
    State(state): State<AppState>,
    Json(input): Json<SignIn>,
) -> Result<(StatusCode, Json<SignedIn>)> {
    let tenant = tenants::find(&state.db.pool, &input.tenant).await.ok();
    let account: Option<Credentials> = match &tenant {
        Some(t) => {
            sqlx::query_as("SELECT id, password_hash, disabled FROM staff_users WHERE tenant_id = $1 AND email = $2")
                .bind(&t.id)
                .bind(&input.email)
                .fetch_optional(&state.db.pool)
                .await?
        }
        None => None,
    };
    let stored = account.as_ref().and_then(|a| a.password_hash.clone());
    let password = input.password.clone();
    let matches = tokio::task::spawn_blocking(move || {
        super::verify_password(&password, stored.as_deref().unwrap_or(&DECOY_HASH))
    })
    .await
    .map_err(|e| Error::Internal(e.into()))?;
    let (Some(tenant), Some(account)) = (tenant, account) else {
        return Err(Error::Unauthorized);
    };
    if !matches || account.disabled != 0 || account.password_hash.is_none() {
        return Err(Error::Unauthorized);
    }
    if tenant.is_suspended() {
        return Err(Error::TenantSuspended);
    }
    let name = input.name.unwrap_or_else(|| "sign-in".into());
    let mut tx = state.db.pool.begin().await?;
    let issued = super::issue_token(
        &mut tx,
        Some((&tenant.id, &account.id)),
        &name,
        Some(input.expires_in_days.unwrap_or(30)),
    )
    .await?;
    tx.commit().await?;
    Ok((
        StatusCode::CREATED,
        Json(SignedIn {
            issued,
            tenant_id: tenant.id.to_string(),
        }),
    ))
}

pub fn public_routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(sign_in))
}

pub fn tenant_routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_users, create_user))
        .routes(routes!(get_user, update_user, delete_user))
        .routes(routes!(list_tokens, create_token))
        .routes(routes!(revoke_token))
        .routes(routes!(me))
        .routes(routes!(list_my_tokens, create_my_token))
        .routes(routes!(revoke_my_token))
}
