//! Staff accounts, password sign-in, and token lifetime: expiry, revocation, disabled users.

use serde_json::json;

use crate::on_both_backends;
use crate::support::process::HostProcess;
use crate::support::{Reply, TestApp};

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

/// A sign-in from `client` (as the trusted proxy on loopback passes it on).
async fn sign_in_from(app: &TestApp, client: &str, email: &str, password: &str) -> Reply {
    app.send(
        reqwest::Method::POST,
        "/api/v1/auth/token",
        None,
        Some(&json!({"tenant": "acme", "email": email, "password": password})),
        &[("x-forwarded-for", client)],
    )
    .await
}

async fn user_with_password(app: &TestApp, tenant: &str, admin: &str, email: &str) -> String {
    let created = app
        .post(
            &format!("/api/v1/tenants/{tenant}/users"),
            admin,
            json!({"email": email, "display_name": email, "password": "a long enough secret",
                "roles": ["dispatcher"]}),
        )
        .await;
    assert_eq!(created.status, 201, "{}", created.text);
    created.json["id"].as_str().unwrap().to_string()
}

async fn failed_sign_ins_wait_without_locking_the_owner_out(app: TestApp) {
    let (tenant, admin) = app.tenant_with_admin("acme").await;
    user_with_password(&app, &tenant, &admin, "dora@acme.example").await;
    let attacker = "203.0.113.9";
    for _ in 0..5 {
        let wrong = sign_in_from(&app, attacker, "dora@acme.example", "not her password").await;
        assert_eq!(wrong.status, 401, "{}", wrong.text);
    }
    let limited = sign_in_from(&app, attacker, "dora@acme.example", "a long enough secret").await;
    assert_eq!((limited.status, limited.code()), (429, "too_many_attempts"));
    let wait: u64 = limited.headers["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=900).contains(&wait), "{wait}");
    // Guesses sent all at once are counted as they come, not after their passwords are checked.
    let parallel = futures_util::future::join_all(
        (0..20).map(|_| sign_in_from(&app, "203.0.113.50", "dora@acme.example", "another guess")),
    )
    .await;
    let checked = parallel.iter().filter(|r| r.status == 401).count();
    assert_eq!(
        checked,
        5,
        "{:?}",
        parallel.iter().map(|r| r.status).collect::<Vec<_>>()
    );
    let owner = sign_in_from(
        &app,
        "198.51.100.7",
        "dora@acme.example",
        "a long enough secret",
    )
    .await;
    assert_eq!(
        owner.status, 201,
        "the owner elsewhere signs in: {}",
        owner.text
    );

    // Many accounts from one address: the address waits.
    for n in 0..25 {
        let email = format!("guess{n}@acme.example");
        assert_eq!(
            sign_in_from(&app, attacker, &email, "whatever it is")
                .await
                .status,
            401
        );
    }
    let spraying = sign_in_from(&app, attacker, "other@acme.example", "whatever it is").await;
    assert_eq!(spraying.status, 429, "{}", spraying.text);
}

async fn a_new_password_revokes_tokens_and_tokens_expire(app: TestApp) {
    let (tenant, admin) = app.tenant_with_admin("acme").await;
    let dora = user_with_password(&app, &tenant, &admin, "dora@acme.example").await;
    let signed_in = sign_in_from(
        &app,
        "198.51.100.7",
        "dora@acme.example",
        "a long enough secret",
    )
    .await;
    let session = signed_in.json["token"].as_str().unwrap().to_string();
    let issued = app
        .post(
            &format!("/api/v1/tenants/{tenant}/tokens"),
            &admin,
            json!({"user_id": dora, "name": "dispatch app"}),
        )
        .await;
    assert_eq!(issued.status, 201, "{}", issued.text);
    let at =
        |field: &str| -> jiff::Timestamp { issued.json[field].as_str().unwrap().parse().unwrap() };
    let lasts = at("expires_at").duration_since(at("created_at"));
    assert_eq!(
        lasts,
        jiff::SignedDuration::from_hours(90 * 24),
        "tokens issued through the API expire by default"
    );
    let api_token = issued.json["token"].as_str().unwrap().to_string();
    let me = format!("/api/v1/tenants/{tenant}/me");
    for token in [&session, &api_token] {
        assert_eq!(app.get(&me, token).await.status, 200);
    }
    let changed = app
        .patch(
            &format!("/api/v1/tenants/{tenant}/users/{dora}"),
            &admin,
            json!({"password": "another long secret"}),
        )
        .await;
    assert_eq!(changed.status, 200, "{}", changed.text);
    for token in [&session, &api_token] {
        assert_eq!(
            app.get(&me, token).await.status,
            401,
            "revoked with the password"
        );
    }
    assert_eq!(app.get(&me, &admin).await.status, 200, "others keep theirs");

    // Sign-in caps a token's life.
    let long = app
        .send(
            reqwest::Method::POST,
            "/api/v1/auth/token",
            None,
            Some(&json!({"tenant": "acme", "email": "dora@acme.example",
                "password": "another long secret", "expires_in_days": 3650})),
            &[],
        )
        .await;
    assert_eq!((long.status, long.code()), (422, "invalid_expiry"));
}

async fn a_sign_in_storm_leaves_memory_bounded_and_the_host_answering(app: TestApp) {
    app.tenant_with_admin("acme").await;
    let config = "base_domain = \"portico.test\"\npublic_url = \"http://portico.test\"\nbackground_workers = false\n";
    let host = HostProcess::start(&app, config, &[("PORTICO_TRUSTED_PROXIES", "127.0.0.1")]).await;
    let before = host.peak_resident_bytes();
    let client = reqwest::Client::new();
    // 500 sign-ins at once, each from its own address: each one costs a password check.
    let storm = (0..500).map(|n| {
        let (client, url) = (&client, format!("{}/api/v1/auth/token", host.base_url));
        async move {
            client
                .post(url)
                .header(
                    "x-forwarded-for",
                    format!("10.0.{}.{}", n / 250, n % 250 + 1),
                )
                .json(
                    &json!({"tenant": "acme", "email": format!("nobody{n}@acme.example"),
                    "password": "a guess that is long enough"}),
                )
                .send()
                .await
                .map(|r| r.status().as_u16())
        }
    });
    let health = async {
        let mut answers = Vec::new();
        for _ in 0..10 {
            let answer = client
                .get(format!("{}/healthz", host.base_url))
                .timeout(std::time::Duration::from_secs(10))
                .send()
                .await
                .map(|r| r.status().as_u16());
            answers.push(answer.ok());
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        answers
    };
    let (replies, health) = tokio::join!(futures_util::future::join_all(storm), health);
    let statuses: Vec<u16> = replies.into_iter().map(|r| r.expect("answered")).collect();
    assert!(
        statuses.iter().all(|s| *s == 401 || *s == 429),
        "{statuses:?}"
    );
    assert!(statuses.contains(&401), "passwords were checked");
    assert!(
        health.iter().all(|h| *h == Some(200)),
        "/healthz kept answering: {health:?}"
    );
    // One argon2 memory (19 MiB) per hashing thread, one thread per core, and some slack.
    let cores = std::thread::available_parallelism().map_or(2, usize::from) as u64;
    let bound = cores * (19 << 20) + (64 << 20);
    let grew = host.peak_resident_bytes().saturating_sub(before);
    assert!(
        grew < bound,
        "the storm made the host hold {} MiB more (bound {} MiB)",
        grew >> 20,
        bound >> 20
    );
}

/// The application behind a reverse proxy on the loopback address.
fn behind_proxy(config: &mut portico::config::Config) {
    config.trusted_proxies = vec!["127.0.0.1".parse().unwrap()];
}

on_both_backends!(
    sign_in_issues_a_token_and_refuses_bad_credentials,
    revoked_expired_and_disabled_tokens_stop_working
);

on_both_backends!(a_sign_in_storm_leaves_memory_bounded_and_the_host_answering);

on_both_backends!(configured(behind_proxy):
    failed_sign_ins_wait_without_locking_the_owner_out,
    a_new_password_revokes_tokens_and_tokens_expire
);
