//! Tenant lifecycle through the platform API, and the audit trail it leaves.

use serde_json::json;

use crate::on_both_backends;
use crate::support::TestApp;

async fn create_list_update_and_paginate(app: TestApp) {
    let token = app.platform_token.clone();
    for slug in ["alpha", "bravo", "charlie"] {
        let created = app
            .post(
                "/api/v1/tenants",
                &token,
                json!({"slug": slug, "display_name": slug.to_uppercase()}),
            )
            .await;
        assert_eq!(created.status, 201, "{}", created.text);
        assert_eq!(created.json["time_zone"], "UTC");
        assert_eq!(created.json["language"], "en");
        assert_eq!(created.json["status"], "active");
    }
    let duplicate = app
        .post(
            "/api/v1/tenants",
            &token,
            json!({"slug": "alpha", "display_name": "again"}),
        )
        .await;
    assert_eq!((duplicate.status, duplicate.code()), (409, "slug_taken"));

    let first = app.get("/api/v1/tenants?limit=2", &token).await;
    assert_eq!(first.json["items"].as_array().unwrap().len(), 2);
    let cursor = first.json["next_cursor"]
        .as_str()
        .expect("a next page")
        .to_string();
    let second = app
        .get(&format!("/api/v1/tenants?limit=2&cursor={cursor}"), &token)
        .await;
    let rest = second.json["items"].as_array().unwrap();
    assert_eq!(rest.len(), 1);
    assert_eq!(rest[0]["slug"], "charlie");
    assert!(second.json["next_cursor"].is_null());

    let by_slug = app.get("/api/v1/tenants/bravo", &token).await;
    let id = by_slug.json["id"].as_str().unwrap().to_string();
    let by_id = app.get(&format!("/api/v1/tenants/{id}"), &token).await;
    assert_eq!(by_id.json["slug"], "bravo");

    let updated = app
        .patch(
            &format!("/api/v1/tenants/{id}"),
            &token,
            json!({
                "display_name": "Bravo GmbH",
                "time_zone": "Europe/Madrid",
                "language": "es",
                "slug": "bravo-gmbh"
            }),
        )
        .await;
    assert_eq!(updated.status, 200, "{}", updated.text);
    assert_eq!(updated.json["display_name"], "Bravo GmbH");
    assert_eq!(updated.json["slug"], "bravo-gmbh");
    let renamed_clash = app
        .patch(
            &format!("/api/v1/tenants/{id}"),
            &token,
            json!({"slug": "alpha"}),
        )
        .await;
    assert_eq!(
        (renamed_clash.status, renamed_clash.code()),
        (409, "slug_taken")
    );
    let bad_language = app
        .patch(
            &format!("/api/v1/tenants/{id}"),
            &token,
            json!({"language": "fr"}),
        )
        .await;
    assert_eq!(bad_language.status, 422);

    let audit = app
        .get(&format!("/api/v1/tenants/{id}/audit"), &token)
        .await;
    let entry = &audit.json["items"][0];
    assert_eq!(entry["action"], "tenant.update");
    assert_eq!(entry["before"]["display_name"], "BRAVO");
    assert_eq!(entry["after"]["display_name"], "Bravo GmbH");
    assert!(entry["actor"].as_str().unwrap().contains("platform token"));
    let platform_audit = app.get("/api/v1/audit", &token).await;
    let actions: Vec<&str> = platform_audit.json["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        actions,
        [
            "plugin.publish",
            "plugin.publish",
            "plugin.publish",
            "plugin.publish",
            "plugin.publish",
            "plugin.publish",
            "tenant.create",
            "tenant.create",
            "tenant.create"
        ],
        "built-ins first"
    );
}

