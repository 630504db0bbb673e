//! The audit log: its tail, its verification, its export.

use keybridge_broker_proto::{AdminCommand, AuditExported, AuditRecordView, AuditVerified};
use tauri::State;

use super::{AppState, Reply};

#[tauri::command]
#[tracing::instrument(skip_all, err(level = "warn"))]
pub async fn audit_tail(state: State<'_, AppState>, last: usize) -> Reply<Vec<AuditRecordView>> {
    state.admin(AdminCommand::AuditTail { last, follow: false }).await
}

#[tauri::command]
#[tracing::instrument(skip_all, err(level = "warn"))]
pub async fn audit_verify(state: State<'_, AppState>) -> Reply<AuditVerified> {
    state.admin(AdminCommand::AuditVerify).await
}

/// Write the whole log, every line as written (chain fields included), to a new file in
/// `exports/` of the data folder; the export itself goes on record.
#[tauri::command]
#[tracing::instrument(skip_all, err(level = "warn"))]
pub async fn audit_export(state: State<'_, AppState>) -> Reply<String> {
    let exported: AuditExported = state.admin(AdminCommand::AuditExport).await?;
    Ok(exported.file)
}
