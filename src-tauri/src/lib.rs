//! The Keybridge desktop app: the same broker `keybridge serve` runs, hosted in-process, with a
//! tray that shows its state and a window for accounts, clients, approvals, activity and
//! settings.
//!
//! Commands are thin glue over the broker ([`commands`]); the window's types are generated from
//! the Rust ones ([`ipc`] and the broker's views). The app must never hand the window a
//! QuantConnect token: the token crosses once, from the account form into the keychain.

pub mod alerts;
#[cfg(test)]
mod bindings;
#[cfg(test)]
mod command_tests;
pub mod commands;
mod host_icon;
pub mod ipc;
mod notify;
mod tray;

use std::sync::Arc;
use std::time::Duration;

use keybridge_broker_proto::{AdminCommand, AdminReply, AuditRecordView, BrokerEvent};
use keybridge_host::Broker;
use keybridge_host::{Host, HostError, HostOptions};
use tauri::{AppHandle, Emitter, Manager, Runtime};
use tokio::sync::oneshot;

use commands::AppState;
pub use tray::TrayState;

/// How the app was started.
#[derive(Debug, Clone, Default)]
pub struct LaunchOptions {
    /// The built-in QuantConnect simulator with a demo account.
    pub demo: bool,
    /// Started at login: stay in the tray until opened.
    pub hidden: bool,
}

impl LaunchOptions {
    pub fn from_args(args: impl IntoIterator<Item = String>) -> Self {
        let mut options = LaunchOptions::default();
        for arg in args {
            match arg.as_str() {
                "--demo" => options.demo = true,
                "--hidden" => options.hidden = true,
                _ => {}
            }
        }
        options.demo |= std::env::var("KEYBRIDGE_DEMO").is_ok_and(|v| v == "1");
        options
    }
}

/// Stops the hosted broker when the app exits.
struct Shutdown {
    stop: std::sync::Mutex<Option<oneshot::Sender<()>>>,
    done: std::sync::Mutex<Option<tauri::async_runtime::JoinHandle<()>>>,
}

/// Start the broker, or say why not. Another broker of this user (the headless one) is not
/// fought: the window explains it.
fn host_broker(options: &LaunchOptions) -> (AppState, Option<Host>) {
    let started = tauri::async_runtime::block_on(Host::start(HostOptions {
        demo: options.demo,
        demo_key_client: false,
        connection_tests: true,
        accept_restored_state: false,
    }));
    let bridge = keybridge_host::shipped_bridge().map(|p| std::fs::canonicalize(&p).unwrap_or(p)).unwrap_or_default();
    let claude_desktop_config = keybridge_mcp_config::claude_desktop_config_here();
    match started {
        Ok(host) => {
            let state = AppState {
                broker: Some(host.broker().clone()),
                problem: None,
                demo: options.demo,
                socket: host.socket_path().to_path_buf(),
                quantconnect: host.base_url().to_string(),
                data_dir: host.data_dir().to_path_buf(),
                bridge,
                claude_desktop_config,
            };
            (state, Some(host))
        }
        Err(e) => {
            let problem = match &e {
                HostError::AlreadyRunning(_) => format!(
                    "{e}. The headless broker (`keybridge serve`) keeps working; stop it (Ctrl-C in its terminal, or its service) and open Keybridge again to manage it here."
                ),
                _ => e.to_string(),
            };
            tracing::error!("{problem}");
            let state = AppState {
                broker: None,
                problem: Some(problem),
                demo: options.demo,
                socket: keybridge_host::default_address(),
                quantconnect: String::new(),
                data_dir: keybridge_host::default_data_dir(),
                bridge,
                claude_desktop_config,
            };
            (state, None)
        }
    }
}

/// Pause or resume all access, from the tray.
pub(crate) fn toggle_pause<R: Runtime>(app: &AppHandle<R>) {
    let Some(broker) = app.state::<AppState>().broker.clone() else { return };
    tauri::async_runtime::spawn(async move {
        let command = if broker.is_paused() { AdminCommand::Resume } else { AdminCommand::Pause };
        if let Err(e) = broker.admin(command).await {
            tracing::error!("cannot change the pause: {e}");
        }
    });
}

async fn refresh_tray<R: Runtime>(app: &AppHandle<R>, broker: &Broker) {
    let waiting = match broker.admin(AdminCommand::ApprovalsList).await {
        Ok(AdminReply::Approvals(list)) => list.len(),
        _ => 0,
    };
    if let Some(tray) = app.try_state::<tray::Tray<R>>()
        && let Err(e) = tray.show(TrayState::of(broker.is_paused(), waiting))
    {
        tracing::warn!("cannot update the tray: {e}");
    }
}

