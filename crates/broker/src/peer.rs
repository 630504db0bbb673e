//! What the operating system says about the process at the other end of the socket.

use std::path::PathBuf;

/// The peer of a connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Peer {
    pub uid: u32,
    pub pid: Option<i32>,
    /// The peer's executable, resolved by the OS (not what the peer claims).
    pub exe: Option<PathBuf>,
    /// The program that launched the peer, past shells, interpreters and launchers.
    pub host: Option<PathBuf>,
    /// This very process started the peer: the app running a client's bridge for its
    /// connection test. Nothing else can make the broker its parent.
    pub launched_by_broker: bool,
}

/// Launchers that stand between an MCP host and the bridge, and so are walked past: shells,
/// script interpreters, package runners, and macOS's `disclaimer` wrapper.
#[cfg(any(target_os = "linux", test))]
const PASS_THROUGH: &[&str] = &[
    "sh",
    "bash",
    "dash",
    "zsh",
    "fish",
    "ksh",
    "env",
    "node",
    "nodejs",
    "npm",
    "npx",
    "python",
    "python3",
    "uv",
    "uvx",
    "pipx",
    "disclaimer",
    "login",
    "sudo",
    "su",
    "nohup",
    "cmd.exe",
    "powershell.exe",
    "pwsh",
];

/// Where a walk up the process tree ends without naming an MCP host: terminals, multiplexers,
/// remote shells and service managers. A bridge started under one of these could have been
/// started by anything the user runs there, so it is not host-bound to anything.
#[cfg(any(target_os = "linux", test))]
const SESSION_ROOTS: &[&str] = &[
    "tmux",
    "tmux: server",
    "screen",
    "sshd",
    "systemd",
    "init",
    "gnome-terminal-server",
    "konsole",
    "xterm",
    "alacritty",
    "kitty",
    "wezterm-gui",
    "foot",
    "terminator",
    "tilix",
    "xfce4-terminal",
    "lxterminal",
    "Terminal",
    "iTerm2",
    "WindowsTerminal.exe",
    "conhost.exe",
    "explorer.exe",
    "launchd",
];

#[cfg(any(target_os = "linux", test))]
fn is_session_root(exe: &std::path::Path) -> bool {
    let name = exe.file_name().and_then(|n| n.to_str()).unwrap_or_default();
    SESSION_ROOTS.contains(&name)
}

#[cfg(any(target_os = "linux", test))]
fn passes_through(exe: &std::path::Path) -> bool {
    let name = exe.file_name().and_then(|n| n.to_str()).unwrap_or_default();
    // Versioned interpreters: python3.11, node20.
    let base = name.trim_end_matches(|c: char| c.is_ascii_digit() || c == '.');
    PASS_THROUGH.contains(&name) || PASS_THROUGH.contains(&base)
}

impl Peer {
    /// The SHA-256 of the program the peer runs, read from the running process itself (so a
    /// file swapped after it started does not count); `None` where the OS does not say.
    pub fn program_digest(&self) -> Option<[u8; 32]> {
        use sha2::Digest;
        let pid = self.pid?;
        let program = std::fs::read(program_file(pid)?).ok()?;
        Some(sha2::Sha256::digest(&program).into())
    }

    /// Describe the peer with process id `pid` (when the OS gave one) and user id `uid`.
    pub fn inspect(uid: u32, pid: Option<i32>) -> Self {
        let exe = pid.and_then(exe_of);
        let host = pid.and_then(host_of);
        let launched_by_broker = pid.and_then(parent_of) == Some(std::process::id() as i32);
        Self { uid, pid, exe, host, launched_by_broker }
    }
}

#[cfg(target_os = "linux")]
fn exe_of(pid: i32) -> Option<PathBuf> {
    std::fs::read_link(format!("/proc/{pid}/exe")).ok()
}

#[cfg(target_os = "linux")]
fn parent_of(pid: i32) -> Option<i32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may contain spaces and parentheses: fields start after the last ')'.
    let after = &stat[stat.rfind(')')? + 2..];
    after.split_whitespace().nth(1)?.parse().ok()
}

#[cfg(target_os = "linux")]
fn host_of(pid: i32) -> Option<PathBuf> {
    let mut current = parent_of(pid)?;
    for _ in 0..16 {
        if current <= 1 {
            return None;
        }
        let exe = exe_of(current)?;
        if is_session_root(&exe) {
            return None;
        }
        if !passes_through(&exe) {
            return Some(exe);
        }
        current = parent_of(current)?;
    }
    None
}

#[cfg(target_os = "linux")]
fn program_file(pid: i32) -> Option<PathBuf> {
    Some(PathBuf::from(format!("/proc/{pid}/exe")))
}

#[cfg(not(target_os = "linux"))]
fn program_file(_pid: i32) -> Option<PathBuf> {
    None
}

#[cfg(not(target_os = "linux"))]
fn exe_of(_pid: i32) -> Option<PathBuf> {
    None
}

#[cfg(not(target_os = "linux"))]
fn host_of(_pid: i32) -> Option<PathBuf> {
    None
}

#[cfg(not(target_os = "linux"))]
fn parent_of(_pid: i32) -> Option<i32> {
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shells_and_interpreters_are_walked_past() {
        for name in ["/bin/sh", "/usr/bin/bash", "/usr/bin/python3.11", "/usr/bin/node", "/usr/libexec/disclaimer"] {
            assert!(passes_through(std::path::Path::new(name)), "{name}");
        }
        assert!(!passes_through(std::path::Path::new("/opt/Claude/claude-desktop")));
        assert!(is_session_root(std::path::Path::new("/usr/bin/tmux")));
        assert!(is_session_root(std::path::Path::new("/usr/lib/systemd/systemd")));
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn this_process_is_seen_as_it_is() {
        let me = Peer::inspect(0, Some(std::process::id() as i32));
        assert_eq!(me.exe, std::env::current_exe().ok());
        assert!(!me.launched_by_broker, "a process is not its own child");
        let mut child = std::process::Command::new("sleep").arg("5").spawn().unwrap();
        let peer = Peer::inspect(0, Some(child.id() as i32));
        let _ = child.kill();
        let _ = child.wait();
        assert!(peer.launched_by_broker, "a program this process started is known as such");
    }
}
