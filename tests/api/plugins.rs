//! The plugin platform over HTTP: publishing, installing, configuring, invoking, upgrading and
//! rolling back; hostile plugins recorded with typed errors; secrets kept secret; outbound HTTP
//! only where granted.

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::on_both_backends;
use crate::support::smtp::SmtpSink;
use crate::support::{Backend, TestApp, guest_wasm};

fn tracking(title: &str) -> Value {
    json!({"input": {"page": "tracking", "view_model": {"ticket": {"title": title}}, "language": "de"}})
}

async fn publish_install_invoke_upgrade_and_roll_back(app: TestApp) {
    let (tenant, admin) = app.tenant_with_admin("acme").await;
    let published = app.publish("hello-theme", None).await;
    assert_eq!(published.status, 201, "{}", published.text);
    assert_eq!(published.json["kind"], "theme");
    assert_eq!(published.json["sha256"].as_str().unwrap().len(), 64);
    let again = app.publish("hello-theme", None).await;
    assert_eq!((again.status, again.code()), (409, "version_exists"));

    // Only platform admins publish, and only valid packages.
    let raw = guest_wasm("hello-theme");
    assert_eq!(app.upload(&raw, &admin).await.status, 403);
    for (bytes, why) in [
        (raw.clone(), "a component without a manifest"),
        (b"\0asm\x01\x00\x00\x00".to_vec(), "a core module"),
        (b"GIF89a not a plugin".to_vec(), "a random file"),
        (
            portico::plugins::manifest::pack(
                &std::fs::read_to_string(concat!(
                    env!("CARGO_MANIFEST_DIR"),
                    "/../tests/plugins/hello-theme/portico-plugin.toml"
                ))
                .unwrap()
                .replace("hello-theme\"", "mislabelled\""),
                &guest_wasm("spinner"),
            )
            .unwrap(),
            "a component of another world",
        ),
    ] {
        let refused = app.upload(&bytes, &app.platform_token).await;
        assert_eq!(
            (refused.status, refused.code()),
            (422, "invalid_package"),
            "{why}: {}",
            refused.text
        );
    }
    let catalogue = app.get("/api/v1/plugins", &admin).await;
    let ids: Vec<&str> = catalogue.json["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["plugin_id"].as_str().unwrap())
        .collect();
    assert_eq!(
        ids,
        [
            "email",
            "webhook",
            "sms",
            "standard-slots",
            "harbour",
            "signal",
            "hello-theme"
        ],
        "the built-ins, then what was published"
    );

    let installs = format!("/api/v1/tenants/{tenant}/plugins");
    let bad_config = app
        .post(
            &installs,
            &admin,
            json!({"plugin_id": "hello-theme", "config": {"accent": "red"}}),
        )
        .await;
    assert_eq!(
        (bad_config.status, bad_config.code()),
        (422, "invalid_config"),
        "{}",
        bad_config.text
    );
    let bad_secret = app
        .post(
            &installs,
            &admin,
            json!({"plugin_id": "hello-theme", "secrets": {"token": "x"}}),
        )
        .await;
    assert_eq!(
        (bad_secret.status, bad_secret.code()),
        (422, "unknown_secret")
    );
    let bad_grant = app
        .post(
            &installs,
            &admin,
            json!({"plugin_id": "hello-theme", "grants": {"smtp": true}}),
        )
        .await;
    assert_eq!(
        (bad_grant.status, bad_grant.code()),
        (422, "capability_not_requested")
    );
    let missing = app
        .post(&installs, &admin, json!({"plugin_id": "no-such-plugin"}))
        .await;
    assert_eq!(missing.status, 404);

    let installed = app
        .post(
            &installs,
            &admin,
            json!({"plugin_id": "hello-theme", "config": {"accent": "#112233"}}),
        )
        .await;
    assert_eq!(installed.status, 201, "{}", installed.text);
    assert_eq!(installed.json["version"], "0.1.0");
    let install = format!("{installs}/{}", installed.json["id"].as_str().unwrap());
    let twice = app
        .post(&installs, &admin, json!({"plugin_id": "hello-theme"}))
        .await;
    assert_eq!((twice.status, twice.code()), (409, "already_installed"));

    let run = app
        .post(
            &format!("{install}/invoke"),
            &admin,
            tracking("Drucker <klemmt>"),
        )
        .await;
    assert_eq!(run.json["outcome"], "ok", "{}", run.text);
    assert!(
        run.json["output"]["html"]
            .as_str()
            .unwrap()
            .contains("<h1>Drucker &lt;klemmt&gt;</h1>")
    );
    assert_eq!(run.json["output"]["stylesheet"], "h1 { color: #112233; }");
    assert!(run.json["fuel_used"].as_u64().unwrap() > 0);
    let bad_input = app
        .post(
            &format!("{install}/invoke"),
            &admin,
            json!({"input": {"page": "nowhere"}}),
        )
        .await;
    assert_eq!((bad_input.status, bad_input.code()), (422, "invalid_input"));

    let disabled = app.patch(&install, &admin, json!({"enabled": false})).await;
    assert_eq!(disabled.json["enabled"], false);
    let refused = app
        .post(&format!("{install}/invoke"), &admin, tracking("x"))
        .await;
    assert_eq!((refused.status, refused.code()), (409, "plugin_disabled"));
    app.patch(&install, &admin, json!({"enabled": true})).await;

    assert_eq!(
        app.post(&format!("{install}/rollback"), &admin, json!({}))
            .await
            .code(),
        "nothing_to_roll_back"
    );
    assert_eq!(app.publish("hello-theme", Some("0.2.0")).await.status, 201);
    let upgraded = app
        .patch(&install, &admin, json!({"version": "0.2.0"}))
        .await;
    assert_eq!(
        (
            upgraded.json["version"].as_str(),
            upgraded.json["previous_version"].as_str()
        ),
        (Some("0.2.0"), Some("0.1.0")),
        "{}",
        upgraded.text
    );
    let unknown_version = app
        .patch(&install, &admin, json!({"version": "9.9.9"}))
        .await;
    assert_eq!(unknown_version.status, 404);
    let rolled_back = app
        .post(&format!("{install}/rollback"), &admin, json!({}))
        .await;
    assert_eq!(
        (
            rolled_back.json["version"].as_str(),
            rolled_back.json["previous_version"].as_str()
        ),
        (Some("0.1.0"), Some("0.2.0"))
    );

    let runs = app
        .get(
            &format!("/api/v1/tenants/{tenant}/plugin-runs?plugin_id=hello-theme"),
            &admin,
        )
        .await;
    let runs = runs.json["items"].as_array().unwrap();
    assert_eq!(runs.len(), 1);
    assert_eq!(runs[0]["outcome"], "ok");
    assert_eq!(runs[0]["kind"], "theme");

    assert_eq!(app.delete(&install, &admin).await.status, 204);
    assert_eq!(app.get(&install, &admin).await.status, 404);
    let audit = app
        .get(&format!("/api/v1/tenants/{tenant}/audit?limit=200"), &admin)
        .await;
    let actions: Vec<&str> = audit.json["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    for expected in [
        "plugin_install.create",
        "plugin_install.update",
        "plugin_install.rollback",
        "plugin_install.delete",
    ] {
        assert!(
            actions.contains(&expected),
            "{expected} missing from {actions:?}"
        );
    }
}

async fn new_tenants_get_the_built_in_plugins(app: TestApp) {
    let (tenant, admin) = app.tenant_with_admin("acme").await;
    let installs = app
        .get(&format!("/api/v1/tenants/{tenant}/plugins"), &admin)
        .await;
    let installed: Vec<(&str, &str, bool)> = installs.json["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            (
                i["plugin_id"].as_str().unwrap(),
                i["kind"].as_str().unwrap(),
                i["grants"]["smtp"].as_bool().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        installed,
        [
            ("email", "channel", true),
            ("webhook", "channel", false),
            ("sms", "channel", false),
            ("standard-slots", "slot-calculator", false),
            ("harbour", "theme", false),
            ("signal", "theme", false)
        ]
    );
    let slots = installs.json["items"][3]["id"].as_str().unwrap();
    // Two Mondays, each with a morning interval; the first Monday has one booking.
    let day = |date: &str, midnight: i64| {
        json!({"date": date, "weekday": 1, "span": {"start": midnight, "end": midnight + 86_400_000},
            "intervals": [{"name": "Morning", "window": {"start": midnight + 28_800_000, "end": midnight + 36_000_000}, "capacity": 2}],
            "offerable": true})
    };
    let monday = 1_795_392_000_000_i64;
    let run = app.post(&format!("/api/v1/tenants/{tenant}/plugins/{slots}/invoke"), &admin, json!({"input": {
            "rules": {"kind": "intervals"}, "created_at": monday - 86_400_000, "now": monday - 86_400_000,
            "not_before": monday - 86_400_000, "time_zone": "UTC",
            "days": [day("2026-11-23", monday), day("2026-11-30", monday + 7 * 86_400_000)],
            "bookings": [{"start": monday + 28_800_000, "end": monday + 36_000_000}]
        }})).await;
    assert_eq!(run.json["outcome"], "ok", "{}", run.text);
    let windows = run.json["output"].as_array().unwrap();
    assert_eq!(windows.len(), 2, "two Mondays: {}", run.text);
    assert_eq!(
        windows[0]["capacity_left"], 1,
        "one booking uses the first Monday"
    );
    assert_eq!(windows[1]["capacity_left"], 2);
    // Publishing again at start-up changes nothing.
    let replica = app.replica().await;
    let catalogue = replica.get("/api/v1/plugins", &app.platform_token).await;
    assert_eq!(catalogue.json["items"].as_array().unwrap().len(), 6);
}

async fn hostile_plugins_are_recorded_with_typed_errors(app: TestApp) {
    let (tenant, admin) = app.tenant_with_admin("acme").await;
    assert_eq!(app.publish("hostile", None).await.status, 201);
    let installed = app
        .post(
            &format!("/api/v1/tenants/{tenant}/plugins"),
            &admin,
            json!({
                "plugin_id": "hostile",
                "config": {"behaviour": "ok"},
                "secrets": {"api_key": "s3cr3t-value-42"}
            }),
        )
        .await;
    assert_eq!(installed.status, 201, "{}", installed.text);
    assert_eq!(installed.json["secrets_set"], json!(["api_key"]));
    assert!(!installed.text.contains("s3cr3t-value-42"));
    let install = format!(
        "/api/v1/tenants/{tenant}/plugins/{}",
        installed.json["id"].as_str().unwrap()
    );

    // Limits per install are for platform administrators.
    let tight = json!({"limits": {"deadline_ms": 1500, "memory_bytes": 33554432}});
    assert_eq!(app.patch(&install, &admin, tight.clone()).await.status, 403);
    assert_eq!(
        app.patch(&install, &app.platform_token, tight).await.status,
        200
    );

    let event = json!({"input": {"kind": "ticket.created"}});
    for (behaviour, outcome) in [
        ("loop", "plugin_timeout"),
        ("memory", "plugin_memory_limit"),
        ("recursion", "plugin_trap"),
        ("panic", "plugin_trap"),
        ("huge-output", "plugin_output_too_large"),
        ("log-flood", "plugin_output_too_large"),
        ("http", "plugin_capability_denied"),
        ("log-secret", "ok"),
        ("ok", "ok"),
    ] {
        assert_eq!(
            app.patch(
                &install,
                &admin,
                json!({"config": {"behaviour": behaviour}})
            )
            .await
            .status,
            200
        );
        let run = app
            .post(&format!("{install}/invoke"), &admin, event.clone())
            .await;
        assert_eq!(run.status, 200, "{}", run.text);
        assert_eq!(run.json["outcome"], outcome, "{behaviour}: {}", run.text);
    }

    let runs = app
        .get(
            &format!("/api/v1/tenants/{tenant}/plugin-runs?limit=200"),
            &admin,
        )
        .await;
    let runs = runs.json["items"].as_array().unwrap();
    let outcomes: Vec<&str> = runs
        .iter()
        .map(|r| r["outcome"].as_str().unwrap())
        .collect();
    assert_eq!(
        outcomes,
        [
            "plugin_timeout",
            "plugin_memory_limit",
            "plugin_trap",
            "plugin_trap",
            "plugin_output_too_large",
            "plugin_output_too_large",
            "plugin_capability_denied",
            "ok",
            "ok"
        ]
    );
    let logged = &runs[7]["logs"][0]["message"];
    assert_eq!(
        logged, "the key is [redacted]",
        "secrets are redacted from logs"
    );
    assert!(
        runs[5]["logs"].as_array().unwrap().len() > 10,
        "a flood keeps the lines within the limit"
    );

    // A secret a plugin puts in its error, its summary or its panic is redacted there too.
    for (behaviour, outcome, shown) in [
        ("fail-secret", "plugin_failed", true),
        ("summary-secret", "ok", true),
        ("panic-secret", "plugin_trap", false),
    ] {
        app.patch(
            &install,
            &admin,
            json!({"config": {"behaviour": behaviour}}),
        )
        .await;
        let run = app
            .post(&format!("{install}/invoke"), &admin, event.clone())
            .await;
        assert_eq!(run.json["outcome"], outcome, "{behaviour}: {}", run.text);
        assert!(
            !run.text.contains("s3cr3t-value-42"),
            "{behaviour}: {}",
            run.text
        );
        if shown {
            assert!(run.text.contains("[redacted]"), "{behaviour}: {}", run.text);
        }
    }
    let runs = app
        .get(
            &format!("/api/v1/tenants/{tenant}/plugin-runs?limit=200"),
            &admin,
        )
        .await;
    assert!(!runs.text.contains("s3cr3t-value-42"), "{}", runs.text);

    // At rest the secret is ciphertext only.
    let stored: (Vec<u8>,) = sqlx::query_as(
        "SELECT secrets FROM plugin_installs WHERE tenant_id = $1 AND plugin_id = 'hostile'",
    )
    .bind(&tenant)
    .fetch_one(&app.state.db.pool)
    .await
    .unwrap();
    assert!(!stored.0.windows(15).any(|w| w == b"s3cr3t-value-42"));
    assert!(!app.get(&install, &admin).await.text.contains("s3cr3t"));
}

/// Installs the hostile action, spinning for three seconds on each call; returns its path.
async fn spinning_install(app: &TestApp, tenant: &str, admin: &str) -> String {
    app.publish("hostile", None).await;
    let installed = app
        .post(
            &format!("/api/v1/tenants/{tenant}/plugins"),
            admin,
            json!({"plugin_id": "hostile", "config": {"behaviour": "loop"}}),
        )
        .await;
    let install = format!(
        "/api/v1/tenants/{tenant}/plugins/{}",
        installed.json["id"].as_str().unwrap()
    );
    app.patch(
        &install,
        &app.platform_token,
        json!({"limits": {"deadline_ms": 3000}}),
    )
    .await;
    install
}

async fn the_host_serves_while_a_plugin_spins(app: TestApp) {
    let (tenant, admin) = app.tenant_with_admin("acme").await;
    let install = spinning_install(&app, &tenant, &admin).await;
    let started = Instant::now();
    let invoke = format!("{install}/invoke");
    let spinning = app.post(&invoke, &admin, json!({"input": {"kind": "x"}}));
    let serving = async {
        tokio::time::sleep(Duration::from_millis(300)).await;
        let mut answered = 0;
        for _ in 0..10 {
            assert_eq!(
                app.send(reqwest::Method::GET, "/healthz", None, None, &[])
                    .await
                    .status,
                200
            );
            assert_eq!(
                app.get(&format!("/api/v1/tenants/{tenant}/users"), &admin)
                    .await
                    .status,
                200
            );
            answered += 1;
        }
        (answered, started.elapsed())
    };
    let (run, (answered, served_by)) = tokio::join!(spinning, serving);
    assert_eq!(run.json["outcome"], "plugin_timeout");
    assert_eq!(answered, 10);
    assert!(
        served_by < started.elapsed(),
        "other requests finished while the plugin still ran"
    );
    assert!(
        served_by < Duration::from_millis(2900),
        "served within the plugin's deadline ({served_by:?})"
    );
}

/// A pool of four instances, two per tenant.
fn small_pool(config: &mut portico::config::Config) {
    config.plugin_pool.concurrency = Some(4);
    config.plugin_pool.per_tenant = Some(2);
}

async fn one_tenant_cannot_take_the_whole_plugin_pool(app: TestApp) {
    let (greedy, greedy_admin) = app.tenant_with_admin("greedy").await;
    let install = spinning_install(&app, &greedy, &greedy_admin).await;
    // The other tenant's portal uses the Harbour theme.
    let (tenant, admin) = app.tenant_with_admin("acme").await;
    let harbour = app.install_of(&tenant, &admin, "harbour").await;
    let profiles = app
        .get(&format!("/api/v1/tenants/{tenant}/portal-profiles"), &admin)
        .await;
    let profile = profiles.json["items"][0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let themed = app
        .patch(
            &format!("/api/v1/tenants/{tenant}/portal-profiles/{profile}"),
            &admin,
            json!({"theme_install_id": harbour}),
        )
        .await;
    assert_eq!(themed.status, 200, "{}", themed.text);
    let (_, path) = app.ticket_with_link(&tenant, &admin, "Paper jam").await;

    // Eight slow calls at once from one tenant: two run, the rest wait for its share.
    let invoke = format!("{install}/invoke");
    let saturating = futures_util::future::join_all(
        (0..8).map(|_| app.post(&invoke, &greedy_admin, json!({"input": {"kind": "x"}}))),
    );
    let rendering = async {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let mut pages = Vec::new();
        for _ in 0..3 {
            pages.push(app.page(&path, "acme.portico.test").await);
        }
        pages
    };
    let (runs, pages) = tokio::join!(saturating, rendering);
    for page in &pages {
        assert_eq!(page.status, 200);
        assert!(
            page.text.contains("class=\"harbour\""),
            "the theme rendered, not the fallback: {}",
            page.text
        );
    }
    let outcomes: Vec<&str> = runs
        .iter()
        .map(|r| r.json["outcome"].as_str().unwrap())
        .collect();
    assert!(
        outcomes
            .iter()
            .all(|o| ["plugin_timeout", "plugin_busy"].contains(o)),
        "{outcomes:?}"
    );
    assert!(
        outcomes.contains(&"plugin_busy"),
        "calls past the share waited: {outcomes:?}"
    );
    let failures = app
        .get(
            &format!("/api/v1/tenants/{tenant}/plugin-runs?plugin_id=harbour&limit=50"),
            &admin,
        )
        .await;
    assert_eq!(failures.json["items"], json!([]), "{}", failures.text);
}

on_both_backends!(configured(small_pool): one_tenant_cannot_take_the_whole_plugin_pool);

on_both_backends!(
    publish_install_invoke_upgrade_and_roll_back,
    new_tenants_get_the_built_in_plugins,
    hostile_plugins_are_recorded_with_typed_errors,
    the_host_serves_while_a_plugin_spins
);

/// A one-shot HTTP server on loopback: answers each request with `reply`, returns what it got.
async fn receiver(reply: &'static str) -> (String, tokio::task::JoinHandle<String>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let handle = tokio::spawn(async move {
        let (mut socket, _) = listener.accept().await.unwrap();
        let mut buf = vec![0u8; 4096];
        let n = socket.read(&mut buf).await.unwrap();
        let reply = reply.replace("{port}", &port.to_string());
        socket.write_all(reply.as_bytes()).await.unwrap();
        String::from_utf8_lossy(&buf[..n]).into_owned()
    });
    (format!("http://127.0.0.1:{port}/hook"), handle)
}

