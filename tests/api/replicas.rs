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
}
