//! Connecting MCP clients: Claude Desktop's config (preview, apply), snippets, and the connection test.

use keybridge_broker_proto::{AdminCommand, ClientView, ErrorCode};
use keybridge_mcp_config::{Change, Entry, McpClient, apply, merge};
use std::path::PathBuf;
use tauri::State;

use super::{AppState, Reply};
use crate::ipc::{AppErrorCode, ConnectDone, ConnectPreview, ConnectionTest, Snippets, UiError};

fn client_entry(state: &AppState, client: &ClientView) -> Entry {
    Entry {
        server_name: "quantconnect".into(),
        bridge: state.bridge.clone(),
        client_id: client.client_id.clone(),
        client_key: None,
    }
}

async fn live_client(state: &AppState, client_id: &str) -> Reply<ClientView> {
    let client: ClientView = state.admin(AdminCommand::ClientShow { client_id: client_id.into() }).await?;
    if client.revoked {
        return Err(UiError::new(ErrorCode::Revoked, format!("client `{client_id}` was revoked; create a new one")));
    }
    Ok(client)
}

fn claude_config(state: &AppState) -> Reply<PathBuf> {
    state.claude_desktop_config.clone().ok_or_else(|| {
        UiError::new(
            AppErrorCode::Config,
            "cannot tell where Claude Desktop keeps its config on this system; use a snippet instead",
        )
    })
}

/// The merge of a live client's entry into Claude Desktop's config, planned from the file as it is now.
async fn claude_plan(state: &AppState, client_id: &str) -> Reply<(PathBuf, Entry, keybridge_mcp_config::Plan)> {
    let client = live_client(state, client_id).await?;
    let path = claude_config(state)?;
    let entry = client_entry(state, &client);
    let plan = merge(McpClient::ClaudeDesktop, &path, &entry)?;
    Ok((path, entry, plan))
}

fn change_name(change: &Change) -> String {
    match change {
        Change::Added => "added",
        Change::Replaced { .. } => "replaced",
        Change::Unchanged => "unchanged",
    }
    .into()
}

/// What connecting Claude Desktop to this client would change. Writes nothing.
#[tauri::command]
#[tracing::instrument(skip_all, err(level = "warn"))]
pub async fn connect_preview(state: State<'_, AppState>, client_id: String) -> Reply<ConnectPreview> {
    let (path, entry, plan) = claude_plan(&state, &client_id).await?;
    Ok(ConnectPreview {
        app: McpClient::ClaudeDesktop.name().into(),
        path: path.display().to_string(),
        file_exists: path.exists(),
        change: change_name(&plan.change),
        previous_entry: match &plan.change {
            Change::Replaced { previous } => Some(previous.clone()),
            _ => None,
        },
        entry: plan.entry_text,
        server_name: entry.server_name,
        other_servers: plan.other_servers,
        file_digest: plan.original_digest,
    })
}

/// Merge the entry into Claude Desktop's config, exactly as previewed: refused if the file
/// changed since (`file_digest` of the preview), backed up, replaced atomically. An invalid
/// file is refused and left as it was.
#[tauri::command]
#[tracing::instrument(skip_all, err(level = "warn"))]
pub async fn connect_apply(
    state: State<'_, AppState>,
    client_id: String,
    file_digest: Option<String>,
) -> Reply<ConnectDone> {
    let (path, _, plan) = claude_plan(&state, &client_id).await?;
    if plan.original_digest != file_digest {
        return Err(UiError::new(
            AppErrorCode::Config,
            format!("{} changed since you looked at it; nothing was written: look at the new preview", path.display()),
        ));
    }
    let backup = apply(&plan)?;
    let next_step = match plan.change {
        Change::Unchanged => "Claude Desktop was already set up for this client; nothing changed.".into(),
        _ => "Quit Claude Desktop completely (from its menu or tray, not just its window) and open it again. \
              The first time it starts Keybridge, you will be asked here to approve the connection."
            .into(),
    };
    Ok(ConnectDone {
        path: path.display().to_string(),
        backup: backup.map(|b| b.display().to_string()),
        change: change_name(&plan.change),
        next_step,
    })
}

/// How long a connection test waits: a first connection from a new program asks the human.
const CONNECTION_TEST_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(90);

/// Run the client's MCP server exactly as its MCP client's config says, and list its tools.
/// A failure is an answer too (`ok: false`, with what to do), not a command error.
#[tauri::command]
#[tracing::instrument(skip_all, err(level = "warn"))]
pub async fn client_test_connection(state: State<'_, AppState>, client_id: String) -> Reply<ConnectionTest> {
    let client = live_client(&state, &client_id).await?;
    let entry = client_entry(&state, &client);
    let command = entry.command_line();
    let probe = tauri::async_runtime::spawn_blocking(move || entry.probe(CONNECTION_TEST_TIMEOUT))
        .await
        .map_err(|e| UiError::new(ErrorCode::Internal, format!("the connection test stopped: {e}")))?;
    Ok(match probe {
        Ok(probe) => ConnectionTest {
            ok: true,
            message: format!(
                "{} answered over MCP {} with {} tools: this is what the MCP client will see.",
                probe.server,
                probe.protocol_version,
                probe.tools.len()
            ),
            command,
            protocol_version: Some(probe.protocol_version),
            server: Some(probe.server),
            tools: probe.tools,
        },
        Err(e) => ConnectionTest {
            ok: false,
            message: e.to_string(),
            command,
            protocol_version: None,
            server: None,
            tools: Vec::new(),
        },
    })
}

#[tauri::command]
#[tracing::instrument(skip_all, err(level = "warn"))]
pub async fn connect_snippets(state: State<'_, AppState>, client_id: String) -> Reply<Snippets> {
    let client = live_client(&state, &client_id).await?;
    let entry = client_entry(&state, &client);
    Ok(Snippets {
        claude_code: entry.snippet(McpClient::ClaudeCode),
        cursor: entry.snippet(McpClient::Cursor),
        vscode: entry.snippet(McpClient::VsCode),
    })
}
