//! Tickets through the back-office API: numbering, validation, progress, positions, search,
//! role limits and tracking links.

use serde_json::{Value, json};

use crate::on_both_backends;
use crate::support::TestApp;

fn ticket(project: &str, email: &str) -> Value {
    json!({
        "project_id": project,
        "title": "Printer jams on tray 2",
        "ticket_type": "repair",
        "contact": {"first_name": "Eva", "last_name": "Schmidt", "email": email, "mobile": "+4915112345678"},
        "address": "Hauptstraße 1, 10115 Berlin"
    })
}

async fn tickets_are_numbered_validated_and_advanced(app: TestApp) {
    let (tenant, admin) = app.tenant_with_admin("acme").await;
    let base = format!("/api/v1/tenants/{tenant}");
    let project = app
        .post(
            &format!("{base}/projects"),
            &admin,
            json!({"name": "Printers"}),
        )
        .await;
    assert_eq!(project.status, 201, "{}", project.text);
    let project = project.json["id"].as_str().unwrap().to_string();
    let field = app
        .post(
            &format!("{base}/custom-fields"),
            &admin,
            json!({"key": "serial", "label": "Serial number", "field_type": "text", "required": true}),
        )
        .await;
    assert_eq!(field.status, 201, "{}", field.text);

    let no_email = app
        .post(
            &format!("{base}/tickets"),
            &admin,
            ticket(&project, "not-an-email"),
        )
        .await;
    assert_eq!((no_email.status, no_email.code()), (422, "invalid_email"));
    let missing = app
        .post(
            &format!("{base}/tickets"),
            &admin,
            ticket(&project, "eva@example.com"),
        )
        .await;
    assert_eq!(
        (missing.status, missing.code()),
        (422, "invalid_custom_field")
    );
    let mut wrong_type = ticket(&project, "eva@example.com");
    wrong_type["custom_fields"] = json!({"serial": 5});
    assert_eq!(
        app.post(&format!("{base}/tickets"), &admin, wrong_type)
            .await
            .status,
        422
    );

    let mut complete = ticket(&project, "Eva@Example.com");
    complete["custom_fields"] = json!({"serial": "SN-123"});
    let first = app.post(&format!("{base}/tickets"), &admin, complete).await;
    assert_eq!(first.status, 201, "{}", first.text);
    assert_eq!(first.json["number"], 1);
    assert_eq!(first.json["status"], "received");
    assert_eq!(first.json["contact"]["email"], "eva@example.com");
    assert_eq!(first.json["timeline"].as_array().unwrap().len(), 1);
    let url = first.json["tracking_url"].as_str().unwrap().to_string();
    assert!(url.starts_with("http://acme.portico.test/t/"), "{url}");
    let mut complete = ticket(&project, "max@example.com");
    complete["custom_fields"] = json!({"serial": "SN-456"});
    let second = app.post(&format!("{base}/tickets"), &admin, complete).await;
    assert_eq!(second.json["number"], 2);
    let id = first.json["id"].as_str().unwrap().to_string();
    let ticket_path = format!("{base}/tickets/{id}");
    assert!(
        app.get(&ticket_path, &admin)
            .await
            .json
            .get("tracking_url")
            .is_none(),
        "the link is shown once"
    );

    // Another tenant counts from 1.
    let (other, other_admin) = app.tenant_with_admin("rival").await;
    let other_project = app
        .post(
            &format!("/api/v1/tenants/{other}/projects"),
            &other_admin,
            json!({"name": "P"}),
        )
        .await;
    let other_ticket = app
        .post(
            &format!("/api/v1/tenants/{other}/tickets"),
            &other_admin,
            json!({
                "project_id": other_project.json["id"],
                "title": "T",
                "contact": {"first_name": "A", "last_name": "B", "email": "a@b.example"}
            }),
        )
        .await;
    assert_eq!(other_ticket.json["number"], 1, "{}", other_ticket.text);

    // Progress.
    let (tech, tech_token) = app
        .staff(&tenant, "tech@acme.example", &["technician"])
        .await;
    let assigned = app
        .patch(
            &ticket_path,
            &admin,
            json!({"technician_id": tech, "priority": "high"}),
        )
        .await;
    assert_eq!(assigned.json["technician_id"], tech.as_str());
    let status = |s: &str| json!({"status": s});
    assert_eq!(
        app.post(
            &format!("{ticket_path}/status"),
            &tech_token,
            status("dispatched")
        )
        .await
        .json["status"],
        "dispatched"
    );
    let back_two = app
        .post(
            &format!("{ticket_path}/status"),
            &tech_token,
            status("received"),
        )
        .await;
    assert_eq!(
        (back_two.status, back_two.code()),
        (422, "invalid_transition")
    );
    let early = app
        .post(
            &format!("{ticket_path}/position"),
            &tech_token,
            json!({"latitude": 52.5, "longitude": 13.4}),
        )
        .await;
    assert_eq!((early.status, early.code()), (409, "not_on_route"));
    app.post(
        &format!("{ticket_path}/status"),
        &tech_token,
        status("on_route"),
    )
    .await;
    let located = app
        .post(
            &format!("{ticket_path}/position"),
            &tech_token,
            json!({"latitude": 52.52, "longitude": 13.405, "eta": "2026-11-23T10:30:00Z"}),
        )
        .await;
    assert_eq!(located.status, 200, "{}", located.text);
    assert_eq!(located.json["position"]["latitude"], 52.52);
    assert_eq!(located.json["eta"], "2026-11-23T10:30:00Z");
    let off_map = app
        .post(
            &format!("{ticket_path}/position"),
            &tech_token,
            json!({"latitude": 91.0, "longitude": 0.0}),
        )
        .await;
    assert_eq!(off_map.status, 422);
    for step in ["arrived", "completed", "closed"] {
        let moved = app
            .post(&format!("{ticket_path}/status"), &tech_token, status(step))
            .await;
        assert_eq!(moved.json["status"], step, "{}", moved.text);
    }
    let done = app.get(&ticket_path, &admin).await;
    let steps: Vec<&str> = done.json["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["status"].as_str().unwrap())
        .collect();
    assert_eq!(
        steps,
        [
            "received",
            "dispatched",
            "on_route",
            "arrived",
            "completed",
            "closed"
        ]
    );
    assert!(
        done.json["position"].is_null(),
        "no position once the visit is over"
    );
    let reopened = app
        .post(
            &format!("{ticket_path}/status"),
            &tech_token,
            status("completed"),
        )
        .await;
    assert_eq!(reopened.code(), "invalid_transition");

    // Technicians work tickets but do not create them.
    let mut complete = ticket(&project, "x@example.com");
    complete["custom_fields"] = json!({"serial": "SN-789"});
    assert_eq!(
        app.post(&format!("{base}/tickets"), &tech_token, complete)
            .await
            .status,
        403
    );
    assert_eq!(
        app.get(&format!("{base}/tickets"), &tech_token)
            .await
            .status,
        200
    );
    let foreign_tech = app
        .patch(
            &ticket_path,
            &admin,
            json!({"technician_id": other_ticket.json["id"]}),
        )
        .await;
    assert_eq!(foreign_tech.status, 404);
}

async fn tickets_can_be_filtered_and_searched(app: TestApp) {
    let (tenant, admin) = app.tenant_with_admin("acme").await;
    let base = format!("/api/v1/tenants/{tenant}");
    let project = app
        .post(
            &format!("{base}/projects"),
            &admin,
            json!({"name": "Printers"}),
        )
        .await
        .json["id"]
        .as_str()
        .unwrap()
        .to_string();
    for email in ["anna@example.com", "bert@example.com", "carl_x@example.com"] {
        let created = app
            .post(&format!("{base}/tickets"), &admin, ticket(&project, email))
            .await;
        assert_eq!(created.status, 201, "{}", created.text);
    }
    let list = async |query: &str| -> Vec<String> {
        let reply = app.get(&format!("{base}/tickets?{query}"), &admin).await;
        assert_eq!(reply.status, 200, "{query}: {}", reply.text);
        reply.json["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["contact"]["email"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(list("q=BERT").await, ["bert@example.com"]);
    assert_eq!(list("q=%232").await, ["bert@example.com"], "by number");
    assert_eq!(
        list("q=_").await,
        ["carl_x@example.com"],
        "wildcards are literal"
    );
    assert_eq!(list("q=%25").await, Vec::<String>::new());
    assert_eq!(list("status=received").await.len(), 3);
    assert_eq!(list("status=closed").await.len(), 0);
    assert_eq!(
        list(&format!("project_id={project}&limit=2")).await.len(),
        2
    );
    assert_eq!(
        app.get(&format!("{base}/tickets?status=lost"), &admin)
            .await
            .code(),
        "invalid_query"
    );

    // Each listed ticket carries its own timeline (read for the whole page at once).
    let all = app.get(&format!("{base}/tickets"), &admin).await;
    let second = all.json["items"][1]["id"].as_str().unwrap().to_string();
    app.post(
        &format!("{base}/tickets/{second}/status"),
        &admin,
        json!({"status": "dispatched"}),
    )
    .await;
    let all = app.get(&format!("{base}/tickets"), &admin).await;
    for item in all.json["items"].as_array().unwrap() {
        let one = app
            .get(
                &format!("{base}/tickets/{}", item["id"].as_str().unwrap()),
                &admin,
            )
            .await;
        assert_eq!(item["timeline"], one.json["timeline"]);
        let steps = if item["id"] == second.as_str() { 2 } else { 1 };
        assert_eq!(item["timeline"].as_array().unwrap().len(), steps);
    }
}

async fn tracking_links_are_hashed_revocable_and_tenant_bound(app: TestApp) {
    let (tenant, admin) = app.tenant_with_admin("acme").await;
    let base = format!("/api/v1/tenants/{tenant}");
    let project = app
        .post(
            &format!("{base}/projects"),
            &admin,
            json!({"name": "Printers"}),
        )
        .await
        .json["id"]
        .as_str()
        .unwrap()
        .to_string();
    let created = app
        .post(
            &format!("{base}/tickets"),
            &admin,
            ticket(&project, "eva@example.com"),
        )
        .await;
    let id = created.json["id"].as_str().unwrap().to_string();
    let token = created.json["tracking_url"]
        .as_str()
        .unwrap()
        .rsplit('/')
        .next()
        .unwrap()
        .to_string();
    assert!(token.len() >= 43, "at least 256 bits");
    let pool = &app.state.db.pool;
    let stored: (i64,) =
        sqlx::query_as("SELECT COUNT(*) FROM tracking_links WHERE token_hash = $1")
            .bind(&token)
            .fetch_one(pool)
            .await
            .unwrap();
    assert_eq!(stored.0, 0, "the token itself is never stored");

    let tenant_id = portico::types::TenantId::parse(&tenant).unwrap();
    assert_eq!(
        portico::tickets::links::resolve(pool, &tenant_id, &token)
            .await
            .unwrap(),
        Some(id.clone())
    );
    let (other, _) = app.tenant_with_admin("rival").await;
    let other_id = portico::types::TenantId::parse(&other).unwrap();
    assert_eq!(
        portico::tickets::links::resolve(pool, &other_id, &token)
            .await
            .unwrap(),
        None,
        "tenant-bound"
    );

    let reissued = app
        .post(
            &format!("{base}/tickets/{id}/tracking-link"),
            &admin,
            json!({}),
        )
        .await;
    let new_token = reissued.json["tracking_url"]
        .as_str()
        .unwrap()
        .rsplit('/')
        .next()
        .unwrap()
        .to_string();
    assert_ne!(new_token, token);
    assert_eq!(
        portico::tickets::links::resolve(pool, &tenant_id, &token)
            .await
            .unwrap(),
        None,
        "the old link is revoked"
    );
    assert_eq!(
        portico::tickets::links::resolve(pool, &tenant_id, &new_token)
            .await
            .unwrap(),
        Some(id.clone())
    );
    assert_eq!(
        app.delete(&format!("{base}/tickets/{id}/tracking-link"), &admin)
            .await
            .status,
        204
    );
    assert_eq!(
        portico::tickets::links::resolve(pool, &tenant_id, &new_token)
            .await
            .unwrap(),
        None
    );
}

on_both_backends!(
    tickets_are_numbered_validated_and_advanced,
    tickets_can_be_filtered_and_searched,
    tracking_links_are_hashed_revocable_and_tenant_bound
);

async fn the_demo_sets_up_once_and_reissues_links(app: TestApp) {
    let first = portico::demo::set_up(&app.state, &app.base_url)
        .await
        .unwrap();
    let second = portico::demo::set_up(&app.state, &app.base_url)
        .await
        .unwrap();
    let tickets = app
        .get("/api/v1/tenants/easy-printer/tickets", &app.platform_token)
        .await;
    let statuses: Vec<&str> = tickets.json["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["status"].as_str().unwrap())
        .collect();
    assert_eq!(
        statuses,
        [
            "received",
            "scheduling",
            "dispatched",
            "on_route",
            "completed"
        ]
    );
    // The automated action's messages carry links of their own, so the demo's are told apart by
    // token: the second run revoked the first run's and issued one per ticket.
    let pool = &app.state.db.pool;
    let (tenant,): (String,) = sqlx::query_as("SELECT id FROM tenants WHERE slug = 'easy-printer'")
        .fetch_one(pool)
        .await
        .unwrap();
    let tenant = portico::types::TenantId::parse(&tenant).unwrap();
    assert_eq!(first.tracking_links.len(), 5);
    for ticket in opened_tickets(pool, &tenant, &first.tracking_links).await {
        assert_eq!(ticket, None, "the first run's links are revoked");
    }
    let mut opened: Vec<String> = opened_tickets(pool, &tenant, &second.tracking_links)
        .await
        .into_iter()
        .map(|ticket| ticket.expect("the second run's link opens"))
        .collect();
    opened.sort();
    opened.dedup();
    assert_eq!(opened.len(), 5, "one fresh link per ticket");
}

on_both_backends!(the_demo_sets_up_once_and_reissues_links);

/// The ticket each of the demo's (title, link) pairs opens, if any.
async fn opened_tickets(
    pool: &portico::db::Pool,
    tenant: &portico::types::TenantId,
    links: &[(String, String)],
) -> Vec<Option<String>> {
    let mut tickets = Vec::new();
    for (_, url) in links {
        let token = url.rsplit('/').next().unwrap();
        tickets.push(
            portico::tickets::links::resolve(pool, tenant, token)
                .await
                .unwrap(),
        );
    }
    tickets
}
