//! Portal profiles and what they change on the end user's pages: branding, logo, booking,
//! feedback, link expiry, and themes (with the built-in page when a theme fails).

use std::io::Cursor;

use reqwest::Method;
use serde_json::{Value, json};

use crate::on_both_backends;
use crate::support::TestApp;

pub const HOST: &str = "acme.portico.test";

/// A tenant "acme" (language de) with a project and one ticket; returns (tenant, admin token,
/// project id, ticket id, link path).
pub async fn setup(app: &TestApp) -> (String, String, String, String, String) {
    let (tenant, admin) = app.tenant_with_admin("acme").await;
    let project = app
        .post(
            &format!("/api/v1/tenants/{tenant}/projects"),
            &admin,
            json!({"name": "Printers"}),
        )
        .await;
    assert_eq!(project.status, 201, "{}", project.text);
    let project = project.json["id"].as_str().unwrap().to_string();
    let created = app
        .post(
            &format!("/api/v1/tenants/{tenant}/tickets"),
            &admin,
            json!({"project_id": project, "title": "Paper jam",
                   "contact": {"first_name": "Eva", "last_name": "Schmidt", "email": "eva@example.com"}}),
        )
        .await;
    assert_eq!(created.status, 201, "{}", created.text);
    let path = created.json["tracking_url"]
        .as_str()
        .unwrap()
        .split("portico.test")
        .nth(1)
        .unwrap()
        .to_string();
    (
        tenant,
        admin,
        project,
        created.json["id"].as_str().unwrap().to_string(),
        path,
    )
}

/// A profile in English for the project, with the given fields.
async fn profile_for(
    app: &TestApp,
    tenant: &str,
    admin: &str,
    project: &str,
    fields: Value,
) -> String {
    let mut body = json!({"name": "Branded", "language": "en"});
    body.as_object_mut()
        .unwrap()
        .extend(fields.as_object().unwrap().clone());
    let created = app
        .post(
            &format!("/api/v1/tenants/{tenant}/portal-profiles"),
            admin,
            body,
        )
        .await;
    assert_eq!(created.status, 201, "{}", created.text);
    let id = created.json["id"].as_str().unwrap().to_string();
    let assigned = app
        .patch(
            &format!("/api/v1/tenants/{tenant}/projects/{project}"),
            admin,
            json!({"profile_id": id}),
        )
        .await;
    assert_eq!(assigned.status, 200, "{}", assigned.text);
    id
}

async fn set_status(app: &TestApp, tenant: &str, admin: &str, ticket: &str, status: &str) {
    let moved = app
        .post(
            &format!("/api/v1/tenants/{tenant}/tickets/{ticket}/status"),
            admin,
            json!({"status": status}),
        )
        .await;
    assert_eq!(moved.status, 200, "{}", moved.text);
}

fn image(width: u32, height: u32, format: image::ImageFormat) -> Vec<u8> {
    let pixels =
        image::RgbImage::from_fn(width, height, |x, y| image::Rgb([x as u8, y as u8, 200]));
    let mut out = Vec::new();
    pixels.write_to(&mut Cursor::new(&mut out), format).unwrap();
    out
}

pub fn csrf_token(html: &str) -> String {
    html.split("name=\"csrf_token\" value=\"")
        .nth(1)
        .expect("a CSRF token in the form")
        .split('"')
        .next()
        .unwrap()
        .to_string()
}

pub async fn post_form(
    app: &TestApp,
    path: &str,
    body: &str,
    extra: &[(&str, &str)],
) -> crate::support::Reply {
    let mut headers = vec![
        ("host", HOST),
        ("content-type", "application/x-www-form-urlencoded"),
    ];
    headers.extend_from_slice(extra);
    app.send_bytes(Method::POST, path, None, body.as_bytes().to_vec(), &headers)
        .await
}

