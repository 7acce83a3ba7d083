//! `portico demo`: a ready-to-look-at tenant, "Easy Printer Solution GmbH", with staff and
//! tickets in different steps, set up through the host's own API (so it goes through the same
//! checks, audit and events as real use). Running it again reuses what exists.

use anyhow::{Context, bail};
use serde_json::{Value, json};

use crate::AppState;
use crate::auth;

const SLUG: &str = "easy-printer";

/// The demo tickets: title, contact, and the step each is at.
const TICKETS: &[(&str, &str, &str, &str)] = &[
    (
        "Toner warning on the office printer",
        "Anna",
        "Becker",
        "received",
    ),
    ("Paper jam in tray 2", "Jonas", "Weber", "scheduling"),
    (
        "Annual maintenance of the copier",
        "Lena",
        "Fischer",
        "dispatched",
    ),
    ("Printer prints blank pages", "Eva", "Schmidt", "on_route"),
    ("Install new network printer", "Paul", "Wagner", "completed"),
];

struct Api {
    client: reqwest::Client,
    base: String,
    token: String,
}

impl Api {
    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> anyhow::Result<(u16, Value)> {
        let mut request = self
            .client
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(&self.token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.context("calling the demo host")?;
        let status = response.status().as_u16();
        Ok((status, response.json().await.unwrap_or(Value::Null)))
    }

    async fn expect(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> anyhow::Result<Value> {
        let (status, json) = self.call(method.clone(), path, body).await?;
        if !(200..300).contains(&status) {
            bail!("{method} {path} answered {status}: {json}");
        }
        Ok(json)
    }
}

/// The demo portal: the Harbour theme, booking and feedback on, a logo. Found by name when it
/// exists; returns its id.
async fn portal_profile(api: &Api, t: &str) -> anyhow::Result<Value> {
    use reqwest::Method;

    const NAME: &str = "Easy Printer portal";
    let profiles = api
        .expect(Method::GET, &format!("{t}/portal-profiles?limit=200"), None)
        .await?;
    if let Some(found) = profiles["items"]
        .as_array()
        .and_then(|p| p.iter().find(|p| p["name"] == NAME))
    {
        return Ok(found["id"].clone());
    }
    let installs = api
        .expect(Method::GET, &format!("{t}/plugins?limit=200"), None)
        .await?;
    let theme = installs["items"]
        .as_array()
        .and_then(|i| i.iter().find(|i| i["plugin_id"] == "harbour"))
        .map(|i| i["id"].clone())
        .context("the built-in Harbour theme is installed")?;
    let profile = api.expect(Method::POST, &format!("{t}/portal-profiles"), Some(json!({
        "name": NAME, "mode": "booking", "feedback": true, "theme_install_id": theme,
        "logo_link": "https://easy-printer.example",
        "booking_text": "Wählen Sie ein Zeitfenster, in dem jemand vor Ort ist. Unsere Techniker kommen werktags zwischen 8 und 18 Uhr.",
        "booking_disclaimer": "Termine können bis 24 Stunden vorher kostenlos geändert werden.",
        "colours": {
            "light": {"main": "#b3261e", "main_text": "#ffffff", "secondary_button": "#f6e7e5", "body": "#fffbfa"},
            "dark": {"main": "#f2b8b5", "main_text": "#3b0a08", "secondary_button": "#3a2a29", "body": "#1a1110"}
        }
    }))).await?;
    let id = profile["id"].as_str().context("profile id")?.to_string();
    let logo = api
        .client
        .put(format!("{}{t}/portal-profiles/{id}/logo", api.base))
        .bearer_auth(&api.token)
        .header(reqwest::header::CONTENT_TYPE, "image/png")
        .body(logo_png())
        .send()
        .await
        .context("uploading the demo logo")?;
    if !logo.status().is_success() {
        bail!(
            "the demo logo was refused: {}",
            logo.text().await.unwrap_or_default()
        );
    }
    Ok(Value::String(id))
}

/// A small generated logo: a printer-ish mark in the brand red on white.
fn logo_png() -> Vec<u8> {
    let image = image::RgbaImage::from_fn(120, 40, |x, y| {
        let paper = (10..30).contains(&x) && (4..16).contains(&y);
        let body = (4..36).contains(&x) && (14..30).contains(&y);
        let tray = (10..30).contains(&x) && (30..36).contains(&y);
        let bar = (44..116).contains(&x) && (14..26).contains(&y) && (x / 8) % 2 == 0;
        if body || bar {
            image::Rgba([179, 38, 30, 255])
        } else if paper || tray {
            image::Rgba([90, 90, 90, 255])
        } else {
            image::Rgba([0, 0, 0, 0])
        }
    });
    let mut png = Vec::new();
    image
        .write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
        .expect("encoding a PNG in memory");
    png
}

/// Sets the demo up on a running host at `base` and prints its links and admin token.
pub async fn set_up(state: &AppState, base: &str) -> anyhow::Result<()> {
    let mut conn = state.db.pool.acquire().await?;
    let setup_token = auth::issue_token(&mut conn, None, "demo set-up", Some(1)).await?;
    drop(conn);
    let api = Api {
        client: reqwest::Client::new(),
        base: base.trim_end_matches('/').to_string(),
        token: setup_token.token,
    };
    let outcome = populate(&api).await;
    sqlx::query("UPDATE api_tokens SET revoked_at = $2 WHERE id = $1")
        .bind(&setup_token.record.id)
        .bind(crate::db::now_ms())
        .execute(&state.db.pool)
        .await?;
    outcome
}

async fn populate(api: &Api) -> anyhow::Result<()> {
    use reqwest::Method;

    let (status, tenant) = api
        .call(Method::GET, &format!("/api/v1/tenants/{SLUG}"), None)
        .await?;
    let tenant = if status == 200 {
        tenant
    } else {
        api.expect(Method::POST, "/api/v1/tenants", Some(json!({
            "slug": SLUG, "display_name": "Easy Printer Solution GmbH", "time_zone": "Europe/Berlin", "language": "de",
            "admin": {"email": "admin@easy-printer.example", "display_name": "Petra Admin"}
        }))).await?
    };
    let tenant_id = tenant["id"].as_str().context("tenant id")?.to_string();
    let t = format!("/api/v1/tenants/{tenant_id}");

    let users = api
        .expect(Method::GET, &format!("{t}/users?limit=200"), None)
        .await?;
    let find_user = |email: &str| {
        users["items"]
            .as_array()
            .and_then(|u| u.iter().find(|u| u["email"] == email))
            .map(|u| u["id"].clone())
    };
    let admin = find_user("admin@easy-printer.example").context("the demo admin")?;
    let technician = match find_user("tom@easy-printer.example") {
        Some(id) => id,
        None => api.expect(Method::POST, &format!("{t}/users"), Some(json!({
            "email": "tom@easy-printer.example", "display_name": "Tom Techniker", "roles": ["technician"]}))).await?["id"].clone(),
    };

    let profile = portal_profile(api, &t).await?;
    let projects = api
        .expect(Method::GET, &format!("{t}/projects"), None)
        .await?;
    let project = match projects["items"].as_array().and_then(|p| p.first()) {
        Some(p) => p["id"].clone(),
        None => api
            .expect(
                Method::POST,
                &format!("{t}/projects"),
                Some(json!({"name": "Printer service"})),
            )
            .await?["id"]
            .clone(),
    };
    api.expect(
        Method::PATCH,
        &format!("{t}/projects/{}", project.as_str().unwrap_or_default()),
        Some(json!({"profile_id": profile})),
    )
    .await?;

    let tickets = api
        .expect(Method::GET, &format!("{t}/tickets?limit=200"), None)
        .await?;
    let mut existing: Vec<Value> = tickets["items"].as_array().cloned().unwrap_or_default();
    if existing.is_empty() {
        for (title, first, last, step) in TICKETS {
            let ticket = api.expect(Method::POST, &format!("{t}/tickets"), Some(json!({
                "project_id": project, "title": title, "ticket_type": "repair", "technician_id": technician,
                "contact": {"first_name": first, "last_name": last, "email": format!("{}@customer.example", first.to_lowercase())},
                "address": "Friedrichstraße 100, 10117 Berlin"}))).await?;
            let path = format!("{t}/tickets/{}", ticket["id"].as_str().unwrap_or_default());
            let target = crate::tickets::Status::parse(step).context("demo step")?;
            if target >= crate::tickets::Status::Scheduling {
                // Tomorrow, 9 to 11 in Berlin.
                let start = jiff::Zoned::now()
                    .with_time_zone(jiff::tz::TimeZone::get("Europe/Berlin")?)
                    .tomorrow()?
                    .with()
                    .hour(9)
                    .minute(0)
                    .second(0)
                    .subsec_nanosecond(0)
                    .build()?
                    .timestamp();
                let end = start + jiff::SignedDuration::from_hours(2);
                api.expect(
                    Method::PATCH,
                    &path,
                    Some(json!({"appointment": {"start": start, "end": end}})),
                )
                .await?;
            }
            for status in crate::tickets::Status::ALL
                .iter()
                .skip(1)
                .take_while(|s| **s <= target)
            {
                api.expect(
                    Method::POST,
                    &format!("{path}/status"),
                    Some(json!({"status": status})),
                )
                .await?;
                if *status == crate::tickets::Status::OnRoute {
                    let eta = jiff::Timestamp::now() + jiff::SignedDuration::from_mins(25);
                    api.expect(
                        Method::POST,
                        &format!("{path}/position"),
                        Some(json!({"latitude": 52.5200, "longitude": 13.4050, "eta": eta})),
                    )
                    .await?;
                }
            }
            existing.push(ticket);
        }
    }

    // Links are stored hashed, so each run issues fresh ones (and revokes the last run's).
    for ticket in &existing {
        let path = format!(
            "{t}/tickets/{}/tracking-link",
            ticket["id"].as_str().unwrap_or_default()
        );
        let reissued = api.expect(Method::POST, &path, None).await?;
        println!(
            "tracking link: {}  ({})",
            reissued["tracking_url"].as_str().unwrap_or_default(),
            reissued["title"].as_str().unwrap_or_default()
        );
    }
    let admin_token = api
        .expect(
            Method::POST,
            &format!("{t}/tokens"),
            Some(json!({"user_id": admin, "name": "demo", "expires_in_days": 30})),
        )
        .await?;
    println!(
        "admin token: {}",
        admin_token["token"].as_str().unwrap_or_default()
    );
    println!(
        "API reference: {}/api/v1/docs (use the admin token as a bearer token)",
        api.base
    );
    Ok(())
}
