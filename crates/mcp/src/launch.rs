//! Starting the Keybridge app when no broker answers, so that an MCP client's first call after a
//! reboot works without the trader opening anything: the app starts in the tray (no window) and
//! the bridge waits for its socket.
//!
//! Only the app installed beside this bridge is started (the packages put both in one folder),
//! never a program found on PATH. Two bridges starting at once may both start it: the app is
//! single-instance, so the second copy hands over to the first and exits without a window.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// Overrides where the app is looked for; set to an empty value, no app is started.
pub const APP_ENV: &str = "KEYBRIDGE_APP";

/// What the bridge may start when nothing listens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AppLauncher {
    /// Start this app.
    Start(PathBuf),
    /// Nothing can be started; the reason, in words that end in what to run instead.
    Unavailable(String),
}

impl AppLauncher {
    /// The app beside the running bridge, or the one `KEYBRIDGE_APP` names.
    pub fn from_environment() -> Self {
        let app = match std::env::var_os(APP_ENV) {
            Some(path) if path.is_empty() => {
                return AppLauncher::Unavailable(format!("starting the app is turned off ({APP_ENV} is empty)"));
            }
            Some(path) => PathBuf::from(path),
            None => match std::env::current_exe().ok().and_then(|exe| exe.parent().map(beside)) {
                Some(app) => app,
                None => return AppLauncher::Unavailable("the bridge cannot tell where it is installed".into()),
            },
        };
        Self::for_app(app, has_display())
    }

    fn for_app(app: PathBuf, display: bool) -> Self {
        if !app.is_file() {
            return AppLauncher::Unavailable(format!(
                "the Keybridge app is not installed beside this bridge ({})",
                app.display()
            ));
        }
        if !display {
            return AppLauncher::Unavailable("there is no display to start the Keybridge app on".into());
        }
        AppLauncher::Start(app)
    }

    /// Start the app in the tray, detached: it outlives this bridge and the MCP client's process
    /// group. Its output never reaches stdout, which carries MCP.
    pub fn start(&self) -> Result<(), String> {
        let AppLauncher::Start(app) = self else { return Err("nothing to start".into()) };
        let mut command = Command::new(app);
        command.arg("--hidden").stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::null());
        #[cfg(unix)]
        {
            use std::os::unix::process::CommandExt;
            // Its own process group: a client that kills the bridge's group leaves the app.
            command.process_group(0);
        }
        let mut child = command.spawn().map_err(|e| format!("cannot start {}: {e}", app.display()))?;
        // Reap it whenever it ends, so it never lingers as a zombie of a long-lived bridge.
        std::thread::spawn(move || child.wait());
        Ok(())
    }
}

fn beside(folder: &Path) -> PathBuf {
    folder.join(format!("keybridge-app{}", std::env::consts::EXE_SUFFIX))
}

/// A graphical session the app can show its tray in.
fn has_display() -> bool {
    if cfg!(any(windows, target_os = "macos")) {
        return true;
    }
    ["DISPLAY", "WAYLAND_DISPLAY"].iter().any(|var| std::env::var_os(var).is_some_and(|v| !v.is_empty()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_app_or_display_says_why() {
        let dir = tempfile::tempdir().unwrap();
        let app = beside(dir.path());
        match AppLauncher::for_app(app.clone(), true) {
            AppLauncher::Unavailable(why) => {
                assert!(why.contains("not installed") && why.contains(&app.display().to_string()), "{why}")
            }
            other => panic!("{other:?}"),
        }
        std::fs::write(&app, b"").unwrap();
        match AppLauncher::for_app(app.clone(), false) {
            AppLauncher::Unavailable(why) => assert!(why.contains("no display"), "{why}"),
            other => panic!("{other:?}"),
        }
        assert_eq!(AppLauncher::for_app(app.clone(), true), AppLauncher::Start(app));
    }
}
