//! The built-in webhook channel: every tenant has it, idle until the tenant names a receiver,
//! grants its host and sets a secret; then each delivery is a POST that a Standard Webhooks
//! library accepts, and the receiver's answer decides the delivery error.

use std::sync::Arc;
use std::sync::atomic::{AtomicU16, Ordering};

use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use portico::config::Config;
use serde_json::{Value, json};
use standardwebhooks::Webhook;
use tokio::sync::mpsc;

use crate::on_both_backends;
use crate::support::TestApp;

/// The example secret of the Standard Webhooks specification.
const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

/// The receivers listen on loopback, over plain HTTP.
fn loopback_receivers(config: &mut Config) {
    config.plugins_allow_private_network = true;
    config.plugins_allow_http = true;
}

/// A webhook receiver on loopback: passes on what each POST brought and answers with `status`
/// (200 at first) and a JSON id.
struct Receiver {
    url: String,
    status: Arc<AtomicU16>,
    posts: mpsc::UnboundedReceiver<(HeaderMap, Bytes)>,
}

async fn receiver() -> Receiver {
    let (sender, posts) = mpsc::unbounded_channel();
    let status = Arc::new(AtomicU16::new(200));
    let answer = status.clone();
    let app = axum::Router::new().route(
        "/hook",
        post(move |headers: HeaderMap, body: Bytes| {
            let _ = sender.send((headers, body));
            let status = StatusCode::from_u16(answer.load(Ordering::SeqCst)).unwrap();
            async move { (status, axum::Json(json!({"id": "evt_1"}))) }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    Receiver { url, status, posts }
}

/// The path of the tenant's webhook install.
async fn webhook_install(app: &TestApp, tenant: &str, admin: &str) -> String {
    let installs = app
        .get(&format!("/api/v1/tenants/{tenant}/plugins"), admin)
        .await;
    let install = installs.json["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["plugin_id"] == "webhook")
        .unwrap_or_else(|| panic!("every tenant has the webhook channel: {}", installs.text));
    assert_eq!(
        install["grants"]["http_hosts"],
        json!([]),
        "no host until the tenant grants one"
    );
    format!(
        "/api/v1/tenants/{tenant}/plugins/{}",
        install["id"].as_str().unwrap()
    )
}

/// Delivers a message to a recipient with neither email nor phone; returns the run.
async fn deliver(app: &TestApp, install: &str, admin: &str, key: &str) -> Value {
    let input = json!({
        "recipient": {"name": "Eva", "language": "de"},
        "subject": "Your technician is on the way",
        "text": "Follow the visit on the tracking page.",
        "html": "<p>Follow the visit on the <a href=\"https://acme.example/t/x\">tracking page</a>.</p>",
        "links": {"tracking": "https://acme.example/t/x"}
    });
    let run = app
        .post(
            &format!("{install}/invoke"),
            admin,
            json!({"input": input, "idempotency_key": key}),
        )
        .await;
    assert_eq!(run.status, 200, "{}", run.text);
    run.json
}

fn delivery_error(run: &Value) -> &str {
    run["output"]["delivery_error"]["kind"]
        .as_str()
        .unwrap_or_else(|| panic!("a delivery error: {run}"))
}

async fn deliveries_are_signed_as_standard_webhooks(app: TestApp) {
    let (tenant, admin) = app.tenant_with_admin("acme").await;
    let install = webhook_install(&app, &tenant, &admin).await;
    let idle = deliver(&app, &install, &admin, "msg-0").await;
    assert_eq!(delivery_error(&idle), "configuration", "no URL yet: {idle}");

    let mut receiver = receiver().await;
    let any_host = app
        .patch(&install, &admin, json!({"grants": {"http_hosts": ["*"]}}))
        .await;
    assert_eq!(
        (any_host.status, any_host.code()),
        (422, "capability_not_requested"),
        "`*` is for the tenant to name, not to grant: {}",
        any_host.text
    );
    let configured = app
        .patch(
            &install,
            &admin,
            json!({"config": {"url": receiver.url, "headers": {"x-portal": "acme"}},
                   "secrets": {"signing_secret": SECRET, "authorization": "Bearer r3ceiver"}}),
        )
        .await;
    assert_eq!(configured.status, 200, "{}", configured.text);
    let ungranted = deliver(&app, &install, &admin, "msg-1").await;
    assert_eq!(
        ungranted["outcome"], "plugin_capability_denied",
        "{ungranted}"
    );
    let granted = app
        .patch(
            &install,
            &admin,
            json!({"grants": {"http_hosts": ["127.0.0.1"]}}),
        )
        .await;
    assert_eq!(granted.status, 200, "{}", granted.text);

    let run = deliver(&app, &install, &admin, "msg-1").await;
    assert_eq!(run["outcome"], "ok", "{run}");
    assert_eq!(
        run["output"]["delivery"],
        json!({"provider_id": "evt_1", "detail": "200"}),
        "the receiver's id"
    );
    let (headers, body) = receiver.posts.try_recv().expect("one POST arrived");
    // The library also refuses a timestamp more than five minutes from now: the channel's clock
    // is real.
    Webhook::new(SECRET)
        .unwrap()
        .verify(&body, &headers)
        .expect("a valid Standard Webhooks signature");
    let other = Webhook::new("whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD").unwrap();
    assert!(other.verify(&body, &headers).is_err(), "another key fails");
    assert_eq!(headers["webhook-id"], "msg-1", "the idempotency key");
    assert_eq!(headers["content-type"], "application/json");
    assert_eq!(headers["x-portal"], "acme", "the configured header");
    assert_eq!(
        headers["authorization"], "Bearer r3ceiver",
        "the secret header"
    );

    let body: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(body["type"], "notification.delivery");
    assert_eq!(
        body["data"],
        json!({
            "recipient": {"name": "Eva", "email": null, "phone": null, "language": "de"},
            "subject": "Your technician is on the way",
            "text": "Follow the visit on the tracking page.",
            "html": "<p>Follow the visit on the <a href=\"https://acme.example/t/x\">tracking page</a>.</p>",
            "links": {"tracking": "https://acme.example/t/x"}
        })
    );
    let timestamp: jiff::Timestamp = body["timestamp"].as_str().unwrap().parse().unwrap();
    assert_eq!(
        timestamp.as_second().to_string(),
        headers["webhook-timestamp"].to_str().unwrap(),
        "one time in the body and the signature"
    );
}

async fn receiver_answers_become_delivery_errors(app: TestApp) {
    let (tenant, admin) = app.tenant_with_admin("acme").await;
    let install = webhook_install(&app, &tenant, &admin).await;
    let receiver = receiver().await;
    let configure = |url: &str, secret: &str| {
        json!({"config": {"url": url}, "grants": {"http_hosts": ["127.0.0.1"]},
               "secrets": {"signing_secret": secret}})
    };
    let configured = app
        .patch(&install, &admin, configure(&receiver.url, SECRET))
        .await;
    assert_eq!(configured.status, 200, "{}", configured.text);
    for (status, kind) in [
        (500, "temporary"),
        (503, "temporary"),
        (429, "temporary"),
        (410, "rejected"),
        (422, "rejected"),
        (404, "rejected"),
        (401, "configuration"),
        (403, "configuration"),
    ] {
        receiver.status.store(status, Ordering::SeqCst);
        let run = deliver(&app, &install, &admin, "msg-1").await;
        assert_eq!(run["outcome"], "ok", "a delivery error is a result: {run}");
        assert_eq!(delivery_error(&run), kind, "{status}: {run}");
        assert_eq!(
            run["output"]["delivery_error"]["message"],
            format!("the receiver answered {status}")
        );
    }

    let closed = {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        format!("http://{}/hook", listener.local_addr().unwrap())
    };
    app.patch(&install, &admin, configure(&closed, SECRET))
        .await;
    let unreachable = deliver(&app, &install, &admin, "msg-2").await;
    assert_eq!(delivery_error(&unreachable), "temporary", "{unreachable}");

    // The key without its `whsec_` prefix.
    let bare = SECRET.trim_start_matches("whsec_");
    let changed = app
        .patch(&install, &admin, configure(&receiver.url, bare))
        .await;
    assert_eq!(changed.status, 200, "{}", changed.text);
    let misconfigured = deliver(&app, &install, &admin, "msg-3").await;
    assert_eq!(
        delivery_error(&misconfigured),
        "configuration",
        "{misconfigured}"
    );
    assert!(
        !misconfigured.to_string().contains(bare),
        "the secret is never quoted: {misconfigured}"
    );
}

on_both_backends!(
    configured(loopback_receivers):
    deliveries_are_signed_as_standard_webhooks,
    receiver_answers_become_delivery_errors
);
