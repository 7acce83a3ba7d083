//! Health, request ids, error shapes, and the OpenAPI document.

use serde_json::{Value, json};

use crate::on_both_backends;
use crate::support::TestApp;

async fn health_and_request_ids(app: TestApp) {
    let alive = app
        .send(reqwest::Method::GET, "/healthz", None, None, &[])
        .await;
    assert_eq!(alive.status, 200);
    assert!(alive.headers.contains_key("x-request-id"));
    let ready = app
        .send(reqwest::Method::GET, "/readyz", None, None, &[])
        .await;
    assert_eq!(ready.status, 200);
    assert_eq!(ready.json["status"], "ready");
    let echoed = app
        .send(
            reqwest::Method::GET,
            "/healthz",
            None,
            None,
            &[("x-request-id", "abc-123")],
        )
        .await;
    assert_eq!(echoed.headers["x-request-id"], "abc-123");
}

async fn bad_input_gets_json_errors_with_the_right_status(app: TestApp) {
    let token = app.platform_token.clone();
    let no_auth = app
        .send(reqwest::Method::GET, "/api/v1/tenants", None, None, &[])
        .await;
    assert_eq!((no_auth.status, no_auth.code()), (401, "unauthorized"));
    let bad_token = app.get("/api/v1/tenants", "ptk_not-a-real-token").await;
    assert_eq!((bad_token.status, bad_token.code()), (401, "unauthorized"));

    let malformed = app
        .send(
            reqwest::Method::POST,
            "/api/v1/tenants",
            Some(&token),
            None,
            &[("content-type", "application/json")],
        )
        .await;
    assert_eq!(
        (malformed.status, malformed.code()),
        (400, "malformed_body")
    );
    let no_type = app
        .send(
            reqwest::Method::POST,
            "/api/v1/tenants",
            Some(&token),
            None,
            &[],
        )
        .await;
    assert_eq!(
        (no_type.status, no_type.code()),
        (400, "unsupported_content_type")
    );
    let unknown_field = app
        .post(
            "/api/v1/tenants",
            &token,
            json!({"slug": "a", "display_name": "A", "colour": 1}),
        )
        .await;
    assert_eq!(
        (unknown_field.status, unknown_field.code()),
        (422, "invalid_body")
    );
    let bad_slug = app
        .post(
            "/api/v1/tenants",
            &token,
            json!({"slug": "Not Valid", "display_name": "A"}),
        )
        .await;
    assert_eq!(bad_slug.status, 422);
    assert!(
        bad_slug.json["message"].as_str().unwrap().contains("slug"),
        "{}",
        bad_slug.text
    );
    let bad_tz = app
        .post(
            "/api/v1/tenants",
            &token,
            json!({"slug": "a", "display_name": "A", "time_zone": "Mars/Base"}),
        )
        .await;
    assert_eq!(bad_tz.status, 422);
    let big = "x".repeat(2 * 1024 * 1024);
    let too_large = app
        .post(
            "/api/v1/tenants",
            &token,
            json!({"slug": "a", "display_name": big}),
        )
        .await;
    assert_eq!(
        (too_large.status, too_large.code()),
        (413, "payload_too_large")
    );
    let bad_limit = app.get("/api/v1/tenants?limit=0", &token).await;
    assert_eq!((bad_limit.status, bad_limit.code()), (400, "invalid_query"));
    let bad_limit = app.get("/api/v1/tenants?limit=abc", &token).await;
    assert_eq!((bad_limit.status, bad_limit.code()), (400, "invalid_query"));
    let no_route = app.get("/api/v1/nothing-here", &token).await;
    assert_eq!((no_route.status, no_route.code()), (404, "not_found"));
    let wrong_method = app
        .send(
            reqwest::Method::PUT,
            "/api/v1/tenants",
            Some(&token),
            None,
            &[],
        )
        .await;
    assert_eq!(
        (wrong_method.status, wrong_method.code()),
        (405, "method_not_allowed")
    );
    for reply in [&no_auth, &malformed, &unknown_field, &too_large, &no_route] {
        assert!(
            reply.json["message"]
                .as_str()
                .is_some_and(|m| !m.is_empty()),
            "{}",
            reply.text
        );
    }
}

