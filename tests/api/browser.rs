//! A small driver for headless Chromium over the Chrome DevTools Protocol (CDP), so tests can
//! look at pages the way a person's browser renders them: scripts run, CSP applies, styles load.
//!
//! One WebSocket carries everything: a reader task matches answers to commands by `id` and keeps
//! each page's error events; pages are "flattened" sessions on that socket.

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::sync::{mpsc, oneshot};
use tokio::time::{sleep, timeout};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

/// How long any one CDP command may take before the test fails, naming the command.
const CALL_TIMEOUT: Duration = Duration::from_secs(30);
/// Names tried on PATH when `PORTICO_CHROMIUM` is not set.
const EXECUTABLES: [&str; 3] = ["chromium", "chromium-browser", "google-chrome"];

type Reply = oneshot::Sender<Result<Value, Value>>;

/// A headless Chromium with its own throwaway profile; dropping it ends the browser.
pub struct Browser {
    cdp: Cdp,
    _process: Process,
}

/// One tab in its own browser context (like a private window), so cookies never leak between
/// pages: two pages can be two different users of the same tenant. Its `alert`/`confirm`
/// dialogs are accepted at once, as they would otherwise block every later command.
pub struct Page {
    cdp: Cdp,
    session: String,
}

/// The browser process and its profile directory, cleaned up on drop, even if launch panics.
struct Process {
    child: Child,
    profile: PathBuf,
    /// Disconnects when every Chromium process has closed stderr, i.e. has exited.
    stderr_open: Mutex<std::sync::mpsc::Receiver<()>>,
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        // Helper processes outlive the browser by a moment and would still write to the profile.
        if let Ok(stderr_open) = self.stderr_open.get_mut() {
            let _ = stderr_open.recv_timeout(Duration::from_secs(5));
        }
        let _ = std::fs::remove_dir_all(&self.profile);
    }
}

/// A cheap handle on the one DevTools connection.
#[derive(Clone)]
struct Cdp {
    outgoing: mpsc::UnboundedSender<(Value, Reply)>,
    /// Error texts (exceptions, console errors, CSP refusals) by page session id.
    errors: Arc<Mutex<HashMap<String, Vec<String>>>>,
}

