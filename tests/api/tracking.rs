//! The tracking page end users open from their link: rendering, languages, live updates,
//! tenant binding, revocation and guessing limits.

use std::time::Duration;

use serde_json::{Value, json};

use crate::on_both_backends;
use crate::support::process::HostProcess;
use crate::support::{TestApp, link_path};

/// A tenant "acme" (language de) with one ticket; returns (tenant, admin token, ticket id, link path).
async fn ticket_with_link(app: &TestApp) -> (String, String, String, String) {
    let (tenant, admin) = app.tenant_with_admin("acme").await;
    let (id, path) = app
        .ticket_with_link(&tenant, &admin, "Drucker <Fach 2>")
        .await;
    (tenant, admin, id, path)
}

/// Reads server-sent events from a response until one named `ticket` arrives.
async fn next_event(response: &mut reqwest::Response, buffer: &mut String) -> Value {
    loop {
        if let Some(end) = buffer.find("\n\n") {
            let block: String = buffer.drain(..end + 2).collect();
            if block.lines().any(|l| l == "event: ticket") {
                let data: String = block
                    .lines()
                    .filter_map(|l| l.strip_prefix("data: "))
                    .collect();
                return serde_json::from_str(&data).unwrap();
            }
            continue;
        }
        let chunk = tokio::time::timeout(Duration::from_secs(5), response.chunk())
            .await
            .expect("an event within 5 s")
            .unwrap()
            .unwrap();
        buffer.push_str(&String::from_utf8_lossy(&chunk));
    }
}

