//! Builds the built-in plugins in `plugins/` and the themes in `themes/` for wasm32-wasip2, so
//! that every host carries them. They go to `target/builtin-plugins`, outside the directory
//! Cargo is building into.

use std::path::PathBuf;
use std::process::Command;

/// Workspace folder, package name, and the environment variable that tells the host where its
/// component is.
const BUILT_INS: &[(&str, &str, &str)] = &[
    ("plugins", "email", "PORTICO_BUILTIN_EMAIL"),
    ("plugins", "webhook", "PORTICO_BUILTIN_WEBHOOK"),
    ("plugins", "sms", "PORTICO_BUILTIN_SMS"),
    (
        "plugins",
        "standard-slots",
        "PORTICO_BUILTIN_STANDARD_SLOTS",
    ),
    ("themes", "harbour", "PORTICO_BUILTIN_HARBOUR"),
    ("themes", "signal", "PORTICO_BUILTIN_SIGNAL"),
];

fn main() {
    let manifest_dir = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("set by cargo"));
    let root = manifest_dir
        .parent()
        .expect("the host sits in the workspace")
        .to_path_buf();
    let target = root.join("target/builtin-plugins");
    println!("cargo:rerun-if-changed={}", root.join("plugins").display());
    println!("cargo:rerun-if-changed={}", root.join("themes").display());
    println!("cargo:rerun-if-changed={}", root.join("sdk/src").display());
    println!("cargo:rerun-if-changed={}", root.join("sdk/wit").display());
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    // Each workspace in one build: plugins of every kind build together.
    for folder in ["plugins", "themes"] {
        let status = Command::new(&cargo)
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
            .current_dir(root.join(folder))
            .env_remove("RUSTFLAGS")
            .env_remove("CARGO_ENCODED_RUSTFLAGS")
            .env_remove("CARGO_TARGET_DIR")
            .env_remove("CARGO_BUILD_TARGET")
            .status()
            .expect("running cargo for the built-in plugins");
        assert!(
            status.success(),
            "building the built-in plugins in {folder}/ failed; is the target installed (rustup target add wasm32-wasip2)?"
        );
    }
    for (folder, package, variable) in BUILT_INS {
        let workspace = root.join(folder);
        let wasm = target.join(format!(
            "wasm32-wasip2/release/{}.wasm",
            package.replace('-', "_")
        ));
        println!("cargo:rustc-env={variable}={}", wasm.display());
        println!(
            "cargo:rustc-env={variable}_MANIFEST={}",
            workspace
                .join(package)
                .join("portico-plugin.toml")
                .display()
        );
    }
}
