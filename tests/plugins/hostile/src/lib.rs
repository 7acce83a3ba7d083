//! An action that misbehaves the way `config.behaviour` asks, to prove the host survives it.

use std::sync::atomic::{AtomicU32, Ordering};

use portico_sdk::{Action, Event, Json, Outcome, Secrets, http, log, register_action};

static CALLS: AtomicU32 = AtomicU32::new(0);

struct Hostile;

/// Recursion without end, each frame holding data the optimiser cannot remove.
#[inline(never)]
fn recurse(depth: u64) -> u64 {
    let mut frame = [0u8; 256];
    std::hint::black_box(&mut frame);
    if std::hint::black_box(depth) == u64::MAX {
        return 0;
    }
    recurse(depth + 1).wrapping_add(u64::from(frame[(depth % 256) as usize]))
}

impl Action for Hostile {
    type Config = Json;

    fn run(event: Event, config: Json, secrets: Secrets, _key: String) -> Result<Outcome, String> {
        let done = |summary: String| {
            Ok(Outcome {
                summary,
                external_ref: None,
            })
        };
        match config["behaviour"].as_str().unwrap_or("ok") {
            "ok" => done(format!("handled {}", event.kind)),
            "loop" => loop {
                std::hint::black_box(CALLS.load(Ordering::Relaxed));
            },
            "memory" => {
                let mut hoard: Vec<Vec<u8>> = Vec::new();
                loop {
                    hoard.push(vec![1u8; 8 << 20]);
                    std::hint::black_box(&hoard);
                }
            }
            "recursion" => done(recurse(0).to_string()),
            "panic" => panic!("the plugin panicked on purpose"),
            "huge-output" => done("x".repeat(16 << 20)),
            "log-flood" => loop {
                log::info("flooding the log with another line of text");
            },
            "http" => {
                let url = config["url"].as_str().unwrap_or_default();
                match http::get(url) {
                    Ok(response) => done(format!(
                        "{} {}",
                        response.status,
                        String::from_utf8_lossy(&response.body)
                    )),
                    Err(e) => Err(format!("{e:?}")),
                }
            }
            "log-secret" => {
                log::info(&format!(
                    "the key is {}",
                    secrets.get("api_key").unwrap_or("unset")
                ));
                done("logged".into())
            }
            // The secret in each place a plugin's words are kept: an error, a summary, a panic.
            "fail-secret" => Err(format!(
                "the key {} was refused",
                secrets.get("api_key").unwrap_or("unset")
            )),
            "summary-secret" => done(format!(
                "used the key {}",
                secrets.get("api_key").unwrap_or("unset")
            )),
            "panic-secret" => panic!(
                "panicking with the key {}",
                secrets.get("api_key").unwrap_or("unset")
            ),
            "counter" => done(
                CALLS
                    .fetch_add(1, Ordering::Relaxed)
                    .saturating_add(1)
                    .to_string(),
            ),
            "sandbox" => {
                let file = std::fs::read_to_string("/etc/passwd")
                    .map(|s| s.len().to_string())
                    .map_err(|e| e.kind().to_string());
                let dir = std::fs::read_dir("/")
                    .map(|d| d.count().to_string())
                    .map_err(|e| e.kind().to_string());
                let env: Vec<String> = std::env::vars().map(|(k, _)| k).collect();
                let now = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.as_secs())
                    .unwrap_or(0);
                let summary = portico_sdk::serde_json::json!({
                    "file": format!("{file:?}"),
                    "dir": format!("{dir:?}"),
                    "env": env,
                    "clock_secs": now,
                    // Its length: the value itself would be redacted from the summary.
                    "secret_chars": secrets.get("api_key").map(str::len),
                });
                done(summary.to_string())
            }
            "random" => {
                let mut bytes = [0u8; 16];
                getrandom::fill(&mut bytes).map_err(|e| e.to_string())?;
                done(bytes.iter().map(|b| format!("{b:02x}")).collect())
            }
            other => Err(format!("unknown behaviour {other}")),
        }
    }
}

register_action!(Hostile);
