//! Automated actions: a ticket change triggers an action, its message is rendered from the
//! tenant's template, queued in the outbox and sent through the email channel plugin to a real
//! SMTP server on loopback, where a mail parser reads it as a mail client would.

use std::collections::HashSet;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use base64::Engine as _;

use mail_parser::{MessageParser, MimeHeaders};
use serde_json::{Value, json};

use crate::support::smtp::{Answer, SmtpSink};
use crate::support::{Backend, TestApp};
use crate::{for_both_backends, on_both_backends};

/// A tenant "acme" with a project; returns (tenant, admin token, project id, email install id).
async fn tenant_with_project(app: &TestApp, slug: &str) -> (String, String, String, String) {
    let (tenant, admin) = app.tenant_with_admin(slug).await;
    let project = app
        .post(
            &format!("/api/v1/tenants/{tenant}/projects"),
            &admin,
            json!({"name": "Printers"}),
        )
        .await;
    assert_eq!(project.status, 201, "{}", project.text);
    let email = app.install_of(&tenant, &admin, "email").await;
    let project = project.json["id"].as_str().unwrap().to_string();
    (tenant, admin, project, email)
}

/// A tenant "acme" whose action "Tracking links" emails the affected person of each ticket
/// created in its project; returns (tenant, admin token, project id, the action's id).
async fn tenant_with_tracking_links(app: &TestApp) -> (String, String, String, String) {
    let (tenant, admin, project, email) = tenant_with_project(app, "acme").await;
    let action = app
        .post(
            &format!("/api/v1/tenants/{tenant}/automated-actions"),
            &admin,
            tracking_links_action(&project, &email),
        )
        .await;
    assert_eq!(action.status, 201, "{}", action.text);
    let action = action.json["id"].as_str().unwrap().to_string();
    (tenant, admin, project, action)
}

/// "Tracking links": on a ticket created in `project`, email the affected person.
fn tracking_links_action(project: &str, email_install: &str) -> Value {
    json!({
        "name": "Tracking links",
        "object": "ticket",
        "trigger": {"kind": "created"},
        "conditions": {"match": "all_of", "rules": [
            {"field": "project_id", "operator": "equals", "value": project}
        ]},
        "steps": [{
            "kind": "notify",
            "channel_install_id": email_install,
            "to": ["affected_person"],
            "message": {
                "subject": "Auftrag {{ ticket.number }}: {{ ticket.title }}",
                "html": "<p>Hallo {{ person.first_name }},</p>\n<p>{{ ticket.title }}</p>\n<p><a href=\"{{ portal.tracking_link }}\">Auftrag verfolgen</a></p>"
            }
        }]
    })
}

async fn create_ticket(
    app: &TestApp,
    tenant: &str,
    admin: &str,
    project: &str,
    title: &str,
) -> String {
    let created = app
        .post(
            &format!("/api/v1/tenants/{tenant}/tickets"),
            admin,
            json!({"project_id": project, "title": title,
                "contact": {"first_name": "Eva", "last_name": "Schmidt", "email": "eva@example.com"}}),
        )
        .await;
    assert_eq!(created.status, 201, "{}", created.text);
    created.json["id"].as_str().unwrap().to_string()
}

/// How many links of the ticket open.
async fn live_links(app: &TestApp, ticket: &str) -> i64 {
    let (live,): (i64,) = sqlx::query_as(
        "SELECT COUNT(*) FROM tracking_links WHERE ticket_id = $1 AND revoked_at IS NULL",
    )
    .bind(ticket)
    .fetch_one(&app.state.db.pool)
    .await
    .unwrap();
    live
}