async fn outbound_app(allow_private: bool) -> (TestApp, String, String) {
    let app = TestApp::spawn_with(Backend::Sqlite, |c| {
        c.plugins_allow_private_network = allow_private;
        c.plugins_allow_http = true;
    })
    .await
    .unwrap();
    let (tenant, admin) = app.tenant_with_admin("acme").await;
    app.publish("hostile", None).await;
    let installed = app
        .post(
            &format!("/api/v1/tenants/{tenant}/plugins"),
            &admin,
            json!({"plugin_id": "hostile", "grants": {"http_hosts": ["127.0.0.1"]}}),
        )
        .await;
    assert_eq!(installed.status, 201, "{}", installed.text);
    let install = format!(
        "/api/v1/tenants/{tenant}/plugins/{}",
        installed.json["id"].as_str().unwrap()
    );
    (app, install, admin)
}

async fn call_url(app: &TestApp, install: &str, admin: &str, url: &str) -> Value {
    app.patch(
        install,
        admin,
        json!({"config": {"behaviour": "http", "url": url}}),
    )
    .await;
    app.post(
        &format!("{install}/invoke"),
        admin,
        json!({"input": {"kind": "x"}}),
    )
    .await
    .json
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn granted_plugins_reach_granted_hosts_only() {
    let (app, install, admin) = outbound_app(true).await;
    let (url, received) =
        receiver("HTTP/1.1 200 OK\r\ncontent-length: 5\r\nconnection: close\r\n\r\nhello").await;
    let run = call_url(&app, &install, &admin, &url).await;
    assert_eq!(run["outcome"], "ok", "{run}");
    assert_eq!(run["output"]["summary"], "200 hello");
    assert!(received.await.unwrap().starts_with("GET /hook HTTP/1.1"));

    // "localhost" is in the manifest but was not approved by the tenant.
    let denied = call_url(&app, &install, &admin, "http://localhost:9/").await;
    assert_eq!(denied["outcome"], "plugin_capability_denied", "{denied}");
    // A redirect to a host that was not granted is refused too.
    let (url, _) = receiver("HTTP/1.1 302 Found\r\nlocation: http://localhost:{port}/elsewhere\r\ncontent-length: 0\r\n\r\n").await;
    let redirected = call_url(&app, &install, &admin, &url).await;
    assert_eq!(
        redirected["outcome"], "plugin_capability_denied",
        "{redirected}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn private_addresses_are_refused_unless_the_operator_allows_them() {
    let (app, install, admin) = outbound_app(false).await;
    let (url, _) = receiver("HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n").await;
    let run = call_url(&app, &install, &admin, &url).await;
    assert_eq!(run["outcome"], "plugin_capability_denied", "{run}");
    assert!(
        run["message"].as_str().unwrap().contains("127.0.0.1"),
        "{run}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn channels_send_email_through_the_host_only_when_granted() {
    let sink = SmtpSink::start().await;
    let app = TestApp::spawn_with(Backend::Sqlite, |c| {
        c.smtp_server = Some(sink.address());
        c.smtp_from = "portal@acme.example".into();
    })
    .await
    .unwrap();
    let (tenant, admin) = app.tenant_with_admin("acme").await;
    assert_eq!(app.publish("mailer", None).await.status, 201);
    let installed = app
        .post(
            &format!("/api/v1/tenants/{tenant}/plugins"),
            &admin,
            json!({"plugin_id": "mailer"}),
        )
        .await;
    let install = format!(
        "/api/v1/tenants/{tenant}/plugins/{}",
        installed.json["id"].as_str().unwrap()
    );
    let message = json!({"input": {"recipient": {"name": "Eva", "email": "eva@customer.example", "language": "de"},
        "subject": "Your technician is on the way", "text": "See the tracking link."}, "idempotency_key": "msg-1"});

    let ungranted = app
        .post(&format!("{install}/invoke"), &admin, message.clone())
        .await;
    assert_eq!(
        ungranted.json["outcome"], "plugin_capability_denied",
        "{}",
        ungranted.text
    );

    app.patch(&install, &admin, json!({"grants": {"smtp": true}}))
        .await;
    let sent = app
        .post(&format!("{install}/invoke"), &admin, message)
        .await;
    assert_eq!(sent.json["outcome"], "ok", "{}", sent.text);
    assert_eq!(sent.json["output"]["delivery"]["provider_id"], "msg-1");
    let received = sink.wait_for(1).await;
    let data = String::from_utf8_lossy(&received[0].data);
    assert!(
        data.contains("Subject: Your technician is on the way"),
        "{data}"
    );
    assert!(data.contains("To: eva@customer.example"), "{data}");
    assert!(data.contains("From: portal@acme.example"), "{data}");

    // Thousands of recipients: refused before the host builds the message, as a typed error.
    app.patch(&install, &admin, json!({"config": {"copies": 5000}}))
        .await;
    let flooding = json!({"input": {"recipient": {"email": "eva@customer.example"},
        "subject": "Hello", "text": "Hello"}, "idempotency_key": "msg-2"});
    let refused = app
        .post(&format!("{install}/invoke"), &admin, flooding)
        .await;
    assert_eq!(
        refused.json["outcome"], "plugin_limit_exceeded",
        "{}",
        refused.text
    );
    assert_eq!(sink.received().len(), 1, "nothing more was sent");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_invoke_endpoint_is_rate_limited_per_tenant() {
    let Some(app) = TestApp::spawn_with(Backend::Sqlite, |c| {
        c.plugin_invocations_per_minute = 2;
    })
    .await
    else {
        return;
    };
    let message = json!({"input": {"recipient": {"email": "eva@customer.example"},
        "subject": "Hello", "text": "Hello"}});
    let mut replies = Vec::new();
    for slug in ["acme", "globex"] {
        let (tenant, admin) = app.tenant_with_admin(slug).await;
        let email = app.install_of(&tenant, &admin, "email").await;
        let invoke = format!("/api/v1/tenants/{tenant}/plugins/{email}/invoke");
        for _ in 0..3 {
            replies.push(app.post(&invoke, &admin, message.clone()).await);
        }
    }
    let statuses: Vec<u16> = replies.iter().map(|r| r.status).collect();
    assert_eq!(
        statuses,
        [200, 200, 429, 200, 200, 429],
        "one tenant's use leaves the other's"
    );
    assert_eq!(replies[2].code(), "invocation_limit_reached");
    assert!(replies[2].headers.contains_key("retry-after"));
}