impl Browser {
    /// Starts Chromium, or returns `None` (a skip) when it is not installed, unless
    /// `PORTICO_REQUIRE_PEERS` is set, as in CI, where a missing browser must fail the test.
    pub async fn launch() -> Option<Browser> {
        let Some(exe) = find_executable() else {
            let reason = "Chromium not found: set PORTICO_CHROMIUM or install Debian's chromium \
                          package (apt-get install chromium)";
            let required =
                std::env::var("PORTICO_REQUIRE_PEERS").is_ok_and(|v| !v.is_empty() && v != "0");
            assert!(!required, "{reason}, and PORTICO_REQUIRE_PEERS is set");
            eprintln!("SKIPPED: {reason}");
            return None;
        };
        let id = uuid::Uuid::new_v4().simple();
        let profile = std::env::temp_dir().join(format!("portico-chromium-{id}"));
        std::fs::create_dir_all(&profile).expect("creating a Chromium profile directory");
        let child = Command::new(&exe)
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--no-proxy-server",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--disable-dev-shm-usage",
                "--remote-debugging-port=0",
                // Test tenants live at <slug>.portico.test:<port> on loopback.
                "--host-resolver-rules=MAP *.portico.test 127.0.0.1",
            ])
            .arg(format!("--user-data-dir={}", profile.display()))
            .arg("about:blank")
            // Chromium's own scratch files (its singleton socket) go inside the profile, which
            // is removed on drop, instead of piling up in the system's temporary directory.
            .env("TMPDIR", &profile)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("starting {}: {e}", exe.display()));
        let (stderr_tx, stderr_open) = std::sync::mpsc::channel();
        let mut process = Process {
            child,
            profile,
            stderr_open: Mutex::new(stderr_open),
        };

        // A thread keeps draining stderr for the browser's whole life, so it never blocks on a
        // full pipe; we only listen until it names its DevTools address.
        let stderr = process.child.stderr.take().expect("stderr is piped");
        let (line_tx, mut lines) = mpsc::unbounded_channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let _ = line_tx.send(line);
            }
            drop(stderr_tx);
        });
        let mut seen = Vec::new();
        let address = timeout(Duration::from_secs(20), async {
            while let Some(line) = lines.recv().await {
                if let Some(url) = line.strip_prefix("DevTools listening on ") {
                    return Some(url.trim().to_owned());
                }
                seen.push(line);
            }
            None
        })
        .await;
        let Some(address) = address.ok().flatten() else {
            let seen = seen.join("\n");
            panic!("{exe:?} did not announce DevTools within 20 s; its stderr:\n{seen}");
        };

        // Screenshots of long pages arrive as one big message.
        let config = WebSocketConfig::default()
            .max_message_size(None)
            .max_frame_size(None);
        let (ws, _) =
            tokio_tungstenite::connect_async_with_config(address.as_str(), Some(config), true)
                .await
                .unwrap_or_else(|e| panic!("connecting to Chromium's DevTools at {address}: {e}"));
        let (outgoing, commands) = mpsc::unbounded_channel();
        let errors = Arc::default();
        tokio::spawn(pump(ws, commands, Arc::clone(&errors)));
        Some(Browser {
            cdp: Cdp { outgoing, errors },
            _process: process,
        })
    }

    /// Opens a blank page in a fresh browser context, with error reporting switched on.
    pub async fn new_page(&self) -> Page {
        let cdp = self.cdp.clone();
        let context = cdp
            .call(None, "Target.createBrowserContext", json!({}))
            .await;
        let target = json!({"url": "about:blank", "browserContextId": context["browserContextId"]});
        let target = cdp.call(None, "Target.createTarget", target).await;
        let target = json!({"targetId": target["targetId"], "flatten": true});
        let attached = cdp.call(None, "Target.attachToTarget", target).await;
        let session = attached["sessionId"].as_str().expect("a session id");
        let page = Page {
            cdp,
            session: session.to_owned(),
        };
        for domain in ["Page", "Runtime", "Log"] {
            page.call(&format!("{domain}.enable"), json!({})).await;
        }
        page
    }
}

impl Page {
    /// Sizes the window, e.g. a phone's 390×844 with `mobile` to check the responsive layout.
    pub async fn set_viewport(&self, width: u32, height: u32, mobile: bool) {
        let metrics =
            json!({"width": width, "height": height, "deviceScaleFactor": 1, "mobile": mobile});
        self.call("Emulation.setDeviceMetricsOverride", metrics)
            .await;
    }

    /// Makes `prefers-color-scheme` match dark or light, to check both themes.
    pub async fn emulate_color_scheme(&self, dark: bool) {
        let value = if dark { "dark" } else { "light" };
        let features = json!([{"name": "prefers-color-scheme", "value": value}]);
        self.call("Emulation.setEmulatedMedia", json!({"features": features}))
            .await;
    }

    /// Loads `url` and waits until the page and everything it loads (styles, images) are in.
    pub async fn goto(&self, url: &str) {
        let navigation = self.call("Page.navigate", json!({"url": url})).await;
        if let Some(error) = navigation["errorText"].as_str() {
            panic!("navigating to {url} failed: {error}");
        }
        self.wait_for("document.readyState === 'complete'", CALL_TIMEOUT)
            .await;
    }

    /// The value of a JavaScript expression (a promise is awaited); panics if it throws.
    pub async fn eval(&self, js: &str) -> Value {
        self.try_eval(js)
            .await
            .unwrap_or_else(|e| panic!("evaluating `{js}` threw: {e}"))
    }

    /// Polls `condition` (a JavaScript expression) until it is truthy and says how long that took;
    /// a throw counts as "not yet", since the element it looks at may not exist yet.
    pub async fn wait_for(&self, condition: &str, within: Duration) -> Duration {
        let start = Instant::now();
        let check = format!("(async () => !!(await ({condition})))()");
        loop {
            let outcome = self.try_eval(&check).await;
            if outcome == Ok(Value::Bool(true)) {
                return start.elapsed();
            }
            if start.elapsed() > within {
                let text = self
                    .try_eval("document.body?.innerText.slice(0, 1500)")
                    .await;
                let text = text.unwrap_or_default();
                let text = text.as_str().unwrap_or_default();
                let error = outcome.err().map(|e| format!(" (it threw: {e})"));
                let error = error.unwrap_or_default();
                panic!("waited {within:?} for `{condition}`{error}; the page says:\n{text}");
            }
            sleep(Duration::from_millis(20)).await;
        }
    }

