//! The desktop app end to end, as a trader uses it: a real WebView (WebKitGTK) under a private
//! X server, driven over WebDriver; the real keychain; the simulator as QuantConnect; the real
//! `keybridge-mcp` as the MCP client's server. Screenshots of every view go to
//! `target/gui-screenshots/` (or `KEYBRIDGE_SCREENSHOTS`).

use std::path::{Path, PathBuf};

use keybridge_e2e::flows::{self, OTHER_SERVERS, claude_config};
use keybridge_e2e::webdriver::{Notifications, Session, Xvfb};
use keybridge_e2e::{RawMcp, World, bin, exit_within};
use keybridge_vault::testing::in_keyring_session;
use serde_json::{Value, json};

fn screenshots() -> PathBuf {
    match std::env::var_os("KEYBRIDGE_SCREENSHOTS") {
        Some(dir) => PathBuf::from(dir),
        None => bin("keybridge-app").parent().unwrap().parent().unwrap().join("gui-screenshots"),
    }
}

/// The app on its own display, with this world's data folder, socket, keychain and simulator,
/// and Claude Desktop's config at `claude_config`.
fn launch(world: &World, claude_config: &Path) -> (Xvfb, Session) {
    let x = Xvfb::start();
    let session = launch_on(world, claude_config, &x);
    (x, session)
}

fn launch_on(world: &World, claude_config: &Path, x: &Xvfb) -> Session {
    let mut env = world.env_vars();
    env.push(("KEYBRIDGE_CLAUDE_DESKTOP_CONFIG", claude_config.display().to_string()));
    env.push(("KEYBRIDGE_APPROVAL_TIMEOUT", "120".into()));
    Session::start(&bin("keybridge-app"), &[], &env, &x.display, &screenshots())
}

fn call(raw: &mut RawMcp, id: u64, tool: &str, arguments: Value) {
    raw.send(
        json!({"jsonrpc": "2.0", "id": id, "method": "tools/call", "params": {"name": tool, "arguments": arguments}}),
    );
}

fn result_text(reply: &Value) -> (String, bool) {
    let result = &reply["result"];
    (result["content"][0]["text"].as_str().unwrap_or_default().to_string(), result["isError"] == true)
}

