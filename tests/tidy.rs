//! The architecture's invariants that a machine can check, checked: which crate may depend on
//! which (from `cargo metadata`), where `unsafe` may be allowed (from the manifests and
//! sources), and the broker's shape (files of a readable size, each primitive written once).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

/// Each workspace package's name → the names of its normal (not dev, not build) dependencies, on
/// every target, as its manifest declares them; and the packages. Only the workspace is read
/// (`--no-deps`): every path to a crate such as `keyring` runs through one of ours.
fn normal_dependencies() -> (BTreeMap<String, BTreeSet<String>>, Vec<Value>) {
    let out = Command::new(env!("CARGO"))
        .args(["metadata", "--format-version", "1", "--no-deps", "--offline", "--manifest-path"])
        .arg(root().join("Cargo.toml"))
        .output()
        .expect("cargo metadata runs");
    assert!(out.status.success(), "cargo metadata: {}", String::from_utf8_lossy(&out.stderr));
    let metadata: Value = serde_json::from_slice(&out.stdout).unwrap();
    let packages = metadata["packages"].as_array().unwrap().clone();
    let graph = packages
        .iter()
        .map(|p| {
            let deps = p["dependencies"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|d| d["kind"].is_null())
                .map(|d| d["name"].as_str().unwrap().to_string())
                .collect();
            (p["name"].as_str().unwrap().to_string(), deps)
        })
        .collect();
    (graph, packages)
}

fn closure(graph: &BTreeMap<String, BTreeSet<String>>, from: &str) -> BTreeSet<String> {
    let mut seen = BTreeSet::new();
    let mut todo = vec![from.to_string()];
    while let Some(name) = todo.pop() {
        for dep in graph.get(&name).into_iter().flatten() {
            if seen.insert(dep.clone()) {
                todo.push(dep.clone());
            }
        }
    }
    seen
}

#[test]
fn the_bridge_links_nothing_that_holds_or_reaches_a_secret() {
    let (graph, _) = normal_dependencies();
    let linked = closure(&graph, "keybridge-mcp");
    for banned in ["keybridge-vault", "keybridge-broker", "keybridge-quantconnect", "keybridge-host", "keyring"] {
        assert!(!linked.contains(banned), "keybridge-mcp links {banned}");
    }
}

#[test]
fn only_the_vault_touches_the_keychain_library() {
    let (graph, packages) = normal_dependencies();
    for package in &packages {
        let name = package["name"].as_str().unwrap();
        if graph[name].contains("keyring") {
            assert_eq!(name, "keybridge-vault", "{name} depends on keyring directly");
        }
    }
}

#[test]
fn the_app_and_the_cli_reach_the_broker_only_through_the_host() {
    let (graph, _) = normal_dependencies();
    for edge in ["keybridge-app", "keybridge-cli"] {
        for direct in ["keybridge-broker", "keybridge-vault", "keybridge-quantconnect"] {
            assert!(!graph[edge].contains(direct), "{edge} depends on {direct} itself, not through keybridge-host");
        }
    }
    for direct in ["keybridge-endpoint", "keybridge-catalog"] {
        assert!(!graph["keybridge-app"].contains(direct), "keybridge-app depends on {direct} itself");
    }
    // The desktop app never links team mode's service (its database, HTTP and identity code).
    assert!(!closure(&graph, "keybridge-app").contains("keybridge-team"), "keybridge-app links team mode");
}

#[test]
fn no_shipped_program_links_the_test_kit() {
    let (graph, _) = normal_dependencies();
    for shipped in ["keybridge-app", "keybridge-cli", "keybridge-mcp"] {
        assert!(!closure(&graph, shipped).contains("keybridge-testkit"), "{shipped} links the test kit");
    }
}

#[test]
fn only_the_endpoint_may_allow_unsafe_code() {
    let (_, packages) = normal_dependencies();
    let workspace = std::fs::read_to_string(root().join("Cargo.toml")).unwrap();
    assert!(workspace.contains("unsafe_code = \"forbid\""), "the workspace forbids unsafe code");
    for package in &packages {
        let name = package["name"].as_str().unwrap();
        let manifest = PathBuf::from(package["manifest_path"].as_str().unwrap());
        let text = std::fs::read_to_string(&manifest).unwrap();
        if name == "keybridge-endpoint" {
            assert!(text.contains("unsafe_code = \"deny\""), "the endpoint denies unsafe code but for its OS modules");
        } else {
            assert!(text.contains("[lints]\nworkspace = true"), "{name} does not take the workspace's lints");
        }
        let dir = manifest.parent().unwrap();
        // Spelled in two parts so that this file does not match itself.
        let allow = ["allow(", "unsafe_code)"].concat();
        for file in rust_files(dir) {
            let source = std::fs::read_to_string(&file).unwrap();
            if source.contains(&allow) {
                assert_eq!(name, "keybridge-endpoint", "{} allows unsafe code", file.display());
            }
        }
    }
}

