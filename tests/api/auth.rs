//! Staff accounts, password sign-in, and token lifetime: expiry, revocation, disabled users.

use serde_json::json;

use crate::on_both_backends;
use crate::support::TestApp;

async fn sign_in_issues_a_token_and_refuses_bad_credentials(app: TestApp) {
    let (tenant, admin) = app.tenant_with_admin("acme").await;
    let created = app
        .post(
            &format!("/api/v1/tenants/{tenant}/users"),
            &admin,
            json!({
                "email": "Dora@Acme.example",
                "display_name": "Dora",
                "password": "a long enough secret",
                "roles": ["dispatcher"]
            }),
        )
        .await;
    assert_eq!(created.status, 201, "{}", created.text);
    assert_eq!(created.json["email"], "dora@acme.example");
    let weak = app
        .post(
            &format!("/api/v1/tenants/{tenant}/users"),
            &admin,
            json!({"email": "x@acme.example", "display_name": "X", "password": "short"}),
        )
        .await;
    assert_eq!((weak.status, weak.code()), (422, "weak_password"));
    let taken = app
        .post(
            &format!("/api/v1/tenants/{tenant}/users"),
            &admin,
            json!({"email": "dora@acme.example", "display_name": "Dora 2"}),
        )
        .await;
    assert_eq!((taken.status, taken.code()), (409, "email_taken"));

    let signed_in = app
        .send(
            reqwest::Method::POST,
            "/api/v1/auth/token",
            None,
            Some(&json!({
                "tenant": "acme",
                "email": "dora@acme.example",
                "password": "a long enough secret"
            })),
            &[],
        )
        .await;
    assert_eq!(signed_in.status, 201, "{}", signed_in.text);
    assert_eq!(signed_in.json["tenant_id"], tenant.as_str());
    let token = signed_in.json["token"].as_str().unwrap().to_string();
    let me = app
        .get(&format!("/api/v1/tenants/{tenant}/me"), &token)
        .await;
    assert_eq!(me.json["email"], "dora@acme.example");

    for (tenant, email, password) in [
        ("acme", "dora@acme.example", "wrong password here"),
        ("acme", "nobody@acme.example", "a long enough secret"),
        ("other", "dora@acme.example", "a long enough secret"),
    ] {
        let refused = app
            .send(
                reqwest::Method::POST,
                "/api/v1/auth/token",
                None,
                Some(&json!({"tenant": tenant, "email": email, "password": password})),
                &[],
            )
            .await;
        assert_eq!(
            (refused.status, refused.code()),
            (401, "unauthorized"),
            "{tenant} {email}"
        );
    }

    // Secrets at rest: an argon2id hash with OWASP parameters, and only token hashes.
    let hash: (String,) =
        sqlx::query_as("SELECT password_hash FROM staff_users WHERE email = 'dora@acme.example'")
            .fetch_one(&app.state.db.pool)
            .await
            .unwrap();
    assert!(
        hash.0.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
        "{}",
        hash.0
    );
    let stored: (i64,) =
        sqlx::query_as("SELECT COUNT(*) FROM api_tokens WHERE token_hash = $1 OR name = $1")
            .bind(&token)
            .fetch_one(&app.state.db.pool)
            .await
            .unwrap();
    assert_eq!(stored.0, 0, "the token itself is never stored");
}

async fn revoked_expired_and_disabled_tokens_stop_working(app: TestApp) {
    let (tenant, admin) = app.tenant_with_admin("acme").await;
    let (user, _) = app
        .staff(&tenant, "tech@acme.example", &["technician"])
        .await;
    let own = app
        .post(
            &format!("/api/v1/tenants/{tenant}/me/tokens"),
            &admin,
            json!({"name": "laptop", "expires_in_days": 7}),
        )
        .await;
    assert_eq!(own.status, 201, "{}", own.text);
    let laptop = own.json["token"].as_str().unwrap().to_string();
    let laptop_id = own.json["id"].as_str().unwrap().to_string();
    assert!(own.json["expires_at"].is_string());
    assert_eq!(
        app.get(&format!("/api/v1/tenants/{tenant}/me"), &laptop)
            .await
            .status,
        200
    );

    let listed = app
        .get(&format!("/api/v1/tenants/{tenant}/me/tokens"), &admin)
        .await;
    let items = listed.json["items"].as_array().unwrap();
    assert!(items.iter().any(|t| t["id"] == laptop_id.as_str()));
    assert!(
        items
            .iter()
            .all(|t| t.get("token").is_none() && t.get("token_hash").is_none())
    );

    let revoked = app
        .delete(
            &format!("/api/v1/tenants/{tenant}/me/tokens/{laptop_id}"),
            &admin,
        )
        .await;
    assert_eq!(revoked.status, 204);
    assert_eq!(
        app.get(&format!("/api/v1/tenants/{tenant}/me"), &laptop)
            .await
            .status,
        401
    );

    let bad_expiry = app
        .post(
            &format!("/api/v1/tenants/{tenant}/me/tokens"),
            &admin,
            json!({"name": "x", "expires_in_days": 0}),
        )
        .await;
    assert_eq!(
        (bad_expiry.status, bad_expiry.code()),
        (422, "invalid_expiry")
    );

    let tech_token = app.token_for(&tenant, &user).await;
    assert_eq!(
        app.get(&format!("/api/v1/tenants/{tenant}/me"), &tech_token)
            .await
            .status,
        200
    );
    sqlx::query("UPDATE api_tokens SET expires_at = 1 WHERE user_id = $1")
        .bind(&user)
        .execute(&app.state.db.pool)
        .await
        .unwrap();
    assert_eq!(
        app.get(&format!("/api/v1/tenants/{tenant}/me"), &tech_token)
            .await
            .status,
        401,
        "expired"
    );

    let fresh = app.token_for(&tenant, &user).await;
    let disabled = app
        .patch(
            &format!("/api/v1/tenants/{tenant}/users/{user}"),
            &admin,
            json!({"disabled": true}),
        )
        .await;
    assert_eq!(disabled.json["disabled"], true);
    assert_eq!(
        app.get(&format!("/api/v1/tenants/{tenant}/me"), &fresh)
            .await
            .status,
        401,
        "disabled user"
    );

    // A technician may not revoke someone else's token through /me.
    let enabled = app
        .patch(
            &format!("/api/v1/tenants/{tenant}/users/{user}"),
            &admin,
            json!({"disabled": false}),
        )
        .await;
    assert_eq!(enabled.status, 200);
    let admin_token = app
        .post(
            &format!("/api/v1/tenants/{tenant}/me/tokens"),
            &admin,
            json!({"name": "desk"}),
        )
        .await;
    let admin_token_id = admin_token.json["id"].as_str().unwrap();
    let foreign = app
        .delete(
            &format!("/api/v1/tenants/{tenant}/me/tokens/{admin_token_id}"),
            &fresh,
        )
        .await;
    assert_eq!(foreign.status, 404);
}

on_both_backends!(
    sign_in_issues_a_token_and_refuses_bad_credentials,
    revoked_expired_and_disabled_tokens_stop_working
);