async fn profiles_are_created_edited_cloned_and_deleted(app: TestApp) {
    let (tenant, admin, project, _, _) = setup(&app).await;
    let profiles = format!("/api/v1/tenants/{tenant}/portal-profiles");
    let listed = app.get(&profiles, &admin).await;
    let items = listed.json["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "every tenant starts with a default profile");
    assert_eq!(items[0]["is_default"], true);
    let default = items[0]["id"].as_str().unwrap().to_string();

    let branded = profile_for(&app, &tenant, &admin, &project, json!({
            "mode": "booking", "feedback": true, "salutation": "Dear {first_name},", "link_expiry_days": 30,
            "booking_text": "Pick a window.", "booking_disclaimer": "Changes are free until the day before.",
            "logo_link": "https://acme.example", "language": "es",
            "colours": {"light": {"main": "#7B1FA2", "main_text": "#ffffff", "secondary_button": "#eeeeee", "body": "#ffffff"},
                        "dark": {"main": "#ce93d8", "main_text": "#000000", "secondary_button": "#333333", "body": "#121212"}}
        })).await;
    let fetched = app.get(&format!("{profiles}/{branded}"), &admin).await;
    assert_eq!(fetched.json["mode"], "booking");
    assert_eq!(
        fetched.json["colours"]["light"]["main"], "#7b1fa2",
        "colours are normalised"
    );
    assert_eq!(fetched.json["is_default"], false);
    assert_eq!(fetched.json["language"], "es");
    let plain = app.post(&profiles, &admin, json!({"name": "Plain"})).await;
    assert_eq!(
        plain.json["language"], "de",
        "the tenant's language by default"
    );
    assert_eq!(plain.json["mode"], "tracking");

    let edited = app
        .patch(
            &format!("{profiles}/{branded}"),
            &admin,
            json!({"feedback": false, "link_expiry_days": null, "language": "de"}),
        )
        .await;
    assert_eq!(edited.status, 200, "{}", edited.text);
    assert_eq!(edited.json["feedback"], false);
    assert_eq!(edited.json["link_expiry_days"], Value::Null);
    assert_eq!(
        edited.json["salutation"], "Dear {first_name},",
        "untouched fields stay"
    );

    // Bad input: each a clear error, and nothing changes.
    for (body, code) in [
        (
            json!({"colours": {"light": {"main": "#ffff00", "main_text": "#ffffff", "secondary_button": "#eeeeee", "body": "#ffffff"},
                                "dark": {"main": "#ce93d8", "main_text": "#000000", "secondary_button": "#333333", "body": "#121212"}}}),
            "low_contrast",
        ),
        (json!({"logo_link": "javascript:alert(1)"}), "invalid_link"),
        (json!({"link_expiry_days": 0}), "invalid_link_expiry"),
        (
            json!({"theme_install_id": app.install_of(&tenant, &admin, "email").await}),
            "not_a_theme",
        ),
        (
            json!({"theme_install_id": "no-such-install"}),
            "unknown_theme",
        ),
    ] {
        let refused = app
            .patch(&format!("{profiles}/{branded}"), &admin, body.clone())
            .await;
        assert_eq!(refused.status, 422, "{body}: {}", refused.text);
        assert_eq!(refused.code(), code, "{body}");
    }
    let bad_colour = app
        .patch(
            &format!("{profiles}/{branded}"),
            &admin,
            json!({"colours": {"light": {"main": "red"}}}),
        )
        .await;
    assert_eq!(bad_colour.status, 422);
    assert_eq!(
        app.get(&format!("{profiles}/{branded}"), &admin).await.json["colours"]["light"]["main"],
        "#7b1fa2"
    );
    assert_eq!(
        app.post(&profiles, &admin, json!({"name": "Branded"}))
            .await
            .status,
        409,
        "names are unique"
    );

    let copy = app
        .post(
            &format!("{profiles}/{branded}/clone"),
            &admin,
            json!({"name": "Branded copy"}),
        )
        .await;
    assert_eq!(copy.status, 201, "{}", copy.text);
    assert_eq!(copy.json["booking_text"], "Pick a window.");
    assert_eq!(copy.json["colours"], fetched.json["colours"]);
    assert_eq!(copy.json["is_default"], false);
    let copy = copy.json["id"].as_str().unwrap().to_string();

    let promoted = app
        .patch(
            &format!("{profiles}/{copy}"),
            &admin,
            json!({"is_default": true}),
        )
        .await;
    assert_eq!(promoted.json["is_default"], true);
    assert_eq!(
        app.get(&format!("{profiles}/{default}"), &admin).await.json["is_default"],
        false,
        "one default per tenant"
    );
    let demote = app
        .patch(
            &format!("{profiles}/{copy}"),
            &admin,
            json!({"is_default": false}),
        )
        .await;
    assert_eq!(demote.code(), "default_required");
    let refused = app.delete(&format!("{profiles}/{copy}"), &admin).await;
    assert_eq!((refused.status, refused.code()), (409, "default_profile"));

    assert_eq!(
        app.delete(&format!("{profiles}/{branded}"), &admin)
            .await
            .status,
        204
    );
    let project_after = app
        .get(&format!("/api/v1/tenants/{tenant}/projects"), &admin)
        .await;
    assert_eq!(
        project_after.json["items"][0]["profile_id"],
        Value::Null,
        "the project falls back to the default"
    );
    let audit = app
        .get(&format!("/api/v1/tenants/{tenant}/audit?limit=200"), &admin)
        .await;
    for action in [
        "portal_profile.create",
        "portal_profile.update",
        "portal_profile.clone",
        "portal_profile.delete",
        "project.update",
    ] {
        assert!(audit.text.contains(action), "{action} is audited");
    }
}

async fn logos_are_checked_re_encoded_and_served_as_png(app: TestApp) {
    let (tenant, admin, project, _, path) = setup(&app).await;
    let profile = profile_for(&app, &tenant, &admin, &project, json!({})).await;
    let logo = format!("/api/v1/tenants/{tenant}/portal-profiles/{profile}/logo");
    let put = |bytes: Vec<u8>, kind: &'static str| {
        let token = admin.clone();
        let logo = logo.clone();
        let app = &app;
        async move {
            app.send_bytes(
                Method::PUT,
                &logo,
                Some(&token),
                bytes,
                &[("content-type", kind)],
            )
            .await
        }
    };

    let gif = b"GIF89a\x01\x00\x01\x00\x80\x00\x00\x00\x00\x00\xff\xff\xff!\xf9\x04\x01\x00\x00\x00\x00,\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02D\x01\x00;".to_vec();
    let svg = b"<svg xmlns='http://www.w3.org/2000/svg' onload='alert(1)'/>".to_vec();
    for (bytes, code) in [
        (gif, "unsupported_image"),
        (svg, "unsupported_image"),
        (image(900, 50, image::ImageFormat::Png), "image_too_large"),
    ] {
        let refused = put(bytes, "image/png").await;
        assert_eq!(
            (refused.status, refused.code()),
            (422, code),
            "{}",
            refused.text
        );
    }
    let mut big = image(300, 300, image::ImageFormat::Png);
    big.resize(21 * 1024, 0);
    assert_eq!(put(big, "image/png").await.status, 413);
    assert_eq!(
        app.get(
            &format!("/api/v1/tenants/{tenant}/portal-profiles/{profile}"),
            &admin
        )
        .await
        .json["logo_url"],
        Value::Null,
        "nothing stored"
    );

    let jpeg = put(image(64, 32, image::ImageFormat::Jpeg), "image/jpeg").await;
    assert_eq!(jpeg.status, 200, "{}", jpeg.text);
    let url = jpeg.json["logo_url"].as_str().unwrap().to_string();
    let served = app.page(&url, HOST).await;
    assert_eq!(served.status, 200);
    assert_eq!(served.headers["content-type"], "image/png");
    assert_eq!(served.headers["x-content-type-options"], "nosniff");
    assert!(
        served.text.starts_with("\u{FFFD}PNG\r\n\u{1a}\n"),
        "the JPEG was stored re-encoded as PNG"
    );
    let page = app.page(&path, HOST).await;
    let version = url.split("?v=").nth(1).unwrap();
    assert!(
        page.text.contains(&format!("{profile}?v={version}")),
        "the page shows the logo: {}",
        page.text
    );

    // Another tenant's host does not serve it.
    app.tenant_with_admin("rival").await;
    assert_eq!(app.page(&url, "rival.portico.test").await.status, 404);

    let removed = app.delete(&logo, &admin).await;
    assert_eq!(removed.json["logo_url"], Value::Null);
    assert_eq!(app.page(&url, HOST).await.status, 404);
}

