//! Merging Keybridge into any Claude config text: refused, or a file that parses, holds
//! Keybridge's entry, and keeps every other server exactly.
#![no_main]

use std::path::{Path, PathBuf};

use keybridge_mcp_config::{Entry, McpClient, merge_text};
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let entry = Entry {
        server_name: "quantconnect".into(),
        bridge: PathBuf::from("/opt/keybridge/keybridge-mcp"),
        client_id: "c-1".into(),
        client_key: None,
    };
    let Ok(plan) = merge_text(McpClient::ClaudeDesktop, Path::new("fuzz.json"), Some(text.to_string()), &entry) else {
        return;
    };
    let merged: Value = serde_json::from_str(&plan.new_text).expect("the merged file parses");
    let servers = &merged["mcpServers"];
    assert_eq!(servers["quantconnect"]["args"][1], "c-1");
    if let Ok(Value::Object(before)) = serde_json::from_str::<Value>(text)
        && let Some(Value::Object(old)) = before.get("mcpServers")
    {
        for (name, server) in old.iter().filter(|(name, _)| *name != "quantconnect") {
            assert_eq!(&servers[name], server, "server {name} changed");
        }
    }
});
