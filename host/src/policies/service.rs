//! Role assignments and custom policies: one rule for role names, one writer for each table, an
//! audit entry and a `RolesChanged` event (which rebuilds the tenant's enforcer on every replica)
//! with each change.

use serde_json::json;

use super::store::{self, NewPolicy, Policy, RoleAssignment};
use super::{TENANT_ROUTES, is_built_in_role};

use crate::audit::{self, Change};
use crate::db;
use crate::error::{Error, Result};
use crate::events::{Bus, Event, Tx};
use crate::types::{Caller, TenantId};

const METHODS: &[&str] = &["GET", "POST", "PUT", "PATCH", "DELETE", "*"];

/// The one rule for role names, wherever a role is given.
pub fn check_role_name(role: &str) -> Result<()> {
    let ok = !role.is_empty()
        && role.len() <= 40
        && role
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if ok {
        Ok(())
    } else {
        Err(Error::invalid(
            "invalid_role",
            format!("{role:?} is not a role name: 1 to 40 lower-case letters, digits or hyphens"),
        ))
    }
}

/// Gives a user a role inside the caller's transaction. The caller vouches that the user is the
/// tenant's (the `auth` area, which owns staff users, calls this). `None`: they had it already.
pub async fn assign_in(
    tx: &mut Tx,
    actor: &str,
    tenant: &TenantId,
    user_id: &str,
    role: &str,
) -> Result<Option<RoleAssignment>> {
    check_role_name(role)?;
    let assignment = store::insert_assignment(tx, tenant, user_id, role).await?;
    if let Some(assignment) = &assignment {
        let change = Change {
            tenant: Some(tenant),
            action: "role_assignment.create",
            target: &assignment.id,
            before: None,
            after: Some(json!({"user_id": assignment.user_id, "role": assignment.role})),
        };
        audit::record(tx, actor, change).await?;
        tx.emit(Some(tenant), &assignment.id, actor, Event::RolesChanged)
            .await?;
    }
    Ok(assignment)
}

/// Takes a role from a user; only a caller whose own rights cover the role's may (so that no one
/// strips an administrator of what they cannot grant themselves).
pub async fn unassign(
    events: &Bus,
    authz: &super::Authz,
    caller: &Caller,
    tenant: &TenantId,
    assignment_id: &str,
) -> Result<()> {
    let actor = caller.actor();
    let mut tx = events.begin().await?;
    let existing = store::delete_assignment(&mut tx, tenant, assignment_id).await?;
    let rights = authz.rights_of_roles(tenant, &[&existing.role]).await?;
    authz.check_within(caller, tenant, &rights).await?;
    let change = Change {
        tenant: Some(tenant),
        action: "role_assignment.delete",
        target: &existing.id,
        before: Some(json!({"user_id": existing.user_id, "role": existing.role})),
        after: None,
    };
    audit::record(&mut tx, &actor, change).await?;
    tx.emit(Some(tenant), &existing.id, &actor, Event::RolesChanged)
        .await?;
    tx.commit().await
}

pub async fn add_policy(
    events: &Bus,
    authz: &super::Authz,
    caller: &Caller,
    tenant: &TenantId,
    input: NewPolicy,
) -> Result<Policy> {
    check_role_name(&input.role)?;
    if is_built_in_role(&input.role) {
        return Err(Error::invalid(
            "built_in_role",
            "built-in roles cannot be changed; define a role of your own",
        ));
    }
    let route_characters = |c: char| c.is_ascii_alphanumeric() || "/{}_*.-".contains(c);
    if !input.object.starts_with(TENANT_ROUTES)
        || input.object.len() > 200
        || !input.object.chars().all(route_characters)
    {
        return Err(Error::invalid(
            "invalid_object",
            format!("a policy object is a route template starting with {TENANT_ROUTES}"),
        ));
    }
    let action = input.action.to_ascii_uppercase();
    if !METHODS.contains(&action.as_str()) {
        return Err(Error::invalid(
            "invalid_action",
            "action must be GET, POST, PUT, PATCH, DELETE or *",
        ));
    }
    let granted = vec![(input.object.clone(), action.clone())];
    authz.check_within(caller, tenant, &granted).await?;
    let policy = Policy {
        id: db::new_id(),
        role: input.role,
        object: input.object,
        action,
    };
    let actor = caller.actor();
    let mut tx = events.begin().await?;
    store::insert_policy(&mut tx, tenant, &policy).await?;
    let change = Change {
        tenant: Some(tenant),
        action: "policy.create",
        target: &policy.id,
        before: None,
        after: Some(json!({"role": policy.role, "object": policy.object, "action": policy.action})),
    };
    audit::record(&mut tx, &actor, change).await?;
    tx.emit(Some(tenant), &policy.id, &actor, Event::RolesChanged)
        .await?;
    tx.commit().await?;
    Ok(policy)
}

/// Removes a custom policy; only a caller whose own rights cover it may.
pub async fn remove_policy(
    events: &Bus,
    authz: &super::Authz,
    caller: &Caller,
    tenant: &TenantId,
    policy_id: &str,
) -> Result<()> {
    let actor = caller.actor();
    let mut tx = events.begin().await?;
    let existing = store::delete_policy(&mut tx, tenant, policy_id).await?;
    let removed = vec![(existing.object.clone(), existing.action.clone())];
    authz.check_within(caller, tenant, &removed).await?;
    let change = Change {
        tenant: Some(tenant),
        action: "policy.delete",
        target: &existing.id,
        before: Some(
            json!({"role": existing.role, "object": existing.object, "action": existing.action}),
        ),
        after: None,
    };
    audit::record(&mut tx, &actor, change).await?;
    tx.emit(Some(tenant), &existing.id, &actor, Event::RolesChanged)
        .await?;
    tx.commit().await
}
