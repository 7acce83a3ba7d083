//! Staff accounts and API tokens: each operation owns its transaction, locks what it reads
//! before writing, audits and emits.

use serde_json::json;

use super::model::{IssuedToken, MAX_TOKEN_DAYS, StaffUser, TokenRecord};
use super::{generate_token, store};

use crate::audit::{self, Change};
use crate::db::{self, now_ms};
use crate::error::{Error, Result};
use crate::events::{Bus, Event, Tx};
use crate::policies::Authz;
use crate::policies::service as roles;
use crate::policies::store::RoleAssignment;
use crate::types::{Caller, Email, Principal, TenantId};

/// A staff user to create; the password is hashed already (hashing is slow, so it happens before
/// the transaction starts).
pub struct NewUser {
    pub email: Email,
    pub display_name: String,
    pub password_hash: Option<String>,
    pub roles: Vec<String>,
}

/// Creates a staff user with their roles inside the caller's transaction (the tenants area uses
/// it for a tenant's first administrator).
pub async fn add_user_in(
    tx: &mut Tx,
    actor: &str,
    tenant: &TenantId,
    new: &NewUser,
) -> Result<StaffUser> {
    for role in &new.roles {
        roles::check_role_name(role)?;
    }
    let user = store::create_user(
        tx,
        tenant,
        &new.email,
        &new.display_name,
        new.password_hash.as_deref(),
    )
    .await?;
    let change = Change {
        tenant: Some(tenant),
        action: "staff_user.create",
        target: &user.id,
        before: None,
        after: Some(
            json!({"email": user.email, "display_name": user.display_name, "roles": new.roles}),
        ),
    };
    audit::record(tx, actor, change).await?;
    tx.emit(Some(tenant), &user.id, actor, Event::StaffUserCreated)
        .await?;
    for role in &new.roles {
        roles::assign_in(tx, actor, tenant, &user.id, role).await?;
    }
    Ok(user)
}

/// Another user's account may be changed, and tokens issued for it, only by a caller whose own
/// rights cover that user's (so no one takes over an account that can do more than they can).
async fn check_may_act_for(
    authz: &Authz,
    caller: &Caller,
    tenant: &TenantId,
    user_id: &str,
) -> Result<()> {
    let own = matches!(&caller.principal, Principal::Staff { user_id: me, .. } if me == user_id);
    if own {
        return Ok(());
    }
    let rights = authz.rights_of_user(tenant, user_id).await?;
    authz.check_within(caller, tenant, &rights).await
}

pub async fn create_user(
    events: &Bus,
    authz: &Authz,
    caller: &Caller,
    tenant: &TenantId,
    new: NewUser,
) -> Result<StaffUser> {
    let roles: Vec<&str> = new.roles.iter().map(String::as_str).collect();
    let rights = authz.rights_of_roles(tenant, &roles).await?;
    authz.check_within(caller, tenant, &rights).await?;
    let mut tx = events.begin().await?;
    let user = add_user_in(&mut tx, &caller.actor(), tenant, &new).await?;
    tx.commit().await?;
    Ok(user)
}

/// Gives one of the tenant's users a role; another tenant's user is simply not found.
pub async fn assign_role(
    events: &Bus,
    authz: &Authz,
    caller: &Caller,
    tenant: &TenantId,
    user_id: &str,
    role: &str,
) -> Result<RoleAssignment> {
    let rights = authz.rights_of_roles(tenant, &[role]).await?;
    authz.check_within(caller, tenant, &rights).await?;
    let mut tx = events.begin().await?;
    let for_update = tx.for_update();
    let user = store::lock_user(&mut tx, tenant, user_id, for_update).await?;
    let assignment = roles::assign_in(&mut tx, &caller.actor(), tenant, &user.id, role)
        .await?
        .ok_or_else(|| Error::conflict("already_assigned", "the user already has this role"))?;
    tx.commit().await?;
    Ok(assignment)
}

/// What may change on a staff user; `None` leaves it.
pub struct UserChanges {
    pub display_name: Option<String>,
    pub disabled: Option<bool>,
    pub password_hash: Option<String>,
}

pub async fn update_user(
    events: &Bus,
    authz: &Authz,
    caller: &Caller,
    tenant: &TenantId,
    user_id: &str,
    changes: UserChanges,
) -> Result<StaffUser> {
    check_may_act_for(authz, caller, tenant, user_id).await?;
    let actor = caller.actor();
    let mut tx = events.begin().await?;
    let for_update = tx.for_update();
    let before = store::lock_user(&mut tx, tenant, user_id, for_update).await?;
    store::update_user(
        &mut tx,
        tenant,
        user_id,
        changes.display_name.as_deref(),
        changes.disabled,
        changes.password_hash.as_deref(),
    )
    .await?;
    // A new password ends every session and token the old one may have handed out.
    let tokens_revoked = match changes.password_hash {
        Some(_) => store::revoke_user_tokens(&mut tx, tenant, user_id).await?,
        None => 0,
    };
    let after = StaffUser {
        display_name: changes
            .display_name
            .unwrap_or_else(|| before.display_name.clone()),
        disabled: changes.disabled.map_or(before.disabled, i64::from),
        ..before.clone()
    };
    let change = Change {
        tenant: Some(tenant),
        action: "staff_user.update",
        target: user_id,
        before: Some(
            json!({"display_name": before.display_name, "disabled": before.disabled != 0}),
        ),
        after: Some(
            json!({"display_name": after.display_name, "disabled": after.disabled != 0, "password_changed": changes.password_hash.is_some(), "tokens_revoked": tokens_revoked}),
        ),
    };
    audit::record(&mut tx, &actor, change).await?;
    tx.emit(Some(tenant), user_id, &actor, Event::StaffUserChanged)
        .await?;
    tx.commit().await?;
    Ok(after)
}