async fn the_profile_brands_the_page_and_offers_booking(app: TestApp) {
    let (tenant, admin, project, ticket, path) = setup(&app).await;
    let before = app.page(&path, HOST).await;
    assert!(
        before.text.contains("--portico-main: #0b5cad"),
        "the default profile's colours"
    );
    assert!(
        !before.text.contains("id=\"book\""),
        "tracking only by default"
    );

    profile_for(&app, &tenant, &admin, &project, json!({
            "mode": "booking", "salutation": "Dear {first_name} {last_name},",
            "booking_text": "Pick a <window>.", "booking_disclaimer": "Free changes until the day before.",
            "colours": {"light": {"main": "#7b1fa2", "main_text": "#ffffff", "secondary_button": "#eeeeee", "body": "#ffffff"},
                        "dark": {"main": "#ce93d8", "main_text": "#000000", "secondary_button": "#333333", "body": "#121212"}}
        })).await;
    let page = app.page(&path, HOST).await;
    assert!(
        page.text.contains("--portico-main: #7b1fa2"),
        "{}",
        page.text
    );
    assert!(page.text.contains("prefers-color-scheme: dark"));
    assert!(page.text.contains("Dear Eva Schmidt,"));
    assert!(page.text.contains("id=\"book\""), "booking is offered");
    assert!(page.text.contains("No appointment has been agreed yet."));

    let window =
        json!({"appointment": {"start": "2026-11-24T08:00:00Z", "end": "2026-11-24T10:00:00Z"}});
    let planned = app
        .patch(
            &format!("/api/v1/tenants/{tenant}/tickets/{ticket}"),
            &admin,
            window,
        )
        .await;
    assert_eq!(planned.status, 200, "{}", planned.text);
    let backwards = app
        .patch(
            &format!("/api/v1/tenants/{tenant}/tickets/{ticket}"),
            &admin,
            json!({"appointment": {"start": "2026-11-24T10:00:00Z", "end": "2026-11-24T08:00:00Z"}}),
        )
        .await;
    assert_eq!(backwards.code(), "invalid_appointment");
    let page = app.page(&path, HOST).await;
    assert!(
        page.text.contains("2026-11-24 09:00 – 2026-11-24 11:00"),
        "the window in the tenant's zone (Berlin)"
    );
    assert!(page.text.contains("Change appointment"));

    let booking = app.page(&format!("{path}/booking"), HOST).await;
    assert_eq!(booking.status, 200);
    assert!(booking.text.contains("Pick a &lt;window&gt;."), "escaped");
    assert!(booking.text.contains("Free changes until the day before."));

    set_status(&app, &tenant, &admin, &ticket, "on_route").await;
    assert!(
        !app.page(&path, HOST).await.text.contains("id=\"book\""),
        "no booking once the technician is on the way"
    );
    let late = app.page(&format!("{path}/booking"), HOST).await;
    assert_eq!(late.status, 303);
    assert_eq!(late.headers["location"], path.as_str());
}

