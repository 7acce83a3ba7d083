//! Custom domains: DNS TXT verification against a real DNS server on loopback, and Host-header
//! routing that follows verification and deletion at once.

use serde_json::json;

use crate::on_both_backends;
use crate::support::TestApp;

async fn a_domain_serves_the_tenant_only_after_verification(app: TestApp) {
    let (tenant, admin) = app.tenant_with_admin("acme").await;
    let domains = format!("/api/v1/tenants/{tenant}/domains");
    let added = app
        .post(
            &domains,
            &admin,
            json!({"name": "Service.Acme-Repairs.example."}),
        )
        .await;
    assert_eq!(added.status, 201, "{}", added.text);
    assert_eq!(added.json["name"], "service.acme-repairs.example");
    assert_eq!(added.json["status"], "pending");
    assert_eq!(
        added.json["challenge_record"],
        "_portico-challenge.service.acme-repairs.example"
    );
    let id = added.json["id"].as_str().unwrap().to_string();
    let challenge = added.json["challenge_token"].as_str().unwrap().to_string();

    assert_eq!(
        app.page("/", "service.acme-repairs.example").await.status,
        404,
        "pending domains do not serve"
    );
    let not_yet = app
        .post(&format!("{domains}/{id}/verify"), &admin, json!({}))
        .await;
    assert_eq!(
        (not_yet.status, not_yet.code()),
        (422, "domain_verification_failed"),
        "{}",
        not_yet.text
    );

    app.dns.set_txt(
        "_portico-challenge.service.acme-repairs.example",
        "some-other-value",
    );
    let wrong = app
        .post(&format!("{domains}/{id}/verify"), &admin, json!({}))
        .await;
    assert_eq!(
        (wrong.status, wrong.code()),
        (422, "domain_verification_failed")
    );

    app.dns.set_txt(
        "_portico-challenge.service.acme-repairs.example",
        &challenge,
    );
    let verified = app
        .post(&format!("{domains}/{id}/verify"), &admin, json!({}))
        .await;
    assert_eq!(verified.status, 200, "{}", verified.text);
    assert_eq!(verified.json["status"], "verified");

    let page = app.page("/", "service.acme-repairs.example").await;
    assert_eq!(page.status, 200);
    assert!(page.text.contains("acme Ltd"));
    assert_eq!(
        app.page("/", "SERVICE.acme-repairs.example:443")
            .await
            .status,
        200
    );

    // Another tenant may claim the name, but not prove it while acme holds it.
    let (other, other_admin) = app.tenant_with_admin("rival").await;
    let claim = app
        .post(
            &format!("/api/v1/tenants/{other}/domains"),
            &other_admin,
            json!({"name": "service.acme-repairs.example"}),
        )
        .await;
    assert_eq!(claim.status, 201);
    app.dns.set_txt(
        "_portico-challenge.service.acme-repairs.example",
        claim.json["challenge_token"].as_str().unwrap(),
    );
    let stolen = app
        .post(
            &format!(
                "/api/v1/tenants/{other}/domains/{}/verify",
                claim.json["id"].as_str().unwrap()
            ),
            &other_admin,
            json!({}),
        )
        .await;
    assert_eq!((stolen.status, stolen.code()), (409, "domain_taken"));

    let duplicate = app
        .post(
            &domains,
            &admin,
            json!({"name": "service.acme-repairs.example"}),
        )
        .await;
    assert_eq!((duplicate.status, duplicate.code()), (409, "domain_exists"));
    let reserved = app
        .post(&domains, &admin, json!({"name": "other.portico.test"}))
        .await;
    assert_eq!((reserved.status, reserved.code()), (422, "reserved_domain"));
    let invalid = app
        .post(&domains, &admin, json!({"name": "not a domain"}))
        .await;
    assert_eq!(invalid.status, 422);

    assert_eq!(
        app.delete(&format!("{domains}/{id}"), &admin).await.status,
        204
    );
    assert_eq!(
        app.page("/", "service.acme-repairs.example").await.status,
        404,
        "deleted domains stop serving at once"
    );
    let audit = app
        .get(&format!("/api/v1/tenants/{tenant}/audit"), &admin)
        .await;
    let actions: Vec<&str> = audit.json["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert!(
        actions.ends_with(&["domain.create", "domain.verify", "domain.delete"]),
        "{actions:?}"
    );
}

async fn a_domain_whose_record_is_gone_stops_serving_after_a_grace_period(app: TestApp) {
    let (tenant, admin) = app.tenant_with_admin("acme").await;
    let domains = format!("/api/v1/tenants/{tenant}/domains");
    let added = app
        .post(&domains, &admin, json!({"name": "portal.acme.example"}))
        .await;
    let id = added.json["id"].as_str().unwrap().to_string();
    let record = "_portico-challenge.portal.acme.example";
    app.dns
        .set_txt(record, added.json["challenge_token"].as_str().unwrap());
    let verified = app
        .post(&format!("{domains}/{id}/verify"), &admin, json!({}))
        .await;
    assert_eq!(verified.json["status"], "verified", "{}", verified.text);

    // The periodic check, with the clock pinned: every 6 hours, 72 hours of grace.
    const HOUR: i64 = 3_600_000;
    let start = portico::db::now_ms();
    let check = async |hours: i64| {
        portico::domains::service::recheck_due(
            &app.state,
            start + hours * HOUR,
            6 * HOUR,
            72 * HOUR,
        )
        .await
        .unwrap()
    };
    assert_eq!(check(1).await, 0, "checked at verification, not due yet");
    assert_eq!(check(7).await, 1);
    let domain = app.get(&format!("{domains}/{id}"), &admin).await;
    assert_eq!(domain.json["problem"], serde_json::Value::Null);

    app.dns.clear_txt(record);
    assert_eq!(check(14).await, 1);
    let failing = app.get(&format!("{domains}/{id}"), &admin).await;
    assert_eq!(
        failing.json["status"], "verified",
        "within the grace period"
    );
    assert!(
        failing.json["problem"].as_str().unwrap().contains(record),
        "{}",
        failing.text
    );
    assert_eq!(app.page("/", "portal.acme.example").await.status, 200);

    check(14 + 73).await;
    let stopped = app.get(&format!("{domains}/{id}"), &admin).await;
    assert_eq!(stopped.json["status"], "pending", "{}", stopped.text);
    assert!(
        stopped.json["problem"]
            .as_str()
            .unwrap()
            .starts_with("stopped serving"),
        "{}",
        stopped.text
    );
    assert_eq!(app.page("/", "portal.acme.example").await.status, 404);
    let audit = app
        .get(&format!("/api/v1/tenants/{tenant}/audit?limit=100"), &admin)
        .await;
    assert!(audit.text.contains("domain.unverify"), "{}", audit.text);

    // Back in DNS and verified again: it serves, and the problem is gone.
    app.dns
        .set_txt(record, added.json["challenge_token"].as_str().unwrap());
    let again = app
        .post(&format!("{domains}/{id}/verify"), &admin, json!({}))
        .await;
    assert_eq!(again.json["status"], "verified");
    assert_eq!(again.json["problem"], serde_json::Value::Null);
    assert_eq!(app.page("/", "portal.acme.example").await.status, 200);
}

on_both_backends!(
    a_domain_serves_the_tenant_only_after_verification,
    a_domain_whose_record_is_gone_stops_serving_after_a_grace_period
);
