//! keybridge-mcp as MCP clients written by others speak to it today, in both protocol eras:
//! the official Python SDKs 1.x and 2.x, the official TypeScript SDK 2.x, the MCP Inspector's
//! CLI, and Claude Desktop's habit of probing a disposable sibling with `server/discover`.

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use keybridge_e2e::{ThirdParty, World, bin, node, test_clients_dir};
use keybridge_vault::testing::in_keyring_session;
use serde_json::{Value, json};

const MODERN: &str = "2026-07-28";

fn step(result: &Value, i: usize) -> &Value {
    &result["steps"][i]
}

/// The three things every client must see: a read, its JSON as `structuredContent` too, and a
/// write refused with the missing scope named.
fn assert_reads_and_is_refused_a_write(kind: ThirdParty, out: &Value) {
    let tools = out["tools"].as_array().unwrap();
    assert!(tools.contains(&json!("read_account")) && !tools.contains(&json!("delete_project")), "{kind:?}: {out}");
    let read = step(out, 0);
    assert_eq!(read["isError"], false, "{kind:?}: {read}");
    let text: Value = serde_json::from_str(read["text"].as_str().unwrap()).unwrap();
    assert!(text["organizationId"].is_string(), "{kind:?}: {read}");
    assert_eq!(read["structured"], text, "{kind:?}: structuredContent is the QuantConnect JSON");
    let write = step(out, 1);
    assert_eq!(write["isError"], true, "{kind:?}: {write}");
    assert!(write["text"].as_str().unwrap().contains("qc:projects:delete"), "{kind:?}: {write}");
}

#[test]
fn every_sdk_client_in_either_era_lists_reads_and_is_refused_a_write() {
    if !in_keyring_session("every_sdk_client_in_either_era_lists_reads_and_is_refused_a_write") {
        return;
    }
    let world = World::start(60);
    let (client, key) = world.add_client("read-only", true);
    let steps = json!([["call", "read_account", {}], ["call", "delete_project", {"projectId": 1}]]);
    let kinds = [
        ThirdParty::PythonSdk1,
        ThirdParty::PythonSdk2Auto,
        ThirdParty::PythonSdk2Legacy,
        ThirdParty::TypeScriptAuto,
        ThirdParty::TypeScriptLegacy,
    ];
    for kind in kinds {
        let out = World::finish(world.third_party(kind, &client, key.as_deref(), steps.clone()));
        eprintln!("{kind:?} negotiated {}", out["protocol"]);
        assert_eq!(out["server"], "keybridge", "{kind:?}");
        let modern = matches!(kind, ThirdParty::PythonSdk2Auto | ThirdParty::TypeScriptAuto);
        if modern {
            assert_eq!(out["protocol"], MODERN, "{kind:?} settles on the 2026-07-28 era");
        } else {
            assert_eq!(out["protocol"], "2025-11-25", "{kind:?} keeps the handshake era");
        }
        assert_reads_and_is_refused_a_write(kind, &out);
    }
    assert_eq!(world.sim.request_count("/projects/delete"), 0);
}

/// The MCP Inspector's CLI: one method per run, as a developer checks a server by hand.
fn inspector(world: &World, client: &str, key: &str, method: &[&str]) -> (bool, Value) {
    let launcher =
        test_clients_dir().join("node_modules/@modelcontextprotocol/inspector/clients/launcher/build/index.js");
    let mut command = Command::new(node());
    world.env(&mut command);
    let out = command
        .arg(launcher)
        .arg("--cli")
        .args(["-e", &format!("KEYBRIDGE_CLIENT_KEY={key}")])
        // The Inspector passes the server only what `-e` names, and refuses empty values.
        .args(
            world
                .env_vars()
                .iter()
                .filter(|(_, v)| !v.is_empty())
                .flat_map(|(k, v)| ["-e".to_string(), format!("{k}={v}")]),
        )
        .arg(bin("keybridge-mcp"))
        .args(["--client", client])
        .args(method)
        .env("HOME", world.home.path())
        .output()
        .unwrap();
    // The answer is on stdout; a refusal, as JSON, on stderr.
    let stdout = String::from_utf8_lossy(if out.status.success() { &out.stdout } else { &out.stderr }).to_string();
    let parsed =
        serde_json::from_str(stdout.trim()).unwrap_or_else(|e| panic!("inspector printed no JSON ({e}): {stdout}"));
    (out.status.success(), parsed)
}

