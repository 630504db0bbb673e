//! `keybridge connect`: Keybridge added to an MCP client's config, or the line to add it by hand.

use std::path::PathBuf;

use anyhow::{Context, Result};

use crate::args::ConnectApp;
use crate::{emit, read_secret};

pub(crate) fn connect(
    app: ConnectApp,
    client: String,
    config: Option<PathBuf>,
    name: String,
    dry_run: bool,
    with_key: bool,
) -> Result<()> {
    use keybridge_mcp_config::{Change, Entry, McpClient, apply, claude_desktop_config_here, merge};
    let app = match app {
        ConnectApp::ClaudeDesktop => McpClient::ClaudeDesktop,
        ConnectApp::ClaudeCode => McpClient::ClaudeCode,
        ConnectApp::Cursor => McpClient::Cursor,
        ConnectApp::Vscode => McpClient::VsCode,
    };
    let here = std::env::current_exe().context("cannot find this program's folder")?;
    let bridge = here.with_file_name(format!("keybridge-mcp{}", std::env::consts::EXE_SUFFIX));
    let bridge = std::fs::canonicalize(&bridge).unwrap_or(bridge);
    let client_key = if with_key { Some(read_secret("client key")?) } else { None };
    let entry = Entry { server_name: name, bridge, client_id: client, client_key };
    let path = match (app, config) {
        (_, Some(path)) => path,
        (McpClient::ClaudeDesktop, None) => claude_desktop_config_here()
            .context("cannot tell where Claude Desktop keeps its config; pass --config PATH")?,
        (other, None) => {
            let stored = match (&entry.client_key, other) {
                (None, _) => "It holds no secret: Keybridge asks you once to approve the program that starts it.".into(),
                (Some(_), McpClient::ClaudeCode) => "It holds the client key: Claude Code will keep it in plain text in ~/.claude.json (the user scope). Revoke the client in Keybridge if that file is ever shared.".to_string(),
                (Some(_), other) => format!("It holds the client key: {} will keep it in plain text in its configuration file. Revoke the client in Keybridge if that file is ever shared.", other.name()),
            };
            return emit(&format!(
                "Add this to {}'s MCP configuration (or pass --config PATH to merge it):\n{}\n{stored}\n",
                other.name(),
                entry.snippet(other)
            ));
        }
    };
    let plan = merge(app, &path, &entry)?;
    let mut text = format!("{}: {}\n", app.name(), plan.path.display());
    match &plan.change {
        Change::Unchanged => text.push_str("already set up; nothing to change\n"),
        Change::Added => text.push_str(&format!("will add server `{}`:\n{}\n", entry.server_name, plan.entry_text)),
        Change::Replaced { previous } => text.push_str(&format!(
            "will replace server `{}`:\n{previous}\nwith:\n{}\n",
            entry.server_name, plan.entry_text
        )),
    }
    if dry_run {
        text.push_str("dry run: nothing was written\n");
    } else if plan.change != Change::Unchanged {
        match apply(&plan)? {
            Some(backup) => text.push_str(&format!("done; the previous file is saved as {}\n", backup.display())),
            None => text.push_str("done\n"),
        }
        if app == McpClient::ClaudeDesktop {
            text.push_str(
                "Quit Claude Desktop completely (not just its window) and open it again to load the server.\n",
            );
        }
    }
    emit(&text)
}
