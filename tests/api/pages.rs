//! Pages by Host header: tenant portals, unknown hosts, renamed tenants, forwarded hosts.

use serde_json::json;

use crate::on_both_backends;
use crate::support::{Backend, TestApp};

async fn hosts_map_to_tenants(app: TestApp) {
    let (tenant, _) = app.tenant_with_admin("acme").await;
    let home = app.page("/", "acme.portico.test").await;
    assert_eq!(home.status, 200);
    assert!(home.text.contains("<h1>acme Ltd</h1>"));
    assert!(home.text.contains("lang=\"de\""));
    assert_eq!(home.headers["x-content-type-options"], "nosniff");
    assert_eq!(home.headers["referrer-policy"], "no-referrer");
    assert!(
        home.headers["content-security-policy"]
            .to_str()
            .unwrap()
            .contains("default-src 'none'")
    );

    let unknown = app.page("/", "nobody.portico.test").await;
    assert_eq!(unknown.status, 404);
    assert!(unknown.text.contains("Page not found"));
    assert_eq!(
        app.page("/", "acme.portico.test.evil.example").await.status,
        404
    );
    assert_eq!(app.page("/", "deep.acme.portico.test").await.status, 404);
    assert_eq!(app.page("/missing", "acme.portico.test").await.status, 404);
    assert_eq!(
        app.page("/", "portico.test").await.status,
        200,
        "the platform's own page"
    );

    // Names are escaped, and a rename moves the portal at once (the host cache is invalidated).
    app.patch(
        &format!("/api/v1/tenants/{tenant}"),
        &app.platform_token,
        json!({"display_name": "<script>x</script>", "slug": "acme-new"}),
    )
    .await;
    let renamed = app.page("/", "acme-new.portico.test").await;
    assert!(renamed.text.contains("&lt;script&gt;"), "{}", renamed.text);
    assert!(!renamed.text.contains("<script>x"));
    assert_eq!(app.page("/", "acme.portico.test").await.status, 404);

    // Without a trusted proxy configured, X-Forwarded-Host is ignored.
    let forwarded = app
        .send(
            reqwest::Method::GET,
            "/",
            None,
            None,
            &[
                ("host", "nobody.portico.test"),
                ("x-forwarded-host", "acme-new.portico.test"),
            ],
        )
        .await;
    assert_eq!(forwarded.status, 404);
}

on_both_backends!(hosts_map_to_tenants);

#[tokio::test]
async fn forwarded_host_is_believed_only_from_a_trusted_proxy() {
    let app = TestApp::spawn_with(Backend::Sqlite, |config| {
        config.trusted_proxies = vec!["127.0.0.1".parse().unwrap()]
    })
    .await
    .unwrap();
    app.tenant_with_admin("acme").await;
    let forwarded = app
        .send(
            reqwest::Method::GET,
            "/",
            None,
            None,
            &[
                ("host", "internal:8080"),
                ("x-forwarded-host", "acme.portico.test"),
            ],
        )
        .await;
    assert_eq!(forwarded.status, 200, "{}", forwarded.text);
}
