//! Appointment booking: rule sets, the windows their calculators offer at a pinned clock (across
//! daylight-saving changes, holidays, notice, buffers and caps), hostile and 0.1.0 calculators,
//! capacity under 100 concurrent attempts, and booking, changing and cancelling from the
//! tracking link.

use futures_util::future::join_all;
use icalendar::Component;
use reqwest::Method;
use serde_json::{Value, json};

use crate::on_both_backends;
use crate::portal::{HOST, csrf_token, post_form, setup};
use crate::support::TestApp;

/// SLA rules: the given ranges on every weekday named, windows as long as their step.
fn sla(time_zone: &str, days: &[&str], start: &str, end: &str, window: u32) -> Value {
    let hours: serde_json::Map<String, Value> = days
        .iter()
        .map(|d| (d.to_string(), json!([{"start": start, "end": end}])))
        .collect();
    json!({
        "name": "Visits",
        "time_zone": time_zone,
        "source": {"kind": "sla", "business_hours": hours, "visit_minutes": 30,
            "window_minutes": window, "capacity": 1},
        "horizon": {"days": 7}
    })
}

const WEEKDAYS: [&str; 5] = ["monday", "tuesday", "wednesday", "thursday", "friday"];

/// The local start times of the windows a preview offers, as `date HH:MM±hh:mm`.
async fn offered(app: &TestApp, tenant: &str, admin: &str, request: Value) -> Vec<String> {
    let reply = app
        .post(
            &format!("/api/v1/tenants/{tenant}/booking/preview"),
            admin,
            request,
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    assert_eq!(reply.json["available"], true, "{}", reply.text);
    reply.json["windows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| {
            format!(
                "{} {}",
                w["date"].as_str().unwrap(),
                w["local_start"].as_str().unwrap()
            )
        })
        .collect()
}

fn with(mut rules: Value, path: &[&str], value: Value) -> Value {
    let mut at = &mut rules;
    for key in &path[..path.len() - 1] {
        at = &mut at[*key];
    }
    at[path[path.len() - 1]] = value;
    rules
}

async fn rules_are_checked_named_and_kept_while_in_use(app: TestApp) {
    let (tenant, admin, project, _, _) = setup(&app).await;
    let rules = format!("/api/v1/tenants/{tenant}/booking-rules");
    let good = sla("Europe/Berlin", &WEEKDAYS, "08:00", "18:00", 120);
    for (bad, names) in [
        (
            with(good.clone(), &["time_zone"], json!("Mars/Olympus")),
            "time_zone",
        ),
        (
            with(good.clone(), &["source", "step_minutes"], json!(60)),
            "step_minutes",
        ),
        (
            with(good.clone(), &["horizon", "days"], json!(0)),
            "horizon.days",
        ),
    ] {
        let refused = app.post(&rules, &admin, bad).await;
        assert_eq!(
            (refused.status, refused.code()),
            (422, "invalid_rules"),
            "{}",
            refused.text
        );
        assert!(
            refused.json["message"].as_str().unwrap().contains(names),
            "{}",
            refused.text
        );
    }
    let reversed = with(
        good.clone(),
        &["source", "business_hours", "monday"],
        json!([{"start": "12:00", "end": "08:00"}]),
    );
    assert_eq!(app.post(&rules, &admin, reversed).await.status, 422);
    let bad_time = with(
        good.clone(),
        &["source", "business_hours", "monday"],
        json!([{"start": "8am", "end": "12:00"}]),
    );
    assert_eq!(app.post(&rules, &admin, bad_time).await.status, 422);
    let overlapping = json!({"name": "Intervals", "time_zone": "UTC", "horizon": {"days": 7},
        "source": {"kind": "intervals", "intervals": [
            {"name": "Morning", "weekdays": ["monday"], "start": "08:00", "end": "12:00", "capacity": 2},
            {"name": "Late morning", "weekdays": ["monday", "tuesday"], "start": "11:00", "end": "13:00", "capacity": 2}]}});
    assert_eq!(
        app.post(&rules, &admin, overlapping).await.code(),
        "invalid_rules"
    );

    let created = app.post(&rules, &admin, good.clone()).await;
    assert_eq!(created.status, 201, "{}", created.text);
    let id = created.json["id"].as_str().unwrap().to_string();
    assert_eq!(
        created.json["source"]["business_hours"]["monday"][0]["start"],
        "08:00"
    );
    assert_eq!(
        app.post(&rules, &admin, good.clone()).await.code(),
        "name_taken"
    );

    let assignment = format!("/api/v1/tenants/{tenant}/projects/{project}/booking-rules");
    let assigned = app
        .send(
            Method::PUT,
            &assignment,
            Some(&admin),
            Some(&json!({"rules_id": id})),
            &[],
        )
        .await;
    assert_eq!(assigned.status, 200, "{}", assigned.text);
    let unknown = app
        .send(
            Method::PUT,
            &assignment,
            Some(&admin),
            Some(&json!({"rules_id": "nope"})),
            &[],
        )
        .await;
    assert_eq!(unknown.code(), "unknown_rules");
    let in_use = app.delete(&format!("{rules}/{id}"), &admin).await;
    assert_eq!(
        (in_use.status, in_use.code()),
        (409, "rules_in_use"),
        "{}",
        in_use.text
    );

    let renamed = with(good, &["name"], json!("Weekday visits"));
    let replaced = app
        .send(
            Method::PUT,
            &format!("{rules}/{id}"),
            Some(&admin),
            Some(&renamed),
            &[],
        )
        .await;
    assert_eq!(replaced.json["name"], "Weekday visits", "{}", replaced.text);
    assert_eq!(app.delete(&assignment, &admin).await.status, 204);
    assert_eq!(
        app.delete(&format!("{rules}/{id}"), &admin).await.status,
        204
    );
    let audit = app
        .get(&format!("/api/v1/tenants/{tenant}/audit?limit=200"), &admin)
        .await;
    for action in [
        "booking_rules.create",
        "booking_rules.update",
        "booking_rules.assign",
        "booking_rules.delete",
    ] {
        assert!(audit.text.contains(action), "{action} is audited");
    }
}

