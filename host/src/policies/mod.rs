//! Role policies with Casbin (RBAC with domains; the domain is the tenant).
//!
//! casbin-rs walks every rule on each decision, so one enforcer holding every tenant's rules
//! gets slower as tenants are added. Each tenant therefore gets its own enforcer, holding the
//! built-in role definitions and that tenant's own assignments and custom policies, kept in a
//! bounded cache and rebuilt after any change to them.

pub mod routes;
pub mod service;
pub mod store;

use std::sync::Arc;

use casbin::{CoreApi, DefaultModel, Enforcer, MemoryAdapter, MgmtApi};
use moka::future::Cache;

use crate::db::Pool;
use crate::error::{Error, Result};
use crate::events::{BoxFuture, Event, Recorded, Subscriber};
use crate::types::TenantId;
use crate::types::{Caller, Principal};

/// Subject, domain (tenant id), object (the matched route template, never the raw path) and
/// action (the HTTP method). Roles are granted per domain, and the matcher demands that the
/// policy's domain equals the request's.
pub const MODEL: &str = r#"
[request_definition]
r = sub, dom, obj, act

[policy_definition]
p = sub, dom, obj, act

[role_definition]
g = _, _, _

[policy_effect]
e = some(where (p.eft == allow))

[matchers]
m = g(r.sub, p.sub, r.dom) && r.dom == p.dom && keyMatch(r.obj, p.obj) && (r.act == p.act || p.act == "*")
"#;

/// The prefix of every tenant-scoped route template; custom policies may only name these.
pub const TENANT_ROUTES: &str = "/api/v1/tenants/{tenant}";

/// A role's permission: a route template (a trailing `*` matches any continuation) and an HTTP
/// method (`*` for any).
#[derive(Debug, Clone, Copy)]
pub struct Permission {
    pub object: &'static str,
    pub action: &'static str,
}

const fn allow(object: &'static str, action: &'static str) -> Permission {
    Permission { object, action }
}

/// The built-in roles every tenant has.
pub const BUILT_IN_ROLES: &[(&str, &str, &[Permission])] = &[
    (
        "tenant-admin",
        "Everything inside the tenant: staff, tokens, domains, roles, policies, audit log.",
        &[
            allow("/api/v1/tenants/{tenant}", "*"),
            allow("/api/v1/tenants/{tenant}/*", "*"),
        ],
    ),
    (
        "dispatcher",
        "Creates and advances tickets, assigns technicians, books appointments; sees projects, fields, staff and booking rules.",
        &[
            allow("/api/v1/tenants/{tenant}", "GET"),
            allow("/api/v1/tenants/{tenant}/users", "GET"),
            allow("/api/v1/tenants/{tenant}/users/{user}", "GET"),
            allow("/api/v1/tenants/{tenant}/me*", "*"),
            allow("/api/v1/tenants/{tenant}/tickets*", "*"),
            allow("/api/v1/tenants/{tenant}/projects", "GET"),
            allow("/api/v1/tenants/{tenant}/custom-fields", "GET"),
            allow("/api/v1/tenants/{tenant}/booking-rules*", "GET"),
            allow("/api/v1/tenants/{tenant}/booking/preview", "POST"),
        ],
    ),
    (
        "technician",
        "Sees tickets, moves them along and reports position; manages their own tokens.",
        &[
            allow("/api/v1/tenants/{tenant}", "GET"),
            allow("/api/v1/tenants/{tenant}/me*", "*"),
            allow("/api/v1/tenants/{tenant}/tickets", "GET"),
            allow("/api/v1/tenants/{tenant}/tickets/{ticket}", "GET"),
            allow("/api/v1/tenants/{tenant}/tickets/{ticket}/status", "POST"),
            allow("/api/v1/tenants/{tenant}/tickets/{ticket}/position", "POST"),
        ],
    ),
    (
        "viewer",
        "Reads everything inside the tenant and changes nothing but their own tokens.",
        &[
            allow("/api/v1/tenants/{tenant}", "GET"),
            allow("/api/v1/tenants/{tenant}/*", "GET"),
            allow("/api/v1/tenants/{tenant}/me*", "*"),
        ],
    ),
];

/// Users and roles are different kinds of subject: a role named like a user's id grants that
/// user nothing.
fn user_subject(user_id: &str) -> String {
    format!("user:{user_id}")
}

fn role_subject(role: &str) -> String {
    format!("role:{role}")
}

pub fn is_built_in_role(role: &str) -> bool {
    BUILT_IN_ROLES.iter().any(|(name, _, _)| *name == role)
}

/// A tenant's own rules as stored: who has which role, and extra permissions of roles.
#[derive(Debug, Default, Clone)]
pub struct TenantRules {
    /// `(user id, role)`
    pub assignments: Vec<(String, String)>,
    /// `(role, object, action)`
    pub policies: Vec<(String, String, String)>,
}

