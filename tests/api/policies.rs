//! Role policies: built-in roles, assignments and custom policies taking effect on the next
//! request, tenant-bound roles, and path tricks that must not slip past a denial.

use serde_json::json;

use crate::on_both_backends;
use crate::support::TestApp;

async fn built_in_roles_grant_what_they_say(app: TestApp) {
    let (tenant, _) = app.tenant_with_admin("acme").await;
    let (_, dispatcher) = app.staff(&tenant, "d@acme.example", &["dispatcher"]).await;
    let (_, viewer) = app.staff(&tenant, "v@acme.example", &["viewer"]).await;
    let (_, nobody) = app.staff(&tenant, "n@acme.example", &[]).await;
    let users = format!("/api/v1/tenants/{tenant}/users");
    let new_user = json!({"email": "new@acme.example", "display_name": "New"});

    assert_eq!(app.get(&users, &dispatcher).await.status, 200);
    assert_eq!(
        app.post(&users, &dispatcher, new_user.clone()).await.status,
        403
    );
    assert_eq!(
        app.get(&format!("/api/v1/tenants/{tenant}/audit"), &dispatcher)
            .await
            .status,
        403
    );
    assert_eq!(
        app.get(&format!("/api/v1/tenants/{tenant}/audit"), &viewer)
            .await
            .status,
        200
    );
    assert_eq!(
        app.post(&users, &viewer, new_user.clone()).await.status,
        403
    );
    assert_eq!(
        app.post(
            &format!("/api/v1/tenants/{tenant}/me/tokens"),
            &viewer,
            json!({"name": "own"})
        )
        .await
        .status,
        201
    );
    assert_eq!(app.get(&users, &nobody).await.status, 403);
    assert_eq!(
        app.get(&format!("/api/v1/tenants/{tenant}"), &nobody)
            .await
            .status,
        403
    );

    let roles = app
        .get(&format!("/api/v1/tenants/{tenant}/roles"), &viewer)
        .await;
    let names: Vec<&str> = roles
        .json
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        ["tenant-admin", "dispatcher", "technician", "viewer"]
    );
}

async fn changes_take_effect_on_the_next_request(app: TestApp) {
    let (tenant, admin) = app.tenant_with_admin("acme").await;
    let (user, token) = app.staff(&tenant, "s@acme.example", &[]).await;
    let users = format!("/api/v1/tenants/{tenant}/users");
    assert_eq!(app.get(&users, &token).await.status, 403);

    let assigned = app
        .post(
            &format!("/api/v1/tenants/{tenant}/role-assignments"),
            &admin,
            json!({"user_id": user, "role": "viewer"}),
        )
        .await;
    assert_eq!(assigned.status, 201, "{}", assigned.text);
    assert_eq!(app.get(&users, &token).await.status, 200);
    let again = app
        .post(
            &format!("/api/v1/tenants/{tenant}/role-assignments"),
            &admin,
            json!({"user_id": user, "role": "viewer"}),
        )
        .await;
    assert_eq!((again.status, again.code()), (409, "already_assigned"));

    // A custom role with one extra permission.
    assert_eq!(
        app.post(
            &users,
            &token,
            json!({"email": "x@acme.example", "display_name": "X"})
        )
        .await
        .status,
        403
    );
    let policy = app
        .post(
            &format!("/api/v1/tenants/{tenant}/policies"),
            &admin,
            json!({
                "role": "staff-manager",
                "object": "/api/v1/tenants/{tenant}/users",
                "action": "post"
            }),
        )
        .await;
    assert_eq!(policy.status, 201, "{}", policy.text);
    assert_eq!(policy.json["action"], "POST");
    app.post(
        &format!("/api/v1/tenants/{tenant}/role-assignments"),
        &admin,
        json!({"user_id": user, "role": "staff-manager"}),
    )
    .await;
    assert_eq!(
        app.post(
            &users,
            &token,
            json!({"email": "x@acme.example", "display_name": "X"})
        )
        .await
        .status,
        201
    );

    let policy_id = policy.json["id"].as_str().unwrap();
    assert_eq!(
        app.delete(
            &format!("/api/v1/tenants/{tenant}/policies/{policy_id}"),
            &admin
        )
        .await
        .status,
        204
    );
    assert_eq!(
        app.post(
            &users,
            &token,
            json!({"email": "y@acme.example", "display_name": "Y"})
        )
        .await
        .status,
        403
    );

    let assignment = assigned.json["id"].as_str().unwrap();
    assert_eq!(
        app.delete(
            &format!("/api/v1/tenants/{tenant}/role-assignments/{assignment}"),
            &admin
        )
        .await
        .status,
        204
    );
    assert_eq!(app.get(&users, &token).await.status, 403);

    for bad in [
        json!({"role": "x", "object": "/api/v1/tenants", "action": "GET"}),
        json!({"role": "x", "object": "/api/v1/audit", "action": "GET"}),
        json!({"role": "x", "object": "/api/v1/tenants/{tenant}/users", "action": "FETCH"}),
        json!({"role": "tenant-admin", "object": "/api/v1/tenants/{tenant}/users", "action": "GET"}),
        json!({"role": "Bad Role", "object": "/api/v1/tenants/{tenant}/users", "action": "GET"}),
    ] {
        let refused = app
            .post(
                &format!("/api/v1/tenants/{tenant}/policies"),
                &admin,
                bad.clone(),
            )
            .await;
        assert_eq!(refused.status, 422, "{bad}: {}", refused.text);
    }
    let audit = app
        .get(&format!("/api/v1/tenants/{tenant}/audit?limit=200"), &admin)
        .await;
    let actions: Vec<&str> = audit.json["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    for expected in [
        "role_assignment.create",
        "policy.create",
        "policy.delete",
        "role_assignment.delete",
    ] {
        assert!(
            actions.contains(&expected),
            "{expected} missing from {actions:?}"
        );
    }
}