async fn openapi_documents_every_api_route(app: TestApp) {
    let spec = app
        .send(
            reqwest::Method::GET,
            "/api/v1/openapi.json",
            None,
            None,
            &[],
        )
        .await;
    assert_eq!(spec.status, 200);
    assert_eq!(spec.json["openapi"], "3.1.0");
    let paths = spec.json["paths"].as_object().unwrap();
    for expected in [
        "/api/v1/tenants",
        "/api/v1/tenants/{tenant}",
        "/api/v1/tenants/{tenant}/suspend",
        "/api/v1/tenants/{tenant}/resume",
        "/api/v1/tenants/{tenant}/users",
        "/api/v1/tenants/{tenant}/users/{user}",
        "/api/v1/tenants/{tenant}/tokens",
        "/api/v1/tenants/{tenant}/tokens/{token}",
        "/api/v1/tenants/{tenant}/me",
        "/api/v1/tenants/{tenant}/me/tokens",
        "/api/v1/tenants/{tenant}/me/tokens/{token}",
        "/api/v1/tenants/{tenant}/domains",
        "/api/v1/tenants/{tenant}/domains/{domain}",
        "/api/v1/tenants/{tenant}/domains/{domain}/verify",
        "/api/v1/tenants/{tenant}/roles",
        "/api/v1/tenants/{tenant}/role-assignments",
        "/api/v1/tenants/{tenant}/role-assignments/{assignment}",
        "/api/v1/tenants/{tenant}/policies",
        "/api/v1/tenants/{tenant}/policies/{policy}",
        "/api/v1/tenants/{tenant}/audit",
        "/api/v1/audit",
        "/api/v1/auth/token",
    ] {
        assert!(paths.contains_key(expected), "{expected} is not documented");
    }
    let answers = |path: &str, method: &str| -> Vec<String> {
        paths[path][method]["responses"]
            .as_object()
            .unwrap()
            .keys()
            .cloned()
            .collect()
    };
    let guarded = answers("/api/v1/tenants/{tenant}/role-assignments", "post");
    assert!(
        guarded.contains(&"401".into()) && guarded.contains(&"403".into()),
        "{guarded:?}"
    );
    assert!(answers("/api/v1/auth/token", "post").contains(&"429".into()));
    // Types of the same name in different areas each keep a schema of their own.
    let schemas = spec.json["components"]["schemas"].as_object().unwrap();
    for name in [
        "Status",
        "DeliveryStatus",
        "TimelineStep",
        "ActionStep",
        "BookingPreviewRequest",
        "ActionPreviewRequest",
    ] {
        assert!(schemas.contains_key(name), "{name} is missing");
    }
    // A rule set is its definition plus an id and times: the definition's refusal of unknown
    // fields (a request's) does not close the response.
    let rule_set = &schemas["RuleSet"]["allOf"][0];
    assert_eq!(rule_set["additionalProperties"], Value::Null, "{rule_set}");
    assert!(
        rule_set["properties"]["time_zone"].is_object(),
        "{rule_set}"
    );
    // Variants of tagged enums that refuse unknown fields say so.
    for name in ["Trigger", "Source", "ActionStep"] {
        for variant in schemas[name]["oneOf"].as_array().unwrap() {
            assert_eq!(variant["additionalProperties"], false, "{name}: {variant}");
        }
    }
    // Time zones are listed as the server knows them, and it takes the ones it lists.
    let zones = schemas["TimeZoneName"]["enum"].as_array().unwrap();
    // The list is this machine's time-zone database, so it is never empty where zones parse.
    assert!(zones.contains(&json!("Europe/Berlin")), "{zones:?}");
    for (i, zone) in [&zones[0], &zones[zones.len() / 2], &zones[zones.len() - 1]]
        .into_iter()
        .enumerate()
    {
        let created = app
            .post(
                "/api/v1/tenants",
                &app.platform_token,
                json!({"slug": format!("zone-{i}"), "display_name": "Zone", "time_zone": zone}),
            )
            .await;
        assert_eq!(created.status, 201, "{zone}: {}", created.text);
    }
    let roles = &schemas["CreateUser"]["properties"]["roles"]["items"];
    assert_eq!(roles["$ref"], "#/components/schemas/RoleName", "{roles}");
    // A whole number written with a fraction (`30.0`) is the integer JSON Schema says it is.
    let (tenant, admin) = app.tenant_with_admin("whole-numbers").await;
    let token = app
        .post(
            &format!("/api/v1/tenants/{tenant}/me/tokens"),
            &admin,
            json!({"name": "ci", "expires_in_days": 30.0}),
        )
        .await;
    assert_eq!(token.status, 201, "{}", token.text);
    let token = app
        .post(
            &format!("/api/v1/tenants/{tenant}/me/tokens"),
            &admin,
            json!({"name": "ci", "expires_in_days": 30.5}),
        )
        .await;
    assert_eq!(token.status, 422, "{}", token.text);
    // A body is an object: an array of a struct's fields is not one.
    let array = app
        .send(
            reqwest::Method::POST,
            &format!("/api/v1/tenants/{tenant}/me/tokens"),
            Some(&admin),
            Some(&json!(["ci", 30])),
            &[],
        )
        .await;
    assert_eq!(array.status, 422, "{}", array.text);
    // Every documented operation answers (no documented route is missing from the router).
    for (path, item) in paths {
        for method in item.as_object().unwrap().keys() {
            let concrete = path.replace("{tenant}", "nobody").replace(['{', '}'], "");
            let method = reqwest::Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
            let reply = app
                .send(
                    method.clone(),
                    &concrete,
                    Some(&app.platform_token),
                    None,
                    &[],
                )
                .await;
            let routed = reply.status != 405 && reply.json["message"] != "route not found";
            assert!(
                routed,
                "{method} {path} is documented but not routed: {}",
                reply.text
            );
        }
    }
    let docs = app
        .send(reqwest::Method::GET, "/api/v1/docs", None, None, &[])
        .await;
    assert_eq!(docs.status, 200);
    assert!(docs.text.contains("role-assignments"), "{}", docs.text);
    assert!(
        docs.headers["content-security-policy"]
            .to_str()
            .unwrap()
            .contains("default-src 'none'")
    );
}

