//! The built-in SMS channel against gateways on loopback: a Twilio-compatible one (form body,
//! basic authentication, idempotency token) and a generic JSON one, the segment limit, the
//! gateway's answers as delivery errors, and an automated action that texts a short tracking
//! link that opens the ticket.

use std::time::Duration;

use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::routing::post;
use portico::config::Config;
use serde_json::{Value, json};
use tokio::sync::mpsc;

use crate::on_both_backends;
use crate::support::TestApp;

/// The gateways listen on loopback, over plain HTTP.
fn loopback_gateways(config: &mut Config) {
    config.plugins_allow_private_network = true;
    config.plugins_allow_http = true;
}

/// A gateway on loopback: passes on each request and answers with the given status and body.
struct Gateway {
    base: String,
    requests: mpsc::UnboundedReceiver<(Uri, HeaderMap, Bytes)>,
}

async fn gateway(status: u16, answer: Value) -> Gateway {
    let (sender, requests) = mpsc::unbounded_channel();
    let app =
        axum::Router::new().fallback(post(move |uri: Uri, headers: HeaderMap, body: Bytes| {
            let _ = sender.send((uri, headers, body));
            let answer = answer.clone();
            async move { (StatusCode::from_u16(status).unwrap(), axum::Json(answer)) }
        }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    Gateway { base, requests }
}

/// A Twilio-compatible gateway's configuration (the `auth_token` secret goes with it).
fn twilio(base: &str) -> Value {
    json!({"provider": "twilio", "url": base, "account_sid": "AC42", "from": "+4930123456"})
}

/// The tenant's SMS install, configured for `config` and `secrets`, its gateway granted.
async fn sms_install(
    app: &TestApp,
    tenant: &str,
    admin: &str,
    config: Value,
    secrets: Value,
) -> String {
    let id = app.install_of(tenant, admin, "sms").await;
    let install = format!("/api/v1/tenants/{tenant}/plugins/{id}");
    let configured = app
        .patch(
            &install,
            admin,
            json!({"config": config, "secrets": secrets, "grants": {"http_hosts": ["127.0.0.1"]}}),
        )
        .await;
    assert_eq!(configured.status, 200, "{}", configured.text);
    install
}

async fn text(app: &TestApp, install: &str, admin: &str, body: &str) -> Value {
    let run = app
        .post(
            &format!("{install}/invoke"),
            admin,
            json!({"input": {"recipient": {"name": "Eva", "phone": "+4915112345678", "language": "de"},
                "subject": "unused", "text": body}, "idempotency_key": "msg-1"}),
        )
        .await;
    assert_eq!(run.status, 200, "{}", run.text);
    run.json
}

fn form(body: &[u8]) -> Vec<(String, String)> {
    form_urlencoded::parse(body).into_owned().collect()
}

async fn a_twilio_gateway_gets_a_signed_in_form_once_per_message(app: TestApp) {
    let (tenant, admin) = app.tenant_with_admin("acme").await;
    let mut gateway = gateway(201, json!({"sid": "SM123", "status": "queued"})).await;
    let install = sms_install(
        &app,
        &tenant,
        &admin,
        twilio(&gateway.base),
        json!({"auth_token": "t0ken"}),
    )
    .await;
    let run = text(&app, &install, &admin, "Ihr Techniker ist unterwegs.").await;
    assert_eq!(
        run["output"]["delivery"],
        json!({"provider_id": "SM123", "detail": "1 segment (GSM-7)"}),
        "{run}"
    );
    let (uri, headers, body) = gateway.requests.try_recv().expect("one request");
    assert_eq!(uri.path(), "/2010-04-01/Accounts/AC42/Messages.json");
    // "AC42:t0ken", base64.
    assert_eq!(headers["authorization"], "Basic QUM0Mjp0MGtlbg==");
    assert_eq!(headers["i-twilio-idempotency-token"], "msg-1");
    assert_eq!(
        form(&body),
        [
            ("To".to_string(), "+4915112345678".to_string()),
            ("From".into(), "+4930123456".into()),
            ("Body".into(), "Ihr Techniker ist unterwegs.".into())
        ]
    );

    // Longer than the allowed segments: refused, not sent.
    app.patch(
        &install,
        &admin,
        json!({"config": {"provider": "twilio", "url": gateway.base, "account_sid": "AC42",
            "from": "+4930123456", "max_segments": 1}}),
    )
    .await;
    let long = text(&app, &install, &admin, &"Termin bestätigt. ".repeat(10)).await;
    assert_eq!(
        long["output"]["delivery_error"]["kind"], "rejected",
        "{long}"
    );
    assert!(
        long["output"]["delivery_error"]["message"]
            .as_str()
            .unwrap()
            .contains("2 segments (GSM-7)")
    );
    assert!(gateway.requests.try_recv().is_err(), "nothing was sent");
}

async fn gateway_answers_become_delivery_errors(app: TestApp) {
    let (tenant, admin) = app.tenant_with_admin("acme").await;
    for (status, answer, kind) in [
        (
            400,
            json!({"code": 21211, "message": "The 'To' number is not valid."}),
            "invalid_recipient",
        ),
        (
            401,
            json!({"code": 20003, "message": "Authenticate"}),
            "configuration",
        ),
        (429, json!({"message": "Too many requests"}), "temporary"),
        (503, json!({}), "temporary"),
        (
            400,
            json!({"code": 21602, "message": "Message body is required."}),
            "rejected",
        ),
    ] {
        let gateway = gateway(status, answer).await;
        let install = sms_install(
            &app,
            &tenant,
            &admin,
            twilio(&gateway.base),
            json!({"auth_token": "t0ken"}),
        )
        .await;
        let run = text(&app, &install, &admin, "Hallo").await;
        assert_eq!(
            run["output"]["delivery_error"]["kind"], kind,
            "{status}: {run}"
        );
        assert!(!run.to_string().contains("t0ken"), "the secret stays out");
    }
}

async fn a_generic_gateway_gets_json_with_its_own_field_names(app: TestApp) {
    let (tenant, admin) = app.tenant_with_admin("acme").await;
    let mut gateway = gateway(200, json!({"message_id": "g-7"})).await;
    let install = sms_install(
        &app,
        &tenant,
        &admin,
        json!({"provider": "generic", "url": format!("{}/send", gateway.base), "from": "ACME",
            "fields": {"to": "recipient", "text": "message"}}),
        json!({"api_key": "k3y"}),
    )
    .await;
    let run = text(&app, &install, &admin, "Ваш техник в пути").await;
    assert_eq!(
        run["output"]["delivery"],
        json!({"provider_id": "g-7", "detail": "1 segment (UCS-2)"}),
        "{run}"
    );
    let (uri, headers, body) = gateway.requests.try_recv().expect("one request");
    assert_eq!(uri.path(), "/send");
    assert_eq!(headers["authorization"], "Bearer k3y");
    assert_eq!(headers["idempotency-key"], "msg-1");
    let sent: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(
        sent,
        json!({"recipient": "+4915112345678", "message": "Ваш техник в пути", "from": "ACME"})
    );
}

async fn an_action_texts_a_short_link_that_opens_the_ticket(app: TestApp) {
    let (tenant, admin) = app.tenant_with_admin("acme").await;
    let mut gateway = gateway(201, json!({"sid": "SM9"})).await;
    let install = sms_install(
        &app,
        &tenant,
        &admin,
        twilio(&gateway.base),
        json!({"auth_token": "t0ken"}),
    )
    .await;
    let install_id = install.rsplit('/').next().unwrap();
    let project = app
        .post(
            &format!("/api/v1/tenants/{tenant}/projects"),
            &admin,
            json!({"name": "Printers"}),
        )
        .await;
    let action = app
        .post(
            &format!("/api/v1/tenants/{tenant}/automated-actions"),
            &admin,
            json!({"name": "Texts", "object": "ticket", "trigger": {"kind": "created"},
                "steps": [{"kind": "notify", "channel_install_id": install_id,
                    "to": ["affected_person"], "short_links": true,
                    "message": {"subject": "-", "html": "", "text": "Ihr Auftrag: {{ portal.tracking_link }}"}}]}),
        )
        .await;
    assert_eq!(action.status, 201, "{}", action.text);
    let created = app
        .post(
            &format!("/api/v1/tenants/{tenant}/tickets"),
            &admin,
            json!({"project_id": project.json["id"], "title": "Drucker",
                "contact": {"first_name": "Eva", "last_name": "Ek", "email": "eva@example.com", "mobile": "+49 151 1234-5678"}}),
        )
        .await;
    assert_eq!(created.status, 201, "{}", created.text);

    let (_, _, body) = tokio::time::timeout(Duration::from_secs(30), gateway.requests.recv())
        .await
        .expect("the gateway is called")
        .unwrap();
    let fields = form(&body);
    let to = &fields.iter().find(|(k, _)| k == "To").unwrap().1;
    assert_eq!(to, "+4915112345678", "the number as E.164");
    let text = &fields.iter().find(|(k, _)| k == "Body").unwrap().1;
    let link = text.strip_prefix("Ihr Auftrag: ").expect(text);
    let token = link.rsplit('/').next().unwrap();
    assert_eq!(token.len(), 22, "128 bits: {link}");
    let path = link.split("portico.test").nth(1).unwrap();
    let page = app.page(path, "acme.portico.test").await;
    assert_eq!(page.status, 200, "{}", page.text);
    assert!(page.text.contains("Drucker"));
}

on_both_backends!(
    configured(loopback_gateways):
    a_twilio_gateway_gets_a_signed_in_form_once_per_message,
    gateway_answers_become_delivery_errors,
    a_generic_gateway_gets_json_with_its_own_field_names,
    an_action_texts_a_short_link_that_opens_the_ticket,
);
