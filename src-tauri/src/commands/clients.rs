//! MCP clients: their scopes, limits and sessions, and the presets and scopes the form offers.

use keybridge_broker_proto::{
    AdminCommand, ClientAdded, ClientLimitsUpdate, ClientRevoked, ClientSpec, ClientUpdated, ClientView, SessionEnded,
};
use keybridge_host::catalog::{Preset, Scope};
use tauri::State;

use super::{AppState, Reply};
use crate::ipc::{NewClient, PresetInfo, ScopeInfo};

#[tauri::command]
#[tracing::instrument(skip_all, err(level = "warn"))]
pub async fn clients_list(state: State<'_, AppState>) -> Reply<Vec<ClientView>> {
    state.admin(AdminCommand::ClientList).await
}

#[tauri::command]
#[tracing::instrument(skip_all, err(level = "warn"))]
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
#[tracing::instrument(skip_all, err(level = "warn"))]
pub async fn client_limits(
    state: State<'_, AppState>,
    client_id: String,
    limits: ClientLimitsUpdate,
) -> Reply<ClientUpdated> {
    let update = AdminCommand::ClientUpdate { client_id, preset: None, scopes: Vec::new(), policy: None, limits };
    state.admin(update).await
}

#[tauri::command]
#[tracing::instrument(skip_all, err(level = "warn"))]
pub async fn client_update(
    state: State<'_, AppState>,
    client_id: String,
    preset: Option<String>,
    scopes: Vec<String>,
) -> Reply<ClientUpdated> {
    let preset = preset.filter(|p| !p.is_empty());
    state
        .admin(AdminCommand::ClientUpdate { client_id, preset, scopes, policy: None, limits: Default::default() })
        .await
}

#[tauri::command]
#[tracing::instrument(skip_all, err(level = "warn"))]
pub async fn client_revoke(state: State<'_, AppState>, client_id: String) -> Reply<ClientRevoked> {
    state.admin(AdminCommand::ClientRevoke { client_id }).await
}

#[tauri::command]
#[tracing::instrument(skip_all, err(level = "warn"))]
pub async fn session_end(state: State<'_, AppState>, session_id: String) -> Reply<SessionEnded> {
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
            default_policy: keybridge_host::policy::default_decision(scope).into(),
            tools: keybridge_host::catalog::tools()
                .iter()
                .filter(|t| t.scope == scope)
                .map(|t| t.name.to_string())
                .collect(),
        })
        .collect()
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
