//! The `keybridge` binary as a user runs it.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use keybridge_quantconnect::{ClientConfig, Credentials, QcClient};
use serde_json::Value;

fn keybridge() -> Command {
    Command::new(env!("CARGO_BIN_EXE_keybridge"))
}

#[test]
fn catalog_json_lists_the_official_64_names_each_with_a_qc_scope() {
    let out = keybridge().args(["catalog", "--json"]).output().unwrap();
    assert!(out.status.success());
    let rows: Vec<Value> = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(rows.len(), 64);
    for row in &rows {
        for field in ["name", "category", "scope", "endpoint", "read_only", "destructive"] {
            assert!(row.get(field).is_some(), "{field} missing in {row}");
        }
        assert!(row["scope"].as_str().unwrap().starts_with("qc:"), "{row}");
    }
    let reference = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/quantconnect/tools.json");
    if let Ok(text) = std::fs::read_to_string(reference) {
        let official: Vec<Value> = serde_json::from_str(&text).unwrap();
        let mut theirs: Vec<&str> = official.iter().map(|t| t["name"].as_str().unwrap()).collect();
        let mut ours: Vec<&str> = rows.iter().map(|t| t["name"].as_str().unwrap()).collect();
        theirs.sort();
        ours.sort();
        assert_eq!(ours, theirs);
    }
}

#[test]
fn catalog_table_survives_a_closed_pipe() {
    let mut child = keybridge().arg("catalog").stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}

#[tokio::test]
async fn sim_announces_its_address_and_serves_the_demo_account() {
    let mut child = Running(
        keybridge()
            .args(["sim", "--listen", "127.0.0.1:0"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let mut first = String::new();
    BufReader::new(child.0.stdout.take().unwrap()).read_line(&mut first).unwrap();
    let url = first.trim().strip_prefix("listening on ").unwrap_or_else(|| panic!("first line was {first:?}"));
    assert!(url.starts_with("http://127.0.0.1:"), "{url}");
    let demo = keybridge_qc_sim::SimAccount::demo();
    let client = QcClient::new(ClientConfig::new(format!("{url}/api/v2"))).unwrap();
    let creds = Credentials::new(demo.user_id, demo.api_token);
    client.authenticate(&creds).await.expect("the documented demo account works");
    let account = client.call(&creds, keybridge_catalog::find("read_account").unwrap(), Value::Null).await.unwrap();
    assert_eq!(account["organizationId"], demo.organization_id);
}

#[test]
fn sim_explains_a_bad_accounts_file() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("accounts.json");
    std::fs::write(&file, "{\"user_id\": 1}").unwrap();
    let out = keybridge().args(["sim", "--accounts"]).arg(&file).output().unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("must be a JSON list of {user_id, api_token, organization_id}"), "{err}");
}

/// A child process that is stopped when the test ends, pass or fail.
struct Running(std::process::Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn connect_merges_into_claude_desktop_config_and_refuses_a_broken_one() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("claude_desktop_config.json");
    std::fs::write(&config, r#"{"mcpServers": {"files": {"command": "fs-server"}}, "theme": "dark"}"#).unwrap();
    let out =
        keybridge().args(["connect", "claude-desktop", "--client", "c-42", "--config"]).arg(&config).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let merged: Value = serde_json::from_str(&std::fs::read_to_string(&config).unwrap()).unwrap();
    assert_eq!(merged["mcpServers"]["files"]["command"], "fs-server", "other servers survive");
    assert_eq!(merged["theme"], "dark", "other settings survive");
    assert_eq!(merged["mcpServers"]["quantconnect"]["args"], serde_json::json!(["--client", "c-42"]));
    assert!(String::from_utf8_lossy(&out.stdout).contains("keybridge-backup"), "a backup was made");

    let broken = "{\"mcpServers\": {";
    std::fs::write(&config, broken).unwrap();
    let out =
        keybridge().args(["connect", "claude-desktop", "--client", "c-42", "--config"]).arg(&config).output().unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("left untouched"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(std::fs::read_to_string(&config).unwrap(), broken);
}

#[test]
fn account_add_sends_nothing_to_a_listener_in_a_folder_others_can_enter() {
    use std::io::{Read, Write};
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let folder = dir.path().join("run");
    std::fs::create_dir(&folder).unwrap();
    std::fs::set_permissions(&folder, std::fs::Permissions::from_mode(0o755)).unwrap();
    let socket = folder.join("broker.sock");
    // Whatever listens there records every byte it is sent.
    let listener = std::os::unix::net::UnixListener::bind(&socket).unwrap();
    let received = std::thread::spawn(move || {
        let (mut stream, _) = listener.accept().unwrap();
        let mut bytes = Vec::new();
        stream.read_to_end(&mut bytes).unwrap();
        bytes
    });
    let mut child = keybridge()
        .args(["account", "add", "main", "--user-id", "1000001", "--skip-check"])
        .env("KEYBRIDGE_SOCKET", &socket)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(b"SENTINEL-token-for-a-squatter\n").unwrap();
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains("mode 0700") && stderr.contains("755"), "{stderr}");
    assert!(received.join().unwrap().is_empty(), "the listener was sent nothing");
}