#[test]
fn a_trader_sets_up_keybridge_and_approves_calls_in_the_window() {
    if !in_keyring_session("a_trader_sets_up_keybridge_and_approves_calls_in_the_window") {
        return;
    }
    let world = World::new();
    let config = claude_config(&world, OTHER_SERVERS);
    let x = Xvfb::start();
    let notifications = Notifications::start(&x);
    let ui = launch_on(&world, &config, &x);

    // A first start opens on the guide; this trader skips it and sets up in the views.
    ui.wait_for("#onboarding");
    ui.click("#onboarding-skip");
    ui.click("#nav-accounts");
    ui.wait_for("#view-accounts #account-form");
    // The broker answers: the CLI can reach it over the socket.
    ui.wait_for_text("#status-pill", "Active");
    ui.type_into("#account-user", &world.account.user_id);
    ui.type_into("#account-token", &world.account.api_token);
    ui.type_into("#account-org", &world.account.organization_id);
    ui.click("#account-add");
    ui.wait_for_text("#account-status .notice.ok", "works and is saved");
    ui.wait_for_text("#account-list .card.account", "main");
    assert_eq!(
        ui.script("return document.querySelector('#account-token').value", json!([])),
        "",
        "the token is not kept in the form"
    );
    let page = ui.script("return document.documentElement.outerHTML", json!([]));
    assert!(!page.as_str().unwrap().contains(&world.account.api_token), "the window never shows the token");
    ui.screenshot("accounts");

    // A client from the preset picker.
    ui.click("#nav-clients");
    ui.wait_for("#client-form");
    ui.type_into("#client-name", "Claude Desktop");
    ui.click(r#"#client-form input[name="preset"][value="admin"]"#);
    ui.click("#client-add");
    ui.wait_for_text("#client-status .notice.ok", "created");
    ui.wait_for_text("#client-list .card.client", "Claude Desktop");
    let client = ui.script("return document.querySelector('#client-list .card.client').dataset.client", json!([]));
    let client = client.as_str().unwrap().to_string();

    // Test connection: the app runs the bridge as Claude Desktop will, and shows its tools.
    let tested = flows::test_connection(&ui, &client);
    assert!(tested.contains("read_account") && tested.contains("delete_project"), "{tested}");
    ui.screenshot("test-connection");

    // Connect Claude Desktop: preview, then write; the other servers survive.
    ui.click("#client-list .connect-claude");
    ui.wait_for_text("#connect-preview", "filesystem");
    assert!(ui.text("#connect-preview").contains("github"));
    ui.screenshot("connect-claude-desktop");
    assert_eq!(std::fs::read_to_string(&config).unwrap(), OTHER_SERVERS, "the preview writes nothing");
    ui.click("#connect-apply");
    ui.wait_for_text("#connect-result", "Claude Desktop is connected");
    let merged: Value = serde_json::from_str(&std::fs::read_to_string(&config).unwrap()).unwrap();
    assert_eq!(merged["mcpServers"]["filesystem"]["args"][2], "/home/trader/research");
    assert_eq!(merged["mcpServers"]["github"]["command"], "docker");
    assert_eq!(merged["globalShortcut"], "Ctrl+Space");
    assert_eq!(merged["mcpServers"]["quantconnect"]["args"], json!(["--client", client]));
    let bridge = merged["mcpServers"]["quantconnect"]["command"].as_str().unwrap();
    assert_eq!(Path::new(bridge), std::fs::canonicalize(bin("keybridge-mcp")).unwrap());
    assert!(merged["mcpServers"]["quantconnect"].get("env").is_none(), "no secret in the config");
    ui.screenshot("clients");

    // The bridge's first session from this host waits for the human: the window asks.
    let mut raw = RawMcp::spawn(&world, &client, None, None);
    call(&mut raw, 1, "create_project", json!({"name": "Momentum", "language": "Py"}));
    ui.wait_for_text(".approval-card.pairing", "wants to connect");
    // The desktop is told too, for a trader who is looking elsewhere.
    notifications.wait_for("Claude Desktop wants to connect");
    ui.screenshot("approvals-pairing");
    ui.click(".approval-card.pairing button.approve:not([disabled])");
    let (created, failed) = result_text(&raw.reply(1));
    assert!(!failed, "{created}");
    let project = serde_json::from_str::<Value>(&created).unwrap()["projects"][0]["projectId"].clone();

    // A dangerous call waits for approval in the window, with what it will do.
    call(&mut raw, 2, "delete_project", json!({"projectId": project}));
    let card = ui.wait_for_text(".approval-card.tool-call", "delete_project");
    let shown = ui.text_of(&card);
    assert!(shown.contains("Momentum"), "the summary names the project: {shown}");
    assert!(shown.contains("denied automatically in"), "{shown}");
    let (_, body) = notifications.wait_for("Claude Desktop asks to run delete_project");
    assert!(body.contains("Momentum"), "the notification says what will happen: {body}");
    assert_eq!(world.sim.request_count("/projects/delete"), 0, "nothing is sent before the human answers");
    ui.screenshot("approvals");
    ui.click(".approval-card.tool-call button.approve:not([disabled])");
    let (deleted, failed) = result_text(&raw.reply(2));
    assert!(!failed, "{deleted}");
    assert_eq!(world.sim.request_count("/projects/delete"), 1);

    // The call arrives in Activity, live.
    ui.click("#nav-activity");
    ui.wait_for(r#"tr.record-row[data-tool="delete_project"][data-decision="approved"]"#);
    ui.wait_for_text("#chain-status", "chain intact");
    ui.click(r#"tr.record-row[data-kind="tool_call"][data-tool="delete_project"] td:first-child"#);
    ui.wait_for(r#"#record-details dd[data-field="args_digest"]"#);
    ui.click("#record-raw-toggle");
    ui.wait_for_text("#record-raw", "args_digest");
    ui.screenshot("activity");

    // Pause all access: the next call is refused without reaching QuantConnect.
    ui.click("#pause-toggle");
    ui.wait_for_text("#status-pill", "paused");
    let reads = world.sim.request_count("/projects/read");
    call(&mut raw, 3, "read_project", json!({"projectId": project}));
    let (refused, failed) = result_text(&raw.reply(3));
    assert!(failed && refused.contains("paused"), "{refused}");
    assert_eq!(world.sim.request_count("/projects/read"), reads);
    ui.wait_for(r#"tr.record-row[data-tool="read_project"][data-decision="refused"]"#);
    ui.screenshot("paused");
    ui.click("#pause-toggle");
    ui.wait_for_text("#status-pill", "Active");

    ui.click("#nav-settings");
    ui.wait_for_text("#view-settings", "Policy per scope");
    ui.screenshot("settings");
    raw.close_stdin();
    drop(ui);
    for file in files_under(world.home.path()) {
        let bytes = std::fs::read(&file).unwrap_or_default();
        let found = bytes.windows(world.account.api_token.len()).any(|w| w == world.account.api_token.as_bytes());
        assert!(!found, "the QuantConnect token is in {}", file.display());
    }
}

fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(files_under(&path));
        } else {
            out.push(path);
        }
    }
    out
}

#[test]
fn a_malformed_claude_config_is_refused_and_left_as_it_was() {
    if !in_keyring_session("a_malformed_claude_config_is_refused_and_left_as_it_was") {
        return;
    }
    let world = World::new();
    let broken = "{\n  \"mcpServers\": {\n    \"filesystem\": {\"command\": \"npx\",}\n";
    let config = claude_config(&world, broken);
    let (_x, ui) = launch(&world, &config);
    ui.wait_for("#account-form");
    // The broker answers: the CLI can reach it over the socket.
    ui.wait_for_text("#status-pill", "Active");
    // The app hosts the same broker as `keybridge serve`: the CLI administers it over its socket.
    world.add_account();
    world.add_client("research", false);
    ui.click("#nav-clients");
    ui.click("#client-list .connect-claude");
    let error = ui.text("#connect-error");
    assert!(error.contains("not valid JSON") && error.contains("left untouched"), "{error}");
    assert_eq!(std::fs::read_to_string(&config).unwrap(), broken, "the file is left as it was");
    ui.screenshot("connect-refused");
}

#[test]
fn the_app_says_so_when_a_headless_broker_already_runs() {
    if !in_keyring_session("the_app_says_so_when_a_headless_broker_already_runs") {
        return;
    }
    let world = World::start(60);
    let config = world.home.path().join("Claude/claude_desktop_config.json");
    let (_x, ui) = launch(&world, &config);
    let banner = ui.text(".banner .notice.error");
    assert!(banner.contains("already running") && banner.contains("keybridge serve"), "{banner}");
    assert_eq!(ui.text("#status-pill"), "Not running");
    // The headless broker is undisturbed.
    assert_eq!(world.cli(&["status"], None)["paused"], false);
}

#[test]
fn a_second_launch_brings_the_first_forward_and_exits() {
    if !in_keyring_session("a_second_launch_brings_the_first_forward_and_exits") {
        return;
    }
    let world = World::new();
    let config = world.home.path().join("Claude/claude_desktop_config.json");
    let (x, ui) = launch(&world, &config);
    ui.wait_for("#account-form");
    // The broker answers: the CLI can reach it over the socket.
    ui.wait_for_text("#status-pill", "Active");
    let mut second = std::process::Command::new(bin("keybridge-app"));
    world.env(&mut second);
    let mut second = second
        .env("DISPLAY", &x.display)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let status =
        exit_within(&mut second, std::time::Duration::from_secs(20)).expect("the second launch exits by itself");
    assert!(status.success(), "{status}");
    // The first one still runs the broker, undisturbed.
    assert_eq!(ui.text("#status-pill"), "Active");
    assert_eq!(world.cli(&["status"], None)["paused"], false);
}

/// The tray icon's mean colour, read off the X server: the panel sits at the bottom right.
fn tray_colour(display: &str) -> (i64, i64, i64) {
    let out = std::process::Command::new("convert")
        .args(["x:root", "-crop", "14x14+1255+837", "-scale", "1x1!", "-depth", "8", "txt:-"])
        .env("DISPLAY", display)
        .output()
        .expect("imagemagick's convert (scripts/dev.sh deps)");
    let text = String::from_utf8_lossy(&out.stdout);
    let start = text.rfind('(').unwrap_or_else(|| panic!("no pixel in {text:?}"));
    let numbers: Vec<i64> =
        text[start + 1..].split([',', ')']).take(3).map(|n| n.trim().parse::<f64>().unwrap() as i64).collect();
    (numbers[0], numbers[1], numbers[2])
}

fn wait_for_tray(display: &str, what: &str, accept: impl Fn((i64, i64, i64)) -> bool) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let colour = tray_colour(display);
        if accept(colour) {
            return;
        }
        assert!(std::time::Instant::now() < deadline, "the tray never showed {what}: {colour:?}");
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
}

fn xdotool(display: &str, args: &[&str]) {
    let status = std::process::Command::new("xdotool").args(args).env("DISPLAY", display).status().unwrap();
    assert!(status.success(), "xdotool {args:?}");
}

#[test]
fn the_tray_shows_the_state_and_its_menu_pauses_all_access() {
    if !in_keyring_session("the_tray_shows_the_state_and_its_menu_pauses_all_access") {
        return;
    }
    let world = World::new();
    let x = Xvfb::start();
    // An XEmbed tray host, as a desktop panel would be.
    let mut panel = std::process::Command::new("trayer")
        .args(["--edge", "bottom", "--align", "right", "--widthtype", "pixel", "--width", "120"])
        .args(["--heighttype", "pixel", "--height", "32"])
        .env("DISPLAY", &x.display)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("trayer (scripts/dev.sh deps)");
    let config = world.home.path().join("Claude/claude_desktop_config.json");
    let ui = launch_on(&world, &config, &x);
    ui.wait_for("#account-form");
    // The broker answers: the CLI can reach it over the socket.
    ui.wait_for_text("#status-pill", "Active");
    let teal = |(r, g, _b): (i64, i64, i64)| g - r > 40;
    let grey = |(r, g, b): (i64, i64, i64)| (r - g).abs() < 12 && (b - g).abs() < 20 && r < 200;
    let amber = |(r, g, b): (i64, i64, i64)| r - g > 40 && g > b;
    wait_for_tray(&x.display, "active (teal)", teal);

    // Open the menu on the icon; its second item is "Pause all access".
    xdotool(&x.display, &["mousemove", "1262", "844", "click", "1"]);
    std::thread::sleep(std::time::Duration::from_millis(700));
    xdotool(&x.display, &["key", "Down", "Down", "Return"]);
    ui.wait_for_text("#status-pill", "paused");
    assert_eq!(world.cli(&["status"], None)["paused"], true);
    wait_for_tray(&x.display, "paused (grey)", grey);

    // Resumed, a question waiting turns it amber.
    ui.click("#pause-toggle");
    ui.wait_for_text("#status-pill", "Active");
    wait_for_tray(&x.display, "active again", teal);
    world.add_account();
    let (client, _) = world.add_client("research", false);
    let mut raw = RawMcp::spawn(&world, &client, None, None);
    call(&mut raw, 1, "list_projects", json!({}));
    ui.wait_for(".approval-card.pairing");
    wait_for_tray(&x.display, "a question waiting (amber)", amber);
    ui.click(".approval-card.pairing button.deny:not([disabled])");
    let (denied, failed) = result_text(&raw.reply(1));
    assert!(failed, "{denied}");
    wait_for_tray(&x.display, "nothing waiting", teal);
    raw.close_stdin();
    drop(ui);
    let _ = panel.kill();
    let _ = panel.wait();
}

/// The processes running `exe` with this world's data folder.
fn processes_of(world: &World, exe: &Path) -> Vec<u32> {
    let exe = std::fs::canonicalize(exe).unwrap();
    let home = format!("KEYBRIDGE_HOME={}", world.home.path().join("data").display());
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else { continue };
        if std::fs::read_link(entry.path().join("exe")).ok().as_deref() != Some(exe.as_path()) {
            continue;
        }
        let environ = std::fs::read(entry.path().join("environ")).unwrap_or_default();
        if environ.split(|b| *b == 0).any(|var| var == home.as_bytes()) {
            found.push(pid);
        }
    }
    found
}

