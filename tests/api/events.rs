//! Domain events: written with the change or not at all, fanned out after commit, handled once
//! by durable consumers across a crash, listed as a tenant's history; and the races the
//! services' row locks close.

use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use portico::events::{BoxFuture, Consumer, Event, Handler, Recorded, Subscriber, Tx};
use portico::types::TenantId;
use serde_json::{Value, json};

use crate::on_both_backends;
use crate::support::TestApp;

/// Remembers every event this process's bus fans out.
#[derive(Clone, Default)]
struct Heard(Arc<Mutex<Vec<String>>>);

impl Subscriber for Heard {
    fn notify<'a>(&'a self, event: &'a Recorded) -> BoxFuture<'a, ()> {
        self.0.lock().unwrap().push(event.subject.clone());
        Box::pin(async {})
    }
}

/// Writes each event it handles into `consumer_log`, inside the consumer's transaction; when
/// `hang` is set it then waits forever, as a consumer does that is killed mid-batch.
struct LogToTable {
    hang: Option<tokio::sync::mpsc::UnboundedSender<()>>,
}

impl Handler for LogToTable {
    fn handle<'a>(
        &'a self,
        tx: &'a mut Tx,
        event: &'a Recorded,
    ) -> BoxFuture<'a, portico::error::Result<()>> {
        Box::pin(async move {
            sqlx::query("INSERT INTO consumer_log (subject) VALUES ($1)")
                .bind(&event.subject)
                .execute(&mut **tx)
                .await?;
            if let Some(started) = &self.hang {
                started.send(()).unwrap();
                std::future::pending::<()>().await;
            }
            Ok(())
        })
    }
}

/// Logs, for each event, the tenant PostgreSQL's row-level security sees the handler work for.
struct LogTheWall;

impl Handler for LogTheWall {
    fn handle<'a>(
        &'a self,
        tx: &'a mut Tx,
        event: &'a Recorded,
    ) -> BoxFuture<'a, portico::error::Result<()>> {
        Box::pin(async move {
            sqlx::query("INSERT INTO consumer_log (subject) VALUES ($1 || ' ' || current_setting('portico.tenant'))")
                .bind(&event.subject)
                .execute(&mut **tx)
                .await?;
            Ok(())
        })
    }
}

async fn logged(app: &TestApp) -> Vec<String> {
    sqlx::query_as::<_, (String,)>("SELECT subject FROM consumer_log ORDER BY subject")
        .fetch_all(&app.state.db.pool)
        .await
        .unwrap()
        .into_iter()
        .map(|(s,)| s)
        .collect()
}

