//! What a trader does in the window, shared by the GUI tests of a development build and the
//! test of the installed package.

use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use crate::World;
use crate::webdriver::Session;

/// Claude Desktop's config in `world`, holding `contents`.
pub fn claude_config(world: &World, contents: &str) -> PathBuf {
    let config = world.home.path().join("Claude/claude_desktop_config.json");
    std::fs::create_dir_all(config.parent().unwrap()).unwrap();
    std::fs::write(&config, contents).unwrap();
    config
}

/// A Claude Desktop config with two other servers and a setting, which must all survive.
pub const OTHER_SERVERS: &str = r#"{
  "mcpServers": {
    "filesystem": {"command": "npx", "args": ["-y", "@modelcontextprotocol/server-filesystem", "/home/trader/research"]},
    "github": {"command": "docker", "args": ["run", "-i", "ghcr.io/github/github-mcp-server"]}
  },
  "globalShortcut": "Ctrl+Space"
}
"#;

/// The first-run guide, from the account to Connect Claude Desktop and "restart Claude":
/// returns the new client's id. Screenshots are named `onboarding-<step>`.
pub fn onboarding_until_restart(ui: &Session, world: &World, config: &Path, preset: &str) -> String {
    ui.wait_for("#onboarding");
    ui.wait_for(r#"#onboarding-step[data-step="account"]"#);
    ui.wait_for_text("#status-pill", "Active");
    ui.screenshot("onboarding-account");
    ui.type_into("#account-user", &world.account.user_id);
    ui.type_into("#account-token", &world.account.api_token);
    ui.type_into("#account-org", &world.account.organization_id);
    ui.click("#account-add");

    ui.wait_for(r#"#onboarding-step[data-step="client"]"#);
    ui.click(&format!(r#"#onboarding input[name="onboarding-preset"][value="{preset}"]"#));
    ui.screenshot("onboarding-client");
    ui.click("#onboarding-client-create");

    ui.wait_for(r#"#onboarding-step[data-step="connect"]"#);
    ui.wait_for_text("#connect-preview", "filesystem");
    ui.screenshot("onboarding-connect");
    ui.click("#connect-apply");
    ui.wait_for(r#"#onboarding-step[data-step="restart"]"#);
    ui.wait_for_text("#onboarding", "Restart Claude");
    let merged: Value = serde_json::from_str(&std::fs::read_to_string(config).unwrap()).unwrap();
    assert_eq!(merged["mcpServers"]["filesystem"]["args"][2], "/home/trader/research", "{merged}");
    assert_eq!(merged["globalShortcut"], "Ctrl+Space", "{merged}");
    let entry = &merged["mcpServers"]["quantconnect"];
    assert!(entry.get("env").is_none(), "no secret in the config: {entry}");
    let client = entry["args"][1].as_str().unwrap().to_string();
    ui.screenshot("onboarding-restart");
    ui.click("#onboarding-restarted");
    ui.wait_for(r#"#onboarding-step[data-step="waiting"]"#);
    client
}

/// The entry Connect Claude Desktop wrote: the command and its arguments.
pub fn claude_entry(config: &Path) -> (PathBuf, Vec<String>) {
    let merged: Value = serde_json::from_str(&std::fs::read_to_string(config).unwrap()).unwrap();
    let entry = &merged["mcpServers"]["quantconnect"];
    let command = PathBuf::from(entry["command"].as_str().unwrap());
    let args = entry["args"].as_array().unwrap().iter().map(|a| a.as_str().unwrap().to_string()).collect();
    (command, args)
}

/// Claude's first connection waits in the guide; the trader approves it there.
pub fn approve_first_connection(ui: &Session) {
    ui.wait_for_text("#onboarding .approval-card.pairing", "wants to connect");
    ui.screenshot("onboarding-waiting");
    ui.click("#onboarding .approval-card.pairing button.approve:not([disabled])");
    ui.wait_for("#onboarding-done");
    ui.screenshot("onboarding-done");
}

/// Test connection on a client's card: the app runs the bridge as the MCP client will.
pub fn test_connection(ui: &Session, client: &str) -> String {
    ui.click(&format!(r#"#client-list .card.client[data-client="{client}"] .test-connection"#));
    let result =
        ui.wait_for_text(&format!(r#"#client-list .card.client[data-client="{client}"] .connection-test.ok"#), "tools");
    ui.text_of(&result)
}

/// Steps for the Python MCP client: read the account.
pub fn read_account() -> Value {
    json!([["call", "read_account", {}]])
}