    /// Clicks the first element matching a CSS selector; panics if there is none.
    pub async fn click(&self, selector: &str) {
        let action = "el.scrollIntoView({block: 'center'}); el.click();";
        self.on_element("clicking", selector, action).await;
    }

    /// Types into a form field as far as the page can tell: sets the value, fires input and change.
    pub async fn fill(&self, selector: &str, text: &str) {
        let action = format!(
            "el.focus(); el.value = {};
             el.dispatchEvent(new Event('input', {{bubbles: true}}));
             el.dispatchEvent(new Event('change', {{bubbles: true}}));",
            Value::from(text)
        );
        self.on_element("filling", selector, &action).await;
    }

    /// Saves a PNG of the whole page as `target/screenshots/<name>.png`, for a person to look at.
    pub async fn screenshot(&self, name: &str) -> PathBuf {
        let params = json!({"format": "png", "captureBeyondViewport": true});
        let shot = self.call("Page.captureScreenshot", params).await;
        let data = shot["data"].as_str().expect("screenshot data");
        let png = STANDARD.decode(data).expect("screenshot data is base64");
        let repo = Path::new(env!("CARGO_MANIFEST_DIR"))
            .parent()
            .expect("the repository");
        let dir = repo.join("target/screenshots");
        std::fs::create_dir_all(&dir).expect("creating target/screenshots");
        let path = dir.join(format!("{name}.png"));
        std::fs::write(&path, png).unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
        path
    }

    /// Uncaught exceptions, `console.error` calls and browser errors (CSP refusals, failed loads)
    /// so far, so a test can assert a page runs cleanly.
    pub fn errors(&self) -> Vec<String> {
        let errors = self.cdp.errors.lock().unwrap();
        errors.get(&self.session).cloned().unwrap_or_default()
    }

    async fn call(&self, method: &str, params: Value) -> Value {
        self.cdp.call(Some(&self.session), method, params).await
    }

    /// Runs `action` on `el`, the first match for `selector`, failing the test if there is none.
    async fn on_element(&self, doing: &str, selector: &str, action: &str) {
        let js = format!(
            "{{ const el = document.querySelector({}); if (el) {{ {action} }} !!el }}",
            Value::from(selector)
        );
        match self.try_eval(&js).await {
            Ok(Value::Bool(true)) => {}
            Ok(_) => panic!("{doing} `{selector}`: nothing on the page matches it"),
            Err(e) => panic!("{doing} `{selector}`: {e}"),
        }
    }

    async fn try_eval(&self, js: &str) -> Result<Value, String> {
        let params = json!({"expression": js, "returnByValue": true, "awaitPromise": true});
        let to = Some(self.session.as_str());
        let result = self.cdp.send(to, "Runtime.evaluate", params).await?;
        match result.get("exceptionDetails") {
            Some(details) => Err(exception_text(details)),
            None => Ok(result["result"].get("value").cloned().unwrap_or_default()),
        }
    }
}

impl Cdp {
    /// Sends a command and waits for its answer; `Err` is the browser's refusal. A dead
    /// connection or a missing answer fails the test, naming the command.
    async fn send(&self, to: Option<&str>, method: &str, params: Value) -> Result<Value, String> {
        let mut message = json!({"method": method, "params": params});
        if let Some(session) = to {
            message["sessionId"] = session.into();
        }
        let (reply, answer) = oneshot::channel();
        let closed = || -> ! { panic!("CDP {method}: the connection to Chromium is closed") };
        self.outgoing
            .send((message, reply))
            .unwrap_or_else(|_| closed());
        match timeout(CALL_TIMEOUT, answer).await {
            Err(_) => panic!("CDP {method} got no answer within {CALL_TIMEOUT:?}"),
            Ok(Err(_)) => closed(),
            Ok(Ok(answer)) => answer.map_err(|error| error.to_string()),
        }
    }

