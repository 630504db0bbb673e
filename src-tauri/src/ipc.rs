//! The window's side of the app: what Tauri commands take and give beyond the broker's own
//! views (which live in `keybridge-broker-proto`). The window's TypeScript types are generated
//! from these and the broker's views (`ui/src/bindings.ts`, checked by a test).

use keybridge_broker_proto::{ErrorCode, PolicyDecision};
use serde::{Deserialize, Serialize};

#[cfg(test)]
use ts_rs::TS;

/// Every command error, as the window shows it: a stable code and plain words. Never a stack
/// trace, never a secret.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(test, derive(TS))]
pub struct UiError {
    pub code: UiErrorCode,
    pub message: String,
}

/// What kind of failure: the broker's own codes as it spells them on its wire, or one of the
/// app's. One string either way (`"missing_scope"`, `"not_running"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(TS))]
#[serde(untagged)]
pub enum UiErrorCode {
    Broker(ErrorCode),
    App(AppErrorCode),
}

/// Failures of the app itself, not of the broker.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(TS))]
#[serde(rename_all = "snake_case")]
pub enum AppErrorCode {
    /// This window has no broker (another one runs, or it could not start).
    NotRunning,
    /// An MCP client's config file could not be planned or written.
    Config,
    /// Start at login could not be read or changed.
    Autostart,
}

impl From<ErrorCode> for UiErrorCode {
    fn from(code: ErrorCode) -> Self {
        Self::Broker(code)
    }
}

impl From<AppErrorCode> for UiErrorCode {
    fn from(code: AppErrorCode) -> Self {
        Self::App(code)
    }
}

impl std::fmt::Display for UiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl UiError {
    pub fn new(code: impl Into<UiErrorCode>, message: impl Into<String>) -> Self {
        Self { code: code.into(), message: message.into() }
    }
}

impl From<keybridge_host::BrokerError> for UiError {
    fn from(e: keybridge_host::BrokerError) -> Self {
        let info = e.info();
        Self::new(info.code, info.message)
    }
}

impl From<keybridge_mcp_config::ConfigError> for UiError {
    fn from(e: keybridge_mcp_config::ConfigError) -> Self {
        Self::new(AppErrorCode::Config, e.to_string())
    }
}

/// What the window needs first: is the broker ours, and what it runs against.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(test, derive(TS))]
pub struct AppInfo {
    pub version: String,
    /// The built-in simulator stands in for QuantConnect.
    pub demo: bool,
    /// Why this window has no broker (another one runs, the keychain is locked…); `null` when
    /// the broker runs in this app.
    pub problem: Option<String>,
    pub data_dir: String,
    pub socket: String,
    pub quantconnect: String,
    /// The `keybridge-mcp` MCP clients launch.
    pub bridge: String,
}

/// A preset as the client form offers it, in plain words.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(test, derive(TS))]
pub struct PresetInfo {
    pub name: String,
    pub title: String,
    pub description: String,
    pub scopes: Vec<String>,
}

/// A scope with what it allows and its built-in policy.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(test, derive(TS))]
pub struct ScopeInfo {
    pub name: String,
    pub description: String,
    pub default_policy: PolicyDecision,
    pub tools: Vec<String>,
}

/// A new account from the form. The token crosses once, into the keychain.
#[derive(Clone, Deserialize)]
#[cfg_attr(test, derive(TS, Serialize))]
pub struct NewAccount {
    pub name: String,
    pub user_id: String,
    pub organization_id: Option<String>,
    #[cfg_attr(test, ts(type = "string"))]
    pub api_token: keybridge_broker_proto::Credential,
}

impl std::fmt::Debug for NewAccount {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewAccount").field("name", &self.name).field("user_id", &self.user_id).finish_non_exhaustive()
    }
}

/// A new client from the form.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(test, derive(TS))]
pub struct NewClient {
    pub name: String,
    pub account: String,
    pub preset: Option<String>,
    pub scopes: Vec<String>,
    /// A client key instead of host-bound pairing (for hosts whose launcher can't be checked).
    pub with_key: bool,
}

/// What connecting Claude Desktop would change, shown before anything is written.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(test, derive(TS))]
pub struct ConnectPreview {
    pub app: String,
    pub path: String,
    pub file_exists: bool,
    /// `added`, `replaced` or `unchanged`.
    pub change: String,
    pub previous_entry: Option<String>,
    pub entry: String,
    pub server_name: String,
    /// Servers already in the file; they stay as they are.
    pub other_servers: Vec<String>,
    /// SHA-256 of the file as previewed: the write is refused if it changed since.
    pub file_digest: Option<String>,
}

/// What connecting did.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(test, derive(TS))]
pub struct ConnectDone {
    pub path: String,
    pub backup: Option<String>,
    pub change: String,
    /// How to make the client load the server.
    pub next_step: String,
}

/// Copyable set-up for the clients Keybridge does not edit itself.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(test, derive(TS))]
pub struct Snippets {
    pub claude_code: String,
    pub cursor: String,
    pub vscode: String,
}

/// What a client's MCP server gave when the app ran it exactly as the MCP client's config says.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(test, derive(TS))]
pub struct ConnectionTest {
    /// The bridge answered and listed its tools.
    pub ok: bool,
    /// The command line that was run, as the MCP client will run it.
    pub command: String,
    /// The MCP protocol version the bridge agreed to.
    pub protocol_version: Option<String>,
    /// The bridge's name and version, as it reports them to MCP clients.
    pub server: Option<String>,
    /// The tools the MCP client will see.
    pub tools: Vec<String>,
    /// Plain words: what worked, or what failed and what to do.
    pub message: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_error_code_crosses_to_the_window_as_one_string() {
        let broker = UiError::new(ErrorCode::MissingScope, "m");
        assert_eq!(
            serde_json::to_value(&broker).unwrap(),
            serde_json::json!({"code": "missing_scope", "message": "m"})
        );
        let app = UiError::new(AppErrorCode::NotRunning, "m");
        assert_eq!(serde_json::to_value(&app).unwrap(), serde_json::json!({"code": "not_running", "message": "m"}));
        for code in ["missing_scope", "not_running", "config", "autostart", "internal"] {
            let back: UiError = serde_json::from_value(serde_json::json!({"code": code, "message": ""})).unwrap();
            assert_eq!(serde_json::to_value(back.code).unwrap(), code);
        }
    }
}
