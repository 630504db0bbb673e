//! The Tauri commands: thin glue from the window to the broker. Each one is an
//! [`AdminCommand`] or a call into `keybridge-mcp-config`; the answer is a typed view.

use std::path::PathBuf;
use std::sync::Arc;

use keybridge_broker_proto::{
    AccountView, AdminCommand, AllowanceView, ApprovalDecision, ApprovalView, AuditExported, AuditRecordView,
    AuditVerified, ClientAdded, ClientLimitsUpdate, ClientSpec, ClientView, ErrorCode, SettingsView, StatusView,
};
use keybridge_host::Broker;
use keybridge_host::catalog::{Preset, Scope};
use keybridge_mcp_config::{Change, Entry, McpClient, apply, merge};
use serde::de::DeserializeOwned;
use tauri::{Runtime, State};

use crate::ipc::{
    AppErrorCode, AppInfo, ConnectDone, ConnectPreview, ConnectionTest, NewAccount, NewClient, PresetInfo, ScopeInfo,
    Snippets, UiError,
};

/// What the commands work on: the broker this app hosts, or why there is none.
pub struct AppState {
    pub broker: Option<Arc<Broker>>,
    pub problem: Option<String>,
    pub demo: bool,
    pub socket: PathBuf,
    pub quantconnect: String,
    pub data_dir: PathBuf,
    /// The `keybridge-mcp` that MCP client configs launch.
    pub bridge: PathBuf,
    /// Where Claude Desktop keeps its config, if the platform says.
    pub claude_desktop_config: Option<PathBuf>,
}

impl AppState {
    fn broker(&self) -> Result<&Arc<Broker>, UiError> {
        self.broker.as_ref().ok_or_else(|| {
            UiError::new(
                AppErrorCode::NotRunning,
                self.problem.clone().unwrap_or_else(|| "the broker is not running".into()),
            )
        })
    }

    async fn admin<T: DeserializeOwned>(&self, command: AdminCommand) -> Result<T, UiError> {
        let value = self.broker()?.admin(command).await?;
        serde_json::from_value(value).map_err(|e| UiError::new(ErrorCode::Internal, format!("unexpected answer: {e}")))
    }
}

type Reply<T> = Result<T, UiError>;

#[tauri::command]
pub fn app_info(state: State<'_, AppState>) -> AppInfo {
    AppInfo {
        version: keybridge_version::VERSION.into(),
        demo: state.demo,
        problem: state.problem.clone(),
        data_dir: state.data_dir.display().to_string(),
        socket: state.socket.display().to_string(),
        quantconnect: state.quantconnect.clone(),
        bridge: state.bridge.display().to_string(),
    }
}

#[tauri::command]
pub async fn status(state: State<'_, AppState>) -> Reply<StatusView> {
    state.admin(AdminCommand::Status).await
}

#[tauri::command]
pub async fn accounts_list(state: State<'_, AppState>) -> Reply<Vec<AccountView>> {
    state.admin(AdminCommand::AccountList).await
}

/// Checked against QuantConnect before anything is saved; the token goes to the keychain only.
#[tauri::command]
pub async fn account_add(state: State<'_, AppState>, account: NewAccount) -> Reply<AccountView> {
    let NewAccount { name, user_id, organization_id, api_token } = account;
    let organization_id = organization_id.map(|o| o.trim().to_string()).filter(|o| !o.is_empty());
    let command = AdminCommand::AccountAdd {
        name: name.trim().to_string(),
        user_id: user_id.trim().to_string(),
        organization_id,
        api_token,
        skip_check: false,
    };
    state.admin(command).await
}

#[tauri::command]
pub async fn account_test(state: State<'_, AppState>, name: String) -> Reply<serde_json::Value> {
    state.admin(AdminCommand::AccountTest { name }).await
}

#[tauri::command]
pub async fn account_rename(state: State<'_, AppState>, name: String, new_name: String) -> Reply<AccountView> {
    state.admin(AdminCommand::AccountRename { name, new_name: new_name.trim().to_string() }).await
}

#[tauri::command]
pub async fn account_remove(state: State<'_, AppState>, name: String) -> Reply<serde_json::Value> {
    state.admin(AdminCommand::AccountRemove { name }).await
}

#[tauri::command]
pub async fn clients_list(state: State<'_, AppState>) -> Reply<Vec<ClientView>> {
    state.admin(AdminCommand::ClientList).await
}

#[tauri::command]
pub async fn client_add(state: State<'_, AppState>, client: NewClient) -> Reply<ClientAdded> {
    let spec = ClientSpec {
        name: client.name,
        account: client.account,
        preset: client.preset.filter(|p| !p.is_empty()),
        scopes: client.scopes,
        policy: Default::default(),
        token_ttl_secs: None,
        with_key: client.with_key,
    };
    state.admin(AdminCommand::ClientAdd { spec }).await
}

