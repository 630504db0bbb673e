//! QuantConnect accounts: list, add (checked first), test, rename, remove.

use keybridge_broker_proto::{AccountRemoved, AccountTested, AccountView, AdminCommand};
use tauri::State;

use super::{AppState, Reply};
use crate::ipc::NewAccount;

#[tauri::command]
#[tracing::instrument(skip_all, err(level = "warn"))]
pub async fn accounts_list(state: State<'_, AppState>) -> Reply<Vec<AccountView>> {
    state.admin(AdminCommand::AccountList).await
}

/// Checked against QuantConnect before anything is saved; the token goes to the keychain only.
#[tauri::command]
#[tracing::instrument(skip_all, err(level = "warn"))]
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
#[tracing::instrument(skip_all, err(level = "warn"))]
pub async fn account_test(state: State<'_, AppState>, name: String) -> Reply<AccountTested> {
    state.admin(AdminCommand::AccountTest { name }).await
}

#[tauri::command]
#[tracing::instrument(skip_all, err(level = "warn"))]
pub async fn account_rename(state: State<'_, AppState>, name: String, new_name: String) -> Reply<AccountView> {
    state.admin(AdminCommand::AccountRename { name, new_name: new_name.trim().to_string() }).await
}

#[tauri::command]
#[tracing::instrument(skip_all, err(level = "warn"))]
pub async fn account_remove(state: State<'_, AppState>, name: String) -> Reply<AccountRemoved> {
    state.admin(AdminCommand::AccountRemove { name }).await
}
