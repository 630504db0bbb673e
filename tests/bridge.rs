//! keybridge-mcp end to end, driven by the official Python MCP SDK: real binaries, the real
//! socket, the real keychain (a throwaway gnome-keyring in a private D-Bus session).

use std::time::{Duration, Instant};

use keybridge_e2e::{World, bin};
use keybridge_vault::testing::in_keyring_session;
use serde_json::{Value, json};

fn project_id(result: &Value) -> i64 {
    let text = result["steps"][0]["text"].as_str().unwrap();
    let reply: Value = serde_json::from_str(text).unwrap_or_else(|_| panic!("not JSON: {text}"));
    reply["projects"][0]["projectId"].as_i64().unwrap()
}

fn step(result: &Value, i: usize) -> &Value {
    &result["steps"][i]
}

fn wait_for_request(world: &World, endpoint: &str, count: usize) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while world.sim.request_count(endpoint) < count {
        assert!(Instant::now() < deadline, "{endpoint} was never called");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn each_preset_lists_exactly_its_tools_and_reads_work_in_every_category() {
    if !in_keyring_session("each_preset_lists_exactly_its_tools_and_reads_work_in_every_category") {
        return;
    }
    let world = World::start(60);
    for preset in ["read-only", "research", "trader", "admin"] {
        let (client, key) = world.add_client(preset, true);
        let out = world.run_python(&client, key.as_deref(), json!([]));
        let tools: Vec<&str> = out["tools"].as_array().unwrap().iter().map(|t| t.as_str().unwrap()).collect();
        assert_eq!(out["server"], "keybridge");
        assert!(tools.contains(&"keybridge_status"), "the status tool is always there");
        let scoped = keybridge_catalog_count(preset);
        assert_eq!(tools.len() - 1, scoped, "{preset}: {tools:?}");
        eprintln!("{preset}: {} tools, tools/list {} bytes", tools.len(), out["tools_bytes"]);
        if preset == "admin" {
            assert!(out["tools_bytes"].as_u64().unwrap() < 60_000, "all 64 tools fit in 60 KB");
        }
        if preset == "read-only" {
            assert!(!tools.iter().any(|t| t.starts_with("delete_") || t.starts_with("create_")), "{tools:?}");
        }
    }

    // A read of every category, through an admin client.
    let (client, key) = world.add_client("admin", true);
    let created = world.run_python(
        &client,
        key.as_deref(),
        json!([["call", "create_project", {"name": "E2E", "language": "Py"}]]),
    );
    let pid = project_id(&created);
    let org = world.account.organization_id.clone();
    let reads = json!([
        ["call", "read_account", {}],
        ["call", "list_projects", {}],
        ["call", "read_project_collaborators", {"projectId": pid}],
        ["call", "read_file", {"projectId": pid}],
        ["call", "create_compile", {"projectId": pid}],
        ["call", "list_backtests", {"projectId": pid}],
        ["call", "list_optimizations", {"projectId": pid}],
        ["call", "list_live_algorithms", {}],
        ["call", "list_object_store_files", {"organizationId": org}],
        ["call", "read_lean_versions", {}],
        ["call", "search_quantconnect", {"language": "Py", "criteria": [{"input": "universe", "type": "Docs", "count": 1}]}],
        ["call", "keybridge_status", {}],
    ]);
    let out = world.run_python(&client, key.as_deref(), reads.clone());
    for (i, s) in out["steps"].as_array().unwrap().iter().enumerate() {
        assert_eq!(s["isError"], false, "{}: {}", reads[i][1], s["text"]);
    }
    assert!(step(&out, 11)["text"].as_str().unwrap().contains("\"account\":\"main\""));
}

/// Tools of the catalog a preset's scopes allow, as the broker lists them.
fn keybridge_catalog_count(preset: &str) -> usize {
    let out = std::process::Command::new(keybridge_e2e::bin("keybridge")).args(["catalog", "--json"]).output().unwrap();
    let tools: Vec<Value> = serde_json::from_slice(&out.stdout).unwrap();
    let verbs: &[&str] = match preset {
        "read-only" => &["read"],
        _ => &[],
    };
    let research =
        ["qc:projects:write", "qc:files:write", "qc:compile:execute", "qc:backtests:write", "qc:optimizations:write"];
    let trader = ["qc:live:write", "qc:live:execute", "qc:objects:write", "qc:ai:execute"];
    tools
        .iter()
        .filter(|t| {
            let scope = t["scope"].as_str().unwrap();
            let read = scope.ends_with(":read");
            match preset {
                "read-only" => verbs.iter().any(|v| scope.ends_with(&format!(":{v}"))),
                "research" => read || research.contains(&scope),
                "trader" => read || research.contains(&scope) || trader.contains(&scope),
                _ => true,
            }
        })
        .count()
}

#[test]
fn a_live_call_waits_for_approval_granted_denied_and_timed_out() {
    if !in_keyring_session("a_live_call_waits_for_approval_granted_denied_and_timed_out") {
        return;
    }
    let world = World::start(3);
    let (client, key) = world.add_client("trader", true);
    let created = world.run_python(
        &client,
        key.as_deref(),
        json!([["call", "create_project", {"name": "Live", "language": "Py"}]]),
    );
    let pid = project_id(&created);
    let stop = json!(["call", "stop_live_algorithm", {"projectId": pid}]);
    let child = world.python_client(&client, key.as_deref(), json!([stop, stop, stop]));
    let granted = world.answer_next("approve");
    assert_eq!(granted["tool"], "stop_live_algorithm");
    assert!(granted["summary"].as_str().unwrap().contains("Live"), "the summary names the project: {granted}");
    let denied = world.answer_next("deny");
    assert_ne!(granted["id"], denied["id"]);
    // The third is left unanswered and times out after 3 s.
    let out = World::finish(child);
    let first = step(&out, 0);
    assert!(first["progress"].to_string().contains("Waiting for your approval in Keybridge"), "{first}");
    assert!(step(&out, 1)["text"].as_str().unwrap().starts_with("Denied"), "{}", step(&out, 1));
    assert_eq!(step(&out, 1)["isError"], true);
    let third = step(&out, 2)["text"].as_str().unwrap();
    assert!(third.contains("nobody approved"), "{third}");
    assert_eq!(world.sim.request_count("/live/update/stop"), 1, "only the approved call reached QuantConnect");
}

#[test]
fn revocation_mid_session_stops_the_next_call() {
    if !in_keyring_session("revocation_mid_session_stops_the_next_call") {
        return;
    }
    let world = World::start(60);
    let (client, key) = world.add_client("research", true);
    let child = world.python_client(
        &client,
        key.as_deref(),
        json!([["call", "read_account", {}], ["sleep", 2.0], ["call", "read_account", {}]]),
    );
    wait_for_request(&world, "/account/read", 1);
    world.cli(&["client", "revoke", &client], None);
    let out = World::finish(child);
    assert_eq!(step(&out, 0)["isError"], false);
    assert_eq!(step(&out, 1)["isError"], true);
    assert!(step(&out, 1)["text"].as_str().unwrap().contains("revoked"), "{}", step(&out, 1));
    assert_eq!(world.sim.request_count("/account/read"), 1);
}

#[test]
fn a_broker_restart_mid_session_goes_unnoticed() {
    if !in_keyring_session("a_broker_restart_mid_session_goes_unnoticed") {
        return;
    }
    let mut world = World::start(60);
    let (client, key) = world.add_client("research", true);
    let child = world.python_client(
        &client,
        key.as_deref(),
        json!([["call", "read_account", {}], ["sleep", 2.5], ["call", "read_account", {}]]),
    );
    wait_for_request(&world, "/account/read", 1);
    world.stop_broker();
    world.start_broker(60);
    let out = World::finish(child);
    assert_eq!(step(&out, 0)["isError"], false, "{}", step(&out, 0));
    assert_eq!(step(&out, 1)["isError"], false, "{}", step(&out, 1));
    // When the kill lands after QuantConnect answered the first call but before the broker
    // did, the bridge repeats that read-only call on its new connection: 3 requests, by design.
    let reads = world.sim.request_count("/account/read");
    assert!((2..=3).contains(&reads), "{reads} reads for two calls");
}

#[test]
fn host_bound_pairing_asks_once_per_host_program() {
    if !in_keyring_session("host_bound_pairing_asks_once_per_host_program") {
        return;
    }
    let world = World::start(60);
    let (client, _) = world.add_client("research", false);
    let call = json!([["call", "read_account", {}]]);

    // First session from this host program: asks.
    let child = world.python_client(&client, None, call.clone());
    let asked = world.answer_next("approve");
    assert_eq!(asked["kind"], "pairing");
    let out = World::finish(child);
    assert_eq!(step(&out, 0)["isError"], false, "{}", step(&out, 0));

    // Again from the same host: no question.
    let out = world.run_python(&client, None, call.clone());
    assert_eq!(step(&out, 0)["isError"], false);
    assert!(world.cli(&["approvals", "list"], None).as_array().unwrap().is_empty());

    // The same bridge, started by another script under the same interpreter: asks again; denied.
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("mcp_client.py");
    let other = world.home.path().join("other_agent.py");
    std::fs::copy(&script, &other).unwrap();
    let mut command = std::process::Command::new("python3");
    world.env(&mut command);
    command
        .arg(&other)
        .arg(keybridge_e2e::bin("keybridge-mcp"))
        .args(["--client", &client])
        .env("KB_STEPS", call.to_string())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let child = command.spawn().unwrap();
    let asked = world.answer_next("deny");
    assert!(asked["summary"].as_str().unwrap().contains("other_agent.py"), "the new host is named: {asked}");
    let out = World::finish(child);
    assert_eq!(out["tools"], json!(["keybridge_status"]), "a refused bridge lists only its status tool");
    assert!(step(&out, 0)["text"].as_str().unwrap().contains("denied the connection"), "{}", step(&out, 0));
}

#[test]
fn a_missing_scope_is_explained_and_nothing_is_sent() {
    if !in_keyring_session("a_missing_scope_is_explained_and_nothing_is_sent") {
        return;
    }
    let world = World::start(60);
    let (client, key) = world.add_client("read-only", true);
    let out = world.run_python(
        &client,
        key.as_deref(),
        json!([["call", "delete_project", {"projectId": 1}], ["call", "no_such_tool", {}]]),
    );
    let text = step(&out, 0)["text"].as_str().unwrap();
    assert!(text.contains("qc:projects:delete") && text.contains("grant"), "{text}");
    assert!(step(&out, 1)["text"].as_str().unwrap().contains("Unknown tool"));
    assert_eq!(world.sim.request_count("/projects/delete"), 0);
}

#[test]
fn a_scope_change_announces_a_new_tool_list() {
    if !in_keyring_session("a_scope_change_announces_a_new_tool_list") {
        return;
    }
    let world = World::start(60);
    let (client, key) = world.add_client("research", true);
    let child =
        world.python_client(&client, key.as_deref(), json!([["call", "read_account", {}], ["sleep", 2.0], ["list"]]));
    wait_for_request(&world, "/account/read", 1);
    world.cli(&["client", "update", &client, "--preset", "read-only"], None);
    let out = World::finish(child);
    assert!(out["list_changed"].as_u64().unwrap() >= 1, "notifications/tools/list_changed was sent: {out}");
    let before = out["tools"].as_array().unwrap().len();
    let after = step(&out, 1)["tools"].as_array().unwrap().len();
    assert!(after < before, "the new list is the read-only one: {before} → {after}");
    assert!(!step(&out, 1)["tools"].to_string().contains("create_project"));
}

#[test]
fn cancelling_a_call_withdraws_its_approval_and_stdin_eof_exits_cleanly() {
    if !in_keyring_session("cancelling_a_call_withdraws_its_approval_and_stdin_eof_exits_cleanly") {
        return;
    }
    let world = World::start(60);
    let (client, key) = world.add_client("trader", true);
    let mut raw = keybridge_e2e::RawMcp::spawn(&world, &client, key.as_deref(), None);
    raw.send(json!({"jsonrpc": "2.0", "id": 7, "method": "tools/call",
        "params": {"name": "liquidate_live_algorithm", "arguments": {"projectId": 1}, "_meta": {"progressToken": "p7"}}}));
    let deadline = Instant::now() + Duration::from_secs(20);
    while world.cli(&["approvals", "list"], None).as_array().unwrap().is_empty() {
        assert!(Instant::now() < deadline, "no approval appeared");
        std::thread::sleep(Duration::from_millis(50));
    }
    raw.send(json!({"jsonrpc": "2.0", "method": "notifications/cancelled", "params": {"requestId": 7, "reason": "user stopped"}}));
    let deadline = Instant::now() + Duration::from_secs(10);
    while !world.cli(&["approvals", "list"], None).as_array().unwrap().is_empty() {
        assert!(Instant::now() < deadline, "the approval was not withdrawn after the cancel");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(world.sim.request_count("/live/update/liquidate"), 0);

    // Still serving after the cancel; then stdin closes and the bridge leaves cleanly.
    raw.send(
        json!({"jsonrpc": "2.0", "id": 8, "method": "tools/call", "params": {"name": "read_account", "arguments": {}}}),
    );
    assert_eq!(raw.reply(8)["result"]["isError"], false);
    raw.close_stdin();
    let status = keybridge_e2e::exit_within(&mut raw.child, Duration::from_secs(5))
        .expect("the bridge did not exit on stdin EOF");
    assert!(status.success(), "{status}");
}

#[test]
fn without_a_broker_the_bridge_says_how_to_start_it() {
    if !in_keyring_session("without_a_broker_the_bridge_says_how_to_start_it") {
        return;
    }
    let world = World::start(60);
    let nowhere = world.home.path().join("nowhere.sock");
    let mut raw = keybridge_e2e::RawMcp::spawn(&world, "any-client", None, Some(&nowhere));
    raw.send(json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list"}));
    let tools = raw.reply(1);
    assert_eq!(tools["result"]["tools"].as_array().unwrap().len(), 1, "only keybridge_status: {tools}");
    raw.send(json!({"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {"name": "keybridge_status", "arguments": {}}}));
    let status = raw.reply(2);
    let text = status["result"]["content"][0]["text"].as_str().unwrap();
    assert_eq!(status["result"]["isError"], true);
    assert!(text.contains("Keybridge is not running") && text.contains("keybridge serve"), "{text}");
}

#[test]
fn the_bridge_never_sees_or_prints_the_quantconnect_token() {
    if !in_keyring_session("the_bridge_never_sees_or_prints_the_quantconnect_token") {
        return;
    }
    let world = World::start(60);
    let (client, key) = world.add_client("admin", true);
    let child = world.python_client(
        &client,
        key.as_deref(),
        json!([["call", "read_account", {}], ["call", "keybridge_status", {}], ["call", "read_backtest", {"projectId": 1, "backtestId": "x"}]]),
    );
    let out = child.wait_with_output().unwrap();
    let printed = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "{printed}");
    assert!(printed.contains("organizationId"), "the calls ran: {printed}");
    assert!(!printed.contains(&world.account.api_token), "the QuantConnect token reached the MCP side");
}
#[test]
fn a_bridge_says_what_to_run_when_it_cannot_start_the_app() {
    let world = World::new();
    let client = "nobody".to_string();
    let no_display = [
        ("DISPLAY", String::new()),
        ("WAYLAND_DISPLAY", String::new()),
        ("KEYBRIDGE_APP", bin("keybridge-app").display().to_string()),
    ];
    let missing = [("KEYBRIDGE_APP", world.home.path().join("nowhere/keybridge-app").display().to_string())];
    for (env, why) in [(&no_display[..], "no display"), (&missing[..], "not installed")] {
        let out = World::finish(world.python_client_as(
            &bin("keybridge-mcp"),
            &["--client".to_string(), client.clone()],
            None,
            json!([["call", "keybridge_status", {}]]),
            env,
        ));
        let text = out["steps"][0]["text"].as_str().unwrap();
        assert!(text.contains("Keybridge is not running") && text.contains(why), "{text}");
        assert!(text.contains("keybridge serve") && text.contains("Keybridge app"), "says what to run: {text}");
    }
}

#[test]
fn a_copy_of_the_shipped_bridge_pairs_and_an_altered_one_is_refused() {
    if !in_keyring_session("a_copy_of_the_shipped_bridge_pairs_and_an_altered_one_is_refused") {
        return;
    }
    let world = World::start(60);
    let (client, _) = world.add_client("read-only", false);
    let args = ["--client".to_string(), client.clone()];
    // Where Claude Desktop unpacks the MCP Bundle: the same program, in another folder.
    let unpacked = world.home.path().join("Claude Extensions/keybridge/server");
    std::fs::create_dir_all(&unpacked).unwrap();
    let copy = unpacked.join("keybridge-mcp");
    std::fs::copy(bin("keybridge-mcp"), &copy).unwrap();
    let child = world.python_client_as(&copy, &args, None, json!([["call", "read_account", {}]]), &[]);
    assert_eq!(world.answer_next("approve")["kind"], "pairing");
    let out = World::finish(child);
    assert_eq!(step(&out, 0)["isError"], false, "the bundled copy pairs: {}", step(&out, 0));

    // One byte more, and it is another program: refused before anyone is asked.
    let altered = unpacked.join("keybridge-mcp-altered");
    let mut bytes = std::fs::read(bin("keybridge-mcp")).unwrap();
    bytes.push(0);
    std::fs::write(&altered, bytes).unwrap();
    std::fs::set_permissions(&altered, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let out = World::finish(world.python_client_as(&altered, &args, None, json!([["call", "read_account", {}]]), &[]));
    let text = step(&out, 0)["text"].as_str().unwrap();
    assert!(text.contains("is not the keybridge-mcp bridge that ships with Keybridge"), "{text}");
    assert!(world.cli(&["approvals", "list"], None).as_array().unwrap().is_empty(), "nobody was asked");
}

/// Every folder and file under `dir`, with its permission bits.
fn modes(dir: &std::path::Path, out: &mut Vec<(std::path::PathBuf, u32)>) {
    use std::os::unix::fs::PermissionsExt;
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        let meta = std::fs::symlink_metadata(&path).unwrap();
        out.push((path.clone(), meta.permissions().mode() & 0o777));
        if meta.is_dir() {
            modes(&path, out);
        }
    }
}

#[test]
fn the_data_folder_is_the_users_alone_whatever_the_umask() {
    if !in_keyring_session("the_data_folder_is_the_users_alone_whatever_the_umask") {
        return;
    }
    // The usual umask leaves new folders 0755 and files 0644: readable by every user.
    let mut world = World::new();
    let mut serve = std::process::Command::new("sh");
    world.env(&mut serve);
    let mut child = serve
        .args(["-c", "umask 022 && exec \"$0\" serve"])
        .arg(bin("keybridge"))
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufRead::read_line(&mut std::io::BufReader::new(child.stdout.take().unwrap()), &mut line).unwrap();
    assert!(line.starts_with("ready "), "{line}");
    world.add_account();
    let (client, key) = world.add_client("read-only", true);
    let out = world.run_python(&client, key.as_deref(), json!([["call", "read_account", {}]]));
    assert_eq!(step(&out, 0)["isError"], false, "{out}");
    let _ = child.kill();
    let _ = child.wait();
    world.stop_broker();

    let data = world.home.path().join("data");
    let mut found = vec![(
        data.clone(),
        std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&data).unwrap().permissions()) & 0o777,
    )];
    modes(&data, &mut found);
    assert!(found.iter().any(|(p, _)| p.to_string_lossy().contains("audit.")), "{found:?}");
    for (path, mode) in found {
        let want = if path.is_dir() { 0o700 } else { 0o600 };
        assert_eq!(mode, want, "{} is {mode:o}, not {want:o}", path.display());
    }
}

#[test]
fn the_bridge_logs_no_argument_even_at_trace() {
    if !in_keyring_session("the_bridge_logs_no_argument_even_at_trace") {
        return;
    }
    let world = World::start(60);
    let (client, key) = world.add_client("admin", true);
    let sentinel = "brokerage-password-5e171e1";
    let deploy = json!(["call", "create_live_algorithm", {
        "versionId": "-1", "projectId": 1, "compileId": "c-1", "nodeId": "LN-1",
        "brokerage": {"id": "InteractiveBrokersBrokerage", "ib-user-name": "trader", "ib-password": sentinel,
                      "ib-account": "DU1", "ib-trading-mode": "paper", "ib-weekly-restart-utc-time": "22:00:00"},
        "dataProviders": {"QuantConnectBrokerage": {"id": "QuantConnectBrokerage"}}}]);
    let child = world.python_client_as(
        &bin("keybridge-mcp"),
        &["--client".to_string(), client],
        key.as_deref(),
        json!([deploy, ["call", "read_account", {}]]),
        &[("KEYBRIDGE_LOG", "trace".to_string())],
    );
    let mut child = child;
    // Read what it logs while it runs: a full pipe would stall it.
    let mut pipe = child.stderr.take().unwrap();
    let logged = std::thread::spawn(move || {
        let mut text = String::new();
        std::io::Read::read_to_string(&mut pipe, &mut text).unwrap();
        text
    });
    world.answer_next("deny");
    let status = child.wait().unwrap();
    let stderr = logged.join().unwrap();
    assert!(status.success(), "{stderr}");
    assert!(stderr.contains("keybridge-mcp started"), "logging is on:\n{stderr}");
    assert!(!stderr.contains(sentinel), "the bridge logged an argument:\n{stderr}");
    assert!(!stderr.contains("organizationId"), "the bridge logged a result:\n{stderr}");
}

#[test]
fn a_bridge_with_a_wrong_key_is_refused_and_counted_in_the_status() {
    if !in_keyring_session("a_bridge_with_a_wrong_key_is_refused_and_counted_in_the_status") {
        return;
    }
    let world = World::start(60);
    let (client, _key) = world.add_client("research", true);
    let out = world.run_python(&client, Some("not-the-key"), json!([["call", "read_account", {}]]));
    assert!(out.to_string().contains("wrong client key"), "the bridge says why: {out}");
    let status = world.cli(&["status", "--json"], None);
    let refused = status["auth_failures"].as_array().unwrap();
    let counted = refused.iter().find(|f| f["client"] == client.as_str() && f["reason"] == "bad_key");
    assert!(counted.is_some_and(|f| f["count"].as_u64() >= Some(1)), "{status}");
    assert_eq!(world.sim.request_count("/account/read"), 0);
}
