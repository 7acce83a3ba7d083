//! Test support: each test gets its own application on a fresh database (a temporary SQLite
//! file, or a PostgreSQL database cloned from a migrated template), listening on a loopback port,
//! with its own DNS server and a platform token.
//!
//! - [`app`]: [`TestApp`], which starts the application and speaks HTTP to it;
//! - [`database`]: the database of one test, and the PostgreSQL template it is cloned from;
//! - [`dns`]: the DNS server that answers the application's TXT lookups;
//! - [`guests`]: guest components built from `tests/plugins`;
//! - [`smtp`]: an SMTP server that keeps the messages it accepts;
//! - [`process`]: `portico serve` in a process of its own, for its logs and memory.

mod app;
mod database;
mod dns;
mod guests;
pub mod process;
pub mod smtp;

use std::future::Future;

use portico::config::Config;

pub use app::{Reply, TEST_SECRET_KEY, TestApp, link_path};
pub use database::Backend;
pub use guests::guest_wasm;

/// Set (as CI does) to turn a missing peer into a failure instead of a skip.
const REQUIRE_PEERS: &str = "PORTICO_REQUIRE_PEERS";

fn peers_required() -> bool {
    std::env::var(REQUIRE_PEERS).is_ok_and(|v| !v.is_empty() && v != "0")
}

/// Runs each named `async fn(app: TestApp)` of the calling module twice, as two tests:
/// `name::sqlite` and `name::postgres`, each with a fresh application on that backend.
/// `configured(setup): name, …` first lets the module's `fn setup(&mut Config)` change the
/// applications' configuration.
///
/// ```ignore
/// async fn tickets_are_numbered(app: TestApp) { /* … */ }
///
/// on_both_backends!(tickets_are_numbered);
/// ```
#[macro_export]
macro_rules! on_both_backends {
    (configured($configure:ident): $($name:ident),+ $(,)?) => {
        $crate::on_both_backends!(@ super::$configure; $($name),+);
    };
    (@ $configure:expr; $($name:ident),+) => {
        $(
            mod $name {
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn sqlite() {
                    $crate::support::run(
                        $crate::support::Backend::Sqlite,
                        $configure,
                        super::$name,
                    ).await
                }

                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn postgres() {
                    $crate::support::run(
                        $crate::support::Backend::Postgres,
                        $configure,
                        super::$name,
                    ).await
                }
            }
        )+
    };
    ($($name:ident),+ $(,)?) => {
        $crate::on_both_backends!(@ |_| {}; $($name),+);
    };
}

/// Like [`on_both_backends!`], for tests that start a peer first and then their application
/// with it in the configuration: each `async fn(backend: Backend)` runs once per backend.
#[macro_export]
macro_rules! for_both_backends {
    ($($name:ident),+ $(,)?) => {
        $(
            mod $name {
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn sqlite() {
                    super::$name($crate::support::Backend::Sqlite).await
                }

                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn postgres() {
                    super::$name($crate::support::Backend::Postgres).await
                }
            }
        )+
    };
}

/// Runs `test` on a fresh application on `backend` whose configuration `configure` changed;
/// does nothing when the backend is missing here and not required (see [`TestApp::spawn`]).
pub async fn run<F>(
    backend: Backend,
    configure: impl FnOnce(&mut Config),
    test: impl FnOnce(TestApp) -> F,
) where
    F: Future<Output = ()>,
{
    if let Some(app) = TestApp::spawn_with(backend, configure).await {
        test(app).await
    }
}