async fn windows_follow_the_rules_at_a_pinned_clock(app: TestApp) {
    let (tenant, admin) = app.tenant_with_admin("acme").await;
    let preview = |rules: Value, now: &str| json!({"rules": rules, "now": now});
    let sunday = |tz: &str| sla(tz, &["sunday"], "00:00", "06:00", 60);

    // Berlin springs forward at 02:00 on 2026-03-29: the night has five elapsed hours of
    // 00:00–06:00, and no window starts at 02:00.
    let spring = offered(
        &app,
        &tenant,
        &admin,
        preview(sunday("Europe/Berlin"), "2026-03-28T12:00:00Z"),
    )
    .await;
    assert_eq!(
        spring,
        [
            "00:00+01:00",
            "01:00+01:00",
            "03:00+02:00",
            "04:00+02:00",
            "05:00+02:00"
        ]
        .map(|t| format!("2026-03-29 {t}"))
    );
    // It falls back at 03:00 on 2026-10-25: seven elapsed hours, the repeated hour offered twice.
    let autumn = offered(
        &app,
        &tenant,
        &admin,
        preview(sunday("Europe/Berlin"), "2026-10-24T12:00:00Z"),
    )
    .await;
    assert_eq!(
        autumn,
        [
            "00:00+02:00",
            "01:00+02:00",
            "02:00+02:00",
            "02:00+01:00",
            "03:00+01:00",
            "04:00+01:00",
            "05:00+01:00"
        ]
        .map(|t| format!("2026-10-25 {t}"))
    );
    // New York: 2026-03-08 loses an hour, 2026-11-01 gains one.
    let ny_spring = offered(
        &app,
        &tenant,
        &admin,
        preview(sunday("America/New_York"), "2026-03-07T12:00:00Z"),
    )
    .await;
    assert_eq!(ny_spring.len(), 5);
    assert_eq!(ny_spring[2], "2026-03-08 03:00-04:00");
    let ny_autumn = offered(
        &app,
        &tenant,
        &admin,
        preview(sunday("America/New_York"), "2026-10-31T12:00:00Z"),
    )
    .await;
    assert_eq!(ny_autumn.len(), 7);
    assert_eq!(
        &ny_autumn[1..3],
        ["2026-11-01 01:00-04:00", "2026-11-01 01:00-05:00"]
    );

    // The last window of a day is offered when it fits, not when it would run past closing.
    let week = sla("Europe/Berlin", &WEEKDAYS, "08:00", "18:00", 120);
    let monday = "2026-11-30T05:00:00Z"; // 06:00 in Berlin, a Monday
    let day = |windows: &[String]| -> Vec<String> {
        windows
            .iter()
            .filter(|w| w.starts_with("2026-11-30"))
            .cloned()
            .collect()
    };
    let full = offered(&app, &tenant, &admin, preview(week.clone(), monday)).await;
    assert_eq!(
        day(&full),
        ["08:00", "10:00", "12:00", "14:00", "16:00"].map(|t| format!("2026-11-30 {t}+01:00"))
    );
    let short = with(
        week.clone(),
        &["source", "business_hours", "monday"],
        json!([{"start": "08:00", "end": "17:00"}]),
    );
    assert_eq!(
        day(&offered(&app, &tenant, &admin, preview(short, monday)).await)
            .last()
            .unwrap(),
        "2026-11-30 14:00+01:00"
    );

    // Notice is inclusive: ending exactly on a window's start leaves that window.
    let notice = |minutes: u32| with(week.clone(), &["notice_minutes"], json!(minutes));
    assert_eq!(
        offered(&app, &tenant, &admin, preview(notice(120), monday)).await[0],
        "2026-11-30 08:00+01:00"
    );
    assert_eq!(
        offered(&app, &tenant, &admin, preview(notice(121), monday)).await[0],
        "2026-11-30 10:00+01:00"
    );
    // Never in the past: at 11:00 the first window is 12:00.
    assert_eq!(
        offered(
            &app,
            &tenant,
            &admin,
            preview(week.clone(), "2026-11-30T10:00:00Z")
        )
        .await[0],
        "2026-11-30 12:00+01:00"
    );

    // The horizon in business days skips a holiday: three business days from Monday, Tuesday closed.
    let holiday = with(
        with(
            week.clone(),
            &["horizon"],
            json!({"days": 3, "unit": "business"}),
        ),
        &["closures"],
        json!([{"name": "Holiday", "from": "2026-12-01"}]),
    );
    let dates: Vec<String> = offered(&app, &tenant, &admin, preview(holiday, monday))
        .await
        .iter()
        .map(|w| w[..10].to_string())
        .collect();
    let mut distinct = dates.clone();
    distinct.dedup();
    assert_eq!(distinct, ["2026-11-30", "2026-12-02", "2026-12-03"]);

    // The response rule counts business hours from creation: created Friday 16:00, four hours.
    let response = with(week.clone(), &["source", "response_minutes"], json!(240));
    let after_weekend = offered(&app, &tenant, &admin, json!({"rules": response, "now": "2026-11-27T15:00:00Z", "created_at": "2026-11-27T15:00:00Z"})).await;
    assert_eq!(after_weekend[0], "2026-11-30 10:00+01:00");

    // A booking uses the capacity of the windows within its buffer; a day at its cap offers nothing.
    let buffered = with(week.clone(), &["source", "buffer_minutes"], json!(30));
    let booked = json!([{"start": "2026-11-30T09:00:00Z", "end": "2026-11-30T11:00:00Z"}]);
    let around = offered(
        &app,
        &tenant,
        &admin,
        json!({"rules": buffered, "now": monday, "bookings": booked}),
    )
    .await;
    assert_eq!(
        day(&around),
        ["14:00", "16:00"].map(|t| format!("2026-11-30 {t}+01:00")),
        "08:00, 10:00 and 12:00 are within 30 minutes of it"
    );
    let capped = with(week.clone(), &["max_per_day"], json!(1));
    let one = json!([{"start": "2026-11-30T15:00:00Z", "end": "2026-11-30T17:00:00Z"}]);
    let next = offered(
        &app,
        &tenant,
        &admin,
        json!({"rules": capped, "now": monday, "bookings": one}),
    )
    .await;
    assert!(day(&next).is_empty(), "{next:?}");
    // Intervals are offered as defined, each with its own capacity.
    let intervals = json!({"name": "Halves", "time_zone": "Europe/Berlin", "horizon": {"days": 1},
        "source": {"kind": "intervals", "intervals": [
            {"name": "Morning", "weekdays": ["monday"], "start": "08:00", "end": "12:00", "capacity": 1},
            {"name": "Afternoon", "weekdays": ["monday"], "start": "12:00", "end": "17:00", "capacity": 3}]}});
    let taken = json!([{"start": "2026-11-30T07:00:00Z", "end": "2026-11-30T11:00:00Z"}]);
    let halves = app
        .post(
            &format!("/api/v1/tenants/{tenant}/booking/preview"),
            &admin,
            json!({"rules": intervals, "now": monday, "bookings": taken}),
        )
        .await;
    assert_eq!(
        halves.json["windows"].as_array().unwrap().len(),
        1,
        "the morning is full: {}",
        halves.text
    );
    assert_eq!(halves.json["windows"][0]["capacity_left"], 3);
    assert_eq!(halves.json["windows"][0]["local_end"], "17:00+01:00");
}

