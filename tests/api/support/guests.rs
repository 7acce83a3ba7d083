//! Guest components from `tests/plugins`, built for wasm32-wasip2 on first use.

use std::path::PathBuf;
use std::sync::Mutex;

/// The compiled guest component `package` from `tests/plugins` (the workspace is built on first
/// use, for wasm32-wasip2, into `target/guests`: guests of every kind in one build).
pub fn guest_wasm(package: &str) -> Vec<u8> {
    static BUILT: Mutex<bool> = Mutex::new(false);
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let target = root.join("target/guests");
    let mut built = BUILT.lock().unwrap_or_else(|e| e.into_inner());
    if !*built {
        let status =
            std::process::Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
                .args([
                    "build",
                    "--quiet",
                    "--release",
                    "--target",
                    "wasm32-wasip2",
                    "--workspace",
                    "--target-dir",
                ])
                .arg(&target)
                .current_dir(root.join("tests/plugins"))
                .env_remove("RUSTFLAGS")
                .env_remove("CARGO_TARGET_DIR")
                .status()
                .expect("running cargo to build the guest plugins");
        assert!(
            status.success(),
            "building the guest plugins failed; is the target installed (rustup target add wasm32-wasip2)?"
        );
        *built = true;
    }
    let file = target.join(format!(
        "wasm32-wasip2/release/{}.wasm",
        package.replace('-', "_")
    ));
    std::fs::read(&file).unwrap_or_else(|e| panic!("reading {}: {e}", file.display()))
}