#[test]
fn a_bridge_that_finds_no_broker_starts_the_app_in_the_tray() {
    if !in_keyring_session("a_bridge_that_finds_no_broker_starts_the_app_in_the_tray") {
        return;
    }
    // A client paired earlier; then Keybridge is not running (after a reboot, say).
    let mut world = World::new();
    world.start_broker(60);
    world.add_account();
    let (client, key) = world.add_client("read-only", true);
    world.stop_broker();

    // Two MCP clients start at once, as Claude Desktop does at login; each bridge finds no
    // broker and starts the app installed beside it.
    let x = Xvfb::start();
    let app = bin("keybridge-app");
    let env = [("DISPLAY", x.display.clone()), ("KEYBRIDGE_APP", app.display().to_string())];
    let args = ["--client".to_string(), client.clone()];
    let steps = json!([["call", "read_account", {}]]);
    let first = world.python_client_as(&bin("keybridge-mcp"), &args, key.as_deref(), steps.clone(), &env);
    let second = world.python_client_as(&bin("keybridge-mcp"), &args, key.as_deref(), steps, &env);
    for out in [World::finish(first), World::finish(second)] {
        let call = &out["steps"][0];
        assert_eq!(call["isError"], false, "the first call works: {out}");
        assert!(call["text"].as_str().unwrap().contains("organization"), "{out}");
    }
    let apps = processes_of(&world, &app);
    assert_eq!(apps.len(), 1, "two bridges, one app: {apps:?}");
    // In the tray only: no window opened on the trader.
    let windows = std::process::Command::new("xdotool")
        .args(["search", "--onlyvisible", "--name", "^Keybridge"])
        .env("DISPLAY", &x.display)
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&windows.stdout).trim().is_empty(), "the app opened a window");
    // The app is the broker now: the CLI reaches it.
    assert_eq!(world.cli(&["status"], None)["paused"], false);
    for pid in apps {
        let _ = std::process::Command::new("kill").arg(pid.to_string()).status();
    }
}

