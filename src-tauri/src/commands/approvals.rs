//! Questions waiting for the human, standing allowances, and the asking program's icon.

use keybridge_broker_proto::{
    AdminCommand, AllowanceRevoked, AllowanceView, ApprovalDecided, ApprovalDecision, ApprovalView, ErrorCode,
};
use tauri::State;

use super::{AppState, Reply};
use crate::ipc::UiError;

#[tauri::command]
#[tracing::instrument(skip_all, err(level = "warn"))]
pub async fn approvals_list(state: State<'_, AppState>) -> Reply<Vec<ApprovalView>> {
    state.admin(AdminCommand::ApprovalsList).await
}

#[tauri::command]
#[tracing::instrument(skip_all, err(level = "warn"))]
pub async fn allowances_list(state: State<'_, AppState>) -> Reply<Vec<AllowanceView>> {
    state.admin(AdminCommand::AllowancesList).await
}

#[tauri::command]
#[tracing::instrument(skip_all, err(level = "warn"))]
pub async fn allowance_revoke(state: State<'_, AppState>, session_id: String, tool: String) -> Reply<AllowanceRevoked> {
    state.admin(AdminCommand::AllowanceRevoke { session_id, tool }).await
}

/// `decision`: `approve`, `deny`, or `allow_for` with `minutes`.
#[tauri::command]
#[tracing::instrument(skip_all, err(level = "warn"))]
pub async fn approval_decide(
    state: State<'_, AppState>,
    approval_id: String,
    decision: String,
    minutes: Option<u32>,
) -> Reply<ApprovalDecided> {
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