#[test]
fn the_mcp_inspector_cli_lists_reads_and_is_refused_a_write() {
    if !in_keyring_session("the_mcp_inspector_cli_lists_reads_and_is_refused_a_write") {
        return;
    }
    let world = World::start(60);
    let (client, key) = world.add_client("read-only", true);
    let key = key.unwrap();
    let (ok, listed) = inspector(&world, &client, &key, &["--method", "tools/list"]);
    assert!(ok, "{listed}");
    let names: Vec<&str> = listed["tools"].as_array().unwrap().iter().map(|t| t["name"].as_str().unwrap()).collect();
    assert!(names.contains(&"read_account") && !names.contains(&"delete_project"), "{names:?}");

    let (ok, read) = inspector(&world, &client, &key, &["--method", "tools/call", "--tool-name", "read_account"]);
    assert!(ok, "{read}");
    let text: Value = serde_json::from_str(read["content"][0]["text"].as_str().unwrap()).unwrap();
    assert_eq!(read["structuredContent"], text, "{read}");

    // The Inspector lists before it calls, so a tool outside the scopes is refused on its side:
    // Keybridge never lists it.
    let args = ["--method", "tools/call", "--tool-name", "delete_project", "--tool-arg", "projectId=1"];
    let (ok, refused) = inspector(&world, &client, &key, &args);
    assert!(!ok && refused["error"]["code"] == "tool_not_found", "{refused}");
    assert_eq!(world.sim.request_count("/projects/delete"), 0);
}

/// A bridge on raw stdio, spoken to as a 2026-07-28 client: no `initialize`, `_meta` on each
/// request.
struct Modern {
    child: std::process::Child,
    stdin: std::process::ChildStdin,
    lines: std::io::Lines<BufReader<std::process::ChildStdout>>,
}

fn meta() -> Value {
    json!({
        "io.modelcontextprotocol/protocolVersion": MODERN,
        "io.modelcontextprotocol/clientCapabilities": {},
        "io.modelcontextprotocol/clientInfo": {"name": "Claude Desktop (test)", "version": "1"},
    })
}

impl Modern {
    fn spawn(world: &World, client: &str) -> Modern {
        let mut command = Command::new(bin("keybridge-mcp"));
        world.env(&mut command);
        let mut child = command
            .args(["--client", client])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdin = child.stdin.take().unwrap();
        let lines = BufReader::new(child.stdout.take().unwrap()).lines();
        Modern { child, stdin, lines }
    }

    fn ask(&mut self, id: u64, method: &str, params: Value) -> Value {
        let mut params = params;
        params["_meta"] = meta();
        writeln!(self.stdin, "{}", json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params})).unwrap();
        self.stdin.flush().unwrap();
        for line in self.lines.by_ref() {
            let message: Value = serde_json::from_str(&line.unwrap()).expect("stdout carries JSON-RPC only");
            if message["id"] == id {
                return message;
            }
        }
        panic!("the bridge closed stdout before answering {method}");
    }
}

#[test]
fn claude_desktops_sibling_probe_leaves_no_trace_and_the_real_bridge_asks_once() {
    if !in_keyring_session("claude_desktops_sibling_probe_leaves_no_trace_and_the_real_bridge_asks_once") {
        return;
    }
    let world = World::start(60);
    let (client, _) = world.add_client("research", false);
    let before = world.audit().len();

    // The disposable sibling: one `server/discover`, then killed.
    let mut sibling = Modern::spawn(&world, &client);
    let discovered = sibling.ask(1, "server/discover", json!({}));
    let result = &discovered["result"];
    let versions = result["supportedVersions"].as_array().unwrap();
    assert!(versions.contains(&json!(MODERN)) && versions.contains(&json!("2025-11-25")), "{discovered}");
    assert_eq!(result["_meta"]["io.modelcontextprotocol/serverInfo"]["name"], "keybridge", "{discovered}");
    assert_eq!(result["resultType"], "complete", "{discovered}");
    std::thread::sleep(Duration::from_millis(500));
    sibling.child.kill().unwrap();
    sibling.child.wait().unwrap();
    assert!(world.cli(&["approvals", "list"], None).as_array().unwrap().is_empty(), "the probe asked the human");
    let after_probe = world.audit();
    assert_eq!(after_probe.len(), before, "the probe wrote to the audit log: {:?}", &after_probe[before..]);

    // A probe that only closes its stdin ends cleanly too.
    let mut closed = Modern::spawn(&world, &client);
    closed.ask(1, "server/discover", json!({}));
    drop(closed.stdin);
    let status = keybridge_e2e::exit_within(&mut closed.child, Duration::from_secs(10)).expect("the probe exits");
    assert!(status.success(), "{status}");

    // The real bridge, spoken to in the modern era: its first request pairs, once.
    let mut real = Modern::spawn(&world, &client);
    let asking = std::thread::spawn({
        let listing = json!({});
        move || {
            let listed = real.ask(2, "tools/list", listing);
            (real, listed)
        }
    });
    let asked = world.answer_next("approve");
    assert_eq!(asked["kind"], "pairing", "{asked}");
    let (mut real, listed) = asking.join().unwrap();
    let tools = listed["result"]["tools"].as_array().unwrap();
    assert!(tools.iter().any(|t| t["name"] == "read_account"), "{listed}");
    let called = real.ask(3, "tools/call", json!({"name": "read_account", "arguments": {}}));
    assert_eq!(called["result"]["isError"], false, "{called}");
    assert_eq!(called["result"]["resultType"], "complete", "{called}");
    assert!(called["result"]["structuredContent"]["organizationId"].is_string(), "{called}");
    assert!(world.cli(&["approvals", "list"], None).as_array().unwrap().is_empty());
    real.child.kill().unwrap();
    real.child.wait().unwrap();
}

