//! What the operating system says about the process at the other end of the socket.

use std::path::{Path, PathBuf};

/// The program that started the bridge, as the human knows it: a native program (Claude
/// Desktop, Cursor), or an interpreter running a script (Claude Code is `node` running its
/// `cli.js`; a Python agent is `python3` running its script). Each is approved on its own: a
/// different script under the same interpreter is another host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Host {
    /// The executable, resolved by the OS.
    pub program: PathBuf,
    /// The script the interpreter runs, resolved to a full path (or `-m module` for Python).
    pub script: Option<String>,
}

impl Host {
    /// What an approved pairing remembers.
    pub fn key(&self) -> String {
        match &self.script {
            None => self.program.display().to_string(),
            Some(script) => format!("{} {script}", self.program.display()),
        }
    }

    /// The host in plain words: "Claude Code (node …/claude-code/cli.js)", or its path.
    pub fn describe(&self) -> String {
        describe_host(&self.key())
    }
}

/// A remembered host (a [`Host::key`]) in plain words, with the name the trader knows it by
/// where Keybridge recognizes it.
pub fn describe_host(key: &str) -> String {
    let short = shorten(key);
    match known_host_name(key) {
        Some(name) => format!("{name} ({short})"),
        None => short,
    }
}

/// The MCP hosts traders use, recognized by their installed paths.
pub fn known_host_name(key: &str) -> Option<&'static str> {
    let lower = key.to_ascii_lowercase().replace('\\', "/");
    let program = lower.split(' ').next().unwrap_or_default();
    let file = program.rsplit('/').next().unwrap_or_default().trim_end_matches(".exe");
    if lower.contains("claude-code/") || lower.contains("/claude/versions/") || lower.contains("/.claude/local/") {
        Some("Claude Code")
    } else if matches!(file, "claude" | "claude-desktop") || lower.contains("/claude.app/") {
        Some("Claude Desktop")
    } else if file == "cursor" {
        Some("Cursor")
    } else if matches!(file, "code" | "code-insiders" | "codium") {
        Some("VS Code")
    } else if file == "windsurf" {
        Some("Windsurf")
    } else {
        None
    }
}

/// A long path kept readable: the program's file name and the script's last two parts.
fn shorten(key: &str) -> String {
    let Some((program, script)) = key.split_once(' ').filter(|(p, _)| is_interpreter(Path::new(p))) else {
        return key.to_string();
    };
    let program = Path::new(program).file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let parts: Vec<&str> = script.split(['/', '\\']).filter(|p| !p.is_empty()).collect();
    let script = if parts.len() > 2 && !script.starts_with('-') {
        format!("…/{}", parts[parts.len() - 2..].join("/"))
    } else {
        script.to_string()
    };
    format!("{program} {script}")
}

/// The peer of a connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Peer {
    pub uid: u32,
    pub pid: Option<i32>,
    /// The peer's executable, resolved by the OS (not what the peer claims).
    pub exe: Option<PathBuf>,
    /// The program that launched the peer, past shells and launchers.
    pub host: Option<Host>,
    /// This very process started the peer: the app running a client's bridge for its
    /// connection test. Nothing else can make the broker its parent.
    pub launched_by_broker: bool,
}

/// Script interpreters: one running a script is the host (with its script); one running no
/// script (`python3 -c …`, an interactive prompt) is walked past like a shell.
const INTERPRETERS: &[&str] = &["node", "nodejs", "python", "python3", "pythonw", "bun", "deno"];

/// Launchers that stand between an MCP host and the bridge, and so are walked past: shells,
/// package runners, and macOS's `disclaimer` wrapper. Names are compared in lower case, without
/// `.exe`.
const PASS_THROUGH: &[&str] = &[
    "sh",
    "bash",
    "dash",
    "zsh",
    "fish",
    "ksh",
    "env",
    "npm",
    "npx",
    "uv",
    "uvx",
    "pipx",
    "py",
    "disclaimer",
    "login",
    "sudo",
    "su",
    "nohup",
    "cmd",
    "powershell",
    "pwsh",
];

/// Where a walk up the process tree ends without naming an MCP host: terminals, multiplexers,
/// remote shells, desktop shells and service managers. A bridge started under one of these could
/// have been started by anything the user runs there, so it is not host-bound to anything.
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
    "terminal",
    "iterm2",
    "launchd",
    "windowsterminal",
    "openconsole",
    "conhost",
    "explorer",
    "services",
    "svchost",
    "wininit",
    "winlogon",
];