#[test]
fn a_first_run_guides_the_trader_to_claudes_first_connection() {
    if !in_keyring_session("a_first_run_guides_the_trader_to_claudes_first_connection") {
        return;
    }
    let world = World::new();
    let config = claude_config(&world, OTHER_SERVERS);
    let (_x, ui) = launch(&world, &config);
    let client = flows::onboarding_until_restart(&ui, &world, &config, "research");
    let (command, args) = flows::claude_entry(&config);
    assert_eq!(command, std::fs::canonicalize(bin("keybridge-mcp")).unwrap());

    // Before Claude: Test connection proves the path from the guide itself.
    ui.click("#onboarding-test");
    let tested = ui.wait_for_text("#onboarding .connection-test.ok", "tools");
    let tested = ui.text_of(&tested);
    assert!(tested.contains("list_projects") && !tested.contains("delete_project"), "the research preset: {tested}");

    // "Claude" starts the bridge as its config says; the guide shows the question and ends.
    let claude = world.python_client_as(&command, &args, None, flows::read_account(), &[]);
    flows::approve_first_connection(&ui);
    let out = World::finish(claude);
    assert_eq!(out["steps"][0]["isError"], false, "{out}");
    ui.click("#onboarding-finish");
    ui.wait_for("#view-activity");
    let shown = world.cli(&["client", "show", &client], None);
    assert_eq!(shown["preset"], "research", "{shown}");
}