/// Deletes a staff user; their role assignments and tokens go with them.
pub async fn delete_user(
    events: &Bus,
    authz: &Authz,
    caller: &Caller,
    tenant: &TenantId,
    user_id: &str,
) -> Result<()> {
    check_may_act_for(authz, caller, tenant, user_id).await?;
    let actor = caller.actor();
    let mut tx = events.begin().await?;
    let before = store::delete_user(&mut tx, tenant, user_id).await?;
    let change = Change {
        tenant: Some(tenant),
        action: "staff_user.delete",
        target: user_id,
        before: Some(json!({"email": before.email, "display_name": before.display_name})),
        after: None,
    };
    audit::record(&mut tx, &actor, change).await?;
    tx.emit(Some(tenant), user_id, &actor, Event::StaffUserDeleted)
        .await?;
    tx.commit().await
}

/// Issues a token for a staff user (`owner = Some((tenant, user))`) or for the platform (`None`)
/// in the caller's transaction. The CLI, the demo and sign-in use it.
pub async fn issue_token(
    conn: &mut sqlx::AnyConnection,
    owner: Option<(&TenantId, &str)>,
    name: &str,
    expires_in_days: Option<u32>,
) -> Result<IssuedToken> {
    if name.trim().is_empty() || name.len() > 100 {
        return Err(Error::invalid(
            "invalid_name",
            "a token name is 1 to 100 characters",
        ));
    }
    if let Some(days) = expires_in_days
        && !(1..=MAX_TOKEN_DAYS).contains(&days)
    {
        return Err(Error::invalid(
            "invalid_expiry",
            format!("expires_in_days must be between 1 and {MAX_TOKEN_DAYS}"),
        ));
    }
    let (token, hash) = generate_token();
    let now = now_ms();
    let record = TokenRecord {
        id: db::new_id(),
        user_id: owner.map(|(_, user)| user.to_string()),
        name: name.trim().to_string(),
        created_at: now,
        expires_at: expires_in_days.map(|d| now + i64::from(d) * 86_400_000),
        revoked_at: None,
    };
    store::insert_token(conn, owner.map(|(tenant, _)| tenant), &record, &hash).await?;
    Ok(IssuedToken {
        token,
        record: record.into(),
    })
}

/// How long a token issued through the API lasts when the request does not say.
pub const DEFAULT_TOKEN_DAYS: u32 = 90;

/// Issues a token for one of the tenant's users (lasting [`DEFAULT_TOKEN_DAYS`] unless told);
/// the secret is in the answer only.
pub async fn issue_for(
    events: &Bus,
    authz: &Authz,
    caller: &Caller,
    tenant: &TenantId,
    user_id: &str,
    name: &str,
    expires_in_days: Option<u32>,
) -> Result<IssuedToken> {
    check_may_act_for(authz, caller, tenant, user_id).await?;
    let actor = caller.actor();
    let mut tx = events.begin().await?;
    let for_update = tx.for_update();
    let user = store::lock_user(&mut tx, tenant, user_id, for_update).await?;
    if user.disabled != 0 {
        return Err(Error::invalid(
            "user_disabled",
            "tokens cannot be issued to a disabled user",
        ));
    }
    let days = expires_in_days.unwrap_or(DEFAULT_TOKEN_DAYS);
    let issued = issue_token(&mut tx, Some((tenant, &user.id)), name, Some(days)).await?;
    let change = Change {
        tenant: Some(tenant),
        action: "api_token.create",
        target: &issued.record.id,
        before: None,
        after: Some(
            json!({"user_id": user.id, "name": issued.record.name, "expires_at": issued.record.expires_at}),
        ),
    };
    audit::record(&mut tx, &actor, change).await?;
    tx.emit(Some(tenant), &issued.record.id, &actor, Event::TokenIssued)
        .await?;
    tx.commit().await?;
    Ok(issued)
}

/// Revokes a token of the tenant (of `only_user` when given); revoking twice is fine.
pub async fn revoke(
    events: &Bus,
    authz: &Authz,
    caller: &Caller,
    tenant: &TenantId,
    token_id: &str,
    only_user: Option<&str>,
) -> Result<()> {
    let actor = caller.actor();
    let mut tx = events.begin().await?;
    let for_update = tx.for_update();
    let token = store::lock_token(&mut tx, tenant, token_id, for_update)
        .await?
        .filter(|t| only_user.is_none() || t.user_id.as_deref() == only_user)
        .ok_or(Error::NotFound("token"))?;
    if let Some(owner) = &token.user_id {
        check_may_act_for(authz, caller, tenant, owner).await?;
    }
    if token.revoked_at.is_none() {
        store::revoke_token(&mut tx, tenant, token_id).await?;
        let change = Change {
            tenant: Some(tenant),
            action: "api_token.revoke",
            target: token_id,
            before: Some(json!({"user_id": token.user_id, "name": token.name})),
            after: None,
        };
        audit::record(&mut tx, &actor, change).await?;
        tx.emit(Some(tenant), token_id, &actor, Event::TokenRevoked)
            .await?;
    }
    tx.commit().await
}
