//! Tenant isolation: every tenant-scoped route, taken from the OpenAPI document so that a new
//! route cannot be forgotten, is called as tenant A against tenant B. Nothing of B may change.
//! Behind the routes, on PostgreSQL, row-level security holds a query that forgets its tenant.

use serde_json::{Value, json};

use crate::on_both_backends;
use crate::support::{Backend, TestApp};

/// Ids of one tenant's objects, by the path parameter that names them.
struct Objects {
    tenant: String,
    user: String,
    domain: String,
    assignment: String,
    policy: String,
    token: String,
    install: String,
    project: String,
    ticket: String,
    field: String,
    profile: String,
    action: String,
    template: String,
    delivery: String,
    rules: String,
    /// A failed plugin run that kept its input for replay.
    run: String,
}

impl Objects {
    async fn create(app: &TestApp, slug: &str) -> (Self, String) {
        let (tenant, admin) = app.tenant_with_admin(slug).await;
        let (user, _) = app
            .staff(&tenant, &format!("staff@{slug}.example"), &[])
            .await;
        let domain = app
            .post(
                &format!("/api/v1/tenants/{tenant}/domains"),
                &admin,
                json!({"name": format!("service.{slug}.example")}),
            )
            .await;
        let assignment = app
            .post(
                &format!("/api/v1/tenants/{tenant}/role-assignments"),
                &admin,
                json!({"user_id": user, "role": "viewer"}),
            )
            .await;
        let policy = app
            .post(
                &format!("/api/v1/tenants/{tenant}/policies"),
                &admin,
                json!({
                    "role": "auditor",
                    "object": "/api/v1/tenants/{tenant}/audit",
                    "action": "GET"
                }),
            )
            .await;
        let token = app
            .post(
                &format!("/api/v1/tenants/{tenant}/me/tokens"),
                &admin,
                json!({"name": "desk"}),
            )
            .await;
        let published = app.publish("hello-theme", None).await;
        assert!(
            published.status == 201 || published.code() == "version_exists",
            "{}",
            published.text
        );
        let install = app
            .post(
                &format!("/api/v1/tenants/{tenant}/plugins"),
                &admin,
                json!({"plugin_id": "hello-theme", "keep_failed_inputs": true}),
            )
            .await;
        let run = app
            .post(
                &format!(
                    "/api/v1/tenants/{tenant}/plugins/{}/invoke",
                    install.json["id"].as_str().unwrap_or_default()
                ),
                &admin,
                json!({"input": {"page": "tracking", "view_model": {"ticket": {"title": "x"}}}}),
            )
            .await;
        assert_eq!(run.json["outcome"], "ok", "{}", run.text);
        // The theme has no booking template: a failed run, whose input the install keeps.
        let failed = app
            .post(
                &format!(
                    "/api/v1/tenants/{tenant}/plugins/{}/invoke",
                    install.json["id"].as_str().unwrap_or_default()
                ),
                &admin,
                json!({"input": {"page": "booking", "view_model": {}}}),
            )
            .await;
        assert_eq!(failed.json["outcome"], "plugin_failed", "{}", failed.text);
        let project = app
            .post(
                &format!("/api/v1/tenants/{tenant}/projects"),
                &admin,
                json!({"name": "Repairs"}),
            )
            .await;
        let email = app.install_of(&tenant, &admin, "email").await;
        let action = app
            .post(
                &format!("/api/v1/tenants/{tenant}/automated-actions"),
                &admin,
                json!({"name": "Links", "object": "ticket", "trigger": {"kind": "created"},
                    "steps": [{"kind": "notify", "channel_install_id": email, "to": ["affected_person"],
                        "message": {"subject": "Hi", "html": "<p>{{ portal.tracking_link }}</p>"}}]}),
            )
            .await;
        let template = app
            .post(
                &format!("/api/v1/tenants/{tenant}/message-templates"),
                &admin,
                json!({"name": "welcome", "language": "en", "subject": "Hi", "html": "<p>Hi</p>"}),
            )
            .await;
        let ticket = app
            .post(
                &format!("/api/v1/tenants/{tenant}/tickets"),
                &admin,
                json!({
                    "project_id": project.json["id"],
                    "title": "Jam",
                    "contact": {"first_name": "Eva", "last_name": "Ek", "email": format!("eva@{slug}.example")}
                }),
            )
            .await;
        let field = app
            .post(
                &format!("/api/v1/tenants/{tenant}/custom-fields"),
                &admin,
                json!({"key": "serial", "label": "Serial", "field_type": "text"}),
            )
            .await;
        let profile = app
            .post(
                &format!("/api/v1/tenants/{tenant}/portal-profiles"),
                &admin,
                json!({"name": "Branded", "feedback": true}),
            )
            .await;
        let rules = app
            .post(
                &format!("/api/v1/tenants/{tenant}/booking-rules"),
                &admin,
                rules_definition("Visits"),
            )
            .await;
        let mut delivery = Value::Null;
        for _ in 0..100 {
            let log = app
                .get(&format!("/api/v1/tenants/{tenant}/deliveries"), &admin)
                .await;
            delivery = log.json["items"][0]["id"].clone();
            if !delivery.is_null() {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        let id = |reply: &crate::support::Reply| {
            reply.json["id"]
                .as_str()
                .unwrap_or_else(|| panic!("{}", reply.text))
                .to_string()
        };
        let objects = Self {
            user,
            domain: id(&domain),
            assignment: id(&assignment),
            policy: id(&policy),
            token: id(&token),
            install: id(&install),
            project: id(&project),
            ticket: id(&ticket),
            field: id(&field),
            profile: id(&profile),
            action: id(&action),
            template: id(&template),
            rules: id(&rules),
            run: failed.json["run_id"].as_str().unwrap().to_string(),
            delivery: delivery
                .as_str()
                .expect("the action queued a delivery")
                .into(),
            tenant,
        };
        (objects, admin)
    }

    fn fill(&self, template: &str, tenant: &str) -> String {
        template
            .replace("{tenant}", tenant)
            .replace("{user}", &self.user)
            .replace("{domain}", &self.domain)
            .replace("{assignment}", &self.assignment)
            .replace("{policy}", &self.policy)
            .replace("{token}", &self.token)
            .replace("{install}", &self.install)
            .replace("{project}", &self.project)
            .replace("{ticket}", &self.ticket)
            .replace("{field}", &self.field)
            .replace("{profile}", &self.profile)
            .replace("{action}", &self.action)
            .replace("{template}", &self.template)
            .replace("{delivery}", &self.delivery)
            .replace("{rules}", &self.rules)
            .replace("{run}", &self.run)
    }

    /// Everything an admin of this tenant can read, as the platform sees it.
    async fn snapshot(&self, app: &TestApp) -> Vec<Value> {
        let mut state = Vec::new();
        for list in [
            "",
            "/users",
            "/domains",
            "/role-assignments",
            "/policies",
            "/tokens",
            "/projects",
            "/portal-profiles",
            "/automated-actions",
            "/message-templates",
            "/booking-rules",
            "/audit?limit=200",
        ] {
            let reply = app
                .get(
                    &format!("/api/v1/tenants/{}{list}", self.tenant),
                    &app.platform_token,
                )
                .await;
            assert_eq!(reply.status, 200, "{list}: {}", reply.text);
            state.push(reply.json);
        }
        state
    }
}

/// Valid booking rules.
fn rules_definition(name: &str) -> Value {
    json!({"name": name, "time_zone": "UTC", "horizon": {"days": 7},
        "source": {"kind": "sla", "business_hours": {"monday": [{"start": "08:00", "end": "12:00"}]},
            "visit_minutes": 60, "window_minutes": 120, "capacity": 1}})
}

/// A body that would be valid for the route, and that names the other tenant's objects.
fn body_for(template: &str, victim: &Objects) -> Value {
    if template.ends_with("/me/tokens") {
        return json!({"name": "mine"});
    }
    let assigns_rules = template.ends_with("/booking-rules") && template.matches('{').count() > 1;
    if assigns_rules || template.ends_with("/booking/preview") {
        return json!({"rules_id": victim.rules});
    }
    match template.rsplit('/').next().unwrap_or_default() {
        "users" => {
            json!({"email": "intruder@evil.example", "display_name": "Intruder", "roles": ["tenant-admin"]})
        }
        "{user}" => {
            json!({"display_name": "Hacked", "disabled": true, "password": "a new password for you"})
        }
        "tokens" => json!({"user_id": victim.user, "name": "stolen"}),
        "domains" => json!({"name": "stolen.example"}),
        "role-assignments" => json!({"user_id": victim.user, "role": "tenant-admin"}),
        "policies" => {
            json!({"role": "viewer2", "object": "/api/v1/tenants/{tenant}/users", "action": "*"})
        }
        "{tenant}" => json!({"display_name": "Hacked"}),
        "plugins" => json!({"plugin_id": "hello-theme"}),
        "{install}" => json!({"enabled": false, "config": {}}),
        "invoke" => json!({"input": {"page": "tracking"}}),
        "projects" => json!({"name": "Stolen"}),
        "tickets" => {
            json!({"project_id": victim.project, "title": "Injected", "contact": {"first_name": "I", "last_name": "N", "email": "i@evil.example"}})
        }
        "{ticket}" => json!({"title": "Hacked", "technician_id": victim.user}),
        "status" => json!({"status": "closed"}),
        "position" => json!({"latitude": 1.0, "longitude": 1.0}),
        "custom-fields" => json!({"key": "stolen", "label": "Stolen", "field_type": "text"}),
        "portal-profiles" => json!({"name": "Stolen", "is_default": true}),
        "{profile}" => json!({"name": "Hacked", "is_default": true, "feedback": false}),
        "{project}" => json!({"name": "Hacked", "profile_id": null}),
        "{action}" => json!({"active": false, "name": "Hacked"}),
        "{template}" => json!({"subject": "Hacked"}),
        "preview" => json!({"ticket_id": victim.ticket}),
        "test-send" => json!({"ticket_id": victim.ticket, "to": "intruder@evil.example"}),
        "booking-rules" | "{rules}" => rules_definition("Stolen"),
        "booking" => {
            json!({"start": "2030-01-07T08:00:00Z", "end": "2030-01-07T10:00:00Z", "override": true})
        }
        _ => json!({}),
    }
}

async fn tenant_a_cannot_reach_tenant_b_through_any_route(app: TestApp) {
    let (a, admin_a) = Objects::create(&app, "alpha").await;
    let (b, _) = Objects::create(&app, "bravo").await;
    let before = b.snapshot(&app).await;

    let spec = app
        .send(
            reqwest::Method::GET,
            "/api/v1/openapi.json",
            None,
            None,
            &[],
        )
        .await;
    let mut checked = 0;
    for (template, item) in spec.json["paths"].as_object().unwrap() {
        if !template.contains("{tenant}") {
            continue;
        }
        for method in item.as_object().unwrap().keys() {
            let method = reqwest::Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
            let sends_body = method == reqwest::Method::POST
                || method == reqwest::Method::PATCH
                || (method == reqwest::Method::PUT && !template.ends_with("/logo"));
            let body = if sends_body {
                body_for(template, &b)
            } else {
                Value::Null
            };

            // B's tenant in the path, by id and by slug: refused before anything is read.
            for tenant in [b.tenant.as_str(), "bravo"] {
                let path = b.fill(template, tenant);
                let reply = app
                    .send(
                        method.clone(),
                        &path,
                        Some(&admin_a),
                        sends_body.then_some(&body),
                        &[],
                    )
                    .await;
                assert_eq!(
                    reply.status, 403,
                    "{method} {path} as alpha: {}",
                    reply.text
                );
            }

            // A's own tenant in the path with B's object ids: not found.
            let names_object = template.matches('{').count() > 1;
            let carries_b_ids = [&b.user, &b.project, &b.ticket, &b.rules, &b.run]
                .iter()
                .any(|id| body.to_string().contains(id.as_str()));
            if names_object || carries_b_ids {
                let path = b.fill(template, &a.tenant);
                let reply = app
                    .send(
                        method.clone(),
                        &path,
                        Some(&admin_a),
                        sends_body.then_some(&body),
                        &[],
                    )
                    .await;
                assert_eq!(
                    reply.status, 404,
                    "{method} {path} with bravo's ids: {}",
                    reply.text
                );
            }
            checked += 1;
        }
    }
    assert!(checked >= 25, "only {checked} tenant routes were checked");
    assert_eq!(b.snapshot(&app).await, before, "tenant bravo changed");

    // References inside bodies stay within the tenant too.
    let borrowed = app
        .post(
            &format!("/api/v1/tenants/{}/projects", a.tenant),
            &admin_a,
            json!({"name": "Borrowing", "profile_id": b.profile}),
        )
        .await;
    assert_eq!(borrowed.code(), "unknown_profile");
    let borrowed = app
        .patch(
            &format!("/api/v1/tenants/{}/projects/{}", a.tenant, a.project),
            &admin_a,
            json!({"profile_id": b.profile}),
        )
        .await;
    assert_eq!(borrowed.code(), "unknown_profile");
    let b_theme = b.snapshot(&app).await;
    let b_install = app
        .get(
            &format!("/api/v1/tenants/{}/plugins", b.tenant),
            &app.platform_token,
        )
        .await;
    let b_harbour = b_install.json["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["plugin_id"] == "harbour")
        .unwrap()["id"]
        .clone();
    let themed = app
        .patch(
            &format!("/api/v1/tenants/{}/portal-profiles/{}", a.tenant, a.profile),
            &admin_a,
            json!({"theme_install_id": b_harbour}),
        )
        .await;
    assert_eq!(
        themed.code(),
        "unknown_theme",
        "another tenant's theme install"
    );
    assert_eq!(b.snapshot(&app).await, b_theme);
}

on_both_backends!(tenant_a_cannot_reach_tenant_b_through_any_route);

/// The second wall, PostgreSQL's row-level security: every table with a tenant has it, enabled
/// and forced, and the role the suite's host connects as is bound by it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_tenant_table_is_walled_on_postgres() {
    let Some(app) = TestApp::spawn(Backend::Postgres).await else {
        return;
    };
    let pool = &app.state.db.pool;
    let tables: Vec<(String, bool, bool, i64)> = sqlx::query_as(
        "SELECT CAST(c.relname AS TEXT), c.relrowsecurity, c.relforcerowsecurity, \
         (SELECT COUNT(*) FROM pg_policies p WHERE p.schemaname = current_schema() AND p.tablename = c.relname) \
         FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
         WHERE n.nspname = current_schema() AND c.relkind = 'r' AND (c.relname = 'tenants' OR EXISTS \
         (SELECT 1 FROM information_schema.columns col WHERE col.table_schema = n.nspname \
          AND col.table_name = c.relname AND col.column_name = 'tenant_id')) \
         ORDER BY 1",
    )
    .fetch_all(pool)
    .await
    .unwrap();
    assert!(tables.len() > 20, "{tables:?}");
    let unwalled: Vec<&str> = tables
        .iter()
        .filter(|(_, enabled, forced, policies)| !(*enabled && *forced && *policies > 0))
        .map(|(name, ..)| name.as_str())
        .collect();
    assert_eq!(unwalled, Vec::<&str>::new(), "tables without the wall");
    assert_eq!(
        app.state.db.wall_gaps().await.unwrap(),
        Vec::<&str>::new(),
        "the host's role is bound by the wall"
    );
}

/// A query that forgets its tenant, run in a tenant's name, sees and changes that tenant's rows
/// only; and the connection it used carries nothing into the next task's queries.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_wall_holds_a_query_that_forgets_its_tenant() {
    let Some(app) = TestApp::spawn(Backend::Postgres).await else {
        return;
    };
    let (a, admin_a) = app.tenant_with_admin("walled-a").await;
    let (b, admin_b) = app.tenant_with_admin("walled-b").await;
    app.ticket_with_link(&a, &admin_a, "A's ticket").await;
    let (b_ticket, _) = app.ticket_with_link(&b, &admin_b, "B's ticket").await;
    let pool = &app.state.db.pool;
    let a = portico::types::TenantId::parse(&a).unwrap();
    let count = || async {
        sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM tickets")
            .fetch_one(pool)
            .await
            .unwrap()
    };

    assert_eq!(portico::db::within_tenant(&a, count()).await, 1);
    assert_eq!(
        count().await,
        2,
        "the platform's own work sees every tenant"
    );

    let renamed = portico::db::within_tenant(&a, async {
        sqlx::query("UPDATE tickets SET title = 'taken' WHERE id = $1")
            .bind(&b_ticket)
            .execute(pool)
            .await
            .unwrap()
            .rows_affected()
    })
    .await;
    assert_eq!(renamed, 0, "B's ticket is not there for A");
    let planted = portico::db::within_tenant(&a, async {
        sqlx::query(
            "INSERT INTO projects (id, tenant_id, name, created_at) VALUES ($1, $2, 'planted', 0)",
        )
        .bind(uuid::Uuid::now_v7().to_string())
        .bind(&b)
        .execute(pool)
        .await
    })
    .await;
    let refusal = planted
        .expect_err("a row for B written in A's name")
        .to_string();
    assert!(refusal.contains("row-level security"), "{refusal}");

    // Every connection the pool holds has served A by now; none carries A into other work.
    let held = portico::db::within_tenant(&a, async {
        let mut held = Vec::new();
        for _ in 0..4 {
            held.push(pool.acquire().await.unwrap());
        }
        held
    })
    .await;
    drop(held);
    for _ in 0..8 {
        assert_eq!(count().await, 2);
    }
}