/// Installs a test calculator and rules that use it; returns (install id, rules).
async fn rules_with_calculator(
    app: &TestApp,
    tenant: &str,
    admin: &str,
    plugin: &str,
    config: Value,
) -> (String, Value) {
    let published = app.publish(plugin, None).await;
    assert!(
        published.status == 201 || published.code() == "version_exists",
        "{}",
        published.text
    );
    let install = app
        .post(
            &format!("/api/v1/tenants/{tenant}/plugins"),
            admin,
            json!({"plugin_id": plugin, "config": config}),
        )
        .await;
    assert_eq!(install.status, 201, "{}", install.text);
    let id = install.json["id"].as_str().unwrap().to_string();
    let rules = with(
        sla("Europe/Berlin", &WEEKDAYS, "08:00", "18:00", 120),
        &["calculator_install_id"],
        json!(id),
    );
    (id, rules)
}

async fn a_hostile_calculator_fails_closed(app: TestApp) {
    let (tenant, admin) = app.tenant_with_admin("acme").await;
    let (install, rules) = rules_with_calculator(&app, &tenant, &admin, "spinner", json!({})).await;
    let monday = "2026-11-30T05:00:00Z";
    let standard = offered(
        &app,
        &tenant,
        &admin,
        json!({"rules": rules, "now": monday}),
    )
    .await;
    assert!(!standard.is_empty());
    for (behaviour, problem) in [
        ("overlapping", "overlaps"),
        ("past", "past"),
        ("out_of_horizon", "outside"),
        ("reversed", "does not start before"),
        ("duplicate", "twice"),
        ("excess_capacity", "places left"),
        ("million", "exceeded"),
        ("spin", "instruction budget"),
        ("fail", "gave up"),
    ] {
        let configured = app
            .patch(
                &format!("/api/v1/tenants/{tenant}/plugins/{install}"),
                &admin,
                json!({"config": {"behaviour": behaviour}}),
            )
            .await;
        assert_eq!(configured.status, 200, "{}", configured.text);
        let reply = app
            .post(
                &format!("/api/v1/tenants/{tenant}/booking/preview"),
                &admin,
                json!({"rules": rules, "now": monday}),
            )
            .await;
        assert_eq!(reply.status, 200, "{behaviour}: {}", reply.text);
        assert_eq!(
            reply.json["available"], false,
            "{behaviour}: {}",
            reply.text
        );
        assert_eq!(reply.json["windows"], json!([]), "{behaviour}");
        let said = reply.json["problem"].as_str().unwrap().to_lowercase();
        assert!(said.contains(problem), "{behaviour}: {said}");
    }
    let runs = app
        .get(
            &format!("/api/v1/tenants/{tenant}/plugin-runs?plugin_id=spinner&limit=100"),
            &admin,
        )
        .await;
    let outcomes: Vec<&str> = runs.json["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["outcome"].as_str().unwrap())
        .collect();
    assert_eq!(
        outcomes.len(),
        9,
        "every failure is a recorded run: {}",
        runs.text
    );
    assert!(
        outcomes.contains(&"plugin_invalid_output") && outcomes.contains(&"plugin_fuel_exhausted"),
        "{outcomes:?}"
    );
    let health = app.send(Method::GET, "/healthz", None, None, &[]).await;
    assert_eq!(health.status, 200);
}

async fn a_calculator_built_against_0_1_0_keeps_working(app: TestApp) {
    let (tenant, admin) = app.tenant_with_admin("acme").await;
    let (_, rules) =
        rules_with_calculator(&app, &tenant, &admin, "legacy-slots", json!(null)).await;
    let rules = with(
        with(rules, &["closures"], json!([{"from": "2026-12-01"}])),
        &["horizon", "days"],
        json!(3),
    );
    let windows = offered(
        &app,
        &tenant,
        &admin,
        json!({"rules": rules, "now": "2026-11-30T05:00:00Z"}),
    )
    .await;
    assert_eq!(windows.first().unwrap(), "2026-11-30 08:00+01:00");
    assert!(
        windows.iter().all(|w| !w.starts_with("2026-12-01")),
        "the host kept the closure: {windows:?}"
    );
    assert!(windows.iter().any(|w| w.starts_with("2026-12-02")));
}

/// A project with booking rules of one place per window, weekdays 08:00–18:00 in Berlin, and
/// `count` tickets in it; returns (tenant, admin, ticket ids).
async fn tickets_with_rules(app: &TestApp, count: usize) -> (String, String, Vec<String>) {
    let (tenant, admin) = app.tenant_with_admin("acme").await;
    let project = app
        .post(
            &format!("/api/v1/tenants/{tenant}/projects"),
            &admin,
            json!({"name": "Printers"}),
        )
        .await;
    let project = project.json["id"].as_str().unwrap().to_string();
    let every_day = [
        "monday",
        "tuesday",
        "wednesday",
        "thursday",
        "friday",
        "saturday",
        "sunday",
    ];
    let rules = app
        .post(
            &format!("/api/v1/tenants/{tenant}/booking-rules"),
            &admin,
            sla("Europe/Berlin", &every_day, "08:00", "18:00", 120),
        )
        .await;
    let rules = rules.json["id"].as_str().unwrap().to_string();
    let assigned = app
        .send(
            Method::PUT,
            &format!("/api/v1/tenants/{tenant}/projects/{project}/booking-rules"),
            Some(&admin),
            Some(&json!({"rules_id": rules})),
            &[],
        )
        .await;
    assert_eq!(assigned.status, 200, "{}", assigned.text);
    let mut tickets = Vec::new();
    for i in 0..count {
        let created = app
            .post(
                &format!("/api/v1/tenants/{tenant}/tickets"),
                &admin,
                json!({"project_id": project, "title": format!("Jam {i}"),
                "contact": {"first_name": "Eva", "last_name": "Ek", "email": "eva@example.com"}}),
            )
            .await;
        tickets.push(created.json["id"].as_str().unwrap().to_string());
    }
    (tenant, admin, tickets)
}

async fn the_last_place_goes_to_exactly_one_of_100(app: TestApp) {
    let (tenant, admin, tickets) = tickets_with_rules(&app, 100).await;
    let windows = app
        .get(
            &format!("/api/v1/tenants/{tenant}/tickets/{}/booking", tickets[0]),
            &admin,
        )
        .await;
    assert_eq!(windows.status, 200, "{}", windows.text);
    let last = windows.json["windows"]
        .as_array()
        .unwrap()
        .last()
        .unwrap()
        .clone();
    let body = json!({"start": last["start"], "end": last["end"]});
    let attempts = tickets.iter().map(|ticket| {
        let path = format!("/api/v1/tenants/{tenant}/tickets/{ticket}/booking");
        let (app, admin, body) = (&app, &admin, &body);
        async move {
            app.send(Method::PUT, &path, Some(admin), Some(body), &[])
                .await
        }
    });
    let replies = join_all(attempts).await;
    let won: Vec<_> = replies.iter().filter(|r| r.status == 200).collect();
    let loser = &tickets[replies.iter().position(|r| r.status == 409).unwrap()];
    let taken = replies
        .iter()
        .filter(|r| r.status == 409 && r.code() == "window_taken")
        .count();
    assert_eq!(
        (won.len(), taken),
        (1, 99),
        "{:?}",
        replies
            .iter()
            .map(|r| (r.status, r.code().to_string()))
            .collect::<Vec<_>>()
    );
    assert_eq!(
        won[0].json["status"], "scheduling",
        "booking moves a received ticket to Scheduling"
    );
    let again = app
        .get(
            &format!("/api/v1/tenants/{tenant}/tickets/{loser}/booking"),
            &admin,
        )
        .await;
    let starts: Vec<&Value> = again.json["windows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| &w["start"])
        .collect();
    assert!(
        !starts.contains(&&last["start"]),
        "the window is no longer offered"
    );
    // A dispatcher may override capacity on purpose.
    let forced = json!({"start": last["start"], "end": last["end"], "override": true});
    let overridden = app
        .send(
            Method::PUT,
            &format!("/api/v1/tenants/{tenant}/tickets/{loser}/booking"),
            Some(&admin),
            Some(&forced),
            &[],
        )
        .await;
    assert_eq!(overridden.status, 200, "{}", overridden.text);
}

fn window_values(html: &str) -> Vec<String> {
    html.split("name=\"window\" value=\"")
        .skip(1)
        .map(|rest| rest.split('"').next().unwrap().to_string())
        .collect()
}

async fn customers_book_change_and_cancel_from_the_tracking_link(app: TestApp) {
    let (tenant, admin, project, ticket, path) = setup(&app).await;
    let profile = app
        .post(
            &format!("/api/v1/tenants/{tenant}/portal-profiles"),
            &admin,
            json!({
                "name": "Booking", "mode": "booking", "language": "de", "phone": "+49 30 123",
                "booking_text": "Bitte wählen Sie ein Zeitfenster.", "change_notice_minutes": 600,
                "translations": {"en": {"booking_text": "Please choose a window."}}
            }),
        )
        .await;
    assert_eq!(profile.status, 201, "{}", profile.text);
    let profile = profile.json["id"].as_str().unwrap();
    app.patch(
        &format!("/api/v1/tenants/{tenant}/projects/{project}"),
        &admin,
        json!({"profile_id": profile}),
    )
    .await;
    let booking = format!("{path}/booking");
    let closed = app.page(&booking, HOST).await;
    assert!(
        closed.text.contains("id=\"booking-unavailable\""),
        "no rules yet: {}",
        closed.text
    );

    let rules = app
        .post(
            &format!("/api/v1/tenants/{tenant}/booking-rules"),
            &admin,
            with(
                sla(
                    "Europe/Berlin",
                    &[
                        "monday",
                        "tuesday",
                        "wednesday",
                        "thursday",
                        "friday",
                        "saturday",
                        "sunday",
                    ],
                    "00:00",
                    "24:00",
                    120,
                ),
                &["horizon", "days"],
                json!(3),
            ),
        )
        .await;
    let rules = rules.json["id"].as_str().unwrap();
    let assigned = app
        .send(
            Method::PUT,
            &format!("/api/v1/tenants/{tenant}/portal-profiles/{profile}/booking-rules"),
            Some(&admin),
            Some(&json!({"rules_id": rules})),
            &[],
        )
        .await;
    assert_eq!(assigned.status, 200, "{}", assigned.text);

    let page = app.page(&booking, HOST).await;
    assert!(
        page.text.contains("Europe&#x2f;Berlin") && page.text.contains("Bitte wählen"),
        "{}",
        page.text
    );
    let english = app
        .send(
            Method::GET,
            &booking,
            None,
            None,
            &[("host", HOST), ("accept-language", "en")],
        )
        .await;
    assert!(
        english.text.contains("Please choose a window.")
            && english.text.contains("Book this window"),
        "{}",
        english.text
    );
    let csrf = csrf_token(&page.text);
    let windows = window_values(&page.text);
    assert!(windows.len() > 10, "{}", page.text);
    // The latest windows are more than ten hours away: they can be changed online.
    let (first, second) = (&windows[windows.len() - 1], &windows[windows.len() - 2]);

    let forged = post_form(
        &app,
        &booking,
        &format!("window={first}&csrf_token={}", "0".repeat(64)),
        &[],
    )
    .await;
    assert_eq!(forged.status, 403);
    let nonsense = post_form(
        &app,
        &booking,
        &format!("window=1-2&csrf_token={csrf}"),
        &[],
    )
    .await;
    assert_eq!(
        nonsense.status, 409,
        "a window not offered: {}",
        nonsense.text
    );
    assert!(nonsense.text.contains("role=\"alert\""));

    let booked = post_form(
        &app,
        &booking,
        &format!("window={first}&csrf_token={csrf}"),
        &[],
    )
    .await;
    assert_eq!(booked.status, 303, "{}", booked.text);
    assert_eq!(
        booked.headers["location"],
        format!("{booking}?done=booked").as_str()
    );
    let stored = app
        .get(
            &format!("/api/v1/tenants/{tenant}/tickets/{ticket}"),
            &admin,
        )
        .await;
    assert_eq!(stored.json["status"], "scheduling");
    let start_ms: i64 = first.split('-').next().unwrap().parse().unwrap();
    let start = jiff::Timestamp::from_millisecond(start_ms).unwrap();
    assert_eq!(
        stored.json["appointment"]["start"]
            .as_str()
            .unwrap()
            .parse::<jiff::Timestamp>()
            .unwrap(),
        start
    );

    let after = app.page(&format!("{booking}?done=booked"), HOST).await;
    assert!(
        after.text.contains("id=\"booking-notice\"") && after.text.contains("id=\"cancel-form\""),
        "{}",
        after.text
    );
    let calendar = app.page(&format!("{path}/appointment.ics"), HOST).await;
    assert_eq!(calendar.status, 200);
    assert!(
        calendar.headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/calendar")
    );
    assert!(
        calendar.headers["content-disposition"]
            .to_str()
            .unwrap()
            .starts_with("attachment")
    );
    let unfolded = icalendar::parser::unfold(&calendar.text);
    let parsed: icalendar::Calendar = icalendar::parser::read_calendar(&unfolded).unwrap().into();
    let event = parsed.components[0].as_event().unwrap();
    assert!(
        event.get_summary().unwrap().contains("Paper jam"),
        "{}",
        calendar.text
    );
    let dtstart = start.strftime("DTSTART:%Y%m%dT%H%M%SZ").to_string();
    assert!(
        calendar.text.contains(&dtstart),
        "{dtstart} in {}",
        calendar.text
    );

    let moved = post_form(
        &app,
        &booking,
        &format!("window={second}&csrf_token={csrf}"),
        &[],
    )
    .await;
    assert_eq!(moved.status, 303, "{}", moved.text);
    let events = app
        .get(
            &format!("/api/v1/tenants/{tenant}/events?subject={ticket}&limit=100"),
            &admin,
        )
        .await;
    let kinds: Vec<&str> = events.json["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds.iter().filter(|k| **k == "appointment_booked").count(),
        2,
        "{kinds:?}"
    );

    // A dispatcher moves it close (no customer notice for staff): too late to change online.
    let soon = jiff::Timestamp::now() + jiff::SignedDuration::from_hours(1);
    let close = json!({"start": soon.to_string(), "end": (soon + jiff::SignedDuration::from_hours(2)).to_string(), "override": true});
    let dispatched = app
        .send(
            Method::PUT,
            &format!("/api/v1/tenants/{tenant}/tickets/{ticket}/booking"),
            Some(&admin),
            Some(&close),
            &[],
        )
        .await;
    assert_eq!(dispatched.status, 200, "{}", dispatched.text);
    let late = app.page(&booking, HOST).await;
    assert!(
        late.text.contains("id=\"too-late\"") && late.text.contains("tel:+49 30 123"),
        "{}",
        late.text
    );
    assert!(!late.text.contains("id=\"booking-form\""));
    let refused = post_form(
        &app,
        &format!("{booking}/cancel"),
        &format!("csrf_token={csrf}"),
        &[],
    )
    .await;
    assert_eq!(refused.status, 409, "{}", refused.text);
    assert!(refused.text.contains("role=\"alert\""));
    let change = format!("window={first}&csrf_token={csrf}");
    let too_late = post_form(&app, &booking, &change, &[]).await;
    assert_eq!(
        too_late.status, 409,
        "a change inside the notice: {}",
        too_late.text
    );
    assert!(too_late.text.contains("id=\"too-late\""));

    let cancelled = app
        .delete(
            &format!("/api/v1/tenants/{tenant}/tickets/{ticket}/booking"),
            &admin,
        )
        .await;
    assert_eq!(cancelled.status, 200, "{}", cancelled.text);
    assert_eq!(cancelled.json["appointment"], Value::Null);
    let events = app
        .get(
            &format!("/api/v1/tenants/{tenant}/events?subject={ticket}&kind=appointment_cancelled"),
            &admin,
        )
        .await;
    assert_eq!(
        events.json["items"][0]["data"]["by"], "staff",
        "{}",
        events.text
    );
}

on_both_backends!(
    rules_are_checked_named_and_kept_while_in_use,
    windows_follow_the_rules_at_a_pinned_clock,
    a_hostile_calculator_fails_closed,
    a_calculator_built_against_0_1_0_keeps_working,
    the_last_place_goes_to_exactly_one_of_100,
    customers_book_change_and_cancel_from_the_tracking_link,
);