/// Change some of a client's limits; what it may do stays.
#[tauri::command]
pub async fn client_limits(
    state: State<'_, AppState>,
    client_id: String,
    limits: ClientLimitsUpdate,
) -> Reply<serde_json::Value> {
    let update = AdminCommand::ClientUpdate { client_id, preset: None, scopes: Vec::new(), policy: None, limits };
    state.admin(update).await
}

#[tauri::command]
pub async fn client_update(
    state: State<'_, AppState>,
    client_id: String,
    preset: Option<String>,
    scopes: Vec<String>,
) -> Reply<serde_json::Value> {
    let preset = preset.filter(|p| !p.is_empty());
    state
        .admin(AdminCommand::ClientUpdate { client_id, preset, scopes, policy: None, limits: Default::default() })
        .await
}

#[tauri::command]
pub async fn client_revoke(state: State<'_, AppState>, client_id: String) -> Reply<serde_json::Value> {
    state.admin(AdminCommand::ClientRevoke { client_id }).await
}

#[tauri::command]
pub async fn session_end(state: State<'_, AppState>, session_id: String) -> Reply<serde_json::Value> {
    state.admin(AdminCommand::SessionEnd { session_id }).await
}

#[tauri::command]
pub fn presets() -> Vec<PresetInfo> {
    Preset::ALL
        .iter()
        .map(|p| PresetInfo {
            name: p.name().into(),
            title: title_case(p.name()),
            description: p.summary().into(),
            scopes: p.scopes().iter().map(|s| s.to_string()).collect(),
        })
        .collect()
}

#[tauri::command]
pub fn scopes() -> Vec<ScopeInfo> {
    Scope::ALL
        .iter()
        .map(|&scope| ScopeInfo {
            name: scope.to_string(),
            description: describe_scope(scope),
            default_policy: keybridge_host::policy::default_decision(scope).as_str().into(),
            tools: keybridge_host::catalog::tools()
                .iter()
                .filter(|t| t.scope == scope)
                .map(|t| t.name.to_string())
                .collect(),
        })
        .collect()
}

#[tauri::command]
pub async fn approvals_list(state: State<'_, AppState>) -> Reply<Vec<ApprovalView>> {
    state.admin(AdminCommand::ApprovalsList).await
}

#[tauri::command]
pub async fn allowances_list(state: State<'_, AppState>) -> Reply<Vec<AllowanceView>> {
    state.admin(AdminCommand::AllowancesList).await
}

#[tauri::command]
pub async fn allowance_revoke(
    state: State<'_, AppState>,
    session_id: String,
    tool: String,
) -> Reply<serde_json::Value> {
    state.admin(AdminCommand::AllowanceRevoke { session_id, tool }).await
}

/// `decision`: `approve`, `deny`, or `allow_for` with `minutes`.
#[tauri::command]
pub async fn approval_decide(
    state: State<'_, AppState>,
    approval_id: String,
    decision: String,
    minutes: Option<u32>,
) -> Reply<serde_json::Value> {
    let decision = match (decision.as_str(), minutes) {
        ("approve", _) => ApprovalDecision::Approve,
        ("deny", _) => ApprovalDecision::Deny,
        ("allow_for", Some(minutes)) if (1..=240).contains(&minutes) => ApprovalDecision::AllowFor { minutes },
        (other, _) => {
            return Err(UiError::new(
                ErrorCode::Invalid,
                format!("`{other}` is not a decision: use approve, deny, or allow_for with 1 to 240 minutes"),
            ));
        }
    };
    state.admin(AdminCommand::ApprovalDecide { approval_id, decision }).await
}

/// The icon the desktop shows for `program` (a request's host), as a `data:` URL, or none.
#[tauri::command]
pub async fn host_icon(program: String) -> Option<String> {
    let program = std::path::PathBuf::from(program);
    if !program.is_absolute() {
        return None;
    }
    tauri::async_runtime::spawn_blocking(move || crate::host_icon::icon_for(&program, &crate::host_icon::data_dirs()))
        .await
        .ok()
        .flatten()
}

#[tauri::command]
pub async fn audit_tail(state: State<'_, AppState>, last: usize) -> Reply<Vec<AuditRecordView>> {
    state.admin(AdminCommand::AuditTail { last, follow: false }).await
}

#[tauri::command]
pub async fn audit_verify(state: State<'_, AppState>) -> Reply<AuditVerified> {
    state.admin(AdminCommand::AuditVerify).await
}

/// Write the whole log, every line as written (chain fields included), to a new file in
/// `exports/` of the data folder; the export itself goes on record.
#[tauri::command]
pub async fn audit_export(state: State<'_, AppState>) -> Reply<String> {
    let exported: AuditExported = state.admin(AdminCommand::AuditExport).await?;
    Ok(exported.file)
}

