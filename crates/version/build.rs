//! Stamps development builds with the commit they were built from. A release build (the
//! packages) is the bare workspace version and does not look at git at all.

use std::path::Path;
use std::process::Command;

fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git").args(args).current_dir(env!("CARGO_MANIFEST_DIR")).output().ok()?;
    out.status.success().then(|| String::from_utf8_lossy(&out.stdout).trim().to_string()).filter(|s| !s.is_empty())
}

fn main() {
    let version = std::env::var("CARGO_PKG_VERSION").expect("cargo sets CARGO_PKG_VERSION");
    println!("cargo:rerun-if-changed=build.rs");
    if std::env::var("PROFILE").as_deref() == Ok("release") {
        println!("cargo:rustc-env=KEYBRIDGE_VERSION={version}");
        return;
    }
    let commit = git(&["rev-parse", "--short=12", "HEAD"]);
    // A new commit or another branch restamps the build.
    if let Some(git_dir) = git(&["rev-parse", "--absolute-git-dir"]) {
        let git_dir = Path::new(&git_dir);
        println!("cargo:rerun-if-changed={}", git_dir.join("HEAD").display());
        if let Some(reference) = git(&["symbolic-ref", "-q", "HEAD"]) {
            println!("cargo:rerun-if-changed={}", git_dir.join(reference).display());
        }
        println!("cargo:rerun-if-changed={}", git_dir.join("packed-refs").display());
    }
    match commit {
        Some(commit) => println!("cargo:rustc-env=KEYBRIDGE_VERSION={version}-dev+{commit}"),
        None => println!("cargo:rustc-env=KEYBRIDGE_VERSION={version}-dev"),
    }
}
