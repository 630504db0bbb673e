//! The Tauri commands: thin glue from the window to the broker. Each one is an
//! [`AdminCommand`] or a call into `keybridge-mcp-config`; the answer is a typed view.

use std::path::PathBuf;
use std::sync::Arc;

use keybridge_broker_proto::{AdminCommand, AdminReply, ErrorCode, StatusView};
use keybridge_host::Broker;
use tauri::State;

use crate::ipc::{AppErrorCode, AppInfo, UiError};

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
    pub(crate) fn broker(&self) -> Result<&Arc<Broker>, UiError> {
        self.broker.as_ref().ok_or_else(|| {
            UiError::new(
                AppErrorCode::NotRunning,
                self.problem.clone().unwrap_or_else(|| "the broker is not running".into()),
            )
        })
    }

    /// Run `command` and take the view it answers with.
    pub(crate) async fn admin<T: TryFrom<AdminReply, Error = AdminReply>>(
        &self,
        command: AdminCommand,
    ) -> Result<T, UiError> {
        let reply = self.broker()?.admin(command).await?;
        // The reply is not shown: a new client's key is in one.
        T::try_from(reply).map_err(|_| {
            UiError::new(ErrorCode::Internal, "the broker answered with another kind of reply".to_string())
        })
    }
}

pub(crate) type Reply<T> = Result<T, UiError>;

pub mod accounts;
pub mod approvals;
pub mod audit;
pub mod clients;
pub mod connect;
pub mod control;

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
#[tracing::instrument(skip_all, err(level = "warn"))]
pub async fn status(state: State<'_, AppState>) -> Reply<StatusView> {
    state.admin(AdminCommand::Status).await
}

/// Every command, for the builder.
#[macro_export]
macro_rules! all_commands {
    () => {
        tauri::generate_handler![
            $crate::commands::app_info,
            $crate::commands::status,
            $crate::commands::accounts::accounts_list,
            $crate::commands::accounts::account_add,
            $crate::commands::accounts::account_test,
            $crate::commands::accounts::account_rename,
            $crate::commands::accounts::account_remove,
            $crate::commands::clients::clients_list,
            $crate::commands::clients::client_add,
            $crate::commands::clients::client_update,
            $crate::commands::clients::client_limits,
            $crate::commands::approvals::allowances_list,
            $crate::commands::approvals::allowance_revoke,
            $crate::commands::clients::client_revoke,
            $crate::commands::clients::session_end,
            $crate::commands::clients::presets,
            $crate::commands::clients::scopes,
            $crate::commands::approvals::approvals_list,
            $crate::commands::approvals::approval_decide,
            $crate::commands::approvals::host_icon,
            $crate::commands::audit::audit_tail,
            $crate::commands::audit::audit_verify,
            $crate::commands::audit::audit_export,
            $crate::commands::control::pause,
            $crate::commands::control::resume,
            $crate::commands::control::settings_get,
            $crate::commands::control::settings_update,
            $crate::commands::control::keys_rotate,
            $crate::commands::control::autostart_get,
            $crate::commands::control::autostart_set,
            $crate::commands::connect::connect_preview,
            $crate::commands::connect::connect_apply,
            $crate::commands::connect::connect_snippets,
            $crate::commands::connect::client_test_connection,
        ]
    };
}