/// The axe-core checks that count: WCAG 2.x A and AA.
const AXE_TAGS: &str = "['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa']";

/// Run axe-core in the page as it is now; the serious and critical violations, as
/// "rule (impact): where" lines.
fn axe_serious(ui: &Session) -> Vec<String> {
    let axe =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../ui/node_modules/axe-core/axe.min.js"))
            .expect("axe-core is installed with the window's packages (scripts/dev.sh ui)");
    // The window's content security policy allows no `eval`, so axe's source is the script
    // itself. It runs asynchronously; the result lands on `window` and is polled for.
    ui.script(
        &format!(
            "if (!window.axe) {{ {axe}\n }}
             window.__axe = null;
             axe.run(document, {{ runOnly: {{ type: 'tag', values: {AXE_TAGS} }} }})
               .then(r => {{ window.__axe = r.violations.filter(v => v.impact === 'serious' || v.impact === 'critical')
                 .map(v => v.id + ' (' + v.impact + '): ' + v.nodes.map(n => n.target.join(' ')).slice(0, 3).join(', ')); }})
               .catch(e => {{ window.__axe = ['axe failed: ' + e]; }});
             return true;"
        ),
        json!([]),
    );
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let result = ui.script("return window.__axe", json!([]));
        if let Some(found) = result.as_array() {
            return found.iter().map(|v| v.as_str().unwrap_or_default().to_string()).collect();
        }
        assert!(std::time::Instant::now() < deadline, "axe did not finish within 30 s");
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
}

/// A world with account `main` and a client with a key (no pairing question), the broker
/// stopped so that the app starts its own on the same data.
fn world_with_client(preset: &str) -> (World, String, String) {
    let mut world = World::start(120);
    let (client, key) = world.add_client(preset, true);
    world.stop_broker();
    (world, client, key.unwrap())
}

/// Every view passes axe with no serious or critical violation, with a request waiting, in the
/// theme the desktop asks for (a screenshot of each, `<view>-<theme>.png`); returns the
/// violations per view for the report.
fn every_view_passes_axe(ui: &Session, theme: &str) -> Vec<(String, Vec<String>)> {
    // First, that axe sees what it should: an unlabelled field is a critical violation.
    ui.script(
        "const probe = document.createElement('input'); probe.id = 'axe-probe'; document.body.append(probe);",
        json!([]),
    );
    let probed = axe_serious(ui);
    assert!(probed.iter().any(|v| v.starts_with("label (critical)") && v.contains("#axe-probe")), "{probed:?}");
    ui.script("document.getElementById('axe-probe').remove()", json!([]));
    let mut found = Vec::new();
    for view in ["approvals", "activity", "clients", "accounts", "settings"] {
        ui.click(&format!("#nav-{view}"));
        ui.wait_for(&format!("#view-{view}"));
        std::thread::sleep(std::time::Duration::from_millis(300));
        found.push((view.to_string(), axe_serious(ui)));
        ui.screenshot(&format!("{view}-{theme}"));
    }
    found
}

