//! Programs of the workspace as binaries, for tests that run them as separate processes:
//! the crate's examples ([`example_binary`]) and the `pgtls` tool of cli/
//! ([`tool_binary`]).
//!
//! `cargo test --examples` compiles examples as test harnesses, and `cargo test --test x`
//! builds neither the examples nor another package's binary, so `target/<profile>/...` may
//! be missing or stale. Both functions run `cargo build` into the test's own target
//! directory (a no-op when fresh) and return the path. Std only; include it with
//! `#[path = "support/example_bin.rs"] mod example_bin;`.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

/// `target/<profile>/examples/<name>`, built (or found up to date) by cargo.
///
/// # Panics
/// When the build fails or leaves no binary: a test that needs the program must not pass
/// without it.
pub fn example_binary(name: &str) -> PathBuf {
    let profile_dir = profile_dir();
    build(&["--example", name], &profile_dir);
    let bin = profile_dir.join("examples").join(name);
    assert!(bin.is_file(), "no {name} binary at {}", bin.display());
    bin
}

/// `target/<profile>/pgtls`, the tool (`cargo build -p pgtls-cli --bin pgtls`), built or
/// found up to date by cargo.
///
/// # Panics
/// As [`example_binary`].
pub fn tool_binary() -> PathBuf {
    let profile_dir = profile_dir();
    build(&["-p", "pgtls-cli", "--bin", "pgtls"], &profile_dir);
    let bin = profile_dir.join(format!("pgtls{}", std::env::consts::EXE_SUFFIX));
    assert!(bin.is_file(), "no pgtls binary at {}", bin.display());
    bin
}

/// `target/<profile>`, from the running test executable (`target/<profile>/deps/<test>`).
fn profile_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("current_exe");
    exe.parent()
        .and_then(Path::parent)
        .expect("test executable under target/<profile>/deps")
        .to_path_buf()
}

/// `cargo build --quiet <what>` into the target directory the test runs from, with the
/// test's profile.
fn build(what: &[&str], profile_dir: &Path) {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.args(["build", "--quiet"])
        .args(what)
        .current_dir(env!("CARGO_MANIFEST_DIR"));
    if let Some(target) = profile_dir.parent() {
        cmd.env("CARGO_TARGET_DIR", target);
    }
    if profile_dir.file_name().is_some_and(|n| n == "release") {
        cmd.arg("--release");
    }
    let status = cmd.status().expect("running cargo build");
    assert!(status.success(), "cargo build {} failed", what.join(" "));
}