async fn feedback_is_taken_once_after_the_visit_with_csrf_protection(app: TestApp) {
    let (tenant, admin, project, ticket, path) = setup(&app).await;
    let profile = profile_for(&app, &tenant, &admin, &project, json!({"feedback": true})).await;
    let feedback = format!("{path}/feedback");
    assert!(
        !app.page(&path, HOST).await.text.contains("feedback-form"),
        "not before the visit"
    );
    let early = post_form(&app, &feedback, "rating=5", &[]).await;
    assert_eq!(early.status, 403, "no valid token yet");

    set_status(&app, &tenant, &admin, &ticket, "completed").await;
    let page = app.page(&path, HOST).await;
    assert!(page.text.contains("id=\"feedback-form\""), "{}", page.text);
    let csrf = csrf_token(&page.text);

    for (body, extra, status) in [
        ("rating=5&comment=hi".to_string(), vec![], 403),
        (
            format!("rating=5&csrf_token={}", "0".repeat(64)),
            vec![],
            403,
        ),
        (
            format!("rating=5&csrf_token={csrf}"),
            vec![("sec-fetch-site", "cross-site")],
            403,
        ),
        (
            format!("rating=5&csrf_token={csrf}"),
            vec![("origin", "https://evil.example")],
            403,
        ),
        (format!("rating=7&csrf_token={csrf}"), vec![], 422),
        (format!("rating=&csrf_token={csrf}"), vec![], 422),
        (
            format!("rating=3&comment={}&csrf_token={csrf}", "x".repeat(2001)),
            vec![],
            422,
        ),
    ] {
        let refused = post_form(&app, &feedback, &body, &extra).await;
        assert_eq!(refused.status, status, "{body:.60} {extra:?}");
        assert!(refused.text.contains("role=\"alert\""), "the page says why");
        assert!(
            refused.text.contains("id=\"feedback-form\""),
            "and offers the form again"
        );
    }
    let stored = app
        .get(
            &format!("/api/v1/tenants/{tenant}/tickets/{ticket}"),
            &admin,
        )
        .await;
    assert_eq!(stored.json["feedback"], Value::Null, "nothing was stored");

    let origin = format!("http://{HOST}");
    let sent = post_form(
        &app,
        &feedback,
        &format!("rating=4&comment=Quick+%3Cb%3Efix%3C%2Fb%3E&csrf_token={csrf}"),
        &[
            ("origin", origin.as_str()),
            ("sec-fetch-site", "same-origin"),
        ],
    )
    .await;
    assert_eq!(sent.status, 303, "{}", sent.text);
    assert_eq!(
        sent.headers["location"],
        format!("{path}#feedback").as_str()
    );
    let stored = app
        .get(
            &format!("/api/v1/tenants/{tenant}/tickets/{ticket}"),
            &admin,
        )
        .await;
    assert_eq!(stored.json["feedback"]["rating"], 4);
    assert_eq!(stored.json["feedback"]["comment"], "Quick <b>fix</b>");
    let thanked = app.page(&path, HOST).await;
    assert!(thanked.text.contains("Thank you for your feedback!"));
    assert!(
        thanked.text.contains("Quick &lt;b&gt;fix&lt;") && !thanked.text.contains("<b>fix"),
        "escaped"
    );
    assert!(!thanked.text.contains("feedback-form"));

    let again = post_form(&app, &feedback, &format!("rating=1&csrf_token={csrf}"), &[]).await;
    assert_eq!(again.status, 303);
    let stored = app
        .get(
            &format!("/api/v1/tenants/{tenant}/tickets/{ticket}"),
            &admin,
        )
        .await;
    assert_eq!(
        stored.json["feedback"]["rating"], 4,
        "feedback is given once"
    );

    // Switched off: no form.
    app.patch(
        &format!("/api/v1/tenants/{tenant}/portal-profiles/{profile}"),
        &admin,
        json!({"feedback": false}),
    )
    .await;
    assert!(!app.page(&path, HOST).await.text.contains("feedback-form"));
}

