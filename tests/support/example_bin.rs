//! The crate's example programs as binaries, for tests that run them as separate processes.
//!
//! `cargo test --examples` compiles examples as test harnesses, and `cargo test --test x`
//! does not build them at all, so `target/<profile>/examples/<name>` may be missing or
//! stale. [`example_binary`] runs `cargo build --example <name>` into the test's own target
//! directory (a no-op when fresh) and returns the path. Std only; include it with
//! `#[path = "support/example_bin.rs"] mod example_bin;`.

use std::path::{Path, PathBuf};
use std::process::Command;

/// `target/<profile>/examples/<name>`, built (or found up to date) by cargo.
///
/// # Panics
/// When the build fails or leaves no binary: a test that needs the program must not pass
/// without it.
pub fn example_binary(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("current_exe");
    // target/<profile>/deps/<test>-<hash> → target/<profile>/examples/<name>
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("test executable under target/<profile>/deps")
        .to_path_buf();
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.args(["build", "--quiet", "--example", name])
        .current_dir(env!("CARGO_MANIFEST_DIR"));
    if let Some(target) = profile_dir.parent() {
        cmd.env("CARGO_TARGET_DIR", target);
    }
    if profile_dir.file_name().is_some_and(|n| n == "release") {
        cmd.arg("--release");
    }
    let status = cmd.status().expect("running cargo build --example");
    assert!(status.success(), "cargo build --example {name} failed");
    let bin = profile_dir.join("examples").join(name);
    assert!(bin.is_file(), "no {name} binary at {}", bin.display());
    bin
}