    async fn call(&self, to: Option<&str>, method: &str, params: Value) -> Value {
        let answer = self.send(to, method, params).await;
        answer.unwrap_or_else(|e| panic!("CDP {method} failed: {e}"))
    }
}

/// Writes numbered commands to the socket and routes what comes back: answers to their
/// waiting caller, error events to their page. Ends when the browser goes away.
async fn pump<S>(
    mut ws: tokio_tungstenite::WebSocketStream<S>,
    mut commands: mpsc::UnboundedReceiver<(Value, Reply)>,
    errors: Arc<Mutex<HashMap<String, Vec<String>>>>,
) where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let mut waiting = HashMap::new();
    let mut next_id = 0_u64; // 0 is for commands whose answer nobody awaits
    loop {
        tokio::select! {
            command = commands.recv() => {
                let Some((mut message, reply)) = command else { return };
                next_id += 1;
                message["id"] = next_id.into();
                waiting.insert(next_id, reply);
                if ws.send(Message::text(message.to_string())).await.is_err() {
                    return;
                }
            }
            frame = ws.next() => {
                let text = match frame {
                    Some(Ok(Message::Text(text))) => text,
                    Some(Ok(_)) => continue,
                    Some(Err(_)) | None => return,
                };
                let Ok(message) = serde_json::from_str::<Value>(&text) else { continue };
                if let Some(id) = message["id"].as_u64() {
                    if let Some(reply) = waiting.remove(&id) {
                        let _ = reply.send(match message.get("error") {
                            Some(error) => Err(error.clone()),
                            None => Ok(message["result"].clone()),
                        });
                    }
                    continue;
                }
                let Some(session) = message["sessionId"].as_str() else { continue };
                if message["method"] == "Page.javascriptDialogOpening" {
                    let accept = json!({"method": "Page.handleJavaScriptDialog",
                        "params": {"accept": true}, "sessionId": session, "id": 0});
                    if ws.send(Message::text(accept.to_string())).await.is_err() {
                        return;
                    }
                } else if let Some(error) = error_event(&message) {
                    errors.lock().unwrap().entry(session.to_owned()).or_default().push(error);
                }
            }
        }
    }
}

/// The text of an event that means something went wrong in the page, if it is one.
fn error_event(event: &Value) -> Option<String> {
    let params = &event["params"];
    match event["method"].as_str()? {
        "Runtime.exceptionThrown" => Some(exception_text(&params["exceptionDetails"])),
        "Log.entryAdded" if params["entry"]["level"] == "error" => {
            let text = params["entry"]["text"].as_str()?;
            let url = params["entry"]["url"].as_str().unwrap_or_default();
            // Chromium asks every site for /favicon.ico by itself; lacking one is no page error.
            match url {
                "" => Some(text.to_owned()),
                _ if url.ends_with("/favicon.ico") => None,
                _ => Some(format!("{text} ({url})")),
            }
        }
        "Runtime.consoleAPICalled" if params["type"] == "error" => {
            let args = params["args"].as_array()?.iter();
            let text = args.map(|arg| match arg.get("value") {
                Some(Value::String(s)) => s.clone(),
                Some(value) => value.to_string(),
                None => arg["description"].as_str().unwrap_or_default().to_owned(),
            });
            Some(text.collect::<Vec<_>>().join(" "))
        }
        _ => None,
    }
}

/// A thrown error's message and stack, or what was thrown when it was not an Error.
fn exception_text(details: &Value) -> String {
    let exception = &details["exception"];
    let uncaught = details["text"].as_str().unwrap_or("Uncaught");
    match (exception["description"].as_str(), exception.get("value")) {
        (Some(description), _) => description.to_owned(),
        (None, Some(value)) => format!("{uncaught} {value}"),
        (None, None) => uncaught.to_owned(),
    }
}

/// `PORTICO_CHROMIUM` if set, else the first known Chromium name on PATH.
fn find_executable() -> Option<PathBuf> {
    if let Some(exe) = std::env::var_os("PORTICO_CHROMIUM").filter(|v| !v.is_empty()) {
        return Some(exe.into());
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .flat_map(|dir| EXECUTABLES.map(|name| dir.join(name)))
        .find(|candidate| candidate.is_file())
}
