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

    let tickets = api
        .expect(Method::GET, &format!("{t}/tickets?limit=200"), None)
        .await?;
    let mut existing: Vec<Value> = tickets["items"].as_array().cloned().unwrap_or_default();
    if existing.is_empty() {
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
        for (title, first, last, step) in TICKETS {
            let ticket = api.expect(Method::POST, &format!("{t}/tickets"), Some(json!({
                "project_id": project, "title": title, "ticket_type": "repair", "technician_id": technician,
                "contact": {"first_name": first, "last_name": last, "email": format!("{}@customer.example", first.to_lowercase())},
                "address": "Friedrichstraße 100, 10117 Berlin"}))).await?;
            let path = format!("{t}/tickets/{}", ticket["id"].as_str().unwrap_or_default());
            let target = crate::tickets::Status::parse(step).context("demo step")?;
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
