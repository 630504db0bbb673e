//! Windows, end to end: `keybridge serve --demo` listening on its named pipe, the CLI asking it
//! for its status, and `keybridge-mcp` answering an MCP client's call through it. CI runs this
//! cross-compiled under Wine (`scripts/dev.sh windows`); Linux has its own, fuller tests.
#![cfg(windows)]

use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

use serde_json::{Value, json};

fn keybridge() -> Command {
    Command::new(env!("CARGO_BIN_EXE_keybridge"))
}

/// `keybridge-mcp.exe`, built beside `keybridge.exe` (`scripts/dev.sh windows` builds it first).
fn bridge_exe() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_keybridge")).with_file_name("keybridge-mcp.exe")
}

struct Broker {
    child: Child,
}

impl Drop for Broker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn the_demo_serves_the_cli_and_the_bridge_over_the_named_pipe() {
    let home = tempfile::tempdir().unwrap();
    let pipe = format!(r"\\.\pipe\keybridge-test-{}", std::process::id());
    let env = [("KEYBRIDGE_HOME", home.path().display().to_string()), ("KEYBRIDGE_SOCKET", pipe.clone())];

    let mut child = keybridge()
        .args(["serve", "--demo"])
        .envs(env.clone())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let stderr = BufReader::new(child.stderr.take().unwrap());
    let _broker = Broker { child };
    let mut ready = String::new();
    stdout.read_line(&mut ready).unwrap();
    assert_eq!(ready.trim(), format!("ready {pipe}"));
    // The demo prints its key client on stderr before it is ready.
    let mut client = None;
    for line in stderr.lines() {
        let line = line.unwrap();
        if let Some(rest) = line.split("KEYBRIDGE_CLIENT_KEY=").nth(1) {
            let mut words = rest.split_whitespace();
            let key = words.next().unwrap().to_string();
            let id = words.nth(2).unwrap().to_string();
            client = Some((id, key));
            break;
        }
    }
    let (client_id, key) = client.expect("the demo names its key client");

    // The CLI reaches the broker through the pipe, after checking who owns it.
    let out = keybridge().arg("status").envs(env.clone()).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let status: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(status["paused"], false);

    // An MCP client's call, through the bridge and the broker to the simulator.
    let result = call_as_host(&env, &client_id, Some(&key));
    assert_eq!(result["isError"], false, "{result}");
    let text = result["content"][0]["text"].as_str().unwrap();
    assert!(text.contains("demo-org-0001"), "{text}");

