//! Several replicas on one PostgreSQL database: a change made through one replica reaches the
//! caches of the others.

use std::time::Duration;

use serde_json::json;

use crate::support::{Backend, Reply, TestApp};

/// Asks until the answer has the expected status; notifications take a moment to arrive.
async fn eventually(expected: u16, mut ask: impl AsyncFnMut() -> Reply) -> Reply {
    let mut reply = ask().await;
    for _ in 0..50 {
        if reply.status == expected {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        reply = ask().await;
    }
    reply
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changes_through_one_replica_reach_the_others() {
    let Some(first) = TestApp::spawn(Backend::Postgres).await else {
        return;
    };
    let second = first.replica().await;
    let (tenant, admin) = first.tenant_with_admin("acme").await;
    let (user, token) = first.staff(&tenant, "s@acme.example", &[]).await;
    let users = format!("/api/v1/tenants/{tenant}/users");

    // Both replicas cache what they have seen.
    assert_eq!(second.get(&users, &token).await.status, 403);
    assert_eq!(second.page("/", "acme.portico.test").await.status, 200);

    let assigned = first
        .post(
            &format!("/api/v1/tenants/{tenant}/role-assignments"),
            &admin,
            json!({"user_id": user, "role": "viewer"}),
        )
        .await;
    assert_eq!(assigned.status, 201);
    let allowed = eventually(200, async || second.get(&users, &token).await).await;
    assert_eq!(allowed.status, 200, "the role reached the second replica");

    let renamed = first
        .patch(
            &format!("/api/v1/tenants/{tenant}"),
            &first.platform_token,
            json!({"slug": "acme-two"}),
        )
        .await;
    assert_eq!(renamed.status, 200);
    let old_host = eventually(404, async || second.page("/", "acme.portico.test").await).await;
    assert_eq!(
        old_host.status, 404,
        "the old host name stopped resolving on the second replica"
    );
    assert_eq!(second.page("/", "acme-two.portico.test").await.status, 200);

    // A theme install changed through one replica: the others stop using what they prepared.
    let t = format!("/api/v1/tenants/{tenant}");
    let installs = first.get(&format!("{t}/plugins"), &admin).await;
    let harbour = installs.json["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["plugin_id"] == "harbour")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let profile = first
        .post(
            &format!("{t}/portal-profiles"),
            &admin,
            json!({"name": "Web", "theme_install_id": harbour}),
        )
        .await;
    let project = first
        .post(
            &format!("{t}/projects"),
            &admin,
            json!({"name": "Printers", "profile_id": profile.json["id"]}),
        )
        .await;
    let ticket = first
        .post(
            &format!("{t}/tickets"),
            &admin,
            json!({"project_id": project.json["id"], "title": "Jam",
            "contact": {"first_name": "Eva", "last_name": "Ek", "email": "eva@example.com"}}),
        )
        .await;
    let link = ticket.json["tracking_url"]
        .as_str()
        .unwrap()
        .split("portico.test")
        .nth(1)
        .unwrap()
        .to_string();
    let themed = second.page(&link, "acme-two.portico.test").await;
    assert!(themed.text.contains("class=\"harbour\""), "{}", themed.text);
    let disabled = first
        .patch(
            &format!("{t}/plugins/{harbour}"),
            &admin,
            json!({"enabled": false}),
        )
        .await;
    assert_eq!(disabled.status, 200, "{}", disabled.text);
    let mut page = second.page(&link, "acme-two.portico.test").await;
    for _ in 0..50 {
        if !page.text.contains("class=\"harbour\"") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        page = second.page(&link, "acme-two.portico.test").await;
    }
    assert!(
        !page.text.contains("class=\"harbour\"") && page.text.contains("class=\"timeline\""),
        "the second replica fell back to the built-in page once the theme was disabled"
    );
}

/// Enforcers rebuilt a second after they were built.
fn short_policy_cache(config: &mut portico::config::Config) {
    config.authz_cache_ttl_secs = 1;
}

/// A change whose announcement never reached a replica (a lost notification) reaches it anyway
/// once its cached enforcer expires.
async fn a_lost_announcement_leaves_a_replica_stale_only_briefly(first: TestApp) {
    let second = first.replica().await;
    let (tenant, _) = first.tenant_with_admin("acme").await;
    let (user, token) = first.staff(&tenant, "s@acme.example", &[]).await;
    let users = format!("/api/v1/tenants/{tenant}/users");
    assert_eq!(second.get(&users, &token).await.status, 403);
    // Written straight to the database: no event, so no replica hears of it.
    let tenant_id = portico::types::TenantId::parse(&tenant).unwrap();
    let mut conn = first.state.db.pool.acquire().await.unwrap();
    portico::policies::store::insert_assignment(&mut conn, &tenant_id, &user, "viewer")
        .await
        .unwrap();
    drop(conn);
    let allowed = eventually(200, async || second.get(&users, &token).await).await;
    assert_eq!(allowed.status, 200, "the replica caught up on its own");
}

crate::on_both_backends!(configured(short_policy_cache): a_lost_announcement_leaves_a_replica_stale_only_briefly);