/// A program's name as the lists above spell it: lower case, without `.exe`.
fn program_name(exe: &Path) -> String {
    // Split by hand: a Windows path must read the same wherever its name is checked.
    let path = exe.to_string_lossy().to_lowercase();
    let name = path.rsplit(['/', '\\']).next().unwrap_or_default();
    name.strip_suffix(".exe").unwrap_or(name).to_string()
}

fn is_interpreter(exe: &Path) -> bool {
    let name = program_name(exe);
    // Versioned interpreters: python3.11, node20.
    let base = name.trim_end_matches(|c: char| c.is_ascii_digit() || c == '.');
    INTERPRETERS.contains(&name.as_str()) || INTERPRETERS.contains(&base)
}

fn is_session_root(exe: &Path) -> bool {
    SESSION_ROOTS.contains(&program_name(exe).as_str())
}

fn passes_through(exe: &Path) -> bool {
    PASS_THROUGH.contains(&program_name(exe).as_str())
}

/// What the OS says about other processes: enough to walk from a peer up to its host.
trait ProcessTable {
    /// The process that started `pid`, if it still runs (not a later process with its id).
    fn parent(&self, pid: u32) -> Option<u32>;
    /// The program `pid` runs, resolved by the OS.
    fn program(&self, pid: u32) -> Option<PathBuf>;
    /// The script an interpreter process runs, where the OS shows its arguments.
    fn script(&self, pid: u32) -> Option<String>;
}

/// The same rules on every OS: past shells and launchers, up to the first program that is
/// neither (a native host), or an interpreter running a script (a script host); nothing when the
/// walk reaches a terminal, a desktop shell or a service manager first.
fn walk_to_host(table: &impl ProcessTable, pid: u32) -> Option<Host> {
    let mut current = table.parent(pid)?;
    for _ in 0..16 {
        if current <= 1 {
            return None;
        }
        let exe = table.program(current)?;
        if is_session_root(&exe) {
            return None;
        }
        if is_interpreter(&exe) {
            if let Some(script) = table.script(current) {
                return Some(Host { program: exe, script: Some(script) });
            }
        } else if !passes_through(&exe) {
            return Some(Host { program: exe, script: None });
        }
        current = table.parent(current)?;
    }
    None
}

#[cfg(any(target_os = "linux", test))]
/// The script an interpreter runs, from its arguments (`argv[0]` first): the first argument
/// that is not an option, or Python's `-m module`. `None` for code given inline or no script.
fn script_argument(args: &[String]) -> Option<String> {
    // Options that take the next argument as their value.
    const WITH_VALUE: &[&str] = &["-W", "-X", "-r", "--require", "--import", "--loader", "--experimental-loader"];
    let mut rest = args.iter().skip(1);
    while let Some(arg) = rest.next() {
        match arg.as_str() {
            "-c" | "-e" | "--eval" | "-p" | "--print" | "-" => return None,
            "-m" => return rest.next().map(|module| format!("-m {module}")),
            "--" => return rest.next().cloned(),
            a if WITH_VALUE.contains(&a) => {
                rest.next();
            }
            a if a.starts_with('-') => {}
            script => return Some(script.to_string()),
        }
    }
    None
}

impl Peer {
    /// The SHA-256 of the program the peer runs, read from the running process itself (so a
    /// file swapped after it started does not count); `None` where the OS does not say.
    pub fn program_digest(&self) -> Option<[u8; 32]> {
        use sha2::Digest;
        let pid = u32::try_from(self.pid?).ok()?;
        let program = std::fs::read(program_file(pid)?).ok()?;
        Some(sha2::Sha256::digest(&program).into())
    }

    /// Describe the peer with process id `pid` (when the OS gave one) and user id `uid`.
    pub fn inspect(uid: u32, pid: Option<i32>) -> Self {
        let os_pid = pid.and_then(|pid| u32::try_from(pid).ok());
        let exe = os_pid.and_then(|pid| Os.program(pid));
        let host = os_pid.and_then(|pid| walk_to_host(&Os, pid));
        let launched_by_broker = os_pid.and_then(|pid| Os.parent(pid)) == Some(std::process::id());
        Self { uid, pid, exe, host, launched_by_broker }
    }
}

/// The OS's own process table.
struct Os;