#[test]
fn a_request_leans_towards_no_and_every_view_passes_axe_in_light_and_dark() {
    if !in_keyring_session("a_request_leans_towards_no_and_every_view_passes_axe_in_light_and_dark") {
        return;
    }
    let (world, client, key) = world_with_client("trader");
    let config = claude_config(&world, OTHER_SERVERS);
    let mut raw = RawMcp::spawn(&world, &client, Some(&key), None);
    let mut report = Vec::new();
    for (theme, dark) in [("light", false), ("dark", true)] {
        let x = Xvfb::start();
        let mut env = world.env_vars();
        env.push(("KEYBRIDGE_CLAUDE_DESKTOP_CONFIG", config.display().to_string()));
        env.push(("KEYBRIDGE_APPROVAL_TIMEOUT", "120".into()));
        env.push(("GTK_THEME", if dark { "Adwaita:dark" } else { "Adwaita" }.into()));
        let ui = Session::start(&bin("keybridge-app"), &[], &env, &x.display, &screenshots());
        ui.wait_for_text("#status-pill", "Active");
        let prefers_dark = ui.script("return matchMedia('(prefers-color-scheme: dark)').matches", json!([]));
        assert_eq!(prefers_dark, dark, "the WebView follows the desktop's {theme} theme");

        if !dark {
            // Some activity for the feed and the Today card: two reads, one refused call.
            for (id, tool, arguments) in [
                (1, "read_account", json!({})),
                (2, "list_projects", json!({})),
                (3, "delete_object", json!({"organizationId": world.account.organization_id, "key": "a"})),
            ] {
                call(&mut raw, id, tool, arguments);
                raw.reply(id);
            }
        }
        // A live deployment waits for the human.
        let id = if dark { 20 } else { 10 };
        call(
            &mut raw,
            id,
            "create_live_algorithm",
            json!({
                "versionId": "-1", "projectId": 1, "compileId": "c-1", "nodeId": "LN-1",
                "brokerage": {"id": "InteractiveBrokersBrokerage", "ib-trading-mode": "live", "ib-password": "hunter2"}
            }),
        );
        let card = ui.wait_for(".approval-card.tool-call");
        let shown = ui.text_of(&card);
        assert!(shown.contains("LIVE MONEY"), "{shown}");
        assert!(!shown.contains("hunter2"), "a brokerage password is never shown");
        assert_eq!(ui.count(".approval-card.tool-call .allow-for"), 0, "no standing allowance for live trading");
        // Deny has the focus: a stray Enter answers nothing.
        let focused = ui.script("return document.activeElement.classList.contains('deny')", json!([]));
        assert_eq!(focused, true, "Deny is focused when a request appears");
        // Past the arming delay, Enter pressed on the card itself still answers nothing.
        std::thread::sleep(std::time::Duration::from_millis(1000));
        ui.script("document.querySelector('.approval-card.tool-call').focus()", json!([]));
        ui.press_key("\u{E007}");
        std::thread::sleep(std::time::Duration::from_millis(500));
        assert_eq!(ui.count(".approval-card.tool-call"), 1, "Enter on the card approved nothing");
        ui.screenshot(&format!("approvals-live-{theme}"));

        report.push((theme, every_view_passes_axe(&ui, theme)));

        // Esc denies: the call comes back refused and never reaches QuantConnect.
        ui.click("#nav-approvals");
        ui.wait_for(".approval-card.tool-call button.deny");
        ui.script("document.querySelector('.approval-card.tool-call').focus()", json!([]));
        ui.press_key("\u{E00C}");
        let (refused, failed) = result_text(&raw.reply(id));
        assert!(failed && refused.to_lowercase().contains("denied"), "{refused}");
        assert_eq!(world.sim.request_count("/live/create"), 0, "a denied deployment never reaches QuantConnect");
        drop(ui);
    }
    raw.close_stdin();
    let failures: Vec<String> = report
        .iter()
        .flat_map(|(theme, views)| {
            views.iter().filter(|(_, v)| !v.is_empty()).map(move |(view, v)| format!("{theme} {view}: {v:?}"))
        })
        .collect();
    eprintln!("axe, serious or critical, per theme and view: {report:?}");
    assert!(failures.is_empty(), "axe found serious or critical violations: {failures:#?}");
}

