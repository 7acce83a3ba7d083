//! The plugin author's harness, as the `portico` binary runs it: pack, check, run, publish.

use std::process::Command;

use serde_json::json;

use crate::support::{Backend, TestApp, guest_wasm};

fn portico(dir: &std::path::Path, args: &[&str]) -> (bool, String, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_portico"))
        .args(args)
        .current_dir(dir)
        .output()
        .expect("running portico");
    let text = |bytes: Vec<u8>| String::from_utf8_lossy(&bytes).into_owned();
    (
        output.status.success(),
        text(output.stdout),
        text(output.stderr),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_author_packs_checks_runs_and_publishes_a_plugin() {
    let dir = std::env::temp_dir().join(format!("portico-cli-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("hello.wasm"), guest_wasm("hello-theme")).unwrap();
    std::fs::write(dir.join("hostile.wasm"), guest_wasm("hostile")).unwrap();
    let manifest = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../tests/plugins/hello-theme/portico-plugin.toml"
    );

    let (ok, out, err) = portico(
        &dir,
        &[
            "plugin",
            "pack",
            "--manifest",
            manifest,
            "--wasm",
            "hello.wasm",
        ],
    );
    assert!(ok, "{err}");
    assert!(
        out.contains("hello-theme-0.1.0.portico") && out.contains("sha256 "),
        "{out}"
    );

    let (ok, out, err) = portico(&dir, &["plugin", "check", "hello-theme-0.1.0.portico"]);
    assert!(ok, "{err}");
    assert!(out.starts_with("ok: hello-theme 0.1.0 (theme)"), "{out}");
    let (ok, _, err) = portico(&dir, &["plugin", "check", "hello.wasm"]);
    assert!(
        !ok && err.contains("manifest"),
        "a bare component is not a package: {err}"
    );

    std::fs::write(
        dir.join("page.json"),
        json!({"page": "tracking", "view_model": {"ticket": {"title": "Jam"}}}).to_string(),
    )
    .unwrap();
    std::fs::write(
        dir.join("config.json"),
        json!({"accent": "#abcdef"}).to_string(),
    )
    .unwrap();
    let (ok, out, err) = portico(
        &dir,
        &[
            "plugin",
            "run",
            "hello-theme-0.1.0.portico",
            "--input",
            "page.json",
            "--config",
            "config.json",
        ],
    );
    assert!(ok, "{err}");
    let output: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert!(output["html"].as_str().unwrap().contains("<h1>Jam</h1>"));
    assert_eq!(output["stylesheet"], "h1 { color: #abcdef; }");
    assert!(
        err.contains("duration") && err.contains("fuel used"),
        "{err}"
    );

    std::fs::write(
        dir.join("event.json"),
        json!({"kind": "ticket.created"}).to_string(),
    )
    .unwrap();
    std::fs::write(
        dir.join("panic.json"),
        json!({"behaviour": "panic"}).to_string(),
    )
    .unwrap();
    let (ok, _, err) = portico(
        &dir,
        &[
            "plugin",
            "run",
            "hostile.wasm",
            "--kind",
            "action",
            "--input",
            "event.json",
            "--config",
            "panic.json",
        ],
    );
    assert!(!ok && err.contains("plugin_trap"), "{err}");

    let app = TestApp::spawn(Backend::Sqlite).await.unwrap();
    let (ok, out, err) = portico(
        &dir,
        &[
            "plugin",
            "publish",
            "hello-theme-0.1.0.portico",
            "--url",
            &app.base_url,
            "--token",
            &app.platform_token,
        ],
    );
    assert!(ok, "{err}");
    assert!(out.contains("published"), "{out}");
    let catalogue = app
        .get(
            "/api/v1/plugins/hello-theme/versions/0.1.0",
            &app.platform_token,
        )
        .await;
    assert_eq!(catalogue.status, 200, "{}", catalogue.text);
    std::fs::remove_dir_all(dir).unwrap();
}

/// The next message the loopback receiver got, within a minute.
async fn next_post(
    posts: &mut tokio::sync::mpsc::UnboundedReceiver<serde_json::Value>,
) -> serde_json::Value {
    tokio::time::timeout(std::time::Duration::from_secs(60), posts.recv())
        .await
        .expect("the receiver got a message within a minute")
        .expect("the receiver is running")
}

/// Builds a crate `portico plugin new` wrote, as its README says, into a target directory the
/// test runs share. It starts from the built-in plugins' lock file, so the SDK's dependencies
/// are the versions the repository was tested with, not whatever crates.io has newest.
fn cargo_build(dir: &std::path::Path) {
    let lock = concat!(env!("CARGO_MANIFEST_DIR"), "/../plugins/Cargo.lock");
    std::fs::copy(lock, dir.join("Cargo.lock")).unwrap();
    let target = concat!(env!("CARGO_MANIFEST_DIR"), "/../target/scaffolds");
    let status = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .args(["build", "--quiet", "--release", "--target", "wasm32-wasip2"])
        .args(["--target-dir", target])
        .current_dir(dir)
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_TARGET_DIR")
        .status()
        .expect("running cargo");
    assert!(status.success(), "{} does not build", dir.display());
}

fn component(name: &str) -> String {
    format!(
        "{}/../target/scaffolds/wasm32-wasip2/release/{}.wasm",
        env!("CARGO_MANIFEST_DIR"),
        name.replace('-', "_")
    )
}

/// The author's path for every kind: `plugin new`, `cargo build`, `plugin run` on each sample
/// input, `plugin pack`, `plugin publish --install`, and the checks `run` and `pack` share with
/// production.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_plugin_of_every_kind_goes_from_an_empty_folder_to_a_tenant() {
    // The channel's receiver is on loopback, over plain HTTP.
    let local = |config: &mut portico::config::Config| {
        config.plugins_allow_http = true;
        config.plugins_allow_private_network = true;
    };
    let app = TestApp::spawn_with(Backend::Sqlite, local)
        .await
        .expect("SQLite is always here");
    let (tenant, admin) = app.tenant_with_admin("scaffolds").await;
    let dir = std::env::temp_dir().join(format!("portico-new-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    // A receiver on loopback for the channel.
    let (posted, mut posts) = tokio::sync::mpsc::unbounded_channel::<serde_json::Value>();
    let receiver = axum::Router::new().route(
        "/messages",
        axum::routing::post(move |body: axum::Json<serde_json::Value>| {
            let _ = posted.send(body.0);
            async { "ok" }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let receiver_url = format!("http://{}/messages", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, receiver).await.unwrap() });

    for kind in ["channel", "slot-calculator", "theme", "action"] {
        let name = format!("new-{kind}");
        let (ok, out, err) = portico(&dir, &["plugin", "new", kind, &name]);
        assert!(ok, "{kind}: {err}");
        assert!(out.contains("README.md"), "{out}");
        let crate_dir = dir.join(&name);
        let readme = std::fs::read_to_string(crate_dir.join("README.md")).unwrap();
        assert!(readme.contains("plugin publish"), "{readme}");
        cargo_build(&crate_dir);
        let wasm = component(&name);

        if kind == "channel" {
            std::fs::write(
                crate_dir.join("config.json"),
                json!({"url": receiver_url}).to_string(),
            )
            .unwrap();
        }
        let mut inputs: Vec<_> = std::fs::read_dir(crate_dir.join("inputs"))
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        inputs.sort();
        assert!(inputs.len() >= 2, "{kind}: a sample for every case");
        for input in &inputs {
            let input = input.to_str().unwrap();
            let mut args = vec![
                "plugin",
                "run",
                &wasm,
                "--config",
                "config.json",
                "--input",
                input,
            ];
            if kind == "channel" {
                args.extend([
                    "--grant-http",
                    "127.0.0.1",
                    "--allow-http",
                    "--allow-private-network",
                ]);
            }
            let (ok, out, err) = portico(&crate_dir, &args);
            assert!(ok, "{kind} on {input}: {err}");
            let output: serde_json::Value = serde_json::from_str(&out).unwrap();
            match kind {
                "channel" => {
                    assert!(output["delivery"].is_object(), "{out}");
                    let post = next_post(&mut posts).await;
                    assert_eq!(post["subject"], "Your service request 1042");
                }
                "slot-calculator" => {
                    let windows = output.as_array().unwrap();
                    assert!(!windows.is_empty(), "{input}: {out}");
                    // The sample configuration closes Fridays (2027-01-08).
                    let friday = 1_799_020_800_000_i64 + 4 * 86_400_000;
                    assert!(windows.iter().all(|w| {
                        let start = w["start"].as_i64().unwrap();
                        !(friday..friday + 86_400_000).contains(&start)
                    }));
                }
                "theme" => {
                    let html = output["html"].as_str().unwrap();
                    assert!(html.contains("</head>"), "{html}");
                    assert!(output["stylesheet"].as_str().unwrap().contains("#0b5cad"));
                    if input.ends_with("tracking.json") {
                        assert!(html.contains("Printer jams on every page"), "{html}");
                    }
                }
                _ => assert!(
                    output["summary"].as_str().unwrap().starts_with("seen: "),
                    "{out}"
                ),
            }
        }

        let (ok, out, err) = portico(&crate_dir, &["plugin", "pack", "--wasm", &wasm]);
        assert!(ok, "{kind}: {err}");
        let package = format!("{name}-0.1.0.portico");
        assert!(out.contains(&package), "{out}");
        let mut args = vec![
            "plugin",
            "publish",
            &package,
            "--url",
            &app.base_url,
            "--token",
            &app.platform_token,
            "--install",
            "scaffolds",
            "--config",
            "config.json",
            "--keep-failed-inputs",
        ];
        if kind == "channel" {
            args.extend(["--grant-http", "127.0.0.1"]);
        }
        let (ok, out, err) = portico(&crate_dir, &args);
        assert!(ok, "{kind}: {err}");
        assert!(
            out.contains(&format!("installed {name} 0.1.0 in scaffolds")),
            "{out}"
        );
        let installs = app
            .get(&format!("/api/v1/tenants/{tenant}/plugins"), &admin)
            .await;
        let install = installs.json["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|i| i["plugin_id"] == name.as_str())
            .unwrap_or_else(|| panic!("{name} is installed: {}", installs.text))
            .clone();
        assert_eq!(install["enabled"], true);
        if kind == "theme" {
            assert_eq!(install["config"]["accent"], "#0b5cad");
        }
        // A call through the host, with the first sample.
        let input: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&inputs[0]).unwrap()).unwrap();
        let install_id = install["id"].as_str().unwrap();
        let invoked = app
            .post(
                &format!("/api/v1/tenants/{tenant}/plugins/{install_id}/invoke"),
                &admin,
                json!({"input": input}),
            )
            .await;
        assert_eq!(invoked.json["outcome"], "ok", "{kind}: {}", invoked.text);
        let output = &invoked.json["output"];
        match kind {
            "channel" => {
                assert!(output["delivery"].is_object(), "{output}");
                assert_eq!(next_post(&mut posts).await["text"], input["text"]);
            }
            "slot-calculator" => assert!(!output.as_array().unwrap().is_empty(), "{output}"),
            "theme" => assert!(
                output["html"].as_str().unwrap().contains("</head>"),
                "{output}"
            ),
            _ => assert_eq!(output["summary"], "seen: ticket.appointment_booked"),
        }
    }

    // The scaffolded theme renders the tenant's real tracking page.
    let theme_install = app.install_of(&tenant, &admin, "new-theme").await;
    let profiles = app
        .get(&format!("/api/v1/tenants/{tenant}/portal-profiles"), &admin)
        .await;
    let default_profile = profiles.json["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["is_default"] == true)
        .unwrap_or_else(|| panic!("a default profile: {}", profiles.text))["id"]
        .as_str()
        .unwrap()
        .to_string();
    let themed = app
        .patch(
            &format!("/api/v1/tenants/{tenant}/portal-profiles/{default_profile}"),
            &admin,
            json!({"theme_install_id": theme_install}),
        )
        .await;
    assert_eq!(themed.status, 200, "{}", themed.text);
    let (_, path) = app
        .ticket_with_link(&tenant, &admin, "Scanner leaves streaks")
        .await;
    let page = app.page(&path, "scaffolds.portico.test").await;
    assert_eq!(page.status, 200, "{}", page.text);
    assert!(
        page.text.contains("Scanner leaves streaks")
            && page.text.contains("aria-current=\"step\"")
            && page.text.contains("h1, h2 { color: #0b5cad; }"),
        "the scaffolded theme's page, with its stylesheet: {}",
        page.text
    );

    // A failed production run, replayed against the local build: the same outcome.
    let failed = app
        .post(
            &format!("/api/v1/tenants/{tenant}/plugins/{theme_install}/invoke"),
            &admin,
            json!({"input": {"page": "sign_in", "view_model": {}}}),
        )
        .await;
    assert_eq!(failed.json["outcome"], "plugin_failed", "{}", failed.text);
    let run_id = failed.json["run_id"].as_str().unwrap();
    let (ok, out, err) = portico(
        &dir,
        &[
            "plugin",
            "replay",
            run_id,
            &component("new-theme"),
            "--tenant",
            "scaffolds",
            "--url",
            &app.base_url,
            "--token",
            &admin,
        ],
    );
    assert!(!ok && err.contains("the new build fails too"), "{err}");
    assert!(
        out.contains("then: plugin_failed: ") && out.contains("now:  plugin_failed: "),
        "{out}"
    );
    assert!(out.contains("sign_in.html"), "{out}");
    // What was kept: the input, with its tracking links and form token redacted.
    let kept = app
        .get(
            &format!("/api/v1/tenants/{tenant}/plugin-runs/{run_id}/replay"),
            &admin,
        )
        .await;
    assert_eq!(kept.status, 200, "{}", kept.text);
    assert_eq!(kept.json["input"]["page"], "sign_in");
    assert_eq!(kept.json["config"]["accent"], "#0b5cad");
    // A viewer reads everything else, but not what runs kept.
    let (_, viewer) = app
        .staff(&tenant, "viewer@scaffolds.example", &["viewer"])
        .await;
    let refused = app
        .get(
            &format!("/api/v1/tenants/{tenant}/plugin-runs/{run_id}/replay"),
            &viewer,
        )
        .await;
    assert_eq!(refused.status, 403, "{}", refused.text);
    // An install that stops keeping inputs forgets the ones it kept.
    let stop = app
        .patch(
            &format!("/api/v1/tenants/{tenant}/plugins/{theme_install}"),
            &admin,
            json!({"keep_failed_inputs": false}),
        )
        .await;
    assert_eq!(stop.status, 200, "{}", stop.text);
    let forgotten = app
        .get(
            &format!("/api/v1/tenants/{tenant}/plugin-runs/{run_id}/replay"),
            &admin,
        )
        .await;
    assert_eq!(forgotten.status, 404, "{}", forgotten.text);
    let succeeded = app
        .get(&format!("/api/v1/tenants/{tenant}/plugin-runs"), &admin)
        .await;
    let ok_run = succeeded.json["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["outcome"] == "ok")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let kept = app
        .get(
            &format!("/api/v1/tenants/{tenant}/plugin-runs/{ok_run}/replay"),
            &admin,
        )
        .await;
    assert_eq!(
        kept.status, 404,
        "a run that succeeded keeps nothing: {}",
        kept.text
    );

    // `run` refuses what the portal and the booking page refuse, naming the rule.
    std::fs::write(dir.join("broken.wasm"), guest_wasm("broken-theme")).unwrap();
    std::fs::write(dir.join("empty.json"), json!({"fail": "empty"}).to_string()).unwrap();
    let (ok, _, err) = portico(
        &dir,
        &[
            "plugin",
            "run",
            "broken.wasm",
            "--kind",
            "theme",
            "--config",
            "empty.json",
            "--input",
            "new-theme/inputs/tracking.json",
        ],
    );
    assert!(!ok && err.contains("</head>"), "{err}");
    std::fs::write(dir.join("spinner.wasm"), guest_wasm("spinner")).unwrap();
    std::fs::write(
        dir.join("overlapping.json"),
        json!({"behaviour": "overlapping"}).to_string(),
    )
    .unwrap();
    let (ok, _, err) = portico(
        &dir,
        &[
            "plugin",
            "run",
            "spinner.wasm",
            "--kind",
            "slot-calculator",
            "--config",
            "overlapping.json",
            "--input",
            "new-slot-calculator/inputs/intervals.json",
        ],
    );
    assert!(
        !ok && err.contains("plugin_invalid_output") && err.contains("overlaps"),
        "{err}"
    );

    // What `run` refuses as production would, naming what to change.
    let theme_dir = dir.join("new-theme");
    let theme = component("new-theme");
    std::fs::write(
        theme_dir.join("red.json"),
        json!({"accent": "red"}).to_string(),
    )
    .unwrap();
    let (ok, _, err) = portico(
        &theme_dir,
        &[
            "plugin",
            "run",
            &theme,
            "--config",
            "red.json",
            "--input",
            "inputs/tracking.json",
        ],
    );
    assert!(
        !ok && err.contains("configuration") && err.contains("/accent"),
        "{err}"
    );
    std::fs::write(
        theme_dir.join("secrets.json"),
        json!({"api_key": "k"}).to_string(),
    )
    .unwrap();
    let (ok, _, err) = portico(
        &theme_dir,
        &[
            "plugin",
            "run",
            &theme,
            "--secrets",
            "secrets.json",
            "--input",
            "inputs/tracking.json",
        ],
    );
    assert!(!ok && err.contains("unknown_secret"), "{err}");
    std::fs::write(
        theme_dir.join("bad-input.json"),
        json!({"page": "tracking", "view_model": {}, "language": 7}).to_string(),
    )
    .unwrap();
    let (ok, _, err) = portico(
        &theme_dir,
        &["plugin", "run", &theme, "--input", "bad-input.json"],
    );
    assert!(!ok && err.contains("at language"), "{err}");
    std::fs::write(
        theme_dir.join("unknown-page.json"),
        json!({"page": "home"}).to_string(),
    )
    .unwrap();
    let (ok, _, err) = portico(
        &theme_dir,
        &["plugin", "run", &theme, "--input", "unknown-page.json"],
    );
    assert!(!ok && err.contains("tracking, booking"), "{err}");
    let channel_dir = dir.join("new-channel");
    let (ok, _, err) = portico(
        &channel_dir,
        &[
            "plugin",
            "run",
            &component("new-channel"),
            "--config",
            "config.json",
            "--input",
            "inputs/email.json",
            "--grant-http",
            "127.0.0.1",
        ],
    );
    assert!(!ok && err.contains("--allow-http"), "{err}");
    let (ok, _, err) = portico(
        &channel_dir,
        &[
            "plugin",
            "run",
            &component("new-channel"),
            "--config",
            "config.json",
            "--input",
            "inputs/email.json",
            "--allow-http",
            "--allow-private-network",
        ],
    );
    assert!(!ok && err.contains("--grant-http 127.0.0.1"), "{err}");

    // `pack` refuses a component of another kind than its manifest says, and writes nothing.
    std::fs::create_dir(channel_dir.join("refused")).unwrap();
    let (ok, _, err) = portico(
        &channel_dir,
        &["plugin", "pack", "--wasm", &theme, "--out", "refused"],
    );
    assert!(!ok && err.contains("not packed"), "{err}");
    let written = std::fs::read_dir(channel_dir.join("refused"))
        .unwrap()
        .count();
    assert_eq!(written, 0, "nothing is written");

    let (ok, out, err) = portico(&dir, &["plugin", "schema", "channel"]);
    assert!(ok, "{err}");
    let schema: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert!(schema["properties"]["recipient"].is_object(), "{out}");
    std::fs::remove_dir_all(dir).unwrap();
}