async fn a_role_in_one_tenant_grants_nothing_in_another(app: TestApp) {
    let (tenant_a, admin_a) = app.tenant_with_admin("alpha").await;
    let (tenant_b, _) = app.tenant_with_admin("bravo").await;
    assert_eq!(
        app.get(&format!("/api/v1/tenants/{tenant_a}/users"), &admin_a)
            .await
            .status,
        200
    );
    for path in [
        format!("/api/v1/tenants/{tenant_b}/users"),
        "/api/v1/tenants/bravo/users".to_string(),
    ] {
        let refused = app.get(&path, &admin_a).await;
        assert_eq!(
            (refused.status, refused.code()),
            (403, "forbidden"),
            "{path}"
        );
    }
    // Even a policy row naming the other tenant's routes cannot be written for it.
    let (user_b, _) = app.staff(&tenant_b, "b@bravo.example", &[]).await;
    let cross = app
        .post(
            &format!("/api/v1/tenants/{tenant_a}/role-assignments"),
            &admin_a,
            json!({"user_id": user_b, "role": "tenant-admin"}),
        )
        .await;
    assert_eq!(cross.status, 404, "{}", cross.text);
}

async fn path_variants_of_a_denied_route_stay_denied(app: TestApp) {
    let (tenant, _) = app.tenant_with_admin("acme").await;
    let (_, viewer) = app.staff(&tenant, "v@acme.example", &["viewer"]).await;
    let body = json!({"email": "z@acme.example", "display_name": "Z"});
    let canonical = format!("/api/v1/tenants/{tenant}/users");
    assert_eq!(
        app.post(&canonical, &viewer, body.clone()).await.status,
        403
    );
    for variant in [
        format!("/api/v1/tenants/{tenant}/users/"),
        format!("//api/v1/tenants/{tenant}/users"),
        format!("/api/v1//tenants/{tenant}/users"),
        format!("/api/v1/tenants/{tenant}//users"),
        format!("/api/v1/tenants/{tenant}/%75sers"),
        format!("/api/v1/tenants/{tenant}/users%2F"),
        format!("/api/v1/tenants/{tenant}/USERS"),
        format!("/api/v1/tenants/{tenant}/./users"),
        format!("/api/v1/tenants/{tenant}/me/../users"),
        format!("/api/v1/tenants/{tenant}/me%2F..%2Fusers"),
    ] {
        let reply = app.post(&variant, &viewer, body.clone()).await;
        assert!(
            !(200..300).contains(&reply.status),
            "{variant} was allowed: {} {}",
            reply.status,
            reply.text
        );
    }
    let users: (i64,) =
        sqlx::query_as("SELECT COUNT(*) FROM staff_users WHERE email = 'z@acme.example'")
            .fetch_one(&app.state.db.pool)
            .await
            .unwrap();
    assert_eq!(users.0, 0, "no variant created the user");
}

/// Roles are named by one rule, whichever route gives them.
async fn one_rule_for_role_names_on_every_route(app: TestApp) {
    let (tenant, admin) = app.tenant_with_admin("acme").await;
    let users = format!("/api/v1/tenants/{tenant}/users");
    let body = json!({"email": "o@acme.example", "display_name": "Ops", "roles": ["Ops Team"]});
    let with_role = app.post(&users, &admin, body).await;
    assert_eq!(
        (with_role.status, with_role.code()),
        (422, "invalid_role"),
        "{}",
        with_role.text
    );
    let body = json!({"email": "o@acme.example", "display_name": "Ops", "roles": ["ops-team"]});
    let created = app.post(&users, &admin, body).await;
    assert_eq!(created.status, 201, "{}", created.text);
    let assignments = format!("/api/v1/tenants/{tenant}/role-assignments");
    let user = created.json["id"].as_str().unwrap();
    let refused = app
        .post(
            &assignments,
            &admin,
            json!({"user_id": user, "role": "Ops Team"}),
        )
        .await;
    assert_eq!((refused.status, refused.code()), (422, "invalid_role"));
    let again = app
        .post(
            &assignments,
            &admin,
            json!({"user_id": user, "role": "ops-team"}),
        )
        .await;
    assert_eq!((again.status, again.code()), (409, "already_assigned"));
}