#[tauri::command]
pub async fn pause(state: State<'_, AppState>) -> Reply<serde_json::Value> {
    state.admin(AdminCommand::Pause).await
}

#[tauri::command]
pub async fn resume(state: State<'_, AppState>) -> Reply<serde_json::Value> {
    state.admin(AdminCommand::Resume).await
}

#[tauri::command]
pub async fn settings_get(state: State<'_, AppState>) -> Reply<SettingsView> {
    state.admin(AdminCommand::SettingsGet).await
}

#[tauri::command]
pub async fn settings_update(state: State<'_, AppState>, settings: SettingsView) -> Reply<SettingsView> {
    state.admin(AdminCommand::SettingsUpdate { settings }).await
}

#[tauri::command]
pub async fn keys_rotate(state: State<'_, AppState>) -> Reply<serde_json::Value> {
    state.admin(AdminCommand::KeysRotate).await
}

#[tauri::command]
pub fn autostart_get<R: Runtime>(app: tauri::AppHandle<R>) -> Reply<bool> {
    use tauri_plugin_autostart::ManagerExt;
    app.autolaunch().is_enabled().map_err(|e| UiError::new(AppErrorCode::Autostart, e.to_string()))
}

#[tauri::command]
pub fn autostart_set<R: Runtime>(app: tauri::AppHandle<R>, enabled: bool) -> Reply<bool> {
    use tauri_plugin_autostart::ManagerExt;
    let launcher = app.autolaunch();
    let done = if enabled { launcher.enable() } else { launcher.disable() };
    done.map_err(|e| UiError::new(AppErrorCode::Autostart, format!("cannot change start at login: {e}")))?;
    launcher.is_enabled().map_err(|e| UiError::new(AppErrorCode::Autostart, e.to_string()))
}

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
pub async fn connect_snippets(state: State<'_, AppState>, client_id: String) -> Reply<Snippets> {
    let client = live_client(&state, &client_id).await?;
    let entry = client_entry(&state, &client);
    Ok(Snippets {
        claude_code: entry.snippet(McpClient::ClaudeCode),
        cursor: entry.snippet(McpClient::Cursor),
        vscode: entry.snippet(McpClient::VsCode),
    })
}

fn title_case(name: &str) -> String {
    let mut words = name.split('-').map(|w| {
        let mut chars = w.chars();
        chars.next().map(|c| c.to_uppercase().chain(chars).collect::<String>()).unwrap_or_default()
    });
    let first = words.next().unwrap_or_default();
    words.fold(first, |acc, w| format!("{acc}-{w}"))
}

fn describe_scope(scope: Scope) -> String {
    let area = match scope.as_str().split(':').nth(1).unwrap_or_default() {
        "account" => "account details and balances",
        "projects" => "projects",
        "files" => "project files and code",
        "compile" => "compilation",
        "backtests" => "backtests",
        "optimizations" => "optimizations",
        "live" => "live algorithms",
        "objects" => "the object store",
        "ai" => "the AI assistant tools",
        "collaboration" => "collaborators",
        "admin" => "organization-wide settings",
        other => other,
    };
    match (scope.verb(), area) {
        ("read", area) => format!("See {area}"),
        ("write", "live algorithms") => "Deploy live algorithms".into(),
        ("write", area) => format!("Create and change {area}"),
        ("delete", area) => format!("Delete {area}"),
        (_, "compilation") => "Compile projects".into(),
        (_, "live algorithms") => "Stop, liquidate and send commands to live algorithms".into(),
        (_, area) => format!("Use {area}"),
    }
}

/// Every command, for the builder.
#[macro_export]
macro_rules! all_commands {
    () => {
        tauri::generate_handler![
            $crate::commands::app_info,
            $crate::commands::status,
            $crate::commands::accounts_list,
            $crate::commands::account_add,
            $crate::commands::account_test,
            $crate::commands::account_rename,
            $crate::commands::account_remove,
            $crate::commands::clients_list,
            $crate::commands::client_add,
            $crate::commands::client_update,
            $crate::commands::client_limits,
            $crate::commands::allowances_list,
            $crate::commands::allowance_revoke,
            $crate::commands::client_revoke,
            $crate::commands::session_end,
            $crate::commands::presets,
            $crate::commands::scopes,
            $crate::commands::approvals_list,
            $crate::commands::approval_decide,
            $crate::commands::host_icon,
            $crate::commands::audit_tail,
            $crate::commands::audit_verify,
            $crate::commands::audit_export,
            $crate::commands::pause,
            $crate::commands::resume,
            $crate::commands::settings_get,
            $crate::commands::settings_update,
            $crate::commands::keys_rotate,
            $crate::commands::autostart_get,
            $crate::commands::autostart_set,
            $crate::commands::connect_preview,
            $crate::commands::connect_apply,
            $crate::commands::connect_snippets,
            $crate::commands::client_test_connection,
        ]
    };
}