/// A project deployed live (paper) straight at the simulated QuantConnect; its id.
fn deployed_project(world: &World) -> i64 {
    let project = world.qc("/projects/create", json!({"name": "Momentum", "language": "Py"}));
    let project = project["projects"][0]["projectId"].as_i64().unwrap();
    let nodes = world.qc("/projects/nodes/read", json!({"projectId": project}));
    let node = nodes["nodes"]["live"][0]["id"].clone();
    let compile = world.qc("/compile/create", json!({"projectId": project}));
    let compile = compile["compileId"].clone();
    for _ in 0..100 {
        if world.qc("/compile/read", json!({"projectId": project, "compileId": compile}))["state"] == "BuildSuccess" {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    world.qc(
        "/live/create",
        json!({"versionId": "-1", "projectId": project, "compileId": compile, "nodeId": node,
            "brokerage": {"id": "QuantConnectBrokerage"}}),
    );
    project
}

#[test]
fn a_liquidation_approval_lists_the_positions_it_will_close() {
    if !in_keyring_session("a_liquidation_approval_lists_the_positions_it_will_close") {
        return;
    }
    let (world, client, key) = world_with_client("trader");
    let project = deployed_project(&world);
    let config = claude_config(&world, OTHER_SERVERS);
    let (_x, ui) = launch(&world, &config);
    ui.wait_for_text("#status-pill", "Active");
    let mut raw = RawMcp::spawn(&world, &client, Some(&key), None);
    call(&mut raw, 1, "liquidate_live_algorithm", json!({"projectId": project}));
    let preview = ui.wait_for_text(".approval-card.tool-call section.preview", "Holdings:");
    let shown = ui.text_of(&preview);
    assert!(shown.contains("SPY: ") && shown.contains("shares at $") && shown.contains("market value $"), "{shown}");
    assert!(shown.contains("1 open order"), "{shown}");
    assert!(shown.contains("Liquidating sells or buys back every position above"), "{shown}");
    ui.screenshot("approvals-liquidation");
    ui.click(".approval-card.tool-call button.deny");
    let (refused, failed) = result_text(&raw.reply(1));
    assert!(failed && refused.to_lowercase().contains("denied"), "{refused}");
    assert_eq!(world.sim.request_count("/live/update/liquidate"), 0, "nothing was liquidated");
    raw.close_stdin();
}

#[test]
fn a_standing_allowance_is_listed_and_can_be_revoked_in_the_window() {
    if !in_keyring_session("a_standing_allowance_is_listed_and_can_be_revoked_in_the_window") {
        return;
    }
    let (world, client, key) = world_with_client("admin");
    let project = world.qc("/projects/create", json!({"name": "Scratch", "language": "Py"}));
    let project = project["projects"][0]["projectId"].as_i64().unwrap();
    let config = claude_config(&world, OTHER_SERVERS);
    let (_x, ui) = launch(&world, &config);
    ui.wait_for_text("#status-pill", "Active");
    let mut raw = RawMcp::spawn(&world, &client, Some(&key), None);
    let delete = json!({"projectId": project, "backtestId": "not-there"});
    call(&mut raw, 1, "delete_backtest", delete.clone());
    ui.wait_for(".approval-card.tool-call .allow-for");
    ui.click(".approval-card.tool-call button.allow:not([disabled])");
    raw.reply(1);
    let listed = ui.wait_for_text(r#".allowance-list li[data-tool="delete_backtest"]"#, "min left");
    assert!(ui.text_of(&listed).contains("for admin"), "{}", ui.text_of(&listed));
    ui.screenshot("approvals-allowance");
    // While it stands, the same call runs without asking.
    call(&mut raw, 2, "delete_backtest", delete.clone());
    raw.reply(2);
    assert_eq!(ui.count(".approval-card.tool-call"), 0, "allowed: no question");
    ui.click(r#".allowance-list li[data-tool="delete_backtest"] button.revoke-allowance"#);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while ui.count(".allowance-list li") > 0 {
        assert!(std::time::Instant::now() < deadline, "the revoked allowance is still listed");
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    // Revoked: the next call asks again.
    call(&mut raw, 3, "delete_backtest", delete);
    ui.wait_for(".approval-card.tool-call");
    ui.click(".approval-card.tool-call button.deny");
    let (refused, failed) = result_text(&raw.reply(3));
    assert!(failed && refused.to_lowercase().contains("denied"), "{refused}");
    raw.close_stdin();
}

#[test]
fn a_keyboard_alone_adds_an_account_creates_a_client_and_approves_a_call() {
    if !in_keyring_session("a_keyboard_alone_adds_an_account_creates_a_client_and_approves_a_call") {
        return;
    }
    const ENTER: &str = "\u{E007}";
    const DOWN: &str = "\u{E015}";
    let world = World::new();
    let config = claude_config(&world, OTHER_SERVERS);
    let (_x, ui) = launch(&world, &config);
    // From here on, no clicks: Tab to each control, type, press Enter or an arrow key.
    ui.wait_for("#onboarding");
    ui.tab_to("#onboarding-skip", 40);
    ui.press_key(ENTER);
    ui.tab_to("#nav-accounts", 40);
    ui.press_key(ENTER);
    ui.wait_for("#view-accounts #account-form");
    ui.wait_for_text("#status-pill", "Active");
    for (field, value) in [
        ("#account-user", world.account.user_id.as_str()),
        ("#account-token", world.account.api_token.as_str()),
        ("#account-org", world.account.organization_id.as_str()),
    ] {
        ui.tab_to(field, 40);
        ui.type_here(value);
    }
    ui.tab_to("#account-add", 40);
    ui.press_key(ENTER);
    ui.wait_for_text("#account-status .notice.ok", "works and is saved");

    ui.tab_to("#nav-clients", 60);
    ui.press_key(ENTER);
    ui.wait_for("#client-form");
    // The preset picker is one stop; the arrows move through it: research → trader → admin.
    ui.tab_to(r#"#client-form input[name="preset"]"#, 60);
    ui.press_key(DOWN);
    ui.press_key(DOWN);
    assert!(ui.focused(r#"#client-form input[name="preset"][value="admin"]:checked"#), "the arrows chose admin");
    ui.tab_to("#client-add", 40);
    ui.press_key(ENTER);
    ui.wait_for_text("#client-list .card.client", "Claude Desktop");
    let client = ui.script("return document.querySelector('#client-list .card.client').dataset.client", json!([]));
    let client = client.as_str().unwrap().to_string();

    // Claude's first call asks to pair: the question takes the focus, on Deny.
    let project = world.qc("/projects/create", json!({"name": "Momentum", "language": "Py"}));
    let project = project["projects"][0]["projectId"].clone();
    let mut raw = RawMcp::spawn(&world, &client, None, None);
    call(&mut raw, 1, "delete_project", json!({"projectId": project}));
    ui.wait_for(".approval-card.pairing button.approve:not([disabled])");
    assert!(ui.focused(".approval-card.pairing button.deny"), "a new request takes the focus, on Deny");
    ui.tab_to(".approval-card.pairing button.approve", 10);
    ui.press_key(ENTER);
    // Then the call itself: approved from the keyboard too.
    ui.wait_for(".approval-card.tool-call button.approve:not([disabled])");
    assert!(ui.focused(".approval-card.tool-call button.deny"), "the call's question takes the focus, on Deny");
    ui.tab_to(".approval-card.tool-call button.approve", 10);
    ui.press_key(ENTER);
    let (deleted, failed) = result_text(&raw.reply(1));
    assert!(!failed, "{deleted}");
    assert_eq!(world.sim.request_count("/projects/delete"), 1);
    raw.close_stdin();
}

#[test]
fn a_notification_answers_a_request_and_goes_once_it_is_answered() {
    if !in_keyring_session("a_notification_answers_a_request_and_goes_once_it_is_answered") {
        return;
    }
    let (world, client, key) = world_with_client("admin");
    let project = world.qc("/projects/create", json!({"name": "Momentum", "language": "Py"}));
    let project = project["projects"][0]["projectId"].clone();
    let config = claude_config(&world, OTHER_SERVERS);
    let x = Xvfb::start();
    let notifications = Notifications::start(&x);
    // The asking program (this test, which starts the bridge) has a desktop entry and an icon.
    let desktop = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(desktop.path().join("applications")).unwrap();
    let icon = desktop.path().join("trading-host.png");
    std::fs::copy(Path::new(env!("CARGO_MANIFEST_DIR")).join("../icons/32x32.png"), &icon).unwrap();
    std::fs::write(
        desktop.path().join("applications/trading-host.desktop"),
        format!(
            "[Desktop Entry]\nType=Application\nName=Trading Host\nExec={} %U\nIcon={}\n",
            std::env::current_exe().unwrap().display(),
            icon.display()
        ),
    )
    .unwrap();
    let mut env = world.env_vars();
    env.push(("KEYBRIDGE_CLAUDE_DESKTOP_CONFIG", config.display().to_string()));
    env.push(("KEYBRIDGE_APPROVAL_TIMEOUT", "120".into()));
    env.push(("XDG_DATA_HOME", desktop.path().display().to_string()));
    let ui = Session::start(&bin("keybridge-app"), &[], &env, &x.display, &screenshots());
    ui.wait_for_text("#status-pill", "Active");
    let mut raw = RawMcp::spawn(&world, &client, Some(&key), None);

    // Answered in the window: its notification is withdrawn. The card shows the asking
    // program's icon, as its desktop entry names it, beside the name.
    call(&mut raw, 1, "delete_project", json!({"projectId": project}));
    ui.wait_for(".approval-card.tool-call button.deny");
    ui.wait_for(".approval-card.tool-call header img.host-icon:not([hidden])");
    let src = ui.script("return document.querySelector('.approval-card img.host-icon').src", json!([]));
    assert!(src.as_str().unwrap().starts_with("data:image/png;base64,"), "{src}");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while notifications.displayed() == 0 {
        assert!(std::time::Instant::now() < deadline, "the request was not notified");
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    ui.click(".approval-card.tool-call button.deny");
    let (refused, failed) = result_text(&raw.reply(1));
    assert!(failed && refused.to_lowercase().contains("denied"), "{refused}");
    notifications.wait_until_none_displayed();

    // Denied from the notification itself: the call comes back refused, nothing was sent.
    call(&mut raw, 2, "delete_project", json!({"projectId": project}));
    let offered = notifications.choose("Deny");
    let labels: Vec<&str> = offered.iter().map(|a| a.split(" (").next().unwrap_or_default()).collect();
    assert_eq!(labels, ["Open Keybridge", "Deny", "Approve"], "{offered:?}");
    assert!(offered[1].contains("asks to run delete_project"), "{offered:?}");
    let (refused, failed) = result_text(&raw.reply(2));
    assert!(failed && refused.to_lowercase().contains("denied"), "{refused}");
    assert_eq!(world.sim.request_count("/projects/delete"), 0, "a denied delete never reaches QuantConnect");
    ui.click("#nav-activity");
    ui.wait_for(r#"tr.record-row[data-tool="delete_project"][data-decision="denied"]"#);

    // Approved from the notification: the call runs.
    notifications.wait_until_none_displayed();
    call(&mut raw, 3, "delete_project", json!({"projectId": project}));
    notifications.choose("Approve");
    let (deleted, failed) = result_text(&raw.reply(3));
    assert!(!failed, "{deleted}");
    assert_eq!(world.sim.request_count("/projects/delete"), 1);

    // Live trading is never approved from a notification: only Deny and Open are offered.
    notifications.wait_until_none_displayed();
    call(
        &mut raw,
        4,
        "create_live_algorithm",
        json!({"versionId": "-1", "projectId": 1, "compileId": "c-1", "nodeId": "LN-1",
               "brokerage": {"id": "QuantConnectBrokerage"}}),
    );
    let offered = notifications.choose("Deny");
    assert!(offered.iter().all(|a| !a.starts_with("Approve")), "{offered:?}");
    assert!(offered.iter().any(|a| a.starts_with("Deny")), "{offered:?}");
    let (refused, failed) = result_text(&raw.reply(4));
    assert!(failed && refused.to_lowercase().contains("denied"), "{refused}");
    assert_eq!(world.sim.request_count("/live/create"), 0);
    raw.close_stdin();
}