#[cfg(target_os = "linux")]
impl ProcessTable for Os {
    fn parent(&self, pid: u32) -> Option<u32> {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        // The command name may contain spaces and parentheses: fields start after the last ')'.
        let after = &stat[stat.rfind(')')? + 2..];
        after.split_whitespace().nth(1)?.parse().ok()
    }

    fn program(&self, pid: u32) -> Option<PathBuf> {
        std::fs::read_link(format!("/proc/{pid}/exe")).ok()
    }

    /// The script, resolved against the process's working folder and through links.
    fn script(&self, pid: u32) -> Option<String> {
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
        let args: Vec<String> = cmdline
            .split(|b| *b == 0)
            .filter(|a| !a.is_empty())
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect();
        let script = script_argument(&args)?;
        if script.starts_with("-m ") {
            return Some(script);
        }
        let path = Path::new(&script);
        let path = if path.is_absolute() {
            path.to_path_buf()
        } else {
            std::fs::read_link(format!("/proc/{pid}/cwd")).ok()?.join(path)
        };
        Some(std::fs::canonicalize(&path).unwrap_or(path).display().to_string())
    }
}

/// Windows (tested under Wine) and macOS (untested: it cannot be built or run here) through the
/// endpoint crate, which alone may call the OS unsafely.
#[cfg(any(windows, target_os = "macos"))]
impl ProcessTable for Os {
    fn parent(&self, pid: u32) -> Option<u32> {
        use keybridge_endpoint::process::{parent_of, started_at};
        let parent = parent_of(pid)?;
        // Both keep an exited parent's id and may give it to a new process: one that started
        // after its child is not its parent.
        (started_at(parent)? <= started_at(pid)?).then_some(parent)
    }

    fn program(&self, pid: u32) -> Option<PathBuf> {
        keybridge_endpoint::process::image_of(pid)
    }

    /// Another process's arguments live in its own memory (Windows) or behind `KERN_PROCARGS2`
    /// (macOS) and are not read: an interpreter is walked past like a shell there.
    fn script(&self, _pid: u32) -> Option<String> {
        None
    }
}

#[cfg(not(any(target_os = "linux", windows, target_os = "macos")))]
impl ProcessTable for Os {
    fn parent(&self, _pid: u32) -> Option<u32> {
        None
    }

    fn program(&self, _pid: u32) -> Option<PathBuf> {
        None
    }

    fn script(&self, _pid: u32) -> Option<String> {
        None
    }
}

/// The file of the program process `pid` runs: on Linux the running image itself.
#[cfg(target_os = "linux")]
fn program_file(pid: u32) -> Option<PathBuf> {
    Some(PathBuf::from(format!("/proc/{pid}/exe")))
}

/// The file of the program process `pid` runs: on Windows and macOS the file it was started from.
#[cfg(any(windows, target_os = "macos"))]
fn program_file(pid: u32) -> Option<PathBuf> {
    Os.program(pid)
}