/// Polls the delivery log until `done` holds for its deliveries (up to 30 s).
async fn wait_for_log(
    app: &TestApp,
    tenant: &str,
    token: &str,
    done: impl Fn(&[Value]) -> bool,
) -> Vec<Value> {
    for _ in 0..300 {
        let log = app
            .get(
                &format!("/api/v1/tenants/{tenant}/deliveries?limit=200"),
                token,
            )
            .await;
        assert_eq!(log.status, 200, "{}", log.text);
        let items = log.json["items"].as_array().unwrap().clone();
        if done(&items) {
            return items;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the delivery log never reached the expected state");
}

async fn spawn_with_smtp(
    backend: Backend,
    sink: &SmtpSink,
    configure: impl FnOnce(&mut portico::config::Config),
) -> Option<TestApp> {
    TestApp::spawn_with(backend, |c| {
        c.smtp_server = Some(sink.address());
        c.smtp_from = "portal@acme.example".into();
        configure(c);
    })
    .await
}

async fn a_new_ticket_emails_the_affected_person_a_working_tracking_link(backend: Backend) {
    let sink = SmtpSink::start().await;
    let Some(app) = spawn_with_smtp(backend, &sink, |_| {}).await else {
        return;
    };
    let (tenant, admin, project, email) = tenant_with_project(&app, "acme").await;
    let other_project = app
        .post(
            &format!("/api/v1/tenants/{tenant}/projects"),
            &admin,
            json!({"name": "Copiers"}),
        )
        .await;
    let action = app
        .post(
            &format!("/api/v1/tenants/{tenant}/automated-actions"),
            &admin,
            tracking_links_action(&project, &email),
        )
        .await;
    assert_eq!(action.status, 201, "{}", action.text);

    let title = "Drucker <Fach 2> – Störung";
    create_ticket(&app, &tenant, &admin, &project, title).await;
    let other = other_project.json["id"].as_str().unwrap();
    create_ticket(&app, &tenant, &admin, other, "Not in the project").await;

    let received = sink.wait_for(1).await;
    let message = MessageParser::default()
        .parse(&received[0].data)
        .expect("a parseable message");
    assert_eq!(received[0].recipients, ["eva@example.com"]);
    assert_eq!(
        message.subject(),
        Some(format!("Auftrag 1: {title}").as_str())
    );
    let raw = String::from_utf8_lossy(&received[0].data);
    let subject_line = raw.lines().find(|l| l.starts_with("Subject:")).unwrap();
    assert!(subject_line.is_ascii(), "encoded: {subject_line}");
    assert!(message.message_id().is_some_and(|id| !id.is_empty()));
    assert!(message.date().is_some());
    assert_eq!(
        message
            .from()
            .and_then(|f| f.first())
            .and_then(|a| a.address()),
        Some("portal@acme.example")
    );
    let content_type = message.content_type().unwrap();
    assert_eq!(
        (content_type.ctype(), content_type.subtype()),
        ("multipart", Some("alternative"))
    );
    let html = message.body_html(0).unwrap();
    assert!(html.contains("Hallo Eva"), "{html}");
    assert!(
        html.contains("Drucker &lt;Fach 2&gt; – Störung"),
        "escaped in HTML: {html}"
    );
    let html_part = message.html_part(0).unwrap();
    assert_eq!(
        html_part
            .content_type()
            .and_then(|c| c.attribute("charset")),
        Some("utf-8")
    );
    let text = message.body_text(0).unwrap();
    assert!(
        text.contains("Drucker <Fach 2> – Störung"),
        "plain in text: {text}"
    );

    // The link in the email opens the ticket's tracking page.
    let link = text
        .split_whitespace()
        .find(|w| w.contains("/t/"))
        .expect("a tracking link in the text part");
    let path = link.split("portico.test").nth(1).unwrap();
    let page = app.page(path, "acme.portico.test").await;
    assert_eq!(page.status, 200, "{}", page.text);
    assert!(
        page.text.contains("Drucker &lt;Fach 2&gt;"),
        "{}",
        page.text
    );

    let log = wait_for_log(&app, &tenant, &admin, |items| {
        items.first().is_some_and(|d| d["status"] == "sent")
    })
    .await;
    assert_eq!(log.len(), 1, "only the ticket in the project: {log:?}");
    assert_eq!(log[0]["to"], "eva@example.com");
    assert_eq!(log[0]["attempts"], 1);
    assert_eq!(log[0]["action_id"], action.json["id"]);
    let one = app
        .get(
            &format!(
                "/api/v1/tenants/{tenant}/deliveries/{}",
                log[0]["id"].as_str().unwrap()
            ),
            &admin,
        )
        .await;
    let stored = one.json["message"]["html"].as_str().unwrap();
    assert!(
        stored.contains("[tracking link, issued when sent]"),
        "{stored}"
    );
    assert!(!stored.contains(path), "the token is not stored");

    // Exactly once: nothing more arrives.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(sink.received().len(), 1);
}

async fn a_template_with_an_unknown_placeholder_is_refused_with_its_position(app: TestApp) {
    let (tenant, admin, project, email) = tenant_with_project(&app, "acme").await;
    let mut action = tracking_links_action(&project, &email);
    action["steps"][0]["message"]["html"] = json!("<p>Hallo</p>\n<p>{{ ticket.numbr }}</p>");
    let refused = app
        .post(
            &format!("/api/v1/tenants/{tenant}/automated-actions"),
            &admin,
            action,
        )
        .await;
    assert_eq!(refused.status, 422, "{}", refused.text);
    assert_eq!(refused.code(), "unknown_placeholder");
    assert_eq!(refused.json["position"], json!({"line": 2, "column": 7}));

    let broken = app
        .post(
            &format!("/api/v1/tenants/{tenant}/message-templates"),
            &admin,
            json!({"name": "welcome", "language": "de", "subject": "Hallo",
                "html": "<p>ok</p>\n<p>{% if ticket.title %}open</p>"}),
        )
        .await;
    assert_eq!(broken.status, 422, "{}", broken.text);
    assert_eq!(broken.code(), "invalid_template");
    assert_eq!(broken.json["position"]["line"], 2, "{}", broken.text);

    let audit = app
        .get(&format!("/api/v1/tenants/{tenant}/audit"), &admin)
        .await;
    assert!(
        !audit.text.contains("automated_action.create"),
        "nothing saved"
    );
}

async fn templates_are_chosen_by_language_and_previewed_without_sending(app: TestApp) {
    let (tenant, admin, project, email) = tenant_with_project(&app, "acme").await;
    let mut templates = Vec::new();
    for (language, greeting) in [("en", "Hello"), ("de", "Hallo")] {
        let created = app
            .post(
                &format!("/api/v1/tenants/{tenant}/message-templates"),
                &admin,
                json!({"name": "welcome", "language": language,
                    "subject": "{{ tenant.name }}: {{ ticket.title }}",
                    "html": format!("<p>{greeting} {{{{ person.first_name }}}}</p><a href=\"{{{{ portal.tracking_link }}}}\">go</a>")}),
            )
            .await;
        assert_eq!(created.status, 201, "{}", created.text);
        templates.push(format!(
            "/api/v1/tenants/{tenant}/message-templates/{}",
            created.json["id"].as_str().unwrap()
        ));
    }
    let mut action = tracking_links_action(&project, &email);
    action["steps"][0]["message"] = json!({"template": "welcome"});
    action["active"] = json!(false);
    let action = app
        .post(
            &format!("/api/v1/tenants/{tenant}/automated-actions"),
            &admin,
            action,
        )
        .await;
    assert_eq!(action.status, 201, "{}", action.text);
    let ticket = create_ticket(&app, &tenant, &admin, &project, "Paper jam").await;

    let preview = app
        .post(
            &format!(
                "/api/v1/tenants/{tenant}/automated-actions/{}/preview",
                action.json["id"].as_str().unwrap()
            ),
            &admin,
            json!({"ticket_id": ticket}),
        )
        .await;
    assert_eq!(preview.status, 200, "{}", preview.text);
    let message = &preview.json[0]["message"];
    assert_eq!(message["subject"], "acme Ltd: Paper jam");
    let html = message["html"].as_str().unwrap();
    assert!(
        html.contains("Hallo Eva"),
        "the tenant's language (de): {html}"
    );
    assert!(html.contains("preview-link"), "{html}");
    assert_eq!(preview.json[0]["to"], "eva@example.com");

    let log = app
        .get(&format!("/api/v1/tenants/{tenant}/deliveries"), &admin)
        .await;
    assert_eq!(log.json["items"], json!([]), "a preview sends nothing");

    // An active action's template keeps at least one language.
    let activated = app
        .patch(
            &format!(
                "/api/v1/tenants/{tenant}/automated-actions/{}",
                action.json["id"].as_str().unwrap()
            ),
            &admin,
            json!({"active": true}),
        )
        .await;
    assert_eq!(activated.status, 200, "{}", activated.text);
    assert_eq!(app.delete(&templates[0], &admin).await.status, 204);
    let last = app.delete(&templates[1], &admin).await;
    assert_eq!(
        (last.status, last.code()),
        (409, "template_in_use"),
        "{}",
        last.text
    );
}

async fn a_refused_recipient_is_not_retried_and_an_admin_can_retry_it(backend: Backend) {
    let sink = SmtpSink::start().await;
    let Some(app) = spawn_with_smtp(backend, &sink, |c| c.deliveries.retry_base_ms = 20).await
    else {
        return;
    };
    let (tenant, admin, project, action) = tenant_with_tracking_links(&app).await;
    sink.answer_next(&[Answer::Refuse]);
    let ticket = create_ticket(&app, &tenant, &admin, &project, "Paper jam").await;

    let log = wait_for_log(&app, &tenant, &admin, |items| {
        items.first().is_some_and(|d| d["status"] == "dead")
    })
    .await;
    assert_eq!(log[0]["attempts"], 1, "a permanent failure is not retried");
    assert_eq!(log[0]["action_id"], action);
    let error = log[0]["last_error"].as_str().unwrap();
    assert!(error.starts_with("rejected"), "{error}");
    tokio::time::sleep(Duration::from_millis(500)).await;
    let id = log[0]["id"].as_str().unwrap();
    let still = app
        .get(&format!("/api/v1/tenants/{tenant}/deliveries/{id}"), &admin)
        .await;
    assert_eq!(still.json["attempts"], 1);
    assert_eq!(still.json["status"], "dead");
    assert_eq!(
        live_links(&app, &ticket).await,
        1,
        "only the ticket's own link: the refused message's link is revoked"
    );

    let retried = app
        .post(
            &format!("/api/v1/tenants/{tenant}/deliveries/{id}/retry"),
            &admin,
            json!({}),
        )
        .await;
    assert_eq!(retried.status, 202, "{}", retried.text);
    let again = app
        .post(
            &format!("/api/v1/tenants/{tenant}/deliveries/{id}/retry"),
            &admin,
            json!({}),
        )
        .await;
    assert!(
        again.status == 409 || again.json["status"] == "pending",
        "{}",
        again.text
    );
    wait_for_log(&app, &tenant, &admin, |items| {
        items.first().is_some_and(|d| d["status"] == "sent")
    })
    .await;
    assert_eq!(sink.wait_for(1).await.len(), 1);
}

async fn passing_failures_are_retried_until_they_succeed(backend: Backend) {
    let sink = SmtpSink::start().await;
    let Some(app) = spawn_with_smtp(backend, &sink, |c| c.deliveries.retry_base_ms = 50).await
    else {
        return;
    };
    let (tenant, admin, project, _) = tenant_with_tracking_links(&app).await;
    sink.answer_next(&[Answer::Defer, Answer::Defer]);
    let ticket = create_ticket(&app, &tenant, &admin, &project, "Paper jam").await;
    let log = wait_for_log(&app, &tenant, &admin, |items| {
        items.first().is_some_and(|d| d["status"] == "sent")
    })
    .await;
    assert_eq!(log[0]["attempts"], 3, "{:?}", log[0]);
    assert_eq!(sink.received().len(), 1);
    assert_eq!(
        live_links(&app, &ticket).await,
        2,
        "the ticket's own link and the sent message's; the deferred attempts' are revoked"
    );
}

async fn the_sending_limit_holds_deliveries_back_without_losing_them(backend: Backend) {
    let sink = SmtpSink::start().await;
    let Some(app) = spawn_with_smtp(backend, &sink, |c| c.deliveries.per_minute = 1).await else {
        return;
    };
    let (tenant, admin, project, action) = tenant_with_tracking_links(&app).await;
    create_ticket(&app, &tenant, &admin, &project, "First").await;
    sink.wait_for(1).await;
    let second = create_ticket(&app, &tenant, &admin, &project, "Second").await;
    let log = wait_for_log(&app, &tenant, &admin, |items| {
        items.len() == 2
            && items.iter().any(|d| {
                d["status"] == "pending"
                    && d["last_error"]
                        .as_str()
                        .is_some_and(|e| e.contains("sending limit"))
            })
    })
    .await;
    let waiting = log.iter().find(|d| d["status"] == "pending").unwrap();
    assert_eq!(waiting["attempts"], 0, "waiting is not a failed attempt");
    assert_eq!(sink.received().len(), 1);

    let test_send = app
        .post(
            &format!("/api/v1/tenants/{tenant}/automated-actions/{action}/test-send"),
            &admin,
            json!({"ticket_id": second, "to": "office@acme.example"}),
        )
        .await;
    assert_eq!(test_send.status, 429, "{}", test_send.text);
    assert_eq!(test_send.code(), "sending_limit_reached");
    assert!(test_send.headers.contains_key("retry-after"));
}

async fn viewers_see_the_log_with_addresses_masked(app: TestApp) {
    let (tenant, admin, project, action) = tenant_with_tracking_links(&app).await;
    let ticket = create_ticket(&app, &tenant, &admin, &project, "Paper jam").await;
    let sent = app
        .post(
            &format!("/api/v1/tenants/{tenant}/automated-actions/{action}/test-send"),
            &admin,
            json!({"ticket_id": ticket, "to": "office@acme.example"}),
        )
        .await;
    assert_eq!(sent.status, 202, "{}", sent.text);
    let (_, viewer) = app.staff(&tenant, "viewer@acme.example", &["viewer"]).await;
    let log = wait_for_log(&app, &tenant, &viewer, |items| items.len() >= 2).await;
    assert!(
        log.iter()
            .all(|d| d["to"].as_str().unwrap().contains("***@")),
        "{log:?}"
    );
    let id = log[0]["id"].as_str().unwrap();
    let one = app
        .get(
            &format!("/api/v1/tenants/{tenant}/deliveries/{id}"),
            &viewer,
        )
        .await;
    assert_eq!(one.json["message"], Value::Null, "{}", one.text);
    let retry = app
        .post(
            &format!("/api/v1/tenants/{tenant}/deliveries/{id}/retry"),
            &viewer,
            json!({}),
        )
        .await;
    assert_eq!(retry.status, 403);
}

async fn another_tenants_actions_templates_and_deliveries_are_unreachable(app: TestApp) {
    let (acme, acme_admin, project, acme_email) = tenant_with_project(&app, "acme").await;
    let (globex, globex_admin, globex_project, _) = tenant_with_project(&app, "globex").await;
    let action = app
        .post(
            &format!("/api/v1/tenants/{acme}/automated-actions"),
            &acme_admin,
            tracking_links_action(&project, &acme_email),
        )
        .await;
    let action = action.json["id"].as_str().unwrap().to_string();
    let template = app
        .post(
            &format!("/api/v1/tenants/{acme}/message-templates"),
            &acme_admin,
            json!({"name": "welcome", "language": "de", "subject": "Hi", "html": "<p>Hi</p>"}),
        )
        .await;
    let template = template.json["id"].as_str().unwrap().to_string();
    let ticket = create_ticket(&app, &acme, &acme_admin, &project, "Paper jam").await;
    let delivery = wait_for_log(&app, &acme, &acme_admin, |items| !items.is_empty()).await[0]["id"]
        .as_str()
        .unwrap()
        .to_string();

    // Through globex's own routes, acme's things do not exist.
    for path in [
        format!("/api/v1/tenants/{globex}/automated-actions/{action}"),
        format!("/api/v1/tenants/{globex}/message-templates/{template}"),
        format!("/api/v1/tenants/{globex}/deliveries/{delivery}"),
    ] {
        assert_eq!(app.get(&path, &globex_admin).await.status, 404, "{path}");
        assert_eq!(
            app.patch(&path, &globex_admin, json!({})).await.status,
            if path.contains("deliveries") {
                405
            } else {
                404
            },
            "{path}"
        );
    }
    assert_eq!(
        app.delete(
            &format!("/api/v1/tenants/{globex}/automated-actions/{action}"),
            &globex_admin
        )
        .await
        .status,
        404
    );
    let retry = app
        .post(
            &format!("/api/v1/tenants/{globex}/deliveries/{delivery}/retry"),
            &globex_admin,
            json!({}),
        )
        .await;
    assert_eq!(retry.status, 404);
    let preview = app
        .post(
            &format!("/api/v1/tenants/{globex}/automated-actions/{action}/preview"),
            &globex_admin,
            json!({"ticket_id": ticket}),
        )
        .await;
    assert_eq!(preview.status, 404);
    // Through acme's routes, globex's token is refused.
    for path in [
        format!("/api/v1/tenants/{acme}/automated-actions"),
        format!("/api/v1/tenants/{acme}/message-templates"),
        format!("/api/v1/tenants/{acme}/deliveries"),
    ] {
        assert_eq!(app.get(&path, &globex_admin).await.status, 403, "{path}");
    }
    // Another tenant's channel install cannot be named in an action.
    let borrowed = app
        .post(
            &format!("/api/v1/tenants/{globex}/automated-actions"),
            &globex_admin,
            tracking_links_action(&globex_project, &acme_email),
        )
        .await;
    assert_eq!(borrowed.status, 422, "{}", borrowed.text);
    assert_eq!(borrowed.code(), "unknown_install");
    // A globex action's test send to an acme ticket finds no ticket.
    let own = app
        .post(
            &format!("/api/v1/tenants/{globex}/automated-actions"),
            &globex_admin,
            json!({"name": "Mine", "object": "ticket", "trigger": {"kind": "created"},
                "steps": [{"kind": "notify", "channel_install_id": app.install_of(&globex, &globex_admin, "email").await,
                    "to": ["affected_person"], "message": {"subject": "Hi", "html": "<p>Hi</p>"}}]}),
        )
        .await;
    assert_eq!(own.status, 201, "{}", own.text);
    let crossed = app
        .post(
            &format!(
                "/api/v1/tenants/{globex}/automated-actions/{}/test-send",
                own.json["id"].as_str().unwrap()
            ),
            &globex_admin,
            json!({"ticket_id": ticket, "to": "x@globex.example"}),
        )
        .await;
    assert_eq!(crossed.status, 404, "{}", crossed.text);
}

async fn a_notice_appears_on_the_tracking_page_when_the_step_is_reached(app: TestApp) {
    let (tenant, admin, project, _) = tenant_with_project(&app, "acme").await;
    let action = app
        .post(
            &format!("/api/v1/tenants/{tenant}/automated-actions"),
            &admin,
            json!({"name": "Dispatch info", "object": "ticket",
                "trigger": {"kind": "status_changed", "to": "dispatched"},
                "steps": [{"kind": "portal_notice",
                    "text": "Wir bringen Ersatzteile für {{ ticket.title }} mit."}]}),
        )
        .await;
    assert_eq!(action.status, 201, "{}", action.text);
    let created = app
        .post(
            &format!("/api/v1/tenants/{tenant}/tickets"),
            &admin,
            json!({"project_id": project, "title": "Drucker <Fach 2>",
                "contact": {"first_name": "Eva", "last_name": "Schmidt", "email": "eva@example.com"}}),
        )
        .await;
    let ticket = created.json["id"].as_str().unwrap();
    let url = created.json["tracking_url"].as_str().unwrap();
    let path = url.split("portico.test").nth(1).unwrap();
    let ticket_path = format!("/api/v1/tenants/{tenant}/tickets/{ticket}");
    let moved = app
        .post(
            &format!("{ticket_path}/status"),
            &admin,
            json!({"status": "scheduling"}),
        )
        .await;
    assert_eq!(moved.status, 200, "{}", moved.text);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let untouched = app.get(&ticket_path, &admin).await;
    assert_eq!(untouched.json["notices"], json!([]), "only on dispatched");

    app.post(
        &format!("{ticket_path}/status"),
        &admin,
        json!({"status": "dispatched"}),
    )
    .await;
    let mut notices = Value::Null;
    for _ in 0..100 {
        notices = app.get(&ticket_path, &admin).await.json["notices"].clone();
        if notices.as_array().is_some_and(|n| !n.is_empty()) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        notices[0]["text"],
        "Wir bringen Ersatzteile für Drucker <Fach 2> mit."
    );
    let notice = "Wir bringen Ersatzteile für Drucker &lt;Fach 2&gt; mit.";
    let page = app.page(path, "acme.portico.test").await;
    assert!(page.text.contains(notice), "{}", page.text);

    // The themes show it too.
    let profiles = app
        .get(&format!("/api/v1/tenants/{tenant}/portal-profiles"), &admin)
        .await;
    let profile = profiles.json["items"][0]["id"].as_str().unwrap();
    for theme in ["harbour", "signal"] {
        let install = app.install_of(&tenant, &admin, theme).await;
        let themed = app
            .patch(
                &format!("/api/v1/tenants/{tenant}/portal-profiles/{profile}"),
                &admin,
                json!({"theme_install_id": install}),
            )
            .await;
        assert_eq!(themed.status, 200, "{}", themed.text);
        let page = app.page(path, "acme.portico.test").await;
        assert!(page.text.contains(notice), "{theme}: {}", page.text);
        assert!(page.text.contains("id=\"notices\""), "{theme}");
    }
}

async fn the_demo_emails_a_tracking_link_for_a_new_ticket(backend: Backend) {
    let sink = SmtpSink::start().await;
    let Some(app) = spawn_with_smtp(backend, &sink, |_| {}).await else {
        return;
    };
    portico::demo::set_up(&app.state, &app.base_url)
        .await
        .unwrap();
    let demo = "/api/v1/tenants/easy-printer";
    let projects = app
        .get(&format!("{demo}/projects"), &app.platform_token)
        .await;
    let project = projects.json["items"][0]["id"].as_str().unwrap();
    let created = app
        .post(
            &format!("{demo}/tickets"),
            &app.platform_token,
            json!({"project_id": project, "title": "Scanner offline",
                "contact": {"first_name": "Mia", "last_name": "Klein", "email": "mia@customer.example"}}),
        )
        .await;
    assert_eq!(created.status, 201, "{}", created.text);

    // The demo's five tickets were emailed too, as their action came first.
    let received = sink.wait_for(6).await;
    let mia = received
        .iter()
        .find(|m| m.recipients == ["mia@customer.example"])
        .expect("an email to the new ticket's contact");
    let message = MessageParser::default().parse(&mia.data).unwrap();
    let text = message.body_text(0).unwrap();
    let link = text
        .split_whitespace()
        .find(|w| w.contains("/t/"))
        .expect("a tracking link");
    let path = link.split("portico.test").nth(1).unwrap();
    let page = app.page(path, "easy-printer.portico.test").await;
    assert_eq!(page.status, 200);
    assert!(page.text.contains("Scanner offline"));
    wait_for_log(&app, "easy-printer", &app.platform_token, |items| {
        items.len() == 6 && items.iter().all(|d| d["status"] == "sent")
    })
    .await;
}

async fn a_reminder_goes_out_once_per_appointment_time(backend: Backend) {
    let sink = SmtpSink::start().await;
    let Some(app) = spawn_with_smtp(backend, &sink, |c| c.time_trigger_interval_ms = 100).await
    else {
        return;
    };
    let (tenant, admin, project, email) = tenant_with_project(&app, "acme").await;
    let action = app
        .post(
            &format!("/api/v1/tenants/{tenant}/automated-actions"),
            &admin,
            json!({"name": "Reminder", "object": "ticket",
                "trigger": {"kind": "before_appointment", "minutes": 60},
                "steps": [{"kind": "notify", "channel_install_id": email, "to": ["affected_person"],
                    "message": {"subject": "Ihr Termin um {{ ticket.appointment.start_time }}",
                        "html": "<p>Bis gleich, {{ person.first_name }}.</p>"}}]}),
        )
        .await;
    assert_eq!(action.status, 201, "{}", action.text);
    let book = async |ticket: &str, minutes_ahead: i64| {
        let start = jiff::Timestamp::now() + jiff::SignedDuration::from_mins(minutes_ahead);
        let end = start + jiff::SignedDuration::from_hours(1);
        let booked = app
            .patch(
                &format!("/api/v1/tenants/{tenant}/tickets/{ticket}"),
                &admin,
                json!({"appointment": {"start": start.to_string(), "end": end.to_string()}}),
            )
            .await;
        assert_eq!(booked.status, 200, "{}", booked.text);
        start
            .to_zoned(jiff::tz::TimeZone::get("Europe/Berlin").unwrap())
            .strftime("%H:%M")
            .to_string()
    };
    let soon = create_ticket(&app, &tenant, &admin, &project, "Soon").await;
    let later = create_ticket(&app, &tenant, &admin, &project, "Later").await;
    book(&later, 180).await;
    let first_time = book(&soon, 30).await;

    let received = sink.wait_for(1).await;
    let subject = |i: usize| {
        MessageParser::default()
            .parse(&sink.received()[i].data)
            .unwrap()
            .subject()
            .unwrap()
            .to_string()
    };
    assert_eq!(subject(0), format!("Ihr Termin um {first_time}"));
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(
        sink.received().len(),
        1,
        "once per appointment time: {received:?}"
    );

    // Moved: a new appointment time, a new reminder.
    let second_time = book(&soon, 45).await;
    sink.wait_for(2).await;
    assert_eq!(subject(1), format!("Ihr Termin um {second_time}"));
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(
        sink.received().len(),
        2,
        "the later appointment is not due yet"
    );
}

async fn an_appointment_change_triggers_its_field_changed_action(app: TestApp) {
    let (tenant, admin, project, _) = tenant_with_project(&app, "acme").await;
    let action = |field: &str| {
        json!({"name": format!("On {field}"), "object": "ticket",
            "trigger": {"kind": "field_changed", "field": field},
            "steps": [{"kind": "portal_notice", "text": "Neuer Termin: {{ ticket.appointment.date }}"}]})
    };
    let actions = format!("/api/v1/tenants/{tenant}/automated-actions");
    let column = app
        .post(&actions, &admin, action("appointment_start"))
        .await;
    assert_eq!(column.status, 422, "{}", column.text);
    assert_eq!(column.code(), "invalid_trigger");
    let created = app.post(&actions, &admin, action("appointment")).await;
    assert_eq!(created.status, 201, "{}", created.text);

    let ticket = create_ticket(&app, &tenant, &admin, &project, "Paper jam").await;
    let ticket_path = format!("/api/v1/tenants/{tenant}/tickets/{ticket}");
    app.patch(&ticket_path, &admin, json!({"title": "Paper jam, tray 2"}))
        .await;
    app.patch(
        &ticket_path,
        &admin,
        json!({"appointment": {"start": "2030-05-06T08:00:00Z", "end": "2030-05-06T10:00:00Z"}}),
    )
    .await;
    let mut notices = Value::Null;
    for _ in 0..100 {
        notices = app.get(&ticket_path, &admin).await.json["notices"].clone();
        if notices.as_array().is_some_and(|n| !n.is_empty()) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        notices,
        json!([{"text": "Neuer Termin: 2030-05-06", "at": notices[0]["at"]}]),
        "one notice, for the appointment and not the title"
    );
}

async fn a_tenant_relay_sends_as_the_tenant_and_signs_with_its_key(backend: Backend) {
    let host_server = SmtpSink::start().await;
    let relay = SmtpSink::start().await;
    // The relay is on loopback, so the operator must allow private destinations.
    let Some(app) = spawn_with_smtp(backend, &host_server, |c| {
        c.plugins_allow_private_network = true
    })
    .await
    else {
        return;
    };
    let (tenant, admin, project, _) = tenant_with_tracking_links(&app).await;
    let email = app.install_of(&tenant, &admin, "email").await;
    let seed = base64::engine::general_purpose::STANDARD.encode([7u8; 32]);
    let configured = app
        .patch(
            &format!("/api/v1/tenants/{tenant}/plugins/{email}"),
            &admin,
            json!({"config": {"from": "service@acme.example",
                    "smtp": {"host": "127.0.0.1", "port": relay.port, "security": "none", "username": "acme"},
                    "dkim": {"domain": "acme.example", "selector": "portal", "algorithm": "ed25519"}},
                "secrets": {"smtp_password": "s3cret", "dkim_private_key": seed}}),
        )
        .await;
    assert_eq!(configured.status, 200, "{}", configured.text);
    create_ticket(&app, &tenant, &admin, &project, "Paper jam").await;

    let received = relay.wait_for(1).await;
    assert!(
        host_server.received().is_empty(),
        "not through the host's server"
    );
    // `AUTH PLAIN` with "\0acme\0s3cret".
    assert_eq!(relay.auth(), ["AUTH PLAIN AGFjbWUAczNjcmV0"]);
    let message = MessageParser::default().parse(&received[0].data).unwrap();
    assert_eq!(
        message
            .from()
            .and_then(|f| f.first())
            .and_then(|a| a.address()),
        Some("service@acme.example")
    );
    let signature = message
        .header_raw("DKIM-Signature")
        .expect("a DKIM signature")
        .to_string();
    for tag in ["a=ed25519-sha256", "d=acme.example", "s=portal"] {
        assert!(signature.contains(tag), "{tag} in {signature}");
    }
}

async fn a_permanent_failure_falls_back_to_the_second_channel(backend: Backend) {
    let sink = SmtpSink::start().await;
    let Some(app) = spawn_with_smtp(backend, &sink, |_| {}).await else {
        return;
    };
    let (tenant, admin, project, email) = tenant_with_project(&app, "acme").await;
    // The SMS channel is not configured: a permanent `configuration` failure.
    let sms = app.install_of(&tenant, &admin, "sms").await;
    let action = app
        .post(
            &format!("/api/v1/tenants/{tenant}/automated-actions"),
            &admin,
            json!({"name": "Text, else email", "object": "ticket", "trigger": {"kind": "created"},
                "steps": [{"kind": "notify", "channel_install_id": sms, "fallback_install_id": email,
                    "to": ["affected_person"],
                    "message": {"subject": "Auftrag {{ ticket.number }}", "html": "<p>{{ portal.tracking_link }}</p>"}}]}),
        )
        .await;
    assert_eq!(action.status, 201, "{}", action.text);
    create_ticket(&app, &tenant, &admin, &project, "Paper jam").await;

    let received = sink.wait_for(1).await;
    assert_eq!(received[0].recipients, ["eva@example.com"]);
    let log = wait_for_log(&app, &tenant, &admin, |items| {
        items.first().is_some_and(|d| d["status"] == "sent")
    })
    .await;
    assert_eq!(log[0]["channel_install_id"], sms);
    assert_eq!(log[0]["sent_via"], email, "through the fallback");
    assert_eq!(log[0]["attempts"], 1);
}

/// `portico serve` in a process of its own on the test's database and data folder.
fn start_host(app: &TestApp, config: &Path) -> Child {
    Command::new(env!("CARGO_BIN_EXE_portico"))
        .arg("--config")
        .arg(config)
        .arg("serve")
        .envs(app.database_env())
        .env("PORTICO_DATA_DIR", &app.state.config.data_dir)
        .env("PORTICO_SECRET_KEY", crate::support::TEST_SECRET_KEY)
        .env("PORTICO_LISTEN", "127.0.0.1:0")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("starting portico")
}

async fn a_host_killed_mid_send_loses_no_delivery(backend: Backend) {
    let sink = SmtpSink::start().await;
    sink.slow(Duration::from_millis(40));
    // This process only takes the API calls; the hosts it starts and kills do the sending.
    let Some(app) = spawn_with_smtp(backend, &sink, |c| c.background_workers = false).await else {
        return;
    };
    let (tenant, admin, project, _) = tenant_with_tracking_links(&app).await;
    const TICKETS: usize = 100;
    for i in 0..TICKETS {
        let created = app
            .post(
                &format!("/api/v1/tenants/{tenant}/tickets"),
                &admin,
                json!({"project_id": project, "title": format!("Ticket {i}"),
                    "contact": {"first_name": "P", "last_name": "Q", "email": format!("person{i}@example.com")}}),
            )
            .await;
        assert_eq!(created.status, 201, "{}", created.text);
    }
    let config = app.state.config.data_dir.join("sender.toml");
    std::fs::write(
        &config,
        format!(
            "smtp_server = \"{}\"\nsmtp_from = \"portal@acme.example\"\nbase_domain = \"portico.test\"\npublic_url = \"http://portico.test\"\n[deliveries]\nlease_ms = 500\nretry_base_ms = 50\n",
            sink.address()
        ),
    )
    .unwrap();

    // Kill the sending host (SIGKILL) a few times while messages are on the wire.
    let mut kills = 0;
    while kills < 6 && sink.received().len() < TICKETS - 10 {
        let before = sink.received().len();
        let target = before + rand::random_range(2..12);
        let mut host = start_host(&app, &config);
        for _ in 0..600 {
            if sink.received().len() >= target {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        host.kill().unwrap();
        host.wait().unwrap();
        kills += 1;
    }
    assert!(kills >= 3, "the host was killed mid-run {kills} times");
    let mut host = start_host(&app, &config);
    let log = wait_for_log(&app, &tenant, &admin, |items| {
        items.len() == TICKETS && items.iter().all(|d| d["status"] == "sent")
    })
    .await;
    host.kill().unwrap();
    host.wait().unwrap();
    assert_eq!(log.len(), TICKETS);

    let received = sink.received();
    let mut message_ids = HashSet::new();
    let mut recipients = HashSet::new();
    for message in &received {
        let parsed = MessageParser::default().parse(&message.data).unwrap();
        message_ids.insert(parsed.message_id().unwrap().to_string());
        recipients.extend(message.recipients.iter().cloned());
    }
    // At least once to every person; exactly once by Message-ID, which a retry repeats.
    assert_eq!(recipients.len(), TICKETS);
    assert_eq!(message_ids.len(), TICKETS, "{} messages", received.len());
    assert!(received.len() >= TICKETS);
    eprintln!(
        "{kills} kills: {} messages for {TICKETS} deliveries",
        received.len()
    );
}

for_both_backends!(
    a_host_killed_mid_send_loses_no_delivery,
    the_demo_emails_a_tracking_link_for_a_new_ticket,
    a_reminder_goes_out_once_per_appointment_time,
    a_tenant_relay_sends_as_the_tenant_and_signs_with_its_key,
    a_permanent_failure_falls_back_to_the_second_channel,
    a_new_ticket_emails_the_affected_person_a_working_tracking_link,
    a_refused_recipient_is_not_retried_and_an_admin_can_retry_it,
    passing_failures_are_retried_until_they_succeed,
    the_sending_limit_holds_deliveries_back_without_losing_them,
);

on_both_backends!(
    a_template_with_an_unknown_placeholder_is_refused_with_its_position,
    templates_are_chosen_by_language_and_previewed_without_sending,
    viewers_see_the_log_with_addresses_masked,
    a_notice_appears_on_the_tracking_page_when_the_step_is_reached,
    an_appointment_change_triggers_its_field_changed_action,
    another_tenants_actions_templates_and_deliveries_are_unreachable,
);