async fn emit_committed(app: &TestApp, tenant: &TenantId, subject: &str) {
    let mut tx = app.state.events.begin().await.unwrap();
    tx.emit(
        Some(tenant),
        subject,
        "test",
        Event::TicketChanged { fields: vec![] },
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();
}

async fn rolled_back_events_reach_nobody(app: TestApp) {
    let (tenant, admin) = app.tenant_with_admin("acme").await;
    let tenant_id = TenantId::parse(&tenant).unwrap();
    let heard = Heard::default();
    app.state.events.subscribe(heard.clone());
    app.create_table(
        "consumer_log",
        "CREATE TABLE consumer_log (subject TEXT NOT NULL)",
    )
    .await;
    let consumer = Consumer::new("test-log", LogToTable { hang: None });
    consumer.register(&app.state.events).await.unwrap();

    let mut tx = app.state.events.begin().await.unwrap();
    tx.emit(
        Some(&tenant_id),
        "rolled-back",
        "test",
        Event::TicketChanged { fields: vec![] },
    )
    .await
    .unwrap();
    drop(tx);
    emit_committed(&app, &tenant_id, "committed").await;

    // On PostgreSQL a consumer reads only transactions older than every running one (in any
    // database of the cluster), so the committed event may take a moment to become readable.
    let mut handled = 0;
    for _ in 0..100 {
        handled += consumer.run_once(&app.state.events).await.unwrap();
        if handled > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(handled, 1);
    assert_eq!(consumer.run_once(&app.state.events).await.unwrap(), 0);
    assert_eq!(logged(&app).await, ["committed"]);
    assert_eq!(*heard.0.lock().unwrap(), ["committed"]);
    let history = app
        .get(
            &format!("/api/v1/tenants/{tenant}/events?kind=ticket_changed"),
            &admin,
        )
        .await;
    assert_eq!(history.status, 200, "{}", history.text);
    let subjects: Vec<&str> = history.json["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["subject"].as_str().unwrap())
        .collect();
    assert_eq!(subjects, ["committed"]);
}

async fn a_killed_consumer_resumes_and_handles_each_event_once(app: TestApp) {
    let (tenant, _) = app.tenant_with_admin("acme").await;
    let tenant_id = TenantId::parse(&tenant).unwrap();
    app.create_table(
        "consumer_log",
        "CREATE TABLE consumer_log (subject TEXT NOT NULL)",
    )
    .await;
    let (started, mut handling) = tokio::sync::mpsc::unbounded_channel();
    let doomed = Consumer::new(
        "test-log",
        LogToTable {
            hang: Some(started),
        },
    );
    doomed.register(&app.state.events).await.unwrap();
    for subject in ["a", "b", "c"] {
        emit_committed(&app, &tenant_id, subject).await;
    }
    let task = doomed.spawn(&app.state.events).await.unwrap();
    // The consumer is inside its transaction, its first event written: kill it there.
    tokio::time::timeout(Duration::from_secs(10), handling.recv())
        .await
        .expect("the consumer picks the events up")
        .unwrap();
    task.abort();
    assert!(task.await.unwrap_err().is_cancelled());
    assert!(
        logged(&app).await.is_empty(),
        "nothing of the killed batch committed"
    );

    let revived = Consumer::new("test-log", LogToTable { hang: None });
    let task = revived.spawn(&app.state.events).await.unwrap();
    let mut log = Vec::new();
    for _ in 0..100 {
        log = logged(&app).await;
        if log.len() >= 3 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    task.abort();
    assert_eq!(
        logged(&app).await,
        ["a", "b", "c"],
        "each event once: {log:?}"
    );
}

fn ticket(project: &Value) -> Value {
    json!({"project_id": project, "title": "Printer jams", "contact":
        {"first_name": "Eva", "last_name": "Schmidt", "email": "eva@example.com"}})
}

async fn position_reports_racing_a_status_change_never_undo_it(app: TestApp) {
    let (tenant, admin) = app.tenant_with_admin("acme").await;
    let base = format!("/api/v1/tenants/{tenant}");
    let project = app
        .post(&format!("{base}/projects"), &admin, json!({"name": "P"}))
        .await;
    let created = app
        .post(
            &format!("{base}/tickets"),
            &admin,
            ticket(&project.json["id"]),
        )
        .await;
    let path = format!("{base}/tickets/{}", created.json["id"].as_str().unwrap());
    let on_route = app
        .post(
            &format!("{path}/status"),
            &admin,
            json!({"status": "on_route"}),
        )
        .await;
    assert_eq!(on_route.status, 200, "{}", on_route.text);

    let app = Arc::new(app);
    let report = |i: u32| {
        let (app, path, admin) = (app.clone(), path.clone(), admin.clone());
        tokio::spawn(async move {
            let position = json!({"latitude": 52.0 + f64::from(i) / 1000.0, "longitude": 13.4});
            app.post(&format!("{path}/position"), &admin, position)
                .await
        })
    };
    let mut reports: Vec<_> = (0..25).map(report).collect();
    let change = {
        let (app, path, admin) = (app.clone(), path.clone(), admin.clone());
        tokio::spawn(async move {
            app.post(
                &format!("{path}/status"),
                &admin,
                json!({"status": "completed"}),
            )
            .await
        })
    };
    reports.extend((25..50).map(report));
    let change = change.await.unwrap();
    assert_eq!(change.status, 200, "{}", change.text);
    for reply in reports {
        let reply = reply.await.unwrap();
        assert!(
            reply.status == 200 || (reply.status, reply.code()) == (409, "not_on_route"),
            "{} {}",
            reply.status,
            reply.text
        );
    }

    let after = app.get(&path, &admin).await;
    assert_eq!(after.json["status"], "completed", "{}", after.text);
    assert!(
        after.json["position"].is_null(),
        "a completed visit shows no position"
    );
    let steps: Vec<&str> = after.json["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["status"].as_str().unwrap())
        .collect();
    assert_eq!(steps, ["received", "on_route", "completed"]);
    let ticket_id = created.json["id"].as_str().unwrap();
    let changes = app
        .get(
            &format!("{base}/events?subject={ticket_id}&kind=ticket_status_changed"),
            &admin,
        )
        .await;
    let moves: Vec<(&str, &str)> = changes.json["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["data"]["from"].as_str().unwrap(),
                e["data"]["to"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(moves, [("received", "on_route"), ("on_route", "completed")]);
}

/// Pruning removes old events, but never one a durable consumer has yet to read.
async fn pruning_spares_what_a_consumer_has_not_read(app: TestApp) {
    let (tenant, admin) = app.tenant_with_admin("acme").await;
    let tenant_id = TenantId::parse(&tenant).unwrap();
    app.create_table(
        "consumer_log",
        "CREATE TABLE consumer_log (subject TEXT NOT NULL)",
    )
    .await;
    let consumer = Consumer::new("test-log", LogToTable { hang: None });
    consumer.register(&app.state.events).await.unwrap();
    emit_committed(&app, &tenant_id, "unread").await;
    let events = format!("/api/v1/tenants/{tenant}/events");
    let count = async || {
        app.get(&events, &admin).await.json["items"]
            .as_array()
            .unwrap()
            .len()
    };
    let before = count().await;
    assert!(before > 1, "the tenant's creation and the unread event");

    let everything = portico::db::now_ms() + 60_000;
    let pool = &app.state.db.pool;
    // The host's own consumer reads everything there is; wait until it has.
    let last = portico::events::store::last_seq(pool).await.unwrap();
    for _ in 0..100 {
        let (read,): (i64,) =
            sqlx::query_as("SELECT seq FROM event_cursors WHERE consumer = 'automated-actions'")
                .fetch_one(pool)
                .await
                .unwrap();
        if read >= last {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Pruning spans every tenant and the platform's own events, so count this tenant's.
    portico::events::store::prune(pool, everything)
        .await
        .unwrap();
    assert_eq!(count().await, 1, "all but the unread event");

    let mut handled = 0;
    for _ in 0..100 {
        handled += consumer.run_once(&app.state.events).await.unwrap();
        if handled > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(handled, 1);
    portico::events::store::prune(pool, everything)
        .await
        .unwrap();
    assert_eq!(
        count().await,
        0,
        "read by every consumer, the old event goes"
    );
}

/// A durable consumer reads its batch across tenants and handles each event in its own
/// tenant's name, so a handler's query that forgets its tenant stays inside the event's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_consumer_handles_each_event_in_its_tenants_name() {
    let Some(app) = TestApp::spawn(crate::support::Backend::Postgres).await else {
        return;
    };
    let (a, _) = app.tenant_with_admin("walled-a").await;
    let (b, _) = app.tenant_with_admin("walled-b").await;
    app.create_table(
        "consumer_log",
        "CREATE TABLE consumer_log (subject TEXT NOT NULL)",
    )
    .await;
    let consumer = Consumer::new("test-wall", LogTheWall);
    consumer.register(&app.state.events).await.unwrap();
    emit_committed(&app, &TenantId::parse(&a).unwrap(), "for-a").await;
    emit_committed(&app, &TenantId::parse(&b).unwrap(), "for-b").await;
    let mut handled = 0;
    for _ in 0..100 {
        handled += consumer.run_once(&app.state.events).await.unwrap();
        if handled >= 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        logged(&app).await,
        [format!("for-a {a}"), format!("for-b {b}")]
    );
}

on_both_backends!(
    pruning_spares_what_a_consumer_has_not_read,
    rolled_back_events_reach_nobody,
    a_killed_consumer_resumes_and_handles_each_event_once,
    position_reports_racing_a_status_change_never_undo_it,
    a_tenant_created_from_the_command_line_is_served_at_once,
);

/// `portico tenant create` runs in another process; the running host must not keep answering
/// "not found" from its cache.
async fn a_tenant_created_from_the_command_line_is_served_at_once(app: TestApp) {
    let host = "newco.portico.test";
    assert_eq!(
        app.page("/", host).await.status,
        404,
        "looked up, and cached, as unknown"
    );
    let output = Command::new(env!("CARGO_BIN_EXE_portico"))
        .args(["tenant", "create", "--slug", "newco", "--name", "New Co"])
        // As the restricted role alone: a migrated schema needs no owner's credentials.
        .env(
            "PORTICO_DATABASE_URL",
            app.state.config.database_url().expose(),
        )
        .env("PORTICO_DATA_DIR", &app.state.config.data_dir)
        .output()
        .expect("running portico");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let mut status = 0;
    for _ in 0..50 {
        status = app.page("/", host).await.status;
        if status == 200 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        status, 200,
        "the running host serves the new tenant within 5 s"
    );
    // It is a whole tenant: the built-ins and the default profile came with it.
    let tenants = app
        .get("/api/v1/tenants/newco/plugins", &app.platform_token)
        .await;
    assert_eq!(tenants.status, 200, "{}", tenants.text);
    assert!(!tenants.json["items"].as_array().unwrap().is_empty());
    let profiles = app
        .get("/api/v1/tenants/newco/portal-profiles", &app.platform_token)
        .await;
    assert_eq!(
        profiles.json["items"].as_array().map(Vec::len),
        Some(1),
        "{}",
        profiles.text
    );
}
