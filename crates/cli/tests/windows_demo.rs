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
    let mut bridge = Command::new(bridge_exe())
        .args(["--client", &client_id])
        .envs(env.clone())
        .env("KEYBRIDGE_CLIENT_KEY", &key)
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
        "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "windows-test", "version": "1"}}});
    assert_eq!(ask(init, Some(1)).unwrap()["result"]["serverInfo"]["name"], "keybridge");
    ask(json!({"jsonrpc": "2.0", "method": "notifications/initialized"}), None);
    let call = json!({"jsonrpc": "2.0", "id": 2, "method": "tools/call",
        "params": {"name": "read_account", "arguments": {}}});
    let reply = ask(call, Some(2)).unwrap();
    assert_eq!(reply["result"]["isError"], false, "{reply}");
    let text = reply["result"]["content"][0]["text"].as_str().unwrap();
    assert!(text.contains("demo-org-0001"), "{text}");
    drop(to_bridge);
    let _ = bridge.wait();

    // The call is in the audit log, and the chain holds.
    let out = keybridge().args(["audit", "tail", "--json"]).envs(env.clone()).output().unwrap();
    let printed = String::from_utf8_lossy(&out.stdout);
    assert!(printed.contains(r#""tool":"read_account""#) && printed.contains(&client_id), "{printed}");
    let out = keybridge().args(["audit", "verify"]).envs(env).output().unwrap();
    let verified: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(verified["intact"], true, "{verified}");
}