    // The call is in the audit log, and the chain holds.
    let out = keybridge().args(["audit", "tail", "--json"]).envs(env.clone()).output().unwrap();
    let printed = String::from_utf8_lossy(&out.stdout);
    assert!(printed.contains(r#""tool":"read_account""#) && printed.contains(&client_id), "{printed}");
    let out = keybridge().args(["audit", "verify"]).envs(env).output().unwrap();
    let verified: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(verified["intact"], true, "{verified}");
}

/// A broker on its own pipe, and the environment that reaches it.
fn start_demo() -> (Broker, Vec<(&'static str, String)>, tempfile::TempDir) {
    let home = tempfile::tempdir().unwrap();
    let pipe = format!(r"\\.\pipe\keybridge-host-test-{}", std::process::id());
    let env = vec![("KEYBRIDGE_HOME", home.path().display().to_string()), ("KEYBRIDGE_SOCKET", pipe.clone())];
    let mut child = keybridge()
        .args(["serve", "--demo"])
        .envs(env.clone())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut ready = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut ready).unwrap();
    assert_eq!(ready.trim(), format!("ready {pipe}"));
    (Broker { child }, env, home)
}

/// This process as an MCP host: it starts `keybridge-mcp.exe` for `client` (with its key, or
/// host-bound without one) and calls `read_account`; the tool result.
fn call_as_host(env: &[(&str, String)], client: &str, key: Option<&str>) -> Value {
    let mut command = Command::new(bridge_exe());
    command.args(["--client", client]).envs(env.iter().cloned()).env_remove("KEYBRIDGE_CLIENT_KEY");
    if let Some(key) = key {
        command.env("KEYBRIDGE_CLIENT_KEY", key);
    }
    let mut bridge = command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("keybridge-mcp.exe is built beside keybridge.exe");
    let mut to_bridge = bridge.stdin.take().unwrap();
    let mut from_bridge = BufReader::new(bridge.stdout.take().unwrap());
    let mut ask = |message: Value, id: Option<u64>| -> Option<Value> {
        writeln!(to_bridge, "{message}").unwrap();
        let id = id?;
        loop {
            let mut line = String::new();
            assert!(from_bridge.read_line(&mut line).unwrap() > 0, "the bridge closed its output");
            let reply: Value = serde_json::from_str(&line).unwrap();
            if reply["id"] == id {
                return Some(reply);
            }
        }
    };
    let init = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "stand-in host", "version": "1"}}});
    ask(init, Some(1));
    ask(json!({"jsonrpc": "2.0", "method": "notifications/initialized"}), None);
    let call =
        json!({"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {"name": "read_account", "arguments": {}}});
    let reply = ask(call, Some(2)).unwrap();
    drop(to_bridge);
    let _ = bridge.wait();
    reply["result"].clone()
}

/// The next pairing question, answered with `decision` (`approve` or `deny`).
fn answer_pairing(env: &[(&str, String)], decision: &str) -> Value {
    for _ in 0..300 {
        let out = keybridge().args(["approvals", "list"]).envs(env.iter().cloned()).output().unwrap();
        let list: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
        if let Some(first) = list.as_array().and_then(|l| l.first()).cloned() {
            let id = first["id"].as_str().unwrap();
            let out = keybridge().args(["approvals", decision, id]).envs(env.iter().cloned()).output().unwrap();
            assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
            return first;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    panic!("no pairing question within 30 s");
}

const HOST_CHILD: &str = "KEYBRIDGE_TEST_HOST_CHILD";

/// Run as a copy of this test program under another name: another host.
#[test]
fn stand_in_host_entry() {
    let Ok(client) = std::env::var(HOST_CHILD) else { return };
    let env: Vec<(&str, String)> =
        ["KEYBRIDGE_HOME", "KEYBRIDGE_SOCKET"].into_iter().map(|k| (k, std::env::var(k).unwrap())).collect();
    let result = call_as_host(&env, &client, None);
    println!("HOST-RESULT {}", result["isError"]);
}

#[test]
fn a_host_bound_client_is_asked_once_per_host_program_and_needs_no_key() {
    if std::env::var(HOST_CHILD).is_ok() {
        return;
    }
    let (_broker, env, home) = start_demo();
    let out = keybridge()
        .args(["client", "add", "Windows host", "--account", "demo", "--preset", "research", "--json"])
        .envs(env.clone())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let added: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(added.get("client_key").is_none_or(Value::is_null), "host-bound: no key: {added}");
    let client = added["client_id"].as_str().unwrap().to_string();
    let me = std::env::current_exe().unwrap();
    let my_name = me.file_name().unwrap().to_string_lossy().to_string();

    // This program starts the bridge: asked once, by this program's name.
    let calling = std::thread::spawn({
        let (env, client) = (env.clone(), client.clone());
        move || call_as_host(&env, &client, None)
    });
    let asked = answer_pairing(&env, "approve");
    assert_eq!(asked["kind"], "pairing", "{asked}");
    assert!(asked["summary"].as_str().unwrap().contains(&my_name), "the host is named: {asked}");
    assert_eq!(calling.join().unwrap()["isError"], false);

    // Again: remembered, no question.
    assert_eq!(call_as_host(&env, &client, None)["isError"], false);
    let out = keybridge().args(["approvals", "list"]).envs(env.clone()).output().unwrap();
    assert_eq!(serde_json::from_slice::<Value>(&out.stdout).unwrap(), json!([]));

    // A copy of this program under another name is another host: asked again, and denied.
    let other = home.path().join("other-host.exe");
    std::fs::copy(&me, &other).unwrap();
    let child = Command::new(&other)
        .args(["--exact", "stand_in_host_entry", "--nocapture", "--test-threads=1"])
        .envs(env.clone())
        .env(HOST_CHILD, &client)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let asked = answer_pairing(&env, "deny");
    assert!(asked["summary"].as_str().unwrap().contains("other-host.exe"), "{asked}");
    let out = child.wait_with_output().unwrap();
    let printed = String::from_utf8_lossy(&out.stdout);
    assert!(printed.contains("HOST-RESULT true"), "the other host was refused: {printed}");
}
