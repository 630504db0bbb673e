//! Desktop notifications: a request that waits for the human, and a burst of refused
//! connections. On desktops that speak the freedesktop notification protocol (Linux and the
//! BSDs) a request's notification carries its answers: Deny always, the action itself unless it
//! trades live money (that needs the window, where what it will do is shown in full), and a
//! click opens the window. The notification goes away once the request is answered or expires.
//! Elsewhere the notification only tells; the answers are in the window and the tray.
//!
//! An answer given here takes the same path as one given in the window, and is audited the same.

use std::sync::Arc;

use keybridge_broker_proto::{ApprovalKind, ApprovalView};
use tauri::{AppHandle, Runtime};

/// What a request's notification says: its title, and the word on its approve action.
fn title_of(approval: &ApprovalView) -> String {
    match approval.kind {
        ApprovalKind::Pairing => format!("{} wants to connect", approval.client_name),
        _ => format!("{} asks to run {}", approval.client_name, approval.tool.as_deref().unwrap_or("a tool")),
    }
}

#[cfg(all(unix, not(target_os = "macos")))]
mod xdg {
    use std::collections::HashMap;
    use std::sync::{Arc, Mutex};

    use keybridge_broker_proto::{AdminCommand, ApprovalDecision, ApprovalKind, ApprovalView};
    use keybridge_host::Broker;
    use notify_rust::{Notification, NotificationHandle};
    use tauri::{AppHandle, Manager, Runtime};

    /// Whether the notification may approve: never a live-trading request.
    pub(super) fn may_approve_here(approval: &ApprovalView) -> bool {
        !approval.scope.as_deref().is_some_and(|scope| scope.starts_with("qc:live:"))
    }

    /// The notifications shown for open requests, by request id, so each can be withdrawn:
    /// the app's managed state.
    #[derive(Default, Clone)]
    pub struct Shown(Arc<Mutex<HashMap<String, Arc<NotificationHandle>>>>);

    impl Shown {
        fn of<R: Runtime>(app: &AppHandle<R>) -> Shown {
            app.try_state::<Shown>().map(|shown| shown.inner().clone()).unwrap_or_default()
        }

        fn map(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<NotificationHandle>>> {
            // A panic elsewhere while holding it leaves a map that is still whole.
            self.0.lock().unwrap_or_else(|e| e.into_inner())
        }
    }

    pub fn request<R: Runtime>(app: &AppHandle<R>, broker: &Arc<Broker>, approval: &ApprovalView) {
        let mut notification = Notification::new();
        notification
            .appname("Keybridge")
            .summary(&super::title_of(approval))
            .body(&approval.summary)
            .action("default", "Open Keybridge")
            .action("deny", "Deny");
        if may_approve_here(approval) {
            let verb = match approval.kind {
                ApprovalKind::Pairing => "Allow connection",
                _ => "Approve",
            };
            notification.action("approve", verb);
        }
        let (app, broker, id, shown) = (app.clone(), broker.clone(), approval.id.clone(), Shown::of(app));
        tauri::async_runtime::spawn(async move {
            let handle = match notification.show_async().await {
                Ok(handle) => Arc::new(handle),
                // A desktop without a notification service still has the window and the tray.
                Err(e) => return tracing::debug!("no desktop notification: {e}"),
            };
            shown.map().insert(id.clone(), handle.clone());
            let mut chosen = None;
            handle
                .wait_for_action_async(|response| {
                    if let notify_rust::ActionResponse::Custom(action) = response {
                        chosen = Some(action.to_string());
                    }
                })
                .await;
            shown.map().remove(&id);
            // Answered here: the notification has done its work, whatever the desktop does next.
            if chosen.is_some() {
                handle.close_async().await;
            }
            let decision = match chosen.as_deref() {
                Some("deny") => ApprovalDecision::Deny,
                Some("approve") => ApprovalDecision::Approve,
                Some("default") => return crate::tray::show_window(&app, None),
                _ => return,
            };
            // Answered meanwhile in the window, or expired: the broker says so; nothing to do.
            if let Err(e) = broker.admin(AdminCommand::ApprovalDecide { approval_id: id, decision }).await {
                tracing::info!("an answer from a notification was not taken: {e}");
            }
        });
    }

    /// The request was answered or expired: its notification goes.
    pub fn withdraw<R: Runtime>(app: &AppHandle<R>, approval_id: &str) {
        let handle = Shown::of(app).map().remove(approval_id);
        if let Some(handle) = handle {
            tauri::async_runtime::spawn(async move { handle.close_async().await });
        }
    }
}

/// Tell the desktop that a request waits.
pub fn request<R: Runtime>(app: &AppHandle<R>, broker: &Arc<keybridge_host::Broker>, approval: &ApprovalView) {
    #[cfg(all(unix, not(target_os = "macos")))]
    xdg::request(app, broker, approval);
    #[cfg(not(all(unix, not(target_os = "macos"))))]
    {
        use tauri_plugin_notification::NotificationExt;
        let _ = broker;
        if let Err(e) = app.notification().builder().title(title_of(approval)).body(&approval.summary).show() {
            tracing::debug!("no desktop notification: {e}");
        }
    }
}

/// A request is no longer open: withdraw its notification where the desktop allows.
pub fn request_closed<R: Runtime>(app: &AppHandle<R>, approval_id: &str) {
    #[cfg(all(unix, not(target_os = "macos")))]
    xdg::withdraw(app, approval_id);
    #[cfg(not(all(unix, not(target_os = "macos"))))]
    let _ = (app, approval_id);
}

/// Keep on `app` what the notifications need while it runs: those shown, to withdraw them.
pub fn manage<R: Runtime>(app: &AppHandle<R>) {
    #[cfg(all(unix, not(target_os = "macos")))]
    {
        use tauri::Manager;
        app.manage(xdg::Shown::default());
    }
    #[cfg(not(all(unix, not(target_os = "macos"))))]
    let _ = app;
}

/// Connections refused in a burst: someone may be trying keys.
pub fn refusals<R: Runtime>(app: &AppHandle<R>, count: usize) {
    use tauri_plugin_notification::NotificationExt;
    let title = format!("Keybridge refused {count} connections in the last minute");
    let body = "A program may be trying a wrong key or a client that does not exist. Clients shows who and why.";
    if let Err(e) = app.notification().builder().title(title).body(body).show() {
        tracing::debug!("no desktop notification: {e}");
    }
}

#[cfg(all(test, unix, not(target_os = "macos")))]
mod tests {
    use super::xdg::may_approve_here;
    use super::*;

    fn approval(scope: Option<&str>) -> ApprovalView {
        serde_json::from_value(serde_json::json!({
            "id": "a1", "kind": "tool_call", "client_id": "c", "client_name": "Claude", "session_id": null,
            "account": "main", "tool": "delete_project", "scope": scope, "summary": "s", "arguments": {},
            "arguments_digest": "d", "created": 0, "expires": 1
        }))
        .unwrap()
    }

    #[test]
    fn a_notification_never_approves_live_trading() {
        assert!(may_approve_here(&approval(Some("qc:projects:delete"))));
        assert!(!may_approve_here(&approval(Some("qc:live:write"))));
        assert!(!may_approve_here(&approval(Some("qc:live:execute"))));
        assert_eq!(title_of(&approval(None)), "Claude asks to run delete_project");
    }
}