async fn links_expire_the_configured_days_after_closing(app: TestApp) {
    let (tenant, admin, project, ticket, path) = setup(&app).await;
    let profile = profile_for(
        &app,
        &tenant,
        &admin,
        &project,
        json!({"link_expiry_days": 2}),
    )
    .await;
    set_status(&app, &tenant, &admin, &ticket, "closed").await;
    assert_eq!(app.page(&path, HOST).await.status, 200, "just closed");

    // Move the closing three days into the past.
    let three_days = 3 * 24 * 3600 * 1000_i64;
    sqlx::query(
        "UPDATE ticket_status_history SET at = at - $1 WHERE ticket_id = $2 AND status = 'closed'",
    )
    .bind(three_days)
    .bind(&ticket)
    .execute(&app.state.db.pool)
    .await
    .unwrap();
    let expired = app.page(&path, HOST).await;
    assert_eq!(expired.status, 404);
    let unknown = app
        .page("/t/AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", HOST)
        .await;
    assert_eq!(
        expired.text.split("<main>").nth(1),
        unknown.text.split("<main>").nth(1),
        "the same page as an unknown link"
    );
    assert!(!expired.text.contains("Paper jam"));
    let events = app.page(&format!("{path}/events"), HOST).await;
    assert_eq!(events.status, 404, "nor live updates");

    app.patch(
        &format!("/api/v1/tenants/{tenant}/portal-profiles/{profile}"),
        &admin,
        json!({"link_expiry_days": 5}),
    )
    .await;
    assert_eq!(
        app.page(&path, HOST).await.status,
        200,
        "a longer expiry opens it again"
    );
}

