//! The tray icon: its picture says the state (active, paused, an approval waiting) and its
//! menu opens the window, pauses or resumes all access, shows what waits, and quits.

use tauri::image::Image;
use tauri::menu::{Menu, MenuItem, PredefinedMenuItem};
use tauri::tray::{TrayIcon, TrayIconBuilder};
use tauri::{AppHandle, Emitter, Manager, Runtime};

const ACTIVE: &[u8] = include_bytes!("../../icons/tray-active.png");
const PAUSED: &[u8] = include_bytes!("../../icons/tray-paused.png");
const WAITING: &[u8] = include_bytes!("../../icons/tray-waiting.png");

/// What the tray shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TrayState {
    Active,
    Paused,
    Waiting(usize),
}

impl TrayState {
    pub fn of(paused: bool, waiting: usize) -> Self {
        match (paused, waiting) {
            (true, _) => TrayState::Paused,
            (false, 0) => TrayState::Active,
            (false, n) => TrayState::Waiting(n),
        }
    }

    pub fn tooltip(self) -> String {
        match self {
            TrayState::Active => "Keybridge: active".into(),
            TrayState::Paused => "Keybridge: all access paused".into(),
            TrayState::Waiting(1) => "Keybridge: 1 request waits for your approval".into(),
            TrayState::Waiting(n) => format!("Keybridge: {n} requests wait for your approval"),
        }
    }
}

/// The tray and the menu items whose text follows the state.
pub struct Tray<R: Runtime> {
    icon: TrayIcon<R>,
    pause: MenuItem<R>,
    approvals: MenuItem<R>,
}

/// Bring the window forward, on a view (`approvals`, `activity`, …) when given.
pub fn show_window<R: Runtime>(app: &AppHandle<R>, view: Option<&str>) {
    if let Some(window) = app.get_webview_window("main") {
        let _ = window.unminimize();
        let _ = window.show();
        let _ = window.set_focus();
    }
    if let Some(view) = view {
        let _ = app.emit("show-view", view);
    }
}

pub fn build<R: Runtime>(app: &AppHandle<R>) -> tauri::Result<Tray<R>> {
    let open = MenuItem::with_id(app, "open", "Open Keybridge", true, None::<&str>)?;
    let pause = MenuItem::with_id(app, "pause", "Pause all access", true, None::<&str>)?;
    let approvals = MenuItem::with_id(app, "approvals", "No approvals waiting", false, None::<&str>)?;
    let quit = MenuItem::with_id(app, "quit", "Quit Keybridge", true, None::<&str>)?;
    let separator = PredefinedMenuItem::separator(app)?;
    let menu = Menu::with_items(app, &[&open, &pause, &approvals, &separator, &quit])?;
    let icon = TrayIconBuilder::with_id("keybridge")
        .icon(Image::from_bytes(ACTIVE)?)
        .tooltip(TrayState::Active.tooltip())
        .menu(&menu)
        .on_menu_event(|app, event| match event.id.as_ref() {
            "open" => show_window(app, None),
            "approvals" => show_window(app, Some("approvals")),
            "pause" => crate::toggle_pause(app),
            "quit" => app.exit(0),
            _ => {}
        })
        .build(app)?;
    Ok(Tray { icon, pause, approvals })
}

impl<R: Runtime> Tray<R> {
    pub fn show(&self, state: TrayState) -> tauri::Result<()> {
        let picture = match state {
            TrayState::Active => ACTIVE,
            TrayState::Paused => PAUSED,
            TrayState::Waiting(_) => WAITING,
        };
        self.icon.set_icon(Some(Image::from_bytes(picture)?))?;
        self.icon.set_tooltip(Some(state.tooltip()))?;
        self.pause.set_text(if state == TrayState::Paused { "Resume access" } else { "Pause all access" })?;
        match state {
            TrayState::Waiting(n) => {
                self.approvals.set_text(format!("{n} waiting for approval…"))?;
                self.approvals.set_enabled(true)?;
            }
            _ => {
                self.approvals.set_text("No approvals waiting")?;
                self.approvals.set_enabled(false)?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_state_follows_pause_first_then_waiting_approvals() {
        assert_eq!(TrayState::of(false, 0), TrayState::Active);
        assert_eq!(TrayState::of(false, 2), TrayState::Waiting(2));
        assert_eq!(TrayState::of(true, 2), TrayState::Paused, "paused wins: nothing can be approved");
        assert_eq!(TrayState::Waiting(1).tooltip(), "Keybridge: 1 request waits for your approval");
    }
}