/// A file a person can hold in their head: past this, split it along what it does.
const MOST_LINES_PER_BROKER_FILE: usize = 600;

#[test]
fn no_broker_source_file_is_longer_than_a_reader_can_follow() {
    let too_long: Vec<String> = rust_files(&root().join("crates/broker/src"))
        .into_iter()
        .filter_map(|file| {
            let lines = std::fs::read_to_string(&file).unwrap().lines().count();
            (lines > MOST_LINES_PER_BROKER_FILE).then(|| format!("{} ({lines} lines)", file.display()))
        })
        .collect();
    assert!(too_long.is_empty(), "over {MOST_LINES_PER_BROKER_FILE} lines: {too_long:?}");
}

#[test]
fn the_broker_writes_each_primitive_once() {
    // Spelled in parts so that this file does not match itself.
    let primitives = [
        (["fn now", "()"].concat(), "the clock"),
        (["fn lock", "<"].concat(), "the lock that outlives a panic"),
        ([".unwrap_or_else(|e| e.", "into_inner())"].concat(), "the lock that outlives a panic"),
        (["getrandom::fill(&mut ", "bytes)"].concat(), "a key made for the keychain"),
        (["0x", "36"].concat(), "HMAC (the hmac crate computes it)"),
        (["fold(0u8", ""].concat(), "a constant-time comparison (the subtle crate makes it)"),
        (["(60..=", "MAX_TTL_SECS)"].concat(), "the token-lifetime bounds"),
    ];
    for (pattern, what) in primitives {
        let at: Vec<String> = rust_files(&root().join("crates/broker/src"))
            .into_iter()
            .filter(|file| std::fs::read_to_string(file).unwrap().contains(&pattern))
            .map(|file| file.strip_prefix(root()).unwrap().display().to_string())
            .collect();
        assert!(at.len() <= 1, "{what} (`{pattern}`) is written in {} places: {at:?}", at.len());
    }
}

#[test]
fn only_the_host_chooses_the_brokers_seams() {
    // The desktop's implementation of each seam (secrets, state, audit, tokens); spelled in
    // parts so that this file does not match itself.
    let implementations = [
        ["Keyring", "Store"].concat(),
        ["Sealed", "Files"].concat(),
        ["Audit", "Log::open"].concat(),
        ["Token", "Issuer"].concat(),
    ];
    // Where they may be named: where they are written (the broker, the vault), where they are
    // chosen (the host, and team mode's host), and the benchmark and fuzz targets that measure
    // or attack one alone.
    // Team mode's host (`crates/team`) chooses the team's seams the same way.
    let allowed =
        ["crates/broker/src", "crates/vault", "crates/host/src", "crates/team/src", "crates/bench/src", "fuzz"];
    let mut named = Vec::new();
    for file in rust_files(&root()) {
        let relative = file.strip_prefix(root()).unwrap().display().to_string();
        if allowed.iter().any(|dir| relative.starts_with(dir)) {
            continue;
        }
        let source = std::fs::read_to_string(&file).unwrap();
        named.extend(
            implementations.iter().filter(|name| source.contains(name.as_str())).map(|n| format!("{relative}: {n}")),
        );
    }
    assert!(named.is_empty(), "named outside the host: {named:?}");
    let broker_core: Vec<String> = rust_files(&root().join("crates/broker/src/broker"))
        .into_iter()
        .filter(|file| {
            let source = std::fs::read_to_string(file).unwrap();
            implementations.iter().any(|name| source.contains(name.as_str()))
        })
        .map(|file| file.display().to_string())
        .collect();
    assert!(broker_core.is_empty(), "the broker's core names an implementation, not its seam: {broker_core:?}");
}

fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else { return found };
    for entry in entries.flatten() {
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().to_string();
        if path.is_dir() && !matches!(name.as_str(), "target" | "node_modules" | "gen") {
            found.extend(rust_files(&path));
        } else if name.ends_with(".rs") {
            found.push(path);
        }
    }
    found
}