#[cfg(not(any(target_os = "linux", windows, target_os = "macos")))]
fn program_file(_pid: u32) -> Option<PathBuf> {
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shells_are_walked_past_and_interpreters_are_recognized() {
        for name in ["/bin/sh", "/usr/bin/bash", "/usr/bin/env", "/usr/bin/npx", "/usr/libexec/disclaimer"] {
            assert!(passes_through(std::path::Path::new(name)), "{name}");
        }
        for name in ["/usr/bin/python3.11", "/usr/bin/node", "/opt/node22/bin/node", "C:/Python312/python.exe"] {
            assert!(is_interpreter(Path::new(name)) && !passes_through(Path::new(name)), "{name}");
        }
        assert!(!passes_through(std::path::Path::new("/opt/Claude/claude-desktop")));
        assert!(is_session_root(std::path::Path::new("/usr/bin/tmux")));
        assert!(is_session_root(std::path::Path::new("/usr/lib/systemd/systemd")));
    }

    fn args(line: &str) -> Vec<String> {
        line.split(' ').map(str::to_string).collect()
    }

    #[test]
    fn the_script_an_interpreter_runs_is_found_past_its_options() {
        let cases = [
            (
                "node /usr/lib/node_modules/@anthropic-ai/claude-code/cli.js --resume",
                Some("/usr/lib/node_modules/@anthropic-ai/claude-code/cli.js"),
            ),
            ("node --max-old-space-size=4096 -r ./hook.js agent.mjs", Some("agent.mjs")),
            ("python3 -u -X utf8 agent.py --model x", Some("agent.py")),
            ("python3 -m my_agent.main", Some("-m my_agent.main")),
            ("python3 -c print(1)", None),
            ("node -e 1", None),
            ("python3", None),
        ];
        for (line, script) in cases {
            assert_eq!(script_argument(&args(line)).as_deref(), script, "{line}");
        }
    }

    #[test]
    fn hosts_are_named_as_the_trader_knows_them() {
        let code = Host {
            program: "/usr/bin/node".into(),
            script: Some("/home/t/.npm-global/lib/node_modules/@anthropic-ai/claude-code/cli.js".into()),
        };
        assert_eq!(code.describe(), "Claude Code (node …/claude-code/cli.js)");
        let desktop = Host { program: "/usr/lib/claude-desktop/claude-desktop".into(), script: None };
        assert_eq!(desktop.describe(), "Claude Desktop (/usr/lib/claude-desktop/claude-desktop)");
        let windows =
            Host { program: r"C:\Users\t\AppData\Local\AnthropicClaude\app-1.2\claude.exe".into(), script: None };
        assert!(windows.describe().starts_with("Claude Desktop ("), "{}", windows.describe());
        let agent = Host { program: "/usr/bin/python3.11".into(), script: Some("/srv/agents/trader/run.py".into()) };
        assert_eq!(agent.describe(), "python3.11 …/trader/run.py");
        assert_ne!(agent.key(), Host { script: Some("/srv/agents/other/run.py".into()), ..agent.clone() }.key());
        assert_eq!(known_host_name("/usr/share/code/code"), Some("VS Code"));
        assert_eq!(known_host_name("/opt/cursor/cursor"), Some("Cursor"));
    }

    /// A process table written down: pid → (parent, program, script).
    struct Table(Vec<(u32, u32, &'static str, Option<&'static str>)>);

    impl ProcessTable for Table {
        fn parent(&self, pid: u32) -> Option<u32> {
            self.0.iter().find(|p| p.0 == pid).map(|p| p.1)
        }
        fn program(&self, pid: u32) -> Option<PathBuf> {
            self.0.iter().find(|p| p.0 == pid).map(|p| PathBuf::from(p.2))
        }
        fn script(&self, pid: u32) -> Option<String> {
            self.0.iter().find(|p| p.0 == pid).and_then(|p| p.3.map(str::to_string))
        }
    }

    #[test]
    fn the_walk_finds_the_host_on_every_os_by_the_same_rules() {
        let bridge = (99, 0, "keybridge-mcp", None);
        let walk = |rows: &[(u32, u32, &'static str, Option<&'static str>)], parent: u32| {
            let mut rows = rows.to_vec();
            rows.push((bridge.0, parent, bridge.2, bridge.3));
            walk_to_host(&Table(rows), 99).map(|h| h.key())
        };
        let desktop_windows = [
            (10, 4, r"C:\Windows\explorer.exe", None),
            (20, 10, r"C:\Users\t\AppData\Local\AnthropicClaude\app-1.0\claude.exe", None),
            (30, 20, r"C:\Windows\System32\cmd.exe", None),
        ];
        assert_eq!(
            walk(&desktop_windows, 30).as_deref(),
            Some(r"C:\Users\t\AppData\Local\AnthropicClaude\app-1.0\claude.exe")
        );
        let terminal_windows = [
            (10, 4, r"C:\Program Files\WindowsApps\WindowsTerminal.exe", None),
            (20, 10, r"C:\Program Files\PowerShell\7\pwsh.exe", None),
        ];
        assert_eq!(walk(&terminal_windows, 20), None, "a bare shell in a terminal is no host");
        let node_windows = [(10, 4, r"C:\Windows\explorer.exe", None), (20, 10, r"C:\nodejs\node.exe", None)];
        assert_eq!(walk(&node_windows, 20), None, "a script Windows does not show is walked past");
        let code_linux = [
            (10, 1, "/usr/bin/tmux", None),
            (20, 10, "/usr/bin/bash", None),
            (30, 20, "/usr/bin/node", Some("/opt/claude-code/cli.js")),
            (40, 30, "/bin/sh", None),
        ];
        assert_eq!(walk(&code_linux, 40).as_deref(), Some("/usr/bin/node /opt/claude-code/cli.js"));
        let python_c = [(10, 1, "/usr/bin/tmux", None), (20, 10, "/usr/bin/python3", None)];
        assert_eq!(walk(&python_c, 20), None);
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
