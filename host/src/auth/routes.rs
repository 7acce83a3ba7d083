//! Staff accounts of a tenant, their roles and API tokens, and the caller's own tokens.

use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};

use super::model::{IssuedToken, StaffUserView, TokenView};
use super::service::{self, NewUser, UserChanges};
use super::{hash_new_password, store};
use crate::AppState;
use crate::error::{Error, Result};
use crate::http::extract::{Json, Path, Query};
use crate::http::guard::Scope;
use crate::policies::{self as roles, store::RoleAssignment};
use crate::types::{self, Email, Page, PageParams, Principal};

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateUser {
    #[schema(value_type = String, format = Email)]
    pub email: Email,
    #[schema(min_length = 1, max_length = 200, pattern = "\\S")]
    pub display_name: String,
    /// At least 12 characters. Without one, the user works with API tokens only.
    #[schema(min_length = 12)]
    pub password: Option<String>,
    /// Built-in or custom roles to give right away (lower-case letters, digits and hyphens).
    #[serde(default)]
    #[schema(value_type = Vec<crate::types::RoleName>)]
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
    let rows = store::list_users(&state.db.pool, &scope.tenant.id, page.after(), limit + 1).await?;
    Ok(Json(
        Page::from_rows(rows, limit, |u| &u.id).map(StaffUserView::from),
    ))
}

#[utoipa::path(post, path = "/api/v1/tenants/{tenant}/users", tag = "staff",
    params(("tenant" = String, Path, description = "Tenant id or slug")),
    request_body = CreateUser,
    responses((status = 201, body = StaffUserView), (status = 409, body = crate::error::ErrorBody),
        (status = 422, body = crate::error::ErrorBody)))]
async fn create_user(
    State(state): State<AppState>,
    scope: Scope,
    Json(input): Json<CreateUser>,
) -> Result<(StatusCode, Json<StaffUserView>)> {
    let new = NewUser {
        display_name: types::display_name(&input.display_name)?,
        password_hash: match &input.password {
            Some(p) => Some(hash_new_password(p).await?),
            None => None,
        },
        email: input.email,
        roles: input.roles,
    };
    let user = service::create_user(
        &state.events,
        &state.authz,
        &scope.caller,
        &scope.tenant.id,
        new,
    )
    .await?;
    Ok((StatusCode::CREATED, Json(user.into())))
}

#[utoipa::path(get, path = "/api/v1/tenants/{tenant}/users/{user}", tag = "staff",
    params(("tenant" = String, Path, description = "Tenant id or slug"), ("user" = String, Path)),
    responses((status = 200, body = StaffUserView), (status = 404, body = crate::error::ErrorBody)))]
async fn get_user(
    State(state): State<AppState>,
    scope: Scope,
    Path((_, user_id)): Path<(String, String)>,
) -> Result<Json<StaffUserView>> {
    Ok(Json(
        store::find_user(&state.db.pool, &scope.tenant.id, &user_id)
            .await?
            .into(),
    ))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateUser {
    #[schema(min_length = 1, max_length = 200, pattern = "\\S")]
    pub display_name: Option<String>,
    /// A disabled user's tokens stop working at once.
    pub disabled: Option<bool>,
    /// A new password (at least 12 characters) revokes all of the user's tokens.
    #[schema(min_length = 12)]
    pub password: Option<String>,
}

#[utoipa::path(patch, path = "/api/v1/tenants/{tenant}/users/{user}", tag = "staff",
    params(("tenant" = String, Path, description = "Tenant id or slug"), ("user" = String, Path)),
    request_body = UpdateUser,
    responses((status = 200, body = StaffUserView), (status = 404, body = crate::error::ErrorBody),
        (status = 422, body = crate::error::ErrorBody)))]
async fn update_user(
    State(state): State<AppState>,
    scope: Scope,
    Path((_, user_id)): Path<(String, String)>,
    Json(input): Json<UpdateUser>,
) -> Result<Json<StaffUserView>> {
    let changes = UserChanges {
        display_name: input
            .display_name
            .as_deref()
            .map(types::display_name)
            .transpose()?,
        disabled: input.disabled,
        password_hash: match &input.password {
            Some(p) => Some(hash_new_password(p).await?),
            None => None,
        },
    };
    let user = service::update_user(
        &state.events,
        &state.authz,
        &scope.caller,
        &scope.tenant.id,
        &user_id,
        changes,
    )
    .await?;
    Ok(Json(user.into()))
}

#[utoipa::path(delete, path = "/api/v1/tenants/{tenant}/users/{user}", tag = "staff",
    params(("tenant" = String, Path, description = "Tenant id or slug"), ("user" = String, Path)),
    responses((status = 204), (status = 404, body = crate::error::ErrorBody)))]
async fn delete_user(
    State(state): State<AppState>,
    scope: Scope,
    Path((_, user_id)): Path<(String, String)>,
) -> Result<StatusCode> {
    service::delete_user(
        &state.events,
        &state.authz,
        &scope.caller,
        &scope.tenant.id,
        &user_id,
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewRoleAssignment {
    pub user_id: String,
    #[schema(value_type = crate::types::RoleName)]
    pub role: String,
}

/// Gives a staff user a role in this tenant. Takes effect on the next request.
#[utoipa::path(post, path = "/api/v1/tenants/{tenant}/role-assignments", tag = "roles",
    params(("tenant" = String, Path, description = "Tenant id or slug")),
    request_body = NewRoleAssignment,
    responses((status = 201, body = RoleAssignment), (status = 404, body = crate::error::ErrorBody),
        (status = 409, body = crate::error::ErrorBody), (status = 422, body = crate::error::ErrorBody)))]