/// Builds one tenant's enforcer from its rules plus the built-in roles.
pub async fn build_enforcer(tenant: &str, rules: &TenantRules) -> casbin::Result<Enforcer> {
    let model = DefaultModel::from_str(MODEL).await?;
    let mut enforcer = Enforcer::new(model, MemoryAdapter::default()).await?;
    let mut policies: Vec<Vec<String>> = BUILT_IN_ROLES
        .iter()
        .flat_map(|(role, _, perms)| {
            perms.iter().map(move |p| {
                vec![
                    role_subject(role),
                    tenant.to_string(),
                    p.object.into(),
                    p.action.into(),
                ]
            })
        })
        .collect();
    policies.extend(rules.policies.iter().map(|(role, obj, act)| {
        vec![
            role_subject(role),
            tenant.to_string(),
            obj.clone(),
            act.clone(),
        ]
    }));
    enforcer.add_policies(policies).await?;
    let groupings: Vec<Vec<String>> = rules
        .assignments
        .iter()
        .map(|(user, role)| vec![user_subject(user), role_subject(role), tenant.to_string()])
        .collect();
    if !groupings.is_empty() {
        enforcer.add_grouping_policies(groupings).await?;
    }
    Ok(enforcer)
}

/// What a role or user may do: (route template, method) pairs, `*` as in [`Permission`].
pub type Rights = Vec<(String, String)>;

fn rights(rules: &TenantRules, roles: &[&str]) -> Rights {
    let built_in = BUILT_IN_ROLES
        .iter()
        .filter(|(name, _, _)| roles.contains(name))
        .flat_map(|(_, _, perms)| perms.iter().map(|p| (p.object.into(), p.action.into())));
    let custom = rules
        .policies
        .iter()
        .filter(|(role, _, _)| roles.contains(&role.as_str()))
        .map(|(_, object, action)| (object.clone(), action.clone()));
    built_in.chain(custom).collect()
}

/// Decides whether a staff user may perform an action, one cached enforcer per tenant.
#[derive(Clone)]
pub struct Authz {
    enforcers: Cache<TenantId, Arc<Enforcer>>,
    pool: Pool,
}

impl Authz {
    /// Enforcers are rebuilt after a change announced on any replica, and at the latest `ttl`
    /// after they were built, so that a lost announcement leaves a replica stale for no longer.
    pub fn new(pool: Pool, capacity: u64, ttl: std::time::Duration) -> Self {
        Self {
            enforcers: Cache::builder()
                .max_capacity(capacity)
                .time_to_live(ttl)
                .build(),
            pool,
        }
    }

    /// Any failure (loading rules, building the enforcer, evaluating) denies.
    pub async fn is_allowed(
        &self,
        tenant: &TenantId,
        user_id: &str,
        object: &str,
        action: &str,
    ) -> bool {
        let enforcer = self
            .enforcers
            .try_get_with(tenant.clone(), async {
                let rules = store::rules(&self.pool, tenant).await?;
                let enforcer = build_enforcer(tenant.as_str(), &rules).await?;
                Ok::<_, anyhow::Error>(Arc::new(enforcer))
            })
            .await;
        match enforcer {
            Ok(enforcer) => enforcer
                .enforce((user_subject(user_id), tenant.as_str(), object, action))
                .unwrap_or_else(|e| {
                    tracing::error!(error = %e, "policy evaluation failed; denying");
                    false
                }),
            Err(e) => {
                tracing::error!(error = ?e, tenant = %tenant, "loading policies failed; denying");
                false
            }
        }
    }

    /// The rights `roles` give in a tenant: the built-in roles' permissions and the tenant's
    /// policies for them, as (route template, method) pairs.
    pub async fn rights_of_roles(&self, tenant: &TenantId, roles: &[&str]) -> Result<Rights> {
        let rules = store::rules(&self.pool, tenant).await?;
        Ok(rights(&rules, roles))
    }

    /// The rights a user of the tenant holds through their roles.
    pub async fn rights_of_user(&self, tenant: &TenantId, user_id: &str) -> Result<Rights> {
        let rules = store::rules(&self.pool, tenant).await?;
        let roles: Vec<&str> = rules
            .assignments
            .iter()
            .filter(|(user, _)| user == user_id)
            .map(|(_, role)| role.as_str())
            .collect();
        Ok(rights(&rules, &roles))
    }

