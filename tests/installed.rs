//! Keybridge as a trader installs it: the `.deb` that `scripts/dev.sh package` built, installed
//! with apt, used through the installed files only (`/usr/bin/…`, nothing from `target/`): the
//! app in a real WebView with the real keychain, the first-run guide, Connect Claude Desktop,
//! and the official Python MCP SDK started exactly as the written config entry says. Then the
//! package is removed (the data and the keychain stay) and installed again (they work again).
//!
//! Built only with `--features installed`: `scripts/dev.sh test` installs the package, runs
//! this, and removes the package.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use keybridge_e2e::World;
use keybridge_e2e::flows::{self, OTHER_SERVERS};
use keybridge_e2e::webdriver::{Session, Xvfb};
use keybridge_vault::testing::in_keyring_session;

const APP: &str = "/usr/bin/keybridge-app";
const BRIDGE: &str = "/usr/bin/keybridge-mcp";
const CLI: &str = "/usr/bin/keybridge";

fn deb() -> PathBuf {
    PathBuf::from(std::env::var_os("KEYBRIDGE_DEB").expect("KEYBRIDGE_DEB names the package under test"))
}

fn run(program: &str, args: &[&str]) -> String {
    let out = Command::new(program).args(args).output().unwrap_or_else(|e| panic!("{program}: {e}"));
    assert!(out.status.success(), "{program} {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn apt(args: &[&str]) {
    let out = Command::new("apt-get")
        .args(args)
        .env("DEBIAN_FRONTEND", "noninteractive")
        .output()
        .expect("apt-get (the installed test runs as root, as CI does)");
    assert!(out.status.success(), "apt-get {args:?}: {}", String::from_utf8_lossy(&out.stderr));
}

/// Every file under `dir` with its contents.
fn snapshot(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut files = BTreeMap::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            files.extend(snapshot(&path));
        } else if !path.ends_with("broker.lock") {
            files.insert(path.clone(), std::fs::read(&path).unwrap_or_default());
        }
    }
    files
}

fn screenshots() -> PathBuf {
    match std::env::var_os("KEYBRIDGE_SCREENSHOTS") {
        Some(dir) => PathBuf::from(dir),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/gui-screenshots/installed"),
    }
}

fn start_app(world: &World, config: &Path, x: &Xvfb) -> Session {
    let mut env = world.env_vars();
    env.push(("KEYBRIDGE_CLAUDE_DESKTOP_CONFIG", config.display().to_string()));
    Session::start(Path::new(APP), &[], &env, &x.display, &screenshots())
}

#[test]
fn the_installed_package_works_end_to_end_and_survives_a_reinstall() {
    if !in_keyring_session("the_installed_package_works_end_to_end_and_survives_a_reinstall") {
        return;
    }
    // What the package put where a trader's desktop looks for it.
    let listed = run("dpkg", &["-L", "keybridge"]);
    for path in [
        APP,
        BRIDGE,
        CLI,
        "/usr/share/applications/Keybridge.desktop",
        "/usr/share/metainfo/dev.keybridge.desktop.metainfo.xml",
        "/usr/share/doc/keybridge/copyright",
        "/usr/share/icons/hicolor/16x16/apps/keybridge-app.png",
        "/usr/share/icons/hicolor/48x48/apps/keybridge-app.png",
        "/usr/share/icons/hicolor/256x256/apps/keybridge-app.png",
        "/usr/share/icons/hicolor/512x512/apps/keybridge-app.png",
    ] {
        assert!(listed.lines().any(|l| l == path), "the package lacks {path}:\n{listed}");
        assert!(Path::new(path).exists(), "{path} is not installed");
    }
    // One version: the package's, the CLI's and the bridge's.
    let version = run("dpkg-query", &["-W", "-f=${Version}", "keybridge"]);
    assert_eq!(run(CLI, &["--version"]).trim(), format!("keybridge {version}"));
    assert_eq!(run(BRIDGE, &["--version"]).trim(), format!("keybridge-mcp {version}"));

    let world = World::new();
    let config = flows::claude_config(&world, OTHER_SERVERS);
    let x = Xvfb::start();
    let ui = start_app(&world, &config, &x);
    let client = flows::onboarding_until_restart(&ui, &world, &config, "research");
    let (command, args) = flows::claude_entry(&config);
    assert_eq!(command, Path::new(BRIDGE), "Connect Claude Desktop writes the installed bridge");
    assert_eq!(args, ["--client", client.as_str()]);

    // A real MCP client, started exactly as the entry says; the window asks about it.
    let claude = world.python_client_as(&command, &args, None, flows::read_account(), &[]);
    flows::approve_first_connection(&ui);
    let out = World::finish(claude);
    assert_eq!(out["server"], "keybridge", "{out}");
    assert!(out["tools"].as_array().unwrap().iter().any(|t| t == "read_account"), "{out}");
    assert_eq!(out["steps"][0]["isError"], false, "{out}");
    drop(ui);

    // Removing the package leaves the trader's data and keychain as they were.
    let data = world.home.path().join("data");
    let before = snapshot(&data);
    assert!(before.keys().any(|p| p.ends_with("clients.json")), "{:?}", before.keys());
    apt(&["remove", "-y", "-qq", "keybridge"]);
    for path in [APP, BRIDGE, CLI] {
        assert!(!Path::new(path).exists(), "{path} is still there after apt-get remove");
    }
    assert!(snapshot(&data) == before, "apt-get remove changed the data folder");

    // Installed again, Keybridge works with them: the account's token is still in the
    // keychain and the approved program connects without a question.
    apt(&["install", "-y", "-qq", "--no-install-recommends", &deb().display().to_string()]);
    let ui = start_app(&world, &config, &x);
    ui.wait_for_text("#status-pill", "Active");
    let again = World::finish(world.python_client_as(&command, &args, None, flows::read_account(), &[]));
    assert_eq!(again["steps"][0]["isError"], false, "after a reinstall: {again}");
    ui.click("#nav-accounts");
    ui.wait_for_text("#account-list .card.account", "main");
    drop(ui);
}