#[test]
fn two_bridges_started_at_once_for_one_host_ask_once() {
    if !in_keyring_session("two_bridges_started_at_once_for_one_host_ask_once") {
        return;
    }
    let world = World::start(60);
    let (client, _) = world.add_client("research", false);
    let call = json!([["call", "read_account", {}]]);
    let first = world.third_party(ThirdParty::PythonSdk1, &client, None, call.clone());
    let second = world.third_party(ThirdParty::PythonSdk1, &client, None, call);
    // Both wait on one question.
    let deadline = Instant::now() + Duration::from_secs(30);
    let pending = loop {
        let pending = world.cli(&["approvals", "list"], None);
        if !pending.as_array().unwrap().is_empty() {
            std::thread::sleep(Duration::from_secs(1));
            break world.cli(&["approvals", "list"], None);
        }
        assert!(Instant::now() < deadline, "no pairing question");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(pending.as_array().unwrap().len(), 1, "one question for one host: {pending}");
    world.answer_next("approve");
    for out in [World::finish(first), World::finish(second)] {
        assert_eq!(step(&out, 0)["isError"], false, "{out}");
    }
}

#[test]
fn a_scope_change_tells_a_client_that_does_not_list_again_to_restart() {
    if !in_keyring_session("a_scope_change_tells_a_client_that_does_not_list_again_to_restart") {
        return;
    }
    let world = World::start(60);
    let (client, key) = world.add_client("research", true);
    let steps = json!([
        ["call", "read_account", {}],
        ["sleep", 2.0],
        ["call", "keybridge_status", {}],
        ["list"],
        ["call", "keybridge_status", {}]
    ]);
    let child = world.third_party(ThirdParty::PythonSdk2Auto, &client, key.as_deref(), steps);
    let deadline = Instant::now() + Duration::from_secs(20);
    while world.sim.request_count("/account/read") < 1 {
        assert!(Instant::now() < deadline, "the first read never arrived");
        std::thread::sleep(Duration::from_millis(20));
    }
    world.cli(&["client", "update", &client, "--preset", "read-only"], None);
    let out = World::finish(child);
    let stale = &step(&out, 1)["structured"];
    assert!(stale["restart_needed"].as_str().unwrap().contains("quit the MCP client completely"), "{stale}");
    let fresh = &step(&out, 3)["structured"];
    assert!(fresh.get("restart_needed").is_none(), "after listing again the tools match: {fresh}");
}

#[test]
fn an_answer_of_megabytes_arrives_cut_to_size_with_the_call_for_the_rest() {
    if !in_keyring_session("an_answer_of_megabytes_arrives_cut_to_size_with_the_call_for_the_rest") {
        return;
    }
    let world = World::start(60);
    let created = world.qc("/projects/create", json!({"name": "Big", "language": "Py"}));
    let project = created["projects"][0]["projectId"].as_i64().unwrap();
    for i in 0..40 {
        let content = format!("# file {i}\n{}", "x = 1\n".repeat(20_000));
        world.qc("/files/create", json!({"projectId": project, "name": format!("part{i:02}.py"), "content": content}));
    }
    let (client, key) = world.add_client("research", true);
    let out = World::finish(world.third_party(
        ThirdParty::PythonSdk2Auto,
        &client,
        key.as_deref(),
        json!([["call", "read_file", {"projectId": project}]]),
    ));
    let read = step(&out, 0);
    assert_eq!(read["isError"], false, "{read}");
    let files = read["structured"]["files"].as_array().unwrap();
    assert!(!files.is_empty() && files.len() < 40, "{} files kept", files.len());
    let text = read["text"].as_str().unwrap();
    assert!(text.len() < 300 * 1024, "{} bytes of text", text.len());
    assert!(text.contains(&format!("first {} of the", files.len())) && text.contains("call read_file with `name`"));
}

#[test]
fn a_script_host_is_its_interpreter_and_script_each_asked_once() {
    if !in_keyring_session("a_script_host_is_its_interpreter_and_script_each_asked_once") {
        return;
    }
    let world = World::start(60);
    let (client, _) = world.add_client("research", false);
    let call = json!([["call", "read_account", {}]]);

    // As Claude Code starts it: a node script starts the bridge. Asked once, naming the script.
    let first = world.third_party(ThirdParty::TypeScriptLegacy, &client, None, call.clone());
    let asked = world.answer_next("approve");
    let summary = asked["summary"].as_str().unwrap();
    assert!(summary.contains("node") && summary.contains("clients/ts_client.mjs"), "{summary}");
    assert!(asked["arguments"]["script"].as_str().unwrap().ends_with("tests/clients/ts_client.mjs"), "{asked}");
    assert_eq!(step(&World::finish(first), 0)["isError"], false);

    // The same script again, now through a shell and a terminal-less session: no question.
    let mut command = Command::new("sh");
    world.env(&mut command);
    let script = test_clients_dir().join("ts_client.mjs");
    let line = format!(
        "'{}' '{}' '{}' --client '{client}'; true",
        node().display(),
        script.display(),
        bin("keybridge-mcp").display()
    );
    command.args(["-c", &line]).env("KB_STEPS", call.to_string()).env("KB_MODE", "legacy");
    // As an MCP host runs it: no one types into this shell.
    let out = command.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    assert_eq!(step(&World::finish(out), 0)["isError"], false);
    assert!(world.cli(&["approvals", "list"], None).as_array().unwrap().is_empty(), "the known script was asked again");

    // A Python agent is another host: asked again, by its own name.
    let agent = world.third_party(ThirdParty::PythonSdk1, &client, None, call);
    let asked = world.answer_next("approve");
    let summary = asked["summary"].as_str().unwrap();
    assert!(summary.contains("python") && summary.contains("mcp_client.py"), "{summary}");
    assert_eq!(step(&World::finish(agent), 0)["isError"], false);
    let shown = world.cli(&["client", "show", &client], None);
    let hosts = shown["approved_hosts"].to_string();
    assert!(hosts.contains("running ") && hosts.contains("/clients/ts_client.mjs"), "{shown}");
    assert!(hosts.contains("mcp_client.py"), "{shown}");
}

/// The words of a printed shell command, as `sh` would split them (plain and single-quoted).
fn shell_words(line: &str) -> Vec<String> {
    let (mut words, mut word, mut quoted, mut any) = (Vec::new(), String::new(), false, false);
    for c in line.chars() {
        match c {
            '\'' => (quoted, any) = (!quoted, true),
            ' ' if !quoted => {
                if any {
                    words.push(std::mem::take(&mut word));
                }
                any = false;
            }
            c => (word, any) = (word + &c.to_string(), true),
        }
    }
    if any {
        words.push(word);
    }
    words
}

#[test]
fn the_claude_code_line_keybridge_prints_works_as_printed() {
    if !in_keyring_session("the_claude_code_line_keybridge_prints_works_as_printed") {
        return;
    }
    let world = World::start(60);
    let (client, _) = world.add_client("research", false);
    let mut command = Command::new(bin("keybridge"));
    world.env(&mut command);
    let out = command.args(["connect", "claude-code", "--client", &client]).output().unwrap();
    let printed = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(out.status.success() && printed.contains("holds no secret"), "{printed}");
    let line = printed.lines().find(|l| l.starts_with("claude mcp add")).unwrap_or_else(|| panic!("{printed}"));
    assert!(!line.contains("KEYBRIDGE_CLIENT_KEY"), "{line}");
    // What Claude Code runs is what follows `--`: here a node script (as Claude Code is) runs it.
    let server = shell_words(line.split_once(" -- ").unwrap().1);
    let mut host = Command::new(node());
    world.env(&mut host);
    let host = host
        .arg(test_clients_dir().join("ts_client.mjs"))
        .args(&server)
        .env("KB_STEPS", json!([["call", "read_account", {}]]).to_string())
        .env("KB_MODE", "auto")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let asked = world.answer_next("approve");
    assert_eq!(asked["kind"], "pairing", "{asked}");
    let out = World::finish(host);
    assert_eq!(step(&out, 0)["isError"], false, "{out}");
    assert_eq!(out["protocol"], MODERN);

    // With a key, asked for on stdin, the line says plainly where the key will be kept.
    let (keyed, key) = world.add_client("read-only", true);
    let mut command = Command::new(bin("keybridge"));
    world.env(&mut command);
    let mut child = command
        .args(["connect", "claude-code", "--client", &keyed, "--with-key"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(key.as_deref().unwrap().as_bytes()).unwrap();
    let printed = String::from_utf8_lossy(&child.wait_with_output().unwrap().stdout).to_string();
    assert!(printed.contains("-e KEYBRIDGE_CLIENT_KEY=") && printed.contains("~/.claude.json"), "{printed}");
}