    /// Refuses a grant beyond the caller's own rights. A staff caller hands out (as a role, a
    /// policy, a token or another user's password) only what it could do itself: it must be
    /// allowed every request each granted right allows. Platform callers may grant anything.
    pub async fn check_within(
        &self,
        caller: &Caller,
        tenant: &TenantId,
        granted: &Rights,
    ) -> Result<()> {
        let Principal::Staff { user_id, .. } = &caller.principal else {
            return Ok(());
        };
        for (object, action) in granted {
            if !self.is_allowed(tenant, user_id, object, action).await {
                return Err(Error::Forbidden("a grant must stay within your own rights"));
            }
        }
        Ok(())
    }

    /// Drops a tenant's cached enforcer after a change to its rules.
    pub async fn invalidate(&self, tenant: &TenantId) {
        self.enforcers.invalidate(tenant).await;
    }

    /// Drops every cached enforcer.
    pub fn invalidate_all(&self) {
        self.enforcers.invalidate_all();
    }
}

/// Rebuilds a tenant's enforcer after its rules changed, on every replica.
impl Subscriber for Authz {
    fn notify<'a>(&'a self, event: &'a Recorded) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            match (&event.event, &event.tenant) {
                (Event::RolesChanged | Event::StaffUserDeleted, Some(tenant)) => {
                    self.invalidate(tenant).await
                }
                (Event::TenantDeleted, _) => {
                    if let Ok(tenant) = TenantId::parse(&event.subject) {
                        self.invalidate(&tenant).await
                    }
                }
                _ => {}
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TENANT_A: &str = "tenant-a";
    const TENANT_B: &str = "tenant-b";

    async fn enforcer_for(tenant: &str, assignments: &[(&str, &str)]) -> Enforcer {
        let rules = TenantRules {
            assignments: assignments
                .iter()
                .map(|(u, r)| (u.to_string(), r.to_string()))
                .collect(),
            policies: vec![(
                "auditor".into(),
                format!("{TENANT_ROUTES}/audit"),
                "GET".into(),
            )],
        };
        build_enforcer(tenant, &rules).await.unwrap()
    }

    #[tokio::test]
    async fn roles_hold_only_in_their_own_domain() {
        let a = enforcer_for(
            TENANT_A,
            &[
                ("ann", "tenant-admin"),
                ("dan", "dispatcher"),
                ("aud", "auditor"),
            ],
        )
        .await;
        let users = "/api/v1/tenants/{tenant}/users";
        assert!(
            a.enforce((user_subject("ann"), TENANT_A, users, "POST"))
                .unwrap()
        );
        assert!(
            a.enforce((user_subject("dan"), TENANT_A, users, "GET"))
                .unwrap()
        );
        assert!(
            !a.enforce((user_subject("dan"), TENANT_A, users, "POST"))
                .unwrap()
        );
        assert!(
            a.enforce((
                user_subject("aud"),
                TENANT_A,
                "/api/v1/tenants/{tenant}/audit",
                "GET"
            ))
            .unwrap()
        );
        assert!(
            !a.enforce((user_subject("aud"), TENANT_A, users, "GET"))
                .unwrap()
        );
        // Asked about another domain, tenant A's enforcer grants nothing.
        assert!(
            !a.enforce((user_subject("ann"), TENANT_B, users, "GET"))
                .unwrap()
        );
        // Nor does tenant B's enforcer know tenant A's people.
        let b = enforcer_for(TENANT_B, &[]).await;
        assert!(
            !b.enforce((user_subject("ann"), TENANT_B, users, "GET"))
                .unwrap()
        );
        assert!(
            !b.enforce((user_subject("ann"), TENANT_A, users, "GET"))
                .unwrap()
        );
    }

    #[tokio::test]
    async fn only_templates_under_the_tenant_prefix_match() {
        let a = enforcer_for(TENANT_A, &[("ann", "tenant-admin")]).await;
        assert!(
            !a.enforce((user_subject("ann"), TENANT_A, "/api/v1/tenants", "GET"))
                .unwrap()
        );
        assert!(
            !a.enforce((user_subject("ann"), TENANT_A, "/api/v1/audit", "GET"))
                .unwrap()
        );
        assert!(
            !a.enforce((
                user_subject("ann"),
                TENANT_A,
                "/api/v1/tenants/{tenant}x",
                "GET"
            ))
            .unwrap()
        );
        // A role named after a user's id gives that user nothing.
        let rules = TenantRules {
            assignments: Vec::new(),
            policies: vec![("ann".into(), format!("{TENANT_ROUTES}/audit"), "GET".into())],
        };
        let named = build_enforcer(TENANT_A, &rules).await.unwrap();
        assert!(
            !named
                .enforce((
                    user_subject("ann"),
                    TENANT_A,
                    "/api/v1/tenants/{tenant}/audit",
                    "GET"
                ))
                .unwrap()
        );
        assert!(
            !a.enforce((
                "role-name-is-not-a-user",
                TENANT_A,
                "/api/v1/tenants/{tenant}",
                "GET"
            ))
            .unwrap()
        );
    }
}