async fn delegated_roles_grant_only_what_they_hold(app: TestApp) {
    let (tenant, admin) = app.tenant_with_admin("acme").await;
    let policies = format!("/api/v1/tenants/{tenant}/policies");
    // A role that manages staff: users, tokens, role assignments and policies, and nothing else.
    for (object, action) in [
        ("/api/v1/tenants/{tenant}/users*", "*"),
        ("/api/v1/tenants/{tenant}/tokens*", "*"),
        ("/api/v1/tenants/{tenant}/role-assignments*", "*"),
        ("/api/v1/tenants/{tenant}/policies*", "*"),
    ] {
        let added = app
            .post(
                &policies,
                &admin,
                json!({"role": "staff-manager", "object": object, "action": action}),
            )
            .await;
        assert_eq!(added.status, 201, "{}", added.text);
    }
    let (manager, token) = app
        .staff(&tenant, "m@acme.example", &["staff-manager"])
        .await;
    let me = app
        .get(&format!("/api/v1/tenants/{tenant}/me"), &admin)
        .await;
    let admin_id = me.json["id"].as_str().unwrap().to_string();
    let refused = |reply: crate::support::Reply, what: &str| {
        assert_eq!(
            (reply.status, reply.code()),
            (403, "forbidden"),
            "{what}: {}",
            reply.text
        );
    };
    refused(
        app.post(
            &format!("/api/v1/tenants/{tenant}/tokens"),
            &token,
            json!({"user_id": admin_id, "name": "mine now"}),
        )
        .await,
        "an admin's token",
    );
    refused(
        app.patch(
            &format!("/api/v1/tenants/{tenant}/users/{admin_id}"),
            &token,
            json!({"password": "taken over entirely"}),
        )
        .await,
        "an admin's password",
    );
    refused(
        app.post(
            &format!("/api/v1/tenants/{tenant}/role-assignments"),
            &token,
            json!({"user_id": manager, "role": "tenant-admin"}),
        )
        .await,
        "tenant-admin for oneself",
    );
    refused(
        app.post(
            &format!("/api/v1/tenants/{tenant}/users"),
            &token,
            json!({"email": "a@acme.example", "display_name": "A", "roles": ["dispatcher"]}),
        )
        .await,
        "a user with a role beyond the manager's",
    );
    refused(
        app.post(
            &policies,
            &token,
            json!({"role": "staff-manager", "object": "/api/v1/tenants/{tenant}/*", "action": "*"}),
        )
        .await,
        "a policy beyond the manager's",
    );
    let assignments = app
        .get(
            &format!("/api/v1/tenants/{tenant}/role-assignments"),
            &admin,
        )
        .await;
    let admins_role = assignments.json["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["user_id"] == admin_id.as_str() && a["role"] == "tenant-admin")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    refused(
        app.delete(
            &format!("/api/v1/tenants/{tenant}/role-assignments/{admins_role}"),
            &token,
        )
        .await,
        "taking tenant-admin from an admin",
    );
    let odd = app
        .post(
            &policies,
            &admin,
            json!({"role": "staff-manager", "object": "/api/v1/tenants/{tenant}é", "action": "GET"}),
        )
        .await;
    assert_eq!(
        (odd.status, odd.code()),
        (422, "invalid_object"),
        "{}",
        odd.text
    );
    // Within their own rights, they may delegate.
    let (helper, _) = app.staff(&tenant, "h@acme.example", &[]).await;
    let delegated = app
        .post(
            &format!("/api/v1/tenants/{tenant}/role-assignments"),
            &token,
            json!({"user_id": helper, "role": "staff-manager"}),
        )
        .await;
    assert_eq!(delegated.status, 201, "{}", delegated.text);
    let helper_token = app
        .post(
            &format!("/api/v1/tenants/{tenant}/tokens"),
            &token,
            json!({"user_id": helper, "name": "helper"}),
        )
        .await;
    assert_eq!(helper_token.status, 201, "{}", helper_token.text);

    // A role named after a user's id gives that user nothing.
    let (tech, tech_token) = app.staff(&tenant, "t@acme.example", &["technician"]).await;
    let named = app
        .post(
            &policies,
            &admin,
            json!({"role": tech, "object": "/api/v1/tenants/{tenant}/audit", "action": "GET"}),
        )
        .await;
    assert_eq!(named.status, 201, "{}", named.text);
    assert_eq!(
        app.get(&format!("/api/v1/tenants/{tenant}/audit"), &tech_token)
            .await
            .status,
        403
    );
}

on_both_backends!(
    delegated_roles_grant_only_what_they_hold,
    one_rule_for_role_names_on_every_route,
    built_in_roles_grant_what_they_say,
    changes_take_effect_on_the_next_request,
    a_role_in_one_tenant_grants_nothing_in_another,
    path_variants_of_a_denied_route_stay_denied
);