async fn the_tracking_page_shows_the_timeline_in_the_right_language(app: TestApp) {
    let (tenant, admin, id, path) = ticket_with_link(&app).await;
    let page = app.page(&path, "acme.portico.test").await;
    assert_eq!(page.status, 200, "{}", page.text);
    assert!(
        page.text.contains("Drucker &lt;Fach 2&gt;"),
        "escaped title"
    );
    assert!(
        page.text.contains("Auftrag eingegangen"),
        "the tenant's language"
    );
    assert!(
        page.text
            .contains(r#"data-status="received" class="reached current" aria-current="step""#),
        "{}",
        page.text
    );
    assert_eq!(page.headers["referrer-policy"], "no-referrer");
    assert_eq!(page.headers["x-content-type-options"], "nosniff");
    let csp = page.headers["content-security-policy"]
        .to_str()
        .unwrap()
        .to_string();
    let nonce = csp
        .split("script-src 'nonce-")
        .nth(1)
        .unwrap()
        .split('\'')
        .next()
        .unwrap();
    assert!(
        page.text.contains(&format!("<script nonce=\"{nonce}\"")),
        "scripts carry the nonce"
    );
    assert!(!csp.contains("unsafe-inline"));

    let spanish = app
        .send(
            reqwest::Method::GET,
            &path,
            None,
            None,
            &[
                ("host", "acme.portico.test"),
                ("accept-language", "fr;q=0.9, es;q=0.8"),
            ],
        )
        .await;
    assert!(
        spanish.text.contains("Solicitud recibida"),
        "the browser's language when we have it"
    );

    let tech = app
        .staff(&tenant, "tech@acme.example", &["technician"])
        .await;
    app.patch(
        &format!("/api/v1/tenants/{tenant}/users/{}", tech.0),
        &admin,
        json!({"display_name": "Tom Techniker"}),
    )
    .await;
    let ticket = format!("/api/v1/tenants/{tenant}/tickets/{id}");
    app.patch(&ticket, &admin, json!({"technician_id": tech.0}))
        .await;
    app.post(
        &format!("{ticket}/status"),
        &tech.1,
        json!({"status": "on_route"}),
    )
    .await;
    app.post(
        &format!("{ticket}/position"),
        &tech.1,
        json!({"latitude": 52.52, "longitude": 13.405, "eta": "2026-11-23T10:30:00Z"}),
    )
    .await;
    let on_route = app.page(&path, "acme.portico.test").await;
    assert!(on_route.text.contains("Tom Techniker"), "{}", on_route.text);
    assert!(
        on_route.text.contains("23.11.2026 11:30"),
        "ETA in the tenant's time zone"
    );
    assert!(on_route.text.contains("52.52000, 13.40500"));
}

async fn status_changes_arrive_live(app: TestApp) {
    let (tenant, admin, id, path) = ticket_with_link(&app).await;
    let mut events = reqwest::Client::new()
        .get(format!("{}{path}/events", app.base_url))
        .header("host", "acme.portico.test")
        .send()
        .await
        .unwrap();
    assert_eq!(events.headers()["content-type"], "text/event-stream");
    let mut buffer = String::new();
    assert_eq!(
        next_event(&mut events, &mut buffer).await["status"],
        "received"
    );
    let moved = app
        .post(
            &format!("/api/v1/tenants/{tenant}/tickets/{id}/status"),
            &admin,
            json!({"status": "dispatched"}),
        )
        .await;
    assert_eq!(moved.status, 200);
    let update = next_event(&mut events, &mut buffer).await;
    assert_eq!(update["status"], "dispatched");
    let dispatched = update["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["status"] == "dispatched")
        .unwrap();
    assert_eq!(dispatched["current"], true);
    assert!(dispatched["at"].is_string());
}

/// Opens a live stream on `path` and reads its first event.
async fn live_stream(app: &TestApp, path: &str) -> (reqwest::Response, String) {
    let mut events = reqwest::Client::new()
        .get(format!("{}{path}/events", app.base_url))
        .header("host", "acme.portico.test")
        .send()
        .await
        .unwrap();
    assert_eq!(events.status(), 200);
    let mut buffer = String::new();
    next_event(&mut events, &mut buffer).await;
    (events, buffer)
}

/// Reads until the server ends the stream; false if it is still open after ten seconds.
async fn ends(mut events: reqwest::Response) -> bool {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        match tokio::time::timeout_at(deadline, events.chunk()).await {
            Err(_) => return false,
            Ok(Ok(Some(_))) => continue,
            Ok(Ok(None) | Err(_)) => return true,
        }
    }
}

async fn live_updates_end_with_their_link(app: TestApp) {
    let (tenant, admin, id, path) = ticket_with_link(&app).await;
    let link = format!("/api/v1/tenants/{tenant}/tickets/{id}/tracking-link");
    let (events, _) = live_stream(&app, &path).await;
    assert_eq!(app.delete(&link, &admin).await.status, 204);
    assert!(ends(events).await, "revoking the link ends its stream");

    let reissued = app.post(&link, &admin, json!({})).await;
    let path = link_path(&reissued.json["tracking_url"]);
    let (events, _) = live_stream(&app, &path).await;
    let suspended = app
        .post(
            &format!("/api/v1/tenants/{tenant}/suspend"),
            &app.platform_token,
            json!({}),
        )
        .await;
    assert_eq!(suspended.status, 200, "{}", suspended.text);
    assert!(ends(events).await, "suspending the tenant ends its streams");
    app.post(
        &format!("/api/v1/tenants/{tenant}/resume"),
        &app.platform_token,
        json!({}),
    )
    .await;

    // One client holds at most 16 streams at once; closing one frees its place.
    let mut open = Vec::new();
    for _ in 0..16 {
        open.push(live_stream(&app, &path).await.0);
    }
    let over = app
        .page(&format!("{path}/events"), "acme.portico.test")
        .await;
    assert_eq!(over.status, 429);
    assert!(over.headers.contains_key("retry-after"));
    drop(open.pop());
    let mut freed = false;
    // The server notices the closed connection when it next writes (a keep-alive every 15 s).
    for _ in 0..250 {
        let again = reqwest::Client::new()
            .get(format!("{}{path}/events", app.base_url))
            .header("host", "acme.portico.test")
            .send()
            .await
            .unwrap();
        if again.status() == 200 {
            freed = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(freed, "a closed stream gives its place back");
}

async fn links_open_one_ticket_of_one_tenant_and_nothing_else(app: TestApp) {
    let (tenant, admin, id, path) = ticket_with_link(&app).await;
    app.tenant_with_admin("rival").await;
    let elsewhere = app.page(&path, "rival.portico.test").await;
    let unknown = app
        .page(
            "/t/AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
            "acme.portico.test",
        )
        .await;
    assert_eq!(elsewhere.status, 404);
    assert_eq!(unknown.status, 404);
    assert!(!elsewhere.text.contains("Drucker"));
    for page in [&elsewhere, &unknown] {
        assert!(
            page.text.contains("Dieser Link ist nicht gültig"),
            "the same friendly page: {}",
            page.text
        );
    }

    app.delete(
        &format!("/api/v1/tenants/{tenant}/tickets/{id}/tracking-link"),
        &admin,
    )
    .await;
    assert_eq!(
        app.page(&path, "acme.portico.test").await.status,
        404,
        "revoked"
    );

    app.post(
        &format!("/api/v1/tenants/{tenant}/suspend"),
        &app.platform_token,
        json!({}),
    )
    .await;
    let reissued = app
        .post(
            &format!("/api/v1/tenants/{tenant}/tickets/{id}/tracking-link"),
            &app.platform_token,
            json!({}),
        )
        .await;
    let fresh = reissued.json["tracking_url"]
        .as_str()
        .unwrap()
        .split("portico.test")
        .nth(1)
        .unwrap()
        .to_string();
    assert_eq!(
        app.page(&fresh, "acme.portico.test").await.status,
        503,
        "a suspended tenant's portal is unavailable"
    );
}

async fn guessing_links_is_rate_limited(app: TestApp) {
    let (_, _, _, path) = ticket_with_link(&app).await;
    for n in 0..20 {
        let guess = app
            .page(&format!("/t/guess-{n}"), "acme.portico.test")
            .await;
        assert_eq!(guess.status, 404);
    }
    let limited = app.page("/t/guess-21", "acme.portico.test").await;
    assert_eq!(limited.status, 429);
    assert_eq!(limited.headers["retry-after"], "600");
    assert_eq!(
        app.page(&path, "acme.portico.test").await.status,
        200,
        "a valid link is served even to a client that guessed"
    );
}

async fn tokens_stay_out_of_the_logs(app: TestApp) {
    let (_, _, _, path) = ticket_with_link(&app).await;
    let token = path.trim_start_matches("/t/").to_string();
    let config = "base_domain = \"portico.test\"\npublic_url = \"http://portico.test\"\nbackground_workers = false\n";
    // Every request logged, at debug level.
    let host = HostProcess::start(&app, config, &[("RUST_LOG", "debug")]).await;
    let client = reqwest::Client::new();
    for page in [
        path.clone(),
        format!("{path}/booking"),
        format!("{path}/events?from=1"),
    ] {
        let reply = client
            .get(format!("{}{page}", host.base_url))
            .header("host", "acme.portico.test")
            .timeout(Duration::from_secs(5))
            .send()
            .await;
        assert!(reply.is_ok(), "{page} answered");
    }
    let written = host.stop();
    assert!(
        written.contains("/t/…/booking"),
        "the requests were logged: {written}"
    );
    assert!(!written.contains(&token), "a token was logged: {written}");
}

/// The application behind a reverse proxy on the loopback address.
fn behind_proxy(config: &mut portico::config::Config) {
    config.trusted_proxies = vec!["127.0.0.1".parse().unwrap()];
}

/// A page on acme's portal through the proxy, for a client with `forwarded_for` as the
/// proxy passed it on.
async fn through_proxy(app: &TestApp, path: &str, forwarded_for: &str) -> u16 {
    app.send(
        reqwest::Method::GET,
        path,
        None,
        None,
        &[
            ("host", "acme.portico.test"),
            ("x-forwarded-for", forwarded_for),
        ],
    )
    .await
    .status
}

async fn behind_a_proxy_guesses_count_per_client(app: TestApp) {
    let (_, _, _, path) = ticket_with_link(&app).await;
    // The client writes what it likes on the left; the proxy appends the address it saw.
    for n in 0..20 {
        let forged = format!("10.0.0.{n}, 203.0.113.9");
        assert_eq!(
            through_proxy(&app, &format!("/t/guess-{n}"), &forged).await,
            404
        );
    }
    assert_eq!(
        through_proxy(&app, "/t/guess-20", "10.9.9.9, 203.0.113.9").await,
        429,
        "a forged left-most hop does not escape the limit"
    );
    assert_eq!(
        through_proxy(&app, &path, "203.0.113.9").await,
        200,
        "the guesser's own valid link still opens"
    );
    assert_eq!(
        through_proxy(&app, "/t/guess-x", "198.51.100.7").await,
        404,
        "another client behind the same proxy is not limited"
    );
    assert_eq!(
        through_proxy(&app, &path, "198.51.100.7, 127.0.0.1").await,
        200,
        "trusted hops are skipped"
    );
    // IPv6 clients count per /64, since one subscriber holds a whole one.
    for n in 0..20 {
        let client = format!("2001:db8:1:2::{n:x}");
        assert_eq!(through_proxy(&app, "/t/guess", &client).await, 404);
    }
    assert_eq!(
        through_proxy(&app, "/t/guess", "2001:db8:1:2::ffff").await,
        429
    );
    assert_eq!(
        through_proxy(&app, "/t/guess", "2001:db8:1:3::1").await,
        404
    );
}

on_both_backends!(
    the_tracking_page_shows_the_timeline_in_the_right_language,
    status_changes_arrive_live,
    links_open_one_ticket_of_one_tenant_and_nothing_else,
    guessing_links_is_rate_limited,
    live_updates_end_with_their_link
);

on_both_backends!(configured(behind_proxy): behind_a_proxy_guesses_count_per_client);

on_both_backends!(tokens_stay_out_of_the_logs);
