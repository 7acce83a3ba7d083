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