on_both_backends!(
    health_and_request_ids,
    bad_input_gets_json_errors_with_the_right_status,
    openapi_documents_every_api_route
);

/// Slow clients: the server cuts one that takes too long over its headers, and answers others
/// meanwhile.
fn quick_header_timeout(config: &mut portico::config::Config) {
    config.server.header_read_timeout_secs = 2;
}

async fn a_client_sending_its_headers_slowly_is_cut_off(app: TestApp) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let address = app.base_url.trim_start_matches("http://").to_string();
    let mut slow = Vec::new();
    for _ in 0..20 {
        slow.push(tokio::net::TcpStream::connect(&address).await.unwrap());
    }
    // One byte a second, as a slowloris client sends them: twelve seconds for the first line.
    for byte in b"GET /healthz".iter() {
        for stream in &mut slow {
            // A write fails once the server has closed the connection: that is the point.
            let _ = stream.write_all(&[*byte]).await;
        }
        let alive = app
            .send(reqwest::Method::GET, "/healthz", None, None, &[])
            .await;
        assert_eq!(alive.status, 200, "others are answered meanwhile");
        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    }
    for mut stream in slow {
        let mut buffer = [0u8; 1024];
        // Closed by the server: the read ends (at the end of the stream, or with a reset),
        // where a connection the server still held would wait.
        let read =
            tokio::time::timeout(std::time::Duration::from_secs(10), stream.read(&mut buffer))
                .await;
        assert!(read.is_ok(), "the slow connection is still open");
    }
}

on_both_backends!(configured(quick_header_timeout): a_client_sending_its_headers_slowly_is_cut_off);

#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn local_state_is_private_and_shared_folders_are_refused() {
    use std::os::unix::fs::PermissionsExt;
    // With a key file of its own, not the tests' shared key.
    let Some(app) =
        TestApp::spawn_with(crate::support::Backend::Sqlite, |c| c.secret_key = None).await
    else {
        return;
    };
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    let config = app.state.config.clone();
    assert_eq!(mode(&config.data_dir.join("secret.key")), 0o600);
    let database = config.database_url();
    let file = database
        .expose()
        .trim_start_matches("sqlite://")
        .split('?')
        .next()
        .unwrap()
        .to_string();
    assert_eq!(mode(std::path::Path::new(&file)), 0o600, "{file}");

    // A folder or key others may write is refused at start, with the reason.
    let shared =
        std::env::temp_dir().join(format!("portico-shared-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&shared).unwrap();
    let open_to_all = |p: &std::path::Path| {
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o777)).unwrap()
    };
    let refused = |config: portico::config::Config| async move {
        match portico::AppState::build(config).await {
            Ok(_) => panic!("started with shared local state"),
            Err(e) => format!("{e:#}"),
        }
    };
    let cache = shared.join("cache");
    std::fs::create_dir_all(&cache).unwrap();
    open_to_all(&cache);
    let with_cache = portico::config::Config {
        plugin_cache_dir: Some(cache.clone()),
        ..config.clone()
    };
    assert!(
        refused(with_cache)
            .await
            .contains("writable by other users")
    );

    let keyed = shared.join("keyed");
    std::fs::create_dir_all(&keyed).unwrap();
    std::fs::copy(config.data_dir.join("secret.key"), keyed.join("secret.key")).unwrap();
    open_to_all(&keyed.join("secret.key"));
    let with_key = portico::config::Config {
        data_dir: keyed,
        ..config.clone()
    };
    assert!(refused(with_key).await.contains("writable by other users"));
    std::fs::remove_dir_all(&shared).unwrap();
}