async fn create_assignment(
    State(state): State<AppState>,
    scope: Scope,
    Json(input): Json<NewRoleAssignment>,
) -> Result<(StatusCode, Json<RoleAssignment>)> {
    let assignment = service::assign_role(
        &state.events,
        &state.authz,
        &scope.caller,
        &scope.tenant.id,
        &input.user_id,
        &input.role,
    )
    .await?;
    Ok((StatusCode::CREATED, Json(assignment)))
}

#[utoipa::path(get, path = "/api/v1/tenants/{tenant}/role-assignments", tag = "roles",
    params(("tenant" = String, Path, description = "Tenant id or slug"), PageParams),
    responses((status = 200, body = Page<RoleAssignment>)))]
async fn list_assignments(
    State(state): State<AppState>,
    scope: Scope,
    Query(page): Query<PageParams>,
) -> Result<Json<Page<RoleAssignment>>> {
    let limit = page.limit()?;
    let rows =
        roles::store::list_assignments(&state.db.pool, &scope.tenant.id, page.after(), limit + 1)
            .await?;
    Ok(Json(Page::from_rows(rows, limit, |r| &r.id)))
}

#[utoipa::path(delete, path = "/api/v1/tenants/{tenant}/role-assignments/{assignment}", tag = "roles",
    params(("tenant" = String, Path, description = "Tenant id or slug"), ("assignment" = String, Path)),
    responses((status = 204), (status = 404, body = crate::error::ErrorBody)))]
async fn delete_assignment(
    State(state): State<AppState>,
    scope: Scope,
    Path((_, assignment_id)): Path<(String, String)>,
) -> Result<StatusCode> {
    roles::service::unassign(
        &state.events,
        &state.authz,
        &scope.caller,
        &scope.tenant.id,
        &assignment_id,
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateToken {
    /// Whose token this is; defaults to the calling staff user.
    pub user_id: Option<String>,
    /// What the token is for, e.g. "dispatch app".
    #[schema(min_length = 1, max_length = 100, pattern = "\\S")]
    pub name: String,
    /// Days until it expires, 1 to 3,650; defaults to 90.
    #[schema(minimum = 1, maximum = 3650)]
    pub expires_in_days: Option<u32>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewToken {
    /// What the token is for, e.g. "dispatch app".
    #[schema(min_length = 1, max_length = 100, pattern = "\\S")]
    pub name: String,
    /// Days until it expires, 1 to 3,650; defaults to 90.
    #[schema(minimum = 1, maximum = 3650)]
    pub expires_in_days: Option<u32>,
}

async fn list_tokens_of(
    state: &AppState,
    scope: &Scope,
    user: Option<&str>,
    page: &PageParams,
) -> Result<Page<TokenView>> {
    let limit = page.limit()?;
    let rows = store::list_tokens(
        &state.db.pool,
        &scope.tenant.id,
        user,
        page.after(),
        limit + 1,
    )
    .await?;
    Ok(Page::from_rows(rows, limit, |t| &t.id).map(TokenView::from))
}

async fn issue_for(
    state: &AppState,
    scope: &Scope,
    user_id: &str,
    input: &NewToken,
) -> Result<IssuedToken> {
    service::issue_for(
        &state.events,
        &state.authz,
        &scope.caller,
        &scope.tenant.id,
        user_id,
        &input.name,
        input.expires_in_days,
    )
    .await
}

#[utoipa::path(get, path = "/api/v1/tenants/{tenant}/tokens", tag = "staff",
    params(("tenant" = String, Path, description = "Tenant id or slug"), PageParams),
    responses((status = 200, body = Page<TokenView>)))]
async fn list_tokens(
    State(state): State<AppState>,
    scope: Scope,
    Query(page): Query<PageParams>,
) -> Result<Json<Page<TokenView>>> {
    Ok(Json(list_tokens_of(&state, &scope, None, &page).await?))
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
    service::revoke(
        &state.events,
        &state.authz,
        &scope.caller,
        &scope.tenant.id,
        &token_id,
        None,
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
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
        store::find_user(&state.db.pool, &scope.tenant.id, user_id)
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
        list_tokens_of(&state, &scope, Some(user_id), &page).await?,
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
    service::revoke(
        &state.events,
        &state.authz,
        &scope.caller,
        &scope.tenant.id,
        &token_id,
        Some(&user_id),
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

pub fn tenant_routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_users, create_user))
        .routes(routes!(get_user, update_user, delete_user))
        .routes(routes!(list_assignments, create_assignment))
        .routes(routes!(delete_assignment))
        .routes(routes!(list_tokens, create_token))
        .routes(routes!(revoke_token))
        .routes(routes!(me))
        .routes(routes!(list_my_tokens, create_my_token))
        .routes(routes!(revoke_my_token))
}