/// Pass the broker's records and events to the window as `broker-event`, and keep the tray,
/// notifications and the window's place in step with them.
pub fn forward_events<R: Runtime>(app: AppHandle<R>, broker: Arc<Broker>) {
    use tokio::sync::broadcast::error::RecvError;
    let mut records = broker.audit_log().subscribe();
    let mut events = broker.subscribe_events();
    let mut refusals = alerts::RefusalBurst::default();
    tauri::async_runtime::spawn(async move {
        loop {
            let event = tokio::select! {
                record = records.recv() => match record {
                    Ok(record) => serde_json::to_value(&*record)
                        .and_then(serde_json::from_value::<AuditRecordView>)
                        .map(|record| BrokerEvent::Audit { record }),
                    Err(RecvError::Lagged(missed)) => Ok(BrokerEvent::Lagged { missed }),
                    Err(RecvError::Closed) => break,
                },
                event = events.recv() => match event {
                    Ok(event) => Ok(event),
                    Err(RecvError::Lagged(missed)) => Ok(BrokerEvent::Lagged { missed }),
                    Err(RecvError::Closed) => break,
                },
            };
            let event = match event {
                Ok(event) => event,
                Err(e) => {
                    tracing::warn!("an event the window does not know: {e}");
                    continue;
                }
            };
            let _ = app.emit("broker-event", &event);
            match &event {
                BrokerEvent::ApprovalOpened { approval } => {
                    notify::request(&app, &broker, approval);
                    // The window picks the view: the first-run guide shows its own client's
                    // first connection itself; anything else opens Approvals.
                    tray::show_window(&app, None);
                    refresh_tray(&app, &broker).await;
                }
                BrokerEvent::ApprovalClosed { id } => {
                    notify::request_closed(&app, id);
                    refresh_tray(&app, &broker).await;
                }
                BrokerEvent::Paused { .. } => refresh_tray(&app, &broker).await,
                BrokerEvent::Audit { record }
                    if record.event["kind"] == "authentication" && record.event["ok"] == false =>
                {
                    if let Some(count) = refusals.refused(std::time::Instant::now()) {
                        notify::refusals(&app, count);
                    }
                }
                _ => {}
            }
        }
    });
}

/// Build and run the app until it quits.
pub fn run(options: LaunchOptions) -> anyhow::Result<()> {
    use anyhow::Context;
    let builder = tauri::Builder::default()
        // First: a second launch focuses this one and exits before it touches anything.
        // A second launch in the tray (a bridge starting the app while it starts) stays there.
        .plugin(tauri_plugin_single_instance::init(|app, args, _cwd| {
            if !args.iter().any(|arg| arg == "--hidden") {
                tray::show_window(app, None);
            }
        }))
        .plugin(tauri_plugin_notification::init())
        .plugin(tauri_plugin_autostart::init(
            tauri_plugin_autostart::MacosLauncher::LaunchAgent,
            Some(vec!["--hidden"]),
        ))
        .invoke_handler(all_commands!())
        .setup(move |app| {
            let (state, host) = host_broker(&options);
            let broker = state.broker.clone();
            app.manage(state);
            notify::manage(app.handle());
            let (stop, stopped) = oneshot::channel::<()>();
            let done = host.map(|host| {
                tauri::async_runtime::spawn(async move {
                    if let Err(e) = host.serve(async { stopped.await.unwrap_or(()) }).await {
                        tracing::error!("the broker stopped badly: {e}");
                    }
                })
            });
            app.manage(Shutdown { stop: std::sync::Mutex::new(Some(stop)), done: std::sync::Mutex::new(done) });
            let tray = tray::build(app.handle())?;
            app.manage(tray);
            if let Some(broker) = broker {
                forward_events(app.handle().clone(), broker.clone());
                let handle = app.handle().clone();
                tauri::async_runtime::spawn(async move { refresh_tray(&handle, &broker).await });
            }
            // The window is made only now, with the broker's state in place: a window from the
            // config would load before `setup` and its first commands would find no state.
            let config = app.config().app.windows.iter().find(|w| w.label == "main").cloned();
            let config = config.ok_or("tauri.conf.json has no `main` window")?;
            tauri::WebviewWindowBuilder::from_config(app.handle(), &config)?.visible(!options.hidden).build()?;
            Ok(())
        })
        .on_window_event(|window, event| {
            // Closing the window keeps the broker running in the tray; Quit is in the tray menu.
            if let tauri::WindowEvent::CloseRequested { api, .. } = event {
                api.prevent_close();
                let _ = window.hide();
            }
        });
    let app = builder.build(tauri::generate_context!()).context("cannot start the Keybridge window")?;
    app.run(|app, event| {
        if let tauri::RunEvent::Exit = event {
            let shutdown = app.state::<Shutdown>();
            if let Some(stop) = shutdown.stop.lock().unwrap_or_else(|e| e.into_inner()).take() {
                let _ = stop.send(());
            }
            if let Some(done) = shutdown.done.lock().unwrap_or_else(|e| e.into_inner()).take() {
                // The last audit record is written before the process ends.
                let _ =
                    tauri::async_runtime::block_on(async { tokio::time::timeout(Duration::from_secs(3), done).await });
            }
        }
    });
    Ok(())
}