async fn themes_render_the_page_and_failures_fall_back_to_the_built_in_page(app: TestApp) {
    let (tenant, admin, project, ticket, path) = setup(&app).await;
    let harbour = app.install_of(&tenant, &admin, "harbour").await;
    let signal = app.install_of(&tenant, &admin, "signal").await;
    let profile = profile_for(
        &app,
        &tenant,
        &admin,
        &project,
        json!({"theme_install_id": harbour, "feedback": true}),
    )
    .await;
    let profile_path = format!("/api/v1/tenants/{tenant}/portal-profiles/{profile}");
    set_status(&app, &tenant, &admin, &ticket, "completed").await;

    let mut looks = Vec::new();
    for theme in [&harbour, &signal] {
        app.patch(&profile_path, &admin, json!({"theme_install_id": theme}))
            .await;
        let page = app.page(&path, HOST).await;
        assert_eq!(page.status, 200, "{}", page.text);
        let csp = page.headers["content-security-policy"]
            .to_str()
            .unwrap()
            .to_string();
        let nonce = csp
            .split("style-src 'nonce-")
            .nth(1)
            .unwrap()
            .split('\'')
            .next()
            .unwrap()
            .to_string();
        assert!(
            page.text.contains(&format!("<style nonce=\"{nonce}\">")),
            "the host puts the styles in under the nonce"
        );
        assert!(
            page.text.contains("--portico-main: #0b5cad"),
            "with the profile's colours"
        );
        assert!(
            page.text.contains("data-status=\"completed\""),
            "the timeline contract"
        );
        assert!(page.text.contains("aria-current=\"step\""));
        assert!(
            page.text.contains("id=\"feedback-form\""),
            "the feedback form"
        );
        assert!(
            page.text
                .contains(&format!("value=\"{}\"", csrf_token(&page.text)))
        );
        assert!(page.text.contains("data-portico-live"));
        assert!(page.text.contains("Paper jam"));
        looks.push(page.text.clone());
    }
    app.patch(
        &profile_path,
        &admin,
        json!({"mode": "booking", "booking_text": "Pick a window."}),
    )
    .await;
    let waiting = app
        .post(
            &format!("/api/v1/tenants/{tenant}/tickets"),
            &admin,
            json!({"project_id": project, "title": "Toner",
            "contact": {"first_name": "Max", "last_name": "Muster", "email": "max@example.com"}}),
        )
        .await;
    let waiting = waiting.json["tracking_url"]
        .as_str()
        .unwrap()
        .split("portico.test")
        .nth(1)
        .unwrap()
        .to_string();
    for theme in [&harbour, &signal] {
        app.patch(&profile_path, &admin, json!({"theme_install_id": theme}))
            .await;
        let booking = app.page(&format!("{waiting}/booking"), HOST).await;
        assert_eq!(booking.status, 200, "{}", booking.text);
        assert!(
            booking.text.contains("Pick a window.")
                && booking.text.contains("Back to your service request")
        );
    }
    assert_ne!(
        looks[0].split("</style>").nth(1),
        looks[1].split("</style>").nth(1),
        "two different looks"
    );

    // Theme output is kept between requests, but every response has its own nonce, and a
    // change to the ticket is a new page.
    let nonce_of = |page: &crate::support::Reply| {
        let csp = page.headers["content-security-policy"]
            .to_str()
            .unwrap()
            .to_string();
        csp.split("script-src 'nonce-")
            .nth(1)
            .unwrap()
            .split('\'')
            .next()
            .unwrap()
            .to_string()
    };
    let (first, second) = (app.page(&path, HOST).await, app.page(&path, HOST).await);
    assert_ne!(nonce_of(&first), nonce_of(&second));
    for page in [&first, &second] {
        let nonce = nonce_of(page);
        assert!(
            page.text.contains(&format!("<script nonce=\"{nonce}\"")),
            "the script carries this response's nonce"
        );
        assert!(!page.text.contains("portico-page-nonce"));
    }
    assert_eq!(
        first.text.replace(&nonce_of(&first), ""),
        second.text.replace(&nonce_of(&second), "")
    );
    set_status(&app, &tenant, &admin, &ticket, "closed").await;
    let closed = app.page(&path, HOST).await;
    assert!(
        first
            .text
            .contains("<body class=\"signal\" data-status=\"completed\"")
    );
    assert!(
        closed
            .text
            .contains("<body class=\"signal\" data-status=\"closed\""),
        "the closed ticket, not the kept page"
    );

    // Pages without a ticket take the default profile's theme.
    let profiles = app
        .get(&format!("/api/v1/tenants/{tenant}/portal-profiles"), &admin)
        .await;
    let default = profiles.json["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["is_default"] == true)
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    app.patch(
        &format!("/api/v1/tenants/{tenant}/portal-profiles/{default}"),
        &admin,
        json!({"theme_install_id": signal}),
    )
    .await;
    let unknown = app
        .page("/t/AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", HOST)
        .await;
    assert_eq!(unknown.status, 404);
    assert!(
        unknown.text.contains("class=\"signal\"")
            && unknown.text.contains("Dieser Link ist nicht gültig"),
        "{}",
        unknown.text
    );
    app.post(
        &format!("/api/v1/tenants/{tenant}/suspend"),
        &app.platform_token,
        json!({}),
    )
    .await;
    let suspended = app.page(&path, HOST).await;
    assert_eq!(suspended.status, 503);
    assert!(
        suspended.text.contains("class=\"signal\"") && !suspended.text.contains("Paper jam"),
        "{}",
        suspended.text
    );
    app.post(
        &format!("/api/v1/tenants/{tenant}/resume"),
        &app.platform_token,
        json!({}),
    )
    .await;

    // A theme that fails in every way: the end user still sees the ticket, and each failure is recorded.
    assert_eq!(app.publish("broken-theme", None).await.status, 201);
    let installed = app
        .post(
            &format!("/api/v1/tenants/{tenant}/plugins"),
            &admin,
            json!({"plugin_id": "broken-theme", "config": {"fail": "trap"}}),
        )
        .await;
    assert_eq!(installed.status, 201, "{}", installed.text);
    let broken = installed.json["id"].as_str().unwrap().to_string();
    app.patch(
        &format!("/api/v1/tenants/{tenant}/plugins/{broken}"),
        &app.platform_token,
        json!({"limits": {"deadline_ms": 300}}),
    )
    .await;
    app.patch(&profile_path, &admin, json!({"theme_install_id": broken}))
        .await;
    // A loop ends at the deadline or when its instruction budget runs out, whichever is first.
    for (fail, outcomes) in [
        ("trap", &["plugin_trap"][..]),
        ("loop", &["plugin_timeout", "plugin_fuel_exhausted"]),
        ("empty", &["plugin_invalid_output"]),
    ] {
        let configured = app
            .patch(
                &format!("/api/v1/tenants/{tenant}/plugins/{broken}"),
                &admin,
                json!({"config": {"fail": fail}}),
            )
            .await;
        assert_eq!(configured.status, 200, "{}", configured.text);
        let page = app.page(&path, HOST).await;
        assert_eq!(page.status, 200, "{fail}");
        assert!(
            page.text.contains("class=\"timeline\""),
            "the built-in page ({fail})"
        );
        assert!(page.text.contains("Paper jam"));
        let runs = app
            .get(
                &format!("/api/v1/tenants/{tenant}/plugin-runs?plugin_id=broken-theme&limit=200"),
                &admin,
            )
            .await;
        assert!(
            runs.json["items"]
                .as_array()
                .unwrap()
                .iter()
                .any(|r| outcomes.contains(&r["outcome"].as_str().unwrap())),
            "{fail} recorded as {outcomes:?}: {}",
            runs.text
        );
    }
    let fine = app
        .patch(
            &format!("/api/v1/tenants/{tenant}/plugins/{broken}"),
            &admin,
            json!({"config": {"fail": "no"}}),
        )
        .await;
    assert_eq!(fine.status, 200);
    let page = app.page(&path, HOST).await;
    assert!(
        page.text.contains("<title>ok</title>"),
        "the same install renders once it behaves: {}",
        page.text
    );
    assert!(
        page.text
            .contains("<script id=\"theme-script\" nonce=\"none\">"),
        "a theme never sees the page's nonce, so a script it writes cannot run: {}",
        page.text
    );
    // Text that once stood for the nonce in kept theme output is shown as written.
    let renamed = app
        .patch(
            &format!("/api/v1/tenants/{tenant}/tickets/{ticket}"),
            &admin,
            json!({"title": "portico-page-nonce"}),
        )
        .await;
    assert_eq!(renamed.status, 200, "{}", renamed.text);
    let page = app.page(&path, HOST).await;
    assert!(
        page.text.contains("<h1>portico-page-nonce</h1>"),
        "{}",
        page.text
    );

    // A disabled or uninstalled theme: the built-in page.
    app.patch(
        &format!("/api/v1/tenants/{tenant}/plugins/{broken}"),
        &admin,
        json!({"enabled": false}),
    )
    .await;
    assert!(
        app.page(&path, HOST)
            .await
            .text
            .contains("class=\"timeline\"")
    );
    app.delete(
        &format!("/api/v1/tenants/{tenant}/plugins/{broken}"),
        &admin,
    )
    .await;
    assert_eq!(
        app.get(&profile_path, &admin).await.json["theme_install_id"],
        Value::Null,
        "uninstalling clears the theme"
    );
    assert_eq!(app.page(&path, HOST).await.status, 200);
}

on_both_backends!(
    profiles_are_created_edited_cloned_and_deleted,
    logos_are_checked_re_encoded_and_served_as_png,
    the_profile_brands_the_page_and_offers_booking,
    feedback_is_taken_once_after_the_visit_with_csrf_protection,
    links_expire_the_configured_days_after_closing,
    themes_render_the_page_and_failures_fall_back_to_the_built_in_page
);
