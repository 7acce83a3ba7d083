//! `portico serve` in a process of its own on a test application's database and data folder,
//! for what only a whole process shows: its logs and its memory.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use super::app::{TEST_SECRET_KEY, TestApp, test_plugin_cache};

pub struct HostProcess {
    child: Child,
    pub base_url: String,
    /// Where the process writes its log (standard error).
    pub log: PathBuf,
}

impl HostProcess {
    /// Starts the host with `config` (TOML) and extra environment, and waits until it answers.
    pub async fn start(app: &TestApp, config: &str, env: &[(&str, &str)]) -> Self {
        let dir = &app.state.config.data_dir;
        let id = uuid::Uuid::new_v4().simple();
        let config_file = dir.join(format!("host-{id}.toml"));
        // The tests' shared cache of compiled plugins, which the shared key vouches for.
        let cache = format!("plugin_cache_dir = {:?}\n", test_plugin_cache());
        std::fs::write(&config_file, format!("{cache}{config}")).unwrap();
        let log = dir.join(format!("host-{id}.log"));
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new(env!("CARGO_BIN_EXE_portico"))
            .arg("--config")
            .arg(&config_file)
            .arg("serve")
            .envs(app.database_env())
            .env("PORTICO_DATA_DIR", dir)
            .env("PORTICO_SECRET_KEY", TEST_SECRET_KEY)
            .env("PORTICO_LISTEN", format!("127.0.0.1:{port}"))
            .envs(env.iter().copied())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("starting portico");
        let host = Self {
            child,
            base_url: format!("http://127.0.0.1:{port}"),
            log,
        };
        // A fresh machine compiles the built-in plugins first, while other tests load both cores.
        let client = reqwest::Client::new();
        for _ in 0..3600 {
            if client
                .get(format!("{}/healthz", host.base_url))
                .send()
                .await
                .is_ok()
            {
                return host;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("the host did not start: {}", host.log_text());
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The most memory the process has held resident, in bytes (`VmHWM`).
    pub fn peak_resident_bytes(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap();
        let kib: u64 = status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .expect("VmHWM in /proc/PID/status");
        kib * 1024
    }

    /// Stops the process and returns its log.
    pub fn stop(mut self) -> String {
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.log_text()
    }
}

impl Drop for HostProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
