//! Pause and resume, settings, key rotation, start at login.

use keybridge_broker_proto::{AdminCommand, KeysRotated, PauseState, SettingsView};
use tauri::{Runtime, State};

use super::{AppState, Reply};
use crate::ipc::{AppErrorCode, UiError};

#[tauri::command]
#[tracing::instrument(skip_all, err(level = "warn"))]
pub async fn pause(state: State<'_, AppState>) -> Reply<PauseState> {
    state.admin(AdminCommand::Pause).await
}

#[tauri::command]
#[tracing::instrument(skip_all, err(level = "warn"))]
pub async fn resume(state: State<'_, AppState>) -> Reply<PauseState> {
    state.admin(AdminCommand::Resume).await
}

#[tauri::command]
#[tracing::instrument(skip_all, err(level = "warn"))]
pub async fn settings_get(state: State<'_, AppState>) -> Reply<SettingsView> {
    state.admin(AdminCommand::SettingsGet).await
}

#[tauri::command]
#[tracing::instrument(skip_all, err(level = "warn"))]
pub async fn settings_update(state: State<'_, AppState>, settings: SettingsView) -> Reply<SettingsView> {
    state.admin(AdminCommand::SettingsUpdate { settings }).await
}

#[tauri::command]
#[tracing::instrument(skip_all, err(level = "warn"))]
pub async fn keys_rotate(state: State<'_, AppState>) -> Reply<KeysRotated> {
    state.admin(AdminCommand::KeysRotate).await
}

#[tauri::command]
#[tracing::instrument(skip_all, err(level = "warn"))]
pub fn autostart_get<R: Runtime>(app: tauri::AppHandle<R>) -> Reply<bool> {
    use tauri_plugin_autostart::ManagerExt;
    app.autolaunch().is_enabled().map_err(|e| UiError::new(AppErrorCode::Autostart, e.to_string()))
}

#[tauri::command]
#[tracing::instrument(skip_all, err(level = "warn"))]
pub fn autostart_set<R: Runtime>(app: tauri::AppHandle<R>, enabled: bool) -> Reply<bool> {
    use tauri_plugin_autostart::ManagerExt;
    let launcher = app.autolaunch();
    let done = if enabled { launcher.enable() } else { launcher.disable() };
    done.map_err(|e| UiError::new(AppErrorCode::Autostart, format!("cannot change start at login: {e}")))?;
    launcher.is_enabled().map_err(|e| UiError::new(AppErrorCode::Autostart, e.to_string()))
}