async fn suspension_locks_the_api_and_portals(app: TestApp) {
    let (tenant, admin) = app.tenant_with_admin("acme").await;
    assert_eq!(
        app.get(&format!("/api/v1/tenants/{tenant}/users"), &admin)
            .await
            .status,
        200
    );
    assert_eq!(app.page("/", "acme.portico.test").await.status, 200);

    let suspended_by_admin = app
        .post(
            &format!("/api/v1/tenants/{tenant}/suspend"),
            &admin,
            json!({}),
        )
        .await;
    assert_eq!(
        suspended_by_admin.status, 403,
        "a tenant admin cannot suspend: {}",
        suspended_by_admin.text
    );

    let suspended = app
        .post(
            &format!("/api/v1/tenants/{tenant}/suspend"),
            &app.platform_token,
            json!({}),
        )
        .await;
    assert_eq!(suspended.json["status"], "suspended");
    let refused = app
        .get(&format!("/api/v1/tenants/{tenant}/users"), &admin)
        .await;
    assert_eq!((refused.status, refused.code()), (403, "tenant_suspended"));
    let page = app.page("/", "acme.portico.test").await;
    assert_eq!(page.status, 503);
    assert!(
        page.text.contains("Dieses Portal ist nicht erreichbar"),
        "in the tenant's language: {}",
        page.text
    );
    assert!(page.text.contains("acme Ltd"));

    let resumed = app
        .post(
            &format!("/api/v1/tenants/{tenant}/resume"),
            &app.platform_token,
            json!({}),
        )
        .await;
    assert_eq!(resumed.json["status"], "active");
    assert_eq!(
        app.get(&format!("/api/v1/tenants/{tenant}/users"), &admin)
            .await
            .status,
        200
    );
    assert_eq!(app.page("/", "acme.portico.test").await.status, 200);
}

async fn deleting_a_tenant_removes_everything_it_owns(app: TestApp) {
    let (tenant, admin) = app.tenant_with_admin("gone").await;
    let by_admin = app
        .delete(&format!("/api/v1/tenants/{tenant}"), &admin)
        .await;
    assert_eq!(by_admin.status, 403);
    let deleted = app
        .delete(&format!("/api/v1/tenants/{tenant}"), &app.platform_token)
        .await;
    assert_eq!(deleted.status, 204);
    assert_eq!(
        app.get(&format!("/api/v1/tenants/{tenant}"), &app.platform_token)
            .await
            .status,
        404
    );
    assert_eq!(
        app.get(&format!("/api/v1/tenants/{tenant}/users"), &admin)
            .await
            .status,
        401
    );
    assert_eq!(app.page("/", "gone.portico.test").await.status, 404);
    let users: (i64,) = sqlx::query_as("SELECT COUNT(*) FROM staff_users WHERE tenant_id = $1")
        .bind(&tenant)
        .fetch_one(&app.state.db.pool)
        .await
        .unwrap();
    assert_eq!(users.0, 0);
    let audit = app.get("/api/v1/audit", &app.platform_token).await;
    let last = audit.json["items"]
        .as_array()
        .unwrap()
        .last()
        .unwrap()
        .clone();
    assert_eq!(last["action"], "tenant.delete");
    assert_eq!(last["before"]["slug"], "gone");
}

async fn tenant_admins_cannot_manage_the_platform(app: TestApp) {
    let (_, admin) = app.tenant_with_admin("acme").await;
    assert_eq!(app.get("/api/v1/tenants", &admin).await.status, 403);
    assert_eq!(
        app.post(
            "/api/v1/tenants",
            &admin,
            json!({"slug": "mine", "display_name": "Mine"})
        )
        .await
        .status,
        403
    );
    assert_eq!(app.get("/api/v1/audit", &admin).await.status, 403);
    let slug_change = app
        .patch("/api/v1/tenants/acme", &admin, json!({"slug": "other"}))
        .await;
    assert_eq!(slug_change.status, 403);
    let name_change = app
        .patch(
            "/api/v1/tenants/acme",
            &admin,
            json!({"display_name": "Acme Service"}),
        )
        .await;
    assert_eq!(name_change.status, 200, "{}", name_change.text);
}

on_both_backends!(
    create_list_update_and_paginate,
    suspension_locks_the_api_and_portals,
    deleting_a_tenant_removes_everything_it_owns,
    tenant_admins_cannot_manage_the_platform
);
